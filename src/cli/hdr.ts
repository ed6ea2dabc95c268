/**
 * Latency histograms of the open-loop scenario: HdrHistogram (`hdr-histogram-js`, the
 * library autocannon records with), 3 significant digits, values in nanoseconds,
 * reported in microseconds — the same `LatencySummary` shape as the other scenarios.
 */
import { build } from 'hdr-histogram-js'
import type { Histogram } from 'hdr-histogram-js'
import type { LatencySummary } from './latency.ts'

export class HdrLatency {
  readonly histogram: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: 3 })

  /** Record `ms` milliseconds (a difference of `performance.now()` readings). */
  recordMs (ms: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1e6)))
  }

  get count (): number {
    return this.histogram.totalCount
  }

  summary (): LatencySummary {
    const h = this.histogram
    if (h.totalCount === 0) return { count: 0, meanUs: 0, p50Us: 0, p90Us: 0, p99Us: 0, p999Us: 0, maxUs: 0 }
    const us = (ns: number): number => Math.round(ns / 10) / 100
    return {
      count: h.totalCount,
      meanUs: us(h.mean),
      p50Us: us(h.getValueAtPercentile(50)),
      p90Us: us(h.getValueAtPercentile(90)),
      p99Us: us(h.getValueAtPercentile(99)),
      p999Us: us(h.getValueAtPercentile(99.9)),
      maxUs: us(h.maxValue)
    }
  }
}

/** Summarize plain samples in microseconds (a baseline timed one by one) the same way. */
export function summarizeUs (samples: readonly number[]): LatencySummary {
  const h = new HdrLatency()
  for (const us of samples) h.recordMs(us / 1000)
  return h.summary()
}
