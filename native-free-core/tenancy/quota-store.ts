/**
 * The persistence seam of quotas: what a store keeps so that quota limits and agent
 * counts survive a restart. A store implements it beside `Store` (the LMDB store keeps
 * them in its environment; `MemoryStore` in memory, for the lifetime of the process).
 *
 * Counts are not written as absolute numbers: several threads commit creations in the
 * same quota, each in its own transaction. Each batch carries its net change per quota
 * (`WriteBatch.quotaDeltas`), applied in the batch's own transaction — so a count is
 * exactly the number of that quota's agents the store holds, crash or not (a batch is
 * all or nothing). An LMDB implementation adds each delta to a `quota-count/<name>`
 * record inside the write transaction, where LMDB serializes the threads' writers.
 *
 * Limits are host configuration, written by the main thread (`host.quotas.set/delete`)
 * and read back at start.
 *
 * Shard ranges (shard-range.ts). A store that imports or drops a shard's range (the
 * cluster moves shards between hosts) gains or loses that shard's agents, so it changes
 * its counts in the same transaction — the quotas of the range's state records, counted
 * as the range is written or cleared — and then tells `countsMoved`, so that the host's
 * live counters follow (the host sets it). A shard that moves from A to B is counted
 * at both from B's import until A drops it (never at neither).
 */

/** Agents per quota that a range import (+) or drop (−) added to or took from a store. */
export type QuotaCountChange = ReadonlyArray<readonly [quota: string, delta: number]>

export interface QuotaRecords {
  /** Quotas created with `host.quotas.set` and not deleted: [name, limit] (Infinity: none). */
  quotaLimits (): Iterable<readonly [quota: string, limit: number]>
  /** Create or change (`limit`) or delete (`null`) a quota. Durable once the promise resolves. */
  putQuotaLimit (quota: string, limit: number | null): Promise<void> | undefined
  /** Agents the store holds per quota: the sum of every committed `quotaDeltas`. */
  quotaCounts (): Iterable<readonly [quota: string, count: number]>
  /** Told, after the transaction, of the count changes of each shard range imported or dropped. */
  countsMoved?: ((change: QuotaCountChange) => void) | undefined
}

/** Count agents per quota (the part of an id before its first separator, U+001F). */
export class QuotaTally {
  private readonly counts = new Map<string, number>()

  /** One agent of the quota whose id starts at `bytes[start]` (UTF-8 or Latin-1: quota names are ASCII). */
  addIdBytes (bytes: Uint8Array, start: number, delta: number): void {
    let end = start
    while (end < bytes.length && bytes[end] !== 0x1f) end++
    let quota = ''
    for (let i = start; i < end; i++) quota += String.fromCharCode(bytes[i]!)
    this.add(quota, delta)
  }

  add (quota: string, delta: number): void {
    this.counts.set(quota, (this.counts.get(quota) ?? 0) + delta)
  }

  /** The non-zero changes. */
  change (): Array<[string, number]> {
    return [...this.counts].filter(([, n]) => n !== 0)
  }
}

export function isQuotaRecords (store: unknown): store is QuotaRecords {
  const s = store as Partial<QuotaRecords> | null
  return typeof s?.quotaLimits === 'function' && typeof s.putQuotaLimit === 'function' && typeof s.quotaCounts === 'function'
}
