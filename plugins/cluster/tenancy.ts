/**
 * The single host's tenancy features, made cluster-wide (docs/cluster.md, "Quotas" and
 * "Listing"): quotas whose limits every host shares and whose counts are summed over the
 * hosts (quotas/), and `host.agents()` listing every host's agents (listing/). The
 * cluster plugin makes one of these in setup and hands it its cluster frames, link
 * events and membership changes.
 */
import { shardsOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import type { ShardRanges } from '../../native-free-core/storage/shard-range.ts'
import type { PluginHost } from '../../src/host/plugin.ts'
import type { LinkHub } from './link/index.ts'
import type { Member, Membership } from './membership/index.ts'
import { EtcdMembership } from './membership/index.ts'
import { ClusterListing } from './listing/cluster-listing.ts'
import { ClusterQuotas } from './quotas/cluster-quotas.ts'
import { EtcdQuotaLimits } from './quotas/etcd-limits.ts'
import { StaticQuotaLimits } from './quotas/static-limits.ts'
import type { LimitTable } from './quotas/limit-table.ts'
import { CL_LIST, CL_LIST_PAGE, CL_QUOTA_COUNTS, CL_QUOTA_LIMITS } from './wire.ts'
import type { ClusterWire } from './wire.ts'

export interface TenancyParts {
  readonly self: string
  readonly host: PluginHost
  readonly store: ShardRanges
  readonly links: LinkHub
  readonly membership: Membership
  readonly wire: ClusterWire
  /** Does this host hold every committed record of the shard now (Handover.holds)? */
  holds (shard: number): boolean
  readonly quotaSyncMs: number
  warn (message: string): void
}

export class ClusterTenancy {
  readonly quotas: ClusterQuotas
  readonly limits: LimitTable
  readonly listing: ClusterListing
  private readonly parts: TenancyParts

  constructor (parts: TenancyParts) {
    this.parts = parts
    const { self, host, links, membership, wire, store } = parts
    const maxFrameBytes = host.options.maxMessageBytes + 1024
    this.limits = membership instanceof EtcdMembership
      ? new EtcdQuotaLimits(membership.keys.prefix, () => membership.client!, host.quotas, parts.warn)
      : new StaticQuotaLimits(self, host.quotas, (peer, value) => {
        for (const p of peer === null ? links.peerIds() : [peer]) {
          if (peer !== null || links.isUp(p)) {
            try {
              wire.write(links.writer(p), CL_QUOTA_LIMITS, 0, value)
            } catch {
              // not reachable now: it gets the whole table when its link comes up
            }
          }
        }
      }, parts.warn)
    this.quotas = new ClusterQuotas({ quotas: host.quotas, limits: this.limits, wire, links, publishMs: parts.quotaSyncMs, maxFrameBytes })
    const timeoutMs = host.options.callTimeoutMs === 0 ? 30_000 : host.options.callTimeoutMs
    this.listing = new ClusterListing({
      self,
      wire,
      links,
      source: { holds: (s) => parts.holds(s), shardIds: (s, prefix) => store.shardIds(s, prefix) },
      map: () => membership.map(),
      unsavedIds: (prefix) => host.unsavedIds(prefix),
      timeoutMs,
      pageBytes: Math.min(64 * 1024, host.options.maxMessageBytes >> 1)
    })
    host.listAgents((query) => this.listing.list(query))
  }

  /** After the membership started: the cluster's limits apply here before this host serves anything it did not at setup. */
  async start (): Promise<void> {
    await this.quotas.start()
  }

  async close (): Promise<void> {
    this.listing.close()
    await this.quotas.close()
  }

  /** A cluster frame of ours; false if it is not (the handover's). */
  frame (peer: string, kind: number, id: number, value: unknown): boolean {
    switch (kind) {
      case CL_QUOTA_COUNTS: this.quotas.counts(peer, value); return true
      case CL_QUOTA_LIMITS: this.limits.frame?.(peer, value); return true
      case CL_LIST: this.listing.request(peer, id, value); return true
      case CL_LIST_PAGE: this.listing.page(peer, id, value); return true
      default: return false
    }
  }

  up (peer: string): void {
    this.quotas.up(peer)
  }

  down (peer: string): void {
    this.listing.down(peer)
  }

  /** Members or the map changed: a host that is gone and owns no shard is no longer counted. */
  changed (members: readonly Member[], map: ShardMap | undefined): void {
    const present = new Set(members.map((m) => m.id))
    for (const peer of this.quotas.peers.peers()) {
      if (present.has(peer) || peer === this.parts.self) continue
      if (map === undefined || shardsOf(map, peer).length === 0) this.quotas.forget(peer)
    }
  }

  stats (): Record<string, number> {
    return {
      quotaPeers: this.quotas.peers.peers().length,
      quotaCountFramesOut: this.quotas.published,
      quotaCountFramesIn: this.quotas.received,
      listingsServed: this.listing.served,
      listingPagesServed: this.listing.pagesServed
    }
  }
}
