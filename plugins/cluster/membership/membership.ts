/**
 * Who is in the cluster and which host owns which shard: the one interface the cluster
 * plugin uses, with two implementations — `EtcdMembership` (production: leases, a
 * leader, planned moves, self-fencing) and `StaticMembership` (a fixed list: the map
 * computed locally at epoch 1, no leader, no moves, no failover).
 *
 * Events (typed, `membership.on(...)`):
 * - `members` (members)  the member list changed (sorted by id; states included);
 * - `map` (map)          a new shard map (a higher epoch);
 * - `leader` (id?)       the leader changed (undefined: none right now);
 * - `fenced` ()          no lease renewal succeeded for half the TTL: stop serving now;
 * - `unfenced` ()        renewals succeed again (same lease, or a new one after `lost`);
 * - `lost` (error)       etcd says the lease is gone (expired): the member key went with
 *                        it; the membership registers again with a new lease, then
 *                        `unfenced`;
 * - `map-error` (error)  the stored map does not decode, or was deleted (DecodeError):
 *                        the previous map stays, the leader stops planning until a
 *                        valid map is written.
 *
 * A host serves a shard only while `!fenced` and the latest `map` names it owner.
 */
import type { EventEmitter } from 'node:events'
import type { MemberState, ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'

export type { MemberState, ShardMap }

export interface Member {
  /** Stable host id (names the host's data). */
  readonly id: string
  /** `host:port` the other hosts dial. */
  readonly address: string
  readonly state: MemberState
}

export interface MembershipEvents {
  members: [members: readonly Member[]]
  map: [map: ShardMap]
  leader: [leader: string | undefined]
  fenced: []
  unfenced: []
  lost: [error: Error]
  'map-error': [error: Error]
}

export interface UntilOptions {
  readonly signal?: AbortSignal
}

export interface Membership extends EventEmitter<MembershipEvents> {
  readonly kind: 'etcd' | 'static'
  /** This host as the cluster sees it (its state is the last one set). */
  readonly self: Member
  /** True while this host must not serve (lease not renewed within TTL/2, or lost). */
  readonly fenced: boolean
  /** True while this host holds leadership (never for static membership). */
  readonly isLeader: boolean
  /** Registers (etcd) or computes the map (static); rejects with a typed error. */
  start (): Promise<void>
  members (): readonly Member[]
  /** The latest shard map, once there is one. */
  map (): ShardMap | undefined
  leader (): string | undefined
  /** Publish this host's state: `up` when it serves, `leaving` to hand everything over. */
  setState (state: 'up' | 'leaving'): Promise<void>
  /**
   * The old owner's report that it handed `shards` over from `from` to `to`, as
   * planned in the map of `epoch`; the leader folds it into its next map write.
   */
  reportHandover (shards: readonly number[], from: string, to: string, epoch: number): Promise<void>
  /**
   * Publish this host's in-sync record (`record.owner` must be this host): which replicas
   * hold every acknowledged write of each shard it owns, at which shard epoch. The
   * leader fails this host's shards over only to hosts it names. etcd: written only
   * while this host's member key is under its live lease — after the lease is gone it
   * rejects with ClusterFencedError; the record outlives the host. Static: resolves
   * (one copy per shard, no failover).
   */
  publishInSync (record: InSyncRecord): Promise<void>
  /** Resolves with the first map (the current one included) for which `predicate` holds. */
  until (predicate: (map: ShardMap) => boolean, options?: UntilOptions): Promise<ShardMap>
  /** Leaves: revokes the lease (the member key and any unfolded reports go with it). */
  close (): Promise<void>
}
