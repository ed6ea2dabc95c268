/**
 * The cluster's layout in etcd, under `prefix` (default `/shoal`), and the
 * transactions that change it:
 *
 *   ${prefix}/members/${id}     {"id","address","state"}  JSON, under the host's lease
 *   ${prefix}/leader            the leader's id (text), under the leader's lease; its
 *                               create revision identifies one term of leadership
 *   ${prefix}/map               the shard map (encodeShardMap), written by the leader only
 *   ${prefix}/handover/${shard} {"from","to","epoch"} JSON, under the old owner's lease:
 *                               a finished handover, until the leader folds it
 *   ${prefix}/insync/${id}      the host's in-sync record (encodeInSync): which replicas
 *                               hold every acknowledged write of each shard it owns. Not
 *                               under a lease — the leader reads it after the host died —
 *                               but written only while the host's member key is under the
 *                               host's live lease (`putInSync`)
 *
 * Every map write checks, in one transaction, that the map's mod revision is the one the
 * leader planned from and that the leader key's create revision is still the leader's
 * own: a deposed leader's write fails instead of overwriting a newer map.
 */
import type { Etcd3, IKeyValue, IRequestOp, ICompare } from 'etcd3'
import { InvalidArgumentError } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { encodeShardMap } from '../../../native-free-core/placement/shard-map.ts'
import { encodeInSync } from '../../../native-free-core/placement/in-sync.ts'
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'
import type { MemberState, ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { Member } from './membership.ts'

/** etcd's default --max-txn-ops is 128 (compares and ops are each limited). */
export const MAX_TXN_OPS = 128

export interface HandoverRecord {
  readonly shard: number
  readonly from: string
  readonly to: string
  readonly epoch: number
  /** The key's mod revision: the leader deletes exactly the report it folded. */
  readonly modRevision: number
}

export type KeyKind =
  | { readonly kind: 'member', readonly id: string }
  | { readonly kind: 'handover', readonly shard: number }
  | { readonly kind: 'insync', readonly id: string }
  | { readonly kind: 'map' }
  | { readonly kind: 'leader' }

export class ClusterKeys {
  readonly prefix: string
  readonly root: string
  readonly map: string
  readonly leader: string
  readonly members: string
  readonly handovers: string
  readonly inSyncs: string

  constructor (prefix: string) {
    this.prefix = prefix
    this.root = `${prefix}/`
    this.map = `${prefix}/map`
    this.leader = `${prefix}/leader`
    this.members = `${prefix}/members/`
    this.handovers = `${prefix}/handover/`
    this.inSyncs = `${prefix}/insync/`
  }

  member (id: string): string { return this.members + id }
  handover (shard: number): string { return this.handovers + String(shard) }
  inSync (id: string): string { return this.inSyncs + id }

  classify (key: string): KeyKind | undefined {
    if (key === this.map) return { kind: 'map' }
    if (key === this.leader) return { kind: 'leader' }
    if (key.startsWith(this.members) && key.length > this.members.length) return { kind: 'member', id: key.slice(this.members.length) }
    if (key.startsWith(this.inSyncs) && key.length > this.inSyncs.length) return { kind: 'insync', id: key.slice(this.inSyncs.length) }
    if (key.startsWith(this.handovers)) {
      const rest = key.slice(this.handovers.length)
      const shard = Number(rest)
      if (/^\d{1,4}$/.test(rest) && shard < SHARDS) return { kind: 'handover', shard }
    }
    return undefined
  }
}

const STATES: ReadonlySet<string> = new Set<MemberState>(['joining', 'up', 'leaving'])

export function encodeMember (m: Member): Buffer {
  return Buffer.from(JSON.stringify({ id: m.id, address: m.address, state: m.state }))
}

/** A member value, or undefined when it is not one (ignored, like any foreign key). */
export function decodeMember (id: string, value: Buffer): Member | undefined {
  try {
    const v = JSON.parse(value.toString('utf8')) as { id?: unknown, address?: unknown, state?: unknown }
    if (v.id !== id || typeof v.address !== 'string' || typeof v.state !== 'string' || !STATES.has(v.state)) return undefined
    return { id, address: v.address, state: v.state as MemberState }
  } catch {
    return undefined
  }
}

export function encodeHandover (from: string, to: string, epoch: number): Buffer {
  return Buffer.from(JSON.stringify({ from, to, epoch }))
}

export function decodeHandover (shard: number, kv: IKeyValue): HandoverRecord | undefined {
  try {
    const v = JSON.parse(kv.value.toString('utf8')) as { from?: unknown, to?: unknown, epoch?: unknown }
    if (typeof v.from !== 'string' || typeof v.to !== 'string' || typeof v.epoch !== 'number' || !Number.isInteger(v.epoch)) return undefined
    return { shard, from: v.from, to: v.to, epoch: v.epoch, modRevision: Number(kv.mod_revision) }
  } catch {
    return undefined
  }
}

export const key = (k: string): Buffer => Buffer.from(k, 'utf8')

/** The end of the range of keys that start with `prefix`. */
export function rangeEnd (prefix: string): Buffer {
  const end = key(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

export interface Snapshot {
  readonly revision: number
  readonly kvs: readonly IKeyValue[]
}

/** Everything under the prefix, at one revision. */
export async function readAll (client: Etcd3, keys: ClusterKeys): Promise<Snapshot> {
  const res = await client.kv.range({ key: key(keys.root), range_end: rangeEnd(keys.root) })
  return { revision: Number(res.header.revision), kvs: res.kvs }
}

export interface CampaignResult {
  /** The leader's id after the attempt, if any. */
  readonly leader: string | undefined
  /** The leader key's create revision (this host's term when it won). */
  readonly revision: number
  readonly won: boolean
}

/** Become leader if nobody is: create the leader key under `lease` unless it exists. */
export async function campaign (client: Etcd3, keys: ClusterKeys, id: string, lease: string): Promise<CampaignResult> {
  const res = await client.kv.txn({
    compare: [{ key: key(keys.leader), target: 'Create', result: 'Equal', create_revision: 0 }],
    success: [{ request_put: { key: key(keys.leader), value: key(id), lease } }],
    failure: [{ request_range: { key: key(keys.leader) } }]
  })
  if (res.succeeded) return { leader: id, revision: Number(res.header.revision), won: true }
  const kv = res.responses[0]?.response_range.kvs[0]
  if (kv === undefined) return { leader: undefined, revision: 0, won: false }
  const leader = kv.value.toString('utf8')
  // our own key from an attempt whose answer was lost
  const won = leader === id && kv.lease === lease
  return { leader, revision: Number(kv.create_revision), won }
}

export interface RegisterResult {
  readonly ok: boolean
  /** When not ok: the lease holding the id now. */
  readonly holder?: string
}

/** Put this host's member key under `lease`, unless another lease holds the id. */
export async function register (client: Etcd3, keys: ClusterKeys, member: Member, lease: string): Promise<RegisterResult> {
  const k = key(keys.member(member.id))
  const res = await client.kv.txn({
    compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
    success: [{ request_put: { key: k, value: encodeMember(member), lease } }],
    failure: [{ request_range: { key: k } }]
  })
  if (res.succeeded) return { ok: true }
  const kv = res.responses[0]?.response_range.kvs[0]
  if (kv === undefined || kv.lease === lease) {
    await client.kv.put({ key: k, value: encodeMember(member), lease })
    return { ok: true }
  }
  return { ok: false, holder: kv.lease }
}

/** Update this host's member key, only while it is still under `lease`. */
export async function updateMember (client: Etcd3, keys: ClusterKeys, member: Member, lease: string): Promise<boolean> {
  const k = key(keys.member(member.id))
  const res = await client.kv.txn({
    compare: [{ key: k, target: 'Lease', result: 'Equal', lease }],
    success: [{ request_put: { key: k, value: encodeMember(member), lease } }],
    failure: []
  })
  return res.succeeded
}

export interface MapWrite {
  /** The next map, or null to only delete folded reports. */
  readonly map: ShardMap | null
  /** The map key's mod revision the map was planned from (0: no map yet). */
  readonly mapRevision: number
  /** The leader key's create revision of this leader's term (> 0). */
  readonly leaderRevision: number
  /** Handover reports folded into `map` (or stale): deleted if unchanged since read. */
  readonly folded: readonly HandoverRecord[]
}

/** The leader's write: true and the new revision when it held, false when anything moved. */
export async function writeMap (client: Etcd3, keys: ClusterKeys, w: MapWrite): Promise<{ ok: boolean, revision: number }> {
  if (!(w.leaderRevision > 0)) throw new InvalidArgumentError('writeMap: a leader revision is required')
  if (w.folded.length > MAX_TXN_OPS - 2) throw new InvalidArgumentError(`writeMap: at most ${MAX_TXN_OPS - 2} folded reports per write`)
  const compare: ICompare[] = [
    { key: key(keys.map), target: 'Mod', result: 'Equal', mod_revision: w.mapRevision },
    { key: key(keys.leader), target: 'Create', result: 'Equal', create_revision: w.leaderRevision }
  ]
  const success: IRequestOp[] = []
  if (w.map !== null) success.push({ request_put: { key: key(keys.map), value: Buffer.from(encodeShardMap(w.map)) } })
  for (const h of w.folded) {
    const k = key(keys.handover(h.shard))
    compare.push({ key: k, target: 'Mod', result: 'Equal', mod_revision: h.modRevision })
    success.push({ request_delete_range: { key: k } })
  }
  const res = await client.kv.txn({ compare, success, failure: [] })
  return { ok: res.succeeded, revision: Number(res.header.revision) }
}

/** Handover reports, under the reporter's lease, in as few transactions as etcd allows. */
export async function putHandovers (
  client: Etcd3, keys: ClusterKeys, shards: readonly number[], from: string, to: string, epoch: number, lease: string
): Promise<void> {
  const value = encodeHandover(from, to, epoch)
  for (let i = 0; i < shards.length; i += MAX_TXN_OPS) {
    const success: IRequestOp[] = shards.slice(i, i + MAX_TXN_OPS).map((s) => ({ request_put: { key: key(keys.handover(s)), value, lease } }))
    await client.kv.txn({ compare: [], success, failure: [] })
  }
}

/**
 * Put `record` (this host's in-sync record) only while this host's member key is under
 * `lease`: a host whose lease expired — whose shards the leader may be failing over
 * right now — can never write it. False when the compare failed.
 */
export async function putInSync (client: Etcd3, keys: ClusterKeys, record: InSyncRecord, lease: string): Promise<boolean> {
  const res = await client.kv.txn({
    compare: [{ key: key(keys.member(record.owner)), target: 'Lease', result: 'Equal', lease }],
    success: [{ request_put: { key: key(keys.inSync(record.owner)), value: Buffer.from(encodeInSync(record)) } }],
    failure: []
  })
  return res.succeeded
}
