/**
 * Garbage-collection pauses of this thread, from a `PerformanceObserver` for `'gc'`
 * entries (one per thread: the main thread and every worker start it). Each entry is
 * one pause of this thread's JavaScript — a scavenge, a mark-compact's atomic pause,
 * the start of an incremental marking cycle — and its `duration` is how long the thread
 * stood still. The incremental marking steps between the start and the final pause are
 * not reported (V8 calls no GC callback for them): with `--trace-gc` one took 183 ms on a
 * worker at 10M agents (bench/RESULTS.md, issue 13).
 *
 * Kept two ways:
 *   - lifetime figures (count, total, longest), written into the thread's stats words
 *     when the thread has them, so `host.stats()` reads them without a round trip;
 *   - a window, taken and reset by `takeWindow()`: the bench asks each thread for the
 *     pauses of one phase (activation, fanout) through its probe agent.
 *
 * Gotcha: the observer's callback runs as its own task, later than the pause — a thread
 * busy in a long pass has entries queued. `takeWindow()` and `read()` first pull them
 * with `takeRecords()`, so a reading taken inside a pass includes every pause before it.
 *
 * Cost: one small object per pause (tens to hundreds per second under allocation-heavy
 * load), nothing per message.
 */
import { PerformanceObserver } from 'node:perf_hooks'
import type { PerformanceEntry } from 'node:perf_hooks'

/** Layout of the stats words a thread's pauses are written to (see mesh.ts kStatGc). */
export const kGcCount = 0
export const kGcTotalMs = 1
export const kGcMaxMs = 2
export const GC_STATS_SLOTS = 3

export interface GcPauseFigures {
  /** Pauses observed. */
  readonly pauses: number
  /** Sum of their durations, ms. */
  readonly totalMs: number
  /** The longest one, ms. */
  readonly maxMs: number
  /** The longest scavenge (young generation) and the longest major pause, ms. */
  readonly maxMinorMs: number
  readonly maxMajorMs: number
}

// node:perf_hooks constants.NODE_PERFORMANCE_GC_*: detail.kind
const kMinor = 1
const kMajor = 4

class Tally {
  pauses = 0
  totalMs = 0
  maxMs = 0
  maxMinorMs = 0
  maxMajorMs = 0

  add (ms: number, kind: number): void {
    this.pauses++
    this.totalMs += ms
    if (ms > this.maxMs) this.maxMs = ms
    if (kind === kMinor) { if (ms > this.maxMinorMs) this.maxMinorMs = ms } else if (kind === kMajor && ms > this.maxMajorMs) this.maxMajorMs = ms
  }

  figures (): GcPauseFigures {
    return { pauses: this.pauses, totalMs: this.totalMs, maxMs: this.maxMs, maxMinorMs: this.maxMinorMs, maxMajorMs: this.maxMajorMs }
  }
}

export class GcPauses {
  private readonly lifetime = new Tally()
  private window = new Tally()
  /** Stats blocks the lifetime figures are mirrored into, with the slot they start at. */
  private readonly mirrors = new Map<Float64Array, number>()
  private users = 0
  private observer: PerformanceObserver | null = null

  /**
   * Start observing, for one more user; `stats`/`at`: also mirror the lifetime figures
   * there (a host's stats block for this thread) until `stop(stats)`.
   */
  start (stats: Float64Array | null = null, at = 0): this {
    this.users++
    if (stats !== null) {
      this.mirrors.set(stats, at)
      this.mirror()
    }
    if (this.observer === null) {
      this.observer = new PerformanceObserver((list) => this.record(list.getEntries()))
      this.observer.observe({ type: 'gc' })
    }
    return this
  }

  /** One user fewer (and stop mirroring into `stats`); the last one disconnects the observer. */
  stop (stats: Float64Array | null = null): void {
    if (stats !== null) this.mirrors.delete(stats)
    if (--this.users > 0) return
    this.users = 0
    this.observer?.disconnect()
    this.observer = null
  }

  /** Lifetime figures, up to now. */
  read (): GcPauseFigures {
    this.pull()
    return this.lifetime.figures()
  }

  /** The pauses since the last `takeWindow()` (or since start), and start a new window. */
  takeWindow (): GcPauseFigures {
    this.pull()
    const w = this.window.figures()
    this.window = new Tally()
    return w
  }

  private pull (): void {
    if (this.observer !== null) this.record(this.observer.takeRecords())
  }

  private record (entries: readonly PerformanceEntry[]): void {
    if (entries.length === 0) return
    for (const e of entries) {
      const kind = (e as unknown as { detail?: { kind?: number } | null }).detail?.kind ?? 0
      this.lifetime.add(e.duration, kind)
      this.window.add(e.duration, kind)
    }
    this.mirror()
  }

  private mirror (): void {
    const l = this.lifetime
    for (const [s, at] of this.mirrors) {
      s[at + kGcCount] = l.pauses
      s[at + kGcTotalMs] = l.totalMs
      s[at + kGcMaxMs] = l.maxMs
    }
  }
}

/** This thread's observer: one per thread, shared by the host and the bench's probes. */
export const threadGcPauses = new GcPauses()
