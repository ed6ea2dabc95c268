/**
 * Agent counts per quota across a cluster, the bookkeeping half (pure: no clock, no
 * socket — quotas.ts drives it, test/cluster/quota-overshoot-cluster.test.ts replays it):
 *
 *   CountPublisher   what this host last told the others it counts, and what changed since
 *   PeerCounts       what every other host last said it counts, and the sum per quota
 *
 * A host publishes absolute counts, not increments: a publication lost with a dropped
 * link is made good by the next one, and a link that comes up gets the whole table
 * (`reset`), so no count drifts.
 */

export type QuotaCount = readonly [quota: string, count: number]

export class CountPublisher {
  private readonly sent = new Map<string, number>()

  /** The counts that differ from the last ones published; they count as published from now on. */
  changes (current: Iterable<QuotaCount>): Array<[string, number]> {
    const out: Array<[string, number]> = []
    for (const [quota, count] of current) {
      if ((this.sent.get(quota) ?? 0) === count) continue
      out.push([quota, count])
      if (count === 0) this.sent.delete(quota)
      else this.sent.set(quota, count)
    }
    return out
  }

  /** Every count published and not zero: the whole table, for a host that just connected. */
  all (): Array<[string, number]> {
    return [...this.sent]
  }
}

export class PeerCounts {
  private readonly byPeer = new Map<string, Map<string, number>>()
  private readonly sums = new Map<string, number>()

  /**
   * A publication of `peer`: its counts of `entries`' quotas — with `reset`, its whole
   * table (a quota it does not name counts 0). Returns the quotas whose sum changed.
   */
  apply (peer: string, entries: Iterable<QuotaCount>, reset: boolean): string[] {
    let table = this.byPeer.get(peer)
    if (table === undefined) this.byPeer.set(peer, table = new Map())
    const changed = new Set<string>()
    if (reset) {
      for (const [quota, count] of table) this.add(quota, -count, changed)
      table.clear()
    }
    for (const [quota, count] of entries) {
      const was = table.get(quota) ?? 0
      if (count === 0) table.delete(quota)
      else table.set(quota, count)
      this.add(quota, count - was, changed)
    }
    return [...changed]
  }

  /** `peer` left the cluster with no agent left: its counts go. Returns the quotas whose sum changed. */
  forget (peer: string): string[] {
    const table = this.byPeer.get(peer)
    if (table === undefined) return []
    this.byPeer.delete(peer)
    const changed = new Set<string>()
    for (const [quota, count] of table) this.add(quota, -count, changed)
    return [...changed]
  }

  /** The other hosts' count of `quota`. */
  sum (quota: string): number {
    return this.sums.get(quota) ?? 0
  }

  peers (): string[] {
    return [...this.byPeer.keys()]
  }

  private add (quota: string, delta: number, changed: Set<string>): void {
    if (delta === 0) return
    const n = (this.sums.get(quota) ?? 0) + delta
    if (n === 0) this.sums.delete(quota)
    else this.sums.set(quota, n)
    changed.add(quota)
  }
}
