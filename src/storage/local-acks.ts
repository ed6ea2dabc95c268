/**
 * Dedup mode on one host — a test hook (the host option `[kOutboxMode]: 'dedup'`), so
 * that the protocol the cluster uses between hosts (native-free-core/runtime/
 * durable-outbox.ts) runs with real threads, real LMDB and real crashes.
 *
 * Across hosts, the receiver's host reports each applied send to the sender's host,
 * which deletes its outbox record, and later tells the receiver to forget its applied
 * record. Here every thread shares the LMDB environment, so the receiver's thread plays
 * both parts:
 *   1. `applied` (after the applying batch committed): delete the sender's record —
 *      batched per event turn, through `Store.deleteOutbox`, durable before step 2;
 *   2. `graceMs` later: forget the applied record (a MSG_FORGET into this thread's
 *      runtime, so it is handled after the copies already delivered to it).
 * A copy can only come from the sender's record (redelivery, on this same thread) or
 * from a frame still in a ring: once the record is gone, waiting out the grace period
 * covers the second. When the thread stops, its rings are drained: the forgets due
 * are run at once. When it starts, an applied record whose sender's record is gone is
 * what a crash between steps 1 and 2 left behind: forgotten at once (the rings are new).
 */
import type { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { SendId, Store } from '../../native-free-core/storage/store.ts'

/** The host option (tests only, not public API): `[kOutboxMode]: 'dedup'` runs every thread's outbox in dedup mode. */
export const kOutboxMode = Symbol.for('shoal.outbox-mode')

/** Default grace period: longer than the redelivery interval (outbox-redelivery.ts). */
export const FORGET_AFTER_MS = 2000

interface Ack { readonly id: string, readonly hash: number, readonly send: SendId }

export class LocalAcks {
  private readonly runtime: ShardRuntime
  private readonly store: Store
  private readonly wake: () => void
  private readonly graceMs: number
  private queued: Ack[] = []
  /** Acknowledged sends whose forget waits for its grace period, by timer. */
  private readonly due = new Map<NodeJS.Timeout, Ack[]>()
  /** Record deletions not yet durable. */
  private readonly deleting = new Set<Promise<void>>()
  private stopped = false

  constructor (runtime: ShardRuntime, store: Store, wake: () => void, graceMs = FORGET_AFTER_MS) {
    this.runtime = runtime
    this.store = store
    this.wake = wake
    this.graceMs = graceMs
  }

  /** RuntimeOutput.applied: the receiver `id` applied `send`, committed. */
  applied (id: string, hash: number, send: SendId): void {
    if (this.queued.length === 0) queueMicrotask(() => this.flush())
    this.queued.push({ id, hash, send: { senderShard: send.senderShard, origin: send.origin, key: send.key } })
  }

  private flush (): void {
    const acks = this.queued
    this.queued = []
    if (acks.length === 0) return
    const deleted = Promise.resolve(this.store.deleteOutbox(acks.map((a) => a.send))).then(() => {
      this.deleting.delete(deleted)
      if (this.stopped) return
      const timer = setTimeout(() => {
        this.due.delete(timer)
        this.forget(acks)
      }, this.graceMs)
      timer.unref()
      this.due.set(timer, acks)
    })
    this.deleting.add(deleted)
  }

  private forget (acks: readonly Ack[]): void {
    for (const a of acks) this.runtime.forget(a.id, a.hash, a.send.origin, a.send.key)
    this.wake()
  }

  /** At the thread's start: forget what a crash left after the sender's record was deleted. */
  start (ownsShard: (shard: number) => boolean): void {
    let n = 0
    for (const r of this.store.applied()) {
      if (!ownsShard(r.shard) || this.store.hasOutbox({ senderShard: r.senderShard, origin: r.origin, key: r.key })) continue
      this.runtime.outbox.forget(r)
      n++
    }
    if (n !== 0) this.wake()
  }

  /**
   * At the thread's stop, after its rings were drained and its last batch committed:
   * delete the records acknowledged meanwhile, forget everything acknowledged, commit.
   */
  async finish (): Promise<void> {
    this.flush()
    while (this.deleting.size !== 0) await Promise.all([...this.deleting])
    this.stopped = true
    for (const [timer, acks] of this.due) {
      clearTimeout(timer)
      this.forget(acks)
    }
    this.due.clear()
    this.runtime.commit()
    await this.runtime.whenCommitted()
  }
}
