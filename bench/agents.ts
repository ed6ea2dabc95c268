/** Agents the engine benchmarks run; workers import this module by URL. */
import { defineAgent } from '../src/index.ts'
import { getHeapStatistics } from 'node:v8'

/** Committed to the host's store after every batch (the in-memory store without dataDir). */
export const counter = defineAgent({
  type: 'counter',
  initial: () => ({ n: 0 }),
  commands: { add (s, by: number) { s.n += by; return s.n } },
  queries: { get (s) { return s.n } }
})

/** The same agent, never persisted: the engine's own cost without a store. */
export const volatileCounter = defineAgent({
  type: 'volatile',
  durable: false,
  initial: () => ({ n: 0 }),
  commands: { add (s, by: number) { s.n += by; return s.n } },
  queries: { get (s) { return s.n } }
})

/** Heap of the worker thread it runs on (after a full GC when --expose-gc is set). */
export const heapProbe = defineAgent({
  type: 'heap-probe',
  durable: false,
  initial: () => ({}),
  queries: {
    heap () {
      (globalThis as { gc?: () => void }).gc?.()
      return getHeapStatistics().used_heap_size
    }
  }
})

/** Passivated after 10 ticks without a message (the idle-passivation bench). */
export const idler = defineAgent({
  type: 'idler',
  idleTicks: 10,
  initial: () => ({ n: 0 }),
  commands: {
    add (s, by: number) { s.n += by; return s.n },
    bye (_s, _p: undefined, ctx) { ctx.deactivate() }
  },
  queries: { get (s) { return s.n } }
})

/** A counter with a rate limit it never reaches: the bucket check's own cost. */
export const limitedCounter = defineAgent({
  type: 'limited',
  durable: false,
  rateLimit: { perSecond: 1e12, burst: 1e9 },
  initial: () => ({ n: 0 }),
  commands: { add (s, by: number) { s.n += by; return s.n } },
  queries: { get (s) { return s.n } }
})

/** Awaits a no-op task on the host's offload pool (bench/tasks.ts). */
export const offloader = defineAgent({
  type: 'offloader',
  durable: false,
  initial: () => ({}),
  commands: { async run (_s, input: number, ctx) { return await ctx.offload('echo', input) } },
  queries: { get () { return 0 } }
})

/** DNA's benchmark agent: `put(key, "test")` into its KV storage, one new key per command. */
export const dnaStore = defineAgent({
  type: 'dna',
  initial: () => ({ puts: 0 }),
  commands: {
    put (s, [key, value]: [string, string], ctx) { ctx.storage.put(key, value); s.puts++ },
    /** The final call: its reply waits for the commit of every put before it. */
    sync (s) { return s.puts }
  },
  queries: { puts (s) { return s.puts } }
})
