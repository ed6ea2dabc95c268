/**
 * A decoded message for an agent. Transports decode each frame into one reused
 * instance per thread (a flyweight: no allocation per message); the runtime clones it
 * only when the message must wait in a busy agent's mailbox.
 *
 * On the wire (src/thread/frame-codec.ts) and here, types and methods are registry indices.
 */

/** Fire-and-forget from outside the host's agents (`ref.cast`). */
import { keyOf, kIdSeparator } from './agent-id.ts'

export const MSG_CAST = 1
/** Expects a reply to (`replyTo` thread, `callId`). */
export const MSG_CALL = 2
/** From another agent's outbox (`ctx.send`). */
export const MSG_SEND = 3
/**
 * Subscribe `(replyTo, callId)` to the agent's committed states (`ref.follow()`); the
 * current state is sent at once. Not a message to the agent: no handler, no rate limit,
 * no activation.
 */
export const MSG_FOLLOW = 4
/** End the subscription `(replyTo, callId)`. */
export const MSG_UNFOLLOW = 5
/** The agent's `ctx.timeout` fired: runs its definition's `timeout`. Made by the runtime, never on the wire. */
export const MSG_TIMER = 6
/** One of the agent's durable reminders fired: runs `reminder(state, name)`, the name as payload. Never on the wire. */
export const MSG_REMINDER = 7
/**
 * Dedup mode (runtime/durable-outbox.ts): forget that the agent applied the durable send
 * `(origin, outboxKey)`. Addressed to the receiving agent, so it travels the way copies
 * of the send do and is handled after those that came before it (behind a busy agent's
 * mailbox too). Not a message to the agent: no handler, no activation. (Frames share the
 * kind byte: 8–12 are result, task and control frames, src/thread/frame-codec.ts.)
 */
export const MSG_FORGET = 13

/** Casts, calls and sends are messages to the agent; timer and reminder turns are not (they do not restart its idle count). */
export function isMessage (kind: number): boolean {
  return kind <= MSG_SEND
}

const kSeparatorByte = kIdSeparator.charCodeAt(0)

/** UTF-8 bytes `bytes[at, end)` as a string. */
export type Utf8Decode = (bytes: Uint8Array, at: number, end: number) => string

export class Envelope {
  kind = 0
  /** The id as a string; null while it is only bytes (`idBytes`), until `id` is read. */
  private idText: string | null = ''
  /**
   * A frame's id bytes, `idBytes[idAt, idAt + idLen)` (null: the id came as a string). A
   * message to a resident agent is looked up by these bytes (AgentTable.getBytes) and
   * its id never decoded: the string is made only when something reads `id`. Valid while
   * the frame is being delivered (the reader's scratch).
   */
  idBytes: Uint8Array | null = null
  idAt = 0
  idLen = 0
  private idDecode: Utf8Decode | null = null
  hash = 0
  typeIdx = 0
  methodIdx = 0
  payload: unknown = undefined
  /** Thread that waits for the reply (calls only). */
  replyTo = 0
  callId = 0
  /**
   * A durable agent's send (and MSG_FORGET): its identity (store.ts, `SendId`), so the
   * receiver applies it once — the key (0: not durable), the store that numbered it, and
   * the sender's shard, where its outbox record lives.
   */
  outboxKey = 0
  origin = ''
  senderShard = 0
  /**
   * A durable send's copy: when it was made (wall-clock ms mod 2^32; 0: not yet put in a
   * frame, stamped when it is). A message passed on keeps it (src/thread/frame-codec.ts).
   */
  sentAt = 0

  /** The agent's id (`quota \x1f type \x1f key`), decoded from the frame's bytes on first read. */
  get id (): string {
    return this.idText ?? (this.idText = this.idDecode!(this.idBytes!, this.idAt, this.idAt + this.idLen))
  }

  set id (id: string) {
    this.idText = id
    this.idBytes = null
  }

  /**
   * The key part of the id (after `quota \x1f type \x1f`): from the bytes when the id is
   * still bytes, without making the whole id's string.
   */
  key (): string {
    if (this.idText !== null) return keyOf(this.idText)
    const b = this.idBytes!
    const end = this.idAt + this.idLen
    let i = this.idAt
    while (b[i] !== kSeparatorByte) i++
    i++
    while (b[i] !== kSeparatorByte) i++
    return this.idDecode!(b, i + 1, end)
  }

  /** The id as bytes `bytes[at, at + len)`, decoded by `decode` when `id` is read. */
  setIdBytes (bytes: Uint8Array, at: number, len: number, decode: Utf8Decode): void {
    this.idBytes = bytes
    this.idAt = at
    this.idLen = len
    this.idDecode = decode
    this.idText = null
  }

  clone (): Envelope {
    const e = new Envelope()
    e.kind = this.kind
    e.id = this.id // decoded: the clone outlives the frame's bytes
    e.hash = this.hash
    e.typeIdx = this.typeIdx
    e.methodIdx = this.methodIdx
    e.payload = this.payload
    e.replyTo = this.replyTo
    e.callId = this.callId
    e.outboxKey = this.outboxKey
    e.origin = this.origin
    e.senderShard = this.senderShard
    e.sentAt = this.sentAt
    return e
  }
}
