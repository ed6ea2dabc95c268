/**
 * The host's piscina pool for `ctx.offload(name, input)`: blocking or CPU-heavy work runs
 * on pool threads while the shard keeps serving its other agents (the handler that
 * offloads is async, so only its own agent is busy meanwhile).
 *
 * One pool per host, on the main thread, shared by every worker:
 *
 *   worker i ──FRAME_TASK──▶ main ──pool.run──▶ piscina thread
 *            ◀─TASK_DONE───       ◀─────────────
 *
 * Why not a pool per worker: piscina's threads belong to the thread that created the
 * pool, so per-worker pools would start `workers × maxThreads` threads — on a 2-core
 * machine with 2 workers and maxThreads 2, four CPU-bound threads fighting for two cores
 * besides the workers themselves — and a burst on one worker could not use another
 * worker's idle pool threads. The price of one shared pool is one more hop each way on
 * the rings (worker → main → worker), measured in bench/tenancy.bench.ts: a no-op task
 * adds ≈ 100–130 µs (p50) to a call whose handler awaits it, against ≈ 30 µs for
 * `pool.run` called straight from the main thread — two extra wake-ups of parked
 * threads (≈ 40 µs each, docs/architecture.md §2). Negligible for the work offload is for (ms of CPU
 * or blocking I/O); not worth it for microsecond tasks. The rings carry the request and
 * result as frames, never one postMessage per task from the workers (piscina itself
 * posts to its own threads).
 *
 * Values: an input crosses a ring (msgpack: the payload rules), then piscina's structured
 * clone; a result the same way back. So a `Map` returned by a task arrives as an object
 * with `workers ≥ 1`, as everywhere else in the engine.
 *
 * Errors: a task that throws rejects with OffloadError carrying the task's message,
 * `data.name` (the thrown error's name, as structured clone keeps it: built-in error
 * names survive, a custom class arrives as 'Error') and `data.task`.
 */
import type { Piscina } from 'piscina'
import { OffloadError, ShoalError, messageOf } from '../../native-free-core/errors.ts'
import type { ResolvedOffloadOptions } from './offload-options.ts'

export interface OffloadStats {
  readonly threads: number
  /** Tasks waiting for a pool thread. */
  readonly queued: number
  /** Tasks handed to the pool and not settled yet (running or queued). */
  readonly inFlight: number
  readonly completed: number
  readonly failed: number
  /** Fraction of the pool's capacity used since it started (piscina's utilization). */
  readonly utilization: number
}

export class OffloadPool {
  private readonly pool: Piscina
  private inFlight = 0
  private failed = 0
  private closed = false

  private constructor (pool: Piscina) {
    this.pool = pool
  }

  /** Load piscina (only hosts that offload pay for its import) and start the pool. */
  static async start (options: ResolvedOffloadOptions): Promise<OffloadPool> {
    const { Piscina } = await import('piscina')
    return new OffloadPool(new Piscina({
      filename: options.filename,
      maxThreads: options.maxThreads,
      minThreads: options.minThreads,
      ...(options.workerData !== undefined ? { workerData: options.workerData } : {})
    }))
  }

  /** Run export `name` of the tasks module on a pool thread. Rejects with OffloadError. */
  run (name: string, input: unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(new OffloadError(`ctx.offload(${JSON.stringify(name)}): the host is closing`, { task: name }))
    this.inFlight++
    return this.pool.run(input, { name }).then((value) => {
      this.inFlight--
      return value
    }, (err: unknown) => {
      this.inFlight--
      this.failed++
      throw taskError(name, err)
    })
  }

  stats (): OffloadStats {
    return {
      threads: this.pool.threads.length,
      queued: this.pool.queueSize,
      inFlight: this.inFlight,
      completed: this.pool.completed,
      failed: this.failed,
      utilization: this.pool.utilization
    }
  }

  get busy (): boolean {
    return this.inFlight !== 0
  }

  /** Stop the pool threads (after the workers have stopped: nothing can offload any more). */
  async close (): Promise<void> {
    this.closed = true
    await this.pool.destroy()
  }
}

function taskError (task: string, err: unknown): ShoalError {
  if (err instanceof ShoalError) return err
  const name = err instanceof Error ? err.name : typeof err
  const message = messageOf(err)
  // piscina's words for a missing export do not name the export
  if (message.startsWith('No handler function exported from ')) {
    return new OffloadError(`the offload module ${message.slice(34)} has no function export ${JSON.stringify(task)}`, { task, name })
  }
  const code = (err as { code?: unknown } | null)?.code
  return new OffloadError(message, { task, name, ...(typeof code === 'string' ? { code } : {}) })
}
