/**
 * Token bucket: the per-agent rate limit (dist_agent; docs/architecture.md §8). A
 * message that finds no token gets RateLimitedError without running the handler.
 *
 * Time is injected (`nowMs`, any monotonic millisecond clock: the host tick clock,
 * performance.now(), Date.now()); nothing here reads a clock or allocates. The bucket
 * starts full (`burst` tokens) and refills continuously at `perSecond`, capped at
 * `burst`.
 *
 * Three number fields, no "tokens" and "last refill" pair: the state is the single
 * instant `fullAt` at which the bucket will be full again, measured in *tokens* (ms ×
 * tokens per ms) rather than in ms — the GCRA formulation of a token bucket:
 *
 *     tokens(now) = burst - max(0, fullAt - now × perMs)
 *     take n:       fullAt = max(fullAt, now × perMs) + n     if the result ≤ burst
 *
 * Measuring in tokens makes taking whole tokens exact: adding an integer to a float
 * whose spacing is ≤ 1 loses nothing, so a full bucket grants exactly `burst` takes at
 * one instant (measured in ms, the same sum accumulates rounding: 200 takes of 1/3 ms
 * do not add up to 200/3 ms). The one exception — a sum crossing a power of two drops
 * one low bit — is absorbed by a slack of 4 ulps of nowMs × perMs (kSlack) in the comparison.
 *
 * Precision: token counting is exact while nowMs × perSecond / 1000 < 2^50 (with
 * Date.now() that is up to ≈ 600,000 tokens/s; with a process-relative clock, any rate);
 * refill is continuous to within one float64 rounding of nowMs × perMs (≈ 1e-4 tokens
 * at Date.now() magnitudes and 1,000/s).
 *
 * Gotchas:
 *   - nowMs must not go backwards. If it does, the bucket holds fewer tokens (never
 *     more) until the clock catches up.
 *   - A take of n > burst can never succeed: tryTake returns false, it does not throw.
 *   - Memory: each double field of a V8 object is a separate 16-byte box, so an
 *     instance costs ≈ 70–100 bytes. For millions of agents use the record form
 *     (`TokenBucket.init/tryTakeAt/tokensAt` on a Float64Array, 24 bytes per bucket,
 *     kBucketStride numbers each); agents of one type share perMs and burst, so an
 *     engine may also keep only `fullAt` per agent.
 *   - A bad argument (a rate, burst or time that is not a positive finite number, an
 *     offset outside the record) throws InvalidArgumentError.
 */
import { InvalidArgumentError } from '../errors.ts'

/** Offsets inside one bucket record of a Float64Array. */
export const kBucketPerMs = 0
export const kBucketBurst = 1
export const kBucketFullAt = 2
/** Numbers per bucket record. */
export const kBucketStride = 3
/** Relative slack (4 ulps) on `next - at ≤ burst`: see the header. */
export const kBucketSlack = 2 ** -50
const kSlack = kBucketSlack

export class TokenBucket {
  // Initialised with numbers, not left undefined, so V8 gives the fields a number
  // representation and tryTake updates #fullAt in place: declared bare, every
  // successful take allocated a 16-byte HeapNumber (measured: 146 scavenges per 2e7).
  #perMs = 0
  #burst = 0
  #fullAt = 0

  constructor (perSecond: number, burst: number, nowMs: number) {
    checkConfig(perSecond, burst, nowMs)
    this.#perMs = perSecond / 1000
    this.#burst = burst
    this.#fullAt = nowMs * this.#perMs
  }

  /** Take `n` tokens (default 1) if the bucket holds that many at `nowMs`; otherwise take none. */
  tryTake (nowMs: number, n = 1): boolean {
    if (!Number.isFinite(nowMs) || typeof n !== 'number' || !(n > 0 && n < Infinity)) badTake(nowMs, n)
    const at = nowMs * this.#perMs
    const next = (this.#fullAt > at ? this.#fullAt : at) + n
    if (next - at > this.#burst + Math.abs(at) * kSlack) return false
    this.#fullAt = next
    return true
  }

  /** Tokens available at `nowMs` (fractional, in [0, burst]). */
  tokens (nowMs: number): number {
    if (!Number.isFinite(nowMs)) badTake(nowMs, 1)
    return level(this.#burst, this.#fullAt, nowMs * this.#perMs)
  }

  /** Write a full bucket into `record` at `offset` (kBucketStride numbers). */
  static init (record: Float64Array, offset: number, perSecond: number, burst: number, nowMs: number): void {
    checkConfig(perSecond, burst, nowMs)
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + kBucketStride > record.length) {
      throw new InvalidArgumentError(`offset must be an integer in [0, ${record.length - kBucketStride}], got ${String(offset)}`)
    }
    record[offset + kBucketPerMs] = perSecond / 1000
    record[offset + kBucketBurst] = burst
    record[offset + kBucketFullAt] = nowMs * (perSecond / 1000)
  }

  /** tryTake on a record written by `init` (offset is trusted: it was checked there). */
  static tryTakeAt (record: Float64Array, offset: number, nowMs: number, n = 1): boolean {
    if (!Number.isFinite(nowMs) || typeof n !== 'number' || !(n > 0 && n < Infinity)) badTake(nowMs, n)
    const at = nowMs * record[offset + kBucketPerMs]!
    const fullAt = record[offset + kBucketFullAt]!
    const next = (fullAt > at ? fullAt : at) + n
    if (next - at > record[offset + kBucketBurst]! + Math.abs(at) * kSlack) return false
    record[offset + kBucketFullAt] = next
    return true
  }

  /** tokens on a record written by `init`. */
  static tokensAt (record: Float64Array, offset: number, nowMs: number): number {
    if (!Number.isFinite(nowMs)) badTake(nowMs, 1)
    return level(record[offset + kBucketBurst]!, record[offset + kBucketFullAt]!, nowMs * record[offset + kBucketPerMs]!)
  }
}

function level (burst: number, fullAt: number, at: number): number {
  if (fullAt <= at) return burst
  const t = burst - (fullAt - at)
  // Below zero only when the clock went backwards.
  return t > 0 ? t : 0
}

function checkConfig (perSecond: number, burst: number, nowMs: number): void {
  if (!(typeof perSecond === 'number' && perSecond > 0 && perSecond < Infinity)) {
    throw new InvalidArgumentError(`perSecond must be a positive finite number, got ${String(perSecond)}`)
  }
  if (!(typeof burst === 'number' && burst > 0 && burst < Infinity)) {
    throw new InvalidArgumentError(`burst must be a positive finite number, got ${String(burst)}`)
  }
  if (!Number.isFinite(nowMs)) {
    throw new InvalidArgumentError(`nowMs must be a finite number, got ${String(nowMs)}`)
  }
}

function badTake (nowMs: number, n: number): never {
  if (!Number.isFinite(nowMs)) throw new InvalidArgumentError(`nowMs must be a finite number, got ${String(nowMs)}`)
  throw new InvalidArgumentError(`n must be a positive finite number, got ${typeof n === 'number' ? n : typeof n}`)
}
