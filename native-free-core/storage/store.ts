/**
 * Where committed agent states live. The core declares the interface; the host
 * injects an implementation (lmdb-js's `setExternals` idea): `MemoryStore`
 * (memory-store.ts) when no `dataDir` is given, the LMDB store otherwise.
 *
 * The runtime hands the store one batch per loop iteration (group commit) and
 * releases the replies and sends of those turns only once `commit` has finished —
 * synchronously (`undefined`) or when the returned promise resolves (the output gate).
 */

import { PackedStates } from './packed-states.ts'

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
  /**
   * The same writes with each key as its UTF-8 bytes, `keys[start, end)` — valid only
   * during the call — for a store that writes key bytes (the LMDB store): no key string
   * is decoded. Optional: a Map has none.
   */
  forEachBytes? (fn: (bytes: Uint8Array | null, keys: Uint8Array, start: number, end: number) => void): void
}

/**
 * A durable send's identity, unique however records move between stores and hosts:
 * the store that numbered it (`origin`, its storeId) and its number there (`key`:
 * incarnation × 2^32 + sequence, see `Store.newIncarnation`). `senderShard`, the
 * sending agent's placement shard, says where its outbox record lives: the outbox is
 * keyed `[sender shard][origin][key]`, so the record moves with its sender.
 */
export interface SendId {
  readonly senderShard: number
  readonly origin: string
  readonly key: number
}

/**
 * A `ctx.send` of a durable agent, stored with its sender's state (the durable outbox).
 * `bytes` is the encoded `[from, to, type, method, payload]`, names not indices.
 */
export interface OutboxRecord extends SendId {
  readonly bytes: Uint8Array
}

/**
 * Receiver-side dedup (`outbox: 'dedup'`, durable-outbox.ts): the receiver applied the
 * send `(origin, key)` to an agent of `shard`. Kept until forgotten, so that a copy of
 * the send arriving meanwhile is dropped.
 */
export interface AppliedId {
  /** The receiving agent's placement shard: applied records move with the receiver. */
  readonly shard: number
  readonly origin: string
  readonly key: number
}

export interface AppliedRecord extends AppliedId {
  /** Where the sender's outbox record lives (so a restarted receiver can acknowledge it again). */
  readonly senderShard: number
  /** Wall time of the applying turn's tick, epoch ms. */
  readonly appliedAt: number
}

/** One group commit, applied atomically: all of it or none of it. */
export interface WriteBatch {
  /**
   * States to write (`null` deletes the agent), with the id's placement hash when the
   * caller has it (the runtime's cell holds it: the hash its messages carried, the one its
   * reads used), so that a store keyed by shard does not hash the id again — hashing each
   * id at commit was 8.5% of a fanout worker (bench/RESULTS.md, issue 13). Omitted, the
   * store hashes the id.
   * The runtime packs them (`PackedStates`) and reuses that object for a later batch once
   * the commit has settled — when `commit` returns, or when its promise settles: a store
   * that keeps a state's bytes longer copies them (`stateBytesOf` does).
   */
  readonly states: BatchStates
  /**
   * The ids of the states whose id is `null`, by index: the runtime holds a resident
   * agent's id as UTF-8 bytes (its IdArena), and making each committed state's id string
   * for its key cost the durable fanout a tenth of its rate (bench/RESULTS.md, issue 13).
   * A store that keys by bytes copies them (`writeId`); others ask for the string
   * (`stateIdOf`). Required when any id is `null`.
   */
  readonly stateIds?: StateIds | null
  /** `ctx.storage` changes, per agent id. */
  readonly storage?: ReadonlyMap<string, StorageChanges> | null
  /** Durable sends of this batch's turns. */
  readonly outboxPuts?: readonly OutboxRecord[] | null
  /**
   * `outbox: 'claim'`: durable sends this batch's turns applied, their records removed in
   * the same transaction, so a send is applied at most once.
   */
  readonly outboxDeletes?: readonly SendId[] | null
  /** `outbox: 'dedup'`: durable sends this batch's turns applied, recorded in the same transaction. */
  readonly appliedPuts?: readonly AppliedRecord[] | null
  /** `outbox: 'dedup'`: applied records forgotten (after the sender dropped its record). Applied after `appliedPuts`. */
  readonly appliedDeletes?: readonly AppliedId[] | null
  /** Durable reminders (`ctx.remind`), per agent id: name → encoded record (agent-reminders.ts), `null` removes it. */
  readonly reminders?: ReadonlyMap<string, StorageChanges> | null
  /** Net agents created per quota by this batch (quota-store.ts), applied in the same transaction. */
  readonly quotaDeltas?: ReadonlyArray<readonly [quota: string, delta: number]> | null
}

/** The ids of a batch's states, by index (`WriteBatch.stateIds`). */
export interface StateIds {
  /** The id of `states[k]`, as a string (made on demand). */
  id (k: number): string
  /** Write the UTF-8 bytes of `states[k]`'s id into `into` at `at` (room for MAX_ID_BYTES); returns their length. */
  writeId (k: number, into: Uint8Array, at: number): number
}

/**
 * A batch's states: tuples (tests, tools), or packed by the runtime (packed-states.ts: a
 * few typed arrays instead of objects per state that a durable commit holds while in
 * flight). Read them with the functions below, or take `PackedStates`' own fast paths.
 */
export type BatchStates = ReadonlyArray<readonly [id: string | null, bytes: Uint8Array | null, hash?: number]> | PackedStates

/** The id of a batch's k-th state, made from `stateIds` if the entry holds none. */
export function stateIdOf (batch: WriteBatch, k: number): string {
  const states = batch.states
  return (states instanceof PackedStates ? states.id(k) : states[k]![0]) ?? batch.stateIds!.id(k)
}

/** The id string the batch's k-th state holds itself, or null when `stateIds` has it. */
export function stateOwnId (states: BatchStates, k: number): string | null {
  return states instanceof PackedStates ? states.id(k) : states[k]![0]
}

/** The k-th state's bytes (`null`: deleted) — a copy of their own when packed: a caller may keep them. */
export function stateBytesOf (states: BatchStates, k: number): Uint8Array | null {
  return states instanceof PackedStates ? states.copy(k) : states[k]![1]
}

/** The k-th state's bytes (`null`: deleted), valid only during the store's `commit` call (a view when packed): for a store that copies them. */
export function stateBytesNow (states: BatchStates, k: number): Uint8Array | null {
  return states instanceof PackedStates ? states.view(k) : states[k]![1]
}

/** The k-th state's placement hash, if the batch has it. */
export function stateHashOf (states: BatchStates, k: number): number | undefined {
  return states instanceof PackedStates ? states.hash(k) : states[k]![2]
}

export interface Store {
  /** True when a commit survives the process (LMDB); false for memory. */
  readonly durable: boolean
  /**
   * The last committed state of an agent, or undefined if it has none. `hash`, when the
   * caller has it, is the id's placement hash (`hashId(id)`): a store that keys by shard
   * need not hash the id again.
   */
  getState (id: string, hash?: number): Uint8Array | undefined
  /**
   * `getState` for the id whose UTF-8 bytes are `bytes[at, at + len)` (a message
   * frame's), if the store can read by bytes: an activation then makes no id string.
   */
  getStateOfBytes? (bytes: Uint8Array, at: number, len: number, hash: number): Uint8Array | undefined
  /**
   * True only if the store knows that the shard of `hash` holds no state at all, so that
   * an activation there need not read: `getState` would answer undefined for every id of
   * that shard. False when it does not know (the answer must never be a stale true: a
   * state committed there, or being committed, makes it false before it can be read back).
   */
  knownStateless? (hash: number): boolean
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
  /** This store's identity (store-format.ts): the `origin` of the durable sends it numbers. */
  readonly storeId: string
  /** Is this durable send's outbox record still here (not yet applied, in claim mode; not yet acknowledged, in dedup mode)? */
  hasOutbox (send: SendId): boolean
  /** The stored durable sends — of the senders of `senderShard`, or all — for redelivery. Records may be views: copy what you keep. */
  outbox (senderShard?: number): Iterable<OutboxRecord>
  /**
   * Remove outbox records, each in its own right (not with a turn): the receiver said it
   * applied them (dedup mode's acknowledgement). Usable from any thread of the host.
   * Resolves once durable, as `commit` does.
   */
  deleteOutbox (sends: readonly SendId[]): Promise<void> | undefined
  /** Has an agent of `shard` applied the send `(origin, key)` (dedup mode), committed and not forgotten? */
  isApplied (shard: number, origin: string, key: number): boolean
  /** The applied records of `shard`, or all. */
  applied (shard?: number): Iterable<AppliedRecord>
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
