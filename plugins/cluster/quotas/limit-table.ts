/**
 * Where a cluster keeps its quota limits, so that `host.quotas.set/delete` on any host
 * applies to every host: in etcd (etcd-limits.ts) or, with static membership, on every
 * host, kept in step over the links (static-limits.ts).
 */
export interface LimitTable {
  /** Read the cluster's table and apply it here; then follow its changes. */
  start (): Promise<void>
  /** Make the change for the cluster; resolves once this host enforces it. */
  set (quota: string, limit: number): Promise<void>
  /** False if the quota did not exist. */
  delete (quota: string): Promise<boolean>
  /** The link to `peer` came up. */
  up? (peer: string): void
  /** A CL_QUOTA_LIMITS frame from `peer`. */
  frame? (peer: string, value: unknown): void
  close (): Promise<void>
}
