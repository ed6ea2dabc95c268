/**
 * Effectively-once durable sends between hosts (docs/cluster.md): the acknowledgements.
 * In a cluster every thread applies durable sends in dedup mode (durable-outbox.ts): the
 * applying turn records the send's identity in the receiver's shard, and once that is
 * committed the runtime reports it here. Then:
 *
 *   receiver's host                         sender's host (owner of the sender's shard)
 *   CL_SENT_ACK [send, receiver] ─────────▶ delete the outbox record (durable)
 *                                 ◀──────── CL_DELETED [receiver, send]
 *   after forgetAfterMs: MSG_FORGET to the receiver (its applied record goes, in its batch)
 *
 * Why this is safe. The sender stops making copies once its record is gone, and copies it
 * sent before went down the same link ahead of CL_DELETED, into the receiver's home thread
 * ahead of the forget; copies that took another way (a stale map, a move) have forgetAfterMs to
 * arrive, and at an adoption forgets run after every frame that was kept (shard-handover.ts).
 * A lost CL_SENT_ACK is repaired by the next copy (a duplicate is acknowledged again); a
 * lost CL_DELETED by re-sending the acknowledgements still unanswered, and at start by
 * acknowledging every applied record again.
 *
 * The sender's host deletes a record only for a shard it serves and is not moving: a
 * record that leaves with its shard is acknowledged again by its next copy from the new
 * owner. A shard that is about to leave waits for the deletions in flight (`settled`), so
 * a deleted record never travels.
 */
import { SHARDS } from '../../native-free-core/placement/hash.ts'
import type { SendId, Store } from '../../native-free-core/storage/store.ts'
import type { AppliedAck, Gateway } from '../../src/host/gateway.ts'
import type { FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import { CL_DELETED, CL_SENT_ACK } from './wire.ts'
import type { ClusterWire } from './wire.ts'

/** Unanswered acknowledgements are sent again after this. */
const RESEND_MS = 5_000
const kShardShift = 32 - Math.log2(SHARDS)

export interface DurableAcksParts {
  readonly self: string
  readonly store: Store
  readonly gateway: Gateway
  readonly wire: ClusterWire
  /** The host the map names owner of a shard, or undefined. */
  ownerOf (shard: number): string | undefined
  /** This host serves the shard and is not moving it. */
  serves (shard: number): boolean
  writer (peer: string): FrameSink
  /** How long a receiver keeps an applied record after its sender dropped the outbox record (cluster option forgetAfterMs). */
  readonly graceMs: number
}

/** One acknowledgement on the wire: the send, and the receiver that applied it. */
type Ack = [senderShard: number, origin: string, key: number, receiverId: string, receiverHash: number]

export class DurableAcks {
  private readonly parts: DurableAcksParts
  /** Acknowledgements sent and not answered yet, by `origin/key`. */
  private readonly unanswered = new Map<string, Ack>()
  /** Outbox deletions not yet durable (a shard may leave only once they are). */
  private readonly deleting = new Set<Promise<void>>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private resend: ReturnType<typeof setInterval> | null = null
  private closed = false
  /** Figures for stats. */
  acked = 0
  deleted = 0
  forgotten = 0

  constructor (parts: DurableAcksParts) {
    this.parts = parts
  }

  start (): void {
    // applied records left from before a restart: acknowledge them again, the answers forget them
    const again: AppliedAck[] = []
    // only of shards served here: a replica's copy, or a stale range of a host that lost the
    // shard while it was away, may hold records the shard's owner does not have
    for (const r of this.parts.store.applied()) if (this.parts.serves(r.shard)) again.push([r.shard << kShardShift >>> 0, '', r.senderShard, r.origin, r.key])
    if (again.length !== 0) this.applied(again)
    this.resend = setInterval(() => this.resendUnanswered(), RESEND_MS)
    this.resend.unref()
  }

  close (): void {
    this.closed = true
    if (this.resend !== null) clearInterval(this.resend)
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  /** Resolves when every outbox deletion started so far is durable. */
  async settled (): Promise<void> {
    while (this.deleting.size !== 0) await Promise.all([...this.deleting])
  }

  /** The runtimes of this host applied durable sends (committed): acknowledge them to their senders' hosts. */
  applied (acks: readonly AppliedAck[]): void {
    const byHost = new Map<string, Ack[]>()
    for (const [hash, id, senderShard, origin, key] of acks) {
      const ack: Ack = [senderShard, origin, key, id, hash]
      const owner = this.parts.ownerOf(senderShard)
      if (owner === undefined) continue // nobody serves the sender now: its next copy is acknowledged again
      this.unanswered.set(`${origin}/${key}`, ack)
      let list = byHost.get(owner)
      if (list === undefined) byHost.set(owner, list = [])
      list.push(ack)
    }
    for (const [host, list] of byHost) {
      this.acked += list.length
      if (host === this.parts.self) this.onAcks(host, list)
      else this.send(host, CL_SENT_ACK, list)
    }
  }

  /** A cluster frame of this protocol from `peer`. */
  onFrame (peer: string, kind: number, value: unknown): void {
    if (!Array.isArray(value)) return
    if (kind === CL_SENT_ACK) this.onAcks(peer, value as Ack[])
    else if (kind === CL_DELETED) this.onDeleted(value as Ack[])
  }

  /** Sender's side: delete the records of the shards served here, then tell the receiver's host. */
  private onAcks (from: string, acks: readonly Ack[]): void {
    const mine: SendId[] = []
    const answered: Ack[] = []
    for (const ack of acks) {
      const [senderShard, origin, key] = ack
      if (!this.parts.serves(senderShard)) continue // moving or elsewhere: the record's next copy is acknowledged again
      mine.push({ senderShard, origin, key })
      answered.push(ack)
    }
    if (mine.length === 0) return
    const done = Promise.resolve(this.parts.store.deleteOutbox(mine)).then(() => {
      this.deleted += mine.length
      if (from === this.parts.self) this.onDeleted(answered)
      else this.send(from, CL_DELETED, answered)
    }, () => {}) // a failed deletion is retried by the next copy's acknowledgement
    this.deleting.add(done)
    void done.finally(() => this.deleting.delete(done))
  }

  /** Receiver's side: the senders dropped their records; forget the applied records after the grace period. */
  private onDeleted (acks: readonly Ack[]): void {
    for (const [, origin, key] of acks) this.unanswered.delete(`${origin}/${key}`)
    if (this.closed) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      for (const [, origin, key, id, hash] of acks) this.parts.gateway.forget(id, hash, origin, key)
      this.forgotten += acks.length
    }, this.parts.graceMs)
    timer.unref()
    this.timers.add(timer)
  }

  private resendUnanswered (): void {
    if (this.unanswered.size === 0) return
    const acks = [...this.unanswered.values()]
    this.unanswered.clear()
    this.applied(acks.map(([senderShard, origin, key, id, hash]) => [hash, id, senderShard, origin, key]))
  }

  private send (peer: string, kind: number, acks: readonly Ack[]): void {
    try {
      for (let i = 0; i < acks.length; i += 512) this.parts.wire.write(this.parts.writer(peer), kind, 0, acks.slice(i, i + 512))
    } catch {
      // the link is down or full: the acknowledgements are sent again (resend, or the next copy)
    }
  }
}
