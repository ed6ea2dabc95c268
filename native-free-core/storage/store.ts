/**
 * Where committed agent states live. The core declares the interface; the host
 * injects an implementation (lmdb-js's `setExternals` idea): `MemoryStore` below when
 * no `dataDir` is given, the LMDB store otherwise.
 *
 * The runtime hands the store one batch per loop iteration (group commit) and
 * releases the replies and sends of those turns only once `commit` has finished —
 * synchronously (`undefined`) or when the returned promise resolves (the output gate).
 */
import type { QuotaRecords } from '../tenancy/quota-store.ts'
import { hashId, shardOf, SHARDS } from '../placement/hash.ts'
import { newStoreId } from './store-format.ts'
import {
  RANGE_APPLIED, RANGE_OUTBOX, RANGE_REMINDERS, RANGE_STATES, RANGE_STORAGE, agentKey, checkShard, parseAgentKey, parseStateKey, rangeChunks,
  readRangeChunks, stateKey
} from './shard-range.ts'
import type { RangeRecord, ShardRanges, ShardSize } from './shard-range.ts'

/** The `ctx.storage` changes of one agent in a batch. */
export interface StorageChanges {
  /** Remove every key the agent had (ctx.delete) before applying `entries`. */
  readonly wiped: boolean
  /** Key → new value bytes, `null` deletes the key; applied in order (a Map will do). */
  readonly entries: KeyedWrites
}

/** Writes to apply in the order `forEach` gives them: a key may come twice, the later write wins. */
export interface KeyedWrites {
  forEach (fn: (bytes: Uint8Array | null, key: string) => void): void
}

/**
 * A `ctx.send` of a durable agent, stored with its sender's state (the durable outbox).
 * `key` is unique for ever: incarnation × 2^32 + sequence (see `Store.newIncarnation`).
 * `bytes` is the encoded `[from, to, type, method, payload]`, names not indices.
 */
export interface OutboxRecord {
  readonly key: number
  readonly bytes: Uint8Array
}

/** One group commit, applied atomically: all of it or none of it. */
export interface WriteBatch {
  /** States to write (`null` deletes the agent). */
  readonly states: ReadonlyArray<readonly [id: string, bytes: Uint8Array | null]>
  /** `ctx.storage` changes, per agent id. */
  readonly storage?: ReadonlyMap<string, StorageChanges> | null
  /** Durable sends of this batch's turns. */
  readonly outboxPuts?: readonly OutboxRecord[] | null
  /** Durable sends this batch's turns applied: removed in the same transaction, so a send is applied at most once. */
  readonly outboxDeletes?: readonly number[] | null
  /** Durable reminders (`ctx.remind`), per agent id: name → encoded record (agent-reminders.ts), `null` removes it. */
  readonly reminders?: ReadonlyMap<string, StorageChanges> | null
  /** Net agents created per quota by this batch (quota-store.ts), applied in the same transaction. */
  readonly quotaDeltas?: ReadonlyArray<readonly [quota: string, delta: number]> | null
}

export interface Store {
  /** True when a commit survives the process (LMDB); false for memory. */
  readonly durable: boolean
  /** The last committed state of an agent, or undefined if it has none. */
  getState (id: string): Uint8Array | undefined
  /** Apply a batch atomically. Returns a promise when the commit completes later. */
  commit (batch: WriteBatch): Promise<void> | undefined
  /**
   * Ids of stored agents whose id string starts with `prefix`, each once, in storage
   * order: by placement shard, then by the id's UTF-8 bytes within a shard (not one
   * global id order: a shard is one key range, see shard-range.ts).
   */
  ids (prefix: string): Iterable<string>
  /** The committed value of one `ctx.storage` key of an agent. */
  getStorage (id: string, key: string): Uint8Array | undefined
  /**
   * Committed `ctx.storage` entries of an agent whose key starts with `prefix` and is
   * ≥ `start`, in UTF-8 byte order (= code point order, see `compareKeys`). Lazy: the
   * caller stops iterating when it has enough.
   */
  listStorage (id: string, prefix: string, start: string | undefined): Iterable<readonly [key: string, bytes: Uint8Array]>
  /** Is this durable send still waiting to be applied (its record not yet removed)? */
  hasOutbox (key: number): boolean
  /** Every durable send not yet applied, for redelivery after a crash. */
  outbox (): Iterable<readonly [key: number, bytes: Uint8Array]>
  /** A number no earlier incarnation of any thread on this store used: the high half of outbox keys. */
  newIncarnation (): number
  /**
   * Every stored reminder, as [agent id, name, encoded record] — or only those of the
   * agents of `shard`: read when a thread starts, or adopts a shard.
   */
  reminders (shard?: number): Iterable<readonly [id: string, name: string, bytes: Uint8Array]>
  close (): Promise<void> | void
}

/** Highest incarnation: keeps incarnation × 2^32 + sequence an exact double. */
export const MAX_INCARNATION = 2 ** 20

/**
 * Order of storage keys: UTF-8 byte order, which is code point order. UTF-16 code
 * units differ from it only where a surrogate pair (≥ U+10000) meets U+E000–U+FFFF:
 * shifting those two ranges past each other fixes it without decoding.
 */
export function compareKeys (a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    return x - y
  }
  return a.length - b.length
}

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
  private readonly pendingSends = new Map<number, Uint8Array>()
  private readonly limits = new Map<string, number>()
  private readonly counts = new Map<string, number>()
  private incarnation = 0
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
    const s = shardOf(hashId(id))
    return this.shards[s] ??= new MemoryShard()
  }

  getState (id: string): Uint8Array | undefined {
    const s = this.shardOfId(id)?.states.get(id)
    return s === undefined ? undefined : this.toBytes(s)
  }

  commit (batch: WriteBatch): undefined {
    for (const [id, bytes] of batch.states) {
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
    if (batch.outboxPuts != null) for (const r of batch.outboxPuts) this.pendingSends.set(r.key, r.bytes)
    if (batch.outboxDeletes != null) for (const k of batch.outboxDeletes) this.pendingSends.delete(k)
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

  hasOutbox (key: number): boolean {
    return this.pendingSends.has(key)
  }

  * outbox (): Iterable<readonly [number, Uint8Array]> {
    yield * [...this.pendingSends]
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
    this.stateCount += s.states.size - (this.shards[shard]?.states.size ?? 0)
    this.shards[shard] = s.isEmpty() ? undefined : s
    return undefined
  }

  dropShard (shard: number): undefined {
    checkShard(shard)
    this.stateCount -= this.shards[shard]?.states.size ?? 0
    this.shards[shard] = undefined
    return undefined
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
    this.pendingSends.clear()
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
