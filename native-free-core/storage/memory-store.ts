/**
 * The in-memory store: what a host without `dataDir` commits to (one per thread, living
 * as long as the host), and what the core's tests run on. Records are kept by placement
 * shard, as a store of format 2 keys them (shard-range.ts), so a shard moves as one object.
 */
import { QuotaTally } from '../tenancy/quota-store.ts'
import type { QuotaCountChange, QuotaRecords } from '../tenancy/quota-store.ts'
import { kIdSeparator } from '../agent/agent-id.ts'
import { hashId, shardOf, SHARDS } from '../placement/hash.ts'
import { newStoreId } from './store-format.ts'
import {
  RANGE_APPLIED, RANGE_OUTBOX, RANGE_REMINDERS, RANGE_STATES, RANGE_STORAGE, agentKey, appliedValue, checkShard, parseAgentKey, parseAppliedValue,
  parseSendKey, parseStateKey, rangeChunks, readRangeChunks, sendKey, stateKey
} from './shard-range.ts'
import type { RangeRecord, ShardRanges, ShardSize } from './shard-range.ts'
import { compareKeys, stateBytesNow, stateIdOf } from './store.ts'
import type { AppliedRecord, OutboxRecord, SendId, StorageChanges, Store, WriteBatch } from './store.ts'

/**
 * Committed snapshots in memory, as one-byte strings: a 4-byte state costs a 24-byte
 * string where a Uint8Array would cost ~200 bytes of object, ArrayBuffer and backing
 * store. The host may inject faster byte/string conversions (Buffer's latin1).
 */
export interface MemoryStoreOptions {
  readonly bytesToString?: (bytes: Uint8Array) => string
  readonly stringToBytes?: (s: string) => Uint8Array
}

export class MemoryStore implements Store, QuotaRecords, ShardRanges {
  readonly durable: boolean = false
  readonly storeId: string = newStoreId()
  /** By shard, as a store of format 2 keys them (shard-range.ts): a shard moves as one object. */
  private readonly shards: Array<MemoryShard | undefined> = new Array<MemoryShard | undefined>(SHARDS)
  private stateCount = 0
  private readonly limits = new Map<string, number>()
  private readonly counts = new Map<string, number>()
  private incarnation = 0
  countsMoved: ((change: QuotaCountChange) => void) | undefined = undefined
  private readonly toStr: (bytes: Uint8Array) => string
  private readonly toBytes: (s: string) => Uint8Array

  constructor (options: MemoryStoreOptions = {}) {
    this.toStr = options.bytesToString ?? bytesToLatin1
    this.toBytes = options.stringToBytes ?? latin1ToBytes
  }

  get size (): number {
    return this.stateCount
  }

  private shardOfId (id: string): MemoryShard | undefined {
    return this.shards[shardOf(hashId(id))]
  }

  private shardFor (id: string): MemoryShard {
    return this.shardAt(shardOf(hashId(id)))
  }

  private shardAt (shard: number): MemoryShard {
    return this.shards[shard] ??= new MemoryShard()
  }

  getState (id: string): Uint8Array | undefined {
    const s = this.shardOfId(id)?.states.get(id)
    return s === undefined ? undefined : this.toBytes(s)
  }

  commit (batch: WriteBatch): undefined {
    for (let k = 0; k < batch.states.length; k++) {
      const id = stateIdOf(batch, k)
      const bytes = stateBytesNow(batch.states, k) // toStr copies them
      const states = this.shardFor(id).states
      const had = states.has(id)
      if (bytes === null) {
        if (had) { states.delete(id); this.stateCount-- }
      } else {
        states.set(id, this.toStr(bytes))
        if (!had) this.stateCount++
      }
    }
    if (batch.storage != null) for (const [id, changes] of batch.storage) this.apply(this.shardFor(id).storage, id, changes)
    if (batch.reminders != null) for (const [id, changes] of batch.reminders) this.apply(this.shardFor(id).reminders, id, changes)
    if (batch.outboxPuts != null) for (const r of batch.outboxPuts) this.shardAt(r.senderShard).sends.set(sendKeyString(r.origin, r.key), this.toStr(r.bytes))
    if (batch.outboxDeletes != null) this.deleteOutbox(batch.outboxDeletes)
    if (batch.appliedPuts != null) {
      for (const r of batch.appliedPuts) this.shardAt(r.shard).applied.set(sendKeyString(r.origin, r.key), bytesToLatin1(appliedValue(r.appliedAt, r.senderShard)))
    }
    if (batch.appliedDeletes != null) for (const r of batch.appliedDeletes) this.shards[r.shard]?.applied.delete(sendKeyString(r.origin, r.key))
    if (batch.quotaDeltas != null) {
      for (const [quota, delta] of batch.quotaDeltas) this.counts.set(quota, (this.counts.get(quota) ?? 0) + delta)
    }
    return undefined
  }

  /** One agent's keyed records (storage, reminders): wipes first, then puts and deletes. */
  private apply (into: Map<string, Map<string, string>>, id: string, changes: StorageChanges): void {
    if (changes.wiped) into.delete(id)
    let keys = into.get(id)
    changes.entries.forEach((bytes, key) => {
      if (bytes === null) {
        keys?.delete(key)
        return
      }
      if (keys === undefined) into.set(id, keys = new Map())
      keys.set(key, this.toStr(bytes))
    })
    if (keys?.size === 0) into.delete(id)
  }

  * reminders (shard?: number): Iterable<readonly [string, string, Uint8Array]> {
    const found: Array<[string, string, Uint8Array]> = []
    for (const [, s] of this.shardsIn(shard)) {
      for (const [id, names] of s.reminders) for (const [name, bytes] of names) found.push([id, name, this.toBytes(bytes)])
    }
    yield * found
  }

  quotaLimits (): Iterable<readonly [string, number]> {
    return [...this.limits]
  }

  putQuotaLimit (quota: string, limit: number | null): undefined {
    if (limit === null) this.limits.delete(quota)
    else this.limits.set(quota, limit)
    return undefined
  }

  quotaCounts (): Iterable<readonly [string, number]> {
    return [...this.counts].filter(([, n]) => n !== 0)
  }

  getStorage (id: string, key: string): Uint8Array | undefined {
    const s = this.shardOfId(id)?.storage.get(id)?.get(key)
    return s === undefined ? undefined : this.toBytes(s)
  }

  * listStorage (id: string, prefix: string, start: string | undefined): Iterable<readonly [string, Uint8Array]> {
    const keys = this.shardOfId(id)?.storage.get(id)
    if (keys === undefined) return
    const found: string[] = []
    for (const k of keys.keys()) if (k.startsWith(prefix) && (start === undefined || compareKeys(k, start) >= 0)) found.push(k)
    found.sort(compareKeys)
    for (const k of found) {
      const s = keys.get(k)
      if (s !== undefined) yield [k, this.toBytes(s)]
    }
  }

  hasOutbox (send: SendId): boolean {
    return this.shards[send.senderShard]?.sends.has(sendKeyString(send.origin, send.key)) === true
  }

  * outbox (senderShard?: number): Iterable<OutboxRecord> {
    const found: OutboxRecord[] = []
    for (const [shard, s] of this.shardsIn(senderShard)) {
      for (const [k, bytes] of s.sends) {
        const [origin, key] = parseSendKey(latin1ToBytes(k))
        found.push({ senderShard: shard, origin, key, bytes: this.toBytes(bytes) })
      }
    }
    yield * found
  }

  deleteOutbox (sends: readonly SendId[]): undefined {
    for (const r of sends) this.shards[r.senderShard]?.sends.delete(sendKeyString(r.origin, r.key))
    return undefined
  }

  isApplied (shard: number, origin: string, key: number): boolean {
    return this.shards[shard]?.applied.has(sendKeyString(origin, key)) === true
  }

  * applied (shard?: number): Iterable<AppliedRecord> {
    const found: AppliedRecord[] = []
    for (const [s, records] of this.shardsIn(shard)) {
      for (const [k, v] of records.applied) {
        const [origin, key] = parseSendKey(latin1ToBytes(k))
        const [appliedAt, senderShard] = parseAppliedValue(latin1ToBytes(v))
        found.push({ shard: s, origin, key, senderShard, appliedAt })
      }
    }
    yield * found
  }

  newIncarnation (): number {
    return ++this.incarnation
  }

  * ids (prefix: string): Iterable<string> {
    for (const [, s] of this.shardsIn(undefined)) {
      const found: string[] = []
      for (const id of s.states.keys()) if (id.startsWith(prefix)) found.push(id)
      yield * found.sort(compareKeys)
    }
  }

  // ---- ShardRanges ---------------------------------------------------------------

  * exportShard (shard: number, maxChunkBytes?: number): Iterable<Uint8Array> {
    checkShard(shard)
    const s = this.shards[shard]
    // a snapshot: the records are listed before the first chunk is handed out
    yield * rangeChunks(s === undefined ? [] : s.records(this.toBytes), maxChunkBytes)
  }

  importShard (shard: number, chunks: Iterable<Uint8Array>): undefined {
    const records = readRangeChunks(shard, chunks)
    const s = new MemoryShard()
    for (const [db, key, value] of records) s.put(db, key, this.toStr(value))
    const tally = new QuotaTally()
    for (const id of this.shards[shard]?.states.keys() ?? []) tally.add(quotaOfId(id), -1)
    for (const id of s.states.keys()) tally.add(quotaOfId(id), 1)
    this.stateCount += s.states.size - (this.shards[shard]?.states.size ?? 0)
    this.shards[shard] = s.isEmpty() ? undefined : s
    this.moveCounts(tally)
    return undefined
  }

  dropShard (shard: number): undefined {
    checkShard(shard)
    const tally = new QuotaTally()
    for (const id of this.shards[shard]?.states.keys() ?? []) tally.add(quotaOfId(id), -1)
    this.stateCount -= this.shards[shard]?.states.size ?? 0
    this.shards[shard] = undefined
    this.moveCounts(tally)
    return undefined
  }

  /** A range's agents join or leave the counts (quota-store.ts). */
  private moveCounts (tally: QuotaTally): void {
    const change = tally.change()
    if (change.length === 0) return
    for (const [quota, delta] of change) this.counts.set(quota, (this.counts.get(quota) ?? 0) + delta)
    this.countsMoved?.(change)
  }

  * shardIds (shard: number, prefix: string): Iterable<string> {
    checkShard(shard)
    const found: string[] = []
    for (const id of this.shards[shard]?.states.keys() ?? []) if (id.startsWith(prefix)) found.push(id)
    yield * found.sort(compareKeys)
  }

  shardSize (shard: number): ShardSize {
    checkShard(shard)
    let records = 0
    let bytes = 0
    for (const [, key, value] of this.shards[shard]?.records(this.toBytes) ?? []) {
      records++
      bytes += key.length + value.length
    }
    return { records, bytes }
  }

  /** Shards in order (all, or just `shard`) that hold something. */
  private * shardsIn (shard: number | undefined): Iterable<readonly [number, MemoryShard]> {
    const from = shard ?? 0
    const to = shard === undefined ? SHARDS : shard + 1
    for (let i = from; i < to; i++) {
      const s = this.shards[i]
      if (s !== undefined) yield [i, s]
    }
  }

  close (): void {
    this.shards.fill(undefined)
    this.stateCount = 0
  }
}

/** One shard's records in a MemoryStore; values as one-byte strings (see MemoryStoreOptions). */
class MemoryShard {
  readonly states = new Map<string, string>()
  readonly storage = new Map<string, Map<string, string>>()
  readonly reminders = new Map<string, Map<string, string>>()
  /** Outbox and applied records, by their 16-byte key as a one-byte string. */
  readonly sends = new Map<string, string>()
  readonly applied = new Map<string, string>()

  isEmpty (): boolean {
    return this.states.size === 0 && this.storage.size === 0 && this.reminders.size === 0 && this.sends.size === 0 && this.applied.size === 0
  }

  /** A record read from a range chunk (already checked). */
  put (db: number, key: Uint8Array, value: string): void {
    switch (db) {
      case RANGE_STATES: this.states.set(parseStateKey(key)!, value); break
      case RANGE_STORAGE:
      case RANGE_REMINDERS: {
        const [id, name] = parseAgentKey(key)!
        const into = db === RANGE_STORAGE ? this.storage : this.reminders
        let keys = into.get(id)
        if (keys === undefined) into.set(id, keys = new Map())
        keys.set(name, value)
        break
      }
      case RANGE_OUTBOX: this.sends.set(bytesToLatin1(key), value); break
      default: this.applied.set(bytesToLatin1(key), value)
    }
  }

  * records (toBytes: (s: string) => Uint8Array): Iterable<RangeRecord> {
    for (const [id, s] of this.states) yield [RANGE_STATES, stateKey(id), toBytes(s)]
    for (const [id, keys] of this.storage) for (const [k, s] of keys) yield [RANGE_STORAGE, agentKey(id, k), toBytes(s)]
    for (const [id, names] of this.reminders) for (const [k, s] of names) yield [RANGE_REMINDERS, agentKey(id, k), toBytes(s)]
    for (const [k, s] of this.sends) yield [RANGE_OUTBOX, latin1ToBytes(k), toBytes(s)]
    for (const [k, s] of this.applied) yield [RANGE_APPLIED, latin1ToBytes(k), toBytes(s)]
  }
}

/** A send identity as a map key: its 16 key bytes as a one-byte string. */
function quotaOfId (id: string): string {
  return id.slice(0, id.indexOf(kIdSeparator))
}

function sendKeyString (origin: string, key: number): string {
  return bytesToLatin1(sendKey(origin, key))
}

function bytesToLatin1 (bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[])
  }
  return s
}

function latin1ToBytes (s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}
