/**
 * `cluster({...})` options: validated once, when the plugin is made, so a typo in a
 * deploy script fails on the spot with the option's name, the rule and the value —
 * not as a host that silently never joins.
 *
 * The secret is the only credential of a link (HMAC challenge–response, see
 * link/handshake.ts): it must be long enough that guessing it is not an option, and it is
 * never echoed back in an error.
 */
import { Buffer } from 'node:buffer'
import { InvalidOptionError } from '../../native-free-core/errors.ts'

export interface EtcdMembershipOptions {
  /** etcd endpoints, e.g. `['http://10.0.0.9:2379']`. */
  readonly hosts: readonly string[]
  /** Key prefix of this cluster in etcd. Default `'/shoal'`. */
  readonly prefix?: string
  /** Lease TTL in seconds: a host that cannot renew within half of it stops serving. Default 5. */
  readonly leaseTtlS?: number
}

export type MembershipOptions =
  | { readonly etcd: EtcdMembershipOptions }
  /** Development and benchmarks: a fixed list `'host:port'` or `'id@host:port'`; no failover, no moves. */
  | { readonly static: readonly string[] }

export interface ClusterOptions {
  /** This host's id, stable across restarts (it names the host's data). */
  readonly id: string
  /** Where this host's link server listens. Port 0 picks a free one (`host.cluster.address` says which). */
  readonly listen?: { readonly host?: string, readonly port?: number }
  /** How the other hosts reach this one (`host:port`). Default: the listen address. */
  readonly advertise?: string
  /** Shared secret of the cluster, at least 32 bytes: links authenticate with it. */
  readonly secret: string | Uint8Array
  readonly membership: MembershipOptions
  /** Copies of each shard's durable state (1 = no replica). Default 1. */
  readonly replicas?: number
  /** App-level heartbeat interval of the links (a link silent for 3 intervals is closed). Default 1000 ms. */
  readonly heartbeatMs?: number
  /** Bytes a link may hold while its peer is slow or not connected yet. Default 64 MiB. */
  readonly maxLinkQueueBytes?: number
}

export interface ResolvedClusterOptions {
  readonly id: string
  readonly listenHost: string
  readonly listenPort: number
  readonly advertise: string | null
  readonly secret: Buffer
  readonly membership:
    | { readonly kind: 'etcd', readonly hosts: readonly string[], readonly prefix: string, readonly leaseTtlS: number }
    | { readonly kind: 'static', readonly members: ReadonlyArray<{ readonly id: string, readonly address: string }> }
  readonly replicas: number
  readonly heartbeatMs: number
  readonly maxLinkQueueBytes: number
}

export const MIN_SECRET_BYTES = 32
const known = new Set(['id', 'listen', 'advertise', 'secret', 'membership', 'replicas', 'heartbeatMs', 'maxLinkQueueBytes'])
const kId = /^[A-Za-z0-9._-]{1,64}$/

export function resolveClusterOptions (options: ClusterOptions): ResolvedClusterOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('cluster', options, 'must be an object { id, secret, membership, listen?, advertise?, replicas? }')
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionError(`cluster.${key}`, (options as unknown as Record<string, unknown>)[key], 'is not an option')
  }
  if (typeof options.id !== 'string' || !kId.test(options.id)) {
    throw new InvalidOptionError('cluster.id', options.id, 'is required: 1 to 64 characters from A-Z a-z 0-9 . _ - (stable across restarts)')
  }
  const listen = options.listen ?? {}
  if (listen === null || typeof listen !== 'object') throw new InvalidOptionError('cluster.listen', listen, 'must be an object { host?, port? }')
  const listenHost = listen.host ?? '127.0.0.1'
  if (typeof listenHost !== 'string' || listenHost.length === 0) throw new InvalidOptionError('cluster.listen.host', listenHost, 'must be an interface address such as 0.0.0.0 or 127.0.0.1')
  const listenPort = integer('cluster.listen.port', listen.port ?? 0, 0, 65535)
  let advertise: string | null = null
  if (options.advertise !== undefined) advertise = address('cluster.advertise', options.advertise)
  const secret = secretBytes(options.secret)
  const membership = membershipOptions(options.membership)
  const replicas = integer('cluster.replicas', options.replicas ?? 1, 1, 5)
  if (membership.kind === 'static' && replicas !== 1) {
    throw new InvalidOptionError('cluster.replicas', replicas, 'must be 1 with static membership (no failover without etcd)')
  }
  return Object.freeze({
    id: options.id,
    listenHost,
    listenPort,
    advertise,
    secret,
    membership,
    replicas,
    heartbeatMs: integer('cluster.heartbeatMs', options.heartbeatMs ?? 1000, 10, 60_000),
    maxLinkQueueBytes: integer('cluster.maxLinkQueueBytes', options.maxLinkQueueBytes ?? 64 * 1024 * 1024, 64 * 1024, 2 ** 31 - 1)
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

function membershipOptions (m: unknown): ResolvedClusterOptions['membership'] {
  if (m === null || typeof m !== 'object') {
    throw new InvalidOptionError('cluster.membership', m, "is required: { etcd: { hosts, prefix?, leaseTtlS? } } or { static: ['host:port', ...] }")
  }
  const keys = Object.keys(m)
  if (keys.length !== 1 || (keys[0] !== 'etcd' && keys[0] !== 'static')) {
    throw new InvalidOptionError('cluster.membership', m, "must have exactly one of the keys 'etcd' or 'static'")
  }
  if (keys[0] === 'static') {
    const list = (m as { static: unknown }).static
    if (!Array.isArray(list) || list.length === 0) throw new InvalidOptionError('cluster.membership.static', list, "must be a non-empty array of 'host:port' or 'id@host:port'")
    const members = list.map((entry: unknown, i) => {
      if (typeof entry !== 'string') throw new InvalidOptionError(`cluster.membership.static[${i}]`, entry, "must be 'host:port' or 'id@host:port'")
      const at = entry.indexOf('@')
      const addr = address(`cluster.membership.static[${i}]`, at < 0 ? entry : entry.slice(at + 1))
      const id = at < 0 ? addr : entry.slice(0, at)
      if (!kId.test(id) && at >= 0) throw new InvalidOptionError(`cluster.membership.static[${i}]`, entry, 'has an id that is not 1 to 64 characters from A-Z a-z 0-9 . _ -')
      return Object.freeze({ id, address: addr })
    })
    const ids = new Set<string>()
    for (const member of members) {
      if (ids.has(member.id)) throw new InvalidOptionError('cluster.membership.static', list, `names ${member.id} twice`)
      ids.add(member.id)
    }
    return Object.freeze({ kind: 'static' as const, members: Object.freeze(members) })
  }
  const etcd = (m as { etcd: unknown }).etcd as EtcdMembershipOptions
  if (etcd === null || typeof etcd !== 'object') throw new InvalidOptionError('cluster.membership.etcd', etcd, 'must be an object { hosts, prefix?, leaseTtlS? }')
  for (const key of Object.keys(etcd)) {
    if (key !== 'hosts' && key !== 'prefix' && key !== 'leaseTtlS') throw new InvalidOptionError(`cluster.membership.etcd.${key}`, (etcd as unknown as Record<string, unknown>)[key], 'is not an option')
  }
  if (!Array.isArray(etcd.hosts) || etcd.hosts.length === 0 || !etcd.hosts.every((h) => typeof h === 'string' && /^https?:\/\/[^/]+$/.test(h))) {
    throw new InvalidOptionError('cluster.membership.etcd.hosts', etcd.hosts, "must be a non-empty array of endpoints like 'http://10.0.0.9:2379'")
  }
  const prefix = etcd.prefix ?? '/shoal'
  if (typeof prefix !== 'string' || !prefix.startsWith('/') || prefix.endsWith('/') || prefix.length > 256) {
    throw new InvalidOptionError('cluster.membership.etcd.prefix', prefix, "must start with '/' and not end with it, e.g. '/shoal/prod'")
  }
  const leaseTtlS = integer('cluster.membership.etcd.leaseTtlS', etcd.leaseTtlS ?? 5, 1, 3600)
  return Object.freeze({ kind: 'etcd' as const, hosts: Object.freeze([...etcd.hosts]), prefix, leaseTtlS })
}

function address (option: string, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidOptionError(option, value, "must be 'host:port'")
  const colon = value.lastIndexOf(':')
  const port = Number(value.slice(colon + 1))
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidOptionError(option, value, "must be 'host:port' with a port from 1 to 65535")
  return value
}

function integer (name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `must be an integer from ${min} to ${max}`)
  }
  return value
}
