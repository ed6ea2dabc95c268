/**
 * Frames in a private, growable buffer, laid out exactly as on a ring
 * (`[i32 length][bytes][pad to 4]`, ring-queue.ts): what a thread keeps for a shard
 * that is arriving, what the main thread holds for a shard that is moving, and the
 * scratch a decoded message is encoded into before it leaves the thread. Because the
 * layout is the ring's, a held frame goes back onto a ring or into a link batch as the
 * bytes it is, and `forEachFrame` walks a buffer as it walks a ring's copy.
 */
import { Buffer } from 'node:buffer'
import { align4, forEachFrame } from '../../native-free-core/ring/ring-queue.ts'
import type { FrameSink, FrameTarget } from '../../native-free-core/ring/ring-queue.ts'

export class FrameBuffer implements FrameSink {
  target: FrameTarget
  private buf: Buffer
  private i32: Int32Array
  /** Bytes of whole frames. */
  used = 0
  /** Frames held. */
  count = 0
  private frameAt = 0

  constructor (initialBytes = 4096) {
    this.buf = Buffer.alloc(align4(Math.max(64, initialBytes)))
    this.i32 = new Int32Array(this.buf.buffer, this.buf.byteOffset, this.buf.length >> 2)
    this.target = this.view()
  }

  begin (maxBytes: number): number {
    const need = this.used + 4 + align4(maxBytes)
    if (need > this.buf.length) this.grow(need)
    this.frameAt = this.used
    return this.used + 4
  }

  end (bytes: number): void {
    this.i32[this.frameAt >> 2] = bytes
    this.used = this.frameAt + 4 + align4(bytes)
    this.count++
  }

  /** Append one frame given as its bytes (without the length word). */
  push (frame: Uint8Array): void {
    const o = this.begin(frame.length)
    this.buf.set(frame, o)
    this.end(frame.length)
  }

  /** Every frame, in order, as a view into this buffer (valid until the buffer changes). */
  forEach (onFrame: (frame: Buffer) => void): void {
    const buf = this.buf
    forEachFrame(this.i32, this.used, (o, len) => onFrame(buf.subarray(o, o + len)))
  }

  /** The frames in ring layout, as a view (valid until the buffer changes). */
  get bytes (): Buffer {
    return this.buf.subarray(0, this.used)
  }

  clear (): void {
    this.used = 0
    this.count = 0
  }

  private grow (need: number): void {
    let size = this.buf.length * 2
    while (size < need) size *= 2
    const next = Buffer.alloc(size)
    this.buf.copy(next, 0, 0, this.used)
    this.buf = next
    this.i32 = new Int32Array(next.buffer, next.byteOffset, next.length >> 2)
    this.target = this.view()
  }

  private view (): FrameTarget {
    const b = this.buf
    return { u8: b, i32: this.i32, u16: new Uint16Array(b.buffer, b.byteOffset, b.length >> 1) }
  }
}
