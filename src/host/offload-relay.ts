/**
 * The main thread's side of a worker's `ctx.offload`: the worker sends a FRAME_TASK on
 * its ring to the main thread, which owns the offload pool; the result goes back as a
 * FRAME_TASK_DONE to the same incarnation of that worker (a restarted worker's tasks
 * died with it).
 */
import { OffloadError, toWire } from '../../native-free-core/errors.ts'
import type { OffloadPool } from '../offload/offload-pool.ts'
import { FRAME_TASK_DONE } from '../thread/frame-codec.ts'
import type { ThreadLoop } from '../thread/thread-loop.ts'
import type { HostLifecycle } from './lifecycle.ts'
import type { WorkerSupervisor } from './workers.ts'

export class OffloadRelay {
  private readonly pool: OffloadPool | null
  private readonly loop: ThreadLoop
  private readonly workers: WorkerSupervisor
  private readonly life: HostLifecycle

  constructor (pool: OffloadPool | null, loop: ThreadLoop, workers: WorkerSupervisor, life: HostLifecycle) {
    this.pool = pool
    this.loop = loop
    this.workers = workers
    this.life = life
  }

  /** A worker's `ctx.offload`: run it on the pool, send the result back to that incarnation of the worker. */
  run (peer: number, taskId: number, name: string, input: unknown): void {
    const epoch = this.workers.epochOf(peer)
    const done = (ok: boolean, value: unknown): void => {
      if (this.workers.epochOf(peer) !== epoch || this.life.closed) return // the worker restarted: its task died with it
      this.loop.sendResult(peer, FRAME_TASK_DONE, taskId, ok, value)
    }
    if (this.pool === null) {
      done(false, new OffloadError(`ctx.offload(${JSON.stringify(name)}) needs the host option \`offload: { filename }\``, { task: name }).toWire())
      return
    }
    this.pool.run(name, input).then((value) => done(true, value), (err: unknown) => done(false, toWire(err)))
  }
}
