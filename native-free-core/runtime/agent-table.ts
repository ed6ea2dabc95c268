/**
 * The resident agents of one shard runtime: id → cell, as an open-addressing hash
 * table keyed by the placement hash every message already carries.
 *
 *   slot:    0        1        2      3        ...   (capacity, a power of two)
 *   slots:   t0|1+i0  t1|1+i1  0      TOMB           Int32Array: hash tag | 1 + slab index,
 *                                                    0 (empty) or TOMB (deleted)
 *   slab:    c(i0)  c(i1)  ...                       the cells, by index, never moved
 *
 * Linear probing from the home slot `home(hash)`; a lookup compares 6-bit hash tags,
 * on a match the cell's int32 hash, and then the id: a resident cell holds no id
 * string, only the ref of its id's UTF-8 bytes in the runtime's IdArena (`cell.idRef`,
 * see id-arena.ts), compared with a string (`get`) or with a message frame's bytes
 * (`getBytes`).
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
 * - 4 bytes per slot at a load factor of at most 0.7, plus 8 per cell (the slab), against
 *   ~40 for a Map entry.
 *
 * The table holds no pointer. A slot is one int32: the cell's index in the table's
 * *slab* (+1, so that 0 is an empty slot) in the low 26 bits and a 6-bit tag of the hash
 * in the top 6; the cells themselves sit in the slab, chunks of SLAB_CHUNK entries
 * filled in order (a removed cell's index is reused), never moved. A lookup compares
 * tags, and on a match reads the cell and compares its hash and then its id: one tag in
 * 64 matches by chance. Growth (doubling) re-places the int32 slots only — no cell is
 * moved, no array of pointers is allocated and filled, nothing the GC visits. Before,
 * the table held the cells themselves (a 1 MiB JS array per 2^17 slots, beside an
 * Int32Array of hashes: 12 B a slot): each doubling allocated, filled and re-placed a
 * whole new set of pointer arrays, 8–11 % of an activating worker's time and 11.5 % of
 * the activation's page faults (bench/RESULTS.md, issue 13, 2026-12-07 night and
 * late night). Now a slot is 4 B, plus 8 B per cell in the slab (the cell).
 *
 * Deleted slots become tombstones (probes continue past them); the slots are re-placed
 * from the cells' hashes, in slab order, without touching a string, when live + tombstones
 * pass the load factor. A table holds at most MAX_CELLS (67,108,862) cells: past that
 * `CapacityExceededError`.
 *
 * The slab's first chunk starts at the table's capacity and doubles (copied) up to
 * SLAB_CHUNK (2^16) entries, so a runtime holding a handful of agents (the simulator
 * makes thousands) holds a small array; after it, each chunk is made whole, 512 KiB, a
 * young large object, promoted by handing its page to the old generation, not copied.
 * (The earlier layout allocated a grown table of pointers all at once: one 64 MiB
 * array was the longest GC pause at 10M agents, chunks of 64 KiB were copied twice in
 * bursts of 40–65 ms scavenges — bench/RESULTS.md, issue 13. The slab grows by one
 * chunk per 65,536 activations instead.)
 */

import { CapacityExceededError } from '../errors.ts'
import { IdArena } from './id-arena.ts'

const MAX_LOAD = 0.7
const MIN_CAPACITY = 1024
const SMALLEST_CAPACITY = 8
/** A slot: the hash's tag in the top TAG_BITS bits, 1 + the cell's slab index in the rest. */
const TAG_BITS = 6
const IDX_BITS = 32 - TAG_BITS
const IDX_MASK = (1 << IDX_BITS) - 1
/** An empty slot (no probe runs past it). */
const EMPTY = 0
/** A deleted slot: all bits set — tag 63 with index field IDX_MASK, which no cell gets. */
const TOMB = -1
/** Cells one table can hold: index fields 1 .. IDX_MASK − 1. */
export const MAX_CELLS = IDX_MASK - 1
/** Cells per slab chunk: 2^16 × 8 B = 512 KiB, a young large object (see above). */
const SLAB_BITS = 16
const SLAB_CHUNK = 1 << SLAB_BITS
const SLAB_MASK = SLAB_CHUNK - 1

export interface Keyed {
  /** While in the table: the ref of the id's bytes in the table's IdArena (a number). */
  idRef: number | string
  readonly hash: number
}

/** The tag a slot keeps of an (int32) hash: bits the home slot does not spend alone. */
function tagOf (h: number): number {
  return ((h ^ (h >>> 16)) & ((1 << TAG_BITS) - 1)) << IDX_BITS
}

export class AgentTable<V extends Keyed> {
  /** The ids of the cells in the table (the caller adds and releases them). */
  readonly ids: IdArena
  /** Slot i: tagOf(hash) | (1 + slab index), EMPTY or TOMB. */
  private index!: Int32Array
  private capacity!: number
  private mask!: number
  /** 32 − log2(capacity): the home slot is the product's top bits. */
  private shift!: number
  private live = 0
  private used = 0 // live + tombstones
  /**
   * The cells by index: cell i is `slab[i >>> SLAB_BITS][i & SLAB_MASK]` (undefined once
   * removed, its index then in `free`). Every chunk is a holey array of SLAB_CHUNK
   * entries, but the first, which starts small and doubles up to SLAB_CHUNK.
   */
  private slab!: Array<Array<V | undefined>>
  /** Indexes never handed out start here. */
  private next = 0
  /** Indexes handed out before and free again (a stack). */
  private free: number[] = []

  /**
   * `capacity` is rounded up to a power of two; below MIN_CAPACITY only when asked for
   * (the simulator makes thousands of runtimes holding a handful of agents each).
   */
  constructor (capacity = MIN_CAPACITY, ids: IdArena = new IdArena()) {
    this.ids = ids
    let cap = SMALLEST_CAPACITY
    while (cap < capacity) cap *= 2
    this.empty(cap)
  }

  /** No cell, `capacity` empty slots, and a first slab chunk of as many entries (at most SLAB_CHUNK). */
  private empty (capacity: number): void {
    this.newSlots(capacity)
    this.live = 0
    this.used = 0
    this.slab = [new Array<V | undefined>(Math.min(capacity, SLAB_CHUNK))]
    this.next = 0
    this.free = []
  }

  /** A new slot array of `capacity` (a power of two), all empty, and the fields derived from its size. */
  private newSlots (capacity: number): Int32Array {
    this.capacity = capacity
    this.mask = capacity - 1
    this.shift = 32 - Math.log2(capacity)
    return (this.index = new Int32Array(capacity))
  }

  private home (h: number): number {
    return Math.imul(h, 0x9e3779b9) >>> this.shift
  }

  private cellAt (e: number): V {
    const x = (e & IDX_MASK) - 1
    return this.slab[x >>> SLAB_BITS]![x & SLAB_MASK]!
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
    const tag = tagOf(h)
    const slots = this.index
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const e = slots[i]!
      if (e === EMPTY) return undefined
      if ((e & ~IDX_MASK) === tag && e !== TOMB) {
        const c = this.cellAt(e)
        if ((c.hash | 0) === h && this.ids.equalsString(c.idRef as number, id)) return c
      }
    }
  }

  /**
   * The cell whose id's UTF-8 bytes are `bytes[at, at + len)` (a message frame's): no
   * id string is decoded for a message to a resident agent.
   */
  getBytes (hash: number, bytes: Uint8Array, at: number, len: number): V | undefined {
    const h = hash | 0
    const tag = tagOf(h)
    const slots = this.index
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const e = slots[i]!
      if (e === EMPTY) return undefined
      if ((e & ~IDX_MASK) === tag && e !== TOMB) {
        const c = this.cellAt(e)
        if ((c.hash | 0) === h && this.ids.equalsBytes(c.idRef as number, bytes, at, len)) return c
      }
    }
  }

  /**
   * The cell in `hash`'s home slot if its tag is `hash`'s, else undefined: a hint for
   * prefetching (ShardRuntime.touch), not a lookup — neither the hash nor the id is
   * compared, and a cell further along the probe path is not found.
   */
  homeCell (hash: number): V | undefined {
    const h = hash | 0
    const e = this.index[this.home(h)]!
    return e !== EMPTY && e !== TOMB && (e & ~IDX_MASK) === tagOf(h) ? this.cellAt(e) : undefined
  }

  /**
   * Insert or replace (the cell whose id is `id`); `value.idRef` is the ref of `id`'s
   * bytes in `ids`, `value.hash` is `hash`. Reuses the first tombstone on the probe path.
   */
  set (id: string, hash: number, value: V): void {
    this.room()
    const h = hash | 0
    const tag = tagOf(h)
    const slots = this.index
    let tomb = -1
    let i = this.home(h)
    for (; ; i = (i + 1) & this.mask) {
      const e = slots[i]!
      if (e === EMPTY) break
      if (e === TOMB) { if (tomb < 0) tomb = i; continue }
      if ((e & ~IDX_MASK) === tag) {
        const c = this.cellAt(e)
        if ((c.hash | 0) === h && this.ids.equalsString(c.idRef as number, id)) {
          const x = (e & IDX_MASK) - 1
          this.slab[x >>> SLAB_BITS]![x & SLAB_MASK] = value
          return
        }
      }
    }
    const x = this.place(value) // may throw (the table is full): nothing changed before it
    if (tomb >= 0) i = tomb
    else this.used++
    slots[i] = tag | (x + 1)
    this.live++
  }

  /** Insert `value` (its hash is `hash`), whose id the caller knows is not in the table (no id is compared). */
  add (hash: number, value: V): void {
    this.room()
    const h = hash | 0
    const slots = this.index
    let i = this.home(h)
    let fresh = false
    for (; ; i = (i + 1) & this.mask) {
      const e = slots[i]!
      if (e === EMPTY) { fresh = true; break }
      if (e === TOMB) break
    }
    const x = this.place(value) // may throw (the table is full): nothing changed before it
    if (fresh) this.used++
    slots[i] = tagOf(h) | (x + 1)
    this.live++
  }

  /** Grow (or purge tombstones) before a slot is taken, when it would pass the load factor. */
  private room (): void {
    if (this.used + 1 > this.capacity * MAX_LOAD) {
      this.rebuild(this.live + 1 > this.capacity * MAX_LOAD / 2 ? this.capacity * 2 : this.capacity)
    }
  }

  /** Put `value` in the slab: a freed index, else the next one (the slab grows by a chunk). */
  private place (value: V): number {
    let x: number
    if (this.free.length > 0) {
      x = this.free.pop()!
    } else {
      x = this.next
      if (x >= MAX_CELLS) {
        throw new CapacityExceededError(`an agent table holds at most ${MAX_CELLS} agents`, { limit: MAX_CELLS })
      }
      const slab = this.slab
      const c = x >>> SLAB_BITS
      if (c === 0) {
        const first = slab[0]!
        if (x >= first.length) { // the first chunk doubles up to SLAB_CHUNK
          const grown = new Array<V | undefined>(first.length * 2)
          for (let k = 0; k < first.length; k++) grown[k] = first[k]
          slab[0] = grown
        }
      } else if (c >= slab.length) {
        slab.push(new Array<V | undefined>(SLAB_CHUNK))
      }
      this.next = x + 1
    }
    this.slab[x >>> SLAB_BITS]![x & SLAB_MASK] = value
    return x
  }

  delete (id: string, hash: number): boolean {
    const h = hash | 0
    const tag = tagOf(h)
    const slots = this.index
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const e = slots[i]!
      if (e === EMPTY) return false
      if ((e & ~IDX_MASK) === tag && e !== TOMB) {
        const c = this.cellAt(e)
        if ((c.hash | 0) === h && this.ids.equalsString(c.idRef as number, id)) {
          this.vacate(i)
          return true
        }
      }
    }
  }

  /** Remove `value` itself (found by identity, no id compared); false if it is not in the table. */
  remove (value: V): boolean {
    const h = value.hash | 0
    const tag = tagOf(h)
    const slots = this.index
    for (let i = this.home(h); ; i = (i + 1) & this.mask) {
      const e = slots[i]!
      if (e === EMPTY) return false
      if ((e & ~IDX_MASK) === tag && e !== TOMB && this.cellAt(e) === value) {
        this.vacate(i)
        return true
      }
    }
  }

  private vacate (i: number): void {
    const slots = this.index
    const x = (slots[i]! & IDX_MASK) - 1
    this.slab[x >>> SLAB_BITS]![x & SLAB_MASK] = undefined
    this.free.push(x)
    // the next slot empty means no probe sequence runs through this one: no tombstone needed
    if (slots[(i + 1) & this.mask] === EMPTY) {
      slots[i] = EMPTY
      this.used--
    } else {
      slots[i] = TOMB
    }
    this.live--
  }

  /** @internal Mean distance of the live cells from their home slot (1 + probes per hit); for tests. */
  meanProbeDistance (): number {
    let total = 0
    for (let i = 0; i < this.capacity; i++) {
      const e = this.index[i]!
      if (e !== EMPTY && e !== TOMB) total += (i - this.home(this.cellAt(e).hash | 0)) & this.mask
    }
    return this.live === 0 ? 0 : total / this.live
  }

  /** The cells, in slab order (the order they were placed in, freed indexes reused). */
  * values (): IterableIterator<V> {
    const n = this.next
    for (let x = 0; x < n; x++) {
      const c = this.slab[x >>> SLAB_BITS]![x & SLAB_MASK]
      if (c !== undefined) yield c
    }
  }

  clear (): void {
    this.empty(MIN_CAPACITY)
  }

  /**
   * Re-place every cell's slot in a table of `capacity` slots, in slab order, from each
   * cell's `hash`: no tombstone is kept, no cell moves. (An Int32Array of the hashes beside
   * the slab, read instead of the cells, was 4 B a cell and no faster — bench/RESULTS.md,
   * issue 13, 2026-12-08.)
   */
  private rebuild (capacity: number): void {
    const slots = this.newSlots(capacity)
    // written once, in order, before the probes below read it: a large typed array's
    // pages come from the kernel untouched, and a page first *read* (a probe) maps the
    // zero page, then faults again when written — two faults of ≈ 8.5 µs for each page
    // of a doubled table, in random order (the rebuild's probe line held most of its
    // samples before; bench/RESULTS.md, issue 13, 2026-12-07 late night)
    if (capacity > 4096) slots.fill(EMPTY)
    const mask = this.mask
    const shift = this.shift
    const n = this.next
    const slab = this.slab
    for (let c = 0; c * SLAB_CHUNK < n; c++) {
      const chunk = slab[c]!
      const end = Math.min(SLAB_CHUNK, n - c * SLAB_CHUNK)
      for (let k = 0; k < end; k++) {
        const v = chunk[k]
        if (v === undefined) continue
        const h = v.hash | 0
        let i = Math.imul(h, 0x9e3779b9) >>> shift
        while (slots[i] !== EMPTY) i = (i + 1) & mask
        slots[i] = tagOf(h) | (c * SLAB_CHUNK + k + 1)
      }
    }
    this.used = this.live
  }
}
