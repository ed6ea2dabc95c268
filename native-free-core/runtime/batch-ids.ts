/**
 * The ids of one commit's states (`WriteBatch.stateIds`), as UTF-8 bytes copied into one
 * buffer while the batch is built.
 *
 * A resident cell's id is bytes in the runtime's IdArena, and the store keys a state by
 * them: no id string per committed state (making one from the arena for each key cost
 * the durable fanout 0.53–0.62× → 0.47–0.55× of raw puts; bench/RESULTS.md, issue 13).
 * They are copied here, not read from the arena when the store writes its keys: the
 * commit loop has just loaded each record (its touch-ahead), while the store's loop comes
 * a whole batch later, when thousands of records have left the caches — and a cell's
 * record is given back, and may be reused, once it is dropped. Here they are the batch's
 * own, in order, for as long as anyone holds the batch.
 *
 *   bytes: [id 0][id 1]…        ends[k]: where the k-th id ends (an id held as a string: empty)
 */
import type { Utf8Decode } from '../agent/envelope.ts'
import type { StateIds } from '../storage/store.ts'
import type { IdArena } from './id-arena.ts'

/** Bytes per id to start with: a default-quota id of a short key is ≈ 25–40 B. */
const kBytesPerId = 48

export class BatchIds implements StateIds {
  private bytes: Uint8Array
  private readonly ends: number[] = []
  private top = 0
  private readonly decode: Utf8Decode

  /** `expected`: states the batch may hold (room is made for them at once). */
  constructor (decode: Utf8Decode, expected: number) {
    this.decode = decode
    this.bytes = new Uint8Array(Math.max(256, expected * kBytesPerId))
  }

  /** The next state's id is the record `ref` of `arena`. */
  addRef (arena: IdArena, ref: number): void {
    const len = arena.byteLength(ref)
    if (this.top + len > this.bytes.length) this.grow(len)
    this.top += arena.copyTo(ref, this.bytes, this.top)
    this.ends.push(this.top)
  }

  /** The next state's id is in the batch as a string: nothing here. */
  skip (): void {
    this.ends.push(this.top)
  }

  id (k: number): string {
    return this.decode(this.bytes, k === 0 ? 0 : this.ends[k - 1]!, this.ends[k]!)
  }

  writeId (k: number, into: Uint8Array, at: number): number {
    const start = k === 0 ? 0 : this.ends[k - 1]!
    const n = this.ends[k]! - start
    const bytes = this.bytes
    if (n <= 48) {
      for (let i = 0; i < n; i++) into[at + i] = bytes[start + i]!
    } else {
      into.set(bytes.subarray(start, start + n), at)
    }
    return n
  }

  /** The states with every id a string (for those that read them by id: followers). */
  resolved (states: ReadonlyArray<readonly [string | null, Uint8Array | null, number]>): Array<readonly [string, Uint8Array | null, number]> {
    return states.map(([id, bytes, hash], k) => [id ?? this.id(k), bytes, hash] as const)
  }

  private grow (len: number): void {
    const next = new Uint8Array(Math.max(2 * this.bytes.length, this.top + len))
    next.set(this.bytes.subarray(0, this.top))
    this.bytes = next
  }
}
