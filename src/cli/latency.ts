/**
 * Call latencies: node's built-in HDR histogram (`perf_hooks.createHistogram`, native,
 * 3 significant figures), recorded in nanoseconds and reported in microseconds.
 */
import { createHistogram } from 'node:perf_hooks'
import type { RecordableHistogram } from 'node:perf_hooks'

export interface LatencySummary {
  readonly count: number
  readonly meanUs: number
  readonly p50Us: number
  readonly p90Us: number
  readonly p99Us: number
  readonly p999Us: number
  readonly maxUs: number
}

export class Latency {
  readonly histogram: RecordableHistogram = createHistogram({ lowest: 1, highest: 3_600_000_000_000, figures: 3 })

  /** Record the time since `startMs` (a `performance.now()` reading). */
  since (startMs: number): void {
    this.histogram.record(Math.max(1, Math.round((performance.now() - startMs) * 1e6)))
  }

  summary (): LatencySummary {
    const h = this.histogram
    if (h.count === 0) return { count: 0, meanUs: 0, p50Us: 0, p90Us: 0, p99Us: 0, p999Us: 0, maxUs: 0 }
    const us = (ns: number): number => Math.round(ns / 10) / 100
    return {
      count: h.count,
      meanUs: us(h.mean),
      p50Us: us(h.percentile(50)),
      p90Us: us(h.percentile(90)),
      p99Us: us(h.percentile(99)),
      p999Us: us(h.percentile(99.9)),
      maxUs: us(h.max)
    }
  }
}
