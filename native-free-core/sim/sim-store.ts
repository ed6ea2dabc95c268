/**
 * The simulator's store: what the host's LMDB store keeps — committed states,
 * `ctx.storage` keys, the durable outbox, outbox incarnations, reminders — in memory,
 * plus the crash fault.
 *
 * It says `durable: true`, so the runtime runs exactly as on a host with a `dataDir`:
 * durable agents' sends go through the outbox and are applied once
 * (runtime/durable-outbox.ts), which is what the crash fault relies on.
 *
 * A crash between a turn and its commit is injected here, with no hook in the shard
 * runtime: when the simulator decides that a commit crashes, `commit` throws. The
 * runtime then does what it does for any failed commit — drops the cells of the batch
 * (their next message reloads the last committed state), releases the outbox sends the
 * batch had claimed, and never releases the batch's replies and sends — which is what a
 * host that died before the commit leaves behind. The replies it fails with
 * StorageError are caught by the simulator, which records what a caller of a crashed
 * host sees instead (WorkerCrashedError).
 *
 * Values are kept as the encoded bytes the runtime handed over: the codec makes fresh
 * bytes per encode and the runtime only decodes what it reads, so nothing mutates them
 * (a simulation holds a handful of agents; memory is not a concern). The store keeps
 * running, order-free hashes of its states and storage for explore's visited set —
 * structural hashes of the decoded values, blind to key order (state-hash.ts,
 * `valueHash`); the outbox is hashed on demand with canonical labels (see `hash`).
 */
import { compareKeys, stateBytesOf, stateIdOf } from '../storage/store.ts'
import type { AppliedRecord, OutboxRecord, SendId, StorageChanges, Store, WriteBatch } from '../storage/store.ts'
import { hashId, shardOf } from '../placement/hash.ts'
import {
  RANGE_APPLIED, RANGE_OUTBOX, RANGE_REMINDERS, RANGE_STATES, RANGE_STORAGE, agentKey, appliedValue, checkShard, parseAgentKey, parseAppliedValue,
  parseSendKey, parseStateKey, rangeChunks, readRangeChunks, sendKey, stateKey
} from '../storage/shard-range.ts'
import type { RangeRecord, ShardRanges, ShardSize } from '../storage/shard-range.ts'
import { decodeSimValue } from './codec.ts'
import { Hash2, valueHash } from './state-hash.ts'

/** Thrown by `commit` to simulate a crash; never escapes the simulator. */
export class SimulatedCrash extends Error {
  constructor () {
    super('simulated crash between the turn and its commit')
    this.name = 'SimulatedCrash'
  }
}

// one instance: a stack trace per simulated crash would be most of a crash's cost
const kCrash = new SimulatedCrash()

export class SimStore implements Store, ShardRanges {
  readonly durable = true
  /** Fixed: a simulation is a function of its seed. */
  readonly storeId = '0000000000000001'
  /** Keep the hashes up to date (explore); a plain simulation does not need them. */
  readonly hashing: boolean
  /** Asked before each commit; true makes the commit crash. */
  crashes: (batch: WriteBatch) => boolean = () => false
  /** Called after each commit, with the agents whose state it wrote. */
  committed: (ids: readonly string[]) => void = () => {}
  private readonly states = new Map<string, Uint8Array>()
  private readonly storage = new Map<string, Map<string, Uint8Array>>()
  private readonly reminderRecords = new Map<string, Map<string, Uint8Array>>()
  /**
   * Stored sends by key: a simulation has one store, so one origin (its storeId), and
   * keys are unique in it. Dedup mode's applied records are kept but not hashed: the
   * simulator runs the runtime in claim mode.
   */
  private readonly pending = new Map<number, OutboxRecord>()
  private readonly appliedRecords = new Map<string, AppliedRecord>()
  /** The content hash of each pending send, computed once. */
  private readonly pendingHash = new Map<number, Hash2>()
  private incarnation = 0
  /** Per-entry hashes and their sums, kept up to date by `commit`. */
  private readonly entryHash = new Map<string, Hash2>()
  private readonly stateSum = new Hash2(0, 0)
  private readonly storageSum = new Hash2(0, 0)
  private readonly reminderSum = new Hash2(0, 0)

  constructor (hashing: boolean) {
    this.hashing = hashing
  }

  getState (id: string): Uint8Array | undefined {
    return this.states.get(id)
  }

  commit (batch: WriteBatch): undefined {
    if (this.crashes(batch)) throw kCrash
    const ids: string[] = []
    for (let k = 0; k < batch.states.length; k++) {
      const id = stateIdOf(batch, k)
      this.setState(id, stateBytesOf(batch.states, k))
      ids.push(id)
    }
    if (batch.storage != null) this.apply(this.storage, this.storageSum, batch.storage)
    if (batch.reminders != null) this.apply(this.reminderRecords, this.reminderSum, batch.reminders)
    if (batch.outboxPuts != null) for (const r of batch.outboxPuts) this.putSend(r)
    if (batch.outboxDeletes != null) this.deleteOutbox(batch.outboxDeletes)
    if (batch.appliedPuts != null) for (const r of batch.appliedPuts) this.appliedRecords.set(appliedName(r.shard, r.origin, r.key), r)
    if (batch.appliedDeletes != null) for (const r of batch.appliedDeletes) this.appliedRecords.delete(appliedName(r.shard, r.origin, r.key))
    this.committed(ids)
    return undefined
  }

  private setState (id: string, bytes: Uint8Array | null): void {
    if (bytes === null) this.states.delete(id)
    else this.states.set(id, bytes)
    if (!this.hashing) return
    const old = this.entryHash.get(id)
    if (old !== undefined) this.stateSum.subtract(old)
    if (bytes === null) {
      this.entryHash.delete(id)
    } else {
      const h = Hash2.ofString(id).chainHash(valueHash(decodeSimValue(bytes)))
      this.entryHash.set(id, h)
      this.stateSum.add(h)
    }
  }

  /** Storage order, as the host's stores: by shard, then by the id's UTF-8 bytes. */
  * ids (prefix: string): Iterable<string> {
    const found: Array<[number, string]> = []
    for (const id of this.states.keys()) if (id.startsWith(prefix)) found.push([shardOf(hashId(id)), id])
    found.sort((a, b) => a[0] - b[0] || compareKeys(a[1], b[1]))
    for (const [, id] of found) yield id
  }

  getStorage (id: string, key: string): Uint8Array | undefined {
    return this.storage.get(id)?.get(key)
  }

  * listStorage (id: string, prefix: string, start: string | undefined): Iterable<readonly [string, Uint8Array]> {
    const keys = this.storage.get(id)
    if (keys === undefined) return
    const found = [...keys.keys()].filter((k) => k.startsWith(prefix) && (start === undefined || compareKeys(k, start) >= 0)).sort(compareKeys)
    for (const k of found) yield [k, keys.get(k)!]
  }

  private putSend (r: OutboxRecord): void {
    this.pending.set(r.key, { senderShard: r.senderShard, origin: r.origin, key: r.key, bytes: r.bytes })
    if (this.hashing) this.pendingHash.set(r.key, valueHash(decodeSimValue(r.bytes)))
  }

  hasOutbox (send: SendId): boolean {
    return this.pending.get(send.key)?.origin === send.origin
  }

  * outbox (senderShard?: number): Iterable<OutboxRecord> {
    yield * [...this.pending.values()].filter((r) => senderShard === undefined || r.senderShard === senderShard)
  }

  deleteOutbox (sends: readonly SendId[]): undefined {
    for (const r of sends) {
      if (this.pending.get(r.key)?.origin !== r.origin) continue
      this.pending.delete(r.key)
      this.pendingHash.delete(r.key)
    }
    return undefined
  }

  isApplied (shard: number, origin: string, key: number): boolean {
    return this.appliedRecords.has(appliedName(shard, origin, key))
  }

  * applied (shard?: number): Iterable<AppliedRecord> {
    yield * [...this.appliedRecords.values()].filter((r) => shard === undefined || r.shard === shard)
  }

  newIncarnation (): number {
    return ++this.incarnation
  }

  * reminders (shard?: number): Iterable<readonly [string, string, Uint8Array]> {
    const found: Array<[string, string, Uint8Array]> = []
    for (const [id, names] of this.reminderRecords) {
      if (shard !== undefined && shardOf(hashId(id)) !== shard) continue
      for (const [name, bytes] of names) found.push([id, name, bytes])
    }
    yield * found
  }

  // ---- ShardRanges (a simulation holds a handful of agents: these scan) ------------

  exportShard (shard: number, maxChunkBytes?: number): Iterable<Uint8Array> {
    checkShard(shard)
    return [...rangeChunks(this.rangeRecords(shard), maxChunkBytes)]
  }

  private * rangeRecords (shard: number): Iterable<RangeRecord> {
    const mine = (id: string): boolean => shardOf(hashId(id)) === shard
    for (const [id, bytes] of this.states) if (mine(id)) yield [RANGE_STATES, stateKey(id), bytes]
    for (const [id, keys] of this.storage) if (mine(id)) for (const [k, bytes] of keys) yield [RANGE_STORAGE, agentKey(id, k), bytes]
    for (const [id, names] of this.reminderRecords) if (mine(id)) for (const [k, bytes] of names) yield [RANGE_REMINDERS, agentKey(id, k), bytes]
    for (const r of this.pending.values()) if (r.senderShard === shard) yield [RANGE_OUTBOX, sendKey(r.origin, r.key), r.bytes]
    for (const r of this.appliedRecords.values()) if (r.shard === shard) yield [RANGE_APPLIED, sendKey(r.origin, r.key), appliedValue(r.appliedAt, r.senderShard)]
  }

  importShard (shard: number, chunks: Iterable<Uint8Array>): undefined {
    const records = readRangeChunks(shard, chunks)
    this.dropShard(shard)
    for (const [db, key, value] of records) {
      const bytes = value.slice() // the chunk's memory is the caller's
      if (db === RANGE_STATES) this.setState(parseStateKey(key)!, bytes)
      else if (db === RANGE_STORAGE || db === RANGE_REMINDERS) {
        const [id, name] = parseAgentKey(key)!
        if (db === RANGE_STORAGE) this.setKeyed(this.storage, this.storageSum, id, name, bytes)
        else this.setKeyed(this.reminderRecords, this.reminderSum, id, name, bytes)
      } else {
        const [origin, k] = parseSendKey(key)
        if (db === RANGE_OUTBOX) this.putSend({ senderShard: shard, origin, key: k, bytes })
        else {
          const [appliedAt, senderShard] = parseAppliedValue(bytes)
          this.appliedRecords.set(appliedName(shard, origin, k), { shard, origin, key: k, senderShard, appliedAt })
        }
      }
    }
    return undefined
  }

  dropShard (shard: number): undefined {
    checkShard(shard)
    for (const [db, key] of [...this.rangeRecords(shard)]) {
      if (db === RANGE_STATES) this.setState(parseStateKey(key)!, null)
      else if (db === RANGE_OUTBOX || db === RANGE_APPLIED) {
        const [origin, k] = parseSendKey(key)
        if (db === RANGE_OUTBOX) this.deleteOutbox([{ senderShard: shard, origin, key: k }])
        else this.appliedRecords.delete(appliedName(shard, origin, k))
      } else {
        const [id, name] = parseAgentKey(key)!
        if (db === RANGE_STORAGE) this.setKeyed(this.storage, this.storageSum, id, name, null)
        else this.setKeyed(this.reminderRecords, this.reminderSum, id, name, null)
      }
    }
    return undefined
  }

  * shardIds (shard: number, prefix: string): Iterable<string> {
    checkShard(shard)
    yield * [...this.states.keys()].filter((id) => id.startsWith(prefix) && shardOf(hashId(id)) === shard).sort(compareKeys)
  }

  shardSize (shard: number): ShardSize {
    checkShard(shard)
    let records = 0
    let bytes = 0
    for (const [, key, value] of this.rangeRecords(shard)) {
      records++
      bytes += key.length + value.length
    }
    return { records, bytes }
  }

  /** Copy everything into `into` (a fresh store); the bytes are shared, being immutable. */
  copyTo (into: SimStore): void {
    for (const [id, v] of this.states) into.states.set(id, v)
    for (const [id, h] of this.entryHash) into.entryHash.set(id, h)
    for (const [id, keys] of this.storage) into.storage.set(id, new Map(keys))
    for (const [id, names] of this.reminderRecords) into.reminderRecords.set(id, new Map(names))
    for (const [k, v] of this.pending) into.pending.set(k, v)
    for (const [k, v] of this.appliedRecords) into.appliedRecords.set(k, v)
    for (const [k, h] of this.pendingHash) into.pendingHash.set(k, h)
    into.incarnation = this.incarnation
    into.stateSum.a = this.stateSum.a
    into.stateSum.b = this.stateSum.b
    into.storageSum.a = this.storageSum.a
    into.storageSum.b = this.storageSum.b
    into.reminderSum.a = this.reminderSum.a
    into.reminderSum.b = this.reminderSum.b
  }

  /**
   * An order-free hash of everything stored. Outbox keys are not hashed as such — they
   * number sends in the order they happened, so two orderings that reach the same state
   * would differ — but through `labels`: the network gives each key it holds a label
   * in a canonical order (Network.hash), a stored send is hashed with its label (or 0
   * when no message in flight carries it) and its content.
   */
  hash (labels: ReadonlyMap<number, number>): Hash2 {
    if (!this.hashing) throw new Error('SimStore: hashing is off')
    const h = new Hash2(this.stateSum.a, this.stateSum.b).chainHash(this.storageSum).chainHash(this.reminderSum)
    const outbox = new Hash2(0, 0)
    for (const [key, content] of this.pendingHash) outbox.add(new Hash2().chain(labels.get(key) ?? 0).chainHash(content))
    return h.chainHash(outbox)
  }

  close (): void {}

  /** Per-agent keyed records (storage, reminders): wipes first, then puts and deletes. */
  private apply (into: Map<string, Map<string, Uint8Array>>, sum: Hash2, changesById: ReadonlyMap<string, StorageChanges>): void {
    for (const [id, changes] of changesById) {
      if (changes.wiped) for (const key of [...(into.get(id)?.keys() ?? [])]) this.setKeyed(into, sum, id, key, null)
      changes.entries.forEach((bytes, key) => this.setKeyed(into, sum, id, key, bytes))
    }
  }

  private setKeyed (into: Map<string, Map<string, Uint8Array>>, sum: Hash2, id: string, key: string, bytes: Uint8Array | null): void {
    let keys = into.get(id)
    const old = keys?.get(key)
    // reminder records are 16 bytes of their own encoding (agent-reminders.ts), not values
    const raw = into === this.reminderRecords
    if (old !== undefined && this.hashing) sum.subtract(keyedEntryHash(id, key, old, raw))
    if (bytes === null) {
      keys?.delete(key)
      if (keys?.size === 0) into.delete(id)
      return
    }
    if (keys === undefined) into.set(id, keys = new Map())
    keys.set(key, bytes)
    if (this.hashing) sum.add(keyedEntryHash(id, key, bytes, raw))
  }
}

function appliedName (shard: number, origin: string, key: number): string {
  return `${shard}/${origin}/${key}`
}

function keyedEntryHash (id: string, key: string, bytes: Uint8Array, raw: boolean): Hash2 {
  const h = Hash2.ofString(id).chainString(key)
  return raw ? h.chainBytes(bytes) : h.chainHash(valueHash(decodeSimValue(bytes)))
}
