/**
 * A worker's side of replication (cluster, `replicas` > 1): the LMDB store hands it the
 * journal of each commit (commit-journal.ts) as the commit is queued; it sends the
 * journal to the main thread as FRAME_CONTROL 'replicate' frames on the ring (in order
 * with everything else this thread sends; a shard's home thread is fixed, so a shard's
 * journals reach the main thread in commit order), and resolves when the main thread
 * answers 'replicated' — the replicas have it — or rejects with the error the main thread
 * sent (the shard's owner changed: the commit's replies must not say done). A commit
 * whose local transaction fails after its journal went out is reported ('commit-failed',
 * after the journal on the same ring): its shards' streams start over.
 */
import { chunkJournal, splitJournal } from '../../native-free-core/storage/commit-journal.ts'
import { errorFromWire } from '../../native-free-core/errors.ts'
import type { ControlOp } from '../thread/shard-handover.ts'

interface Waiter {
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

export class ThreadReplicator {
  private readonly send: (token: number, msg: ControlOp) => void
  private readonly maxFrameBytes: number
  private readonly waiting = new Map<number, Waiter>()
  private nextToken = 0

  /** `send` puts a control frame on the ring to the main thread; `maxFrameBytes` bounds a journal piece. */
  constructor (send: (token: number, msg: ControlOp) => void, maxFrameBytes: number) {
    this.send = send
    this.maxFrameBytes = maxFrameBytes
  }

  replicate (journal: Uint8Array): Promise<void> {
    const pieces = chunkJournal(journal, this.maxFrameBytes)
    if (pieces.length === 1) return this.one(pieces[0]!)
    return Promise.all(pieces.map((p) => this.one(p))).then(() => {})
  }

  /** The local transaction of a commit whose journal went out failed. */
  lost (journal: Uint8Array): void {
    this.send(0, { op: 'commit-failed', shards: splitJournal(journal).map(([shard]) => shard) })
  }

  private one (journal: Uint8Array): Promise<void> {
    const token = this.nextToken = (this.nextToken + 1) >>> 0
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(token, { resolve, reject })
      this.send(token, { op: 'replicate', journal })
    })
  }

  /** The main thread's answer to the frame `token`. */
  answered (token: number, msg: ControlOp): void {
    if (msg.op !== 'replicated') return
    const w = this.waiting.get(token)
    if (w === undefined) return
    this.waiting.delete(token)
    if (msg.error === null) w.resolve()
    else w.reject(errorFromWire(msg.error))
  }
}
