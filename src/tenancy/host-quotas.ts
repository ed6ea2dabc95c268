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
 *
 * In a cluster (a plugin takes control, plugin.ts): `set` and `delete` go to the plugin,
 * which makes the change where every host sees it and applies it on each with `apply`;
 * the other hosts' counts come in through `setRemote` and are added to the shared base,
 * so the soft limit and `get`/`list` count the whole cluster (docs/cluster.md, "Quotas").
 * A shard range that the store imports or drops moves its agents' counts (`moved`).
 */
import { DEFAULT_QUOTA, checkName } from '../../native-free-core/agent/agent-id.ts'
import { InvalidArgumentError } from '../../native-free-core/errors.ts'
import { QuotaCounters } from '../../native-free-core/tenancy/quota-counters.ts'
import { QuotaDirectory } from '../../native-free-core/tenancy/quota-gate.ts'
import type { QuotaCountChange, QuotaRecords } from '../../native-free-core/tenancy/quota-store.ts'

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

/** What a plugin that makes quotas cluster-wide puts in place of this host's own `set` and `delete`. */
export interface QuotaControl {
  /** Make the change for the cluster; resolves once this host enforces it (after its `apply`). */
  set (quota: string, limit: number): Promise<void>
  /** False if the quota did not exist. */
  delete (quota: string): Promise<boolean>
  /** A shard range was imported or dropped here: this host's counts changed at once. */
  countsMoved? (): void
}

/** The quotas as a plugin drives them (PluginHost.quotas). */
export interface PluginQuotas {
  /** `host.quotas.set/delete` go through `control` from now on (once per host). */
  takeControl (control: QuotaControl): void
  /**
   * Apply a limit on this host (null: delete the quota): stored, and enforced by every
   * worker when this resolves. False for a delete of a quota that does not exist here.
   */
  apply (quota: string, limit: number | null): Promise<boolean>
  /** The quotas that exist here, counts cluster-wide. */
  list (): QuotaInfo[]
  /** This host's own count of every quota with a slot (deleted ones included): its stored agents and resident creations. */
  localCounts (): Array<[quota: string, count: number]>
  /** The other hosts' total for a quota: added to this host's own in the soft limit and in `get`/`list`. */
  setRemote (quota: string, count: number): void
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

function checkLimit (quota: string, limit: number): void {
  if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0 && limit <= MAX_LIMIT))) {
    throw new InvalidArgumentError(
      `a quota's limit must be a whole number from 0 to ${MAX_LIMIT}, or Infinity (got ${String(limit)})`, { quota, limit: String(limit) })
  }
}

export class HostQuotas implements Quotas, PluginQuotas {
  readonly directory = new QuotaDirectory()
  readonly counters: QuotaCounters
  private readonly records: QuotaRecords
  private readonly broadcast: (update: QuotaUpdate) => Promise<void>
  /** set/delete run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve()
  private control: QuotaControl | null = null
  /** The other hosts' counts, as last set (part of each slot's base). */
  private readonly remote = new Map<string, number>()

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
      checkLimit(checkName('quota', quota), limit)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.control !== null) return this.control.set(quota, limit)
    return this.apply(quota, limit).then(() => {})
  }

  apply (quota: string, limit: number | null): Promise<boolean> {
    try {
      checkName('quota', quota)
      if (limit !== null) checkLimit(quota, limit)
      else if (quota === DEFAULT_QUOTA) throw new InvalidArgumentError('the default quota cannot be deleted', { quota })
    } catch (err) {
      return Promise.reject(err)
    }
    return this.serially(async () => {
      if (limit === null && !this.has(quota)) return false
      if (limit !== null && this.directory.limitOf(quota) === limit) return true // enforced already (a cluster re-reads its table)
      await this.records.putQuotaLimit(quota, limit)
      const { slot, chunk } = this.slotFor(quota)
      await this.broadcast({ quota, slot, limit, chunk })
      // the main thread's copy last: `get` shows a limit once every thread enforces it
      this.directory.set(quota, slot, limit)
      return true
    })
  }

  takeControl (control: QuotaControl): void {
    if (this.control !== null) throw new InvalidArgumentError('the quotas are controlled by a plugin already')
    this.control = control
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
    if (this.control !== null) return this.control.delete(quota)
    return this.apply(quota, null)
  }

  list (): QuotaInfo[] {
    const out: QuotaInfo[] = []
    for (const [quota, slot, limit] of this.directory.entries()) out.push({ quota, limit, count: this.counters.total(slot) })
    return out.sort((a, b) => (a.quota < b.quota ? -1 : a.quota > b.quota ? 1 : 0))
  }

  localCounts (): Array<[string, number]> {
    const out: Array<[string, number]> = []
    for (const [quota, slot] of this.directory.slotted()) out.push([quota, this.counters.total(slot) - (this.remote.get(quota) ?? 0)])
    return out
  }

  setRemote (quota: string, count: number): void {
    const delta = count - (this.remote.get(quota) ?? 0)
    if (delta === 0) return
    if (count === 0) this.remote.delete(quota)
    else this.remote.set(quota, count)
    this.counters.addBase(this.ensureSlot(quota), delta)
  }

  /** The store imported or dropped a shard range (QuotaRecords.countsMoved): its agents' counts come or go. */
  moved (change: QuotaCountChange): void {
    for (const [quota, delta] of change) this.counters.addBase(this.ensureSlot(quota), delta)
    this.control?.countsMoved?.()
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

  /**
   * A slot for counts of a quota that may not exist here (agents that arrived with a
   * shard, another host's count). A new counter chunk goes to the workers at once, in
   * order with the others (postMessage is synchronous), before any limit names its slots.
   */
  private ensureSlot (quota: string): number {
    const { slot, chunk } = this.slotFor(quota)
    if (chunk !== null) void this.broadcast({ quota, slot, limit: this.directory.limitOf(quota) ?? null, chunk })
    return slot
  }

  private serially<T> (work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work)
    this.queue = run.catch(() => {})
    return run
  }
}
