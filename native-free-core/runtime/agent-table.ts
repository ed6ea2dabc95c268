/**
 * The resident agents of one shard runtime: id → cell, as an open-addressing hash
 * table keyed by the placement hash every message already carries.
 *
 *   slot:    0      1      2      3      ...   (capacity, a power of two)
 *   hashes:  [h0]   [h1]   [  ]   [h3]         Int32Array: the agent's 32-bit hash
 *   cells:   c0     c1     ∅      TOMB         the cell, ∅ (empty) or TOMB (deleted)
 *
 * Linear probing from the home slot `home(hash)`; a lookup compares int32 hashes and,
 * on a match, the id string (`cell.id === id`).
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
 */

import { asciiEquals } from '../agent/agent-id.ts'

const TOMB = Symbol('deleted')
const MAX_LOAD = 0.7
const MIN_CAPACITY = 1024
const SMALLEST_CAPACITY = 8

export interface Keyed {
  readonly id: string
  readonly hash: number
}

export class AgentTable<V extends Keyed> {
  private hashes: Int32Array
  private cells: Array<V | typeof TOMB | undefined>
  private mask: number
  /** 32 − log2(capacity): the home slot is the product's top bits. */
  private shift: number
  private live = 0
  private used = 0 // live + tombstones

  /**
   * `capacity` is rounded up to a power of two; below MIN_CAPACITY only when asked for
   * (the simulator makes thousands of runtimes holding a handful of agents each).
   */
  constructor (capacity = MIN_CAPACITY) {
    let cap = SMALLEST_CAPACITY
    while (cap < capacity) cap *= 2
    this.hashes = new Int32Array(cap)
    this.cells = new Array<V | typeof TOMB | undefined>(cap).fill(undefined)
    this.mask = cap - 1
    this.shift = 32 - Math.log2(cap)
  }

  private home (h: number): number {
    return Math.imul(h, 0x9e3779b9) >>> this.shift
  }

  get size (): number {
    return this.live
  }

  get (id: string, hash: number): V | undefined {
    const h = hash | 0
    const cells = this.cells
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const c = cells[i]
      if (c === undefined) return undefined
      if (this.hashes[i] === h && c !== TOMB && c.id === id) return c
    }
  }

  /**
   * The id of the resident agent whose id's UTF-8 bytes are `bytes[at, at + len)`, or
   * undefined — also when the id is not ASCII (the caller decodes the bytes then). A
   * message's id found here need not be decoded into a new string, and the lookup that
   * follows (`get`) compares it with the cell's id by identity.
   */
  idOf (hash: number, bytes: Uint8Array, at: number, len: number): string | undefined {
    const h = hash | 0
    const cells = this.cells
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const c = cells[i]
      if (c === undefined) return undefined
      if (this.hashes[i] === h && c !== TOMB && asciiEquals(c.id, bytes, at, len)) return c.id
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
    const c = this.cells[i]
    return this.hashes[i] === h && c !== TOMB ? c : undefined
  }

  /** Insert or replace. Reuses the first tombstone on the probe path. */
  set (id: string, hash: number, value: V): void {
    if (this.used + 1 > this.cells.length * MAX_LOAD) {
      this.rebuild(this.live + 1 > this.cells.length * MAX_LOAD / 2 ? this.cells.length * 2 : this.cells.length)
    }
    const h = hash | 0
    const cells = this.cells
    let tomb = -1
    let i = this.home(h)
    for (; ; i = (i + 1) & this.mask) {
      const c = cells[i]
      if (c === undefined) break
      if (c === TOMB) { if (tomb < 0) tomb = i; continue }
      if (this.hashes[i] === h && c.id === id) { cells[i] = value; return }
    }
    if (tomb >= 0) i = tomb
    else this.used++
    cells[i] = value
    this.hashes[i] = h
    this.live++
  }

  delete (id: string, hash: number): boolean {
    const h = hash | 0
    const cells = this.cells
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const c = cells[i]
      if (c === undefined) return false
      if (this.hashes[i] === h && c !== TOMB && c.id === id) {
        // the next slot empty means no probe sequence runs through this one: no tombstone needed
        if (cells[(i + 1) & this.mask] === undefined) {
          cells[i] = undefined
          this.used--
        } else {
          cells[i] = TOMB
        }
        this.live--
        return true
      }
    }
  }

  /** @internal Mean distance of the live cells from their home slot (1 + probes per hit); for tests. */
  meanProbeDistance (): number {
    let total = 0
    for (let i = 0; i < this.cells.length; i++) {
      const c = this.cells[i]
      if (c !== undefined && c !== TOMB) total += (i - this.home(this.hashes[i]!)) & this.mask
    }
    return this.live === 0 ? 0 : total / this.live
  }

  * values (): IterableIterator<V> {
    const cells = this.cells
    for (let i = 0; i < cells.length; i++) {
      const c = cells[i]
      if (c !== undefined && c !== TOMB) yield c
    }
  }

  clear (): void {
    this.hashes = new Int32Array(MIN_CAPACITY)
    this.cells = new Array<V | typeof TOMB | undefined>(MIN_CAPACITY).fill(undefined)
    this.mask = MIN_CAPACITY - 1
    this.shift = 32 - Math.log2(MIN_CAPACITY)
    this.live = 0
    this.used = 0
  }

  private rebuild (capacity: number): void {
    const oldHashes = this.hashes
    const oldCells = this.cells
    this.hashes = new Int32Array(capacity)
    this.cells = new Array<V | typeof TOMB | undefined>(capacity).fill(undefined)
    this.mask = capacity - 1
    this.shift = 32 - Math.log2(capacity)
    for (let j = 0; j < oldCells.length; j++) {
      const c = oldCells[j]
      if (c === undefined || c === TOMB) continue
      const h = oldHashes[j]!
      let i = this.home(h)
      while (this.cells[i] !== undefined) i = (i + 1) & this.mask
      this.cells[i] = c
      this.hashes[i] = h
    }
    this.used = this.live
  }
}
