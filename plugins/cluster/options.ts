/**
 * `cluster({...})` options: validated once, when the plugin is made, so a typo in a
 * deploy script fails on the spot with the option's name, the rule and the value — not
 * as a host that silently never joins. The memberships check their own parts
 * (membership/membership-options.ts) when they are made, in the plugin's setup.
 *
 * The secret is the only credential of a link (HMAC challenge–response,
 * link/handshake.ts): it must be long enough that guessing it is not an option, and it
 * is never echoed back in an error.
 */
import { Buffer } from 'node:buffer'
import { InvalidOptionError } from '../../native-free-core/errors.ts'
import { MAX_REPLICAS } from '../../native-free-core/placement/shard-map.ts'
import { checkAddress, checkId } from './membership/membership-options.ts'
import { MIN_SECRET_BYTES } from './link/index.ts'

export interface EtcdOptions {
  /** etcd endpoints, e.g. `['http://10.0.0.9:2379']`. */
  readonly hosts: readonly string[]
  /** Key prefix of this cluster in etcd. Default `'/shoal'`. */
  readonly prefix?: string
  /** Lease TTL in seconds: a host that cannot renew within half of it stops serving. Default 5. */
  readonly leaseTtlS?: number
  /** Members the leader waits for before it writes the first map (hosts started together share the shards from the start). Default 1. */
  readonly minMembers?: number
}

export type MembershipOptions =
  | { readonly etcd: EtcdOptions }
  /** Development and benchmarks: a fixed list `'host:port'` or `'id@host:port'`, this host included; no failover, no moves. */
  | { readonly static: readonly string[] }

export interface ClusterOptions {
  /** This host's id, stable across restarts (it names the host's data). */
  readonly id: string
  /** Where this host's link server listens. Default 127.0.0.1, port 0 (a free one: `host.cluster.address` says which). */
  readonly listen?: { readonly host?: string, readonly port?: number }
  /** How the other hosts reach this one (`host:port`). Default: the listen address. */
  readonly advertise?: string
  /** Shared secret of the cluster, at least 32 bytes: links authenticate with it. */
  readonly secret: string | Uint8Array
  readonly membership: MembershipOptions
  /**
   * Copies of each shard, the owner included, 1 to 5. Default 2 with etcd membership
   * (each shard has one replica, a dead owner's shards fail over to it), 1 with static
   * membership (which has no failover, so it takes no other value).
   */
  readonly replicas?: number
  /** App-level heartbeat interval of the links (a link silent for 3 intervals is closed). Default 1000 ms. */
  readonly heartbeatMs?: number
  /** Bytes a link may hold while its peer is slow or not connected yet. Default 64 MiB. */
  readonly maxLinkQueueBytes?: number
  /**
   * How long a host keeps the record that it applied a durable send from another host,
   * once the sender dropped its own record: time for copies that took a longer way to
   * arrive and be recognised. A copy made more than half of this ago is dropped wherever
   * it is seen (its sender makes a fresh one), so the hosts' wall clocks must agree within
   * half of it (docs/cluster.md, "Effectively-once sends"). Default 5,000 ms, at least 100.
   */
  readonly forgetAfterMs?: number
  /**
   * How often a host tells the others its agent count per quota (when it changed). A
   * quota's limit can be overshot by what the other hosts create within about this long
   * (docs/cluster.md, "Quotas"). Default 100 ms.
   */
  readonly quotaSyncMs?: number
  /**
   * With replicas: how long a replica may take to acknowledge a shard's writes before it
   * falls out of the shard's in-sync set (writes stop waiting for it; it catches up and
   * comes back). Default 2,000 ms.
   */
  readonly replicaAckTimeoutMs?: number
}

export interface ResolvedClusterOptions {
  readonly id: string
  readonly listenHost: string
  readonly listenPort: number
  readonly advertise: string | null
  readonly secret: Buffer
  readonly membership:
    | { readonly kind: 'etcd', readonly hosts: readonly string[], readonly prefix?: string, readonly leaseTtlS?: number, readonly minMembers?: number }
    | { readonly kind: 'static', readonly entries: readonly string[] }
  readonly replicas: number
  readonly heartbeatMs: number
  readonly maxLinkQueueBytes: number
  readonly forgetAfterMs: number
  readonly quotaSyncMs: number
  readonly replicaAckTimeoutMs: number
}

/** Copies of each shard with etcd membership unless `replicas` says otherwise: the owner and one replica. */
export const DEFAULT_ETCD_REPLICAS = 2

const known = new Set(['id', 'listen', 'advertise', 'secret', 'membership', 'replicas', 'heartbeatMs', 'maxLinkQueueBytes', 'forgetAfterMs', 'quotaSyncMs', 'replicaAckTimeoutMs'])

export function resolveClusterOptions (options: ClusterOptions): ResolvedClusterOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('cluster', options, 'must be an object { id, secret, membership, listen?, advertise? }')
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionError(`cluster.${key}`, (options as unknown as Record<string, unknown>)[key], 'is not an option')
  }
  const id = checkId('cluster.id', options.id)
  const listen = options.listen ?? {}
  if (listen === null || typeof listen !== 'object') throw new InvalidOptionError('cluster.listen', listen, 'must be an object { host?, port? }')
  const listenHost = listen.host ?? '127.0.0.1'
  if (typeof listenHost !== 'string' || listenHost.length === 0) throw new InvalidOptionError('cluster.listen.host', listenHost, 'must be an interface address such as 0.0.0.0 or 127.0.0.1')
  const listenPort = integer('cluster.listen.port', listen.port ?? 0, 0, 65535)
  const advertise = options.advertise === undefined ? null : checkAddress('cluster.advertise', options.advertise)
  const resolvedMembership = membership(options.membership)
  const replicas = integer('cluster.replicas', options.replicas ?? (resolvedMembership.kind === 'etcd' ? DEFAULT_ETCD_REPLICAS : 1), 1, MAX_REPLICAS)
  if (resolvedMembership.kind === 'static' && replicas !== 1) {
    throw new InvalidOptionError('cluster.replicas', replicas, 'must be 1 with static membership (a fixed list has no leader and no failover: replicas need membership: { etcd })')
  }
  return Object.freeze({
    id,
    listenHost,
    listenPort,
    advertise,
    secret: secretBytes(options.secret),
    membership: resolvedMembership,
    replicas,
    heartbeatMs: integer('cluster.heartbeatMs', options.heartbeatMs ?? 1000, 10, 60_000),
    maxLinkQueueBytes: integer('cluster.maxLinkQueueBytes', options.maxLinkQueueBytes ?? 64 * 1024 * 1024, 64 * 1024, 2 ** 31 - 1),
    forgetAfterMs: integer('cluster.forgetAfterMs', options.forgetAfterMs ?? 5000, 100, 24 * 3600 * 1000),
    quotaSyncMs: integer('cluster.quotaSyncMs', options.quotaSyncMs ?? 100, 1, 60_000),
    replicaAckTimeoutMs: integer('cluster.replicaAckTimeoutMs', options.replicaAckTimeoutMs ?? 2000, 10, 600_000)
  })
}

function secretBytes (secret: unknown): Buffer {
  let bytes: Buffer
  if (typeof secret === 'string') bytes = Buffer.from(secret, 'utf8')
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret)
  else throw new InvalidOptionError('cluster.secret', secret === undefined ? undefined : '(not shown)', `is required: a string or bytes of at least ${MIN_SECRET_BYTES} bytes shared by every host of the cluster`)
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new InvalidOptionError('cluster.secret', `(${bytes.length} bytes, not shown)`, `must be at least ${MIN_SECRET_BYTES} bytes (e.g. openssl rand -base64 48)`)
  }
  return bytes
}

function membership (m: unknown): ResolvedClusterOptions['membership'] {
  const keys = m !== null && typeof m === 'object' ? Object.keys(m) : []
  if (keys.length !== 1 || (keys[0] !== 'etcd' && keys[0] !== 'static')) {
    throw new InvalidOptionError('cluster.membership', m, "must be { etcd: { hosts, prefix?, leaseTtlS?, minMembers? } } or { static: ['host:port', ...] }")
  }
  if (keys[0] === 'static') {
    const list = (m as { static: unknown }).static
    if (!Array.isArray(list) || list.length === 0 || !list.every((e) => typeof e === 'string')) {
      throw new InvalidOptionError('cluster.membership.static', list, "must be a non-empty array of 'host:port' or 'id@host:port', this host included")
    }
    return Object.freeze({ kind: 'static' as const, entries: Object.freeze([...list as string[]]) })
  }
  const etcd = (m as { etcd: EtcdOptions }).etcd
  if (etcd === null || typeof etcd !== 'object') throw new InvalidOptionError('cluster.membership.etcd', etcd, 'must be an object { hosts, prefix?, leaseTtlS?, minMembers? }')
  for (const key of Object.keys(etcd)) {
    if (!['hosts', 'prefix', 'leaseTtlS', 'minMembers'].includes(key)) {
      throw new InvalidOptionError(`cluster.membership.etcd.${key}`, (etcd as unknown as Record<string, unknown>)[key], 'is not an option')
    }
  }
  return Object.freeze({
    kind: 'etcd' as const,
    hosts: etcd.hosts,
    ...(etcd.prefix === undefined ? {} : { prefix: etcd.prefix }),
    ...(etcd.leaseTtlS === undefined ? {} : { leaseTtlS: etcd.leaseTtlS }),
    ...(etcd.minMembers === undefined ? {} : { minMembers: etcd.minMembers })
  })
}

function integer (name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, min === max ? `must be ${min}` : `must be an integer from ${min} to ${max}`)
  }
  return value
}
