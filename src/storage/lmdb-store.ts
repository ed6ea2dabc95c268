/**
 * The durable store: one LMDB environment (lmdb-js) in `dataDir`, opened by every
 * thread of the host — lmdb-js shares one environment between the threads of a
 * process, and LMDB serializes their write transactions.
 *
 * Storage format 2 (store-format.ts): every record that belongs to an agent is keyed by
 * its placement shard first (lmdb-keys.ts), so that a shard is one key range per
 * database — exported, imported and dropped without scanning the rest (shard-range.ts).
 *
 *   database   key                                       value
 *   states     u16 shard, id (quota \x1f type \x1f key)   msgpack state
 *   storage    u16 shard, u16 id length, id, storage key  msgpack value   (ctx.storage)
 *   reminders  u16 shard, u16 id length, id, name         16 bytes: float64 due (epoch ms), every (ms, 0: once)
 *   outbox     u16 sender shard, origin (8), u64 key      msgpack [from, to, type, method, payload]
 *   applied    u16 receiver shard, origin (8), u64 key    f64 appliedAt, u16 sender shard   (outbox: 'dedup')
 *   meta       'format'                                  2
 *              'storeId'                                 16 hex digits, random, made with the environment
 *              'incarnation'                             last incarnation handed out
 *              'replica' \x1f shard                      1: the shard's range is a cluster
 *                                                       replica's copy (not in the quota counts)
 *   quotas     'l' \x1f quota                            the quota's limit (host.quotas.set)
 *              'c' \x1f quota \x1f writer                 agents created − deleted in the quota by
 *                                                       one writer (see below)
 *
 * Quota counts (quota-store.ts). Every batch carries its net creations per quota, to be
 * applied in its own transaction. A batch here is queued puts, not a transaction
 * callback, so it cannot read-modify-write a shared counter; instead each thread writes
 * its own counter records, keyed by the incarnation it took when it started (never
 * reused, so no two threads — nor a dead worker and its replacement — share a record)
 * and holding that writer's running total as an absolute value. The count of a quota is
 * the sum of its records. `quotaCounts()`, called by the main thread when the host
 * starts and before any worker writes, folds each quota's records into one (writer 0).
 * A shard range imported or dropped (the cluster moves shards) adds its agents to, or
 * takes them from, writer 0's record in the range's own transaction (read-modify-write:
 * those are transaction callbacks), so the counts stay the agents this store holds.
 *
 * A batch is one LMDB transaction: lmdb-js puts every write queued in one event turn
 * into the same transaction (its batching contract; the one thing that splits a batch is
 * a `transactionSync`, which only `newIncarnation` uses, when a thread starts), so
 * states, storage, outbox records and their removals of one batch commit together or
 * not at all.
 *
 * Durability (the `durability` host option). The two modes open the environment
 * differently (lmdb-js shares one environment per process, so every store of a process
 * on one directory must use the same mode: a second one in the other mode is refused,
 * StorageError; one process after another in either order is fine).
 *   'disk' (default)  lmdb-js's `overlappingSync`: a transaction is committed (visible,
 *                     in the OS's page cache), then flushed while later ones proceed;
 *                     `commit` resolves after its flush. An acknowledged command
 *                     survives kill -9 and power loss: after a crash LMDB opens at the
 *                     last committed transaction, after power loss at the last flushed
 *                     one (lmdb-js marks unflushed meta pages and skips them).
 *   'os'              LMDB's MDB_NOSYNC (lmdb-js `noSync`): a commit writes its pages and
 *                     meta page into the OS's page cache and does not flush; `commit`
 *                     resolves at commit. Every store flushes the environment
 *                     (`mdb_env_sync`) in the background every `flushIntervalMs`
 *                     (default 1000) if it wrote since its last flush, and on `close`;
 *                     after a failed flush it refuses commits and replica applies
 *                     until a retried flush succeeds.
 *                     An acknowledged command survives the process dying (kill -9, OOM:
 *                     the page cache is the kernel's). Power loss or an OS crash may
 *                     lose the commands acknowledged since the last completed flush
 *                     (about `flushIntervalMs`, more if a flush is slow) — and, since
 *                     LMDB then relies on the filesystem writing pages in order, which
 *                     ext4/xfs do not promise for overwritten file pages, may leave the
 *                     environment CORRUPT (a meta page on disk pointing at pages that
 *                     are not), not just behind. Use 'os' where a host's data can be
 *                     rebuilt (cluster replicas on other machines, a cache) or power
 *                     loss is not in the failure model; 'disk' otherwise. (A worker
 *                     that dies leaves its last commits to the next flush of a thread
 *                     that writes, or to the host's close: each flush syncs the whole
 *                     environment.) A replica's apply is acknowledged at its commit too
 *                     (`queueReplicated`'s `durable`); range imports, drops, counts and
 *                     quota limits resolve at commit.
 *
 * Keys of `storage` and `reminders` carry the id's length so that an agent's keys form one
 * range whatever its id contains: the length stops `a` + `\0b` from meeting `a\0` + `b`.
 */
import { open } from 'lmdb'
import { InvalidArgumentError, StorageError, messageOf } from '../../native-free-core/errors.ts'
import type { Database, RootDatabase } from 'lmdb'
import { SHARDS, shardOf } from '../../native-free-core/placement/hash.ts'
import { compareKeys } from '../../native-free-core/storage/store.ts'
import type { AppliedRecord, OutboxRecord, SendId, StorageChanges, Store, WriteBatch } from '../../native-free-core/storage/store.ts'
import { PackedStates } from '../../native-free-core/storage/packed-states.ts'
import {
  RANGE_APPLIED, RANGE_OUTBOX, RANGE_REMINDERS, RANGE_STATES, RANGE_STORAGE, appliedValue, checkShard, parseAppliedValue, parseSendKey, rangeChunks,
  readRangeChunks
} from '../../native-free-core/storage/shard-range.ts'
import type { RangeRecord, ShardRanges, ShardSize } from '../../native-free-core/storage/shard-range.ts'
import { QuotaTally } from '../../native-free-core/tenancy/quota-store.ts'
import type { QuotaCountChange, QuotaRecords } from '../../native-free-core/tenancy/quota-store.ts'
import { JOURNAL_RECORD_HEADER, JOURNAL_REMOVE, JournalWriter, checkSegment, recordValueLength } from '../../native-free-core/storage/commit-journal.ts'
import { KeyScratch, SendKeyScratch, parseStorageKey, prefixRange, shardRange, storageKey } from './lmdb-keys.ts'
import type { FastBuffer } from './lmdb-keys.ts'
import { openFormat } from './lmdb-format.ts'
import { withCommitCause } from './lmdb-commit-failure.ts'
import { defaultFlushIntervalMs, kMaxFlushIntervalMs } from './durability.ts'

export type Durability = 'disk' | 'os'

/** Replicated writes queued (`LmdbStore.queueReplicated`): committed, then durable. */
export interface ReplicatedWrite {
  readonly committed: Promise<void>
  readonly durable: Promise<void>
}

/** A journal segment for `queueReplicated`: a shard's records, as its owner wrote them. */
export interface ReplicatedSegment {
  readonly shard: number
  readonly segment: Uint8Array
}

/**
 * `findStatelessShards` seeks shard by shard only in a store of at most this many states
 * per shard on average; a fuller one has states in (nearly) every shard.
 */
const kScanStatesPerShard = 4

/** The environment's `open` options besides its path with durability 'disk' (lmdb-js's defaults otherwise: overlappingSync, fsync on). Shared with the bench's raw baseline (raw-commit.ts). */
export const lmdbEnvOptions = { maxDbs: 8 } as const
/** The environment's `open` options for a durability mode: 'os' without per-commit flushes (see the header). */
export function lmdbEnvOptionsFor (durability: Durability): { readonly maxDbs: 8, readonly noSync?: true } {
  return durability === 'os' ? { ...lmdbEnvOptions, noSync: true } : lmdbEnvOptions
}
/** The states database's options. */
export const lmdbStateDbOptions = { name: 'states', encoding: 'binary', keyEncoding: 'binary' } as const

export interface LmdbStoreOptions {
  readonly path: string
  readonly durability: Durability
  /** Durability 'os': flush the environment this often (ms) if this store wrote since its last flush. Default `defaultFlushIntervalMs`. */
  readonly flushIntervalMs?: number
}

export class LmdbStore implements Store, QuotaRecords, ShardRanges {
  readonly durable = true
  readonly path: string
  readonly storeId: string
  private readonly env: RootDatabase
  private readonly states: Database<Buffer, Buffer>
  private readonly storage: Database<Buffer, Buffer>
  private readonly pendingSends: Database<Buffer, Buffer>
  private readonly appliedSends: Database<Buffer, Buffer>
  private readonly reminderRecords: Database<Buffer, Buffer>
  private readonly meta: Database<number, string>
  private readonly quotas: Database<number, string>
  /** The databases a shard's range spans, as numbered in range chunks. */
  private readonly rangeDbs: ReadonlyArray<readonly [number, Database<Buffer, Buffer>]>
  /** The range databases by RANGE_* id (a journal record's database). */
  private readonly rangeDbById: Array<Database<Buffer, Buffer>> = []
  /** The last incarnation this instance took: the key of its quota counter records. */
  private incarnation = 0
  private writer = 0
  /** This writer's running totals per quota (what its records hold). */
  private readonly written = new Map<string, number>()
  private readonly waitForFlush: boolean
  /** Keys of writes (commit) and of reads: separate, so a read in between never clobbers a key being built. */
  private readonly writeKeys = new KeyScratch()
  private readonly readKeys = new KeyScratch()
  private readonly sendKeys = new SendKeyScratch()
  /** Keys of a replica's journal records, copied for lmdb-js (`queueReplicated`). */
  private readonly journalKeys = new KeyScratch()
  private closed = false
  /** Durability 'os': the background flush's timer; null with 'disk'. */
  private readonly flushTimer: ReturnType<typeof setInterval> | null = null
  /** Durability 'os': this store queued writes since its last flush began. */
  private dirty = false
  /** Durability 'os': the last write or transaction this store queued (lmdb-js commits a thread's writes in order). */
  private lastQueued: Promise<unknown> = kNothingWritten
  /** Durability 'os': the flush in progress (one at a time), or null. */
  private flushing: Promise<void> | null = null
  /**
   * Durability 'os': the last flush failed (an fsync error: EIO, a full disk) and none has
   * succeeded since. Commits are refused meanwhile: what was acknowledged since the last good
   * flush may already be lost, and acknowledging more would hide it (the background flush
   * retries; the first success clears this).
   */
  private flushFailure: string | null = null
  countsMoved: ((change: QuotaCountChange) => void) | undefined = undefined
  /**
   * Replication (the cluster's replicas): set, every commit also records its writes as a
   * journal (commit-journal.ts), and the commit resolves only once the local transaction
   * is durable AND `replicate(journal)` has resolved — the output gate spans hosts.
   * The journal goes out when the commit is queued, not once it has committed, so that
   * the replicas' commit overlaps this one (see `settled`); `lost(journal)` is told if the
   * local transaction then fails, so that no replica keeps a write this store lost.
   */
  private replicate: ((journal: Uint8Array) => Promise<void>) | null = null
  private lost: ((journal: Uint8Array) => void) | null = null
  /** The last write queued by `commit` or `deleteOutbox` (settles once every earlier one has): see `localCommits`. */
  private lastWritten: Promise<boolean> = kNothingWritten
  /** Settles once every commit's durable promise handed out so far has settled (`durableNow`). */
  private lastDurable: Promise<void> = Promise.resolve()
  /** Shards whose range is a replica's copy (kept in meta 'replicaRanges'): not in the quota counts. */
  private readonly replicaRanges: Set<number>
  private journal: JournalWriter | null = null
  /**
   * Per shard, 1: no state record in the shard (`knownStateless`) — none when the host
   * opened the store (`findStatelessShards`), none written since; 0: not known. One
   * SharedArrayBuffer for every thread of the host (`shareStateless`): whichever thread
   * writes a state, or imports a range, clears its shard's byte before the write is
   * queued, so no thread can read the write back while the byte still says stateless.
   * Bytes only ever go from 1 to 0. null: not kept (a cluster's host; other stores).
   */
  private stateless: Uint8Array | null = null

  constructor (options: LmdbStoreOptions) {
    this.path = options.path
    this.waitForFlush = options.durability === 'disk'
    const flushMs = options.flushIntervalMs ?? defaultFlushIntervalMs
    if (!Number.isInteger(flushMs) || flushMs < 1 || flushMs > kMaxFlushIntervalMs) {
      throw new InvalidArgumentError(`flushIntervalMs must be an integer from 1 to ${kMaxFlushIntervalMs} (got ${String(flushMs)})`, { flushIntervalMs: flushMs })
    }
    try {
      this.env = open({ path: options.path, ...lmdbEnvOptionsFor(options.durability) })
    } catch (err) {
      // lmdb-js refuses noSync on an environment this process has open with overlappingSync
      if (options.durability === 'os' && /overlappingSync/.test(messageOf(err))) throw mixedModes(options.path, 'os')
      throw err
    }
    if (this.waitForFlush && (this.env as unknown as { overlappingSync?: boolean }).overlappingSync !== true) {
      // this process has the environment open with noSync ('os'): lmdb-js reuses it as it
      // is, and no commit here would be flushed
      this.env.close().catch(noop)
      throw mixedModes(options.path, 'disk')
    }
    try {
      this.meta = this.env.openDB<number, string>({ name: 'meta' })
      this.storeId = openFormat(this.env, this.meta as Database<unknown, string>, options.path)
    } catch (err) {
      this.env.close().catch(noop)
      throw err
    }
    this.states = this.env.openDB<Buffer, Buffer>(lmdbStateDbOptions)
    this.storage = this.env.openDB<Buffer, Buffer>({ name: 'storage', encoding: 'binary', keyEncoding: 'binary' })
    this.pendingSends = this.env.openDB<Buffer, Buffer>({ name: 'outbox', encoding: 'binary', keyEncoding: 'binary' })
    this.appliedSends = this.env.openDB<Buffer, Buffer>({ name: 'applied', encoding: 'binary', keyEncoding: 'binary' })
    this.reminderRecords = this.env.openDB<Buffer, Buffer>({ name: 'reminders', encoding: 'binary', keyEncoding: 'binary' })
    this.quotas = this.env.openDB<number, string>({ name: 'quotas' })
    this.replicaRanges = new Set()
    for (const key of this.meta.getKeys({ start: 'replica\x1f' as never, end: 'replica\x20' as never })) {
      this.replicaRanges.add(Number(String(key).slice(8)))
    }
    this.rangeDbs = [
      [RANGE_STATES, this.states], [RANGE_STORAGE, this.storage], [RANGE_REMINDERS, this.reminderRecords],
      [RANGE_OUTBOX, this.pendingSends], [RANGE_APPLIED, this.appliedSends]
    ]
    for (const [id, db] of this.rangeDbs) this.rangeDbById[id] = db
    if (!this.waitForFlush) {
      this.flushTimer = setInterval(() => { if (this.dirty) this.flush().catch(noop) }, flushMs)
      this.flushTimer.unref()
    }
  }

  /**
   * Flush everything this process has committed to the environment to disk: with 'disk',
   * the flush of the newest transaction this thread queued (`flushedNow`); with 'os', an
   * `mdb_env_sync` now (one at a time; a call during one waits for it and then runs its
   * own, so the flush covers every commit settled before the call). A failed flush leaves
   * the store dirty, so the next one retries, and refuses commits and replica applies
   * until one succeeds.
   */
  flush (): Promise<void> {
    if (this.waitForFlush) return this.flushedNow()
    const run = (): Promise<void> => {
      // the writes queued so far committed first: a sync begun before a commit would miss it
      const upTo = this.lastQueued
      this.dirty = false
      const f: Promise<void> = upTo.then(noop, noop).then(() => new Promise<void>((resolve, reject) => {
        (this.env as unknown as { sync (cb: (err?: unknown) => void): void }).sync((err) => {
          if (err) {
            this.dirty = true
            this.flushFailure = messageOf(err)
            reject(err instanceof Error ? err : new StorageError(`flush failed: ${messageOf(err)}`, { path: this.path }))
          } else {
            this.flushFailure = null
            resolve()
          }
        })
      })).finally(() => { if (this.flushing === f) this.flushing = null })
      this.flushing = f
      return f
    }
    const pending = this.flushing
    return pending === null ? run() : pending.then(run, run)
  }

  getState (id: string, hash?: number): Uint8Array | undefined {
    // a view valid until the next read: the runtime decodes it at once
    return this.states.getBinaryFast(this.readKeys.state(id, hash))
  }

  getStateOfBytes (bytes: Uint8Array, at: number, len: number, hash: number): Uint8Array | undefined {
    return this.states.getBinaryFast(this.readKeys.stateOfBytes(bytes, at, len, hash))
  }

  knownStateless (hash: number): boolean {
    const s = this.stateless
    return s !== null && Atomics.load(s, shardOf(hash)) === 1
  }

  /**
   * Find the shards that hold no state now and keep them as known stateless (see
   * `stateless`); returns the shared bytes for the host's other threads (`shareStateless`).
   * Call once, on the main thread, before any other thread can write: the host does,
   * on one host without a cluster, before it starts its workers.
   */
  findStatelessShards (): SharedArrayBuffer {
    const shared = new SharedArrayBuffer(SHARDS)
    const bytes = new Uint8Array(shared)
    this.env.resetReadTxn()
    const states = (this.states.getStats() as { entryCount: number }).entryCount
    if (states === 0) {
      bytes.fill(1)
    } else if (states <= SHARDS * kScanStatesPerShard) {
      // the first key at or after each shard's start says which shards before it are empty
      let shard = 0
      while (shard < SHARDS) {
        const [start] = shardRange(shard)
        let next = SHARDS
        for (const key of this.states.getKeys({ start, limit: 1 })) next = key.readUInt16BE(0)
        for (let s = shard; s < next && s < SHARDS; s++) bytes[s] = 1
        shard = next + 1
      }
    }
    // else: so many states that (nearly) every shard holds some; none known stateless, and
    // no seek per shard at open (4,096 of them took 0.27 s with 848k states, cold)
    this.stateless = bytes
    return shared
  }

  /** Use the known-stateless shards another thread's store found (`findStatelessShards`). */
  shareStateless (shared: SharedArrayBuffer): void {
    this.stateless = new Uint8Array(shared)
  }

  /** A state is about to be written to `shard` (or its range replaced): it is no longer known stateless. */
  private stateWritten (shard: number): void {
    const s = this.stateless
    if (s !== null && s[shard] !== 0) Atomics.store(s, shard, 0)
  }

  /**
   * Replicate every commit from now on (call before the first commit): `replicate` gets a
   * commit's journal as the commit is queued; `lost` gets it again if the local
   * transaction fails afterwards (the replicas may have it: they must start over).
   */
  replicateWith (replicate: (journal: Uint8Array) => Promise<void>, lost: (journal: Uint8Array) => void): void {
    this.replicate = replicate
    this.lost = lost
    this.journal = new JournalWriter()
  }

  /**
   * Resolves once every commit queued here so far has committed (or failed): lmdb-js
   * commits one thread's batches in order, so the last one queued settles last. A snapshot
   * of a range read after it holds every journal this store handed out before the call.
   */
  localCommits (): Promise<void> {
    return this.lastWritten.then(noop, noop)
  }

  commit (batch: WriteBatch): Promise<void> {
    // durability 'os' after a failed flush: nothing queued, the batch fails as a whole
    if (this.flushFailure !== null) return Promise.reject(this.refusal())
    // every write queued in one event turn is one transaction (lmdb-js's batching
    // contract), executed on lmdb-js's write thread: no transaction callback, so this
    // thread only encodes instructions
    let written: Promise<boolean> = kNothingWritten
    const keys = this.writeKeys
    const j = this.journal
    // packed (packed-states.ts) as the runtime hands them: each put gets the batch's one
    // buffer with `start`/`end` at the state's bytes — lmdb-js writes from that address and
    // keeps the buffer (not a view per state) until the write is done; the runtime reuses
    // it only once the commit has settled. Tuples (tests, tools) are packed here first.
    const states = batch.states instanceof PackedStates ? batch.states : PackedStates.from(batch.states, batch.stateIds)
    const ids = batch.stateIds
    for (let k = 0; k < states.length; k++) {
      const id = states.id(k)
      const hash = states.hash(k)
      const key = id !== null ? keys.state(id, hash) : keys.stateOfIds(ids!, k, hash)
      const deleted = states.deleted(k)
      if (!deleted && this.stateless !== null) this.stateWritten((key[0]! << 8) | key[1]!) // before the put is queued
      written = deleted ? this.states.remove(key) : this.states.put(key, states.value(k) as Uint8Array as Buffer)
      if (j !== null) deleted ? j.remove(RANGE_STATES, key) : j.put(RANGE_STATES, key, states.view(k)!)
    }
    if (batch.storage != null) written = this.applyKeyed(this.storage, RANGE_STORAGE, batch.storage, written)
    if (batch.reminders != null) written = this.applyKeyed(this.reminderRecords, RANGE_REMINDERS, batch.reminders, written)
    const sends = this.sendKeys
    if (batch.outboxPuts != null) {
      for (const r of batch.outboxPuts) {
        const key = sends.key(r.senderShard, r.origin, r.key)
        written = this.pendingSends.put(key, r.bytes as Buffer)
        j?.put(RANGE_OUTBOX, key, r.bytes)
      }
    }
    if (batch.outboxDeletes != null) {
      for (const r of batch.outboxDeletes) {
        const key = sends.key(r.senderShard, r.origin, r.key)
        written = this.pendingSends.remove(key)
        j?.remove(RANGE_OUTBOX, key)
      }
    }
    if (batch.appliedPuts != null) {
      for (const r of batch.appliedPuts) {
        const key = sends.key(r.shard, r.origin, r.key)
        const value = appliedValue(r.appliedAt, r.senderShard)
        written = this.appliedSends.put(key, value as Buffer)
        j?.put(RANGE_APPLIED, key, value)
      }
    }
    if (batch.appliedDeletes != null) {
      for (const r of batch.appliedDeletes) {
        const key = sends.key(r.shard, r.origin, r.key)
        written = this.appliedSends.remove(key)
        j?.remove(RANGE_APPLIED, key)
      }
    }
    if (batch.quotaDeltas != null && batch.quotaDeltas.length !== 0) {
      if (this.writer !== this.incarnation || this.writer === 0) {
        // a runtime takes an incarnation when it starts, so this is known; the fallback
        // (a transactionSync) would split this batch's transaction
        this.writer = this.incarnation !== 0 ? this.incarnation : this.newIncarnation()
        this.written.clear()
      }
      for (const [quota, delta] of batch.quotaDeltas) {
        const total = (this.written.get(quota) ?? 0) + delta
        this.written.set(quota, total)
        written = this.quotas.put(countKey(quota, this.writer), total)
      }
    }
    return this.settled(written, j === null ? null : j.take())
  }

  /**
   * A commit's promise: durable here (its flush, with durability 'disk') and, replicating,
   * applied by the replicas. The journal goes out now, as the commit is queued, so that the
   * replicas' apply and commit overlap this store's own instead of following it; the
   * replies still wait for both. If the local transaction fails after its journal went
   * out, `lost` is told (the shards' streams start over: no replica keeps a write this
   * store lost), and the commit fails as it would have anyway.
   */
  private settled (written: Promise<boolean>, journal: Uint8Array | null): Promise<void> {
    if (written !== kNothingWritten) {
      written = this.lastWritten = withCommitCause(written)
      this.queued(written)
    }
    const local = this.waitForFlush ? this.durableNow(written) : written.then(noop)
    if (journal === null) return local
    const replicated = this.replicate!(journal)
    const lost = this.lost!
    written.then(noop, () => lost(journal))
    return Promise.all([local, replicated]).then(noop)
  }

  /**
   * `written` committed and flushed, the flush taken NOW, while the writes just queued are
   * the newest: lmdb-js's `flushed` is the flush of the newest transaction at the moment
   * its `then` is called. Asked once `written` had committed (`written.then(() =>
   * env.flushed)`), it named whatever this thread had queued since — under a steady load
   * the next batch's transaction — so each commit also waited for a later transaction's
   * write and flush (bench/RESULTS.md, 2026-12-07 evening). Asked here, it is the flush of
   * the transaction holding these writes (or a later one, never an earlier one).
   *
   * The commits settle in the order they were queued, as before: each also waits for the
   * one before it to settle (a later transaction's flush can be reported first when one
   * sync covered both, and the commit pipeline's `whenCommitted` takes the last as all).
   * A replica's applies (`queueReplicated`) and `putQuotaLimit` take the same path, in the
   * same order: a replica acknowledges a stream's high-water mark, so its applies must be
   * durable in the order they were queued.
   */
  private durableNow (written: Promise<boolean>): Promise<void> {
    const local = Promise.all([written, this.flushedNow(), this.lastDurable]).then(noop)
    this.lastDurable = local.then(noop, noop)
    return local
  }

  /**
   * The flush of the newest transaction queued by this thread, taken now (see
   * `durableNow`): called right after queuing writes or a transaction, theirs (or a later
   * one's, never an earlier one's).
   */
  private flushedNow (): Promise<void> {
    return new Promise<void>((resolve, reject) => { this.env.flushed.then(() => resolve(), reject) })
  }

  /**
   * A transaction queued just now (`env.transaction`) committed and, with durability
   * 'disk', flushed — its own flush, taken as it is queued, not once it has committed
   * (that one would be whatever this thread queued meanwhile: `durableNow`).
   */
  private transactionDurable (transaction: Promise<unknown>): Promise<void> {
    this.queued(transaction)
    return this.waitForFlush ? Promise.all([transaction, this.flushedNow()]).then(noop) : transaction.then(noop)
  }

  /** Durability 'os', after a failed flush: why a commit or a replica's apply is refused. */
  private refusal (): StorageError {
    return new StorageError(`not committed: the last flush of ${this.path} to disk failed (${this.flushFailure}); commits resume once a flush succeeds`, { path: this.path })
  }

  /** Durability 'os': a write or transaction was queued; the next background flush covers it once it has committed. */
  private queued (written: Promise<unknown>): void {
    this.dirty = true
    this.lastQueued = written
  }

  /** Queue per-agent keyed writes (storage, reminders); returns the last write's promise. */
  private applyKeyed (db: Database<Buffer, Buffer>, dbId: number, changesById: ReadonlyMap<string, StorageChanges>, last: Promise<boolean>): Promise<boolean> {
    let written = last
    const keys = this.writeKeys
    const j = this.journal
    for (const [id, changes] of changesById) {
      if (changes.wiped) {
        // the keys committed now; keys of commits still in flight come as explicit deletes in `entries`
        this.env.resetReadTxn()
        const [start, end] = prefixRange(storageKey(id, ''))
        const stored: Buffer[] = []
        for (const key of db.getKeys({ start, end })) stored.push(Buffer.from(key)) // keys are reused buffers
        for (const key of stored) {
          written = db.remove(key)
          j?.remove(dbId, key)
        }
      }
      // one prefix per agent; lmdb-js copies a key when the write is queued, so the scratch is reused
      const base = keys.prefix(id)
      const entries = changes.entries
      if (entries.forEachBytes !== undefined) {
        // a storage layer's keys are UTF-8 bytes already (agent-storage.ts): no string to encode
        entries.forEachBytes((bytes, from, start, end) => {
          const k = keys.withBytes(base, from, start, end)
          written = bytes === null ? db.remove(k) : db.put(k, bytes as Buffer)
          if (j !== null) bytes === null ? j.remove(dbId, k) : j.put(dbId, k, bytes)
        })
        continue
      }
      entries.forEach((bytes, key) => {
        const k = keys.with(base, key)
        written = bytes === null ? db.remove(k) : db.put(k, bytes as Buffer)
        if (j !== null) bytes === null ? j.remove(dbId, k) : j.put(dbId, k, bytes)
      })
    }
    return written
  }

  * reminders (shard?: number): Iterable<readonly [string, string, Uint8Array]> {
    this.env.resetReadTxn()
    for (const { key, value } of this.reminderRecords.getRange(this.rangeOf(shard))) {
      const [id, name] = parseStorageKey(key)
      yield [id, name, Buffer.from(value)]
    }
  }

  * ids (prefix: string): Iterable<string> {
    if (prefix === '') {
      for (const key of this.states.getKeys({})) yield (key as FastBuffer).utf8Slice(2, key.length)
      return
    }
    // one range per shard: the ids of a quota or type are spread over every shard
    const first = Buffer.from('\0\0' + prefix, 'utf8')
    for (let shard = 0; shard < SHARDS; shard++) {
      first.writeUInt16BE(shard, 0)
      const [start, end] = prefixRange(first)
      for (const key of this.states.getKeys({ start, end })) yield (key as FastBuffer).utf8Slice(2, key.length)
    }
  }

  getStorage (id: string, key: string): Uint8Array | undefined {
    const keys = this.readKeys
    return this.storage.getBinaryFast(keys.with(keys.prefix(id), key))
  }

  * listStorage (id: string, prefix: string, start: string | undefined): Iterable<readonly [string, Uint8Array]> {
    const [from, end] = prefixRange(storageKey(id, prefix))
    const skip = 4 + from.readUInt16BE(2)
    const first = start !== undefined && compareKeys(start, prefix) > 0 ? storageKey(id, start) : from
    for (const { key, value } of this.storage.getRange({ start: first, end })) {
      yield [(key as FastBuffer).utf8Slice(skip, key.length), value]
    }
  }

  hasOutbox (send: SendId): boolean {
    const key = this.sendKeys.key(send.senderShard, send.origin, send.key)
    if (this.pendingSends.doesExist(key)) return true
    // the read snapshot may predate the sender's commit (another thread's write): look again at the newest
    this.env.resetReadTxn()
    return this.pendingSends.doesExist(key)
  }

  * outbox (senderShard?: number): Iterable<OutboxRecord> {
    this.env.resetReadTxn()
    for (const { key, value } of this.pendingSends.getRange(this.rangeOf(senderShard))) {
      const [origin, k] = parseSendKey(key, 2)
      yield { senderShard: key.readUInt16BE(0), origin, key: k, bytes: value }
    }
  }

  deleteOutbox (sends: readonly SendId[]): Promise<void> {
    let written: Promise<boolean> = kNothingWritten
    const j = this.journal
    for (const r of sends) {
      const key = this.sendKeys.key(r.senderShard, r.origin, r.key)
      written = this.pendingSends.remove(key)
      j?.remove(RANGE_OUTBOX, key)
    }
    return this.settled(written, j === null ? null : j.take())
  }

  /**
   * Only this thread writes the applied records of the shards it owns, and lmdb-js renews
   * a thread's read snapshot when its own commit completes: no second look is needed.
   */
  isApplied (shard: number, origin: string, key: number): boolean {
    return this.appliedSends.doesExist(this.sendKeys.key(shard, origin, key))
  }

  * applied (shard?: number): Iterable<AppliedRecord> {
    this.env.resetReadTxn()
    for (const { key, value } of this.appliedSends.getRange(this.rangeOf(shard))) {
      const [origin, k] = parseSendKey(key, 2)
      const [appliedAt, senderShard] = parseAppliedValue(value)
      yield { shard: key.readUInt16BE(0), origin, key: k, senderShard, appliedAt }
    }
  }

  /** Range options for one shard, or everything. */
  private rangeOf (shard: number | undefined): { start?: Buffer, end?: Buffer } {
    if (shard === undefined) return {}
    checkShard(shard)
    const [start, end] = shardRange(shard)
    return { start, end }
  }

  newIncarnation (): number {
    this.incarnation = this.env.transactionSync(() => {
      const next = (this.meta.get('incarnation') ?? 0) + 1
      this.meta.put('incarnation', next)
      return next
    })
    this.dirty = true
    return this.incarnation
  }

  // ---- ShardRanges ---------------------------------------------------------------

  * exportShard (shard: number, maxChunkBytes?: number): Iterable<Uint8Array> {
    checkShard(shard)
    // one read transaction for every database: a consistent snapshot of the shard
    this.env.resetReadTxn() // the newest commits: a replica's snapshot must hold every journal numbered before it
    const txn = this.env.useReadTransaction()
    try {
      yield * rangeChunks(this.rangeRecords(shard, txn), maxChunkBytes)
    } finally {
      txn.done()
    }
  }

  private * rangeRecords (shard: number, transaction: Transaction): Iterable<RangeRecord> {
    const [start, end] = shardRange(shard)
    for (const [dbId, db] of this.rangeDbs) {
      for (const { key, value } of db.getRange({ start, end, transaction })) yield [dbId, key.subarray(2), value]
    }
  }

  /**
   * `asReplica`: the range is a replica's copy (plugins/cluster/replication/), not counted in
   * the quota counts; otherwise (a planned move) its agents are this host's to count.
   */
  async importShard (shard: number, chunks: Iterable<Uint8Array>, asReplica = false): Promise<void> {
    const records = readRangeChunks(shard, chunks) // all checked before anything is written
    const dbs = new Map(this.rangeDbs)
    this.stateWritten(shard)
    const tally = new QuotaTally()
    await this.transactionDurable(this.env.transaction(() => {
      this.clearRange(shard, this.replicaRanges.has(shard) ? new QuotaTally() : tally)
      this.markReplica(shard, asReplica)
      const prefix = Buffer.allocUnsafe(2)
      prefix.writeUInt16BE(shard, 0)
      for (const [db, key, value] of records) {
        dbs.get(db)!.putSync(Buffer.concat([prefix, key]), value as Buffer)
        if (db === RANGE_STATES && !asReplica) tally.addIdBytes(key, 0, 1)
      }
      this.moveCounts(tally)
    }))
    this.tellCounts(tally)
  }

  async dropShard (shard: number): Promise<void> {
    checkShard(shard)
    const tally = new QuotaTally()
    await this.transactionDurable(this.env.transaction(() => {
      this.clearRange(shard, this.replicaRanges.has(shard) ? new QuotaTally() : tally)
      this.markReplica(shard, false)
      this.moveCounts(tally)
    }))
    this.tellCounts(tally)
  }

  /** Remove the shard's records, tallying its agents per quota (−1 each); inside a write transaction. */
  private clearRange (shard: number, tally: QuotaTally): void {
    const [start, end] = shardRange(shard)
    for (const [dbId, db] of this.rangeDbs) {
      const keys: Buffer[] = []
      for (const key of db.getKeys({ start, end })) keys.push(Buffer.from(key))
      for (const key of keys) {
        db.removeSync(key)
        if (dbId === RANGE_STATES) tally.addIdBytes(key, 2, -1)
      }
    }
  }

  /**
   * Keep the stored counts equal to the agents stored: add a range's change to the
   * folded record (writer 0, which only `quotaCounts` at start and range moves write);
   * inside the range's write transaction.
   */
  private moveCounts (tally: QuotaTally): void {
    for (const [quota, delta] of tally.change()) {
      const key = countKey(quota, 0)
      this.quotas.putSync(key, (this.quotas.get(key) ?? 0) + delta)
    }
  }

  private tellCounts (tally: QuotaTally): void {
    const change = tally.change()
    if (change.length !== 0) this.countsMoved?.(change)
  }

  * shardIds (shard: number, prefix: string): Iterable<string> {
    checkShard(shard)
    // no resetReadTxn: lmdb-js renews the read snapshot once per event turn, and a listing
    // reads many shards in one turn
    const first = Buffer.from('\0\0' + prefix, 'utf8')
    first.writeUInt16BE(shard, 0)
    const [start, end] = prefix === '' ? shardRange(shard) : prefixRange(first)
    for (const key of this.states.getKeys({ start, end })) yield (key as FastBuffer).utf8Slice(2, key.length)
  }

  shardSize (shard: number): ShardSize {
    checkShard(shard)
    this.env.resetReadTxn()
    let records = 0
    let bytes = 0
    const [start, end] = shardRange(shard)
    for (const [, db] of this.rangeDbs) {
      for (const { key, value } of db.getRange({ start, end })) {
        records++
        bytes += key.length - 2 + value.length
      }
    }
    return { records, bytes }
  }

  // ---- replicas (plugins/cluster/replication/) --------------------------------------

  /**
   * Apply journal segments that a shard's owner committed (commit-journal.ts), all in one
   * transaction; resolves once durable, as `commit` does — a replica acknowledges a
   * segment only then. Rejects with StorageError, writing nothing, if a segment is
   * malformed or writes outside its shard. A replica's range is not counted in the quota
   * counts (the owner counts its agents): `countShard` adds them when the replica becomes
   * the owner.
   */
  applyReplicated (segments: ReadonlyArray<readonly [shard: number, segment: Uint8Array]>): Promise<void> {
    try {
      return this.queueReplicated(segments.map(([shard, segment]) => ({ shard, segment }))).durable
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * `applyReplicated` as queued writes: every segment is checked first (StorageError,
   * thrown, nothing queued), then its records are queued as puts and removes in this
   * synchronous step — one lmdb-js batch, one transaction, run by lmdb-js's write thread
   * (a transaction callback of `putSync`s held the write lock across a hop to this
   * thread's event loop, and cost this thread the writes). `committed`: the transaction
   * is visible; `durable`: as durable as the owner's commit (its flush, with durability
   * 'disk'), which is when the replica may acknowledge. A later apply may be queued once
   * the earlier one committed: its commit overlaps the earlier one's flush.
   */
  queueReplicated (segments: ReadonlyArray<ReplicatedSegment>): ReplicatedWrite {
    // durability 'os' after a failed flush: a replica acknowledges nothing either
    if (this.flushFailure !== null) throw this.refusal()
    for (let i = 0; i < segments.length; i++) {
      const { shard, segment } = segments[i]!
      checkShard(shard)
      checkSegment(segment, shard)
    }
    const dbs = this.rangeDbById
    const keys = this.journalKeys
    let written: Promise<boolean> = kNothingWritten
    for (let i = 0; i < segments.length; i++) {
      const { shard, segment: b } = segments[i]!
      this.stateWritten(shard)
      if (!this.replicaRanges.has(shard)) {
        this.replicaRanges.add(shard)
        written = this.meta.put(replicaKey(shard) as never, 1 as never)
      }
      // the records read in place (checked above): the key copied into a reused buffer
      // (lmdb-js copies it again as the write is queued), the value a view of the segment
      // (lmdb-js reads it when the transaction runs; the segment is the replica's own copy)
      let at = 0
      while (at < b.length) {
        const db = dbs[b[at]!]!
        const keyLength = (b[at + 2]! << 8) | b[at + 3]!
        const k = at + JOURNAL_RECORD_HEADER
        const end = k + keyLength + recordValueLength(b, at)
        const key = keys.copy(b, k, keyLength)
        written = b[at + 1] === JOURNAL_REMOVE ? db.remove(key) : db.put(key, b.subarray(k + keyLength, end) as Buffer)
        at = end
      }
    }
    if (written !== kNothingWritten) {
      written = withCommitCause(written)
      this.queued(written)
    }
    const committed = written.then(noop)
    // the flush taken now, while these writes are the newest this thread queued (`durableNow`)
    return { committed, durable: this.waitForFlush ? this.durableNow(written) : committed }
  }

  /** Is the shard's range a replica's copy (not counted in the quota counts)? */
  isReplicaRange (shard: number): boolean {
    return this.replicaRanges.has(shard)
  }

  /** Inside a write transaction: note whether the shard's range is a replica's copy (kept in `meta`). */
  private markReplica (shard: number, yes: boolean): void {
    if (this.replicaRanges.has(shard) === yes) return
    if (yes) this.replicaRanges.add(shard)
    else this.replicaRanges.delete(shard)
    // one key per shard: a catch-up of thousands of shards writes as many small keys, not a growing list
    if (yes) this.meta.putSync(replicaKey(shard) as never, 1 as never)
    else this.meta.removeSync(replicaKey(shard) as never)
  }

  /** The agents of replica ranges become this host's to count (it serves the shards now); -1 gives them back. */
  async countShard (shard: number | readonly number[], sign: 1 | -1 = 1): Promise<void> {
    // many shards at once (a failover promotes all of a dead host's shards here): one transaction, one fsync
    const shards = (typeof shard === 'number' ? [shard] : shard).filter((s) => {
      checkShard(s)
      return this.replicaRanges.has(s) === (sign === 1)
    })
    if (shards.length === 0) return
    const tally = new QuotaTally()
    await this.transactionDurable(this.env.transaction(() => {
      for (const s of shards) {
        const [start, end] = shardRange(s)
        for (const key of this.states.getKeys({ start, end })) tally.addIdBytes(key, 2, sign)
        this.markReplica(s, sign === -1)
      }
      this.moveCounts(tally)
    }))
    this.tellCounts(tally)
  }

  /** Shards whose range holds any record (a host returning finds what it had). */
  shardsHeld (): Set<number> {
    this.env.resetReadTxn()
    const held = new Set<number>()
    for (const [, db] of this.rangeDbs) {
      let shard = 0
      while (shard < SHARDS) {
        const [start] = shardRange(shard)
        let next = SHARDS
        for (const key of db.getKeys({ start, limit: 1 })) next = key.readUInt16BE(0)
        if (next >= SHARDS) break
        held.add(next)
        shard = next + 1
      }
    }
    return held
  }

  // ---- QuotaRecords ----------------------------------------------------------------

  * quotaLimits (): Iterable<readonly [string, number]> {
    this.env.resetReadTxn()
    for (const { key, value } of this.quotas.getRange({ start: 'l\x1f', end: 'l\x20' })) yield [key.slice(2), value]
  }

  putQuotaLimit (quota: string, limit: number | null): Promise<void> {
    const written = withCommitCause(limit === null ? this.quotas.remove(limitKey(quota)) : this.quotas.put(limitKey(quota), limit))
    this.queued(written)
    return this.waitForFlush ? this.durableNow(written) : written.then(noop)
  }

  /**
   * Committed agents per quota. Folds every writer's records of a quota into one: call it
   * only while no other thread commits (the host does, before starting its workers).
   */
  quotaCounts (): Iterable<readonly [string, number]> {
    return this.env.transactionSync(() => {
      const sums = new Map<string, number>()
      const keys: string[] = []
      for (const { key, value } of this.quotas.getRange({ start: 'c\x1f', end: 'c\x20' })) {
        const quota = key.slice(2, key.lastIndexOf('\x1f'))
        sums.set(quota, (sums.get(quota) ?? 0) + value)
        keys.push(key)
      }
      for (const key of keys) this.quotas.remove(key)
      for (const [quota, n] of sums) if (n !== 0) this.quotas.put(countKey(quota, 0), n)
      this.dirty = true
      return [...sums].filter(([, n]) => n !== 0)
    })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.flushTimer !== null) clearInterval(this.flushTimer)
    await this.env.flushed // 'os': committed (noSync has no flush of its own)
    // 'os': LMDB does not flush when the environment closes; a closed store's commits are on disk
    if (!this.waitForFlush) await this.flush()
    await this.env.close()
  }
}

function noop (): void {}

function mixedModes (path: string, mode: Durability): StorageError {
  const other = mode === 'os' ? 'disk' : 'os'
  return new StorageError(`the LMDB environment in ${path} is already open in this process with durability '${other}': every store of a process on one directory must use the same durability (lmdb-js shares one environment per process); close the '${other}' stores first`, { dataDir: path, durability: mode })
}

function replicaKey (shard: number): string {
  return 'replica\x1f' + shard
}

function limitKey (quota: string): string {
  return 'l\x1f' + quota
}

function countKey (quota: string, writer: number): string {
  return 'c\x1f' + quota + '\x1f' + writer
}

const kNothingWritten = Promise.resolve(true)


/** A read transaction (lmdb-js's `useReadTransaction`). */
type Transaction = ReturnType<RootDatabase['useReadTransaction']>

