/**
 * Single-producer / single-consumer byte ring on a SharedArrayBuffer, carrying
 * variable-length frames between two threads (ringbuf.js' layout, Aeron's padding).
 *
 *   SharedArrayBuffer
 *   ┌──────────── header (192 bytes, one 64-byte line per writer) ────────────┐
 *   │ kTail @0: published write position      (written by the producer only)   │
 *   │ kHead @64: published read position      (written by the consumer only)   │
 *   │ kProducerWaiting @128: 1 while the producer holds frames in overflow     │
 *   ├──────────── data (capacity bytes, a power of two) ───────────────────────┤
 *   │ [i32 len][len bytes][pad to 4] [i32 len][...] ... [i32 -n][n-4 unused]    │
 *   └───────────────────────────────────────────────────────────────────────────┘
 *
 * Positions are free-running 32-bit counters; the index is `pos & mask` and the used
 * space `(tail - head) | 0`, which stays right across the 2^32 wrap. A frame is always
 * contiguous: when it does not fit before the end of the buffer the producer writes a
 * skip marker (a negative length covering the rest of the buffer) and starts at 0, so
 * the consumer can hand whole frames to a decoder without reassembling them.
 *
 * Publishing: the producer writes frames with plain stores and makes them visible with
 * one `Atomics.store` of the tail per batch (`publish`), which the doorbell then
 * advertises. The consumer copies everything published into private memory in one or
 * two `set` calls and releases the space at once (`copyOut`). Copying out keeps
 * decoders off shared memory — msgpackr's native string extractor throws on it and
 * falls back 15× slower — and means decoded values can never alias ring bytes that
 * the producer is about to overwrite.
 *
 * A full ring never blocks the producer's event loop: frames go to an overflow list of
 * private chunks, in order, and move into the ring as the consumer frees space. While
 * overflow is non-empty every new frame goes behind it (FIFO is kept per ring).
 * The producer sets kProducerWaiting; the consumer, after releasing space, rings the
 * producer's doorbell so it retries.
 */
import type { Doorbell } from './doorbell.ts'

export const RING_HEADER_BYTES = 192
const kTail = 0
const kHead = 16
const kProducerWaiting = 32
/** Publish at least every this many frames, so a long synchronous producer loop feeds the consumer while it runs. */
const PUBLISH_EVERY = 64
const OVERFLOW_CHUNK_BYTES = 64 * 1024

/** Make a byte view; the host passes `Buffer.from` so that codecs get `utf8Write`/`utf8Slice`. */
export type BytesView = (buffer: ArrayBufferLike, byteOffset: number, length: number) => Uint8Array
const plainBytes: BytesView = (b, o, l) => new Uint8Array(b, o, l)

export function align4 (n: number): number {
  return (n + 3) & ~3
}

/** Allocate a ring; `capacity` is rounded up to a power of two, at least 4 KiB. */
export function createRing (capacity: number): SharedArrayBuffer {
  let cap = 4096
  while (cap < capacity) cap *= 2
  return new SharedArrayBuffer(RING_HEADER_BYTES + cap)
}

export function ringCapacity (sab: SharedArrayBuffer): number {
  return sab.byteLength - RING_HEADER_BYTES
}

/** Largest frame payload a ring can always accept (a frame plus a skip marker must fit). */
export function maxFrameBytes (capacity: number): number {
  return capacity / 2 - 8
}

/** Bytes published and not yet consumed; safe to call from any thread (a snapshot). */
export function ringDepth (sab: SharedArrayBuffer): number {
  const ctl = new Int32Array(sab, 0, RING_HEADER_BYTES / 4)
  return (Atomics.load(ctl, kTail) - Atomics.load(ctl, kHead)) | 0
}

/** Writable frame storage: the ring's data area or an overflow chunk. */
export interface FrameTarget {
  readonly u8: Uint8Array
  readonly i32: Int32Array
  readonly u16: Uint16Array
}

/**
 * Where frames are written: a ring, or a private buffer of frames in the ring's layout
 * (a link batch, a queue of held frames). `begin(maxBytes)` returns the offset in
 * `target` to write the payload at; `end(bytes)` finishes the frame.
 */
export interface FrameSink {
  readonly target: FrameTarget
  begin (maxBytes: number): number
  end (bytes: number): void
}

interface Chunk extends FrameTarget {
  used: number
  read: number
}

export class RingProducer implements FrameSink {
  readonly capacity: number
  private readonly mask: number
  private readonly ctl: Int32Array
  private readonly ring: FrameTarget
  private readonly bytesView: BytesView
  private readonly consumerBell: Doorbell
  private tail: number
  private published: number
  private head: number
  private unpublished = 0
  private readonly overflow: Chunk[] = []

  /** Where the frame begun by `begin` is being written, valid until `end`. */
  target: FrameTarget
  private frameAt = 0
  private inRing = true
  /** Frames ever written to overflow, for stats. */
  overflowed = 0

  constructor (sab: SharedArrayBuffer, consumerBell: Doorbell, bytesView: BytesView = plainBytes) {
    this.capacity = ringCapacity(sab)
    this.mask = this.capacity - 1
    this.ctl = new Int32Array(sab, 0, RING_HEADER_BYTES / 4)
    this.bytesView = bytesView
    this.ring = {
      u8: bytesView(sab, RING_HEADER_BYTES, this.capacity),
      i32: new Int32Array(sab, RING_HEADER_BYTES, this.capacity / 4),
      u16: new Uint16Array(sab, RING_HEADER_BYTES, this.capacity / 2)
    }
    this.target = this.ring
    this.consumerBell = consumerBell
    this.tail = this.published = Atomics.load(this.ctl, kTail)
    this.head = Atomics.load(this.ctl, kHead)
  }

  /**
   * Start a frame of at most `maxBytes` payload bytes. Returns the byte offset of the
   * payload inside `this.target`; write it, then call `end` with the real length.
   * Never fails: without room in the ring the frame goes to overflow.
   */
  begin (maxBytes: number): number {
    if (this.overflow.length === 0) {
      const idx = this.place(4 + align4(maxBytes))
      if (idx >= 0) {
        this.target = this.ring
        this.inRing = true
        this.frameAt = idx
        return idx + 4
      }
    }
    return this.beginOverflow(4 + align4(maxBytes))
  }

  /**
   * Where `bytes` can be written contiguously now, or -1 if the ring is full. When they
   * do not fit before the end of the buffer, writes a skip marker and answers 0. Reads
   * the consumer's head (a shared cache line) only when the cached one says full.
   */
  private place (bytes: number): number {
    const idx = this.tail & this.mask
    const contiguous = this.capacity - idx
    const extra = bytes <= contiguous ? 0 : contiguous
    if (extra + bytes > this.free() && extra + bytes > this.refreshFree()) return -1
    if (extra === 0) return idx
    this.ring.i32[idx >> 2] = -contiguous
    this.tail = (this.tail + contiguous) | 0
    return 0
  }

  /** Finish the frame begun by `begin`; `bytes` is its payload length. */
  end (bytes: number): void {
    this.target.i32[this.frameAt >> 2] = bytes
    if (this.inRing) this.tail = (this.tail + 4 + align4(bytes)) | 0
    else (this.target as Chunk).used = this.frameAt + 4 + align4(bytes)
    // in overflow too: a producer looping synchronously must keep moving overflow into the
    // ring as the consumer frees it, or the consumer starves until the loop ends
    if (++this.unpublished >= PUBLISH_EVERY) this.publish()
  }

  /**
   * Publish the frames written so far to the consumer (one `Atomics.store`) and wake it
   * if it sleeps. Also moves overflow into the ring when there is room.
   * Returns true while frames remain in overflow.
   */
  publish (): boolean {
    if (this.overflow.length !== 0) this.drainOverflow()
    this.unpublished = 0
    if (this.tail !== this.published) {
      // publish the enqueued data to the other side
      Atomics.store(this.ctl, kTail, this.tail)
      this.published = this.tail
      this.consumerBell.ring()
    }
    return this.overflow.length !== 0
  }

  get overflowing (): boolean {
    return this.overflow.length !== 0
  }

  /** Overflow is waiting and its oldest frame now fits in the ring: `publish` would make progress. */
  drainable (): boolean {
    const chunk = this.overflow[0]
    if (chunk === undefined) return false
    const size = chunk.read < chunk.used ? 4 + align4(chunk.i32[chunk.read >> 2]!) : 0
    const idx = this.tail & this.mask
    const extra = size <= this.capacity - idx ? 0 : this.capacity - idx
    return extra + size <= this.refreshFree()
  }

  /** Bytes waiting in overflow. */
  get overflowBytes (): number {
    let n = 0
    for (const c of this.overflow) n += c.used - c.read
    return n
  }

  private free (): number {
    return this.capacity - ((this.tail - this.head) | 0)
  }

  private refreshFree (): number {
    this.head = Atomics.load(this.ctl, kHead)
    return this.free()
  }

  private beginOverflow (need: number): number {
    let chunk = this.overflow[this.overflow.length - 1]
    if (chunk === undefined || chunk.u8.length - chunk.used < need) {
      const size = Math.max(OVERFLOW_CHUNK_BYTES, need)
      const buf = new ArrayBuffer(size)
      chunk = { u8: this.bytesView(buf, 0, size), i32: new Int32Array(buf), u16: new Uint16Array(buf), used: 0, read: 0 }
      this.overflow.push(chunk)
      this.setWaiting(true)
    }
    this.target = chunk
    this.inRing = false
    this.frameAt = chunk.used
    this.overflowed++
    return chunk.used + 4
  }

  /**
   * Ask the consumer to ring our doorbell when it frees space. Stored only on a change:
   * the consumer reads this word on every copyOut, and rewriting it (even with the same
   * value) would bounce its cache line between the two cores.
   */
  private setWaiting (on: boolean): void {
    if (this.waiting === on) return
    this.waiting = on
    Atomics.store(this.ctl, kProducerWaiting, on ? 1 : 0)
  }

  private waiting = false

  /**
   * Move whole frames from overflow into the ring while they fit, oldest first: each
   * run of frames that fits before the ring's end is one copy.
   */
  private drainOverflow (): void {
    while (this.overflow.length !== 0) {
      const chunk = this.overflow[0]!
      while (chunk.read < chunk.used) {
        const first = 4 + align4(chunk.i32[chunk.read >> 2]!)
        const idx = this.place(first)
        if (idx < 0) return // still full: the consumer rings our doorbell when it frees space
        const room = Math.min(this.free(), this.capacity - idx)
        let run = first
        while (chunk.read + run < chunk.used) {
          const size = 4 + align4(chunk.i32[(chunk.read + run) >> 2]!)
          if (run + size > room) break
          run += size
        }
        this.ring.u8.set(chunk.u8.subarray(chunk.read, chunk.read + run), idx)
        this.tail = (this.tail + run) | 0
        chunk.read += run
      }
      this.overflow.shift()
    }
    this.setWaiting(false)
  }
}

export class RingConsumer {
  readonly capacity: number
  private readonly mask: number
  private readonly ctl: Int32Array
  private readonly data8: Uint8Array
  private readonly data32: Int32Array
  private readonly producerBell: Doorbell
  private head: number

  constructor (sab: SharedArrayBuffer, producerBell: Doorbell) {
    this.capacity = ringCapacity(sab)
    this.mask = this.capacity - 1
    this.ctl = new Int32Array(sab, 0, RING_HEADER_BYTES / 4)
    this.data8 = new Uint8Array(sab, RING_HEADER_BYTES, this.capacity)
    this.data32 = new Int32Array(sab, RING_HEADER_BYTES, this.capacity / 4)
    this.producerBell = producerBell
    this.head = Atomics.load(this.ctl, kHead)
  }

  /** Something was published and not consumed. This can be late: it is a hint to keep polling. */
  hasData (): boolean {
    return Atomics.load(this.ctl, kTail) !== this.head
  }

  /**
   * Copy published frames, whole, into `dst` from offset 0 — at most `maxBytes`, and
   * at least one frame when any is published (`dst` must hold `capacity` bytes) — then
   * release their space to the producer. Returns the number of bytes copied; frames in
   * `dst` keep the ring layout, including skip markers (see `forEachFrame`).
   */
  copyOut (dst: Uint8Array, maxBytes: number): number {
    const tail = Atomics.load(this.ctl, kTail)
    let avail = (tail - this.head) | 0
    if (avail === 0) return 0
    if (avail > maxBytes) avail = this.prefixWithin(avail, maxBytes)
    const idx = this.head & this.mask
    const first = Math.min(avail, this.capacity - idx)
    dst.set(this.data8.subarray(idx, idx + first), 0)
    if (avail > first) dst.set(this.data8.subarray(0, avail - first), first)
    this.head = (this.head + avail) | 0
    // release the space; then, if the producer holds frames in overflow, wake it should it
    // sleep (a no-op while it is awake). The producer clears the flag, not us: writes from
    // both sides would make the word's cache line bounce between cores on every batch.
    Atomics.store(this.ctl, kHead, this.head)
    if (Atomics.load(this.ctl, kProducerWaiting) !== 0) this.producerBell.ring()
    return avail
  }

  /** The longest run of whole frames from head that fits in maxBytes (at least one frame). */
  private prefixWithin (avail: number, maxBytes: number): number {
    let n = 0
    while (n < avail) {
      const len = this.data32[((this.head + n) & this.mask) >> 2]!
      const size = len < 0 ? -len : 4 + align4(len)
      if (n + size > maxBytes && n !== 0) break
      n += size
    }
    return n
  }
}

/**
 * Walk the frames `copyOut` wrote into `buf32`'s buffer: calls `onFrame(offset, length)`
 * with the payload offset for each frame, skipping markers.
 */
export function forEachFrame (buf32: Int32Array, bytes: number, onFrame: (offset: number, length: number) => void): void {
  let p = 0
  while (p < bytes) {
    const len = buf32[p >> 2]!
    if (len < 0) { p -= len; continue }
    onFrame(p + 4, len)
    p += 4 + align4(len)
  }
}
