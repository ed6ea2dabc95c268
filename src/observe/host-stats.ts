/**
 * `host.stats()`: what every thread publishes in its stats words (src/thread/mesh.ts, written
 * by the thread at the end of each pass and before it publishes replies), read without
 * a round trip. Figures are cumulative since the thread started, except the gauges
 * (active and busy agents, ring depth, overflow, followers) and the `last…` values.
 */
import {
  kCommitLastBatch, kCommitLastLatencyMs, kCommitLatencyCount, kCommitLatencyMaxMs, kCommitLatencySumMs
} from '../../native-free-core/runtime/commit-stats.ts'
import { LATENCY_BOUNDS_MS, kCommitLatencyBuckets } from '../../native-free-core/runtime/commit-stats.ts'
import { ringDepth } from '../../native-free-core/ring/ring-queue.ts'
import {
  kStatActive, kStatAgentErrors, kStatAlive, kStatBadFrames, kStatBusy, kStatCommitStats, kStatCommits, kStatCommitted,
  kStatFailedSends, kStatFollowers, kStatGc, kStatMessages, kStatOverflowBytes, kStatPasses, kStatRateLimited, kStatReminders,
  kStatTimers, kStatActivations, kStatIdBytes, kStatSent, kStatStateReads, statsView
} from '../thread/mesh.ts'
import { kGcCount, kGcMaxMs, kGcTotalMs } from './gc-pauses.ts'
import type { Mesh } from '../thread/mesh.ts'
import type { OffloadStats } from '../offload/offload-pool.ts'

export interface WorkerStats {
  /** Thread index: 0 is the main thread (only with `workers: 0`), 1..N the workers. */
  readonly thread: number
  readonly alive: boolean
  readonly activeAgents: number
  /** Messages delivered to agents since the thread started (timer and reminder turns included). */
  readonly messages: number
  /** Messages the thread's agents sent out since it started: replies, `ctx.send`s and followed states. */
  readonly sent: number
  /** Agents activated (loaded from the store or created) since the thread started. */
  readonly activations: number
  /**
   * Activations that read the store for the agent's state. With LMDB on one host, an
   * activation in a shard that held no state when the host started, and has had none
   * written since, reads nothing (the agent starts from `initial`).
   */
  readonly stateReads: number
  /**
   * Bytes of chunks holding the resident agents' ids (the id arena): off the V8 heap, on
   * SharedArrayBuffers that `process.memoryUsage()` counts in neither `heapUsed` nor `external`.
   */
  readonly idArenaBytes: number
  /** Agents with a pending ctx.timeout or idle check (entries in the thread's timing wheel). */
  readonly timers: number
  /** Durable reminders of the agents the thread owns, resident or not. */
  readonly reminders: number
  /** Loop passes the thread has run: a parked thread runs none (a tick wakes it only when its timers are due). */
  readonly passes: number
  /** Async turns in flight. */
  readonly busyAgents: number
  /** Group commits (one per loop pass that had dirty agents). */
  readonly commits: number
  readonly committedStates: number
  /** States in the last commit batch. */
  readonly lastCommitBatch: number
  /** committedStates / commits. */
  readonly meanCommitBatch: number
  /** From closing the batch (encoding included) to the store reporting it committed. */
  readonly lastCommitLatencyMs: number
  readonly meanCommitLatencyMs: number
  readonly maxCommitLatencyMs: number
  /**
   * Commits per latency bucket since the thread started, not cumulative: one count per
   * bound of LATENCY_BOUNDS_MS (native-free-core/runtime/commit-stats.ts), then +Inf.
   */
  readonly commitLatencyBuckets: readonly number[]
  /** Bytes waiting in the rings into this thread. */
  readonly ringDepthBytes: number
  /** Bytes this thread holds in overflow because a ring it writes to is full. */
  readonly overflowBytes: number
  readonly restarts: number
  /** Messages refused by a rate limit since the thread started. */
  readonly rateLimited: number
  /** `ref.follow()` subscriptions to this thread's agents. */
  readonly followers: number
  /**
   * Agent errors the thread raised: handlers that threw, messages refused (rate limit,
   * quota, unknown method...), and the two below. Counted whether or not anyone listens
   * for 'agent-error'.
   */
  readonly agentErrors: number
  /** Frames the thread dropped because they did not decode (or handling them threw). */
  readonly badFrames: number
  /** `ctx.send`s of committed turns that could not be written to a ring (too large for it, ...). */
  readonly failedSends: number
  /** Garbage-collection pauses of this thread since it started (PerformanceObserver 'gc'). */
  readonly gcPauses: number
  /** Their total duration, ms: time this thread's JavaScript stood still. */
  readonly gcPauseTotalMs: number
  /** The longest one, ms. */
  readonly gcPauseMaxMs: number
}

/** One thread's GC pauses since it started (see gc-pauses.ts). */
export interface ThreadGcStats {
  readonly gcPauses: number
  readonly gcPauseTotalMs: number
  readonly gcPauseMaxMs: number
}

export interface HostStats {
  readonly activeAgents: number
  readonly messages: number
  readonly pendingCalls: number
  /** Every thread's `agentErrors`, the main thread's included (a reply frame that does not decode). */
  readonly agentErrors: number
  /** Agent-error reports lost on their way to the host's 'agent-error' listeners (a worker sends at most 1,000 per event-loop turn). */
  readonly agentErrorsDropped: number
  /** Every thread's `badFrames`, the main thread's included. */
  readonly badFrames: number
  /** Every thread's `failedSends`. */
  readonly failedSends: number
  readonly workers: readonly WorkerStats[]
  /** The main thread's GC pauses (with `workers: 0` also in `workers[0]`). */
  readonly mainGc: ThreadGcStats
  /** The piscina pool, when the host has `offload`. */
  readonly offload: OffloadStats | null
}

/** Bytes waiting in every ring into `thread`. */
export function inboundDepth (mesh: Mesh, thread: number): number {
  let depth = 0
  for (let from = 0; from < mesh.threads; from++) {
    const ring = mesh.rings[from]![thread]
    if (ring != null) depth += ringDepth(ring)
  }
  return depth
}

export function readGcStats (mesh: Mesh, thread: number): ThreadGcStats {
  const s = statsView(mesh, thread)
  return { gcPauses: s[kStatGc + kGcCount]!, gcPauseTotalMs: s[kStatGc + kGcTotalMs]!, gcPauseMaxMs: s[kStatGc + kGcMaxMs]! }
}

export function readWorkerStats (mesh: Mesh, thread: number, restarts: number): WorkerStats {
  const s = statsView(mesh, thread)
  const commits = s[kStatCommits]!
  const measured = s[kStatCommitStats + kCommitLatencyCount]!
  return {
    thread,
    alive: s[kStatAlive] === 1,
    activeAgents: s[kStatActive]!,
    messages: s[kStatMessages]!,
    sent: s[kStatSent]!,
    activations: s[kStatActivations]!,
    idArenaBytes: s[kStatIdBytes]!,
    stateReads: s[kStatStateReads]!,
    timers: s[kStatTimers]!,
    reminders: s[kStatReminders]!,
    passes: s[kStatPasses]!,
    busyAgents: s[kStatBusy]!,
    commits,
    committedStates: s[kStatCommitted]!,
    lastCommitBatch: s[kStatCommitStats + kCommitLastBatch]!,
    meanCommitBatch: commits === 0 ? 0 : s[kStatCommitted]! / commits,
    lastCommitLatencyMs: s[kStatCommitStats + kCommitLastLatencyMs]!,
    meanCommitLatencyMs: measured === 0 ? 0 : s[kStatCommitStats + kCommitLatencySumMs]! / measured,
    maxCommitLatencyMs: s[kStatCommitStats + kCommitLatencyMaxMs]!,
    commitLatencyBuckets: Array.from(s.subarray(kStatCommitStats + kCommitLatencyBuckets, kStatCommitStats + kCommitLatencyBuckets + LATENCY_BOUNDS_MS.length + 1)),
    ringDepthBytes: inboundDepth(mesh, thread),
    overflowBytes: s[kStatOverflowBytes]!,
    restarts,
    rateLimited: s[kStatRateLimited]!,
    followers: s[kStatFollowers]!,
    gcPauses: s[kStatGc + kGcCount]!,
    gcPauseTotalMs: s[kStatGc + kGcTotalMs]!,
    gcPauseMaxMs: s[kStatGc + kGcMaxMs]!,
    agentErrors: s[kStatAgentErrors]!,
    badFrames: s[kStatBadFrames]!,
    failedSends: s[kStatFailedSends]!
  }
}

/**
 * The host's figures: the sums of its owner threads' (`workers`), plus the error
 * counters of the main thread when it owns no agents (it still decodes the replies).
 */
export function hostStats (mesh: Mesh, workers: readonly WorkerStats[], own: {
  readonly pendingCalls: number
  readonly agentErrorsDropped: number
  readonly mainGc: ThreadGcStats
  readonly offload: OffloadStats | null
}): HostStats {
  let activeAgents = 0
  let messages = 0
  let agentErrors = 0
  let badFrames = 0
  let failedSends = 0
  for (const w of workers) {
    activeAgents += w.activeAgents
    messages += w.messages
    agentErrors += w.agentErrors
    badFrames += w.badFrames
    failedSends += w.failedSends
  }
  if (!workers.some((w) => w.thread === 0)) {
    const s = statsView(mesh, 0)
    agentErrors += s[kStatAgentErrors]!
    badFrames += s[kStatBadFrames]!
    failedSends += s[kStatFailedSends]!
  }
  return {
    activeAgents,
    messages,
    pendingCalls: own.pendingCalls,
    agentErrors,
    agentErrorsDropped: own.agentErrorsDropped,
    badFrames,
    failedSends,
    workers,
    mainGc: own.mainGc,
    offload: own.offload
  }
}
