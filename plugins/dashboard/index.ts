/**
 * `shoal/dashboard`: a live page of a host — and of its whole cluster with the cluster
 * plugin — served by the host itself. `createHost({ plugins: [dashboard({ port })] })`,
 * then open `plugin.url` (docs/dashboard.md).
 */
export { dashboard, DashboardPlugin } from './dashboard-plugin.ts'
export type { DashboardOptions } from './options.ts'
export type { HostSample, ThreadSample, ClusterSample, LinkSample, DashboardEvent } from './figures.ts'
export type { LookupResult } from './lookup.ts'
