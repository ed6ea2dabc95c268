/**
 * Cluster membership: who is in the cluster, who leads, and the shard map — on etcd
 * (`EtcdMembership`) or from a fixed list (`StaticMembership`). The ring and the map's
 * planning are pure functions in native-free-core/placement.
 */
export type { Member, MemberState, Membership, MembershipEvents, ShardMap, UntilOptions } from './membership.ts'
export { EtcdMembership } from './etcd-membership.ts'
export { StaticMembership } from './static-membership.ts'
export {
  DEFAULT_LEASE_TTL_S, DEFAULT_PREFIX, MAX_LEASE_TTL_S, MIN_LEASE_TTL_S, resolveEtcdOptions, resolveStaticOptions
} from './membership-options.ts'
export type { EtcdMembershipOptions, StaticMembershipOptions } from './membership-options.ts'
export { ClusterKeys } from './cluster-keys.ts'
