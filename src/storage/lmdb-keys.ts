/**
 * LMDB keys of storage format 2 (native-free-core/storage/shard-range.ts): a big-endian
 * u16 shard, then the key of the record within its shard.
 *
 *   states             [u16 shard][id]
 *   storage, reminders [u16 shard][u16 id length][id][name]
 *   outbox             [u16 sender shard][origin store id, 8 bytes][u64 key]
 *   applied            [u16 receiver shard][origin store id, 8 bytes][u64 key]
 *
 * The shard of an agent's records is its placement shard, `shardOf(hashId(id))`,
 * computed here from the id rather than passed in by the runtime: 0.12–0.25 µs a short id
 * on this loaded machine, against 10–30 µs of commit per new state, and the Store keeps
 * speaking ids (the simulator, listing, tests) with no way to pass a wrong hash
 * (bench/RESULTS.md, "Storage format 2"). Except for the two hot paths, which pass the
 * hash the runtime already has (the one the agent's messages carried and its reads used):
 * an activation's read, and a state's write at commit — at 1M agents the fanout's commits
 * hashed every id again, 8.5% of a worker (bench/RESULTS.md, issue 13).
 *
 * Keys are built in a reused buffer: lmdb-js copies a key into its own buffer when a
 * read runs or a write is queued, so a view is valid until the next call.
 */
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { SEND_KEY_BYTES } from '../../native-free-core/storage/shard-range.ts'
import { storeIdBytes } from '../../native-free-core/storage/store-format.ts'
import type { StateIds } from '../../native-free-core/storage/store.ts'
import { MAX_ID_BYTES } from '../../native-free-core/agent/agent-id.ts'

export interface FastBuffer extends Buffer {
  utf8Write (s: string, offset: number, length?: number): number
  utf8Slice (start: number, end: number): string
}

/** Longest key part after `[u16 shard][u16 id length][id]`: a storage key is at most 512 UTF-8 bytes. */
const kNameBytes = 512 * 3

export class KeyScratch {
  private buf = Buffer.allocUnsafe(4096) as FastBuffer
  /**
   * `buf.subarray(0, n)` by length, made once: a key is a view of the scratch's first n
   * bytes, and a new view object per put was one of the allocations a durable worker's
   * GC spent its time on; lmdb-js copies a key before put/get return, so a view reused
   * for every key of its length is as good as a new one.
   */
  private views: Buffer[] = []

  private room (id: string): FastBuffer {
    return this.roomFor(4 + id.length * 3 + kNameBytes)
  }

  /** A scratch of at least `n` bytes (a bigger one, its views made anew, when it is smaller). */
  private roomFor (n: number): FastBuffer {
    if (n > this.buf.length) {
      this.buf = Buffer.allocUnsafe(2 * n) as FastBuffer
      this.views = []
    }
    return this.buf
  }

  /** The first `n` bytes of the scratch. */
  private view (n: number): Buffer {
    return this.views[n] ?? (this.views[n] = this.buf.subarray(0, n))
  }

  /**
   * `[u16 shard][id]`. `hash`: the id's placement hash when the caller has it (an
   * activation's message carries it), so that the id is not hashed again.
   */
  state (id: string, hash: number = hashId(id)): Buffer {
    const buf = this.room(id)
    const shard = shardOf(hash)
    // byte stores, not writeUInt16BE: its argument checks were 2% of an activating worker
    buf[0] = shard >>> 8
    buf[1] = shard & 0xff
    return this.view(2 + buf.utf8Write(id, 2))
  }

  /**
   * A key given as bytes elsewhere (a replica's journal record: `src[start, start + length)`),
   * copied into the scratch: no view object per key.
   */
  copy (src: Uint8Array, start: number, length: number): Buffer {
    const buf = this.roomFor(length)
    for (let i = 0; i < length; i++) buf[i] = src[start + i]!
    return this.view(length)
  }

  /** `state` for the id whose UTF-8 bytes are `bytes[at, at + len)` (an activation's frame: no id string). */
  stateOfBytes (bytes: Uint8Array, at: number, len: number, hash: number): Buffer {
    const buf = this.roomFor(2 + len)
    const shard = shardOf(hash)
    buf[0] = shard >>> 8
    buf[1] = shard & 0xff
    for (let i = 0; i < len; i++) buf[2 + i] = bytes[at + i]!
    return this.view(2 + len)
  }

  /**
   * `state` for the id of a batch's k-th state, written by `ids` as bytes (the runtime's
   * IdArena: a commit makes no id string for its keys).
   */
  stateOfIds (ids: StateIds, k: number, hash: number): Buffer {
    const buf = this.roomFor(2 + MAX_ID_BYTES)
    const shard = shardOf(hash)
    buf[0] = shard >>> 8
    buf[1] = shard & 0xff
    return this.view(2 + ids.writeId(k, buf, 2))
  }

  /** Write `[u16 shard][u16 id length][id]`; returns where names start. */
  prefix (id: string): number {
    const buf = this.room(id)
    const shard = shardOf(hashId(id))
    buf[0] = shard >>> 8
    buf[1] = shard & 0xff
    const idLen = buf.utf8Write(id, 4)
    buf.writeUInt16BE(idLen, 2)
    return 4 + idLen
  }

  /** The key `name` after the prefix written by `prefix`. */
  with (base: number, name: string): Buffer {
    return this.view(base + this.buf.utf8Write(name, base))
  }

  /**
   * The key whose name is the UTF-8 bytes `from[start, end)` (at most kNameBytes), after
   * the prefix written by `prefix`: a storage layer keeps its keys as bytes. A short name
   * is copied byte by byte — cheaper than a native copy's call.
   */
  withBytes (base: number, from: Uint8Array, start: number, end: number): Buffer {
    const buf = this.buf
    const n = end - start
    if (n <= 32) for (let i = 0; i < n; i++) buf[base + i] = from[start + i]!
    else buf.set(from.subarray(start, end), base)
    return this.view(base + n)
  }
}

/** `[u16 shard][id]`, in a new buffer. */
export function stateKey (id: string): Buffer {
  return Buffer.from(new KeyScratch().state(id))
}

/** `[u16 shard][u16 id length][id][name]`, in a new buffer: a storage or reminders key. */
export function storageKey (id: string, name: string): Buffer {
  const k = new KeyScratch()
  return Buffer.from(k.with(k.prefix(id), name))
}

/** [id, name] of a storage or reminders key. */
export function parseStorageKey (key: Buffer): readonly [id: string, name: string] {
  const k = key as FastBuffer
  const idEnd = 4 + k.readUInt16BE(2)
  return [k.utf8Slice(4, idEnd), k.utf8Slice(idEnd, k.length)]
}

/** The keys of one shard: [start, end). */
export function shardRange (shard: number): [Buffer, Buffer] {
  const start = Buffer.allocUnsafe(2)
  start.writeUInt16BE(shard, 0)
  const end = Buffer.allocUnsafe(2)
  end.writeUInt16BE(shard + 1, 0) // 4096 still fits a u16
  return [start, end]
}

/** Keys starting with `start`'s bytes: [start, end), where end is the first key after them all. */
export function prefixRange (start: Buffer): [Buffer, Buffer] {
  const end = Buffer.from(start)
  let i = end.length - 1
  while (i >= 0 && end[i] === 0xff) i--
  end[i]!++
  return [start, end.subarray(0, i + 1)]
}

/**
 * Outbox and applied keys, `[u16 shard][origin 8][u64 key]`, in a reused buffer (a view
 * valid until the next call). The origin's bytes are cached: on one host nearly every
 * send has the same origin.
 */
export class SendKeyScratch {
  private readonly buf = Buffer.alloc(2 + SEND_KEY_BYTES)
  private origin = ''

  key (shard: number, origin: string, key: number): Buffer {
    const buf = this.buf
    buf.writeUInt16BE(shard, 0)
    if (origin !== this.origin) {
      storeIdBytes(origin, buf, 2)
      this.origin = origin
    }
    buf.writeUInt32BE(Math.floor(key / 0x100000000), 10)
    buf.writeUInt32BE(key >>> 0, 14)
    return buf
  }
}
