/**
 * The host clock's shared words: how one tick reaches every thread without a message.
 *
 * The host (main thread) owns the tick counter; every thread reads it at the start of
 * each loop pass and advances its timing wheel to it. A parked thread is woken for a
 * tick — by ringing its doorbell — only when it has timer work due by then: before
 * parking it publishes `nextDue`, the next tick its wheel has work at. No postMessage
 * per tick, and no wake-up per tick for a thread with nothing due.
 *
 *   offset   words (BigInt64 unless noted)            written by
 *   0        tick                                      the host clock
 *   8, 16    epochMs, tickMs (Float64)                 the host, once, before any worker starts
 *   64       progress (Int32), waiters (Int32)         every thread / host.advance
 *   128+64t  thread t: nextDue, parkedAt               thread t
 *
 *   (one 64-byte line each, so the tick every thread reads does not share a line with
 *   the words threads write)
 *
 * Parking race. Thread:  store nextDue → announce sleep (store) → load tick → park
 * unless tick ≥ nextDue.  Clock:  store tick → load nextDue → ring (load sleeping).
 * All are sequentially consistent Atomics, so either the thread's re-check sees the new
 * tick, or the clock sees its nextDue and its sleeping flag and rings.
 *
 * `parkedAt[t]` is for `host.advance` (the manual clock): the tick through which
 * thread t, parked, has nothing left to do — no timer due, nothing inbound, no commit
 * in flight — or -1 while it runs (or parks with a commit or an overflow pending).
 * Threads bump `progress` (and notify it when the host waits) each time they set or
 * clear it, so the host can tell a stable snapshot from one taken mid-change.
 *
 * Ticks are BigInt64 so they never wrap (an Int32 would after 24.8 days at tickMs 1);
 * one BigInt load per pass is a few ns.
 */

export const CLOCK_REAL = 'real'
export const CLOCK_MANUAL = 'manual'
export type ClockKind = 'real' | 'manual'

const kTick = 0
const kProgress = 16 // Int32 index (byte 64)
const kWaiters = 17
const kThreadBase = 16 // BigInt64 index (byte 128)
const kThreadStride = 8 // 64 bytes
const kNextDue = 0
const kParkedAt = 1

export function clockBytes (threads: number): number {
  return 128 + 64 * threads
}

export function createClock (threads: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(clockBytes(threads))
  const big = new BigInt64Array(sab)
  for (let t = 0; t < threads; t++) {
    big[kThreadBase + t * kThreadStride + kNextDue] = -1n
    big[kThreadBase + t * kThreadStride + kParkedAt] = -1n
  }
  return sab
}

export class ClockView {
  private readonly big: BigInt64Array
  private readonly i32: Int32Array
  private readonly f64: Float64Array

  constructor (sab: SharedArrayBuffer) {
    this.big = new BigInt64Array(sab)
    this.i32 = new Int32Array(sab)
    this.f64 = new Float64Array(sab, 0, 3)
  }

  /** Wall time (epoch ms) of tick 0, and ms per tick: tick t is `epochMs + t × tickMs` (reminders). */
  get epochMs (): number {
    return this.f64[1]!
  }

  get tickMs (): number {
    return this.f64[2]!
  }

  /** Host only, before the workers start (their creation publishes it). */
  setTimeBase (epochMs: number, tickMs: number): void {
    this.f64[1] = epochMs
    this.f64[2] = tickMs
  }

  /** The host clock's current tick. */
  now (): number {
    return Number(Atomics.load(this.big, kTick))
  }

  /** Host only. */
  setNow (tick: number): void {
    Atomics.store(this.big, kTick, BigInt(tick))
  }

  /** The next tick thread `t` has timer work at (published before it parks), or -1. */
  nextDue (t: number): number {
    return Number(Atomics.load(this.big, kThreadBase + t * kThreadStride + kNextDue))
  }

  setNextDue (t: number, tick: number): void {
    Atomics.store(this.big, kThreadBase + t * kThreadStride + kNextDue, BigInt(tick))
  }

  /** The tick through which thread `t` is parked with nothing to do, or -1. */
  parkedAt (t: number): number {
    return Number(Atomics.load(this.big, kThreadBase + t * kThreadStride + kParkedAt))
  }

  /** Set (a tick) or clear (-1) this thread's parkedAt, and tell a waiting host. */
  setParkedAt (t: number, tick: number): void {
    Atomics.store(this.big, kThreadBase + t * kThreadStride + kParkedAt, BigInt(tick))
    Atomics.add(this.i32, kProgress, 1)
    if (Atomics.load(this.i32, kWaiters) !== 0) Atomics.notify(this.i32, kProgress)
  }

  /** Bumped by every setParkedAt. */
  progress (): number {
    return Atomics.load(this.i32, kProgress)
  }

  /**
   * Resolve once `progress` moves past `seen` (or after `timeoutMs`, a safety net for a
   * thread that died mid-change). Host only.
   */
  async waitProgress (seen: number, timeoutMs: number): Promise<void> {
    Atomics.add(this.i32, kWaiters, 1)
    try {
      const r = Atomics.waitAsync(this.i32, kProgress, seen, timeoutMs)
      if (r.async) await r.value
    } finally {
      Atomics.sub(this.i32, kWaiters, 1)
    }
  }
}
