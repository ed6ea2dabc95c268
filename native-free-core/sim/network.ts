/**
 * The messages in flight in a simulated world, and which of them may be delivered next.
 *
 *   channel "account/a → account/b":  [#7, #9, #12]   FIFO: only #7 is deliverable
 *   channel "client#0 → account/a":   [#1]
 *   free:                             #8 (reordered), #10 (delayed until tick 3)
 *
 * Order. A host keeps the sends from one agent to another in order (one ring per pair
 * of threads, an ordered overflow list), and so does the simulator: each (sender,
 * receiver) pair is a FIFO channel and only its head is deliverable. Everything else
 * interleaves freely — channels against each other, and the clock. The scenario's
 * messages each come from their own client (concurrent), unless they name the same
 * `client`, which keeps them in order. The reorder and delay faults take a send out of
 * its channel ("free"), where any later send may overtake it.
 *
 * Deliverable messages are listed in creation order (`seq`), so choice 0 is the oldest.
 */
import { decodeSimValue } from './codec.ts'
import { Hash2, valueHash } from './state-hash.ts'

export class SimMessage {
  /** Creation order, and the message's number in traces (#seq). */
  readonly seq: number
  /** The sending agent's id, or null for a scenario message (a client outside the host). */
  readonly from: string | null
  /** The sender as traces name it: `type/key`, or the client (`client#0`, `client:name`). */
  readonly sender: string
  readonly channel: string
  readonly to: string
  readonly hash: number
  readonly typeIdx: number
  readonly methodIdx: number
  readonly method: string
  /** The payload as the host would carry it: encoded once, decoded afresh at each delivery. */
  readonly bytes: Uint8Array
  /** > 0: the scenario message `callId - 1`, a call whose reply the world records. */
  readonly callId: number
  /** A durable agent's send: its outbox record's key (0: none), which the receiver claims to apply it once. */
  readonly outboxKey: number
  /** Out of its channel's FIFO (reordered or delayed). Set before it is queued, never after. */
  free = false
  /** Not deliverable before this tick (delay). Set before it is queued, never after. */
  notBefore = 0
  private content: Hash2 | null = null

  /** Another message with the same content (a duplicate). */
  copy (seq: number): SimMessage {
    const m = new SimMessage(seq, this.from, this.sender, this.channel, this.to, this.hash, this.typeIdx, this.methodIdx, this.method, this.bytes, this.callId, this.outboxKey)
    m.free = this.free
    m.notBefore = this.notBefore
    return m
  }

  constructor (seq: number, from: string | null, sender: string, channel: string, to: string, hash: number, typeIdx: number, methodIdx: number, method: string, bytes: Uint8Array, callId: number, outboxKey: number) {
    this.seq = seq
    this.from = from
    this.sender = sender
    this.channel = channel
    this.to = to
    this.hash = hash
    this.typeIdx = typeIdx
    this.methodIdx = methodIdx
    this.method = method
    this.bytes = bytes
    this.callId = callId
    this.outboxKey = outboxKey
  }

  /**
   * Everything that decides what delivering it does — not `seq`, which only names it,
   * nor the outbox key, which numbers sends in the order they happened (Network.hash
   * labels keys canonically instead).
   */
  contentHash (): Hash2 {
    return (this.content ??= Hash2.ofString(this.channel).chainString(this.to).chain(this.methodIdx).chain(this.callId).chainHash(valueHash(decodeSimValue(this.bytes))))
  }
}

export class Network {
  private readonly channels = new Map<string, SimMessage[]>()
  private free: SimMessage[] = []
  private count = 0

  /** A copy that shares the (immutable once queued) messages. */
  clone (): Network {
    const n = new Network()
    for (const [k, q] of this.channels) n.channels.set(k, q.slice())
    n.free = this.free.slice()
    n.count = this.count
    return n
  }

  get size (): number {
    return this.count
  }

  /** Queue at the back of its channel (or among the free messages). */
  add (m: SimMessage): void {
    this.count++
    if (m.free) {
      this.free.push(m)
      return
    }
    const q = this.channels.get(m.channel)
    if (q === undefined) this.channels.set(m.channel, [m])
    else q.push(m)
  }

  /** Queue at the front of its channel: a redelivery goes before the sends that followed it. */
  addFront (m: SimMessage): void {
    if (m.free) {
      this.add(m)
      return
    }
    this.count++
    const q = this.channels.get(m.channel)
    if (q === undefined) this.channels.set(m.channel, [m])
    else q.unshift(m)
  }

  remove (m: SimMessage): void {
    if (m.free) {
      const i = this.free.indexOf(m)
      if (i < 0) throw new Error(`message #${m.seq} is not in flight`)
      this.free.splice(i, 1)
    } else {
      const q = this.channels.get(m.channel)
      if (q === undefined || q[0] !== m) throw new Error(`message #${m.seq} is not the head of its channel`)
      q.shift()
      if (q.length === 0) this.channels.delete(m.channel)
    }
    this.count--
  }

  /** The messages that may be delivered at `tick`, oldest first. */
  deliverable (tick: number): SimMessage[] {
    const out: SimMessage[] = []
    for (const q of this.channels.values()) out.push(q[0]!)
    for (const m of this.free) if (m.notBefore <= tick) out.push(m)
    return out.sort(bySeq)
  }

  /** The earliest tick at which a delayed message becomes deliverable, or -1. */
  nextRelease (tick: number): number {
    let next = -1
    for (const m of this.free) if (m.notBefore > tick && (next < 0 || m.notBefore < next)) next = m.notBefore
    return next
  }

  /** Every message in flight, oldest first. */
  all (): SimMessage[] {
    const out: SimMessage[] = [...this.free]
    for (const q of this.channels.values()) out.push(...q)
    return out.sort(bySeq)
  }

  /**
   * Order-free over channels, ordered within each channel. Outbox keys get labels 1, 2,
   * ... in a canonical order — channels by name, then free messages by content — so
   * that two messages carrying the same key (a duplicate) are told apart from two
   * carrying different keys, whatever numbers the runtime gave them. `labels` receives
   * them, for the store's outbox (SimStore.hash).
   */
  hash (labels: Map<number, number>): Hash2 {
    const label = (m: SimMessage): number => {
      if (m.outboxKey === 0) return 0
      let l = labels.get(m.outboxKey)
      if (l === undefined) labels.set(m.outboxKey, l = labels.size + 1)
      return l
    }
    const sum = new Hash2(0, 0)
    const names = [...this.channels.keys()].sort()
    for (const channel of names) {
      const h = Hash2.ofString(channel)
      for (const m of this.channels.get(channel)!) h.chainHash(m.contentHash()).chain(label(m))
      sum.add(h)
    }
    const free = this.free.slice().sort((a, b) => a.contentHash().value() - b.contentHash().value() || a.notBefore - b.notBefore)
    for (const m of free) sum.add(new Hash2(0x3c6ef372, 0xa54ff53a).chainHash(m.contentHash()).chain(m.notBefore).chain(label(m)))
    return sum
  }
}

function bySeq (a: SimMessage, b: SimMessage): number {
  return a.seq - b.seq
}
