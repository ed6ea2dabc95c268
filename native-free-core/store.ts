/**
 * Where committed agent states live. The core declares the interface; the host
 * injects an implementation (lmdb-js's `setExternals` idea): `MemoryStore` below when
 * no `dataDir` is given, the LMDB store otherwise.
 *
 * The runtime hands the store one batch per loop iteration (group commit) and
 * releases the replies and sends of those turns only once `commit` has finished —
 * synchronously (`undefined`) or when the returned promise resolves (the output gate).
 */

/** One group commit: states to write (`null` deletes the agent). */
export interface WriteBatch {
  readonly states: ReadonlyArray<readonly [id: string, bytes: Uint8Array | null]>
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
  /** Ids of stored agents whose id string starts with `prefix`, in id order. */
  ids (prefix: string): Iterable<string>
  close (): Promise<void> | void
}

import type { QuotaRecords } from './quota-store.ts'

/**
 * Committed snapshots in memory, as one-byte strings: a 4-byte state costs a 24-byte
 * string where a Uint8Array would cost ~200 bytes of object, ArrayBuffer and backing
 * store. The host may inject faster byte/string conversions (Buffer's latin1).
 */
export interface MemoryStoreOptions {
  readonly bytesToString?: (bytes: Uint8Array) => string
  readonly stringToBytes?: (s: string) => Uint8Array
}

export class MemoryStore implements Store, QuotaRecords {
  readonly durable = false
  private readonly states = new Map<string, string>()
  private readonly limits = new Map<string, number>()
  private readonly counts = new Map<string, number>()
  private readonly toStr: (bytes: Uint8Array) => string
  private readonly toBytes: (s: string) => Uint8Array

  constructor (options: MemoryStoreOptions = {}) {
    this.toStr = options.bytesToString ?? bytesToLatin1
    this.toBytes = options.stringToBytes ?? latin1ToBytes
  }

  get size (): number {
    return this.states.size
  }

  getState (id: string): Uint8Array | undefined {
    const s = this.states.get(id)
    return s === undefined ? undefined : this.toBytes(s)
  }

  commit (batch: WriteBatch): undefined {
    for (const [id, bytes] of batch.states) {
      if (bytes === null) this.states.delete(id)
      else this.states.set(id, this.toStr(bytes))
    }
    if (batch.quotaDeltas != null) {
      for (const [quota, delta] of batch.quotaDeltas) this.counts.set(quota, (this.counts.get(quota) ?? 0) + delta)
    }
    return undefined
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

  * ids (prefix: string): Iterable<string> {
    const found: string[] = []
    for (const id of this.states.keys()) if (id.startsWith(prefix)) found.push(id)
    yield * found.sort()
  }

  close (): void {
    this.states.clear()
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
