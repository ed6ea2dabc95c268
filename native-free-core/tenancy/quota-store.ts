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
 */

export interface QuotaRecords {
  /** Quotas created with `host.quotas.set` and not deleted: [name, limit] (Infinity: none). */
  quotaLimits (): Iterable<readonly [quota: string, limit: number]>
  /** Create or change (`limit`) or delete (`null`) a quota. Durable once the promise resolves. */
  putQuotaLimit (quota: string, limit: number | null): Promise<void> | undefined
  /** Agents the store holds per quota: the sum of every committed `quotaDeltas`. */
  quotaCounts (): Iterable<readonly [quota: string, count: number]>
}

export function isQuotaRecords (store: unknown): store is QuotaRecords {
  const s = store as Partial<QuotaRecords> | null
  return typeof s?.quotaLimits === 'function' && typeof s.putQuotaLimit === 'function' && typeof s.quotaCounts === 'function'
}
