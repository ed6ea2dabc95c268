/**
 * Frames on the rings: a fixed binary header written with typed-array stores, the
 * agent id as UTF-8, and the payload — inline when it is a primitive, msgpack otherwise.
 *
 *   offset  message frame                      result frame                  task frame
 *   0       u8  kind (MSG_CAST/CALL/SEND,      u8  FRAME_REPLY/STATE/        u8  FRAME_TASK
 *               MSG_FOLLOW/UNFOLLOW/FORGET)        TASK_DONE
 *   1       u8  payload tag                    u8  payload tag               u8  payload tag
 *   2       u16 id length in bytes             u16 0                         u16 name length
 *   4       u32 placement hash                 u32 call / follow / task id   u32 task id
 *   8       u32 call id / outbox sequence /    u32 1 = ok, 0 = error         u32 0
 *               follow id (MSG_FOLLOW)             ({ code, message, data })
 *   12      u16 type index, u16 method index   —                             —
 *   16      u32 reply-to thread / incarnation  —                             —
 *   20      id bytes                           payload at 20                 task name bytes
 *   align4  payload                                                          input
 *
 * A durable send (MSG_SEND with a non-zero incarnation) and MSG_FORGET carry the send's
 * identity (store.ts, `SendId`): the key in the words a call uses for its reply address —
 * incarnation at 16, sequence at 8 — and 16 more header bytes before the id:
 *
 *   20      u16 sender shard (where the sender's outbox record lives), u16 0
 *   24      u32 origin store id, high half
 *   28      u32 origin store id, low half
 *   32      u32 when this copy was made: wall-clock ms mod 2^32 (`copyStamp`; 0 in a MSG_FORGET)
 *   36      id bytes, then the payload as above
 *
 * The copy's stamp is set where a copy is made — the sender's commit releasing it, or a
 * redelivery from its outbox — and kept by every hop that passes the frame on, so that a
 * cluster can refuse a copy too old to be checked against its receiver's applied records
 * (plugins/cluster/router.ts, `copyMaxAgeMs`; docs/cluster.md, "Effectively-once sends").
 *
 * Result frames share one layout: a call's reply (worker → caller), a followed agent's
 * committed state (worker → follower, FRAME_STATE: its payload is the state's stored
 * msgpack bytes, copied as they are), and an offloaded task's result (main → worker,
 * FRAME_TASK_DONE). A task frame carries `ctx.offload(name, input)` from a worker to the
 * thread that owns the piscina pool (main).
 *
 * Why not one msgpackr envelope per message (the first design): measured on
 * this machine through a ring with copy-out, pack+unpack of `[kind, id, method, payload]`
 * ran 1.4M msgs/s over 10,000 agents and 0.7M over 1,000,000; this header with inline
 * primitives ran 4.2M and 1.2M. Type and method travel as registry indices (see
 * registry.ts), so the receiver decodes one string — the id — per message.
 *
 * Everything that can fail (encoding, size) happens before `begin`, so a refused
 * message leaves nothing in the ring.
 */
import { align4 } from '../../native-free-core/ring/ring-queue.ts'
import type { FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import { Envelope, MSG_FORGET, MSG_SEND } from '../../native-free-core/agent/envelope.ts'
import type { SendId } from '../../native-free-core/storage/store.ts'
import { DecodeError, MessageTooLargeError, messageOf } from '../../native-free-core/errors.ts'
import { encodeValue, unpackr } from './codec.ts'
import type { Utf8Decode } from '../../native-free-core/agent/envelope.ts'

export const FRAME_REPLY = 8
/** A committed state of a followed agent, to the following thread (id = follow id). */
export const FRAME_STATE = 9
/** `ctx.offload(name, input)`, worker → main. */
export const FRAME_TASK = 10
/** The result of a FRAME_TASK, main → worker (id = task id). */
export const FRAME_TASK_DONE = 11
/**
 * Between the main thread and a shard's home thread, in ring order with the messages
 * (id = a token; payload `{ op, ... }`, see src/thread/shard-handover.ts): a fence and
 * its answer, a release of shards and its answer, an adoption.
 */
export const FRAME_CONTROL = 12
/**
 * Set on the kind byte of a message frame the main thread hands to the home thread of a
 * shard that is arriving: it was held for the shard before the thread kept any frame of
 * its own for it, so it runs first (docs/cluster.md).
 */
export const KIND_HELD = 0x40
const kHeaderBytes = 20
/** Bytes before a result frame's payload (a payload written by `resultBytes` starts there). */
export const RESULT_HEADER_BYTES = kHeaderBytes
/** The header of a frame that carries a send identity (durable MSG_SEND, MSG_FORGET). */
const kIdentityHeaderBytes = 36
/** Where a durable send's copy stamp is. */
const kStampAt = 32

/** A durable send as a frame carries it: its identity and, once a copy was made, when (`copyStamp`; 0: make one now). */
export interface SendCopy extends SendId {
  readonly sentAt?: number
}

/** A copy's stamp: wall-clock ms mod 2^32, never 0 (0 means "not stamped"). */
export function copyStamp (nowMs: number = Date.now()): number {
  return (nowMs % 0x100000000) >>> 0 || 1
}

/**
 * How old the durable send in `frame` (its ring bytes) is at `nowMs`, wall-clock ms; -1 when it
 * is not a durable send with a stamp. A stamp from the future (a sender whose clock runs
 * ahead) counts as age 0. Exact for ages below 2^31 ms (24 days).
 */
export function copyAgeMs (frame: Uint8Array, nowMs: number): number {
  if (frame[0] !== MSG_SEND || frame.length < kIdentityHeaderBytes) return -1
  // read in place (no view per frame: this runs for every durable send a router passes on)
  if ((frame[16]! | frame[17]! | frame[18]! | frame[19]!) === 0) return -1 // not durable: no identity
  const stamp = (frame[kStampAt]! | frame[kStampAt + 1]! << 8 | frame[kStampAt + 2]! << 16 | frame[kStampAt + 3]! << 24) >>> 0
  if (stamp === 0) return -1
  const age = (copyStamp(nowMs) - stamp) >>> 0
  return age >= 0x80000000 ? 0 : age
}

/** Offsets into a frame's header that the cluster reads and patches (a frame crosses hosts as its ring bytes). */
export const FRAME_HASH_AT = 4
/** A message's call id / follow id; a result's id is at FRAME_RESULT_ID_AT. */
export const FRAME_CALL_AT = 8
export const FRAME_REPLY_TO_AT = 16
export const FRAME_RESULT_ID_AT = 4
export const FRAME_RESULT_OK_AT = 8

const TAG_UNDEFINED = 0
const TAG_NULL = 1
const TAG_TRUE = 2
const TAG_FALSE = 3
const TAG_INT = 4
const TAG_FLOAT = 5
const TAG_STRING = 6
const TAG_MSGPACK = 7

/** Buffer's internal UTF-8 codecs: what `write`/`toString` call after normalizing their arguments. */
interface FastBuffer extends Buffer {
  utf8Write (s: string, offset: number, length?: number): number
  utf8Slice (start: number, end: number): string
}

// float64 <-> two int32 words without a DataView or an 8-byte-aligned view
const f64 = new Float64Array(1)
const f64words = new Int32Array(f64.buffer)

/**
 * The payload of one frame, classified once: tag, bytes it needs, and the msgpack
 * bytes when it is an object. Reused (one per writer), never escapes.
 */
class PayloadPlan {
  tag = 0
  bytes = 0
  bin: Uint8Array | null = null
  str = ''
  num = 0

  plan (value: unknown, what: string): void {
    this.bin = null
    switch (typeof value) {
      case 'undefined': this.tag = TAG_UNDEFINED; this.bytes = 0; return
      case 'boolean': this.tag = value ? TAG_TRUE : TAG_FALSE; this.bytes = 0; return
      case 'number':
        this.num = value
        if ((value | 0) === value && !Object.is(value, -0)) { this.tag = TAG_INT; this.bytes = 4 } else { this.tag = TAG_FLOAT; this.bytes = 8 }
        return
      case 'string':
        this.tag = TAG_STRING
        this.str = value
        this.bytes = value.length < 4096 ? value.length * 3 : Buffer.byteLength(value)
        return
      default:
        if (value === null) { this.tag = TAG_NULL; this.bytes = 0; return }
        this.tag = TAG_MSGPACK
        this.bin = encodeValue(value, what)
        this.bytes = this.bin.length
    }
  }

  /** A payload already msgpack-encoded (a durable send's, from its outbox record). */
  planEncoded (bin: Uint8Array): void {
    this.tag = TAG_MSGPACK
    this.bin = bin
    this.bytes = bin.length
  }

  write (u8: FastBuffer, i32: Int32Array, p: number): number {
    switch (this.tag) {
      case TAG_INT: i32[p >> 2] = this.num; return p + 4
      case TAG_FLOAT: f64[0] = this.num; i32[p >> 2] = f64words[0]!; i32[(p + 4) >> 2] = f64words[1]!; return p + 8
      case TAG_STRING: return p + u8.utf8Write(this.str, p)
      case TAG_MSGPACK: u8.set(this.bin!, p); return p + this.bin!.length
      default: return p
    }
  }
}

/**
 * An id prefix `quota \x1f type \x1f` as a frame writes it: its UTF-8 `bytes`, and the same
 * bytes as little-endian words (`words`, zero-padded to a multiple of 4). A ref's first
 * frame stores the words — the id starts 4-aligned in every frame — instead of a byte
 * per character: in the activate profile the byte loop was the main thread's largest
 * self time (bench/RESULTS.md, branch mainref).
 */
export interface IdPrefixBytes {
  readonly bytes: Uint8Array
  readonly words: Int32Array
}

/** `bytes` with the words a frame writer stores them as. */
export function idPrefixBytes (bytes: Uint8Array): IdPrefixBytes {
  const words = new Int32Array((bytes.length + 3) >> 2)
  new Uint8Array(words.buffer).set(bytes)
  return { bytes, words }
}

/**
 * Write `s` as UTF-8 at `at`, returning the bytes written: short ASCII text by a loop, the
 * rest by Buffer's encoder. At a 4-aligned `at`, four characters per word store (zeros
 * after the last one up to the next multiple of 4: a frame's id is followed by padding
 * to 4, which these bytes are part of).
 */
function writeText (u8: FastBuffer, i32: Int32Array, s: string, at: number): number {
  const n = s.length
  if (n <= 32) {
    if ((at & 3) === 0) {
      let w = at >> 2
      let i = 0
      let high = 0
      for (; i + 4 <= n; i += 4) {
        const a = s.charCodeAt(i)
        const b = s.charCodeAt(i + 1)
        const c = s.charCodeAt(i + 2)
        const d = s.charCodeAt(i + 3)
        high |= a | b | c | d
        i32[w++] = a | b << 8 | c << 16 | d << 24
      }
      if (i < n) {
        let word = 0
        for (let shift = 0; i < n; i++, shift += 8) {
          const c = s.charCodeAt(i)
          high |= c
          word |= c << shift
        }
        i32[w] = word
      }
      if (high < 0x80) return n
    } else {
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        u8[at + i] = c
      }
      if (i === n) return n
    }
  }
  return u8.utf8Write(s, at)
}

export class FrameWriter {
  readonly maxMessageBytes: number
  private readonly plan = new PayloadPlan()
  private origin = ''
  private readonly originWordsCache = new Int32Array(2)

  constructor (maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes
  }

  /**
   * Encode a message for an agent into `ring`. Throws EncodeError/MessageTooLargeError,
   * writing nothing. `idBytes`, when the caller has them (a ref used more than once), are
   * copied instead of encoding `id` again (19 vs 65 ns for a 25-byte id). A durable send
   * or a MSG_FORGET passes its identity as `durable` (`replyTo` and `callId` unused).
   */
  message (ring: FrameSink, kind: number, id: string, idBytes: Uint8Array | null, hash: number, typeIdx: number, methodIdx: number,
    payload: unknown, replyTo: number, callId: number, durable: SendCopy | null = null, encoded: Uint8Array | null = null): void {
    this.write(ring, kind, id, idBytes, null, null, hash, typeIdx, methodIdx, payload, replyTo, callId, durable, encoded)
  }

  /**
   * `message` for an id given as the UTF-8 bytes of its `quota \x1f type \x1f` prefix and
   * its key: the bytes are copied and the key written after them, so that a one-shot ref
   * never builds (and flattens) the id string.
   */
  messageTo (ring: FrameSink, kind: number, prefix: IdPrefixBytes, key: string, hash: number, typeIdx: number, methodIdx: number,
    payload: unknown, replyTo: number, callId: number): void {
    this.write(ring, kind, '', prefix.bytes, prefix.words, key, hash, typeIdx, methodIdx, payload, replyTo, callId, null, null)
  }

  /** The id is `id`, or `idBytes` whole, or (`key` not null) `idBytes` (as `idWords`) then the key. */
  private write (ring: FrameSink, kind: number, id: string, idBytes: Uint8Array | null, idWords: Int32Array | null, key: string | null, hash: number,
    typeIdx: number, methodIdx: number, payload: unknown, replyTo: number, callId: number, durable: SendCopy | null, encoded: Uint8Array | null): void {
    const plan = this.plan
    if (encoded !== null) plan.planEncoded(encoded)
    else plan.plan(payload, 'payload')
    const header = durable === null ? kHeaderBytes : kIdentityHeaderBytes
    let idMax = idBytes === null ? id.length * 3 : key === null ? idBytes.length : idBytes.length + key.length * 3
    let max = header + idMax + 3 + plan.bytes
    if (max > this.maxMessageBytes) {
      idMax = idBytes === null ? Buffer.byteLength(id) : key === null ? idBytes.length : idBytes.length + Buffer.byteLength(key)
      if (plan.tag === TAG_STRING) plan.bytes = Buffer.byteLength(plan.str)
      max = header + idMax + 3 + plan.bytes
      if (max - 3 > this.maxMessageBytes) {
        throw new MessageTooLargeError(`message of ${max - 3} bytes is over maxMessageBytes (${this.maxMessageBytes})`, { bytes: max - 3, maxMessageBytes: this.maxMessageBytes })
      }
    }
    const o = ring.begin(max)
    const t = ring.target
    const u8 = t.u8 as FastBuffer
    const i32 = t.i32
    let idLen: number
    if (idWords !== null) {
      // the id starts 4-aligned (o and both headers are): the prefix as words, the key after it
      const w = (o + header) >> 2
      for (let i = 0; i < idWords.length; i++) i32[w + i] = idWords[i]!
      idLen = idBytes!.length
      idLen += writeText(u8, i32, key!, o + header + idLen)
    } else if (idBytes !== null) {
      u8.set(idBytes, o + header)
      idLen = idBytes.length
    } else {
      idLen = u8.utf8Write(id, o + header)
    }
    // kind, tag and the id's length as one word, as are the type and method indexes (little-endian, as every frame view)
    i32[o >> 2] = kind | plan.tag << 8 | idLen << 16
    i32[(o + 4) >> 2] = hash
    i32[(o + 12) >> 2] = (typeIdx & 0xffff) | methodIdx << 16
    if (durable === null) {
      i32[(o + 8) >> 2] = callId
      i32[(o + 16) >> 2] = replyTo
    } else {
      t.i32[(o + 8) >> 2] = durable.key >>> 0
      t.i32[(o + 16) >> 2] = Math.floor(durable.key / 0x100000000)
      t.u16[(o + 20) >> 1] = durable.senderShard
      t.u16[(o + 22) >> 1] = 0
      const origin = this.originWords(durable.origin)
      t.i32[(o + 24) >> 2] = origin[0]!
      t.i32[(o + 28) >> 2] = origin[1]!
      t.i32[(o + kStampAt) >> 2] = kind === MSG_SEND ? (durable.sentAt !== undefined && durable.sentAt !== 0 ? durable.sentAt : copyStamp()) : 0
    }
    const end = plan.write(u8, t.i32, align4(o + header + idLen))
    ring.end(end - o)
  }

  /**
   * An agent's `ctx.send` (MSG_SEND); a durable one with its identity (`durable`), which
   * is packed here and unpacked by `FrameReader.message`, nowhere else. `payloadBytes`:
   * the payload already encoded (a durable send's), written as they are. Throws
   * EncodeError/MessageTooLargeError, writing nothing.
   */
  send (ring: FrameSink, id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown, durable: SendCopy | null,
    payloadBytes: Uint8Array | null = null): void {
    this.message(ring, MSG_SEND, id, null, hash, typeIdx, methodIdx, payload, 0, 0, durable, payloadBytes)
  }

  /** Dedup mode: MSG_FORGET, for agent `id` to remove its applied record of the send `(origin, key)`. */
  forget (ring: FrameSink, id: string, hash: number, origin: string, key: number): void {
    this.message(ring, MSG_FORGET, id, null, hash, 0, 0, undefined, 0, 0, { senderShard: 0, origin, key })
  }

  /** A store id as two u32 words, the last one cached: on one host nearly every send has the same origin. */
  private originWords (origin: string): Int32Array {
    if (origin !== this.origin) {
      this.origin = origin
      this.originWordsCache[0] = parseInt(origin.slice(0, 8), 16)
      this.originWordsCache[1] = parseInt(origin.slice(8, 16), 16)
    }
    return this.originWordsCache
  }

  /** Encode a reply. A value that cannot be encoded becomes an EncodeError reply. */
  reply (ring: FrameSink, callId: number, ok: boolean, value: unknown): void {
    this.result(ring, FRAME_REPLY, callId, ok, value)
  }

  /**
   * A result frame (reply, follow state, task result) of `kind`. A value that cannot be
   * encoded, or is too large, becomes an error result.
   */
  result (ring: FrameSink, kind: number, id: number, ok: boolean, value: unknown): void {
    const plan = this.plan
    try {
      plan.plan(value, ok ? 'the reply' : 'the error')
      if (kHeaderBytes + plan.bytes > this.maxMessageBytes) {
        if (plan.tag === TAG_STRING) plan.bytes = Buffer.byteLength(plan.str)
        if (kHeaderBytes + plan.bytes > this.maxMessageBytes) {
          throw new MessageTooLargeError(`reply of ${kHeaderBytes + plan.bytes} bytes is over maxMessageBytes (${this.maxMessageBytes})`, { bytes: kHeaderBytes + plan.bytes, maxMessageBytes: this.maxMessageBytes })
        }
      }
    } catch (err) {
      ok = false
      plan.plan((err as { toWire?: () => unknown }).toWire?.() ?? { code: 'SHOAL_ERR_ENCODE', message: messageOf(err) }, 'the error')
    }
    const o = ring.begin(kHeaderBytes + plan.bytes)
    const t = ring.target
    const u8 = t.u8 as FastBuffer
    u8[o] = kind
    u8[o + 1] = plan.tag
    t.u16[(o + 2) >> 1] = 0
    t.i32[(o + 4) >> 2] = id
    t.i32[(o + 8) >> 2] = ok ? 1 : 0
    const end = plan.write(u8, t.i32, o + kHeaderBytes)
    ring.end(end - o)
  }

  /**
   * A successful result whose value is already msgpack (a committed state's stored bytes):
   * copied, not re-encoded. Throws MessageTooLargeError, writing nothing.
   */
  resultBytes (ring: FrameSink, kind: number, id: number, bytes: Uint8Array): void {
    if (kHeaderBytes + bytes.length > this.maxMessageBytes) {
      throw new MessageTooLargeError(`state of ${bytes.length} bytes is over maxMessageBytes (${this.maxMessageBytes})`, { bytes: bytes.length, maxMessageBytes: this.maxMessageBytes })
    }
    const o = ring.begin(kHeaderBytes + bytes.length)
    const t = ring.target
    t.u8[o] = kind
    t.u8[o + 1] = TAG_MSGPACK
    t.u16[(o + 2) >> 1] = 0
    t.i32[(o + 4) >> 2] = id
    t.i32[(o + 8) >> 2] = 1
    t.u8.set(bytes, o + kHeaderBytes)
    ring.end(kHeaderBytes + bytes.length)
  }

  /** `ctx.offload(name, input)` for the pool's thread. Throws EncodeError/MessageTooLargeError, writing nothing. */
  task (ring: FrameSink, taskId: number, name: string, input: unknown): void {
    const plan = this.plan
    plan.plan(input, 'the offload input')
    const nameMax = Buffer.byteLength(name)
    if (plan.tag === TAG_STRING) plan.bytes = Buffer.byteLength(plan.str)
    const max = kHeaderBytes + nameMax + 3 + plan.bytes
    if (max - 3 > this.maxMessageBytes) {
      throw new MessageTooLargeError(`offload input of ${max - 3} bytes is over maxMessageBytes (${this.maxMessageBytes})`, { bytes: max - 3, maxMessageBytes: this.maxMessageBytes })
    }
    const o = ring.begin(max)
    const t = ring.target
    const u8 = t.u8 as FastBuffer
    u8[o] = FRAME_TASK
    u8[o + 1] = plan.tag
    const nameLen = u8.utf8Write(name, o + kHeaderBytes)
    t.u16[(o + 2) >> 1] = nameLen
    t.i32[(o + 4) >> 2] = taskId
    t.i32[(o + 8) >> 2] = 0
    const end = plan.write(u8, t.i32, align4(o + kHeaderBytes + nameLen))
    ring.end(end - o)
  }
}

const utf8Slice = Buffer.prototype.utf8Slice

/**
 * UTF-8 bytes as a string with Node's `utf8Slice` (any Uint8Array, not only a Buffer):
 * ≈ 2× TextDecoder's speed on an id's few dozen bytes. The runtimes of Node threads
 * decode their ids with it (ShardRuntime's `decodeUtf8`).
 */
export const nodeUtf8: Utf8Decode = (bytes, at, end) => utf8Slice.call(bytes, at, end)

/**
 * Decodes frames out of a thread's private scratch buffer (filled by RingConsumer.copyOut).
 *
 * A message's id is not decoded here: the envelope keeps its bytes (`setIdBytes`), the
 * runtime finds a resident agent by them (AgentTable.getBytes, no string), and the id
 * string is made only when something reads `env.id` — an activation, an error, a
 * forward. (A cache of decoded ids and then a lookup of the resident cell's own string
 * did this job while cells held id strings; bench/RESULTS.md, issue 13.)
 */
export class FrameReader {
  readonly scratch: FastBuffer
  readonly i32: Int32Array
  private readonly u16: Uint16Array
  /** The flyweight every message frame decodes into. */
  readonly env = new Envelope()
  replyCallId = 0
  replyOk = false
  taskName = ''
  private originHi = 0
  private originLo = 0
  private originText = ''

  constructor (capacity: number) {
    this.scratch = Buffer.from(new ArrayBuffer(capacity)) as FastBuffer
    this.i32 = new Int32Array(this.scratch.buffer, 0, capacity / 4)
    this.u16 = new Uint16Array(this.scratch.buffer, 0, capacity / 2)
  }

  kind (o: number): number {
    return this.scratch[o]!
  }

  /** Decode the message frame at `o` (length `len`) into `this.env`. */
  message (o: number, len: number): Envelope {
    const s = this.scratch
    const env = this.env
    const idLen = this.u16[(o + 2) >> 1]!
    env.kind = s[o]!
    env.hash = this.i32[(o + 4) >> 2]! >>> 0
    env.callId = this.i32[(o + 8) >> 2]!
    env.typeIdx = this.u16[(o + 12) >> 1]!
    env.methodIdx = this.u16[(o + 14) >> 1]!
    const word16 = this.i32[(o + 16) >> 2]!
    let header = kHeaderBytes
    if (env.kind === MSG_SEND || env.kind === MSG_FORGET) {
      if (word16 === 0) {
        env.outboxKey = 0
        env.origin = ''
        env.senderShard = 0
        env.sentAt = 0
      } else {
        env.outboxKey = word16 * 0x100000000 + (env.callId >>> 0)
        env.senderShard = this.u16[(o + 20) >> 1]!
        env.origin = this.origin(this.i32[(o + 24) >> 2]!, this.i32[(o + 28) >> 2]!)
        env.sentAt = this.i32[(o + kStampAt) >> 2]! >>> 0
        header = kIdentityHeaderBytes
      }
      env.replyTo = 0
      env.callId = 0
    } else {
      env.outboxKey = 0
      env.origin = ''
      env.sentAt = 0
      env.replyTo = word16
    }
    // the id stays bytes until read: a message to a resident agent is looked up by them (ShardRuntime.lookup)
    env.setIdBytes(s, o + header, idLen, this.decodeId)
    env.payload = this.payload(s[o + 1]!, align4(o + header + idLen), o + len)
    return env
  }

  /** The store id of two u32 words; the last one cached, as in FrameWriter. */
  private origin (hi: number, lo: number): string {
    if (hi !== this.originHi || lo !== this.originLo || this.originText === '') {
      this.originHi = hi
      this.originLo = lo
      this.originText = (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0')
    }
    return this.originText
  }

  private readonly decodeId: Utf8Decode = (_bytes, at, end) => this.scratch.utf8Slice(at, end)

  /** Decode a result frame (reply, state, task result): sets `replyCallId`/`replyOk`, returns the value. */
  reply (o: number, len: number): unknown {
    this.replyCallId = this.i32[(o + 4) >> 2]!
    this.replyOk = this.i32[(o + 8) >> 2]! === 1
    return this.payload(this.scratch[o + 1]!, o + kHeaderBytes, o + len)
  }

  /** Decode a task frame: sets `replyCallId` (the task id) and `taskName`, returns the input. */
  task (o: number, len: number): unknown {
    const nameLen = this.u16[(o + 2) >> 1]!
    this.replyCallId = this.i32[(o + 4) >> 2]!
    this.taskName = this.scratch.utf8Slice(o + kHeaderBytes, o + kHeaderBytes + nameLen)
    return this.payload(this.scratch[o + 1]!, align4(o + kHeaderBytes + nameLen), o + len)
  }

  private payload (tag: number, p: number, end: number): unknown {
    switch (tag) {
      case TAG_UNDEFINED: return undefined
      case TAG_NULL: return null
      case TAG_TRUE: return true
      case TAG_FALSE: return false
      case TAG_INT: return this.i32[p >> 2]
      case TAG_FLOAT: f64words[0] = this.i32[p >> 2]!; f64words[1] = this.i32[(p + 4) >> 2]!; return f64[0]
      case TAG_STRING: return this.scratch.utf8Slice(p, end)
      case TAG_MSGPACK:
        try {
          return unpackr.unpack(this.scratch, { start: p, end })
        } catch (err) {
          throw new DecodeError(`a frame payload does not decode: ${messageOf(err)}`)
        }
      default: throw new DecodeError(`unknown payload tag ${tag}`)
    }
  }
}
