/**
 * The world's state for explore's visited set (`SimWorld.stateHash`): everything that
 * decides what can happen next — the messages in flight and their channel order, the
 * committed states and storage, the replies so far, the clock, the fault budget left,
 * and pending timer work. Built from the lanes of state-hash.ts.
 */
import type { Cell } from '../runtime/cell.ts'
import type { TypeInfo } from '../agent/registry.ts'
import { decodeSimValue, simCodec } from './codec.ts'
import type { Network } from './network.ts'
import type { SimStore } from './sim-store.ts'
import { Hash2, valueHash } from './state-hash.ts'
import type { Reply } from './world-view.ts'

const kUnencodable = Symbol('unencodable')

/** What the hash covers. */
export interface HashedWorld {
  readonly network: Network
  readonly store: SimStore
  /** The running sum of `replyHash` over the replies kept. */
  readonly replyHash: Hash2
  readonly tick: number
  readonly budget: number
  readonly faultsUsed: number
  readonly timersDue: boolean
  /** Orderings that reach the same hashed state may be merged (no rate limits, no pending agent timers). */
  readonly mergeable: boolean
  /** The choices that reached this world: hashed when it is not mergeable, so every path is its own state. */
  readonly path: Iterable<number>
  /** The runtime whose `durable: false` agents' resident cells are hashed (their states live nowhere else), or null. */
  readonly volatile: { readonly table: { values (): Iterable<Cell> }, idOf (cell: Cell): string, infoOf (cell: Cell): TypeInfo } | null
}

export function worldHash (w: HashedWorld): number {
  const labels = new Map<number, number>()
  const network = w.network.hash(labels)
  const h = new Hash2().chainHash(network).chainHash(w.store.hash(labels)).chainHash(w.replyHash).chain(w.tick)
  if (w.budget !== Infinity) h.chain(w.budget - w.faultsUsed)
  h.chain(w.timersDue ? 1 : 0)
  // rate limits, or pending agent timers: state outside what is hashed, so every path is its own state
  if (!w.mergeable) for (const c of w.path) h.chain(c)
  if (w.volatile !== null) {
    const sum = new Hash2(0, 0)
    for (const cell of w.volatile.table.values()) {
      if (w.volatile.infoOf(cell).def.durable !== false) continue
      // through the codec, as a commit would: what a host could keep of it
      let state: unknown
      try { state = decodeSimValue(simCodec.encode(cell.state)) } catch { state = kUnencodable }
      sum.add(Hash2.ofString(w.volatile.idOf(cell)).chainHash(valueHash(state)))
    }
    h.chainHash(sum)
  }
  return h.value()
}

/** One reply's part of the world hash (kept as a running sum: a reply replaced is subtracted). */
export function replyHash (callId: number, r: Reply): Hash2 {
  return new Hash2().chain(callId).chainHash(valueHash(r))
}
