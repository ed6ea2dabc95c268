/**
 * Commit journals: the writes of one group commit as bytes, so that a shard's owner can
 * stream them to the shard's replicas (plugins/cluster/replication/), which apply them
 * to their copy of the range in the same order.
 *
 * A journal is records, each:
 *
 *   u8  database (RANGE_* of shard-range.ts)
 *   u8  op: 0 put, 1 remove
 *   u16 key length
 *   u32 value length (0 for a remove)
 *   key, with its u16 shard prefix (the store's own key), then the value
 *
 * The shard prefix is what splits a journal into per-shard segments: a commit batch of
 * a thread spans every shard whose agents ran in it, and each shard has its own
 * replicas and its own sequence. Records keep their order within a segment — a key
 * written twice in one batch ends as its last write.
 *
 * Why journal the store's writes, not the batch: the store builds the keys (and reads
 * which keys an agent deletion wipes) — replaying them needs no agent code, no codec,
 * no clock: a replica is a copy of the owner's range, write for write.
 *
 * Pure TypeScript: no `node:` import.
 */
import { StorageError } from '../errors.ts'
import { SHARDS } from '../placement/hash.ts'
import { RANGE_APPLIED, RANGE_STATES } from './shard-range.ts'
import { grownBytes } from './grow-bytes.ts'

export const JOURNAL_PUT = 0
export const JOURNAL_REMOVE = 1
const kHeader = 8

/** Appends records to one growable buffer; `take` hands them out and starts again. */
export class JournalWriter {
  private bytes = new Uint8Array(16 * 1024)
  private view = new DataView(this.bytes.buffer)
  private at = 0

  get empty (): boolean {
    return this.at === 0
  }

  put (db: number, key: Uint8Array, value: Uint8Array): void {
    this.record(db, JOURNAL_PUT, key, value)
  }

  remove (db: number, key: Uint8Array): void {
    this.record(db, JOURNAL_REMOVE, key, null)
  }

  /** The records written since the last take (a copy), or null when there were none. */
  take (): Uint8Array | null {
    if (this.at === 0) return null
    const out = this.bytes.slice(0, this.at)
    this.at = 0
    return out
  }

  private record (db: number, op: number, key: Uint8Array, value: Uint8Array | null): void {
    const valueLength = value === null ? 0 : value.length
    this.reserve(kHeader + key.length + valueLength)
    const v = this.view
    const at = this.at
    v.setUint8(at, db)
    v.setUint8(at + 1, op)
    v.setUint16(at + 2, key.length)
    v.setUint32(at + 4, valueLength)
    this.bytes.set(key, at + kHeader)
    if (value !== null) this.bytes.set(value, at + kHeader + key.length)
    this.at = at + kHeader + key.length + valueLength
  }

  private reserve (n: number): void {
    if (this.at + n <= this.bytes.length) return
    this.bytes = grownBytes(this.bytes, this.at, this.at + n)
    this.view = new DataView(this.bytes.buffer)
  }
}

/** One record of a journal: views into its bytes. */
export interface JournalRecord {
  readonly db: number
  readonly op: number
  /** The key with its shard prefix. */
  readonly key: Uint8Array
  readonly value: Uint8Array
}

/** Every record of a journal, in order; StorageError when the bytes are not a journal. */
export function * readJournal (bytes: Uint8Array): Generator<JournalRecord> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  while (at < bytes.length) {
    if (at + kHeader > bytes.length) throw bad('a record header is cut short')
    const db = v.getUint8(at)
    const op = v.getUint8(at + 1)
    const keyLength = v.getUint16(at + 2)
    const valueLength = v.getUint32(at + 4)
    if (db < RANGE_STATES || db > RANGE_APPLIED) throw bad(`unknown database ${db}`)
    if (op !== JOURNAL_PUT && op !== JOURNAL_REMOVE) throw bad(`unknown op ${op}`)
    if (keyLength < 2) throw bad('a key without its shard')
    const end = at + kHeader + keyLength + valueLength
    if (end > bytes.length) throw bad('a record is cut short')
    const key = bytes.subarray(at + kHeader, at + kHeader + keyLength)
    if (((key[0]! << 8) | key[1]!) >= SHARDS) throw bad('a key outside every shard')
    yield { db, op, key, value: bytes.subarray(at + kHeader + keyLength, end) }
    at = end
  }
}

/**
 * Split a journal into per-shard segments (journals themselves), each keeping its
 * records' order; shards in the order they first appear.
 */
export function splitJournal (bytes: Uint8Array): Array<readonly [shard: number, segment: Uint8Array]> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  // most batches touch one shard or a few: find the record bounds per shard first
  const bounds = new Map<number, number[]>()
  let at = 0
  while (at + kHeader <= bytes.length) {
    const keyLength = v.getUint16(at + 2)
    const end = at + kHeader + keyLength + v.getUint32(at + 4)
    if (keyLength < 2 || end > bytes.length) throw bad('a record is cut short')
    const shard = (bytes[at + kHeader]! << 8) | bytes[at + kHeader + 1]!
    let list = bounds.get(shard)
    if (list === undefined) bounds.set(shard, list = [])
    list.push(at, end)
    at = end
  }
  if (at !== bytes.length) throw bad('trailing bytes')
  const out: Array<readonly [number, Uint8Array]> = []
  for (const [shard, list] of bounds) {
    if (list.length === 2) {
      out.push([shard, bytes.subarray(list[0], list[1])])
      continue
    }
    let size = 0
    for (let i = 0; i < list.length; i += 2) size += list[i + 1]! - list[i]!
    const segment = new Uint8Array(size)
    let p = 0
    for (let i = 0; i < list.length; i += 2) {
      segment.set(bytes.subarray(list[i], list[i + 1]), p)
      p += list[i + 1]! - list[i]!
    }
    out.push([shard, segment])
  }
  return out
}

/** The shards seen by `forEachSegment`'s current call (a stamp per shard: no Map per journal). */
const seenStamp = new Uint32Array(SHARDS)
let stamp = 0
/** Per shard of the current call, its first and last record (indices into `recStart`…). */
const firstRec = new Int32Array(SHARDS)
const lastRec = new Int32Array(SHARDS)
/** Per record of the current call: its bounds and the next record of its shard (-1: none). */
let recStart = new Int32Array(256)
let recEnd = new Int32Array(256)
let recNext = new Int32Array(256)
/** Shards in the order they first appear. */
let shardOrder = new Int32Array(256)
/** Where a shard's records that are apart are gathered (valid while `visit` runs). */
let gathered = new Uint8Array(4096)

/**
 * `splitJournal` without its arrays: `visit(shard, bytes, start, end)` per shard, shards in
 * the order they first appear, each segment the records `start..end` of `bytes` — ranges
 * of the journal itself when every shard's records are together, else a shard's records
 * gathered into a buffer reused from call to call (so `bytes` is only valid while `visit`
 * runs: copy what is kept). The whole journal is checked first (StorageError, nothing
 * visited). Not reentrant. The owner numbers and sends a segment per shard of every
 * commit, nearly one per command: this is that loop's split, with no Map, list, tuple or
 * view per journal or segment.
 */
export function forEachSegment (bytes: Uint8Array, visit: (shard: number, bytes: Uint8Array, start: number, end: number) => void): void {
  const length = bytes.length
  const mine = nextStamp()
  let contiguous = true
  let last = -1
  let at = 0
  while (at + kHeader <= length) {
    const keyLength = (bytes[at + 2]! << 8) | bytes[at + 3]!
    const end = at + kHeader + keyLength + recordValueLength(bytes, at)
    if (keyLength < 2 || end > length) throw bad('a record is cut short')
    const shard = (bytes[at + kHeader]! << 8) | bytes[at + kHeader + 1]!
    if (shard !== last) {
      if (shard >= SHARDS) throw bad('a key outside every shard')
      if (seenStamp[shard] === mine) contiguous = false
      seenStamp[shard] = mine
      last = shard
    }
    at = end
  }
  if (at !== length) throw bad('trailing bytes')
  if (!contiguous) {
    gatherSegments(bytes, visit)
    return
  }
  let start = 0
  last = -1
  at = 0
  while (at < length) {
    const end = at + kHeader + ((bytes[at + 2]! << 8) | bytes[at + 3]!) + recordValueLength(bytes, at)
    const shard = (bytes[at + kHeader]! << 8) | bytes[at + kHeader + 1]!
    if (shard !== last) {
      if (last !== -1) visit(last, bytes, start, at)
      start = at
      last = shard
    }
    at = end
  }
  if (last !== -1) visit(last, bytes, start, length)
}

/**
 * `forEachSegment` of a journal (checked) where some shard's records are apart (two agents
 * of one shard in a commit, with another's records between): the records chained per
 * shard, each shard's gathered into `gathered` in order.
 */
function gatherSegments (bytes: Uint8Array, visit: (shard: number, bytes: Uint8Array, start: number, end: number) => void): void {
  const length = bytes.length
  let records = 0
  let shards = 0
  const pass = nextStamp()
  for (let at = 0; at < length;) {
    const end = at + kHeader + ((bytes[at + 2]! << 8) | bytes[at + 3]!) + recordValueLength(bytes, at)
    const shard = (bytes[at + kHeader]! << 8) | bytes[at + kHeader + 1]!
    if (records === recStart.length) {
      recStart = grownInts(recStart)
      recEnd = grownInts(recEnd)
      recNext = grownInts(recNext)
    }
    recStart[records] = at
    recEnd[records] = end
    recNext[records] = -1
    if (seenStamp[shard] !== pass) {
      seenStamp[shard] = pass
      if (shards === shardOrder.length) shardOrder = grownInts(shardOrder)
      shardOrder[shards++] = shard
      firstRec[shard] = records
    } else {
      recNext[lastRec[shard]!] = records
    }
    lastRec[shard] = records
    records++
    at = end
  }
  for (let k = 0; k < shards; k++) {
    const shard = shardOrder[k]!
    let size = 0
    for (let r = firstRec[shard]!; r !== -1; r = recNext[r]!) size += recEnd[r]! - recStart[r]!
    if (size > gathered.length) gathered = new Uint8Array(Math.max(size, 2 * gathered.length))
    const out = gathered
    let p = 0
    for (let r = firstRec[shard]!; r !== -1; r = recNext[r]!) {
      for (let i = recStart[r]!, e = recEnd[r]!; i < e; i++) out[p++] = bytes[i]!
    }
    visit(shard, out, 0, size)
  }
}

/** A stamp no shard holds yet. */
function nextStamp (): number {
  stamp = (stamp + 1) >>> 0
  if (stamp === 0) {
    seenStamp.fill(0)
    stamp = 1
  }
  return stamp
}

function grownInts (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2)
  b.set(a)
  return b
}

/**
 * Throw StorageError unless the segment is well-formed journal records, every one of
 * `shard`: what `readJournal` checks, plus the shard, in one pass that builds nothing (a
 * replica checks every segment of a batch before it queues any write of it).
 */
export function checkSegment (segment: Uint8Array, shard: number): void {
  // byte reads, no DataView: this runs for every segment a replica applies
  const b = segment
  const length = b.length
  let at = 0
  while (at < length) {
    if (at + kHeader > length) throw bad('a record header is cut short')
    const db = b[at]!
    const op = b[at + 1]!
    const keyLength = (b[at + 2]! << 8) | b[at + 3]!
    if (db < RANGE_STATES || db > RANGE_APPLIED) throw bad(`unknown database ${db}`)
    if (op !== JOURNAL_PUT && op !== JOURNAL_REMOVE) throw bad(`unknown op ${op}`)
    if (keyLength < 2) throw bad('a key without its shard')
    const end = at + kHeader + keyLength + recordValueLength(b, at)
    if (end > length) throw bad('a record is cut short')
    if (((b[at + kHeader]! << 8) | b[at + kHeader + 1]!) !== shard) throw new StorageError(`a journal segment of shard ${shard} writes outside it`)
    at = end
  }
}

/** The u32 value length of the record at `at` (its header read byte by byte). */
export function recordValueLength (b: Uint8Array, at: number): number {
  return b[at + 4]! * 0x1000000 + ((b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!)
}

/** Bytes of a record's header (db, op, key length, value length): its key starts there. */
export const JOURNAL_RECORD_HEADER = kHeader

function bad (why: string): StorageError {
  return new StorageError(`a commit journal is malformed: ${why}`)
}

/**
 * Cut a journal at record boundaries into pieces of at most `maxBytes` (a record larger
 * than that is a piece of its own): each piece must fit one ring frame.
 */
export function chunkJournal (bytes: Uint8Array, maxBytes: number): Uint8Array[] {
  if (bytes.length <= maxBytes) return [bytes]
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: Uint8Array[] = []
  let start = 0
  let at = 0
  while (at + kHeader <= bytes.length) {
    const end = at + kHeader + v.getUint16(at + 2) + v.getUint32(at + 4)
    if (end - start > maxBytes && at > start) {
      out.push(bytes.subarray(start, at))
      start = at
    }
    at = end
  }
  if (at !== bytes.length) throw bad('a record is cut short')
  if (at > start) out.push(bytes.subarray(start, at))
  return out
}
