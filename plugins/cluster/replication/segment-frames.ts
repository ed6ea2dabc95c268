/**
 * The binary payloads of replication's two hot frames (plugins/cluster/wire.ts): every
 * commit sends a segment per shard it touched, nearly one per command, so these carry no
 * msgpack — a frame is a header and fixed-size records (big-endian), written straight
 * into one growable buffer per peer and copied once into the link's batch.
 *
 *   CL_REPL      u32 owner nonce, then per segment:
 *                u16 shard, u16 generation, u32 owner's shard epoch, u32 seq, u32 length, journal segment
 *   CL_REPL_ACK  per stream: u16 shard, u16 generation, u32 owner nonce, u32 epoch, u32 seq (applied up to seq)
 *
 * A stream is the owner process's nonce, the shard's epoch and a generation (0 unless the
 * owner started the shard's stream over: a commit whose journal went out failed locally);
 * its id is `streamId`. Readers
 * check the whole payload before handing out anything: a malformed frame is refused as a
 * whole (the caller counts it), never half-applied, never thrown at the link.
 */
import { grownBytes } from '../../../native-free-core/storage/grow-bytes.ts'

const kReplHeader = 4
const kSegHeader = 16
export const ACK_BYTES = 16

/** A stream's id as the other replication frames (msgpack) carry it. */
export function streamId (nonce: number, epoch: number, gen = 0): string {
  return gen === 0 ? `${nonce.toString(36)}.${epoch}` : `${nonce.toString(36)}.${epoch}.${gen}`
}

/** Bytes of one frame kind for one peer, cut into payloads of at most `maxPayload` bytes. */
class Payloads {
  protected bytes = new Uint8Array(4096)
  protected view = new DataView(this.bytes.buffer)
  protected at = 0
  /** Where the frame being filled starts. */
  protected start = 0
  /** Ends of the frames filled before it. */
  private readonly cuts: number[] = []
  private readonly maxPayload: number
  private readonly header: number

  constructor (maxPayload: number, header: number) {
    this.maxPayload = maxPayload
    this.header = header
  }

  get empty (): boolean {
    return this.at === 0
  }

  /** Room for a record of `n` bytes: in this frame, or a new one (a record alone in a frame always goes). */
  protected room (n: number): void {
    if (this.at !== 0 && this.at + n - this.start > this.maxPayload && this.at - this.start > this.header) {
      this.cuts.push(this.at)
      this.start = this.at
    }
    if (this.at === this.start) n += this.header
    if (this.at + n > this.bytes.length) {
      this.bytes = grownBytes(this.bytes, this.at, this.at + n)
      this.view = new DataView(this.bytes.buffer)
    }
    if (this.at === this.start) {
      this.writeHeader(this.at)
      this.at += this.header
    }
  }

  protected writeHeader (_at: number): void {}

  /** Each frame's payload (views, valid until the next write), then empty. */
  take (each: (payload: Uint8Array) => void): void {
    try {
      let from = 0
      for (const cut of this.cuts) {
        each(this.bytes.subarray(from, cut))
        from = cut
      }
      if (this.at > from) each(this.bytes.subarray(from, this.at))
    } finally {
      this.cuts.length = 0
      this.at = 0
      this.start = 0
    }
  }
}

/** CL_REPL payloads for one replica host. */
export class SegmentWriter extends Payloads {
  private readonly nonce: number

  constructor (maxPayload: number, nonce: number) {
    super(maxPayload, kReplHeader)
    this.nonce = nonce
  }

  protected override writeHeader (at: number): void {
    this.view.setUint32(at, this.nonce)
  }

  add (shard: number, epoch: number, seq: number, segment: Uint8Array, gen = 0): void {
    this.addRange(shard, epoch, seq, segment, 0, segment.length, gen)
  }

  /** `add` of the segment `src[start..end]` (no view made for it: a short one is copied byte by byte). */
  addRange (shard: number, epoch: number, seq: number, src: Uint8Array, start: number, end: number, gen = 0): void {
    const length = end - start
    this.room(kSegHeader + length)
    const v = this.view
    const at = this.at
    v.setUint16(at, shard)
    v.setUint16(at + 2, gen)
    v.setUint32(at + 4, epoch)
    v.setUint32(at + 8, seq)
    v.setUint32(at + 12, length)
    const bytes = this.bytes
    const to = at + kSegHeader
    if (length <= kCopyLoop) {
      for (let i = 0; i < length; i++) bytes[to + i] = src[start + i]!
    } else {
      bytes.set(src.subarray(start, end), to)
    }
    this.at = to + length
  }
}

/** Segments up to this long are copied by a loop rather than a view and `set`. */
const kCopyLoop = 96

/** CL_REPL_ACK payloads for one owner host. */
export class AckWriter extends Payloads {
  constructor (maxPayload: number) {
    super(maxPayload, 0)
  }

  add (shard: number, nonce: number, epoch: number, seq: number, gen = 0): void {
    this.room(ACK_BYTES)
    const v = this.view
    const at = this.at
    v.setUint16(at, shard)
    v.setUint16(at + 2, gen)
    v.setUint32(at + 4, nonce)
    v.setUint32(at + 8, epoch)
    v.setUint32(at + 12, seq)
    this.at = at + ACK_BYTES
  }
}

/** One segment of a CL_REPL payload; `segment` is a view of the copy `readSegments` made. */
export interface SegmentRecord {
  shard: number
  epoch: number
  seq: number
  segment: Uint8Array
  gen: number
}

/**
 * The segments of a CL_REPL payload, in order, with the owner's nonce; null if the payload
 * is malformed. The payload is copied once (it is the link's buffer): segments are views
 * of the copy, kept as long as needed.
 */
export function readSegments (payload: Uint8Array, shards: number): { nonce: number, segments: SegmentRecord[] } | null {
  if (payload.length < kReplHeader) return null
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  for (let at = kReplHeader; at < payload.length;) {
    if (at + kSegHeader > payload.length || v.getUint16(at) >= shards) return null
    at += kSegHeader + v.getUint32(at + 12)
    if (at > payload.length) return null
  }
  const own = new Uint8Array(payload) // a copy (a Buffer's `slice` would be a view)
  const segments: SegmentRecord[] = []
  for (let at = kReplHeader; at < own.length;) {
    const length = v.getUint32(at + 12)
    segments.push({ shard: v.getUint16(at), epoch: v.getUint32(at + 4), seq: v.getUint32(at + 8), segment: own.subarray(at + kSegHeader, at + kSegHeader + length), gen: v.getUint16(at + 2) })
    at += kSegHeader + length
  }
  return { nonce: v.getUint32(0), segments }
}

/** Each acknowledgement of a CL_REPL_ACK payload; false (and none handed out) if it is malformed. */
export function readAcks (payload: Uint8Array, shards: number, each: (shard: number, nonce: number, epoch: number, seq: number, gen: number) => void): boolean {
  if (payload.length % ACK_BYTES !== 0) return false
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  for (let at = 0; at < payload.length; at += ACK_BYTES) if (v.getUint16(at) >= shards) return false
  for (let at = 0; at < payload.length; at += ACK_BYTES) each(v.getUint16(at), v.getUint32(at + 4), v.getUint32(at + 8), v.getUint32(at + 12), v.getUint16(at + 2))
  return true
}
