/**
 * The sending half of a link, as the engine sees it: the same `begin / target / end`
 * the thread rings offer (ring-queue.ts), so the code that encodes a frame into a ring
 * encodes it, unchanged and without a copy, into a batch for another host.
 *
 *   chunk (a Buffer, 64 KiB+)
 *   ┌ sent ┬──── sealed batch ───┬─── sealed batch ───┬── open batch ──┬ free ┐
 *   │      │[len][frame][len]... │[len][frame]...     │[len][frame]... │      │
 *   └──────┴─────────────────────┴────────────────────┴────────────────┴──────┘
 *           sent as one WebSocket binary message each, oldest first
 *
 * Frames accumulate in the open batch; it is sealed when it reaches `flushBytes`, and
 * everything sealed goes out together — one corked socket write for many WebSocket
 * messages — at the end of the event-loop turn (one microtask per hub, not per frame),
 * or at once when `sendBytes` are sealed. A syscall per message, not the bytes, is what
 * bounded the first version on loopback (`writev` was a third of the sender's profile
 * at 64 frames per message). Sealed batches wait in a
 * FIFO while the link connects or its socket is over the high-water mark; what waits is
 * bounded by `maxQueueBytes`, beyond which `begin` throws a retriable
 * LinkUnavailableError before anything is written, so a refused frame leaves no trace.
 *
 * Batches are subarrays of the chunk, handed to the socket as they lie. `ws` keeps a
 * reference to the bytes until the kernel has them, so a chunk is never written twice
 * on the dialing side: a full chunk is left to the GC and a new one taken. uWebSockets.js
 * copies what it cannot send at once, so on the accepting side the chunk is rewound
 * whenever everything in it has been sent.
 */
import { LinkUnavailableError, MessageTooLargeError } from '../../../native-free-core/errors.ts'

/** Writable frame storage; the same shape as ring-queue.ts' FrameTarget. */
export interface FrameTarget {
  readonly u8: Uint8Array
  readonly i32: Int32Array
  readonly u16: Uint16Array
}

/** What the engine writes frames into: a thread ring's producer, or a link's writer. */
export interface FrameSink {
  /** Where the frame begun by `begin` is being written, valid until `end`. */
  readonly target: FrameTarget
  /** Start a frame of at most `maxBytes` payload bytes; returns the payload's offset in `target`. */
  begin (maxBytes: number): number
  /** Finish the frame; `bytes` is its real payload length. */
  end (bytes: number): void
}

/** Where sealed batches go: a link's socket. */
export interface BatchOutput {
  /** True when the socket copies what it is given, so the bytes may be rewritten at once. */
  readonly copiesOnSend: boolean
  /** The link is up, its socket open and under its high-water mark. */
  readonly writable: boolean
  /** Send one batch (only while `writable`). */
  sendBatch (bytes: Buffer, frames: number): void
}

export interface BatchWriterOptions {
  readonly peer: string
  /** Seal a batch (one WebSocket message) once it holds this many bytes. */
  readonly flushBytes: number
  /** Send what is sealed without waiting for the end of the turn once this many bytes are. */
  readonly sendBytes: number
  /** Largest batch (WebSocket message) a peer accepts; a frame must fit in one. */
  readonly maxBatchBytes: number
  /** Bytes allowed to wait (sealed plus open) before `begin` throws. */
  readonly maxQueueBytes: number
  /** Called once when bytes start to wait, so the hub flushes at the end of the turn. */
  readonly onPending: () => void
  /** Called when `sendBytes` are sealed: the hub sends them now if it can. */
  readonly onFull: () => void
}

interface Chunk extends FrameTarget {
  readonly u8: Buffer
}

interface Sealed {
  readonly bytes: Buffer
  readonly frames: number
}

const MIN_CHUNK_BYTES = 64 * 1024
const EMPTY: Chunk = { u8: Buffer.alloc(0), i32: new Int32Array(0), u16: new Uint16Array(0) }

function newChunk (bytes: number): Chunk {
  const u8 = Buffer.allocUnsafeSlow(bytes)
  return { u8, i32: new Int32Array(u8.buffer, 0, bytes >> 2), u16: new Uint16Array(u8.buffer, 0, bytes >> 1) }
}

export class BatchWriter implements FrameSink {
  readonly peer: string
  target: Chunk = EMPTY
  private readonly flushBytes: number
  private readonly sendBytes: number
  private readonly maxBatchBytes: number
  private readonly maxQueueBytes: number
  private readonly chunkBytes: number
  private readonly onPending: () => void
  private readonly onFull: () => void

  private used = 0
  private batchStart = 0
  private batchFrames = 0
  private frameAt = 0
  private readonly sealed: Array<Sealed | undefined> = []
  private sealedHead = 0
  private sealedBytes = 0
  private sealedFrames = 0
  /** The hub knows this writer has bytes waiting (it flushes on the next turn, on `up` or on drain). */
  private pending = false
  private closedReason: string | null = null

  /** Frames and bytes accepted by `end` since creation (sent, waiting or dropped). */
  framesWritten = 0

  constructor (options: BatchWriterOptions) {
    this.peer = options.peer
    this.flushBytes = options.flushBytes
    this.sendBytes = options.sendBytes
    this.maxBatchBytes = options.maxBatchBytes
    this.maxQueueBytes = options.maxQueueBytes
    this.chunkBytes = Math.max(MIN_CHUNK_BYTES, (2 * options.flushBytes + 3) & ~3)
    this.onPending = options.onPending
    this.onFull = options.onFull
  }

  begin (maxBytes: number): number {
    const need = 4 + ((maxBytes + 3) & ~3)
    if (need > this.maxBatchBytes) {
      throw new MessageTooLargeError(`frame of up to ${maxBytes} bytes does not fit in a link batch (maxBatchBytes ${this.maxBatchBytes})`, { bytes: maxBytes, maxBatchBytes: this.maxBatchBytes })
    }
    if (this.closedReason !== null) {
      throw new LinkUnavailableError(`the link to ${this.peer} is ${this.closedReason}`, { peer: this.peer, reason: 'closed' })
    }
    const open = this.used - this.batchStart
    if (this.sealedBytes + open + need > this.maxQueueBytes) {
      throw new LinkUnavailableError(`the link to ${this.peer} has ${this.sealedBytes + open} bytes waiting (maxQueueBytes ${this.maxQueueBytes}); retry when it drains`,
        { peer: this.peer, reason: 'backlog', queuedBytes: this.sealedBytes + open, maxQueueBytes: this.maxQueueBytes })
    }
    if (open + need > this.maxBatchBytes) this.seal()
    if (this.target.u8.length - this.used < need) {
      this.seal()
      this.target = newChunk(Math.max(this.chunkBytes, need))
      this.used = this.batchStart = 0
    }
    this.frameAt = this.used
    return this.used + 4
  }

  end (bytes: number): void {
    this.target.i32[this.frameAt >> 2] = bytes
    this.used = this.frameAt + 4 + ((bytes + 3) & ~3)
    this.batchFrames++
    this.framesWritten++
    if (this.used - this.batchStart >= this.flushBytes) {
      this.seal()
      if (this.sealedBytes >= this.sendBytes) this.onFull()
    }
    if (!this.pending && this.sealedBytes + this.used - this.batchStart !== 0) {
      this.pending = true
      this.onPending()
    }
  }

  /** Bytes waiting to be sent (sealed batches and the open one). */
  get queuedBytes (): number {
    return this.sealedBytes + this.used - this.batchStart
  }

  /** Frames waiting to be sent. */
  get queuedFrames (): number {
    return this.sealedFrames + this.batchFrames
  }

  /**
   * Send what waits, oldest first, while `out` is writable. Returns true when everything
   * was sent. The open batch goes too (sealed as it is).
   */
  drain (out: BatchOutput): boolean {
    while (this.sealedHead < this.sealed.length) {
      if (!out.writable) {
        this.compact()
        return false
      }
      const b = this.sealed[this.sealedHead]!
      this.sealed[this.sealedHead++] = undefined
      this.sealedBytes -= b.bytes.length
      this.sealedFrames -= b.frames
      out.sendBatch(b.bytes, b.frames)
    }
    this.sealed.length = this.sealedHead = 0
    if (this.used > this.batchStart) {
      if (!out.writable) return false
      const bytes = this.target.u8.subarray(this.batchStart, this.used)
      const frames = this.batchFrames
      this.batchStart = this.used
      this.batchFrames = 0
      out.sendBatch(bytes, frames)
    }
    if (out.copiesOnSend) this.used = this.batchStart = 0
    this.pending = false
    return true
  }

  /** Forget everything waiting (the link went down); returns what was dropped. */
  drop (): { frames: number, bytes: number } {
    const dropped = { frames: this.queuedFrames, bytes: this.queuedBytes }
    this.sealed.length = this.sealedHead = 0
    this.sealedBytes = this.sealedFrames = 0
    this.batchFrames = 0
    // a socket may still hold earlier batches of this chunk: start a fresh one
    this.target = EMPTY
    this.used = this.batchStart = 0
    this.pending = false
    return dropped
  }

  /** Refuse every later `begin` (the peer was disconnected or the hub closed). */
  close (reason: string): void {
    this.closedReason = reason
  }

  private seal (): void {
    if (this.used === this.batchStart) return
    const b = { bytes: this.target.u8.subarray(this.batchStart, this.used), frames: this.batchFrames }
    this.sealed.push(b)
    this.sealedBytes += b.bytes.length
    this.sealedFrames += b.frames
    this.batchStart = this.used
    this.batchFrames = 0
  }

  private compact (): void {
    if (this.sealedHead > 1024 && this.sealedHead * 2 > this.sealed.length) {
      this.sealed.splice(0, this.sealedHead)
      this.sealedHead = 0
    }
  }
}
