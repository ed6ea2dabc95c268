/**
 * Options of the two memberships, checked up front: a bad one throws InvalidOptionError
 * naming the option as the user wrote it in `cluster({...})` (`id`, `advertise`,
 * `membership.etcd.leaseTtlS`, `membership.static[2]`, ...), the value and the rule.
 */
import { InvalidOptionError } from '../../../native-free-core/errors.ts'
import { MAX_VNODES } from '../../../native-free-core/placement/hash-ring.ts'
import { DEFAULT_MAX_MOVES_PER_HOST, MAX_REPLICAS } from '../../../native-free-core/placement/shard-map.ts'

export interface EtcdMembershipOptions {
  /** This host's id (`cluster({ id })`). */
  readonly id: string
  /** `host:port` the other hosts dial (`cluster({ advertise })`). */
  readonly address: string
  /** etcd client URLs: `http://10.0.0.9:2379` or `10.0.0.9:2379`. */
  readonly hosts: readonly string[] | string
  /** Key prefix of this cluster in etcd (default `/shoal`). */
  readonly prefix?: string
  /** Lease TTL in seconds (default 5): a dead host's key expires after it; a host that cannot renew for half of it stops serving. */
  readonly leaseTtlS?: number
  /** Planned moves in flight per source host (default 64). The leader's value applies. */
  readonly maxMovesPerHost?: number
  /** Ring points per host (default 512); the same on every host. */
  readonly vnodes?: number
  /**
   * Members (not leaving) the leader waits for before it writes the first map (default
   * 1), so hosts started together share the shards from epoch 1 instead of the first
   * one taking all of them and handing them over (Akka's min-nr-of-members).
   */
  readonly minMembers?: number
  /**
   * Copies of each shard, the owner included (default 1): the leader names R − 1
   * replicas per shard in the map and fails a dead owner's shards over to a replica its
   * in-sync record names. The leader's value applies (`cluster({ replicas })`).
   */
  readonly replicas?: number
}

export interface StaticMembershipOptions {
  readonly id: string
  readonly address: string
  /** `'host:port'` or `'id@host:port'` per host, this one included. */
  readonly members: readonly string[]
  readonly vnodes?: number
}

export interface ResolvedEtcdOptions {
  readonly id: string
  readonly address: string
  readonly hosts: readonly string[]
  readonly prefix: string
  readonly leaseTtlS: number
  readonly maxMovesPerHost: number
  readonly vnodes: number | undefined
  readonly minMembers: number
  readonly replicas: number
}

export interface StaticEntry {
  readonly id: string
  readonly address: string
}

export const DEFAULT_PREFIX = '/shoal'
export const DEFAULT_LEASE_TTL_S = 5
/** etcd raises shorter TTLs to its minimum (≈ 1.5 × its election timeout). */
export const MIN_LEASE_TTL_S = 2
export const MAX_LEASE_TTL_S = 3600

const ID_RULE = 'must be 1 to 128 characters without whitespace, control characters, "/" or "@"'
const ID = /^[^\s/@\u0000-\u001f\u007f]{1,128}$/u
const ADDRESS = /^(\[[0-9A-Fa-f:.]+\]|[^\s/:@[\]]+):(\d{1,5})$/
const ENDPOINT = /^(https?:\/\/)?(\[[0-9A-Fa-f:.]+\]|[^\s/:@[\]]+):(\d{1,5})\/?$/

export function checkId (option: string, id: unknown): string {
  if (typeof id !== 'string' || !ID.test(id)) throw new InvalidOptionError(option, id, ID_RULE)
  return id
}

export function checkAddress (option: string, address: unknown): string {
  const m = typeof address === 'string' ? ADDRESS.exec(address) : null
  const port = m ? Number(m[2]) : 0
  if (m === null || port < 1 || port > 65535) throw new InvalidOptionError(option, address, 'must be "host:port" with a port from 1 to 65535')
  return address as string
}

function checkVnodes (option: string, vnodes: unknown): number | undefined {
  if (vnodes === undefined) return undefined
  if (typeof vnodes !== 'number' || !Number.isInteger(vnodes) || vnodes < 1 || vnodes > MAX_VNODES) {
    throw new InvalidOptionError(option, vnodes, `must be an integer from 1 to ${MAX_VNODES}`)
  }
  return vnodes
}

export function resolveEtcdOptions (options: EtcdMembershipOptions): ResolvedEtcdOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('membership.etcd', options, 'must be an object')
  const id = checkId('id', options.id)
  const address = checkAddress('advertise', options.address)
  const rawHosts = typeof options.hosts === 'string' ? [options.hosts] : options.hosts
  if (!Array.isArray(rawHosts) || rawHosts.length === 0) {
    throw new InvalidOptionError('membership.etcd.hosts', options.hosts, 'must be a non-empty array of etcd client URLs ("http://host:port")')
  }
  const hosts = rawHosts.map((h: unknown, i) => {
    const m = typeof h === 'string' ? ENDPOINT.exec(h) : null
    const port = m ? Number(m[3]) : 0
    if (m === null || port < 1 || port > 65535) throw new InvalidOptionError(`membership.etcd.hosts[${i}]`, h, 'must be an etcd client URL "http://host:port" (or "host:port")')
    return h as string
  })
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string' || !/^\/[^\s]*$/.test(prefix) || prefix.endsWith('/') || prefix.length > 256) {
    throw new InvalidOptionError('membership.etcd.prefix', prefix, 'must start with "/", not end with "/", have no whitespace and at most 256 characters')
  }
  const leaseTtlS = options.leaseTtlS ?? DEFAULT_LEASE_TTL_S
  if (typeof leaseTtlS !== 'number' || !Number.isInteger(leaseTtlS) || leaseTtlS < MIN_LEASE_TTL_S || leaseTtlS > MAX_LEASE_TTL_S) {
    throw new InvalidOptionError('membership.etcd.leaseTtlS', leaseTtlS, `must be an integer from ${MIN_LEASE_TTL_S} to ${MAX_LEASE_TTL_S} (seconds; etcd grants no shorter lease)`)
  }
  const maxMovesPerHost = options.maxMovesPerHost ?? DEFAULT_MAX_MOVES_PER_HOST
  if (typeof maxMovesPerHost !== 'number' || !(maxMovesPerHost === Infinity || (Number.isInteger(maxMovesPerHost) && maxMovesPerHost >= 1))) {
    throw new InvalidOptionError('membership.etcd.maxMovesPerHost', maxMovesPerHost, 'must be an integer ≥ 1 or Infinity')
  }
  const vnodes = checkVnodes('membership.etcd.vnodes', options.vnodes)
  const minMembers = options.minMembers ?? 1
  if (typeof minMembers !== 'number' || !Number.isInteger(minMembers) || minMembers < 1 || minMembers > 0xFFFE) {
    throw new InvalidOptionError('membership.etcd.minMembers', minMembers, 'must be an integer from 1 to 65534')
  }
  const replicas = options.replicas ?? 1
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new InvalidOptionError('replicas', replicas, `must be an integer from 1 to ${MAX_REPLICAS} (copies of each shard, the owner included)`)
  }
  return { id, address, hosts, prefix, leaseTtlS, maxMovesPerHost, vnodes, minMembers, replicas }
}

/**
 * Parses the static list; `self` is the entry whose id is `id` or whose address is
 * `address`. With `host:port` entries a host's ring id is its address (the id option
 * still names its data); `id@host:port` entries use the ids.
 */
export function resolveStaticOptions (options: StaticMembershipOptions): { entries: StaticEntry[], self: StaticEntry, vnodes: number | undefined } {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('membership', options, 'must be an object')
  const id = checkId('id', options.id)
  const address = checkAddress('advertise', options.address)
  const list = options.members
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidOptionError('membership.static', list, 'must be a non-empty array of "host:port" or "id@host:port"')
  }
  const entries: StaticEntry[] = []
  const named = new Set<string>()
  const ids = new Set<string>()
  const addresses = new Set<string>()
  list.forEach((raw: unknown, i) => {
    const option = `membership.static[${i}]`
    if (typeof raw !== 'string') throw new InvalidOptionError(option, raw, 'must be "host:port" or "id@host:port"')
    const at = raw.indexOf('@')
    const entryAddress = checkAddress(option, at < 0 ? raw : raw.slice(at + 1))
    const entryId = at < 0 ? entryAddress : checkId(option, raw.slice(0, at))
    if (ids.has(entryId)) throw new InvalidOptionError(option, raw, `must name a host once (id ${JSON.stringify(entryId)} repeats)`)
    if (addresses.has(entryAddress)) throw new InvalidOptionError(option, raw, `must name a host once (address ${entryAddress} repeats)`)
    ids.add(entryId)
    addresses.add(entryAddress)
    entries.push({ id: entryId, address: entryAddress })
    if (at >= 0) named.add(entryId)
  })
  const self = entries.find((e) => e.id === id) ?? entries.find((e) => e.address === address)
  if (self === undefined) {
    throw new InvalidOptionError('membership.static', list, `must include this host (id ${JSON.stringify(id)} or address ${address})`)
  }
  if (self.id !== id && named.has(self.id)) {
    throw new InvalidOptionError('membership.static', list, `names the host at ${address} ${JSON.stringify(self.id)}, but this host's id is ${JSON.stringify(id)}`)
  }
  if (self.address !== address) {
    throw new InvalidOptionError('membership.static', list, `must list this host (id ${JSON.stringify(id)}) at its advertised address ${address}, not ${self.address}`)
  }
  return { entries, self, vnodes: checkVnodes('membership.vnodes', options.vnodes) }
}
