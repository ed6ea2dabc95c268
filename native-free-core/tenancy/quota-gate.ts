/**
 * Quotas as one shard runtime enforces them (dist_agent; docs/architecture.md §8): a soft cap on the
 * agents that exist in a quota, checked when a new agent is created; existing agents are
 * never blocked by it.
 *
 * Lifecycle of one agent's unit of its quota's count (counts in quota-counters.ts):
 *
 *   first command of a new agent ── reserve: total < limit ? count+1, held+1 : QuotaExceededError
 *        │                                  (before the handler runs; kCounted on the cell)
 *        ├─ its batch commits ──────────── held−1 (the unit is now a stored agent)
 *        ├─ the batch fails / the cell is dropped before committing ── count−1, held−1
 *   ctx.delete of a stored agent, committed ── count−1
 *
 * Memory-only agents (durable: false) never commit: they hold their unit while resident
 * and give it back when dropped. Queries never create anything, but a query to a new
 * agent in a full quota gets QuotaExceededError (the agent cannot come to exist); an
 * agent in a quota that does not exist (never created, or deleted) gets
 * UnknownQuotaError, whether it is stored or not.
 *
 * Every committed creation and deletion is also written to the store in the same batch
 * (`WriteBatch.quotaDeltas`), so a durable store can rebuild the counts on restart
 * (quota-store.ts). The directory (which quotas exist, their slots and limits) is the
 * host's; it keeps every thread's copy in step with control messages it waits for.
 */
import { DEFAULT_QUOTA, kIdSeparator } from '../agent/agent-id.ts'
import { kCounted, kDelete, kNew } from '../runtime/cell.ts'
import type { Cell } from '../runtime/cell.ts'
import { QuotaExceededError, UnknownQuotaError } from '../errors.ts'
import type { ShoalError } from '../errors.ts'
import type { QuotaCounters } from './quota-counters.ts'

const kDefaultPrefix = DEFAULT_QUOTA + kIdSeparator
const kDefaultPrefixBytes = new TextEncoder().encode(kDefaultPrefix)

function hasPrefix (bytes: Uint8Array, at: number, len: number, prefix: Uint8Array): boolean {
  if (len < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false
  return true
}

/** Whether the id whose UTF-8 bytes are `bytes[at, at + len)` is of the default quota (a cell's kDefaultQuota). */
export function isDefaultQuotaBytes (bytes: Uint8Array, at: number, len: number): boolean {
  return hasPrefix(bytes, at, len, kDefaultPrefixBytes)
}

/** Whether the id `id` is of the default quota (a cell's kDefaultQuota). */
export function isDefaultQuotaId (id: string): boolean {
  return id.startsWith(kDefaultPrefix)
}

/** Which quotas exist: every name ever given a slot keeps it (counts outlive a delete). */
export class QuotaDirectory {
  private readonly slots = new Map<string, number>([[DEFAULT_QUOTA, 0]])
  /** Existing quotas' limits; Infinity: none. 'default' always exists. */
  private readonly limits = new Map<string, number>([[DEFAULT_QUOTA, Infinity]])
  private defaultLimit = Infinity

  slotOf (quota: string): number | undefined {
    return this.slots.get(quota)
  }

  limitOf (quota: string): number | undefined {
    return this.limits.get(quota)
  }

  /** Give `quota` its slot, and its limit (null: the quota no longer exists). */
  set (quota: string, slot: number, limit: number | null): void {
    this.slots.set(quota, slot)
    if (limit === null && quota !== DEFAULT_QUOTA) this.limits.delete(quota)
    else this.limits.set(quota, limit ?? Infinity)
    if (quota === DEFAULT_QUOTA) this.defaultLimit = limit ?? Infinity
  }

  /** Every name with a slot: [name, slot, limit], limit null for a quota that no longer exists. */
  snapshot (): Array<[string, number, number | null]> {
    return [...this.slots].map(([quota, slot]) => [quota, slot, this.limits.get(quota) ?? null])
  }

  /** Every name with a slot: [name, slot] (quotas deleted since included: their agents still count). */
  slotted (): IterableIterator<[string, number]> {
    return this.slots.entries()
  }

  /** Existing quotas: [name, slot, limit]. */
  * entries (): IterableIterator<[string, number, number]> {
    for (const [quota, limit] of this.limits) yield [quota, this.slots.get(quota)!, limit]
  }

  get nextSlot (): number {
    return this.slots.size
  }

  get defaultUnlimited (): boolean {
    return this.defaultLimit === Infinity
  }
}

/** One batch's quota effects, applied when the batch's commit completes (or fails). */
export interface QuotaBatch {
  /** Net committed creations per quota, for the store. */
  readonly deltas: ReadonlyArray<readonly [quota: string, delta: number]>
  /** Slots of the reservations this batch commits (held−1 on success, count−1 and held−1 on failure). */
  readonly created: readonly number[]
  /** Slots of stored agents this batch deletes (count−1 on success). */
  readonly deleted: readonly number[]
}

export class QuotaGate {
  readonly directory: QuotaDirectory
  readonly counters: QuotaCounters
  /** This runtime's column. */
  readonly thread: number
  private created: number[] = []
  private deleted: number[] = []
  private deltas: Map<string, number> | null = null

  constructor (directory: QuotaDirectory, counters: QuotaCounters, thread: number) {
    this.directory = directory
    this.counters = counters
    this.thread = thread
  }

  exists (quota: string): boolean {
    return this.directory.limitOf(quota) !== undefined
  }

  /**
   * May a message activate this agent? Its quota must exist; a new agent (nothing
   * stored) must fit under the limit. Null when it may.
   */
  /**
   * `admit` for the id whose UTF-8 bytes are `bytes[at, at + len)`, decoding it (`id()`)
   * only when the answer needs more than its prefix: an agent of the default quota is
   * admitted by its bytes (an activation makes no id string for it).
   */
  admitBytes (bytes: Uint8Array, at: number, len: number, isNew: boolean, id: () => string): ShoalError | null {
    if ((!isNew || this.directory.defaultUnlimited) && hasPrefix(bytes, at, len, kDefaultPrefixBytes)) return null
    return this.admit(id(), isNew)
  }

  admit (id: string, isNew: boolean): ShoalError | null {
    if (id.startsWith(kDefaultPrefix) && (!isNew || this.directory.defaultUnlimited)) return null
    const quota = quotaOf(id)
    const limit = this.directory.limitOf(quota)
    if (limit === undefined) return unknownQuota(quota)
    if (!isNew || limit === Infinity) return null
    const slot = this.directory.slotOf(quota)!
    const total = this.counters.total(slot)
    return total >= limit ? exceeded(quota, limit, total) : null
  }

  /** The first command of a new agent: take one unit of its quota, or refuse. */
  reserve (cell: Cell, id: string): ShoalError | null {
    return this.reserveIn(cell, quotaOfAny(id))
  }

  /** `reserve` for an agent of the default quota (its cell's kDefaultQuota): no id string. */
  reserveDefault (cell: Cell): ShoalError | null {
    return this.reserveIn(cell, DEFAULT_QUOTA)
  }

  private reserveIn (cell: Cell, quota: string): ShoalError | null {
    const limit = this.directory.limitOf(quota)
    if (limit === undefined) return unknownQuota(quota)
    const slot = this.directory.slotOf(quota)!
    if (limit !== Infinity) {
      const total = this.counters.total(slot)
      if (total >= limit) return exceeded(quota, limit, total)
    }
    this.counters.add(slot, this.thread, 1, 1)
    cell.flags |= kCounted
    return null
  }

  /** A counted cell (agent `id`) left the table before its creation committed. */
  release (cell: Cell, id: string): void {
    cell.flags &= ~kCounted
    this.counters.add(this.slotOfId(id), this.thread, -1, -1)
  }

  /** Called for each cell (agent `id`) whose state goes into the batch being built (flags not yet cleared). */
  committing (cell: Cell, id: string): void {
    this.committingIn(cell, quotaOfAny(id))
  }

  /** `committing` for an agent of the default quota (its cell's kDefaultQuota): no id string. */
  committingDefault (cell: Cell): void {
    this.committingIn(cell, DEFAULT_QUOTA)
  }

  private committingIn (cell: Cell, quota: string): void {
    const f = cell.flags
    if ((f & kCounted) !== 0) {
      cell.flags &= ~kCounted
      const slot = this.slotOfQuota(quota)
      if ((f & kDelete) !== 0) {
        // created and deleted before it was ever stored: nothing to keep
        this.counters.add(slot, this.thread, -1, -1)
        return
      }
      this.created.push(slot)
      this.delta(quota, 1)
    } else if ((f & kDelete) !== 0 && (f & kNew) === 0) {
      this.deleted.push(this.slotOfQuota(quota))
      this.delta(quota, -1)
    }
  }

  /** The quota effects of the batch just built, or null. */
  closeBatch (): QuotaBatch | null {
    if (this.created.length === 0 && this.deleted.length === 0) return null
    const batch: QuotaBatch = { deltas: [...this.deltas!].filter(([, d]) => d !== 0), created: this.created, deleted: this.deleted }
    this.created = []
    this.deleted = []
    this.deltas = null
    return batch
  }

  committed (batch: QuotaBatch): void {
    for (const slot of batch.created) this.counters.add(slot, this.thread, 0, -1)
    for (const slot of batch.deleted) this.counters.add(slot, this.thread, -1, 0)
  }

  failed (batch: QuotaBatch): void {
    for (const slot of batch.created) this.counters.add(slot, this.thread, -1, -1)
  }

  private delta (quota: string, d: number): void {
    const m = (this.deltas ??= new Map())
    m.set(quota, (m.get(quota) ?? 0) + d)
  }

  private slotOfId (id: string): number {
    return id.startsWith(kDefaultPrefix) ? 0 : this.directory.slotOf(quotaOf(id))!
  }

  private slotOfQuota (quota: string): number {
    return quota === DEFAULT_QUOTA ? 0 : this.directory.slotOf(quota)!
  }
}

/** `quotaOf`, without a slice for the default quota's ids. */
function quotaOfAny (id: string): string {
  return id.startsWith(kDefaultPrefix) ? DEFAULT_QUOTA : quotaOf(id)
}

export function quotaOf (id: string): string {
  return id.slice(0, id.indexOf(kIdSeparator))
}

function unknownQuota (quota: string): UnknownQuotaError {
  return new UnknownQuotaError(`quota ${JSON.stringify(quota)} does not exist (create it with host.quotas.set)`, { quota })
}

function exceeded (quota: string, limit: number, count: number): QuotaExceededError {
  return new QuotaExceededError(`quota ${JSON.stringify(quota)} is full: ${count} agents, limit ${limit}`, { quota, limit, count })
}
