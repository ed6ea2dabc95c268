/**
 * Shard ranges: a shard's durable records, out of one store and into another.
 *
 * In storage format 2 (store-format.ts) every record that belongs to an agent is keyed
 * by a shard first — the agent's placement shard, `shardOf(hashId(id))`, fixed forever
 * — so a shard is one key range in each database: the cluster copies, moves and drops
 * shards without scanning the rest. Which shard a record belongs to:
 *
 *   database   key after the shard                       shard of
 *   states     id (UTF-8)                                the agent
 *   storage    u16 id length, id, storage key (UTF-8)    the agent (ctx.storage)
 *   reminders  u16 id length, id, name (UTF-8)           the agent
 *   outbox     origin store id (8), u64 key              the SENDER: its outbox moves with it
 *   applied    origin store id (8), u64 key              the RECEIVER: what it has applied
 *              (value: f64 appliedAt, u16 sender shard)
 *
 * Chunks. `exportShard` yields the range as chunks of bounded size, to stream over a
 * socket; `importShard` takes them back, on any store (memory or LMDB) of this format:
 *
 *   u8  format (2)
 *   then records, each:  u8 database (RANGE_*), u16 key length, u32 value length, key, value
 *
 * Keys travel without their shard prefix (the importer adds its own, so no record can
 * land outside the range), and agent ids in them are checked against the shard.
 */
import { StorageError } from '../errors.ts'
import { hashId, shardOf, SHARDS } from '../placement/hash.ts'
import { STORE_FORMAT, storeIdBytes, storeIdOf } from './store-format.ts'

export const RANGE_STATES = 1
export const RANGE_STORAGE = 2
export const RANGE_REMINDERS = 3
export const RANGE_OUTBOX = 4
export const RANGE_APPLIED = 5
const kLastDb = RANGE_APPLIED

/** Default chunk size: a comfortable socket frame. */
export const RANGE_CHUNK_BYTES = 64 * 1024
const kMinChunkBytes = 64
const kRecordHeader = 7

/** A shard's size in a store: its records, and the bytes of their keys (without the shard) and values. */
export interface ShardSize {
  readonly records: number
  readonly bytes: number
}

/**
 * A store whose shards can be moved: implemented by the LMDB store, the memory store and
 * the simulator's. Call these only while no turn of the shard runs (the cluster stops
 * starting turns for a shard and lets its commits land before it moves it).
 */
export interface ShardRanges {
  /** 16 hex digits, random, made when the store was created: the origin of its durable sends. */
  readonly storeId: string
  /**
   * The shard's records as chunks of at most `maxChunkBytes` (a record larger than that
   * gets a chunk of its own), all read from one snapshot. Lazy: stop iterating to stop.
   */
  exportShard (shard: number, maxChunkBytes?: number): Iterable<Uint8Array>
  /**
   * Replace whatever the shard's range holds with the records of `chunks`, in one
   * transaction: all of them or, if any chunk is malformed (StorageError, nothing
   * written) or the commit fails, none. Resolves once durable (as `commit` does).
   */
  importShard (shard: number, chunks: Iterable<Uint8Array>): Promise<void> | undefined
  /** Remove every record of the shard, in one transaction. */
  dropShard (shard: number): Promise<void> | undefined
  /** How many records the shard holds, and their bytes. */
  shardSize (shard: number): ShardSize
}

export function isShardRanges (store: unknown): store is ShardRanges {
  return typeof (store as ShardRanges | null)?.exportShard === 'function'
}

export function checkShard (shard: number): void {
  if (!(Number.isInteger(shard) && shard >= 0 && shard < SHARDS)) {
    throw new StorageError(`a shard is an integer from 0 to ${SHARDS - 1} (got ${String(shard)})`, { shard })
  }
}

/** One record of a range: its database, its key after the shard prefix, its value. */
export type RangeRecord = readonly [db: number, key: Uint8Array, value: Uint8Array]

/**
 * Pack records into chunks of at most `maxChunkBytes`. The records' bytes are copied at
 * once, so a store may hand out views that its next read reuses.
 */
export function * rangeChunks (records: Iterable<RangeRecord>, maxChunkBytes = RANGE_CHUNK_BYTES): Generator<Uint8Array> {
  if (!(Number.isInteger(maxChunkBytes) && maxChunkBytes >= kMinChunkBytes)) {
    throw new StorageError(`maxChunkBytes must be an integer ≥ ${kMinChunkBytes} (got ${String(maxChunkBytes)})`)
  }
  const buf = new Uint8Array(maxChunkBytes)
  const view = new DataView(buf.buffer)
  buf[0] = STORE_FORMAT
  let at = 1
  for (const [db, key, value] of records) {
    const size = kRecordHeader + key.length + value.length
    if (at + size > maxChunkBytes && at > 1) {
      yield buf.slice(0, at)
      at = 1
    }
    if (1 + size > maxChunkBytes) {
      // one record larger than a chunk: a chunk of its own
      const big = new Uint8Array(1 + size)
      big[0] = STORE_FORMAT
      writeRecord(big, new DataView(big.buffer), 1, db, key, value)
      yield big
      continue
    }
    at = writeRecord(buf, view, at, db, key, value)
  }
  if (at > 1) yield buf.slice(0, at)
}

function writeRecord (buf: Uint8Array, view: DataView, at: number, db: number, key: Uint8Array, value: Uint8Array): number {
  if (key.length > 0xffff) throw new StorageError(`a range key of ${key.length} bytes is over 65,535`)
  buf[at] = db
  view.setUint16(at + 1, key.length)
  view.setUint32(at + 3, value.length)
  buf.set(key, at + kRecordHeader)
  buf.set(value, at + kRecordHeader + key.length)
  return at + kRecordHeader + key.length + value.length
}

/**
 * Every record of a shard's chunks, checked: the format, the framing, the databases,
 * the ids against the shard. Throws StorageError before returning anything if a chunk
 * is malformed, so an import writes all or nothing. Keys and values are views into the
 * chunks.
 */
export function readRangeChunks (shard: number, chunks: Iterable<Uint8Array>): RangeRecord[] {
  checkShard(shard)
  const out: RangeRecord[] = []
  let n = 0
  for (const chunk of chunks) {
    n++
    const bad = (why: string): StorageError => new StorageError(`shard ${shard}: range chunk ${n} is malformed: ${why}`, { shard, chunk: n })
    if (!(chunk instanceof Uint8Array) || chunk.length < 1) throw bad('not a non-empty byte array')
    if (chunk[0] !== STORE_FORMAT) throw bad(`storage format ${String(chunk[0])}, this Shoal reads ${STORE_FORMAT}`)
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    let at = 1
    while (at < chunk.length) {
      if (at + kRecordHeader > chunk.length) throw bad('a record header is cut off')
      const db = chunk[at]!
      const keyLen = view.getUint16(at + 1)
      const valueLen = view.getUint32(at + 3)
      const keyAt = at + kRecordHeader
      const end = keyAt + keyLen + valueLen
      if (end > chunk.length) throw bad('a record is cut off')
      if (db < RANGE_STATES || db > kLastDb) throw bad(`unknown database ${db}`)
      const key = chunk.subarray(keyAt, keyAt + keyLen)
      const value = chunk.subarray(keyAt + keyLen, end)
      const why = recordProblem(shard, db, key, value)
      if (why !== null) throw bad(why)
      out.push([db, key, value])
      at = end
    }
  }
  return out
}

/** Why a record cannot belong to `shard`, or null. */
function recordProblem (shard: number, db: number, key: Uint8Array, value: Uint8Array): string | null {
  let id: string | null
  switch (db) {
    case RANGE_STATES: id = utf8(key, 0, key.length); break
    case RANGE_STORAGE:
    case RANGE_REMINDERS: {
      const parsed = parseAgentKey(key)
      if (parsed === null) return 'an agent key is cut off or not UTF-8'
      if (db === RANGE_REMINDERS && value.length !== 16) return `a reminder record is ${value.length} bytes, not 16`
      id = parsed[0]
      break
    }
    default:
      if (key.length !== SEND_KEY_BYTES) return `a send identity is ${key.length} bytes, not ${SEND_KEY_BYTES}`
      if (db === RANGE_APPLIED && value.length !== APPLIED_VALUE_BYTES) return `an applied record is ${value.length} bytes, not ${APPLIED_VALUE_BYTES}`
      return null
  }
  if (id === null || id.length === 0) return 'an agent id is empty or not UTF-8'
  const s = shardOf(hashId(id))
  return s === shard ? null : `agent ${JSON.stringify(id)} is in shard ${s}`
}

// ---- keys after the shard prefix ----------------------------------------------------

/** Bytes of a send identity (outbox and applied keys): origin store id, then the key as u64. */
export const SEND_KEY_BYTES = 16

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** A states key: the id. */
export function stateKey (id: string): Uint8Array {
  return encoder.encode(id)
}

/** A storage or reminders key: `[u16 id length][id][name]`. */
export function agentKey (id: string, name: string): Uint8Array {
  const idBytes = encoder.encode(id)
  const nameBytes = encoder.encode(name)
  const out = new Uint8Array(2 + idBytes.length + nameBytes.length)
  out[0] = idBytes.length >>> 8
  out[1] = idBytes.length & 0xff
  out.set(idBytes, 2)
  out.set(nameBytes, 2 + idBytes.length)
  return out
}

/** [id, name] of a storage or reminders key, or null if it is malformed. */
export function parseAgentKey (key: Uint8Array): readonly [id: string, name: string] | null {
  if (key.length < 2) return null
  const idEnd = 2 + ((key[0]! << 8) | key[1]!)
  if (idEnd > key.length) return null
  const id = utf8(key, 2, idEnd)
  const name = utf8(key, idEnd, key.length)
  return id === null || name === null ? null : [id, name]
}

/** An outbox or applied key: the origin store id's 8 bytes, then `key` as a big-endian u64. */
export function sendKey (origin: string, key: number, into: Uint8Array = new Uint8Array(SEND_KEY_BYTES), at = 0): Uint8Array {
  storeIdBytes(origin, into, at)
  const hi = Math.floor(key / 0x100000000)
  const lo = key >>> 0
  into[at + 8] = hi >>> 24; into[at + 9] = (hi >>> 16) & 0xff; into[at + 10] = (hi >>> 8) & 0xff; into[at + 11] = hi & 0xff
  into[at + 12] = lo >>> 24; into[at + 13] = (lo >>> 16) & 0xff; into[at + 14] = (lo >>> 8) & 0xff; into[at + 15] = lo & 0xff
  return into
}

/** Bytes of an applied record's value: float64 appliedAt (epoch ms), u16 sender shard, big-endian. */
export const APPLIED_VALUE_BYTES = 10

export function appliedValue (appliedAt: number, senderShard: number): Uint8Array {
  const out = new Uint8Array(APPLIED_VALUE_BYTES)
  const view = new DataView(out.buffer)
  view.setFloat64(0, appliedAt)
  view.setUint16(8, senderShard)
  return out
}

export function parseAppliedValue (bytes: Uint8Array): readonly [appliedAt: number, senderShard: number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, APPLIED_VALUE_BYTES)
  return [view.getFloat64(0), view.getUint16(8)]
}

/** [origin, key] of an outbox or applied key. */
export function parseSendKey (bytes: Uint8Array, at = 0): readonly [origin: string, key: number] {
  const hi = ((bytes[at + 8]! << 24) | (bytes[at + 9]! << 16) | (bytes[at + 10]! << 8) | bytes[at + 11]!) >>> 0
  const lo = ((bytes[at + 12]! << 24) | (bytes[at + 13]! << 16) | (bytes[at + 14]! << 8) | bytes[at + 15]!) >>> 0
  return [storeIdOf(bytes, at), hi * 0x100000000 + lo]
}

/** The id of a states key, or null if it is not UTF-8. */
export function parseStateKey (key: Uint8Array): string | null {
  return utf8(key, 0, key.length)
}

function utf8 (bytes: Uint8Array, start: number, end: number): string | null {
  try {
    return decoder.decode(bytes.subarray(start, end))
  } catch {
    return null
  }
}
