/**
 * Quota limits with static membership (development and benchmarks: no etcd). Every host
 * keeps the whole table; `set` and `delete` apply here, and go to every peer whose link
 * is up as CL_QUOTA_LIMITS; a link that comes up gets the whole table. Concurrent
 * changes of one quota converge to the same value on every host: each entry carries a
 * Lamport clock and the id of the host that made it, and the larger (clock, id) wins.
 *
 * The clocks live in memory. A host starts with the limits its data directory holds
 * (clock 0), so after a restart the hosts keep what they held until they exchange their
 * tables — where two entries of clock 0 disagree, the host with the larger id wins.
 * Hosts started from the same data agree from the start.
 */
import { messageOf } from '../../../native-free-core/errors.ts'
import type { PluginQuotas } from '../../../src/host/plugin.ts'
import type { LimitTable } from './limit-table.ts'

/** [quota, limit (null: deleted), clock, origin host]. */
type Entry = [quota: string, limit: number | null, clock: number, origin: string]

export class StaticQuotaLimits implements LimitTable {
  private readonly self: string
  private readonly quotas: PluginQuotas
  /** Send a CL_QUOTA_LIMITS payload to one peer, or (null) to every peer that is up. */
  private readonly send: (peer: string | null, value: { limits: Entry[] }) => void
  private readonly warn: (message: string) => void
  private readonly table = new Map<string, Entry>()
  private clock = 0

  constructor (self: string, quotas: PluginQuotas, send: (peer: string | null, value: { limits: Entry[] }) => void, warn: (message: string) => void) {
    this.self = self
    this.quotas = quotas
    this.send = send
    this.warn = warn
    // what this host's data directory holds, at clock 0 (a link may come up before start)
    for (const q of quotas.list()) this.table.set(q.quota, [q.quota, q.limit, 0, self])
  }

  async start (): Promise<void> {}

  async set (quota: string, limit: number): Promise<void> {
    this.change([quota, limit, ++this.clock, this.self])
    await this.quotas.apply(quota, limit)
  }

  async delete (quota: string): Promise<boolean> {
    const existed = this.table.get(quota)?.[1] != null
    this.change([quota, null, ++this.clock, this.self])
    await this.quotas.apply(quota, null)
    return existed
  }

  up (peer: string): void {
    if (this.table.size !== 0) this.send(peer, { limits: [...this.table.values()] })
  }

  frame (peer: string, value: unknown): void {
    const limits = (value as { limits?: unknown } | null)?.limits
    if (!Array.isArray(limits)) return
    for (const e of limits as unknown[]) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || !(e[1] === null || typeof e[1] === 'number') || typeof e[2] !== 'number' || typeof e[3] !== 'string') continue
      const entry = e as Entry
      if (entry[2] > this.clock) this.clock = entry[2]
      const mine = this.table.get(entry[0])
      if (mine !== undefined && !newer(entry, mine)) continue
      this.table.set(entry[0], entry)
      this.quotas.apply(entry[0], entry[1]).catch((err: unknown) => this.warn(`quota ${entry[0]} from ${peer} not applied: ${messageOf(err)}`))
    }
  }

  async close (): Promise<void> {}

  private change (entry: Entry): void {
    this.table.set(entry[0], entry)
    this.send(null, { limits: [entry] })
  }
}

function newer (a: Entry, b: Entry): boolean {
  return a[2] !== b[2] ? a[2] > b[2] : a[3] > b[3]
}
