/**
 * The agents `shoal bench` runs. Every worker thread imports this module by URL
 * (`createHost({ agents })`), so it holds definitions only — plus the thread-local
 * probe helpers they call.
 *
 *   counter   the budget's resident agent (docs/architecture.md §10): `{ n: 0 }`, `add` (command), `get` (query)
 *   hotStore  DNA's one-agent benchmark with its KV storage: every command counts into
 *             state and `ctx.storage.put`s a new key (see scenarios/hot.ts)
 *   blob      a state of a given size (`fill(bytes)`, random bytes: nothing compresses
 *             them): `shoal bench --replication` fills shards with it to time a
 *             replica's catch-up in MB/s
 *   probe     one per thread, found by its `threadId`: flow-control barriers (a query
 *             replies only after every earlier message on the same ring ran), commit
 *             barriers (`flush`, a command), and per-thread memory after a full GC
 *
 * Gotcha: `gc` is not exposed unless node ran with --expose-gc. `fullGc` switches the
 * flag on at run time (V8 reads it when a context is created, so a fresh vm context
 * gets a `gc` function); the flag is process-wide and harmless for a bench process.
 */
import { randomFillSync } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { threadId } from 'node:worker_threads'
import { PerformanceObserver } from 'node:perf_hooks'
import type { PerformanceEntry } from 'node:perf_hooks'
import { defineAgent } from '../index.ts'
import { threadGcPauses } from '../observe/gc-pauses.ts'
import type { GcPauseFigures } from '../observe/gc-pauses.ts'
import { ownTid } from './thread-cpu.ts'

export const counter = defineAgent({
  type: 'counter',
  initial: () => ({ n: 0 }),
  commands: {
    add (state, by: number) { state.n += by; return state.n }
  },
  queries: {
    get (state) { return state.n }
  }
})

export const hotStore = defineAgent({
  type: 'hotStore',
  initial: () => ({ n: 0 }),
  commands: {
    /** DNA's `put(name, to_string(total_events), "test")`: a new storage key per command. */
    add (state, by: number, ctx) {
      state.n += by
      ctx.storage.put(String(state.n), 'test') // the baseline's value: scenarios/hot.ts kHotValue
    },
    /** The final call of the run: its reply waits for the commit of everything before it. */
    sync (state) { return state.n }
  },
  queries: {
    get (state) { return state.n }
  }
})

export const blob = defineAgent({
  type: 'blob',
  initial: (): { data: Uint8Array | null } => ({ data: null }),
  commands: {
    fill (state, bytes: number) {
      state.data = randomFillSync(new Uint8Array(bytes))
      return bytes
    }
  },
  queries: {
    size (state) { return state.data?.length ?? 0 }
  }
})

export interface ThreadMemory {
  readonly threadId: number
  /** V8 heap in use on this thread, after a full GC when `gc` was true. */
  readonly heapUsed: number
  readonly heapTotal: number
  /** Whole-process figures, as this thread saw them. */
  readonly rss: number
  readonly external: number
  readonly arrayBuffers: number
}

/** GC pauses of one thread over one window (see observe/gc-pauses.ts). */
export interface ThreadGc extends GcPauseFigures {
  readonly threadId: number
}

export interface StateSize {
  /** Heap bytes one `initial()` state takes, measured over `count` of them. */
  readonly heapBytes: number
  /** How many states the figure averages over. */
  readonly count: number
}

/** GC pauses with their times, while a trace is on (one per thread: this module is loaded once per worker). */
export const gcTrace = {
  observer: null as PerformanceObserver | null,
  spans: [] as number[],
  start (): void {
    this.spans = []
    this.observer?.disconnect()
    this.observer = new PerformanceObserver((list) => this.keep(list.getEntries()))
    this.observer.observe({ type: 'gc' })
  },
  keep (entries: readonly PerformanceEntry[]): void {
    for (const e of entries) this.spans.push(performance.timeOrigin + e.startTime, performance.timeOrigin + e.startTime + e.duration)
  },
  take (): number[] {
    if (this.observer === null) return []
    this.keep(this.observer.takeRecords())
    this.observer.disconnect()
    this.observer = null
    const out = this.spans
    this.spans = []
    return out
  }
}

export const probe = defineAgent({
  type: 'probe',
  initial: () => ({ flushes: 0 }),
  commands: {
    /** Persisted like any command, so its reply waits for this thread's commits so far. */
    flush (state) { state.flushes++; return threadId }
  },
  queries: {
    thread () { return threadId },
    ping () { return threadId },
    /** The Linux tid of this thread (0 without /proc): its CPU time is read from /proc by the bench. */
    tid () { return ownTid() },
    /** This thread's GC pauses since the last `gc` query (a window per bench phase), and a new window. */
    gc (): ThreadGc { return { threadId, ...threadGcPauses.takeWindow() } },
    /** Start keeping this thread's GC pauses with their times (the latency scenario's tail attribution). */
    gcTraceStart () { gcTrace.start() },
    /** The pauses kept since `gcTraceStart`, [start, end] pairs in epoch ms (performance.timeOrigin-based), and stop. */
    gcTraceTake (): number[] { return gcTrace.take() },
    /** This thread's GC pauses since it started (no window taken): [count, total ms]. */
    gcLifetime (): [number, number] { const g = threadGcPauses.read(); return [g.pauses, g.totalMs] },
    memory (_state, gc: boolean): ThreadMemory {
      if (gc) fullGc()
      const m = process.memoryUsage()
      return { threadId, heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers }
    },
    /** Heap bytes per `counter` state, measured here so it reflects this thread's V8 layout. */
    stateSize (_state, count: number): StateSize {
      fullGc()
      const before = process.memoryUsage().heapUsed
      const keep: unknown[] = new Array(count)
      for (let i = 0; i < count; i++) keep[i] = counter.initial(`k${i}`)
      fullGc()
      const after = process.memoryUsage().heapUsed
      // the holding array's backing store (8 bytes a slot) is not the states' own
      const heapBytes = Math.max(0, (after - before - count * 8) / count)
      keep.length = 0
      return { heapBytes, count }
    }
  }
})

let gcFn: (() => void) | null = null

/** A full, synchronous garbage collection on this thread. */
export function fullGc (): void {
  if (gcFn === null) {
    const exposed = (globalThis as { gc?: () => void }).gc
    if (typeof exposed === 'function') gcFn = exposed
    else {
      setFlagsFromString('--expose-gc')
      gcFn = runInNewContext('gc') as () => void
    }
  }
  gcFn()
  gcFn() // a second pass collects what the first one's finalizers released
}
