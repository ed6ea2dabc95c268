/**
 * Turns `host.stats()` — cumulative counters and gauges, read from shared memory without
 * a round trip — into one `HostSample` per interval (figures.ts): rates are the
 * difference from the previous reading over the time between them; commit percentiles
 * come from the difference of the threads' fixed latency buckets (interpolated inside the
 * bucket, as Prometheus' histogram_quantile does); call percentiles from the host's call
 * latency window. A worker that restarted starts its counters again from zero: a
 * negative difference counts as the new value.
 *
 * Cost: one `host.stats()` and a few hundred arithmetic operations per interval, on the
 * main thread, whether or not a page is open — the history is there when one opens.
 */
import { LATENCY_BOUNDS_MS } from '../../native-free-core/runtime/commit-stats.ts'
import type { HostStats, WorkerStats } from '../../src/observe/host-stats.ts'
import type { CallLatencyWindow } from '../../src/observe/call-latency.ts'
import type { QuotaInfo } from '../../src/tenancy/host-quotas.ts'
import type { ClusterPeers } from '../cluster/peer-asks.ts'
import type { ClusterSample, HostSample, LinkSample, ThreadSample } from './figures.ts'

/** The part of `host.stats().cluster` the dashboard reads (plugins/cluster/cluster-plugin.ts). */
interface ClusterStats {
  epoch?: number
  fenced?: boolean
  shardsServed?: number
  shardsMoving?: number
  movedIn?: number
  movedOut?: number
  forwarded?: number
  held?: number
  unroutable?: number
  callsInFlight?: number
  refusedFrames?: number
  links?: {
    refused?: Record<string, number>
    peers?: Array<{ id: string, state: string, framesIn: number, framesOut: number, bytesIn: number, bytesOut: number, queuedBytes: number, rttMs: number, droppedFrames: number, lastError: string | null }>
  }
}

export interface SamplerSource {
  readonly id: string
  stats (): HostStats
  quotas (): QuotaInfo[]
  readonly latency: CallLatencyWindow
  readonly peers: ClusterPeers | undefined
}

/** The rate of a counter between two readings (a restarted thread starts again from 0). */
function rate (now: number, before: number | undefined, seconds: number): number {
  if (before === undefined || seconds <= 0) return 0
  const d = now >= before ? now - before : now
  return d / seconds
}

/** The `q` quantile of bucket counts (LATENCY_BOUNDS_MS, then +Inf), interpolated; 0 with none. */
export function bucketQuantile (counts: readonly number[], q: number): number {
  let total = 0
  for (const c of counts) total += c
  if (total <= 0) return 0
  const rank = q * total
  let acc = 0
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!
    if (c > 0 && acc + c >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!
      if (i >= LATENCY_BOUNDS_MS.length) return lower // +Inf: the last bound is all we know
      const upper = LATENCY_BOUNDS_MS[i]!
      return lower + (upper - lower) * ((rank - acc) / c)
    }
    acc += c
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!
}

export class Sampler {
  private readonly source: SamplerSource
  private readonly started = performance.now()
  private prevAt = 0
  private prevWorkers = new Map<number, WorkerStats>()
  private prevMain: HostStats['mainGc'] | null = null
  private prevCluster: ClusterStats | null = null
  readonly history: HostSample[] = []
  private readonly keep: number
  latest: HostSample | null = null

  constructor (source: SamplerSource, keep: number) {
    this.source = source
    this.keep = keep
  }

  /** Read the host now and append a sample to the history. */
  take (): HostSample {
    const now = performance.now()
    const seconds = this.prevAt === 0 ? 0 : (now - this.prevAt) / 1000
    const stats = this.source.stats()
    const workers: ThreadSample[] = []
    const nextWorkers = new Map<number, WorkerStats>()
    let messagesPerSec = 0
    let activationsPerSec = 0
    for (const w of stats.workers) {
      nextWorkers.set(w.thread, w)
      const p = this.prevWorkers.get(w.thread)
      const commits = p === undefined ? 0 : Math.max(0, w.commits - p.commits)
      const states = p === undefined ? 0 : Math.max(0, w.committedStates - p.committedStates)
      const buckets = p === undefined ? [] : w.commitLatencyBuckets.map((c, i) => Math.max(0, c - (p.commitLatencyBuckets[i] ?? 0)))
      const t: ThreadSample = {
        thread: w.thread,
        alive: w.alive,
        activeAgents: w.activeAgents,
        activationsPerSec: rate(w.activations, p?.activations, seconds),
        messagesInPerSec: rate(w.messages, p?.messages, seconds),
        messagesOutPerSec: rate(w.sent, p?.sent, seconds),
        ringDepthBytes: w.ringDepthBytes,
        overflowBytes: w.overflowBytes,
        commitsPerSec: rate(w.commits, p?.commits, seconds),
        meanBatch: commits === 0 ? 0 : states / commits,
        lastBatch: w.lastCommitBatch,
        commitP50Ms: bucketQuantile(buckets, 0.5),
        commitP99Ms: bucketQuantile(buckets, 0.99),
        gcMsPerSec: rate(w.gcPauseTotalMs, p?.gcPauseTotalMs, seconds),
        gcPausesPerSec: rate(w.gcPauses, p?.gcPauses, seconds),
        gcMaxMs: w.gcPauseMaxMs,
        busyAgents: w.busyAgents,
        timers: w.timers,
        reminders: w.reminders,
        restarts: w.restarts,
        rateLimitedPerSec: rate(w.rateLimited, p?.rateLimited, seconds)
      }
      messagesPerSec += t.messagesInPerSec
      activationsPerSec += t.activationsPerSec
      workers.push(t)
    }
    const calls = this.source.latency.take()
    const g = stats.mainGc
    const pg = this.prevMain
    const cluster = this.cluster((stats as unknown as { cluster?: ClusterStats }).cluster, seconds)
    const sample: HostSample = {
      at: Date.now(),
      uptimeS: Math.round((now - this.started) / 100) / 10,
      host: this.source.id,
      activeAgents: stats.activeAgents,
      messagesPerSec,
      activationsPerSec,
      pendingCalls: stats.pendingCalls,
      calls: { perSec: seconds > 0 ? calls.count / seconds : 0, p50Us: calls.p50Us, p99Us: calls.p99Us, maxUs: calls.maxUs },
      workers,
      mainGc: {
        msPerSec: rate(g.gcPauseTotalMs, pg?.gcPauseTotalMs, seconds),
        pausesPerSec: rate(g.gcPauses, pg?.gcPauses, seconds),
        maxMs: g.gcPauseMaxMs
      },
      quotas: this.source.quotas().map((q) => ({ quota: q.quota, limit: Number.isFinite(q.limit) ? q.limit : null, count: q.count })),
      cluster
    }
    this.prevAt = now
    this.prevWorkers = nextWorkers
    this.prevMain = g
    this.latest = sample
    this.history.push(sample)
    if (this.history.length > this.keep) this.history.splice(0, this.history.length - this.keep)
    return sample
  }

  private cluster (c: ClusterStats | undefined, seconds: number): ClusterSample | null {
    const peers = this.source.peers
    if (c === undefined || peers === undefined) return null
    const before = this.prevCluster
    this.prevCluster = c
    const prevPeers = new Map((before?.links?.peers ?? []).map((p) => [p.id, p]))
    const links: LinkSample[] = (c.links?.peers ?? []).map((p) => {
      const q = prevPeers.get(p.id)
      return {
        peer: p.id,
        state: p.state,
        framesInPerSec: rate(p.framesIn, q?.framesIn, seconds),
        framesOutPerSec: rate(p.framesOut, q?.framesOut, seconds),
        bytesInPerSec: rate(p.bytesIn, q?.bytesIn, seconds),
        bytesOutPerSec: rate(p.bytesOut, q?.bytesOut, seconds),
        queuedBytes: p.queuedBytes,
        rttMs: p.rttMs,
        droppedFrames: p.droppedFrames,
        lastError: p.lastError
      }
    })
    return {
      epoch: c.epoch ?? 0,
      leader: peers.leader() ?? null,
      fenced: c.fenced === true,
      lease: peers.lease(),
      shardsServed: c.shardsServed ?? 0,
      shardsMoving: c.shardsMoving ?? 0,
      movedIn: c.movedIn ?? 0,
      movedOut: c.movedOut ?? 0,
      forwardedPerSec: rate(c.forwarded ?? 0, before?.forwarded, seconds),
      held: c.held ?? 0,
      unroutable: c.unroutable ?? 0,
      callsInFlight: c.callsInFlight ?? 0,
      refusedFrames: c.refusedFrames ?? 0,
      refusedPeers: { ...(c.links?.refused ?? {}) },
      links
    }
  }
}
