/**
 * Group-commit figures of one shard runtime, for `host.stats()` and `host.metrics()`:
 * states per batch and commit latency (from closing the batch — encoding included — to
 * the store reporting it committed), as counts in fixed histogram buckets plus the last
 * value, the sum and the maximum.
 *
 * Fixed bucket bounds, the same on every thread, so the host can add the threads'
 * histograms bucket by bucket (Prometheus histograms aggregate that way). The counts
 * live in one Float64Array the host loop copies into shared memory once per pass.
 *
 * Latency precision is the injected stopwatch's (performance.now(): µs). A memory store
 * commits synchronously, so its latency is the time to encode and hand over the batch.
 */

/** Upper bounds of the batch-size buckets (states per commit); a last bucket is +Inf. */
export const BATCH_BOUNDS: readonly number[] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]
/** Upper bounds of the latency buckets, in ms; a last bucket is +Inf. */
export const LATENCY_BOUNDS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000]

/** Layout of `CommitStats.values`. */
export const kCommitLastBatch = 0
export const kCommitLastLatencyMs = 1
export const kCommitLatencySumMs = 2
export const kCommitLatencyMaxMs = 3
/** Commits whose latency was measured (a failed commit has none). */
export const kCommitLatencyCount = 4
/** Non-cumulative bucket counts: BATCH_BOUNDS.length + 1 of them, then LATENCY_BOUNDS_MS.length + 1. */
export const kCommitBatchBuckets = 5
export const kCommitLatencyBuckets = kCommitBatchBuckets + BATCH_BOUNDS.length + 1
export const COMMIT_STATS_SLOTS = kCommitLatencyBuckets + LATENCY_BOUNDS_MS.length + 1

export class CommitStats {
  readonly values = new Float64Array(COMMIT_STATS_SLOTS)

  batch (states: number): void {
    const v = this.values
    v[kCommitLastBatch] = states
    v[kCommitBatchBuckets + bucketOf(BATCH_BOUNDS, states)]!++
  }

  latency (ms: number): void {
    const v = this.values
    v[kCommitLastLatencyMs] = ms
    v[kCommitLatencySumMs]! += ms
    if (ms > v[kCommitLatencyMaxMs]!) v[kCommitLatencyMaxMs] = ms
    v[kCommitLatencyCount]!++
    v[kCommitLatencyBuckets + bucketOf(LATENCY_BOUNDS_MS, ms)]!++
  }
}

/** Index of the first bound ≥ value (bounds.length for +Inf). Bounds are few: a scan. */
function bucketOf (bounds: readonly number[], value: number): number {
  let i = 0
  while (i < bounds.length && value > bounds[i]!) i++
  return i
}
