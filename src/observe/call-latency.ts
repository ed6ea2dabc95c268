/**
 * Round trips of the calls a host makes (`ref.call`), for whoever opened a window on them
 * (the dashboard, through `PluginHost.callLatency()`): from the call being registered to
 * its reply settling it — a reply or an error reply; timeouts, aborts and crashes are not
 * round trips — in microseconds, in Node's native HDR histogram (`perf_hooks.createHistogram`,
 * 2 significant figures, ≈ 50 ns a record; hdr-histogram-js's pure-JS build measured
 * ≈ 4× that on this machine).
 *
 * Nothing is measured while no window is open: a host without a reader pays one length
 * check per call. With one, a call costs two `performance.now()` readings and a record,
 * a fraction of a microsecond against a round trip of tens.
 */
import { createHistogram } from 'node:perf_hooks'
import type { RecordableHistogram } from 'node:perf_hooks'

export interface CallLatencySummary {
  /** Round trips measured in the window. */
  readonly count: number
  readonly p50Us: number
  readonly p99Us: number
  readonly maxUs: number
}

const empty: CallLatencySummary = { count: 0, p50Us: 0, p99Us: 0, maxUs: 0 }

export class CallLatencyWindow {
  private readonly histogram: RecordableHistogram = createHistogram({ lowest: 1, highest: 3_600_000_000, figures: 2 })
  private readonly windows: CallLatencyWindow[]
  private open = true

  /** @internal PendingCalls.latencyWindow() */
  constructor (windows: CallLatencyWindow[]) {
    this.windows = windows
    windows.push(this)
  }

  /** @internal one round trip, µs */
  record (us: number): void {
    this.histogram.record(us < 1 ? 1 : Math.round(us))
  }

  /** The round trips since the last `take()` (or since the window opened); starts a new window. */
  take (): CallLatencySummary {
    const h = this.histogram
    if (h.count === 0) return empty
    const summary = { count: h.count, p50Us: h.percentile(50), p99Us: h.percentile(99), maxUs: h.max }
    h.reset()
    return summary
  }

  /** Stop measuring for this window (the last one closed stops the readings altogether). */
  close (): void {
    if (!this.open) return
    this.open = false
    const i = this.windows.indexOf(this)
    if (i >= 0) this.windows.splice(i, 1)
  }
}
