/**
 * `host.metrics()`: Prometheus text exposition, built with prom-client.
 *
 * Every thread's figures come from its stats words in shared memory (the same ones
 * `host.stats()` reads: no round trip, so a stuck worker does not stall a scrape). Each
 * thread's figures are laid out as prom-client's metric JSON (what
 * `registry.getMetricsAsJSON()` returns in a worker) and merged with prom-client's own
 * `AggregatorRegistry.aggregate`, which sums counters, gauges and histogram buckets of
 * the same name and labels — the aggregation prom-client does for cluster workers,
 * without its IPC. The host's own figures (pending calls, followers, the offload pool)
 * are one more entry in that merge.
 *
 * Histograms can be summed bucket by bucket because every thread uses the same bounds
 * (native-free-core/runtime/commit-stats.ts). Latencies are exported in seconds, as Prometheus
 * expects. Counters restart from zero when a worker restarts (its stats words are reset),
 * which Prometheus' rate() treats as a counter reset.
 */
import type { AggregatorRegistry as AggregatorRegistryType } from 'prom-client'
import {
  BATCH_BOUNDS, LATENCY_BOUNDS_MS, kCommitLatencyBuckets, kCommitLatencyCount, kCommitLatencySumMs, kCommitBatchBuckets
} from '../../native-free-core/runtime/commit-stats.ts'
import {
  kStatActive, kStatAgentErrors, kStatAlive, kStatBadFrames, kStatBusy, kStatCommitStats, kStatCommits, kStatCommitted,
  kStatFailedSends, kStatFollowers, kStatGc, kStatMessages, kStatOverflowBytes, kStatRateLimited, statsView
} from '../thread/mesh.ts'
import { kGcCount, kGcMaxMs, kGcTotalMs } from './gc-pauses.ts'
import type { Mesh } from '../thread/mesh.ts'
import { inboundDepth } from './host-stats.ts'
import type { OffloadStats } from '../offload/offload-pool.ts'

/**
 * The content type of `host.metrics()`'s text, for an HTTP response: prom-client's
 * `Registry.PROMETHEUS_CONTENT_TYPE`, written out so that importing shoal does not load
 * prom-client (≈ 75 ms) — test/engine/metrics.test.ts checks they agree.
 */
export const metricsContentType = 'text/plain; version=0.0.4; charset=utf-8'

/** prom-client, loaded at the first scrape. */
let aggregator: Promise<typeof AggregatorRegistryType> | null = null

type Labels = Record<string, string | number>
interface Value { value: number, labels: Labels, metricName?: string }
interface MetricJson { name: string, help: string, type: 'counter' | 'gauge' | 'histogram', aggregator: 'sum', values: Value[] }

export interface HostFigures {
  readonly pendingCalls: number
  /** Live `ref.follow()` iterators on the main thread. */
  readonly followers: number
  readonly offload: OffloadStats | null
  /** Per quota: its limit (Infinity: none) and its agents. */
  readonly quotas?: ReadonlyArray<{ readonly quota: string, readonly limit: number, readonly count: number }>
  /** Agent-error reports the workers dropped (HostStats.agentErrorsDropped). */
  readonly agentErrorsDropped?: number
}

function metric (name: string, type: MetricJson['type'], help: string, values: Value[]): MetricJson {
  return { name, help, type, aggregator: 'sum', values }
}

function one (value: number, labels: Labels = {}): Value[] {
  return [{ value, labels }]
}

/** A histogram's values from non-cumulative bucket counts (the last one is +Inf). */
function histogram (name: string, bounds: readonly number[], scale: number, counts: Float64Array, at: number, sum: number, count: number): Value[] {
  const values: Value[] = []
  let acc = 0
  for (let i = 0; i < bounds.length; i++) {
    acc += counts[at + i]!
    values.push({ value: acc, labels: { le: bounds[i]! * scale }, metricName: `${name}_bucket` })
  }
  values.push({ value: count, labels: { le: '+Inf' }, metricName: `${name}_bucket` })
  values.push({ value: sum * scale, labels: {}, metricName: `${name}_sum` })
  values.push({ value: count, labels: {}, metricName: `${name}_count` })
  return values
}

function threadMetrics (mesh: Mesh, thread: number, restarts: number): MetricJson[] {
  const s = statsView(mesh, thread)
  const c = kStatCommitStats
  let batches = 0
  for (let i = 0; i <= BATCH_BOUNDS.length; i++) batches += s[c + kCommitBatchBuckets + i]!
  return [
    metric('shoal_worker_up', 'gauge', '1 while the thread runs its loop', one(s[kStatAlive]!, { thread })),
    metric('shoal_worker_restarts_total', 'counter', 'Times the worker thread was replaced after dying', one(restarts, { thread })),
    metric('shoal_active_agents', 'gauge', 'Resident agents', one(s[kStatActive]!)),
    metric('shoal_busy_agents', 'gauge', 'Agents inside an async turn', one(s[kStatBusy]!)),
    metric('shoal_messages_total', 'counter', 'Messages delivered to agents', one(s[kStatMessages]!)),
    metric('shoal_rate_limited_total', 'counter', 'Messages refused by a rate limit', one(s[kStatRateLimited]!)),
    metric('shoal_commits_total', 'counter', 'Group commits', one(s[kStatCommits]!)),
    metric('shoal_committed_states_total', 'counter', 'Agent states committed', one(s[kStatCommitted]!)),
    metric('shoal_commit_batch_states', 'histogram', 'States per group commit',
      histogram('shoal_commit_batch_states', BATCH_BOUNDS, 1, s, c + kCommitBatchBuckets, s[kStatCommitted]!, batches)),
    metric('shoal_commit_latency_seconds', 'histogram', 'From closing a commit batch to the store reporting it committed',
      histogram('shoal_commit_latency_seconds', LATENCY_BOUNDS_MS, 1 / 1000, s, c + kCommitLatencyBuckets,
        s[c + kCommitLatencySumMs]!, s[c + kCommitLatencyCount]!)),
    metric('shoal_ring_depth_bytes', 'gauge', 'Bytes waiting in the rings into agent threads', one(inboundDepth(mesh, thread))),
    metric('shoal_overflow_bytes', 'gauge', 'Bytes held back because a ring was full', one(s[kStatOverflowBytes]!)),
    metric('shoal_followed_subscriptions', 'gauge', 'ref.follow() subscriptions held by agent threads', one(s[kStatFollowers]!)),
    ...errorMetrics(s),
    ...gcMetrics(s, thread)
  ]
}

/** A thread's GC pauses (PerformanceObserver 'gc'), labelled by thread: 0 is the main thread. */
function gcMetrics (s: Float64Array, thread: number): MetricJson[] {
  return [
    metric('shoal_gc_pauses_total', 'counter', 'Garbage-collection pauses of the thread', one(s[kStatGc + kGcCount]!, { thread })),
    metric('shoal_gc_pause_seconds_total', 'counter', 'Time the thread stood still for garbage collection', one(s[kStatGc + kGcTotalMs]! / 1000, { thread })),
    metric('shoal_gc_pause_max_seconds', 'gauge', 'Longest garbage-collection pause of the thread', one(s[kStatGc + kGcMaxMs]! / 1000, { thread }))
  ]
}

/** Counted on every thread, whether or not anyone listens for 'agent-error'. */
function errorMetrics (s: Float64Array): MetricJson[] {
  return [
    metric('shoal_agent_errors_total', 'counter', 'Agent errors: handlers that threw, messages refused, bad frames, failed sends', one(s[kStatAgentErrors]!)),
    metric('shoal_bad_frames_total', 'counter', 'Frames dropped because they did not decode', one(s[kStatBadFrames]!)),
    metric('shoal_failed_sends_total', 'counter', 'Sends of committed turns that could not be written to a ring', one(s[kStatFailedSends]!))
  ]
}

function hostMetricsJson (figures: HostFigures): MetricJson[] {
  const out = [
    metric('shoal_pending_calls', 'gauge', 'Calls waiting for their reply', one(figures.pendingCalls)),
    metric('shoal_follow_iterators', 'gauge', 'Open ref.follow() iterators', one(figures.followers)),
    metric('shoal_agent_error_reports_dropped_total', 'counter', 'Agent-error reports lost on their way to the host\'s listeners',
      one(figures.agentErrorsDropped ?? 0))
  ]
  const o = figures.offload
  if (o !== null) {
    out.push(
      metric('shoal_offload_threads', 'gauge', 'Threads of the offload pool', one(o.threads)),
      metric('shoal_offload_queued', 'gauge', 'Offload tasks waiting for a pool thread', one(o.queued)),
      metric('shoal_offload_in_flight', 'gauge', 'Offload tasks running or queued', one(o.inFlight)),
      metric('shoal_offload_completed_total', 'counter', 'Offload tasks completed', one(o.completed)),
      metric('shoal_offload_failed_total', 'counter', 'Offload tasks that threw', one(o.failed)))
  }
  if (figures.quotas !== undefined && figures.quotas.length > 0) {
    out.push(
      metric('shoal_quota_agents', 'gauge', 'Agents counted in each quota', figures.quotas.map((q) => ({ value: q.count, labels: { quota: q.quota } }))),
      metric('shoal_quota_limit', 'gauge', 'Each quota\'s limit (+Inf: none)', figures.quotas.map((q) => ({ value: q.limit, labels: { quota: q.quota } }))))
  }
  return out
}

export async function hostMetrics (mesh: Mesh, threads: readonly number[], restarts: (thread: number) => number, figures: HostFigures): Promise<string> {
  const all: MetricJson[][] = threads.map((t) => threadMetrics(mesh, t, restarts(t)))
  // the main thread decodes the replies even when it owns no agent
  if (!threads.includes(0)) all.push(errorMetrics(statsView(mesh, 0)))
  all.push(hostMetricsJson(figures))
  if (!threads.includes(0)) all.push(gcMetrics(statsView(mesh, 0), 0))
  aggregator ??= import('prom-client').then((m) => m.default.AggregatorRegistry)
  return (await aggregator).aggregate(all).metrics()
}
