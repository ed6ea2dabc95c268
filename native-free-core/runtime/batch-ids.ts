/**
 * The ids of one commit's states (`WriteBatch.stateIds`), as UTF-8 bytes copied into one
 * buffer as the batch's cells are staged.
 *
 * A resident cell's id is bytes in the runtime's IdArena, and the store keys a state by
 * them: no id string per committed state (making one from the arena for each key cost
 * the durable fanout 0.53–0.62× → 0.47–0.55× of raw puts; bench/RESULTS.md, issue 13).
 * They are copied when the cell is staged (`CommitPipeline.stage`), right after its turn —
 * the message that ran it was matched against the record, which is in cache then. Copied
 * in the commit loop instead, a batch of thousands of turns later, each record was a cache
 * miss there (the loop's own time 0.84 → 1.39 µs per state); read by the store as it writes
 * its keys, later still. A cell's record is given back, and may be reused, once it is
 * dropped: here the ids are the batch's own, until its commit has settled.
 *
 * An entry is added per staged cell (`addRef`, or `addString` for a cell that holds its id
 * as a string); the commit loop then says which entries became which states (`keep`: a
 * poisoned or unencodable cell's entry is left out). The buffers are reused: the pipeline
 * hands a settled batch's BatchIds to a later batch (`reset`), so a commit allocates none.
 *
 *   bytes: [id 0][id 1]…     spans[2k], spans[2k + 1]: where the k-th id starts and ends
 *                            (start −1: the batch's state holds its id as a string)
 */
import type { Utf8Decode } from '../agent/envelope.ts'
import type { PackedStates } from '../storage/packed-states.ts'
import type { StateIds } from '../storage/store.ts'
import type { IdArena } from './id-arena.ts'

/** Bytes to start with: a default-quota id of a short key is ≈ 25–40 B. */
const kInitialBytes = 16 * 1024
/** Entries to start with. */
const kInitialEntries = 512

export class BatchIds implements StateIds {
  private bytes: Uint8Array
  private spans: Int32Array
  private top = 0
  private count = 0
  private readonly decode: Utf8Decode

  /** `initialBytes`, `initialEntries`: room for ids to start with (tests and the simulator make it small). */
  constructor (decode: Utf8Decode, initialBytes = kInitialBytes, initialEntries = kInitialEntries) {
    this.decode = decode
    this.bytes = new Uint8Array(Math.max(16, initialBytes))
    this.spans = new Int32Array(2 * Math.max(1, initialEntries))
  }

  /** Entries added (staged cells), or states kept once the commit loop has run. */
  get length (): number {
    return this.count
  }

  /** Bytes of room this batch holds (reused with it). */
  get capacity (): number {
    return this.bytes.length
  }

  /** The next entry's id is the record `ref` of `arena`: its bytes are copied now. */
  addRef (arena: IdArena, ref: number): void {
    const len = arena.byteLength(ref)
    const k = this.count
    if (2 * k + 2 > this.spans.length) this.growSpans()
    if (this.top + len > this.bytes.length) this.grow(len)
    const start = this.top
    this.top = start + arena.copyTo(ref, this.bytes, start)
    this.spans[2 * k] = start
    this.spans[2 * k + 1] = this.top
    this.count = k + 1
  }

  /** The next entry's id is held by the batch's state as a string: nothing here. */
  addString (): void {
    const k = this.count
    if (2 * k + 2 > this.spans.length) this.growSpans()
    this.spans[2 * k] = -1
    this.spans[2 * k + 1] = -1
    this.count = k + 1
  }

  /** Whether entry `k`'s id is bytes here (else its state holds it as a string). */
  hasBytes (k: number): boolean {
    return this.spans[2 * k]! >= 0
  }

  /**
   * Entry `from` (in staging order) becomes state `to` (`to` ≤ `from`; the commit loop
   * calls this for each state it keeps, in order). Then `truncate(states)`.
   */
  keep (from: number, to: number): void {
    if (from === to) return
    const s = this.spans
    s[2 * to] = s[2 * from]!
    s[2 * to + 1] = s[2 * from + 1]!
  }

  /** Only the first `n` entries are states (after `keep`). */
  truncate (n: number): void {
    this.count = n
  }

  /** Empty, keeping the room: for the next batch. */
  reset (): void {
    this.top = 0
    this.count = 0
  }

  id (k: number): string {
    const s = this.spans
    return this.decode(this.bytes, s[2 * k]!, s[2 * k + 1]!)
  }

  writeId (k: number, into: Uint8Array, at: number): number {
    const start = this.spans[2 * k]!
    const n = this.spans[2 * k + 1]! - start
    const bytes = this.bytes
    if (n <= 48) {
      for (let i = 0; i < n; i++) into[at + i] = bytes[start + i]!
    } else {
      into.set(bytes.subarray(start, start + n), at)
    }
    return n
  }

  /** The states with every id a string and bytes of their own (for those that read them by id and keep them: followers). */
  resolved (states: PackedStates): Array<readonly [string, Uint8Array | null, number]> {
    const out: Array<readonly [string, Uint8Array | null, number]> = []
    for (let k = 0; k < states.length; k++) out.push([states.id(k) ?? this.id(k), states.copy(k), states.hash(k)])
    return out
  }

  private grow (len: number): void {
    const next = new Uint8Array(Math.max(2 * this.bytes.length, this.top + len))
    next.set(this.bytes.subarray(0, this.top))
    this.bytes = next
  }

  private growSpans (): void {
    const next = new Int32Array(2 * this.spans.length)
    next.set(this.spans)
    this.spans = next
  }
}
