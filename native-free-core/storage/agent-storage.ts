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

const kIndexAfter = 16

/** Longest storage key in UTF-8 bytes: with a 1,024-byte id it stays under LMDB's 1,978-byte key limit. */
export const MAX_STORAGE_KEY_BYTES = 512

/**
 * Writes of one agent not yet committed: `null` is a deletion. Kept as a flat list of
 * key/bytes pairs in write order (a later pair for a key wins), indexed by key only
 * when something reads through it: DNA's hot agent writes a new key per command — five
 * thousand per batch — and reads none back; a Map insert per write was 11% of its
 * worker. Stores apply `forEach` in order, so a key written twice is written twice.
 */
export class StorageOverlay implements StorageChanges, KeyedWrites {
  /** Everything below this layer is gone (the agent was deleted). */
  wiped = false
  private readonly pairs: Array<string | Uint8Array | null> = []
  private index: Map<string, Uint8Array | null> | null = null

  /** StorageChanges: the layer itself. */
  get entries (): KeyedWrites {
    return this
  }

  set (key: string, bytes: Uint8Array | null): void {
    this.pairs.push(key, bytes)
    if (this.index !== null) this.index.set(key, bytes)
  }

  /** Writes so far (a mark for `truncate`). */
  get length (): number {
    return this.pairs.length
  }

  /** Drop the writes after `mark`, returning them as [key, bytes, ...] (a turn that threw, or went async). */
  truncate (mark: number): Array<string | Uint8Array | null> {
    if (mark >= this.pairs.length) return []
    const cut = this.pairs.splice(mark)
    this.index = null
    return cut
  }

  /** This layer's write of `key`: bytes, null (deleted), or undefined (not written here). */
  get (key: string): Uint8Array | null | undefined {
    return this.indexed().get(key)
  }

  /** Every write in order (a key written twice comes twice; the later one counts). */
  forEach (fn: (bytes: Uint8Array | null, key: string) => void): void {
    const p = this.pairs
    for (let i = 0; i < p.length; i += 2) fn(p[i + 1] as Uint8Array | null, p[i] as string)
  }

  /** Each key once, with its last write. */
  latest (): ReadonlyMap<string, Uint8Array | null> {
    return this.indexed()
  }

  private indexed (): Map<string, Uint8Array | null> {
    if (this.index === null) {
      const index = this.index = new Map()
      const p = this.pairs
      for (let i = 0; i < p.length; i += 2) index.set(p[i] as string, p[i + 1] as Uint8Array | null)
    }
    return this.index
  }
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

/** The turn a storage view belongs to: throws once the turn has ended, or for a write in a query. */
export interface StorageGuard {
  checkStorage (what: string, write: boolean): void
}

/**
 * One turn's view of its agent's storage.
 *
 * While the handler runs synchronously — almost always — its writes go straight into
 * the open batch's layer for the agent, after a mark: a throw truncates the layer back
 * to the mark, success leaves them there. No per-turn list to allocate, fill and copy
 * (DNA's hot agent: a new key per command, a million commands a second). A handler that
 * returns a promise may outlive the batch, so `detach()` then moves what it wrote so far
 * into the turn's own list (a flat array of key/bytes pairs; past `kIndexAfter` pairs an
 * index keeps lookups O(1)), joined to the open batch when the turn succeeds.
 */
export class TurnStorage implements AgentStorage {
  /** An async turn's own writes as [key, bytes | null, ...]; joined to the open batch when it succeeds. */
  writes: Array<string | Uint8Array | null> | null = null
  private index: Map<string, Uint8Array | null> | null = null
  /** The open batch's layer this synchronous turn writes into, and where its writes start. */
  private layer: StorageOverlay | null = null
  private mark = 0
  private detached = false
  private readonly host: StorageHost
  readonly id: string
  private readonly guard: StorageGuard

  constructor (host: StorageHost, id: string, guard: StorageGuard) {
    this.host = host
    this.id = id
    this.guard = guard
  }

  get<V = unknown> (key: string): V | undefined {
    this.guard.checkStorage('storage.get', false)
    checkStorageKey(key)
    const bytes = this.lookup(key)
    return bytes == null ? undefined : this.host.decodeStored(bytes, 'storage key', key) as V
  }

  put (key: string, value: unknown): void {
    this.guard.checkStorage('storage.put', true)
    checkStorageKey(key)
    if (value === undefined) throw new InvalidArgumentError(`ctx.storage.put(${JSON.stringify(key)}, undefined): use ctx.storage.delete to remove a key`)
    this.write(key, this.host.encodeStored(value, 'the value of storage key', key))
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
    this.writes = null
    this.index = null
  }

  /**
   * The handler returned a promise: from now on other turns, and commits, run before
   * this one ends. Move its writes out of the open layer into its own list.
   */
  detach (): void {
    this.detached = true
    if (this.layer === null) return
    const cut = this.layer.truncate(this.mark)
    this.layer = null
    for (let i = 0; i < cut.length; i += 2) this.write(cut[i] as string, cut[i + 1] as Uint8Array | null)
  }

  /** Put this turn's own writes (an async turn's) on top of `layer` (the open batch's). */
  joinTo (layer: StorageOverlay): void {
    const w = this.writes
    if (w === null) return
    for (let i = 0; i < w.length; i += 2) layer.set(w[i] as string, w[i + 1] as Uint8Array | null)
  }

  private write (key: string, bytes: Uint8Array | null): void {
    if (!this.detached) {
      if (this.layer === null) {
        this.layer = this.host.openLayer(this.id)
        this.mark = this.layer.length
      }
      this.layer.set(key, bytes)
      return
    }
    const w = (this.writes ??= [])
    w.push(key, bytes)
    if (this.index !== null) this.index.set(key, bytes)
    else if (w.length > kIndexAfter * 2) {
      this.index = new Map()
      for (let i = 0; i < w.length; i += 2) this.index.set(w[i] as string, w[i + 1] as Uint8Array | null)
    }
  }

  /** This turn's own write of `key` (an async turn's list): bytes, null (deleted), or undefined (not written). */
  private own (key: string): Uint8Array | null | undefined {
    if (this.index !== null) return this.index.get(key)
    const w = this.writes
    if (w === null) return undefined
    for (let i = w.length - 2; i >= 0; i -= 2) if (w[i] === key) return w[i + 1] as Uint8Array | null
    return undefined
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
    const decode = (k: string, bytes: Uint8Array): V => this.host.decodeStored(bytes, 'storage key', k) as V
    const committed = wiped || this.host.store === null ? null : this.host.store.listStorage(this.id, prefix, start)[Symbol.iterator]()
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
    const below = this.host.storageBelow(this.id)
    if (this.writes === null) return below
    const own = new StorageOverlay()
    this.joinTo(own)
    return [own, ...below]
  }

  private lookup (key: string): Uint8Array | null | undefined {
    const mine = this.own(key)
    if (mine !== undefined) return mine
    for (const layer of this.host.storageBelow(this.id)) {
      const v = layer.get(key)
      if (v !== undefined) return v
      if (layer.wiped) return undefined
    }
    return this.host.store?.getStorage(this.id, key)
  }
}

export function checkStorageKey (key: unknown): void {
  if (typeof key !== 'string') throw new InvalidArgumentError(`a storage key must be a string (got ${typeof key})`)
  if (!key.isWellFormed()) throw new InvalidArgumentError('a storage key must be a well-formed string (it contains a lone surrogate)')
  if (key.length * 3 > MAX_STORAGE_KEY_BYTES && utf8Length(key) > MAX_STORAGE_KEY_BYTES) {
    throw new InvalidArgumentError(`a storage key is at most ${MAX_STORAGE_KEY_BYTES} UTF-8 bytes (got ${utf8Length(key)})`)
  }
}
