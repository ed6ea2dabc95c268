/**
 * The resident agents of one shard runtime: id → cell, as an open-addressing hash
 * table keyed by the placement hash every message already carries.
 *
 *   slot:    0      1      2      3      ...   (capacity, a power of two)
 *   hashes:  [h0]   [h1]   [  ]   [h3]         Int32Array: the agent's 32-bit hash
 *   cells:   c0     c1     ∅      TOMB         the cell, ∅ (empty) or TOMB (deleted)
 *
 * Linear probing from the home slot `home(hash)`; a lookup compares int32 hashes and,
 * on a match, the id: a resident cell holds no id string, only the ref of its id's
 * UTF-8 bytes in the runtime's IdArena (`cell.idRef`, see id-arena.ts), compared with a
 * string (`get`) or with a message frame's bytes (`getBytes`).
 *
 * The home slot is the top bits of `hash × 2654435769` (Fibonacci hashing), not
 * `hash & mask`: the placement hash's top 12 bits chose the shard, and so the thread,
 * so inside one worker some of them are constant (bit 20 with 2 workers). Once the
 * capacity passed 2^20, `hash & mask` used that constant bit, half the slots could
 * never be a home, and linear probing ran through clusters of a million cells: the
 * engine stalled at ~1,050,000 agents per worker (measured: 2 workers stopped at
 * 2,113,536 agents). The multiply mixes every bit of the hash into the slot index.
 *
 * Why not a `Map<string, Cell>`:
 * - a Map hashes each freshly decoded id string again (V8 caches a string's hash only
 *   on that string object), and its lookups were 44% of a worker's time at 1M agents;
 * - a V8 Map holds at most 2^24 (16,777,216) entries, and one thread may own 20 million
 *   agents (`workers: 0`);
 * - 12 bytes per slot at a load factor of at most 0.7, against ~40 for a Map entry.
 *
 * Deleted slots become tombstones (probes continue past them); the table is rebuilt
 * from the stored hashes, without touching a string, when live + tombstones pass the
 * load factor.
 *
 * The cells live in chunks of CHUNK slots (1 MiB each), not in one array: a grown
 * table is allocated young, and one array of 2^23 slots (64 MiB, 5.8M agents over two
 * workers) is a single object in V8's young large-object space. The scavenge that
 * promotes it visits its 8M slots in one piece, and was the longest GC pause of both
 * workers at 10M agents (60–84 ms, `--trace-gc-nvp`: 69 MB promoted). A 1 MiB chunk is
 * still a young large object — promoted by handing its page to the old generation, not
 * copied — but the young large-object space holds at most a semi-space's worth (16 MiB)
 * before a scavenge, so a rebuild is promoted a few chunks at a time: 3–17 ms pauses.
 * (Chunks of 64 KiB, ordinary young objects, were worse: each was copied twice, in a
 * burst of back-to-back 40–65 ms scavenges; bench/RESULTS.md, issue 13.)
 */

import { IdArena } from './id-arena.ts'

const TOMB = Symbol('deleted')
const MAX_LOAD = 0.7
const MIN_CAPACITY = 1024
const SMALLEST_CAPACITY = 8
/** Slots per chunk: 2^17 × 8 B = 1 MiB, a young large object (see above). */
const CHUNK_BITS = 17
const CHUNK = 1 << CHUNK_BITS
const CHUNK_MASK = CHUNK - 1

export interface Keyed {
  /** While in the table: the ref of the id's bytes in the table's IdArena (a number). */
  idRef: number | string
  readonly hash: number
}

type Slot<V> = V | typeof TOMB | undefined

/** `capacity` slots, all empty, as chunks of min(capacity, CHUNK). */
function emptyChunks<V> (capacity: number): Array<Array<Slot<V>>> {
  const size = Math.min(capacity, CHUNK)
  const chunks = new Array<Array<Slot<V>>>(capacity / size)
  for (let c = 0; c < chunks.length; c++) chunks[c] = new Array<Slot<V>>(size).fill(undefined)
  return chunks
}

export class AgentTable<V extends Keyed> {
  /** The ids of the cells in the table (the caller adds and releases them). */
  readonly ids: IdArena
  private hashes: Int32Array
  /** Slot i is `chunks[i >>> CHUNK_BITS][i & CHUNK_MASK]` (one chunk while capacity ≤ CHUNK). */
  private chunks: Array<Array<Slot<V>>>
  private capacity: number
  private mask: number
  /** 32 − log2(capacity): the home slot is the product's top bits. */
  private shift: number
  private live = 0
  private used = 0 // live + tombstones

  /**
   * `capacity` is rounded up to a power of two; below MIN_CAPACITY only when asked for
   * (the simulator makes thousands of runtimes holding a handful of agents each).
   */
  constructor (capacity = MIN_CAPACITY, ids: IdArena = new IdArena()) {
    this.ids = ids
    let cap = SMALLEST_CAPACITY
    while (cap < capacity) cap *= 2
    this.hashes = new Int32Array(cap)
    this.chunks = emptyChunks<V>(cap)
    this.capacity = cap
    this.mask = cap - 1
    this.shift = 32 - Math.log2(cap)
  }

  private home (h: number): number {
    return Math.imul(h, 0x9e3779b9) >>> this.shift
  }

  get size (): number {
    return this.live
  }

  /** @internal Slots in the table (a power of two); for tests. */
  get slots (): number {
    return this.capacity
  }

  get (id: string, hash: number): V | undefined {
    const h = hash | 0
    const chunks = this.chunks
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const c = chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
      if (c === undefined) return undefined
      if (this.hashes[i] === h && c !== TOMB && this.ids.equalsString(c.idRef as number, id)) return c
    }
  }

  /**
   * The cell whose id's UTF-8 bytes are `bytes[at, at + len)` (a message frame's): no
   * id string is decoded for a message to a resident agent.
   */
  getBytes (hash: number, bytes: Uint8Array, at: number, len: number): V | undefined {
    const h = hash | 0
    const chunks = this.chunks
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const c = chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
      if (c === undefined) return undefined
      if (this.hashes[i] === h && c !== TOMB && this.ids.equalsBytes(c.idRef as number, bytes, at, len)) return c
    }
  }

  /**
   * The cell in `hash`'s home slot if its stored hash is `hash`, else undefined: a hint
   * for prefetching (ShardRuntime.touch), not a lookup — the id is not compared, and a
   * cell further along the probe path is not found.
   */
  homeCell (hash: number): V | undefined {
    const h = hash | 0
    const i = this.home(h)
    const c = this.chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
    return this.hashes[i] === h && c !== TOMB ? c : undefined
  }

  /**
   * Insert or replace (the cell whose id is `id`); `value.idRef` is the ref of `id`'s
   * bytes in `ids`. Reuses the first tombstone on the probe path.
   */
  set (id: string, hash: number, value: V): void {
    if (this.used + 1 > this.capacity * MAX_LOAD) {
      this.rebuild(this.live + 1 > this.capacity * MAX_LOAD / 2 ? this.capacity * 2 : this.capacity)
    }
    const h = hash | 0
    const chunks = this.chunks
    let tomb = -1
    let i = this.home(h)
    for (; ; i = (i + 1) & this.mask) {
      const c = chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
      if (c === undefined) break
      if (c === TOMB) { if (tomb < 0) tomb = i; continue }
      if (this.hashes[i] === h && this.ids.equalsString(c.idRef as number, id)) { chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK] = value; return }
    }
    if (tomb >= 0) i = tomb
    else this.used++
    chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK] = value
    this.hashes[i] = h
    this.live++
  }

  /** Insert `value`, whose id the caller knows is not in the table (no id is compared). */
  add (hash: number, value: V): void {
    if (this.used + 1 > this.capacity * MAX_LOAD) {
      this.rebuild(this.live + 1 > this.capacity * MAX_LOAD / 2 ? this.capacity * 2 : this.capacity)
    }
    const h = hash | 0
    const chunks = this.chunks
    let i = this.home(h)
    for (; ; i = (i + 1) & this.mask) {
      const c = chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
      if (c === undefined) { this.used++; break }
      if (c === TOMB) break
    }
    chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK] = value
    this.hashes[i] = h
    this.live++
  }

  delete (id: string, hash: number): boolean {
    const h = hash | 0
    const chunks = this.chunks
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const c = chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
      if (c === undefined) return false
      if (this.hashes[i] === h && c !== TOMB && this.ids.equalsString(c.idRef as number, id)) {
        this.vacate(i)
        return true
      }
    }
  }

  /** Remove `value` itself (found by identity, no id compared); false if it is not in the table. */
  remove (value: V): boolean {
    const h = value.hash | 0
    const chunks = this.chunks
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const c = chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
      if (c === undefined) return false
      if (c === value) {
        this.vacate(i)
        return true
      }
    }
  }

  private vacate (i: number): void {
    const chunks = this.chunks
    const chunk = chunks[i >>> CHUNK_BITS]!
    // the next slot empty means no probe sequence runs through this one: no tombstone needed
    const n = (i + 1) & this.mask
    if (chunks[n >>> CHUNK_BITS]![n & CHUNK_MASK] === undefined) {
      chunk[i & CHUNK_MASK] = undefined
      this.used--
    } else {
      chunk[i & CHUNK_MASK] = TOMB
    }
    this.live--
  }

  /** @internal Mean distance of the live cells from their home slot (1 + probes per hit); for tests. */
  meanProbeDistance (): number {
    let total = 0
    for (let i = 0; i < this.capacity; i++) {
      const c = this.chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK]
      if (c !== undefined && c !== TOMB) total += (i - this.home(this.hashes[i]!)) & this.mask
    }
    return this.live === 0 ? 0 : total / this.live
  }

  * values (): IterableIterator<V> {
    for (const chunk of this.chunks) {
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i]
        if (c !== undefined && c !== TOMB) yield c
      }
    }
  }

  clear (): void {
    this.hashes = new Int32Array(MIN_CAPACITY)
    this.chunks = emptyChunks<V>(MIN_CAPACITY)
    this.capacity = MIN_CAPACITY
    this.mask = MIN_CAPACITY - 1
    this.shift = 32 - Math.log2(MIN_CAPACITY)
    this.live = 0
    this.used = 0
  }

  private rebuild (capacity: number): void {
    const oldHashes = this.hashes
    const oldChunks = this.chunks
    this.hashes = new Int32Array(capacity)
    const chunks = this.chunks = emptyChunks<V>(capacity)
    this.capacity = capacity
    this.mask = capacity - 1
    this.shift = 32 - Math.log2(capacity)
    let j = 0
    for (const old of oldChunks) {
      for (let k = 0; k < old.length; k++, j++) {
        const c = old[k]
        if (c === undefined || c === TOMB) continue
        const h = oldHashes[j]!
        let i = this.home(h)
        while (chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK] !== undefined) i = (i + 1) & this.mask
        chunks[i >>> CHUNK_BITS]![i & CHUNK_MASK] = c
        this.hashes[i] = h
      }
    }
    this.used = this.live
  }
}
