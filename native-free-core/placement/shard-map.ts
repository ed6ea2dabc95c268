/**
 * The cluster's shard map — which host owns each of the 4096 shards and where each
 * planned move goes — and the pure functions the leader uses to change it.
 *
 * The map is one value (one etcd key, `encodeShardMap`), written only by the leader,
 * each write at `epoch + 1`. Per shard it keeps the owner, the map epoch at which the
 * owner last changed (`shardEpoch`: a host serves a shard only while the map it holds
 * names it owner; replicas refuse batches from an older shard epoch), and a
 * planned move (`target`, set at `targetEpoch`).
 *
 * A planned move's life: `plan` sets `target` to the ring owner; the old owner hands
 * the shard over and reports it; `completeMoves` makes the target the owner at the new
 * epoch — only if the map still says `owner = from, target = to` and the move reported
 * is the current one (its epoch ≥ `targetEpoch`: a late report of an aborted earlier
 * move to the same host is ignored, as its copy may be stale). `nextMap` does both in
 * one write.
 *
 * Rules of `plan` (members = the hosts holding a member key, with their state):
 * - the ring is built from the members that are not `leaving`;
 * - an unassigned shard (a new cluster) gets its ring owner at once;
 * - a shard whose owner is a member but not its ring owner gets `target` = the ring
 *   owner, at most `maxMovesPerHost` moves in flight per source host (ascending shard
 *   order; the rest wait for a later write);
 * - a target that is no longer a member, is `leaving`, or equals the owner is cleared
 *   (the move is aborted); a target that is valid but no longer the ring owner is kept
 *   (the move finishes, then a later plan moves the shard on) — retargeting mid-move
 *   would race the old owner's stream;
 * - a shard whose owner is not a member (its lease expired) **fails over**: the
 *   candidates are the hosts `inSync(owner, shard, shardEpoch)` names that are members
 *   (any state); the first of them in the shard's replica order (then in the order
 *   given) becomes owner at this epoch, target cleared. With no candidate (no `inSync`,
 *   `replicas` 1, nobody in sync, or nobody in sync still a member) the shard stays with
 *   its dead owner, unavailable until it returns: its state exists nowhere else;
 * - replicas (`replicas` R, default the map's own, or 1): each shard's are the first
 *   R − 1 hosts of its ring preference list (`HashRing.successors`: the ring owner, then
 *   the next hosts clockwise; members not `leaving`) other than its current owner,
 *   recomputed on every plan. During a planned move the target (the ring owner) is
 *   therefore a replica already. A change of replicas alone is a map change. A failover
 *   takes effect in one write, a move of the new owner back to its ring owner in a later
 *   one.
 *
 * Pure TypeScript: no `node:` import (TextEncoder/TextDecoder are globals).
 */
import { DecodeError, InvalidArgumentError } from '../errors.ts'
import { SHARDS } from './hash.ts'
import { HashRing, compareIds } from './hash-ring.ts'

/** "No host" in `owner`, `target` and `replicas`. */
export const NONE = 0xFFFF
export const DEFAULT_MAX_MOVES_PER_HOST = 64
/** Copies of a shard (owner included) a map can name: the owner and up to 4 replicas. */
export const MAX_REPLICAS = 5
const MAX_EPOCH = 0xFFFF_FFFF

export type MemberState = 'joining' | 'up' | 'leaving'

export interface PlanMember {
  readonly id: string
  readonly state: MemberState
}

export interface ShardMap {
  /** Bumped by every write; 1 is the first map. */
  readonly epoch: number
  /** Host ids that `owner` and `target` index (sorted). */
  readonly hosts: readonly string[]
  /** Owner of each shard, an index into `hosts`, or NONE (never assigned). */
  readonly owner: Uint16Array
  /** The map epoch at which each shard's owner last changed. */
  readonly shardEpoch: Uint32Array
  /** Planned move destination of each shard, an index into `hosts`, or NONE. */
  readonly target: Uint16Array
  /** The map epoch at which each shard's target was set; 0 when there is none. */
  readonly targetEpoch: Uint32Array
  /** Copies of each shard, the owner included (R ≥ 1): each shard has R − 1 replicas. */
  readonly replicaCount: number
  /**
   * Per shard, R − 1 replica hosts (indices into `hosts`) in preference order:
   * `replicas[shard * (R − 1) + i]`; NONE (trailing) when the cluster has too few hosts.
   * Empty when R = 1.
   */
  readonly replicas: Uint16Array
}

/** A finished handover, reported by the old owner. */
export interface CompletedMove {
  readonly shard: number
  readonly from: string
  readonly to: string
  /** The map epoch at which the old owner saw the move planned (omit: not checked). */
  readonly epoch?: number
}

export interface PlannedMove {
  readonly shard: number
  readonly from: string
  readonly to: string
  /** The map epoch at which the move was planned (its `targetEpoch`). */
  readonly epoch: number
}

export interface PlanOptions {
  /** Moves in flight per source host (default 64); Infinity for no cap. */
  readonly maxMovesPerHost?: number
  /** Ring points per host (default 512); the same on every host. */
  readonly vnodes?: number
  /** Copies of each shard, owner included, 1 to MAX_REPLICAS (default: the map's `replicaCount`, or 1). */
  readonly replicas?: number
  /**
   * The hosts `owner` last said are in sync for `shard` at `shardEpoch` (its in-sync
   * record, in-sync.ts): the failover candidates of a shard whose owner is gone.
   * Omitted: no failover.
   */
  readonly inSync?: InSyncLookup
}

export type InSyncLookup = (owner: string, shard: number, shardEpoch: number) => readonly string[]

/**
 * The next map for these members, or null when nothing changes (see the rules above).
 * `map` null means no map yet (a new cluster).
 */
export function plan (map: ShardMap | null, members: readonly PlanMember[], options: PlanOptions = {}): ShardMap | null {
  return nextMap(map, members, [], options)
}

/**
 * The map with these handovers done (owner = to, target cleared, shardEpoch = the new
 * epoch) where the map still says owner = from, target = to, and the report is not
 * older than the move; null when none applies.
 */
export function completeMoves (map: ShardMap, done: readonly CompletedMove[]): ShardMap | null {
  const draft = new Draft(map)
  return draft.complete(done) ? draft.finish(null) : null
}

/** `completeMoves` then `plan`, in one write (one epoch bump); null when nothing changes. */
export function nextMap (
  map: ShardMap | null, members: readonly PlanMember[], done: readonly CompletedMove[], options: PlanOptions = {}
): ShardMap | null {
  const maxMoves = options.maxMovesPerHost ?? DEFAULT_MAX_MOVES_PER_HOST
  if (!(maxMoves === Infinity || (Number.isInteger(maxMoves) && maxMoves >= 1))) {
    throw new InvalidArgumentError(`maxMovesPerHost must be an integer ≥ 1 or Infinity (got ${String(maxMoves)})`, { maxMovesPerHost: maxMoves })
  }
  const states = new Map<string, MemberState>()
  for (const m of members) {
    if (typeof m.id !== 'string' || m.id.length === 0) throw new InvalidArgumentError(`a member id must be a non-empty string (got ${JSON.stringify(m.id)})`)
    if (states.has(m.id)) throw new InvalidArgumentError(`member ${JSON.stringify(m.id)} appears twice`, { id: m.id })
    states.set(m.id, m.state)
  }
  const replicas = options.replicas ?? map?.replicaCount ?? 1
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new InvalidArgumentError(`replicas must be an integer from 1 to ${MAX_REPLICAS} (got ${String(replicas)})`, { replicas })
  }
  const ringIds = members.filter((m) => m.state !== 'leaving').map((m) => m.id).sort(compareIds)
  const draft = new Draft(map)
  let changed = draft.complete(done)
  const ring = ringIds.length === 0 ? null : ringFor(ringIds, options.vnodes)
  if (draft.plan(states, ring, maxMoves, replicas > 1 ? options.inSync : undefined)) changed = true
  if (draft.placeReplicas(ring, replicas)) changed = true
  return changed ? draft.finish(ringIds) : null
}

/** The owner's id, or undefined for an unassigned shard. */
export function ownerOf (map: ShardMap, shard: number): string | undefined {
  const o = map.owner[checkShard(shard)]!
  return o === NONE ? undefined : map.hosts[o]
}

/** The planned destination's id, or undefined. */
export function targetOf (map: ShardMap, shard: number): string | undefined {
  const t = map.target[checkShard(shard)]!
  return t === NONE ? undefined : map.hosts[t]
}

/** The replicas of `shard`, in preference order (the first is the first failover choice). */
export function replicasOf (map: ShardMap, shard: number): string[] {
  checkShard(shard)
  const k = map.replicaCount - 1
  const out: string[] = []
  for (let i = 0; i < k; i++) {
    const h = map.replicas[shard * k + i]!
    if (h !== NONE) out.push(map.hosts[h]!)
  }
  return out
}

/** Shards `id` is a replica of, ascending. */
export function replicaShardsOf (map: ShardMap, id: string): number[] {
  const h = map.hosts.indexOf(id)
  const k = map.replicaCount - 1
  const out: number[] = []
  if (h < 0 || k === 0) return out
  for (let s = 0; s < SHARDS; s++) {
    for (let i = 0; i < k; i++) {
      if (map.replicas[s * k + i] === h) {
        out.push(s)
        break
      }
    }
  }
  return out
}

/** Shards whose owner is `id`, ascending. */
export function shardsOf (map: ShardMap, id: string): number[] {
  const h = map.hosts.indexOf(id)
  const out: number[] = []
  if (h < 0) return out
  for (let s = 0; s < SHARDS; s++) if (map.owner[s] === h) out.push(s)
  return out
}

/** Every planned move, ascending by shard; `from` filters by the old owner. */
export function plannedMoves (map: ShardMap, from?: string): PlannedMove[] {
  const only = from === undefined ? -1 : map.hosts.indexOf(from)
  const out: PlannedMove[] = []
  if (from !== undefined && only < 0) return out
  for (let s = 0; s < SHARDS; s++) {
    const t = map.target[s]!
    if (t === NONE) continue
    const o = map.owner[s]!
    if (only >= 0 && o !== only) continue
    out.push({ shard: s, from: map.hosts[o]!, to: map.hosts[t]!, epoch: map.targetEpoch[s]! })
  }
  return out
}

/**
 * Would the leader still complete this move if it were reported now (`completeMoves`)? The
 * map must name `from` owner and `to` target, planned no later than `planned` (the map
 * epoch the reporter saw the move planned at). An old owner whose move was planned again later — the target left and
 * came back — holds a report the leader ignores for ever: it must serve the shard again
 * and move it under the new plan (plugins/cluster/handover.ts).
 */
export function movePlanned (map: ShardMap, shard: number, from: string, to: string, planned: number): boolean {
  const o = map.owner[shard]!
  const t = map.target[shard]!
  return o !== NONE && t !== NONE && map.hosts[o] === from && map.hosts[t] === to && planned >= map.targetEpoch[shard]!
}

/** True when no shard is unassigned and none is moving. */
export function isSettled (map: ShardMap): boolean {
  for (let s = 0; s < SHARDS; s++) if (map.owner[s] === NONE || map.target[s] !== NONE) return false
  return true
}

/** Shards owned per host id. */
export function loadsOf (map: ShardMap): Map<string, number> {
  const counts = new Uint32Array(map.hosts.length)
  for (const o of map.owner) if (o !== NONE) counts[o]!++
  return new Map(map.hosts.map((h, i) => [h, counts[i]!]))
}

/** The map every member of a fixed list computes (static membership): epoch 1, no moves, no replicas. */
export function staticShardMap (ids: readonly string[], options: Pick<PlanOptions, 'vnodes'> = {}): ShardMap {
  const map = plan(null, ids.map((id) => ({ id, state: 'up' })), options)
  if (map === null) throw new InvalidArgumentError('a static shard map needs at least one host')
  return map
}

// ---------------------------------------------------------------------------------
// planning on a mutable copy

class Draft {
  readonly epoch: number
  readonly names: string[]
  readonly index: Map<string, number>
  readonly owner: Uint16Array
  readonly shardEpoch: Uint32Array
  readonly target: Uint16Array
  readonly targetEpoch: Uint32Array
  replicaCount: number
  /** Indices into `names`, `replicaCount − 1` per shard. */
  replicas: Uint16Array

  constructor (map: ShardMap | null) {
    const prev = map?.epoch ?? 0
    if (prev >= MAX_EPOCH) throw new InvalidArgumentError(`the shard map's epoch is at its limit (${MAX_EPOCH})`)
    this.epoch = prev + 1
    this.names = map ? [...map.hosts] : []
    this.index = new Map(this.names.map((h, i) => [h, i]))
    this.owner = map ? map.owner.slice() : new Uint16Array(SHARDS).fill(NONE)
    this.shardEpoch = map ? map.shardEpoch.slice() : new Uint32Array(SHARDS)
    this.target = map ? map.target.slice() : new Uint16Array(SHARDS).fill(NONE)
    this.targetEpoch = map ? map.targetEpoch.slice() : new Uint32Array(SHARDS)
    this.replicaCount = map?.replicaCount ?? 1
    this.replicas = map ? map.replicas.slice() : new Uint16Array(0)
  }

  idx (id: string): number {
    let i = this.index.get(id)
    if (i === undefined) {
      i = this.names.length
      this.names.push(id)
      this.index.set(id, i)
    }
    return i
  }

  complete (done: readonly CompletedMove[]): boolean {
    let changed = false
    for (const d of done) {
      checkShard(d.shard)
      const from = this.index.get(d.from)
      const to = this.index.get(d.to)
      const s = d.shard
      if (from === undefined || to === undefined || this.owner[s] !== from || this.target[s] !== to) continue
      if (d.epoch !== undefined && d.epoch < this.targetEpoch[s]!) continue
      // the new owner leaves the replicas; the old one, which holds the whole shard, takes
      // its place (completeMoves alone keeps R − 1 replicas; nextMap recomputes them)
      const k = this.replicaCount - 1
      for (let i = s * k; i < (s + 1) * k; i++) if (this.replicas[i] === to) this.replicas[i] = from
      this.owner[s] = to
      this.shardEpoch[s] = this.epoch
      this.target[s] = NONE
      this.targetEpoch[s] = 0
      changed = true
    }
    return changed
  }

  plan (states: ReadonlyMap<string, MemberState>, ring: HashRing | null, maxMoves: number, inSync: InSyncLookup | undefined): boolean {
    let changed = false
    const isMember = (h: number): boolean => states.has(this.names[h]!)
    // abort moves that cannot or need not finish
    for (let s = 0; s < SHARDS; s++) {
      const t = this.target[s]!
      if (t === NONE) continue
      if (!isMember(t) || states.get(this.names[t]!) === 'leaving' || t === this.owner[s]) {
        this.target[s] = NONE
        this.targetEpoch[s] = 0
        changed = true
      }
    }
    if (ring === null) {
      // nobody to plan onto; a gone owner's in-sync replica may still be a (leaving) member
      for (let s = 0; s < SHARDS; s++) {
        const owner = this.owner[s]!
        if (owner !== NONE && !isMember(owner) && this.ownerGone(s, states, inSync)) changed = true
      }
      return changed
    }
    const desired = new Uint16Array(ring.hosts.length)
    for (let i = 0; i < ring.hosts.length; i++) desired[i] = this.idx(ring.hosts[i]!)
    const ringOwner = ring.ownerIndices()
    const inFlight = new Map<number, number>()
    for (let s = 0; s < SHARDS; s++) {
      if (this.target[s] !== NONE) inFlight.set(this.owner[s]!, (inFlight.get(this.owner[s]!) ?? 0) + 1)
    }
    for (let s = 0; s < SHARDS; s++) {
      const want = desired[ringOwner[s]!]!
      const owner = this.owner[s]!
      if (owner === NONE) {
        this.owner[s] = want
        this.shardEpoch[s] = this.epoch
        changed = true
        continue
      }
      if (!isMember(owner)) {
        if (this.ownerGone(s, states, inSync)) changed = true
        continue
      }
      if (owner === want || this.target[s] !== NONE) continue
      const busy = inFlight.get(owner) ?? 0
      if (busy >= maxMoves) continue
      this.target[s] = want
      this.targetEpoch[s] = this.epoch
      inFlight.set(owner, busy + 1)
      changed = true
    }
    return changed
  }

  /**
   * A shard whose owner holds no member key (its lease expired): the failover rule (see
   * the header). Only a host the owner itself said is in sync at the shard's current
   * epoch may take over — any other copy may lack acknowledged writes. True when the
   * shard changed.
   */
  ownerGone (s: number, states: ReadonlyMap<string, MemberState>, inSync: InSyncLookup | undefined): boolean {
    if (inSync === undefined) return false
    const owner = this.names[this.owner[s]!]!
    const candidates = inSync(owner, s, this.shardEpoch[s]!).filter((id) => id !== owner && states.has(id))
    if (candidates.length === 0) return false
    let pick = candidates[0]!
    const k = this.replicaCount - 1
    for (let i = s * k; i < (s + 1) * k; i++) {
      const r = this.replicas[i]!
      if (r !== NONE && candidates.includes(this.names[r]!)) {
        pick = this.names[r]!
        break
      }
    }
    this.owner[s] = this.idx(pick)
    this.shardEpoch[s] = this.epoch
    this.target[s] = NONE
    this.targetEpoch[s] = 0
    return true
  }

  /** Every shard's replicas for the owners as planned (see the header); true when any changed. */
  placeReplicas (ring: HashRing | null, replicaCount: number): boolean {
    const k = replicaCount - 1
    const next = new Uint16Array(SHARDS * k).fill(NONE)
    if (ring !== null && k > 0) {
      const desired = new Uint16Array(ring.hosts.length)
      for (let i = 0; i < ring.hosts.length; i++) desired[i] = this.idx(ring.hosts[i]!)
      for (let s = 0; s < SHARDS; s++) {
        const owner = this.owner[s]!
        let j = s * k
        const end = j + k
        for (const h of ring.successorIndices(s, replicaCount)) {
          const n = desired[h]!
          if (n === owner) continue
          if (j === end) break
          next[j++] = n
        }
      }
    }
    let changed = replicaCount !== this.replicaCount
    for (let i = 0; !changed && i < next.length; i++) if (next[i] !== this.replicas[i]) changed = true
    this.replicaCount = replicaCount
    this.replicas = next
    return changed
  }

  /** The finished map; hosts are the referenced ids plus `keep`, sorted. */
  finish (keep: readonly string[] | null): ShardMap {
    const used = new Uint8Array(this.names.length)
    for (let s = 0; s < SHARDS; s++) {
      if (this.owner[s] !== NONE) used[this.owner[s]!] = 1
      if (this.target[s] !== NONE) used[this.target[s]!] = 1
    }
    for (const r of this.replicas) if (r !== NONE) used[r] = 1
    const ids = new Set<string>(keep ?? this.names)
    for (let i = 0; i < used.length; i++) if (used[i] === 1) ids.add(this.names[i]!)
    const hosts = [...ids].sort(compareIds)
    const remap = new Uint16Array(this.names.length).fill(NONE)
    const at = new Map(hosts.map((h, i) => [h, i]))
    for (let i = 0; i < this.names.length; i++) remap[i] = at.get(this.names[i]!) ?? NONE
    const owner = new Uint16Array(SHARDS)
    const target = new Uint16Array(SHARDS)
    for (let s = 0; s < SHARDS; s++) {
      owner[s] = this.owner[s] === NONE ? NONE : remap[this.owner[s]!]!
      target[s] = this.target[s] === NONE ? NONE : remap[this.target[s]!]!
    }
    const replicas = new Uint16Array(this.replicas.length)
    for (let i = 0; i < replicas.length; i++) replicas[i] = this.replicas[i] === NONE ? NONE : remap[this.replicas[i]!]!
    return {
      epoch: this.epoch, hosts, owner, shardEpoch: this.shardEpoch, target, targetEpoch: this.targetEpoch, replicaCount: this.replicaCount, replicas
    }
  }
}

let lastRing: { key: string, ring: HashRing } | undefined
/** The leader plans on every change with mostly the same members: keep the last ring. */
function ringFor (ids: readonly string[], vnodes: number | undefined): HashRing {
  const key = `${vnodes ?? ''}\u0000${ids.join('\u0000')}`
  if (lastRing?.key !== key) lastRing = { key, ring: new HashRing(ids, vnodes === undefined ? {} : { vnodes }) }
  return lastRing.ring
}

function checkShard (shard: number): number {
  if (!Number.isInteger(shard) || shard < 0 || shard >= SHARDS) {
    throw new InvalidArgumentError(`a shard is an integer from 0 to ${SHARDS - 1} (got ${String(shard)})`, { shard })
  }
  return shard
}

// ---------------------------------------------------------------------------------
// encoding: one compact value for etcd
//
//   'S' 'M' version (1: no replicas, 2: with replicas)
//   epoch varint · shard count varint (= 4096) · host count varint · hosts (varint length + UTF-8)
//   sections, each `tag` byte + runs of (length varint ≥ 1, value varint) covering 4096 shards:
//     1 owner · 2 shardEpoch · 3 target · 4 targetEpoch
//   version 2 only: 5 replicas — `tag` byte, R varint (2..MAX_REPLICAS), then R − 1 run
//     lists over the 4096 shards, one per replica rank (column by column: runs of the same
//     host are longer down a column than across a shard's replicas)
//
// A map with R = 1 is written as version 1, byte for byte what builds before replicas
// wrote and read (a static or single-copy cluster can mix builds); version 1 reads as R = 1.
//
// Runs keep it small: shardEpoch and targetEpoch are mostly one value, and shards next to
// each other often share an owner (bounded loads fill hosts in shard order). Settled,
// 3 hosts: 1.7 KB; 10 hosts: 5.4 KB; 3 hosts with a fourth joining: 4.6 KB (32 KB raw).

const MAGIC_0 = 0x53 // 'S'
const MAGIC_1 = 0x4D // 'M'
const VERSION_PLAIN = 1
const VERSION_REPLICAS = 2
const TAG_OWNER = 1
const TAG_SHARD_EPOCH = 2
const TAG_TARGET = 3
const TAG_TARGET_EPOCH = 4
const TAG_REPLICAS = 5

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

export function encodeShardMap (map: ShardMap): Uint8Array {
  const w = new Writer()
  w.byte(MAGIC_0)
  w.byte(MAGIC_1)
  const k = map.replicaCount - 1
  w.byte(k === 0 ? VERSION_PLAIN : VERSION_REPLICAS)
  w.varint(map.epoch)
  w.varint(SHARDS)
  w.varint(map.hosts.length)
  for (const h of map.hosts) {
    const bytes = utf8.encode(h)
    w.varint(bytes.length)
    w.bytes(bytes)
  }
  w.runs(TAG_OWNER, map.owner)
  w.runs(TAG_SHARD_EPOCH, map.shardEpoch)
  w.runs(TAG_TARGET, map.target)
  w.runs(TAG_TARGET_EPOCH, map.targetEpoch)
  if (k > 0) {
    w.byte(TAG_REPLICAS)
    w.varint(map.replicaCount)
    const column = new Uint16Array(SHARDS)
    for (let i = 0; i < k; i++) {
      for (let s = 0; s < SHARDS; s++) column[s] = map.replicas[s * k + i]!
      w.runList(column)
    }
  }
  return w.done()
}

/** Decode and validate a stored map; anything malformed is a DecodeError. */
export function decodeShardMap (bytes: Uint8Array): ShardMap {
  const r = new Reader(bytes)
  if (r.byte() !== MAGIC_0 || r.byte() !== MAGIC_1) throw corrupt('not a shard map (bad magic bytes)')
  const version = r.byte()
  if (version !== VERSION_PLAIN && version !== VERSION_REPLICAS) {
    throw corrupt(`shard map format version ${version} is not supported (this build reads ${VERSION_PLAIN} and ${VERSION_REPLICAS})`)
  }
  const epoch = r.varint()
  if (epoch < 1) throw corrupt('epoch 0')
  const shards = r.varint()
  if (shards !== SHARDS) throw corrupt(`the map has ${shards} shards, this build has ${SHARDS}`)
  const hostCount = r.varint()
  if (hostCount > NONE - 1) throw corrupt(`${hostCount} hosts`)
  const hosts: string[] = []
  const seen = new Set<string>()
  for (let i = 0; i < hostCount; i++) {
    const len = r.varint()
    let id: string
    try { id = utf8Strict.decode(r.bytes(len)) } catch (e) {
      if (e instanceof DecodeError) throw e
      throw corrupt('a host id is not valid UTF-8')
    }
    if (id.length === 0 || seen.has(id)) throw corrupt(`host id ${JSON.stringify(id)} is empty or repeated`)
    seen.add(id)
    hosts.push(id)
  }
  const owner = r.runs(TAG_OWNER, new Uint16Array(SHARDS), (v) => v < hostCount || v === NONE)
  const shardEpoch = r.runs(TAG_SHARD_EPOCH, new Uint32Array(SHARDS), (v) => v <= epoch)
  const target = r.runs(TAG_TARGET, new Uint16Array(SHARDS), (v) => v < hostCount || v === NONE)
  const targetEpoch = r.runs(TAG_TARGET_EPOCH, new Uint32Array(SHARDS), (v) => v <= epoch)
  let replicaCount = 1
  let replicas = new Uint16Array(0)
  if (version === VERSION_REPLICAS) {
    const tag = r.byte()
    if (tag !== TAG_REPLICAS) throw corrupt(`expected section ${TAG_REPLICAS}, found ${tag}`)
    replicaCount = r.varint()
    if (replicaCount < 2 || replicaCount > MAX_REPLICAS) throw corrupt(`replica count ${replicaCount} (version 2 holds 2 to ${MAX_REPLICAS})`)
    const k = replicaCount - 1
    replicas = new Uint16Array(SHARDS * k)
    const column = new Uint16Array(SHARDS)
    for (let i = 0; i < k; i++) {
      r.runList(TAG_REPLICAS, column, (v) => v < hostCount || v === NONE)
      for (let s = 0; s < SHARDS; s++) replicas[s * k + i] = column[s]!
    }
    for (let s = 0; s < SHARDS; s++) {
      for (let i = 0; i < k; i++) {
        const h = replicas[s * k + i]!
        if (h === NONE) {
          if (i + 1 < k && replicas[s * k + i + 1] !== NONE) throw corrupt(`shard ${s}: a replica after a missing one`)
          continue
        }
        if (h === owner[s]) throw corrupt(`shard ${s}: its owner is also its replica`)
        for (let j = 0; j < i; j++) if (replicas[s * k + j] === h) throw corrupt(`shard ${s}: a replica named twice`)
      }
    }
  }
  if (!r.atEnd()) {
    const tag = r.byte()
    throw corrupt(`unknown section ${tag} (written by a newer version?)`)
  }
  for (let s = 0; s < SHARDS; s++) {
    const t = target[s]!
    if (t !== NONE && (owner[s] === NONE || t === owner[s])) throw corrupt(`shard ${s} has a target without an owner, or its owner as target`)
    if ((t === NONE) !== (targetEpoch[s] === 0)) throw corrupt(`shard ${s}: target and target epoch disagree`)
  }
  return { epoch, hosts, owner, shardEpoch, target, targetEpoch, replicaCount, replicas }
}

/** Same content (tests, and skipping writes that change nothing). */
export function sameShardMap (a: ShardMap, b: ShardMap): boolean {
  if (a.epoch !== b.epoch || a.hosts.length !== b.hosts.length || a.replicaCount !== b.replicaCount) return false
  for (let i = 0; i < a.replicas.length; i++) if (a.replicas[i] !== b.replicas[i]) return false
  for (let i = 0; i < a.hosts.length; i++) if (a.hosts[i] !== b.hosts[i]) return false
  for (let s = 0; s < SHARDS; s++) {
    if (a.owner[s] !== b.owner[s] || a.shardEpoch[s] !== b.shardEpoch[s] || a.target[s] !== b.target[s] || a.targetEpoch[s] !== b.targetEpoch[s]) return false
  }
  return true
}

function corrupt (reason: string): DecodeError {
  return new DecodeError(`corrupt shard map: ${reason}`, { reason })
}

class Writer {
  #buf = new Uint8Array(1024)
  #at = 0

  #room (n: number): void {
    if (this.#at + n <= this.#buf.length) return
    let size = this.#buf.length * 2
    while (size < this.#at + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.#buf.subarray(0, this.#at))
    this.#buf = next
  }

  byte (b: number): void {
    this.#room(1)
    this.#buf[this.#at++] = b
  }

  bytes (b: Uint8Array): void {
    this.#room(b.length)
    this.#buf.set(b, this.#at)
    this.#at += b.length
  }

  varint (v: number): void {
    this.#room(5)
    while (v >= 0x80) {
      this.#buf[this.#at++] = (v & 0x7F) | 0x80
      v = Math.floor(v / 128)
    }
    this.#buf[this.#at++] = v
  }

  runs (tag: number, values: Uint16Array | Uint32Array): void {
    this.byte(tag)
    this.runList(values)
  }

  runList (values: Uint16Array | Uint32Array): void {
    let s = 0
    while (s < values.length) {
      const v = values[s]!
      let e = s + 1
      while (e < values.length && values[e] === v) e++
      this.varint(e - s)
      this.varint(v)
      s = e
    }
  }

  done (): Uint8Array {
    return this.#buf.slice(0, this.#at)
  }
}

class Reader {
  readonly #buf: Uint8Array
  #at = 0

  constructor (buf: Uint8Array) {
    if (!(buf instanceof Uint8Array)) throw corrupt('not bytes')
    this.#buf = buf
  }

  atEnd (): boolean {
    return this.#at === this.#buf.length
  }

  byte (): number {
    if (this.#at >= this.#buf.length) throw corrupt('truncated')
    return this.#buf[this.#at++]!
  }

  bytes (n: number): Uint8Array {
    if (this.#at + n > this.#buf.length) throw corrupt('truncated')
    const out = this.#buf.subarray(this.#at, this.#at + n)
    this.#at += n
    return out
  }

  /** Unsigned LEB128 up to 2^32 − 1; overlong or larger encodings are corrupt. */
  varint (): number {
    let v = 0
    let scale = 1
    for (let i = 0; i < 5; i++) {
      const b = this.byte()
      v += (b & 0x7F) * scale
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw corrupt('overlong varint')
        if (v > MAX_EPOCH) throw corrupt('varint over 32 bits')
        return v
      }
      scale *= 128
    }
    throw corrupt('varint over 32 bits')
  }

  runs<T extends Uint16Array | Uint32Array> (tag: number, out: T, valid: (v: number) => boolean): T {
    const got = this.byte()
    if (got !== tag) throw corrupt(`expected section ${tag}, found ${got}`)
    return this.runList(tag, out, valid)
  }

  runList<T extends Uint16Array | Uint32Array> (tag: number, out: T, valid: (v: number) => boolean): T {
    let s = 0
    while (s < out.length) {
      const len = this.varint()
      const v = this.varint()
      if (len === 0 || s + len > out.length) throw corrupt(`section ${tag}: a run of ${len} at shard ${s}`)
      if (!valid(v)) throw corrupt(`section ${tag}: value ${v} out of range at shard ${s}`)
      out.fill(v, s, s + len)
      s += len
    }
    return out
  }
}
