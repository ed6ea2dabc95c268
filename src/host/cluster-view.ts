/**
 * `host.cluster`: what a host tells about the cluster it is part of. The host declares the
 * shape; the cluster plugin (plugins/cluster/) fills it in when it is installed. Without
 * it, every member throws: a host that is not clustered has nothing to say, and a
 * silent answer ("no members") would hide a forgotten plugin.
 */
import { InvalidArgumentError } from '../../native-free-core/errors.ts'

export type MemberState = 'joining' | 'up' | 'leaving'

export interface ClusterMember {
  readonly id: string
  /** `host:port` the other hosts reach it at. */
  readonly address: string
  readonly state: MemberState
}

export interface ClusterView {
  /** This host's id. */
  readonly id: string
  /** Where this host's link server listens (`host:port`, the bound port when 0 was asked). */
  readonly address: string
  /** The members as this host sees them now. */
  members (): ClusterMember[]
  /** The id of the host that serves the agent now, or null when no host does (its owner is down). */
  ownerOf (agent: { readonly type: string, readonly key: string, readonly quota?: string }): string | null
  /** Resolves once no shard is moving and this host serves what the map gives it (tests, deploy scripts). */
  settled (options?: { readonly timeoutMs?: number }): Promise<void>
  /** The shard map's epoch as this host has applied it. */
  readonly epoch: number
}

/** `host.cluster` of a host without the cluster plugin. */
export const notClustered: ClusterView = new Proxy({} as ClusterView, {
  get (_target, property) {
    if (property === 'then') return undefined // not a thenable
    throw new InvalidArgumentError(`host.cluster.${String(property)}: this host has no cluster plugin (createHost({ plugins: [cluster({...})] }) from 'shoal/cluster')`)
  }
})
