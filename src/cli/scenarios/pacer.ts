/**
 * The open loop's schedule, one for the engine's latency phases (latency.ts) and the raw
 * lmdb-js baseline beside them (raw-commit.ts), so that the two are paced alike and a
 * difference between them is the engine's, not the generator's.
 *
 * Item k is *intended* at `start + k * interval`, whatever the replies do; `issue(k, at,
 * now)` is called once per item, as soon as the loop sees it due (`now − at` is how late
 * the generator itself was). Between items the loop polls the clock with `setImmediate`:
 * Node's timers are 1 ms coarse, which at these rates would add up to a millisecond to
 * every item; it sleeps with a timer only when the next item is more than kSpinMs away.
 * When nothing is due it naps kNapMs in `Atomics.wait` rather than spin: spinning kept
 * the main thread at 100 % of a core (the workers then waited for a CPU) and each spin's
 * promise and Immediate made garbage for the main thread's scavenges (bench/RESULTS.md,
 * issue 13, 2026-12-06 evening). Before a nap it yields one microtask turn: what the
 * items just issued queued (the engine's ring frames, lmdb-js's writes) is published at
 * the end of that turn, and would otherwise wait out the nap unsent (2026-12-07 evening,
 * branch lat-main).
 */
import type { LatencySummary } from '../latency.ts'

/** What one open-loop phase offered and measured (latency.ts's `RatePoint`, raw-commit.ts's result). */
export interface OpenLoopFigures {
  /** Share of the measured maximum offered. */
  readonly share: number
  readonly offeredPerSec: number
  readonly durationMs: number
  readonly sent: number
  readonly completed: number
  readonly errors: number
  /** Completed items / (first intended time → last completion). */
  readonly achievedPerSec: number
  /** Intended time → completion (a call's reply; a write committed and flushed). */
  readonly latency: LatencySummary
  /** Intended → real issue time: the generator's own delay, included in `latency`. */
  readonly sendLag: LatencySummary
}

/** Poll the clock rather than sleep when the next item is due within this many ms. */
const kSpinMs = 2
/** When nothing is due, block the thread this long (ms) before looking again. */
const kNapMs = 0.1
/** A word nobody notifies: a nap is `Atomics.wait` on it with a timeout. */
const napCell = new Int32Array(new SharedArrayBuffer(4))

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The schedule's start (performance.now() time): the first item is due 1 ms from now. */
export function openLoopStart (): number {
  return performance.now() + 1
}

/** Issue `total` items, item k at `start + k * interval` (ms), each once, in order. */
export async function pace (start: number, interval: number, total: number, issue: (k: number, at: number, now: number) => void): Promise<void> {
  let i = 0
  while (i < total) {
    const now = performance.now()
    for (let at = start + i * interval; i < total && at <= now; at = start + (++i) * interval) issue(i, at, now)
    if (i === total) break
    const wait = start + i * interval - performance.now()
    if (wait > kSpinMs) await sleep(wait - 1)
    else {
      if (wait > 0) {
        await null
        Atomics.wait(napCell, 0, 0, kNapMs)
      }
      await immediate()
    }
  }
}
