/**
 * Per-agent rate limits (dist_agent; docs/architecture.md §8): every agent of a type with `rateLimit:
 * { perSecond, burst }` has its own token bucket on the thread that owns it; a message
 * that finds it empty gets RateLimitedError without running the handler (and without
 * waiting in a busy agent's mailbox).
 *
 * Memory. Most types have no limit, so plain cells stay as they are (cell.ts: ≤ 200 bytes
 * per agent). Cells of limited types are a subclass with one more number, `fullAt`: the
 * GCRA state of token-bucket.ts (the instant, in tokens, at which the bucket is full
 * again). Rate and burst are per type, kept here once. Measured: +24 bytes per limited
 * agent (the field and its number box), 0 for the others; see bench/RESULTS.md.
 *
 * A dropped cell (rolled back by a throwing handler, passivated, deleted) would come back
 * with a full bucket, so a client could refill an agent's bucket by making it throw. A
 * dropped cell whose bucket is not full leaves its `fullAt` in a side table that the next
 * activation takes back; entries whose bucket has refilled meanwhile are useless and are
 * swept whenever the table doubles. Past MAX_KEPT entries (a mass passivation of
 * throttled agents) the oldest are forgotten: those buckets restart full.
 *
 * What counts: casts, calls and `ctx.send`s to the agent — one token each. Follow
 * subscriptions do not. Time is the runtime's injected Clock (milliseconds).
 */
import { Cell, kLimited, typeIndexOf } from '../runtime/cell.ts'
import type { TypeInfo } from '../agent/registry.ts'
import { TokenBucket, kBucketBurst, kBucketFullAt, kBucketPerMs, kBucketSlack, kBucketStride } from './token-bucket.ts'

/** A cell of a rate-limited type: its bucket's GCRA state (token-bucket.ts). */
export class LimitedCell extends Cell {
  fullAt: number

  constructor (idRef: number | string, hash: number, typeIdx: number, state: unknown, flags: number, tick: number, fullAt: number) {
    super(idRef, hash, typeIdx, state, flags | kLimited, tick)
    this.fullAt = fullAt
  }
}

const MAX_KEPT = 1_000_000

export class RateLimits {
  /** Per type: [perMs, burst, fullAt scratch], the record form of TokenBucket; null when unlimited. */
  private readonly records: ReadonlyArray<Float64Array | null>
  /** Per type index, unpacked for the hot path (NaN when unlimited). */
  private readonly perMs: Float64Array
  private readonly burst: Float64Array
  /** Buckets of dropped cells that had not refilled yet: id → fullAt. */
  private kept = new Map<string, number>()
  private sweepAt = 1024

  private constructor (records: ReadonlyArray<Float64Array | null>) {
    this.records = records
    this.perMs = Float64Array.from(records, (r) => r?.[kBucketPerMs] ?? NaN)
    this.burst = Float64Array.from(records, (r) => r?.[kBucketBurst] ?? NaN)
  }

  /** The limits of a registry's types, or null when no type has one (nothing to check, ever). */
  static of (types: readonly TypeInfo[]): RateLimits | null {
    if (!types.some((t) => t.def.rateLimit !== undefined)) return null
    return new RateLimits(types.map((t) => {
      const limit = t.def.rateLimit
      if (limit === undefined) return null
      const record = new Float64Array(kBucketStride)
      TokenBucket.init(record, 0, limit.perSecond, limit.burst, 0)
      return record
    }))
  }

  limited (typeIdx: number): boolean {
    return this.records[typeIdx] != null
  }

  /** A new cell of a limited type: its bucket as it was when the agent was last dropped, or full. */
  create (id: string, idRef: number | string, hash: number, typeIdx: number, state: unknown, flags: number, tick: number, nowMs: number): LimitedCell {
    let fullAt = this.kept.get(id)
    if (fullAt !== undefined) this.kept.delete(id)
    else fullAt = nowMs * this.records[typeIdx]![kBucketPerMs]!
    return new LimitedCell(idRef, hash, typeIdx, state, flags, tick, fullAt)
  }

  /** Take one token; returns 0 when granted, else the milliseconds until one is available. */
  take (cell: LimitedCell, nowMs: number): number {
    // TokenBucket.tryTakeAt's GCRA step, inlined without its argument checks (the
    // runtime's clock is trusted): this runs on every message to a limited agent
    const t = typeIndexOf(cell)
    const at = nowMs * this.perMs[t]!
    const fullAt = cell.fullAt
    const next = (fullAt > at ? fullAt : at) + 1
    if (next - at <= this.burst[t]! + Math.abs(at) * kBucketSlack) {
      cell.fullAt = next
      return 0
    }
    // the bucket holds `tokens` < 1: one more token takes (1 - tokens) / perMs
    const r = this.records[t]!
    r[kBucketFullAt] = fullAt
    const wait = (1 - TokenBucket.tokensAt(r, 0, nowMs)) / r[kBucketPerMs]!
    return wait > 0 ? wait : Number.MIN_VALUE
  }

  /** A limited cell (agent `id`) leaves the table: keep its bucket if it has not refilled. */
  dropped (id: string, cell: LimitedCell, nowMs: number): void {
    const r = this.records[typeIndexOf(cell)]!
    if (cell.fullAt <= nowMs * r[kBucketPerMs]!) return
    this.kept.set(id, cell.fullAt)
    if (this.kept.size >= this.sweepAt) this.sweep(nowMs)
  }

  /** Buckets kept for dropped agents (for tests and stats). */
  get keptBuckets (): number {
    return this.kept.size
  }

  private sweep (nowMs: number): void {
    // the type of a kept id is not stored; a bucket has refilled once fullAt is below
    // now × perMs, and the smallest perMs bounds that conservatively for every type
    let minPerMs = Infinity
    for (const r of this.records) if (r !== null && r[kBucketPerMs]! < minPerMs) minPerMs = r[kBucketPerMs]!
    const full = nowMs * minPerMs
    for (const [id, fullAt] of this.kept) if (fullAt <= full) this.kept.delete(id)
    while (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value!)
    this.sweepAt = Math.max(1024, this.kept.size * 2)
  }

  /** @internal tokens of a cell's bucket at `nowMs` (tests). */
  tokens (cell: LimitedCell, nowMs: number): number {
    const r = this.records[typeIndexOf(cell)]!
    r[kBucketFullAt] = cell.fullAt
    return TokenBucket.tokensAt(r, 0, nowMs)
  }

  /** @internal the burst of a type, for messages. */
  describe (typeIdx: number): string {
    const r = this.records[typeIdx]!
    return `${r[kBucketPerMs]! * 1000}/s, burst ${r[kBucketBurst]!}`
  }
}
