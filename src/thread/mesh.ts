/**
 * The shared memory of one host: a ring per directed pair of threads, a doorbell per
 * thread, the shard → thread table and per-thread stats words. Allocated by the main
 * thread, handed to workers in `workerData`, never resized.
 *
 *   thread 0 = main, 1..N = workers
 *   rings[from][to]: main → worker (calls, casts), worker → main (replies),
 *                    worker → worker including itself (ctx.send)
 *   with `workers: 0`, main owns every shard and has a ring to itself.
 *
 * Placement: shard s belongs to worker 1 + (s mod N). The table is shared so every
 * thread routes the same way without asking anyone; it changes only when the
 * cluster plugin moves shards.
 */
import { SHARDS } from '../../native-free-core/placement/hash.ts'
import { createRing } from '../../native-free-core/ring/ring-queue.ts'
import { DOORBELL_BYTES } from '../../native-free-core/ring/doorbell.ts'
import { COMMIT_STATS_SLOTS } from '../../native-free-core/runtime/commit-stats.ts'
import { createClock } from '../time/thread-clock.ts'
import { GC_STATS_SLOTS } from '../observe/gc-pauses.ts'
import { UnreleasedSends } from './unreleased-sends.ts'

/** Per-thread stats words (Float64Array slots); written by the owner at the end of each pass. */
export const kStatMessages = 0
export const kStatActive = 1
export const kStatBusy = 2
export const kStatCommits = 3
export const kStatCommitted = 4
export const kStatOverflowBytes = 5
export const kStatPendingCommit = 6
export const kStatPasses = 7
/** Agent errors this thread raised (reported as 'agent-error' or not: workers report only while someone listens). */
export const kStatAgentErrors = 8
export const kStatAlive = 9
/** 1 while a pass runs: frames taken out of a ring but not yet turned into effects. */
export const kStatRunning = 10
/** Messages refused by a rate limit. */
export const kStatRateLimited = 11
/** `ref.follow()` subscriptions to this thread's agents. */
export const kStatFollowers = 12
/** Live timing-wheel entries (agents with a pending ctx.timeout or idle check). */
export const kStatTimers = 13
/** Durable reminders of the agents this thread owns (resident or not). */
export const kStatReminders = 14
/** Frames dropped because they did not decode, or handling them threw (each is also an agent error). */
export const kStatBadFrames = 15
/** Sends of committed turns that could not be written to a ring (each is also an agent error). */
export const kStatFailedSends = 16
/** CommitStats.values (commit-stats.ts) from here on. */
export const kStatCommitStats = 17
/** The thread's GC pauses (observe/gc-pauses.ts: count, total ms, longest ms), written by its observer. */
export const kStatGc = kStatCommitStats + COMMIT_STATS_SLOTS
/** Replies, sends and followed states this thread's agents wrote to other threads' rings. */
export const kStatSent = kStatGc + GC_STATS_SLOTS
/** Agents activated (taken into the agent table: loaded from the store, or created) since the thread started. */
export const kStatActivations = kStatSent + 1
/**
 * Bytes of the thread's id arena (native-free-core/runtime/id-arena.ts): the resident
 * agents' ids live on SharedArrayBuffers, which `process.memoryUsage()` counts in no heap
 * or external figure of the thread.
 */
export const kStatIdBytes = kStatActivations + 1
/** Activations that read the store for the agent's state (the rest were known to have none). */
export const kStatStateReads = kStatIdBytes + 1
export const STAT_SLOTS = kStatStateReads + 1

export interface Mesh {
  readonly threads: number
  readonly ringBytes: number
  readonly bells: SharedArrayBuffer[]
  /** rings[from][to]; null where no traffic flows. Replaced per pair when a worker restarts. */
  readonly rings: Array<Array<SharedArrayBuffer | null>>
  readonly shardTable: SharedArrayBuffer
  /**
   * Cluster only: one byte per shard, what its home thread does with its frames
   * (native-free-core/placement/shard-state.ts); null on a single host.
   */
  readonly shardStates: SharedArrayBuffer | null
  /**
   * Cluster only: a Float64 word, the wall time (ms, `Date.now()`, the clock the lease
   * keeper stamps its renewals with) after which this host may not serve from memory — its lease was
   * last confirmed too long ago (a process paused past its lease, SIGSTOP then SIGCONT,
   * wakes up with frames in its rings that another host now answers). 0: no deadline.
   * Written by the main thread (the cluster plugin), read by every thread per pass.
   */
  readonly servingUntil: SharedArrayBuffer | null
  /**
   * Cluster only: per thread, the keys of the durable sends it stored and has not released
   * (unreleased-sends.ts), and what a worker that died had not released (kept by the main
   * thread until its writes have landed): no thread redelivers those.
   */
  readonly unreleasedSends: SharedArrayBuffer | null
  readonly stats: SharedArrayBuffer
  /** The host clock's tick and each thread's timer words (thread-clock.ts). */
  readonly clock: SharedArrayBuffer
}

/** The thread that owns `shard` on a host with `workers` workers: worker 1 + (shard mod workers), or the main thread with none. */
export function placeShard (shard: number, workers: number): number {
  return workers === 0 ? 0 : 1 + (shard % workers)
}

export function createMesh (workers: number, ringBytes: number, clustered = false): Mesh {
  const threads = workers + 1
  const rings: Array<Array<SharedArrayBuffer | null>> = []
  for (let from = 0; from < threads; from++) {
    const row: Array<SharedArrayBuffer | null> = []
    for (let to = 0; to < threads; to++) row.push(needsRing(workers, from, to) ? createRing(ringBytes) : null)
    rings.push(row)
  }
  const shardTable = new SharedArrayBuffer(SHARDS * 2)
  const table = new Uint16Array(shardTable)
  for (let s = 0; s < SHARDS; s++) table[s] = placeShard(s, workers)
  return {
    threads,
    ringBytes,
    bells: Array.from({ length: threads }, () => new SharedArrayBuffer(DOORBELL_BYTES)),
    rings,
    shardTable,
    shardStates: clustered ? new SharedArrayBuffer(SHARDS) : null,
    servingUntil: clustered ? new SharedArrayBuffer(8) : null,
    unreleasedSends: clustered ? UnreleasedSends.create(threads) : null,
    stats: new SharedArrayBuffer(threads * STAT_SLOTS * 8),
    clock: createClock(threads)
  }
}

export function needsRing (workers: number, from: number, to: number): boolean {
  if (workers === 0) return from === 0 && to === 0
  return from !== 0 || to !== 0
}

/** Fresh rings for every pair that involves `thread` (its old rings may hold a dead thread's half-written frames). */
export function renewRings (mesh: Mesh, thread: number): void {
  const workers = mesh.threads - 1
  for (let other = 0; other < mesh.threads; other++) {
    if (needsRing(workers, thread, other)) mesh.rings[thread]![other] = createRing(mesh.ringBytes)
    if (needsRing(workers, other, thread)) mesh.rings[other]![thread] = createRing(mesh.ringBytes)
  }
}

export function statsView (mesh: Mesh, thread: number): Float64Array {
  return new Float64Array(mesh.stats, thread * STAT_SLOTS * 8, STAT_SLOTS)
}
