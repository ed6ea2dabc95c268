/**
 * `shoal/cluster`: many hosts serve one set of agents. `createHost({ dataDir, plugins:
 * [cluster({ id, secret, membership })] })` — the agents and every `host.ref(...)` call
 * stay the same (docs/cluster.md).
 */
export { cluster, ClusterPlugin } from './cluster-plugin.ts'
export type { ClusterOptions, EtcdOptions, MembershipOptions } from './options.ts'
export type { ClusterMember, ClusterView, MemberState } from '../../src/host/cluster-view.ts'
export type { ClusterChangeEvent } from '../../src/host/host-events.ts'
