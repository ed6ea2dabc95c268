/**
 * Effectively-once sends (with a durable store). A durable agent's `ctx.send` is an
 * outbox record written in its turn's batch and released after that batch commits. Its
 * identity (store.ts, `SendId`) is the store that numbered it (`origin`, a storeId) and
 * its key there — incarnation × 2^32 + sequence: the sender's thread takes a fresh
 * incarnation from the store whenever it starts, so a key is never reused — plus the
 * sender's shard, which says where the record lives. The record is delivered again until
 * the send is known to be applied (`redeliver`, after a crash or a lost ring), so the
 * receiver must recognise copies. Two ways, chosen per runtime (`outbox` option):
 *
 * 'claim' (one host, the default). The receiver applies a send only while its record
 * exists, and removes the record in the batch of the turn that applied it — one
 * transaction, so "applied" and "removed" are the same fact. A crash before that commit
 * leaves the record, which is delivered again; a copy arriving after it finds no record
 * and is dropped. This needs the sender's record in the receiver's store: every thread
 * of a host shares one LMDB environment.
 *
 * 'dedup' (senders on other hosts, whose records this store does not have). The applying
 * turn writes an applied record `[receiver shard][origin][key]` in its own batch; a copy
 * whose identity is applied — committed, or in the open batch or a commit in flight — is
 * dropped. Once the batch has committed, each applied send is reported
 * (`RuntimeOutput.applied`) so that the sender drops its record (the acknowledgement);
 * a copy of a send applied earlier is reported again, since a copy means the sender
 * still has its record. When no copy can come any more, MSG_FORGET removes the applied
 * record, in the receiver's batch, after whatever came before it the same way.
 *
 * Either way a send that can never run (unknown type or method, refused activation) is
 * consumed as if applied, and reported as an agent error: a dead letter.
 *
 * A stored send is released — handed to the transport — only once its batch's commit has
 * settled, and with replicas (a cluster) that is once the shard's replicas have the batch:
 * the local transaction commits first, so its record is in the store, where redelivery
 * looks, before the send may leave. Redelivery must not hand out a record whose commit
 * has not settled (`unreleased`): if the replicas never get that batch — the owner stood
 * still (SIGSTOP) and its shard failed over — the new owner has neither the turn nor the
 * record, the caller retries the turn there and it sends again, under a new identity, so
 * the escaped copy would be applied as a second send (the chaos test's "credited 2×").
 * The key ranges of sends stored by commits not settled are kept here, exactly, and told to
 * the host (`RuntimeOutput.unreleased`) so that its other threads skip them too.
 *
 * This is the outbox's bookkeeping on one thread: the keys it hands out as a sender, and
 * what it has applied and not yet committed as a receiver. The commit pipeline takes the
 * open batch's part (`takeOpen`) and reports back when that commit settles.
 */
import { DecodeError, MessageTooLargeError, StorageError, UnknownAgentTypeError, UnknownMethodError, messageOf } from '../errors.ts'
import { Envelope, MSG_SEND } from '../agent/envelope.ts'
import type { AgentRegistry } from '../agent/registry.ts'
import { hashId, shardOf } from '../placement/hash.ts'
import { MAX_INCARNATION } from '../storage/store.ts'
import type { AppliedId, AppliedRecord, OutboxRecord, SendId, Store } from '../storage/store.ts'
import type { OutboxMode, RuntimeOutput, ValueCodec } from './ports.ts'

export type { OutboxMode } from './ports.ts'
import type { OutboundSend } from './turn-context.ts'

/** What redelivery needs from the runtime. */
export interface OutboxHost {
  readonly registry: AgentRegistry
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  /** Wall time of the current tick, epoch ms (an applied record's `appliedAt`). */
  readonly tickTimeMs: number
  deliver (env: Envelope): void
  /** Encode for the store, throwing EncodeError that names `what` (and `key` after it). */
  encodeStored (value: unknown, what: string, key?: string): Uint8Array
}

/** A send applied in dedup mode: its applied record, and the receiver to report it for. */
class AppliedSend implements AppliedRecord {
  readonly shard: number
  readonly origin: string
  readonly key: number
  readonly senderShard: number
  readonly appliedAt: number
  readonly id: string
  readonly hash: number

  constructor (env: Envelope, appliedAt: number) {
    this.shard = shardOf(env.hash)
    this.origin = env.origin
    this.key = env.outboxKey
    this.senderShard = env.senderShard
    this.appliedAt = appliedAt
    this.id = env.id
    this.hash = env.hash
  }
}

/** The outbox's part of one batch; handed back to `settled` when its commit is done. */
export interface OutboxBatch {
  /** Claim mode: records of the sends applied, removed by the batch. */
  readonly deletes: SendId[] | null
  /** Dedup mode: applied records written by the batch. */
  readonly applied: AppliedSend[] | null
  /** Dedup mode: applied records removed by the batch (MSG_FORGET). */
  readonly forgotten: AppliedId[] | null
}

export class DurableOutbox {
  /** Sends of durable agents are stored: the store is durable. */
  readonly durable: boolean
  readonly mode: OutboxMode
  private readonly store: Store | null
  private readonly host: OutboxHost
  private readonly maxMessageBytes: number
  private deletes: SendId[] = []
  private appliedOpen: AppliedSend[] = []
  private forgotten: AppliedId[] = []
  /** Identities applied and not yet committed (open batch and commits in flight): copies of them are dropped. */
  private readonly pending = new Set<string>()
  private incarnation = 0
  private sendSeq = 0
  /** Key ranges [first, last] of this thread's sends stored by commits that have not settled (few: one per commit in flight). */
  private readonly unreleased: Array<readonly [number, number]> = []

  constructor (host: OutboxHost, store: Store | null, maxMessageBytes: number, mode: OutboxMode = 'claim') {
    this.host = host
    this.store = store
    this.maxMessageBytes = maxMessageBytes
    this.mode = mode
    this.durable = store?.durable === true
    // taken now, at the thread's start, not in the middle of building a batch
    if (this.durable) this.takeIncarnation()
  }

  /** The origin of this thread's sends: its store's id. */
  get origin (): string {
    return this.store!.storeId
  }

  /** The open batch has outbox work (applied sends, removals). */
  get hasOpen (): boolean {
    return this.deletes.length !== 0 || this.appliedOpen.length !== 0 || this.forgotten.length !== 0
  }

  /**
   * A durable sender's send, encoded now — it is stored, so it must be deliverable —
   * into `send.record`, the msgpack array [from, to, type, method, payload]. An object
   * payload is encoded once: its bytes end the record and are kept in
   * `send.payloadBytes`, which the ring frame carries as they are after the commit
   * (they were encoded a second time for the frame before).
   */
  record (send: OutboundSend, from: string, type: string, method: string, payload: unknown): void {
    let record: Uint8Array
    if (payload !== null && typeof payload === 'object') {
      const p = this.host.encodeStored(payload, 'the payload of ctx.send to', `${type}.${method}`)
      const head = this.host.encodeStored([from, send.id, type, method], 'the address of ctx.send to', `${type}.${method}`)
      // msgpack fixarray of 4 (0x94) becomes a fixarray of 5 (0x95) whose last element is the payload
      record = new Uint8Array(head.length + p.length)
      record.set(head)
      record[0] = 0x95
      record.set(p, head.length)
      send.payloadBytes = p
    } else {
      record = this.host.encodeStored([from, send.id, type, method, payload], 'the payload of ctx.send to', `${type}.${method}`)
    }
    if (record.length > this.maxMessageBytes) {
      throw new MessageTooLargeError(`ctx.send to ${type}.${method}: ${record.length} bytes is over maxMessageBytes (${this.maxMessageBytes})`, { bytes: record.length, maxMessageBytes: this.maxMessageBytes })
    }
    send.record = record
  }

  /**
   * The durable send `env` is about to be applied (or consumed, if it can never run):
   * true to go on, in the open batch; false for a copy of a send already applied.
   */
  admit (env: Envelope): boolean {
    const name = identityName(env.origin, env.outboxKey)
    if (this.pending.has(name)) return false
    if (this.mode === 'claim') {
      const send: SendId = { senderShard: env.senderShard, origin: env.origin, key: env.outboxKey }
      if (!this.store!.hasOutbox(send)) return false
      this.pending.add(name)
      this.deletes.push(send)
      return true
    }
    if (this.store!.isApplied(shardOf(env.hash), env.origin, env.outboxKey)) {
      // a copy means the sender still has its record: acknowledge again
      this.host.output.applied?.(env.id, env.hash, { senderShard: env.senderShard, origin: env.origin, key: env.outboxKey })
      return false
    }
    this.pending.add(name)
    this.appliedOpen.push(new AppliedSend(env, this.host.tickTimeMs))
    return true
  }

  /** Remove an applied record in the open batch (dedup mode: MSG_FORGET). */
  forget (applied: AppliedId): void {
    this.forgotten.push({ shard: applied.shard, origin: applied.origin, key: applied.key })
  }

  /** The open batch's part (null: none); the batch that commits it now owns it. */
  takeOpen (): OutboxBatch | null {
    if (!this.hasOpen) return null
    const batch: OutboxBatch = {
      deletes: this.deletes.length === 0 ? null : this.deletes,
      applied: this.appliedOpen.length === 0 ? null : this.appliedOpen,
      forgotten: this.forgotten.length === 0 ? null : this.forgotten
    }
    this.deletes = []
    this.appliedOpen = []
    this.forgotten = []
    return batch
  }

  /**
   * A batch's commit is done: its sends are no longer pending here (committed — the store
   * answers for them — or failed, and then not applied). Committed applied sends are
   * reported, for the senders to drop their records.
   */
  settled (batch: OutboxBatch, committed: boolean): void {
    if (batch.deletes !== null) for (const s of batch.deletes) this.pending.delete(identityName(s.origin, s.key))
    if (batch.applied !== null) {
      for (const a of batch.applied) this.pending.delete(identityName(a.origin, a.key))
      const report = this.host.output.applied
      if (committed && report !== undefined) {
        for (const a of batch.applied) report.call(this.host.output, a.id, a.hash, { senderShard: a.senderShard, origin: a.origin, key: a.key })
      }
    }
  }

  /**
   * A commit about to be handed to the store holds sends keyed `first` to `last`: until
   * `released` is called with what this returns, they are not redelivered (see above).
   */
  storing (first: number, last: number): readonly [number, number] {
    const range = [first, last] as const
    this.unreleased.push(range)
    this.tellUnreleased()
    return range
  }

  /** The commit that held `range` settled (committed: its sends are released; failed: they stay stored, the store answers for them). */
  released (range: readonly [number, number]): void {
    const i = this.unreleased.indexOf(range)
    if (i < 0) return
    this.unreleased.splice(i, 1)
    this.tellUnreleased()
  }

  /** Is this thread's send `key` stored by a commit that has not settled? */
  isUnreleased (origin: string, key: number): boolean {
    if (this.unreleased.length === 0 || !this.durable || origin !== this.store!.storeId) return false
    for (const [first, last] of this.unreleased) if (key >= first && key <= last) return true
    return false
  }

  private tellUnreleased (): void {
    const tell = this.host.output.unreleased
    if (tell === undefined) return
    let lowest = 0
    for (const [first] of this.unreleased) if (lowest === 0 || first < lowest) lowest = first
    // every key of this thread from `lowest` on (to its incarnation's end) may be unreleased
    tell.call(this.host.output, lowest, lowest === 0 ? 0 : (this.incarnation + 1) * 0x100000000)
  }

  /** The key of the next send released by this thread. */
  nextKey (): number {
    if (this.sendSeq === 0xffffffff) this.takeIncarnation()
    return this.incarnation * 0x100000000 + ++this.sendSeq
  }

  /**
   * Deliver stored durable sends again (after a crash, or when one may have been lost
   * with a ring): those addressed to agents `owns` accepts. Copies of sends already
   * applied are dropped when their turn would run. Returns how many were delivered.
   */
  redeliver (records: Iterable<OutboxRecord>, owns: (hash: number) => boolean): number {
    const host = this.host
    let n = 0
    for (const r of records) {
      if (this.pending.has(identityName(r.origin, r.key))) continue
      if (this.isUnreleased(r.origin, r.key)) continue // its commit has not settled: not released yet
      let to: string, type: string, method: string, payload: unknown
      try {
        [, to, type, method, payload] = host.codec.decode(r.bytes) as [string, string, string, string, unknown]
      } catch (err) {
        host.output.agentError?.('', '', new DecodeError(`a stored send does not decode: ${messageOf(err)}`).toWire())
        continue
      }
      const hash = hashId(to)
      if (!owns(hash)) continue
      const env = new Envelope()
      env.kind = MSG_SEND
      env.id = to
      env.hash = hash
      env.payload = payload
      env.outboxKey = r.key
      env.origin = r.origin
      env.senderShard = r.senderShard
      const info = host.registry.get(type)
      const m = info?.byName.get(method)
      if (info === undefined || m === undefined) {
        // the definitions changed since it was stored: it can never run, so it is consumed and reported
        this.admit(env)
        const error = info === undefined ? new UnknownAgentTypeError(type, host.registry.types.map((t) => t.type)) : new UnknownMethodError(type, method)
        host.output.agentError?.(to, method, error.toWire())
        continue
      }
      env.typeIdx = info.index
      env.methodIdx = m.index
      host.deliver(env)
      n++
    }
    return n
  }

  private takeIncarnation (): void {
    this.incarnation = this.store!.newIncarnation()
    if (!(this.incarnation >= 1 && this.incarnation < MAX_INCARNATION)) {
      throw new StorageError(`the store ran out of outbox incarnations (${this.incarnation})`)
    }
    this.sendSeq = 0
  }
}

/** A send identity as a set member: unique across stores. */
function identityName (origin: string, key: number): string {
  return origin + key
}
