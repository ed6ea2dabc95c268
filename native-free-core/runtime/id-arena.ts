/**
 * The ids of one runtime's resident agents, as UTF-8 bytes in chunked byte arrays: a
 * cell holds a small integer (its record's *ref*), not a string.
 *
 * Why: a resident agent's id string (≈ 40 B, made by `utf8Slice` from the message that
 * activated it) was the young generation's one survivor per activation — strings
 * cannot be pretenured, so each was copied into the semi-space and then promoted, most
 * of the ≈ 115 B a scavenge copied per activation, and a third of the objects a full
 * mark walks at 10M agents (bench/RESULTS.md, issue 13). Bytes in an arena are no
 * object at all: the garbage collector never visits them. Strings are made on demand
 * (`string(ref)`), for user code (`ctx.id`, `initial(key)`), logs and errors; they die
 * young.
 *
 *   chunk c (CHUNK_BYTES):  [len lo][len hi][id bytes …][pad to 4] [len lo][len hi]…
 *   ref = (c × CHUNK_BYTES + offset) / 4         (records are 4-byte aligned)
 *
 * A ref is below 2^30 (a V8 small integer) for arenas up to 4 GiB (≈ 140M ids of 25 B). Records never span
 * chunks. A freed record goes on the free list of its size (in 4-byte units) and is
 * reused by the next id of that size; the caller frees only what no one will read
 * again (ShardRuntime replaces a dropped cell's ref by its string first).
 */
import { MAX_ID_BYTES } from '../agent/agent-id.ts'
import { InvalidArgumentError } from '../errors.ts'
import type { Utf8Decode } from '../agent/envelope.ts'

/** 1 MiB per chunk, like the agent table's cell chunks. */
const CHUNK_BYTES = 1 << 20
const HEADER = 2
const MAX_UNITS = (HEADER + MAX_ID_BYTES + 3) >> 2

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: false })

export type { Utf8Decode }

/** The portable decoder; Node's `Buffer.prototype.utf8Slice` is ≈ 2× as fast on short ids (src/thread passes it). */
export const decodeUtf8: Utf8Decode = (bytes, at, end) => decoder.decode(bytes.subarray(at, end))

/**
 * A chunk's bytes, on a SharedArrayBuffer (never shared: one runtime's thread reads it).
 * V8 counts an ArrayBuffer's bytes as the isolate's external memory, and every 64 MB of
 * it grown since the last full GC starts a marking cycle for "external memory pressure":
 * a worker filling 140 MB of chunks at 10M agents started such cycles at 420 MB heaps,
 * and two of five runs had a worker stop for 1–2 s (bench/RESULTS.md, issue 13). A
 * SharedArrayBuffer's bytes are not counted per isolate (a resizable ArrayBuffer's growth
 * still is). The chunks live as long as the arena: records are freed by hand, never by GC.
 */
function newChunk (bytes: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(bytes))
}

export class IdArena {
  private readonly chunks: Uint8Array[] = []
  private readonly chunkBytes: number
  /** Refs per chunk = 2^shift; a ref is `chunk << shift | offset / 4`. */
  private readonly shift: number
  private readonly mask: number
  /** How this arena makes strings of its bytes (also a commit's BatchIds). */
  readonly decode: Utf8Decode
  /** Where the next record goes in the last chunk. */
  private top: number
  /** Free records by size in 4-byte units: index = units. */
  private readonly free: number[][] = []
  private liveRecords = 0
  /** Scratch for encoding a string that is not ASCII. */
  private scratch = new Uint8Array(MAX_ID_BYTES + 8)

  /** `chunkBytes` (a power of two ≥ the largest record) is for tests; the default is 1 MiB. */
  constructor (decode: Utf8Decode = decodeUtf8, chunkBytes = CHUNK_BYTES) {
    if (!Number.isInteger(Math.log2(chunkBytes)) || chunkBytes < MAX_UNITS * 4) {
      throw new InvalidArgumentError(`IdArena: chunkBytes must be a power of two of at least ${MAX_UNITS * 4} (got ${chunkBytes})`)
    }
    this.chunkBytes = chunkBytes
    this.shift = Math.log2(chunkBytes) - 2
    this.mask = (1 << this.shift) - 1
    this.decode = decode
    this.chunks.push(newChunk(chunkBytes))
    this.top = 0
  }

  /** Records in use. */
  get size (): number {
    return this.liveRecords
  }

  /** Bytes of chunks allocated (off the V8 heap, and not counted as V8 external memory: newChunk). */
  get allocatedBytes (): number {
    return this.chunks.length * this.chunkBytes
  }

  /** Store the id whose UTF-8 bytes are `bytes[at, at + len)`; returns its ref. */
  addBytes (bytes: Uint8Array, at: number, len: number): number {
    if (len > MAX_ID_BYTES) throw new InvalidArgumentError(`agent id is longer than ${MAX_ID_BYTES} UTF-8 bytes`)
    const ref = this.reserve(len)
    const off = (ref & this.mask) << 2
    const chunk = this.chunks[ref >>> this.shift]!
    chunk[off] = len & 0xff
    chunk[off + 1] = len >>> 8
    const p = off + HEADER
    if (len <= 32) {
      for (let i = 0; i < len; i++) chunk[p + i] = bytes[at + i]!
    } else {
      chunk.set(bytes.subarray(at, at + len), p)
    }
    return ref
  }

  /** Store the id `id`; returns its ref. */
  addString (id: string): number {
    const n = id.length
    if (n <= MAX_ID_BYTES) {
      // ASCII: the char codes are the bytes
      let ascii = true
      for (let i = 0; i < n; i++) if (id.charCodeAt(i) >= 0x80) { ascii = false; break }
      if (ascii) {
        const ref = this.reserve(n)
        const off = (ref & this.mask) << 2
        const chunk = this.chunks[ref >>> this.shift]!
        chunk[off] = n & 0xff
        chunk[off + 1] = n >>> 8
        for (let i = 0; i < n; i++) chunk[off + HEADER + i] = id.charCodeAt(i)
        return ref
      }
    }
    const len = this.encode(id)
    return this.addBytes(this.scratch, 0, len)
  }

  /** Bytes of the id at `ref`. */
  byteLength (ref: number): number {
    const off = (ref & this.mask) << 2
    const chunk = this.chunks[ref >>> this.shift]!
    return chunk[off]! | (chunk[off + 1]! << 8)
  }

  /** Whether the id at `ref` is the one whose UTF-8 bytes are `bytes[at, at + len)`. */
  equalsBytes (ref: number, bytes: Uint8Array, at: number, len: number): boolean {
    const off = (ref & this.mask) << 2
    const chunk = this.chunks[ref >>> this.shift]!
    if ((chunk[off]! | (chunk[off + 1]! << 8)) !== len) return false
    // from the end: ids share their quota and type prefix
    const p = off + HEADER
    for (let i = len - 1; i >= 0; i--) if (chunk[p + i] !== bytes[at + i]) return false
    return true
  }

  /** Whether the id at `ref` is `id`. */
  equalsString (ref: number, id: string): boolean {
    const off = (ref & this.mask) << 2
    const chunk = this.chunks[ref >>> this.shift]!
    const len = chunk[off]! | (chunk[off + 1]! << 8)
    const n = id.length
    const p = off + HEADER
    if (len === n) {
      // as long in bytes as in UTF-16 units: equal only if both are the same ASCII
      // (any non-ASCII byte means fewer units than bytes)
      for (let i = n - 1; i >= 0; i--) {
        const b = chunk[p + i]!
        if (b >= 0x80 || b !== id.charCodeAt(i)) return false
      }
      return true
    }
    if (len < n || len > 3 * n) return false // UTF-8 takes 1–3 bytes per UTF-16 unit
    const m = this.encode(id)
    if (m !== len) return false
    const s = this.scratch
    for (let i = 0; i < len; i++) if (chunk[p + i] !== s[i]) return false
    return true
  }

  /** The id at `ref` as a string (a new one each time). */
  string (ref: number): string {
    const off = (ref & this.mask) << 2
    const chunk = this.chunks[ref >>> this.shift]!
    const len = chunk[off]! | (chunk[off + 1]! << 8)
    return this.decode(chunk, off + HEADER, off + HEADER + len)
  }

  /**
   * Copy the id's UTF-8 bytes at `ref` into `into` at `at`; returns their length. A
   * commit's store keys are written from here (no id string per committed state).
   */
  copyTo (ref: number, into: Uint8Array, at: number): number {
    const off = (ref & this.mask) << 2
    const chunk = this.chunks[ref >>> this.shift]!
    const len = chunk[off]! | (chunk[off + 1]! << 8)
    const p = off + HEADER
    if (len <= 32) {
      for (let i = 0; i < len; i++) into[at + i] = chunk[p + i]!
    } else {
      into.set(chunk.subarray(p, p + len), at)
    }
    return len
  }

  /** Whether the id at `ref` starts with the bytes `prefix` (its quota's, say). */
  startsWith (ref: number, prefix: Uint8Array): boolean {
    const off = (ref & this.mask) << 2
    const chunk = this.chunks[ref >>> this.shift]!
    const n = prefix.length
    if ((chunk[off]! | (chunk[off + 1]! << 8)) < n) return false
    const p = off + HEADER
    for (let i = 0; i < n; i++) if (chunk[p + i] !== prefix[i]) return false
    return true
  }

  /** A number read from the record's first bytes: for prefetching (ShardRuntime.touch). */
  touch (ref: number): number {
    return this.chunks[ref >>> this.shift]![((ref & this.mask) << 2) + HEADER]!
  }

  /** Give the record at `ref` back: the next id of its size may take it. */
  release (ref: number): void {
    const units = (HEADER + this.byteLength(ref) + 3) >> 2
    ;(this.free[units] ??= []).push(ref)
    this.liveRecords--
  }

  /** A record for an id of `len` bytes: a freed one of its size, or the next at the top. */
  private reserve (len: number): number {
    const units = (HEADER + len + 3) >> 2
    this.liveRecords++
    const list = this.free[units]
    if (list !== undefined && list.length !== 0) return list.pop()!
    const bytes = units << 2
    if (this.top + bytes > this.chunkBytes) {
      this.chunks.push(newChunk(this.chunkBytes))
      this.top = 0
    }
    const ref = ((this.chunks.length - 1) << this.shift) + (this.top >>> 2)
    this.top += bytes
    return ref
  }

  /** `id`'s UTF-8 bytes into scratch; returns their length. */
  private encode (id: string): number {
    if (id.length * 3 > this.scratch.length) this.scratch = new Uint8Array(id.length * 3)
    return encoder.encodeInto(id, this.scratch).written
  }
}
