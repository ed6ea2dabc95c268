/**
 * A worker's side of `ctx.offload`: each task goes to the main thread (which owns the
 * host's piscina pool, see offload-pool.ts) as a FRAME_TASK on the worker → main ring,
 * and its FRAME_TASK_DONE comes back on the main → worker ring and settles the promise
 * the handler awaits.
 *
 * Task ids are this worker's own and restart at 1 with a new worker; the main thread
 * drops results meant for a worker that has since restarted (it compares incarnations),
 * so a new worker never sees an old worker's results. Tasks in flight when the worker
 * dies die with it: their agents' turns were never committed.
 */
import { errorFromWire } from '../../native-free-core/errors.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import type { ThreadLoop } from '../thread/thread-loop.ts'

/** Thread that owns the pool. */
const kPoolThread = 0

interface Waiting {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
}

export class OffloadClient {
  private readonly loop: ThreadLoop
  private readonly waiting = new Map<number, Waiting>()
  private nextId = 1

  constructor (loop: ThreadLoop) {
    this.loop = loop
  }

  get inFlight (): number {
    return this.waiting.size
  }

  run (name: string, input: unknown): Promise<unknown> {
    const id = this.nextId
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1
    try {
      // throws EncodeError / MessageTooLargeError before writing anything
      this.loop.sendTask(kPoolThread, id, name, input)
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise((resolve, reject) => { this.waiting.set(id, { resolve, reject }) })
  }

  /** A FRAME_TASK_DONE arrived. */
  settle (id: number, ok: boolean, value: unknown): void {
    const w = this.waiting.get(id)
    if (w === undefined) return
    this.waiting.delete(id)
    if (ok) w.resolve(value)
    else w.reject(errorFromWire(value as WireError))
  }
}
