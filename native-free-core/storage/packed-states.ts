/**
 * A commit's states packed into a few typed arrays (`WriteBatch.states`): every state's
 * encoded bytes back to back in one buffer, with its span and placement hash by index,
 * and an id string only for a state whose id is not bytes in `WriteBatch.stateIds`.
 *
 * Why not an array of `[id, bytes, hash]`: a durable commit is in flight for tens to
 * hundreds of ms (its write, then its flush), and everything it holds lives that long. Per
 * state that was the tuple, the `Uint8Array` view of the state's encode and, in lmdb-js, a
 * write's resolution — ≈ 240 B that survived every young-generation collection during the
 * durable fanout, was copied once and promoted: 3–4 MB per scavenge of a worker, the
 * scavenges of 20–90 ms (bench/RESULTS.md, issue 13, branch worker-gc). Packed, a batch
 * holds a handful of objects however many states it has, and its buffers are reused by
 * the next batches once it has settled.
 *
 * The bytes. `view(k)` is a view into the shared buffer, valid until the batch is reset
 * (the runtime resets it once its commit has settled): a store that keeps a state's bytes
 * past its commit (in memory) takes `copy(k)`. `value(k)` is for lmdb-js: the buffer
 * itself with `start`/`end` set to the state's span — lmdb-js then writes from that
 * address (its buffers-with-positions mode) and no view is made per put. The buffer owns
 * its ArrayBuffer from offset 0, as that mode requires.
 *
 *   bytes: [state 0][state 1]…    spans[2k], spans[2k + 1]: where the k-th state's bytes
 *                                 start and end (start −1: the state is deleted)
 */

import { hashId } from '../placement/hash.ts'

/** A buffer lmdb-js writes from `start` to `end` of its ArrayBuffer (see `PackedStates.value`). */
export interface PositionedBytes extends Uint8Array {
  start: number
  end: number
}

/** Bytes to start with: a small state is ≈ 6–50 B. */
const kInitialBytes = 16 * 1024
/** States to start with. */
const kInitialStates = 512
/** Up to this many bytes a state is copied byte by byte (a `set` of a `subarray` allocates a view). */
const kCopyLoop = 64

export class PackedStates {
  private bytes: PositionedBytes
  private spans: Int32Array
  private hashes: Float64Array
  /** Id strings by index, for states whose id is not in `stateIds`; null while there is none. */
  private names: Array<string | null> | null = null
  private top = 0
  private count = 0

  constructor (initialBytes = kInitialBytes, initialStates = kInitialStates) {
    this.bytes = positioned(Math.max(16, initialBytes))
    this.spans = new Int32Array(2 * Math.max(1, initialStates))
    this.hashes = new Float64Array(Math.max(1, initialStates))
  }

  /**
   * States given as `[id, bytes, hash?]` tuples (tests, tools: `WriteBatch.states`' other
   * form), packed, so that a store writes one form. A tuple without a hash gets its id's
   * (`ids`: the batch's `stateIds`, for tuples whose id is null).
   */
  static from (states: ReadonlyArray<readonly [id: string | null, bytes: Uint8Array | null, hash?: number]>, ids?: { id (k: number): string } | null): PackedStates {
    const packed = new PackedStates(64, Math.max(1, states.length))
    for (let k = 0; k < states.length; k++) {
      const [id, bytes, hash] = states[k]!
      packed.push(id, bytes, hash ?? hashId(id ?? ids!.id(k)))
    }
    return packed
  }

  get length (): number {
    return this.count
  }

  /** Bytes of room this batch holds (reused with it). */
  get capacity (): number {
    return this.bytes.length
  }

  /**
   * Append a state: its bytes are copied (`null`: the agent is deleted). `id` is its id
   * string, or null when the batch's `stateIds` has the id at this index.
   */
  push (id: string | null, bytes: Uint8Array | null, hash: number): void {
    const k = this.count
    if (k === this.hashes.length) this.growStates()
    if (bytes === null) {
      this.spans[2 * k] = -1
      this.spans[2 * k + 1] = -1
    } else {
      const n = bytes.length
      if (this.top + n > this.bytes.length) this.grow(n)
      const start = this.top
      const into = this.bytes
      if (n <= kCopyLoop) {
        for (let i = 0; i < n; i++) into[start + i] = bytes[i]!
      } else {
        into.set(bytes, start)
      }
      this.top = start + n
      this.spans[2 * k] = start
      this.spans[2 * k + 1] = this.top
    }
    this.hashes[k] = hash
    if (id !== null) (this.names ??= new Array<string | null>(k).fill(null))[k] = id
    else if (this.names !== null) this.names[k] = null
    this.count = k + 1
  }

  /** The k-th state's id string, or null when `stateIds` has it. */
  id (k: number): string | null {
    return this.names === null ? null : this.names[k] ?? null
  }

  hash (k: number): number {
    return this.hashes[k]!
  }

  /** Whether the k-th state is a delete. */
  deleted (k: number): boolean {
    return this.spans[2 * k]! < 0
  }

  /** The k-th state's bytes as a view (valid until `reset`), or null for a delete. */
  view (k: number): Uint8Array | null {
    const start = this.spans[2 * k]!
    return start < 0 ? null : this.bytes.subarray(start, this.spans[2 * k + 1]!)
  }

  /** The k-th state's bytes as a copy of its own, or null for a delete. */
  copy (k: number): Uint8Array | null {
    const start = this.spans[2 * k]!
    return start < 0 ? null : this.bytes.slice(start, this.spans[2 * k + 1]!)
  }

  /**
   * The shared buffer positioned at the k-th state's bytes (`start`/`end`), for lmdb-js:
   * valid until the next call (and, for the bytes, until `reset`). Not for a delete.
   */
  value (k: number): PositionedBytes {
    const b = this.bytes
    b.start = this.spans[2 * k]!
    b.end = this.spans[2 * k + 1]!
    return b
  }

  /** Empty, keeping the room: for the next batch. */
  reset (): void {
    this.top = 0
    this.count = 0
    this.names = null
  }

  private grow (n: number): void {
    const next = positioned(Math.max(2 * this.bytes.length, this.top + n))
    next.set(this.bytes.subarray(0, this.top))
    this.bytes = next
  }

  private growStates (): void {
    const spans = new Int32Array(2 * this.spans.length)
    spans.set(this.spans)
    this.spans = spans
    const hashes = new Float64Array(2 * this.hashes.length)
    hashes.set(this.hashes)
    this.hashes = hashes
  }
}

/** A buffer of its own ArrayBuffer (offset 0, off the V8 heap: its address does not move). */
function positioned (size: number): PositionedBytes {
  const b = new Uint8Array(new ArrayBuffer(size)) as PositionedBytes
  b.start = 0
  b.end = 0
  return b
}
