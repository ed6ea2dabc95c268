/**
 * Quotas for the whole cluster (docs/cluster.md, "Quotas"): `host.quotas.set/delete` on
 * any host go to the cluster's limit table (limit-table.ts), and every host counts the
 * agents of every quota on all hosts.
 *
 * Counts. A host counts the agents it holds (its store and its resident creations:
 * `PluginQuotas.localCounts`). Every `publishMs` it compares them with what it last
 * published and sends the quotas that changed, as absolute counts, to every peer whose
 * link is up (CL_QUOTA_COUNTS); a link that comes up gets the whole table. A host keeps
 * the latest counts of every other host (peer-counts.ts) and hands their sum per quota to
 * its own quota gate (`setRemote`), which checks `local + remote < limit` before a
 * creation. A shard range imported or dropped here changes the local counts at once and
 * is published at once (`countsMoved`), not at the next tick.
 *
 * The bound (a soft limit). Say S = publishMs + the time a publication takes to cross a
 * link. A host's view of another host's count is that host's count at some moment in the
 * last S, so a creation admitted on host h at time t leaves the cluster's count at most
 *
 *     limit + (agents the other hosts created in (t − S, t])
 *
 * plus, on each host, the W − 1 of its own racing workers (quota-counters.ts). Proof: h
 * admitted because local_h + Σ_g seen_g < limit, and seen_g ≥ count_g(t) − created_g(t − S, t].
 * test/cluster/quota-overshoot-cluster.test.ts replays creations on several hosts, with
 * publications delayed by S, on the real gate, counters and tables, and checks the bound
 * after every admission. With no creation elsewhere in the last S, a host never overshoots.
 *
 * A host that left keeps being counted until it holds no shard (the map names it owner
 * of none): a host that died keeps its agents on its disk, so they still count.
 */
import type { FrameSink } from '../../../native-free-core/ring/ring-queue.ts'
import type { PluginQuotas, QuotaControl } from '../../../src/host/plugin.ts'
import { CL_QUOTA_COUNTS } from '../wire.ts'
import type { ClusterWire } from '../wire.ts'
import type { LimitTable } from './limit-table.ts'
import { CountPublisher, PeerCounts } from './peer-counts.ts'
import type { QuotaCount } from './peer-counts.ts'

export interface QuotaLinks {
  writer (peer: string): FrameSink
  isUp (peer: string): boolean
  peerIds (): string[]
}

export interface ClusterQuotasParts {
  readonly quotas: PluginQuotas
  readonly limits: LimitTable
  readonly wire: ClusterWire
  readonly links: QuotaLinks
  /** How often this host publishes the counts that changed. */
  readonly publishMs: number
  /** Largest cluster frame: a big table goes in several. */
  readonly maxFrameBytes: number
}

export class ClusterQuotas implements QuotaControl {
  private readonly parts: ClusterQuotasParts
  private readonly publisher = new CountPublisher()
  readonly peers = new PeerCounts()
  private timer: ReturnType<typeof setInterval> | null = null
  /** Figures for stats. */
  published = 0
  received = 0

  constructor (parts: ClusterQuotasParts) {
    this.parts = parts
  }

  /** Take over `host.quotas.set/delete`, read the cluster's limits, start publishing. */
  async start (): Promise<void> {
    this.parts.quotas.takeControl(this)
    await this.parts.limits.start()
    this.timer = setInterval(() => this.publish(), this.parts.publishMs)
    this.timer.unref()
  }

  async close (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.parts.limits.close()
  }

  // ---- QuotaControl ---------------------------------------------------------------

  set (quota: string, limit: number): Promise<void> {
    return this.parts.limits.set(quota, limit)
  }

  delete (quota: string): Promise<boolean> {
    return this.parts.limits.delete(quota)
  }

  countsMoved (): void {
    this.publish()
  }

  // ---- counts ------------------------------------------------------------------------

  /** Send the counts that changed since the last publication to every peer that is up. */
  publish (): void {
    const changes = this.publisher.changes(this.parts.quotas.localCounts())
    if (changes.length === 0) return
    for (const peer of this.parts.links.peerIds()) if (this.parts.links.isUp(peer)) this.send(peer, changes, false)
  }

  /** The link to `peer` is up: it gets the whole table (what changed meanwhile goes to everyone first). */
  up (peer: string): void {
    this.publish()
    this.send(peer, this.publisher.all(), true)
    this.parts.limits.up?.(peer)
  }

  /** A CL_QUOTA_COUNTS frame from `peer`. */
  counts (peer: string, value: unknown): void {
    const v = value as { reset?: unknown, counts?: unknown } | null
    if (v === null || typeof v !== 'object' || !Array.isArray(v.counts)) return
    const entries: QuotaCount[] = []
    for (const e of v.counts as unknown[]) {
      if (Array.isArray(e) && typeof e[0] === 'string' && Number.isInteger(e[1])) entries.push([e[0], e[1] as number])
    }
    this.received++
    this.told(this.peers.apply(peer, entries, v.reset === true))
  }

  /** `peer` is gone for good (not a member, owner of no shard): its counts go. */
  forget (peer: string): void {
    this.told(this.peers.forget(peer))
  }

  private told (quotas: readonly string[]): void {
    for (const q of quotas) this.parts.quotas.setRemote(q, this.peers.sum(q))
  }

  /** Counts to one peer, in as many frames as they need (the first carries `reset`). */
  private send (peer: string, counts: Array<[string, number]>, reset: boolean): void {
    const budget = Math.max(1024, this.parts.maxFrameBytes - 1024)
    let sink: FrameSink
    try {
      sink = this.parts.links.writer(peer)
    } catch {
      return // not a peer any more
    }
    let chunk: Array<[string, number]> = []
    let bytes = 0
    let first = true
    const flush = (): void => {
      try {
        this.parts.wire.write(sink, CL_QUOTA_COUNTS, 0, { reset: first && reset, counts: chunk })
        this.published++
      } catch {
        // the link's queue is full or it dropped: the next link-up sends the whole table again
      }
      first = false
      chunk = []
      bytes = 0
    }
    for (const entry of counts) {
      const size = entry[0].length + 16
      if (bytes + size > budget && chunk.length !== 0) flush()
      chunk.push(entry)
      bytes += size
    }
    if (chunk.length !== 0 || reset) flush()
  }
}
