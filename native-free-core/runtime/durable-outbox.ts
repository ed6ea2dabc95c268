/**
 * Effectively-once sends (with a durable store). A durable agent's `ctx.send` is an
 * outbox record written in its turn's batch and released after that batch commits. The
 * receiver applies it only while the record still exists, and removes the record in the
 * batch of the turn that applied it — one transaction, so "applied" and "removed" are
 * the same fact. A crash before that commit leaves the record, which is delivered again
 * (`redeliver`); a copy arriving after it finds no record and is dropped. Keys are
 * incarnation × 2^32 + sequence: the sender's thread takes a fresh incarnation from the
 * store whenever it starts, so a key is never reused.
 *
 * This is the outbox's bookkeeping on one thread: the keys it hands out as a sender, and
 * the keys it has applied as a receiver and not yet committed as removed. The commit
 * pipeline asks it for keys and removals when it builds a batch.
 */
import { DecodeError, MessageTooLargeError, StorageError, UnknownAgentTypeError, UnknownMethodError, messageOf } from '../errors.ts'
import { Envelope, MSG_SEND } from '../agent/envelope.ts'
import type { AgentRegistry } from '../agent/registry.ts'
import { hashId } from '../placement/hash.ts'
import { MAX_INCARNATION } from '../storage/store.ts'
import type { Store } from '../storage/store.ts'
import type { RuntimeOutput, ValueCodec } from './ports.ts'
import type { OutboundSend } from './turn-context.ts'

/** What redelivery needs from the runtime. */
export interface OutboxHost {
  readonly registry: AgentRegistry
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  deliver (env: Envelope): void
  /** Encode for the store, throwing EncodeError that names `what` (and `key` after it). */
  encodeStored (value: unknown, what: string, key?: string): Uint8Array
}

export class DurableOutbox {
  /** Sends of durable agents are stored: the store is durable. */
  readonly durable: boolean
  private readonly store: Store | null
  private readonly host: OutboxHost
  private readonly maxMessageBytes: number
  /** Outbox keys applied in the open batch, removed from the store by its commit. */
  private consumed: number[] = []
  /** Outbox keys applied and not yet committed as removed (open batch and commits in flight). */
  private readonly claimed = new Set<number>()
  private incarnation = 0
  private sendSeq = 0

  constructor (host: OutboxHost, store: Store | null, maxMessageBytes: number) {
    this.host = host
    this.store = store
    this.maxMessageBytes = maxMessageBytes
    this.durable = store?.durable === true
    // taken now, at the thread's start, not in the middle of building a batch
    if (this.durable) this.takeIncarnation()
  }

  /** Keys applied in the open batch. */
  get hasConsumed (): boolean {
    return this.consumed.length !== 0
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
   * Take a durable send for the open batch, unless it was applied already: its record
   * is gone, or a turn of this thread applied it and the removal has not committed yet.
   */
  claim (key: number): boolean {
    if (this.claimed.has(key) || !this.store!.hasOutbox(key)) return false
    this.claimed.add(key)
    this.consumed.push(key)
    return true
  }

  /** The open batch's removals (null: none); the batch that commits them now owns them. */
  takeConsumed (): number[] | null {
    if (this.consumed.length === 0) return null
    const keys = this.consumed
    this.consumed = []
    return keys
  }

  /** A batch's removals have committed, or failed: either way they are no longer claimed here. */
  settled (keys: readonly number[]): void {
    for (const k of keys) this.claimed.delete(k)
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
  redeliver (records: Iterable<readonly [key: number, bytes: Uint8Array]>, owns: (hash: number) => boolean): number {
    const host = this.host
    let n = 0
    for (const [key, bytes] of records) {
      if (this.claimed.has(key)) continue
      let to: string, type: string, method: string, payload: unknown
      try {
        [, to, type, method, payload] = host.codec.decode(bytes) as [string, string, string, string, unknown]
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
      env.outboxKey = key
      const info = host.registry.get(type)
      const m = info?.byName.get(method)
      if (info === undefined || m === undefined) {
        // the definitions changed since it was stored: it can never run, so it is consumed and reported
        this.claim(key)
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
