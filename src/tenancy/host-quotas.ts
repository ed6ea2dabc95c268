/**
 * `host.quotas`: create, change, read and delete quotas (dist_agent). A quota caps the
 * agents that exist in it (a soft limit, see quota-counters.ts); 'default' always exists
 * and has no limit unless given one.
 *
 *   await host.quotas.set('tenant-a', 100_000)   // create or change; resolves once every
 *   host.quotas.get('tenant-a')                  //   worker enforces it
 *   // → { quota: 'tenant-a', limit: 100000, count: 1234 }
 *   host.quotas.list()
 *   await host.quotas.delete('tenant-a')         // its agents can no longer be reached
 *
 * The main thread owns the directory (which quotas exist, their counter slots and
 * limits) and persists limits through QuotaRecords (quota-store.ts). Every worker holds
 * a copy, updated by a control message (postMessage: rare, never per agent message) that
 * `set` and `delete` wait for, so a call made after `await quotas.set(...)` is checked
 * against the new limit on whichever worker it lands. Counts are read straight from the
 * shared counters: `get` and `list` are synchronous and cost no round trip.
 *
 * Deleting a quota keeps its counts: its agents are still stored, and a quota created
 * again under the same name starts from them.
 */
import { DEFAULT_QUOTA, checkName } from '../../native-free-core/agent/agent-id.ts'
import { InvalidArgumentError } from '../../native-free-core/errors.ts'
import { QuotaCounters } from '../../native-free-core/tenancy/quota-counters.ts'
import { QuotaDirectory } from '../../native-free-core/tenancy/quota-gate.ts'
import type { QuotaRecords } from '../../native-free-core/tenancy/quota-store.ts'

/** One quota as `get` and `list` report it. */
export interface QuotaInfo {
  readonly quota: string
  /** Most agents that may exist in it; Infinity: no limit. */
  readonly limit: number
  /** Agents that exist in it now (stored, or resident and created by a command). */
  readonly count: number
}

/** A change of the directory, for the workers' copies. */
export interface QuotaUpdate {
  readonly quota: string
  readonly slot: number
  /** null: the quota was deleted. */
  readonly limit: number | null
  /** A counter chunk allocated for this slot, which the workers do not have yet. */
  readonly chunk: SharedArrayBuffer | null
}

/** The directory a worker starts with. */
export interface QuotaSnapshot {
  readonly entries: ReadonlyArray<readonly [quota: string, slot: number, limit: number | null]>
  readonly chunks: readonly SharedArrayBuffer[]
}

export interface Quotas {
  /** Create a quota, or change its limit (a whole number ≥ 0, or Infinity). Existing agents are never affected. */
  set (quota: string, limit: number): Promise<void>
  get (quota: string): QuotaInfo | undefined
  /** Delete a quota; false if it did not exist. 'default' cannot be deleted. */
  delete (quota: string): Promise<boolean>
  list (): QuotaInfo[]
}

const MAX_LIMIT = 2 ** 31 - 1

export class HostQuotas implements Quotas {
  readonly directory = new QuotaDirectory()
  readonly counters: QuotaCounters
  private readonly records: QuotaRecords
  private readonly broadcast: (update: QuotaUpdate) => Promise<void>
  /** set/delete run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor (threads: number, records: QuotaRecords, broadcast: (update: QuotaUpdate) => Promise<void>) {
    this.counters = new QuotaCounters(threads)
    this.records = records
    this.broadcast = broadcast
    for (const [quota, limit] of records.quotaLimits()) this.directory.set(quota, this.slotFor(quota).slot, limit)
    for (const [quota, count] of records.quotaCounts()) this.counters.setBase(this.slotFor(quota).slot, count)
  }

  has (quota: string): boolean {
    return this.directory.limitOf(quota) !== undefined
  }

  set (quota: string, limit: number): Promise<void> {
    try {
      checkName('quota', quota)
    } catch (err) {
      return Promise.reject(err)
    }
    if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0 && limit <= MAX_LIMIT))) {
      return Promise.reject(new InvalidArgumentError(
        `a quota's limit must be a whole number from 0 to ${MAX_LIMIT}, or Infinity (got ${String(limit)})`, { quota, limit: String(limit) }))
    }
    return this.serially(async () => {
      await this.records.putQuotaLimit(quota, limit)
      const { slot, chunk } = this.slotFor(quota)
      this.directory.set(quota, slot, limit)
      await this.broadcast({ quota, slot, limit, chunk })
    })
  }

  get (quota: string): QuotaInfo | undefined {
    const limit = this.directory.limitOf(quota)
    if (limit === undefined) return undefined
    return { quota, limit, count: this.counters.total(this.directory.slotOf(quota)!) }
  }

  delete (quota: string): Promise<boolean> {
    try {
      checkName('quota', quota)
    } catch (err) {
      return Promise.reject(err)
    }
    if (quota === DEFAULT_QUOTA) {
      return Promise.reject(new InvalidArgumentError('the default quota always exists; lift its limit with set(\'default\', Infinity)', { quota }))
    }
    return this.serially(async () => {
      if (!this.has(quota)) return false
      await this.records.putQuotaLimit(quota, null)
      const slot = this.directory.slotOf(quota)!
      this.directory.set(quota, slot, null)
      await this.broadcast({ quota, slot, limit: null, chunk: null })
      return true
    })
  }

  list (): QuotaInfo[] {
    const out: QuotaInfo[] = []
    for (const [quota, slot, limit] of this.directory.entries()) out.push({ quota, limit, count: this.counters.total(slot) })
    return out.sort((a, b) => (a.quota < b.quota ? -1 : a.quota > b.quota ? 1 : 0))
  }

  /** What a new worker starts with. */
  snapshot (): QuotaSnapshot {
    return { entries: this.directory.snapshot(), chunks: [...this.counters.chunks] }
  }

  private slotFor (quota: string): { slot: number, chunk: SharedArrayBuffer | null } {
    const known = this.directory.slotOf(quota)
    if (known !== undefined) return { slot: known, chunk: null }
    const slot = this.directory.nextSlot
    const chunk = this.counters.ensure(slot)
    this.directory.set(quota, slot, null)
    return { slot, chunk }
  }

  private serially<T> (work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work)
    this.queue = run.catch(() => {})
    return run
  }
}
