/**
 * `ctx.storage`: per-agent durable key/value storage for state too large to snapshot on
 * every commit (DNA's KV storage module, the Durable Objects storage API).
 *
 * Each key is its own record in the store, under the agent's id, written in the same
 * transaction as the turn that changed it: an agent holding a million keys commits only
 * the keys its turns touched. Reads are synchronous, like lmdb-js reads.
 *
 * Reads see, newest first, three layers of writes not yet committed, then the store:
 *
 *   this turn's writes        TurnStorage.writes — dropped if the handler throws
 *   the open batch's          CommitPipeline.openStorage — earlier turns of this loop pass
 *   commits in flight         CommitPipeline.inflightStorage — handed to the store, not done
 *   the store                 committed
 *
 * A layer that is `wiped` (ctx.delete) hides everything below it. Values are encoded at
 * `put` — so an unencodable value throws inside the handler, where the turn rolls back —
 * and decoded at every `get`, so a caller mutating what it read changes nothing stored.
 */
import { InvalidArgumentError } from '../errors.ts'
import { utf8Length } from '../agent/agent-id.ts'
import type { AgentStorage } from '../agent/define-agent.ts'
import { compareKeys } from './store.ts'
import type { KeyedWrites, StorageChanges, Store } from './store.ts'

/** Longest storage key in UTF-8 bytes: with a 1,024-byte id it stays under LMDB's 1,978-byte key limit. */
export const MAX_STORAGE_KEY_BYTES = 512

/**
 * Writes of one agent not yet committed: `null` is a deletion. Kept in write order (a
 * later write of a key wins), indexed by key only when something reads through it:
 * DNA's hot agent writes a new key per command — five thousand per batch — and reads
 * none back; a Map insert per write was 11% of its worker.
 *
 * Keys are kept as their UTF-8 bytes, one after the other in one byte array, not as
 * strings: a layer lives until its batch is durable (several young-generation GCs at a
 * million writes a second), and the hot agent's profile had its key strings and the
 * growing key/value list among what every scavenge copied and promoted; the LMDB
 * store writes the bytes as they are (`forEachBytes`). Values: one slot per write that
 * differs from the write before (the same bytes put again and again take one).
 * Stores apply `forEach` in order, so a key written twice is written twice.
 */
export class StorageOverlay implements StorageChanges, KeyedWrites {
  /** Everything below this layer is gone (the agent was deleted). */
  wiped = false
  /** The keys' UTF-8 bytes, back to back. */
  private keys: Uint8Array = kEmptyBytes
  /** Per write i: `ends[2i]` the end of its key in `keys`, `ends[2i + 1]` its value's slot in `values`. */
  private ends: Int32Array = kEmptyEnds
  private count = 0
  private readonly values: Array<Uint8Array | null> = []
  private index: Map<string, Uint8Array | null> | null = null

  /**
   * `like`: the agent's layer of the batch before, if any — this one starts with room for
   * as many writes and key bytes (an agent writing thousands of keys a batch does not
   * grow its arrays from nothing every batch).
   */
  constructor (like: StorageOverlay | null = null) {
    if (like !== null && like.count > 16) {
      // a quarter more: batches vary in size
      const n = like.count + (like.count >> 2)
      const bytes = like.ends[2 * like.count - 2]!
      this.ends = new Int32Array(2 * n)
      this.keys = new Uint8Array(bytes + (bytes >> 2) + 64)
    }
  }

  /** StorageChanges: the layer itself. */
  get entries (): KeyedWrites {
    return this
  }

  set (key: string, bytes: Uint8Array | null): void {
    const n = this.count
    if (2 * n + 2 > this.ends.length) this.ends = grownEnds(this.ends)
    const at = n === 0 ? 0 : this.ends[2 * n - 2]!
    if (at + key.length * 3 > this.keys.length) this.keys = grownBytes(this.keys, at + key.length * 3)
    const end = at + writeUtf8(key, this.keys, at)
    const values = this.values
    if (values.length === 0 || values[values.length - 1] !== bytes) values.push(bytes)
    this.ends[2 * n] = end
    this.ends[2 * n + 1] = values.length - 1
    this.count = n + 1
    if (this.index !== null) this.index.set(key, bytes)
  }

  /** Writes so far (a mark for `truncate`). */
  get length (): number {
    return this.count
  }

  /** Drop the writes after `mark`, returning them as [key, bytes, ...] (a turn that threw, or went async). */
  truncate (mark: number): Array<string | Uint8Array | null> {
    if (mark >= this.count) return []
    const cut: Array<string | Uint8Array | null> = []
    this.forEach((bytes, key) => cut.push(key, bytes), mark)
    this.count = mark
    this.values.length = mark === 0 ? 0 : this.ends[2 * mark - 1]! + 1
    this.index = null
    return cut
  }

  /** This layer's write of `key`: bytes, null (deleted), or undefined (not written here). */
  get (key: string): Uint8Array | null | undefined {
    return this.indexed().get(key)
  }

  /** Every write in order from write `from` (a key written twice comes twice; the later one counts). */
  forEach (fn: (bytes: Uint8Array | null, key: string) => void, from = 0): void {
    const { keys, ends, values } = this
    for (let i = from; i < this.count; i++) {
      const start = i === 0 ? 0 : ends[2 * i - 2]!
      fn(values[ends[2 * i + 1]!]!, readUtf8(keys, start, ends[2 * i]!))
    }
  }

  /** Every write in order, the key as its UTF-8 bytes `keys[start, end)` (valid during the call only). */
  forEachBytes (fn: (bytes: Uint8Array | null, keys: Uint8Array, start: number, end: number) => void): void {
    const { keys, ends, values } = this
    let start = 0
    for (let i = 0; i < this.count; i++) {
      const end = ends[2 * i]!
      fn(values[ends[2 * i + 1]!]!, keys, start, end)
      start = end
    }
  }

  /** Each key once, with its last write. */
  latest (): ReadonlyMap<string, Uint8Array | null> {
    return this.indexed()
  }

  private indexed (): Map<string, Uint8Array | null> {
    if (this.index === null) {
      const index = this.index = new Map()
      this.forEach((bytes, key) => index.set(key, bytes))
    }
    return this.index
  }
}

const kEmptyBytes = new Uint8Array(0)
const kEmptyEnds = new Int32Array(0)

function grownBytes (from: Uint8Array, need: number): Uint8Array {
  const to = new Uint8Array(Math.max(256, 2 * from.length, need))
  to.set(from)
  return to
}

function grownEnds (from: Int32Array): Int32Array {
  const to = new Int32Array(Math.max(32, 2 * from.length))
  to.set(from)
  return to
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder()

/**
 * Write `s`'s UTF-8 bytes at `to[at]` (room for 3 bytes per code unit is the caller's);
 * returns how many. An all-ASCII key — the usual one — is copied by char codes: a
 * `TextEncoder.encodeInto` call costs more than a short key's loop.
 */
function writeUtf8 (s: string, to: Uint8Array, at: number): number {
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return utf8Encoder.encodeInto(s, to.subarray(at)).written
    to[at + i] = c
  }
  return n
}

/** The string of the UTF-8 bytes `from[start, end)`. */
function readUtf8 (from: Uint8Array, start: number, end: number): string {
  if (end - start <= 32) {
    let s = ''
    for (let i = start; i < end; i++) {
      const c = from[i]!
      if (c >= 0x80) return utf8Decoder.decode(from.subarray(start, end))
      s += String.fromCharCode(c)
    }
    return s
  }
  return utf8Decoder.decode(from.subarray(start, end))
}

/** What a turn's storage needs from its runtime. */
export interface StorageHost {
  readonly store: Store | null
  /** Encode a value to store; on failure an EncodeError naming `what`, and `key` (quoted) after it. */
  encodeStored (value: unknown, what: string, key?: string): Uint8Array
  decodeStored (bytes: Uint8Array, what: string, key?: string): unknown
  /** Uncommitted layers of an agent below the current turn's writes, newest first. */
  storageBelow (id: string): StorageOverlay[]
  /** The open batch's layer of an agent, made if it has none: a synchronous turn writes straight into it. */
  openLayer (id: string): StorageOverlay
}

/**
 * The turn a storage view belongs to (the turn's ctx): throws once the turn has ended, or
 * for a write in a query; and the runtime and agent id the view works for.
 */
export interface StorageGuard {
  checkStorage (what: string, write: boolean): void
  readonly storageHost: StorageHost
  readonly storageId: string
}

/**
 * One turn's view of its agent's storage.
 *
 * While the handler runs synchronously — almost always — its writes go straight into
 * the open batch's layer for the agent, after a mark: a throw truncates the layer back
 * to the mark, success leaves them there. No per-turn list to allocate, fill and copy
 * (DNA's hot agent: a new key per command, a million commands a second). A handler that
 * returns a promise may outlive the batch, so `detach()` then moves what it wrote so far
 * into the turn's own layer, joined to the open batch when the turn succeeds.
 *
 * One is made per turn that uses `ctx.storage` (a million a second for the hot agent):
 * four fields — the runtime and the id come through the turn's ctx, and an async turn's
 * own writes are one object made when it goes async.
 */
export class TurnStorage implements AgentStorage {
  private readonly guard: StorageGuard
  /** The open batch's layer this synchronous turn writes into, and where its writes start. */
  private layer: StorageOverlay | null = null
  private mark = 0
  /** An async turn's own writes (made by `detach`); joined to the open batch when it succeeds. */
  private ownWrites: StorageOverlay | null = null

  constructor (guard: StorageGuard) {
    this.guard = guard
  }

  /** Does this (async) turn hold writes of its own, to join to the open batch? */
  get hasOwnWrites (): boolean {
    return this.ownWrites !== null && this.ownWrites.length !== 0
  }

  get<V = unknown> (key: string): V | undefined {
    this.guard.checkStorage('storage.get', false)
    checkStorageKey(key)
    const bytes = this.lookup(key)
    return bytes == null ? undefined : this.guard.storageHost.decodeStored(bytes, 'storage key', key) as V
  }

  put (key: string, value: unknown): void {
    const guard = this.guard
    guard.checkStorage('storage.put', true)
    checkStorageKey(key)
    if (value === undefined) throw new InvalidArgumentError(`ctx.storage.put(${JSON.stringify(key)}, undefined): use ctx.storage.delete to remove a key`)
    this.write(key, guard.storageHost.encodeStored(value, 'the value of storage key', key))
  }

  delete (key: string): boolean {
    this.guard.checkStorage('storage.delete', true)
    checkStorageKey(key)
    const existed = this.lookup(key) != null
    this.write(key, null)
    return existed
  }

  /** The turn threw: its writes are undone (those in the open layer are cut off it). */
  discard (): void {
    if (this.layer !== null) this.layer.truncate(this.mark)
    this.layer = null
    if (this.ownWrites !== null) this.ownWrites = new StorageOverlay()
  }

  /**
   * The handler returned a promise: from now on other turns, and commits, run before
   * this one ends. Move its writes out of the open layer into its own.
   */
  detach (): void {
    const own = this.ownWrites ??= new StorageOverlay()
    if (this.layer === null) return
    const cut = this.layer.truncate(this.mark)
    this.layer = null
    for (let i = 0; i < cut.length; i += 2) own.set(cut[i] as string, cut[i + 1] as Uint8Array | null)
  }

  /** Put this turn's own writes (an async turn's) on top of `layer` (the open batch's). */
  joinTo (layer: StorageOverlay): void {
    this.ownWrites?.forEach((bytes, key) => layer.set(key, bytes))
  }

  private write (key: string, bytes: Uint8Array | null): void {
    const own = this.ownWrites
    if (own !== null) {
      own.set(key, bytes)
      return
    }
    let layer = this.layer
    if (layer === null) {
      layer = this.layer = this.guard.storageHost.openLayer(this.guard.storageId)
      this.mark = layer.length
    }
    layer.set(key, bytes)
  }

  list<V = unknown> (options: { prefix?: string, start?: string, limit?: number } = {}): Array<[string, V]> {
    this.guard.checkStorage('storage.list', false)
    const { prefix = '', start, limit = Number.POSITIVE_INFINITY } = options ?? {}
    if (typeof prefix !== 'string') throw new InvalidArgumentError(`ctx.storage.list: prefix must be a string (got ${typeof prefix})`)
    if (start !== undefined && typeof start !== 'string') throw new InvalidArgumentError(`ctx.storage.list: start must be a string (got ${typeof start})`)
    if (limit !== Number.POSITIVE_INFINITY && !(Number.isInteger(limit) && limit >= 0)) {
      throw new InvalidArgumentError(`ctx.storage.list: limit must be a non-negative integer (got ${String(limit)})`)
    }
    const inRange = (k: string): boolean => k.startsWith(prefix) && (start === undefined || compareKeys(k, start) >= 0)
    // the uncommitted layers, merged newest first
    const merged = new Map<string, Uint8Array | null>()
    let wiped = false
    for (const layer of this.layers()) {
      for (const [k, v] of layer.latest()) if (!merged.has(k) && inRange(k)) merged.set(k, v)
      if (layer.wiped) { wiped = true; break }
    }
    const pending = [...merged.keys()].sort(compareKeys)
    const out: Array<[string, V]> = []
    const host = this.guard.storageHost
    const decode = (k: string, bytes: Uint8Array): V => host.decodeStored(bytes, 'storage key', k) as V
    const committed = wiped || host.store === null ? null : host.store.listStorage(this.guard.storageId, prefix, start)[Symbol.iterator]()
    try {
      let c = committed?.next()
      let i = 0
      while (out.length < limit) {
        const ck = c === undefined || c.done === true ? undefined : c.value[0]
        const pk = i < pending.length ? pending[i] : undefined
        if (ck === undefined && pk === undefined) break
        const order = ck === undefined ? 1 : pk === undefined ? -1 : compareKeys(ck, pk)
        if (order < 0) {
          out.push([ck!, decode(ck!, (c as IteratorYieldResult<readonly [string, Uint8Array]>).value[1])])
          c = committed!.next()
        } else {
          const v = merged.get(pk!)!
          if (v !== null) out.push([pk!, decode(pk!, v)])
          i++
          if (order === 0) c = committed!.next()
        }
      }
    } finally {
      committed?.return?.()
    }
    return out
  }

  private layers (): StorageOverlay[] {
    const below = this.guard.storageHost.storageBelow(this.guard.storageId)
    return this.ownWrites === null ? below : [this.ownWrites, ...below]
  }

  private lookup (key: string): Uint8Array | null | undefined {
    const mine = this.ownWrites?.get(key)
    if (mine !== undefined) return mine
    const host = this.guard.storageHost
    for (const layer of host.storageBelow(this.guard.storageId)) {
      const v = layer.get(key)
      if (v !== undefined) return v
      if (layer.wiped) return undefined
    }
    return host.store?.getStorage(this.guard.storageId, key)
  }
}

export function checkStorageKey (key: unknown): void {
  if (typeof key !== 'string') throw new InvalidArgumentError(`a storage key must be a string (got ${typeof key})`)
  if (!key.isWellFormed()) throw new InvalidArgumentError('a storage key must be a well-formed string (it contains a lone surrogate)')
  if (key.length * 3 > MAX_STORAGE_KEY_BYTES && utf8Length(key) > MAX_STORAGE_KEY_BYTES) {
    throw new InvalidArgumentError(`a storage key is at most ${MAX_STORAGE_KEY_BYTES} UTF-8 bytes (got ${utf8Length(key)})`)
  }
}
