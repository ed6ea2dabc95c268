/**
 * In-sync records: an owner's word on which of its replicas hold every acknowledged
 * write of each shard it owns — the only hosts the leader may make owner when it dies.
 *
 * The owner keeps one record and publishes it (etcd `${prefix}/insync/${owner}`, not
 * under the owner's lease: the record must outlive the owner, it is what the leader
 * reads after the owner's lease expired). Per shard the record holds the shard epoch its
 * bits are valid for: a bit set for an older epoch of the shard says nothing about the
 * current one (the shard moved or failed over since, its replicas started over), so
 * `inSyncHosts` answers only for the epoch asked. A host is in sync for a shard once it
 * has applied every batch the owner acknowledged at that epoch; the owner clears the bit
 * before it acknowledges a batch the replica has not confirmed (the data path's rule,
 * which makes "in sync" safe to fail over to), and publishes before that.
 *
 * Encoding (one etcd value):
 *
 *   'I' 'S' version=1 · owner (varint length + UTF-8)
 *   shardEpoch: runs of (length varint ≥ 1, value varint) covering 4096 shards
 *   host count varint · per host, ascending by id: id (varint length + UTF-8), 512-byte
 *   bitset over the shards (bit s = byte s >> 3, bit s & 7)
 *
 * A host with no bit set is not written. Pure TypeScript: no `node:` import.
 */
import { DecodeError, InvalidArgumentError } from '../errors.ts'
import { SHARDS } from './hash.ts'
import { compareIds } from './hash-ring.ts'
import type { InSyncLookup } from './shard-map.ts'

/** Bytes of one host's bitset: one bit per shard. */
export const IN_SYNC_BITSET_BYTES = SHARDS / 8

export interface InSyncRecord {
  /** The owner whose view this is. */
  readonly owner: string
  /** Per shard, the shard epoch its bits are valid for; 0 = none (not owned, or not yet). */
  readonly shardEpoch: Uint32Array
  /** Per replica host, a bitset over the shards (IN_SYNC_BITSET_BYTES). */
  readonly hosts: Map<string, Uint8Array>
}

/** An empty record of `owner`: no shard has an epoch, no host is in sync. */
export function newInSyncRecord (owner: string): InSyncRecord {
  checkId('owner', owner)
  return { owner, shardEpoch: new Uint32Array(SHARDS), hosts: new Map() }
}

/**
 * Make the record speak of `shard` at `shardEpoch` (the owner gained it, or its map
 * stamped a new shard epoch): when the epoch changes, every host's bit for the shard is
 * cleared — nobody is in sync at an epoch before it said so. 0 forgets the shard.
 * True when the record changed.
 */
export function setShardEpoch (record: InSyncRecord, shard: number, shardEpoch: number): boolean {
  checkShard(shard)
  if (!Number.isInteger(shardEpoch) || shardEpoch < 0 || shardEpoch > 0xFFFF_FFFF) {
    throw new InvalidArgumentError(`a shard epoch is an integer from 0 to 2^32 − 1 (got ${String(shardEpoch)})`, { shardEpoch })
  }
  if (record.shardEpoch[shard] === shardEpoch) return false
  record.shardEpoch[shard] = shardEpoch
  for (const host of [...record.hosts.keys()]) setBit(record, host, shard, false)
  return true
}

/**
 * Set (`inSync` true) or clear `host`'s bit for `shard`. Setting needs the shard's
 * epoch set first (`setShardEpoch`): a bit without an epoch would mean nothing.
 * True when the record changed.
 */
export function markInSync (record: InSyncRecord, shard: number, host: string, inSync: boolean): boolean {
  checkShard(shard)
  checkId('host', host)
  if (host === record.owner) throw new InvalidArgumentError(`the owner ${JSON.stringify(host)} is not its own replica`, { host })
  if (inSync && record.shardEpoch[shard] === 0) {
    throw new InvalidArgumentError(`shard ${shard} has no shard epoch in this record: setShardEpoch first`, { shard })
  }
  return setBit(record, host, shard, inSync)
}

/** True when `host`'s bit for `shard` is set (whatever the epoch). */
export function isMarkedInSync (record: InSyncRecord, shard: number, host: string): boolean {
  checkShard(shard)
  const bits = record.hosts.get(host)
  return bits !== undefined && (bits[shard >> 3]! & (1 << (shard & 7))) !== 0
}

/** The hosts in sync for `shard` at `shardEpoch`, ascending by id; empty for any other epoch. */
export function inSyncHosts (record: InSyncRecord, shard: number, shardEpoch: number): string[] {
  checkShard(shard)
  if (shardEpoch === 0 || record.shardEpoch[shard] !== shardEpoch) return []
  const out: string[] = []
  const byte = shard >> 3
  const bit = 1 << (shard & 7)
  for (const [host, bits] of record.hosts) if ((bits[byte]! & bit) !== 0) out.push(host)
  return out.sort(compareIds)
}

/** The failover lookup `nextMap` takes (`PlanOptions.inSync`), over the records of all owners. */
export function inSyncLookup (records: ReadonlyMap<string, InSyncRecord>): InSyncLookup {
  return (owner, shard, shardEpoch) => {
    const record = records.get(owner)
    return record === undefined ? [] : inSyncHosts(record, shard, shardEpoch)
  }
}

function setBit (record: InSyncRecord, host: string, shard: number, on: boolean): boolean {
  const byte = shard >> 3
  const bit = 1 << (shard & 7)
  let bits = record.hosts.get(host)
  if (on) {
    if (bits === undefined) record.hosts.set(host, bits = new Uint8Array(IN_SYNC_BITSET_BYTES))
    if ((bits[byte]! & bit) !== 0) return false
    bits[byte]! |= bit
    return true
  }
  if (bits === undefined || (bits[byte]! & bit) === 0) return false
  bits[byte]! &= ~bit
  if (bits.every((b) => b === 0)) record.hosts.delete(host)
  return true
}

// ---------------------------------------------------------------------------------
// encoding

const MAGIC_0 = 0x49 // 'I'
const MAGIC_1 = 0x53 // 'S'
const VERSION = 1
const MAX_ID_BYTES = 1024
const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

export function encodeInSync (record: InSyncRecord): Uint8Array {
  checkId('owner', record.owner)
  if (!(record.shardEpoch instanceof Uint32Array) || record.shardEpoch.length !== SHARDS) {
    throw new InvalidArgumentError(`an in-sync record's shardEpoch is a Uint32Array of ${SHARDS}`)
  }
  const hosts = [...record.hosts].filter(([, bits]) => bits.some((b) => b !== 0)).sort(([a], [b]) => compareIds(a, b))
  for (const [host, bits] of hosts) {
    checkId('host', host)
    if (host === record.owner) throw new InvalidArgumentError(`the owner ${JSON.stringify(host)} is not its own replica`, { host })
    if (!(bits instanceof Uint8Array) || bits.length !== IN_SYNC_BITSET_BYTES) {
      throw new InvalidArgumentError(`host ${JSON.stringify(host)}'s bitset must be ${IN_SYNC_BITSET_BYTES} bytes`, { host })
    }
    for (let shard = 0; shard < SHARDS; shard++) {
      if ((bits[shard >> 3]! & (1 << (shard & 7))) !== 0 && record.shardEpoch[shard] === 0) {
        throw new InvalidArgumentError(`host ${JSON.stringify(host)} is marked in sync for shard ${shard}, which has no shard epoch`, { host, shard })
      }
    }
  }
  const out: number[] = [MAGIC_0, MAGIC_1, VERSION]
  const id = (text: string): void => {
    const bytes = utf8.encode(text)
    varint(out, bytes.length)
    for (const b of bytes) out.push(b)
  }
  id(record.owner)
  let s = 0
  while (s < SHARDS) {
    const v = record.shardEpoch[s]!
    let e = s + 1
    while (e < SHARDS && record.shardEpoch[e] === v) e++
    varint(out, e - s)
    varint(out, v)
    s = e
  }
  varint(out, hosts.length)
  for (const [host, bits] of hosts) {
    id(host)
    for (const b of bits) out.push(b)
  }
  return Uint8Array.from(out)
}

/** Decode and validate a stored record; anything malformed is a DecodeError. */
export function decodeInSync (bytes: Uint8Array): InSyncRecord {
  if (!(bytes instanceof Uint8Array)) throw corrupt('not bytes')
  let at = 0
  const byte = (): number => {
    if (at >= bytes.length) throw corrupt('truncated')
    return bytes[at++]!
  }
  const take = (n: number): Uint8Array => {
    if (at + n > bytes.length) throw corrupt('truncated')
    const out = bytes.subarray(at, at + n)
    at += n
    return out
  }
  const readVarint = (): number => {
    let v = 0
    let scale = 1
    for (let i = 0; i < 5; i++) {
      const b = byte()
      v += (b & 0x7F) * scale
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw corrupt('overlong varint')
        if (v > 0xFFFF_FFFF) throw corrupt('varint over 32 bits')
        return v
      }
      scale *= 128
    }
    throw corrupt('varint over 32 bits')
  }
  const readId = (what: string): string => {
    const len = readVarint()
    if (len === 0 || len > MAX_ID_BYTES) throw corrupt(`${what} id of ${len} bytes`)
    try { return utf8Strict.decode(take(len)) } catch (e) {
      if (e instanceof DecodeError) throw e
      throw corrupt(`${what} id is not valid UTF-8`)
    }
  }
  if (byte() !== MAGIC_0 || byte() !== MAGIC_1) throw corrupt('not an in-sync record (bad magic bytes)')
  const version = byte()
  if (version !== VERSION) throw corrupt(`in-sync record format version ${version} is not supported (this build reads ${VERSION})`)
  const owner = readId('owner')
  const shardEpoch = new Uint32Array(SHARDS)
  let s = 0
  while (s < SHARDS) {
    const len = readVarint()
    const v = readVarint()
    if (len === 0 || s + len > SHARDS) throw corrupt(`a run of ${len} shard epochs at shard ${s}`)
    shardEpoch.fill(v, s, s + len)
    s += len
  }
  const count = readVarint()
  const hosts = new Map<string, Uint8Array>()
  let previous: string | undefined
  for (let i = 0; i < count; i++) {
    const host = readId('host')
    if (host === owner) throw corrupt('the owner is listed as its own replica')
    if (previous !== undefined && compareIds(previous, host) >= 0) throw corrupt('host ids out of order or repeated')
    previous = host
    const bits = take(IN_SYNC_BITSET_BYTES).slice()
    let any = false
    for (let shard = 0; shard < SHARDS; shard++) {
      if ((bits[shard >> 3]! & (1 << (shard & 7))) === 0) continue
      any = true
      if (shardEpoch[shard] === 0) throw corrupt(`host ${JSON.stringify(host)} is in sync for shard ${shard}, which has no epoch`)
    }
    if (!any) throw corrupt(`host ${JSON.stringify(host)} has no bit set`)
    hosts.set(host, bits)
  }
  if (at !== bytes.length) throw corrupt(`${bytes.length - at} bytes after the record`)
  return { owner, shardEpoch, hosts }
}

function varint (out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v & 0x7F) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
}

function corrupt (reason: string): DecodeError {
  return new DecodeError(`corrupt in-sync record: ${reason}`, { reason })
}

function checkShard (shard: number): void {
  if (!Number.isInteger(shard) || shard < 0 || shard >= SHARDS) {
    throw new InvalidArgumentError(`a shard is an integer from 0 to ${SHARDS - 1} (got ${String(shard)})`, { shard })
  }
}

function checkId (what: string, id: unknown): void {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError(`an in-sync record's ${what} must be a non-empty string (got ${JSON.stringify(id)})`)
}
