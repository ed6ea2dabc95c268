/**
 * Resident memory of the whole host, at checkpoints: after a full GC on every thread
 * (each worker through its probe agent, then the main thread), read
 * `process.memoryUsage()` — RSS is the process's, so it covers the main thread and
 * every worker — and each thread's V8 `heapUsed`.
 *
 * Bytes per agent = (after − before) / agents, from a checkpoint taken before the
 * agents were activated to one after; both RSS-based (what the OS gives the process:
 * heap pages, off-heap buffers, fragmentation, slack) and heap-based (live JS objects
 * plus each thread's `external` memory — the agent table's typed arrays live there). "Beyond state": minus the heap size of one agent's state object, measured
 * in a worker by allocating many `initial()` states (see bench-agents.ts `stateSize`).
 *
 * Precision: RSS only shrinks when V8 returns pages, so a checkpoint after heavy
 * garbage may overstate; the GC before each reading keeps that to a few MB, i.e. a few
 * bytes per agent at a million agents.
 */
import type { ThreadProbes } from './thread-probes.ts'
import { fullGc } from './bench-agents.ts'

export interface MemorySnapshot {
  readonly rssBytes: number
  /** V8 heap in use plus off-heap `external` memory (typed arrays, buffers) and the id arenas, all threads. */
  readonly heapUsedBytes: number
  readonly mainHeapUsedBytes: number
  /** One per worker thread (empty with `workers: 0`). */
  readonly workerHeapUsedBytes: readonly number[]
  /** Off-heap memory of all threads (shared ring buffers counted once per thread that maps them). */
  readonly externalBytes: number
  readonly arrayBuffersBytes: number
  /** The threads' id arenas (their stats): SharedArrayBuffer chunks, in neither `heapUsed` nor `external`. */
  readonly idArenaBytes: number
}

/** `idArenaBytes` reads the owner threads' id arena bytes from the host's stats. */
export async function snapshot (probes: ThreadProbes, idArenaBytes: () => number): Promise<MemorySnapshot> {
  // workers first: their replies allocate a little on the main thread, collected next
  const workers = (await probes.memory(true)).filter((m) => m.threadId !== 0)
  fullGc()
  const m = process.memoryUsage()
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0)
  const external = m.external + sum(workers.map((w) => w.external))
  const ids = idArenaBytes()
  return {
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed + sum(workers.map((w) => w.heapUsed)) + external + ids,
    mainHeapUsedBytes: m.heapUsed,
    workerHeapUsedBytes: workers.map((w) => w.heapUsed),
    externalBytes: external,
    arrayBuffersBytes: m.arrayBuffers + sum(workers.map((w) => w.arrayBuffers)),
    idArenaBytes: ids
  }
}

export interface MemoryResult {
  /** How the figures were taken, for the reader of the JSON. */
  readonly method: string
  readonly agents: number
  readonly before: MemorySnapshot
  readonly after: MemorySnapshot
  readonly rssBytesPerAgent: number
  readonly heapBytesPerAgent: number
  /** Heap bytes of one agent's state object (`{ n: 0 }`), measured. */
  readonly stateHeapBytes: number
  /** Its msgpack size, what a store commits. */
  readonly stateEncodedBytes: number
  readonly rssBytesPerAgentBeyondState: number
  readonly heapBytesPerAgentBeyondState: number
}

export const memoryMethod = 'process.memoryUsage() after a full GC on every thread (worker heaps via their probe agent; ' +
  'RSS covers main + workers, one process), before and after activating the agents; (after − before) / agents. ' +
  'Heap figure: V8 heap used + external (off-heap typed arrays) + the id arena (SharedArrayBuffer chunks, from the thread stats) of every thread. ' +
  'State size: heap delta of allocating many initial() states in a worker, divided by their count.'

export function perAgent (agents: number, before: MemorySnapshot, after: MemorySnapshot, stateHeapBytes: number, stateEncodedBytes: number): MemoryResult {
  const rss = (after.rssBytes - before.rssBytes) / agents
  const heap = (after.heapUsedBytes - before.heapUsedBytes) / agents
  return {
    method: memoryMethod,
    agents,
    before,
    after,
    rssBytesPerAgent: rss,
    heapBytesPerAgent: heap,
    stateHeapBytes,
    stateEncodedBytes,
    rssBytesPerAgentBeyondState: rss - stateHeapBytes,
    heapBytesPerAgentBeyondState: heap - stateHeapBytes
  }
}
