/**
 * One `probe` agent on each thread that owns agents, found by asking probes for their
 * `threadId` until every thread has one — no knowledge of the shard table needed.
 *
 * What they give the bench driver:
 *   - a barrier: a query goes down the same main→worker ring as every cast before it,
 *     so its reply means all of those ran (rings are FIFO). `Pacer` keeps a bounded
 *     number of barriers in flight, so the driver never piles millions of frames into
 *     ring overflow — and never sleeps to guess when the workers caught up.
 *   - `flush`: a command call per thread; its reply leaves only after its batch, and so
 *     every earlier batch on that thread, has committed (the output gate).
 *   - per-thread memory after a full GC (workers' heaps are separate isolates in the
 *     same process; `process.memoryUsage().rss` covers them all).
 */
import type { AgentRef, Host } from '../index.ts'
import { probe } from './bench-agents.ts'
import type { ThreadGc, ThreadMemory, StateSize } from './bench-agents.ts'
import { threadGcPauses } from '../observe/gc-pauses.ts'
import { cpuSplit, ownTid, threadCpuMs } from './thread-cpu.ts'
import type { CpuSplit } from './thread-cpu.ts'

/** Probe keys tried before giving up; 4096 shards spread over the threads, so a few dozen suffice. */
const kMaxProbeKeys = 100_000
/** Calls that run full GCs on a worker. */
const kGcCallTimeoutMs = 600_000

export class ThreadProbes {
  readonly refs: ReadonlyArray<AgentRef<typeof probe>>

  private constructor (refs: ReadonlyArray<AgentRef<typeof probe>>) {
    this.refs = refs
  }

  /** Find a probe key on each of `threads` threads (the workers, or the main thread with `workers: 0`). */
  static async find (host: Host, threads: number): Promise<ThreadProbes> {
    const found = new Map<number, AgentRef<typeof probe>>()
    for (let i = 0; found.size < threads && i < kMaxProbeKeys; i += 16) {
      const batch = Array.from({ length: 16 }, (_, j) => host.ref(probe, `probe-${i + j}`))
      const ids = await Promise.all(batch.map((r) => r.call('thread')))
      ids.forEach((t, j) => { if (!found.has(t)) found.set(t, batch[j]!) })
    }
    if (found.size < threads) throw new Error(`found probe agents on ${found.size} of ${threads} threads`)
    return new ThreadProbes([...found.values()])
  }

  /** Resolves when every message sent to any thread before this call has run. */
  async barrier (): Promise<void> {
    await Promise.all(this.refs.map((r) => r.call('ping')))
  }

  /** Resolves when every command sent before this call has committed, on every thread. */
  async flush (): Promise<void> {
    await Promise.all(this.refs.map((r) => r.call('flush')))
  }

  memory (gc: boolean): Promise<ThreadMemory[]> {
    // a full GC of a worker holding millions of agents takes seconds (7 s measured at 5M agents
    // per worker on a loaded machine), twice: more than the host's default call timeout
    return Promise.all(this.refs.map((r) => r.call('memory', gc, { timeoutMs: kGcCallTimeoutMs })))
  }

  /**
   * GC pauses of every thread since the previous call, main thread first (threadId 0),
   * and start a new window on each. The main thread's is read here, after the workers
   * answered.
   */
  async gcWindow (): Promise<ThreadGc[]> {
    const workers = (await Promise.all(this.refs.map((r) => r.call('gc')))).filter((g) => g.threadId !== 0)
    return [{ threadId: 0, ...threadGcPauses.takeWindow() }, ...workers]
  }

  /**
   * Start measuring CPU time per thread; the returned function ends the measure and
   * splits it between the main thread, each worker and the rest (null without /proc).
   */
  async cpu (): Promise<() => CpuSplit | null> {
    const workerTids = (await Promise.all(this.refs.map((r) => r.call('tid')))).filter((t) => t !== ownTid())
    const before = threadCpuMs()
    return () => cpuSplit(before, threadCpuMs(), ownTid(), workerTids)
  }

  stateSize (count: number): Promise<StateSize> {
    return this.refs[0]!.call('stateSize', count, { timeoutMs: kGcCallTimeoutMs })
  }
}

/**
 * Bounded pipelining for a driver loop: after each chunk of casts call `step()`; it
 * starts a barrier and waits for the one `depth` chunks back, so at most `depth + 1`
 * chunks are queued ahead of the workers while they always have the next one.
 */
export class Pacer {
  private readonly probes: ThreadProbes
  private readonly depth: number
  private readonly inflight: Array<Promise<void>> = []

  constructor (probes: ThreadProbes, depth = 2) {
    this.probes = probes
    this.depth = depth
  }

  async step (): Promise<void> {
    this.inflight.push(this.probes.barrier())
    if (this.inflight.length > this.depth) await this.inflight.shift()
  }

  async drain (): Promise<void> {
    while (this.inflight.length !== 0) await this.inflight.shift()
  }
}
