/**
 * What the dashboard shows of one host, once per interval: the host's cumulative
 * counters (`host.stats()`) turned into rates over the interval, its gauges as they are,
 * and the percentiles of the interval (calls from an HDR histogram, commits from the
 * threads' fixed buckets). One `HostSample` is pushed to every open page, kept in the
 * history the charts start from, and answered to the other hosts of a cluster (they show
 * it in their cluster view). Plain data: it crosses the cluster's links as msgpack and
 * the page's WebSocket as JSON.
 */

export interface ThreadSample {
  /** 1..workers (0: the main thread, with `workers: 0`). */
  readonly thread: number
  readonly alive: boolean
  readonly activeAgents: number
  readonly activationsPerSec: number
  /** Messages delivered to the thread's agents per second. */
  readonly messagesInPerSec: number
  /** Replies, sends and followed states its agents sent out per second. */
  readonly messagesOutPerSec: number
  readonly ringDepthBytes: number
  readonly overflowBytes: number
  readonly commitsPerSec: number
  /** States per commit over the interval (0 without a commit). */
  readonly meanBatch: number
  readonly lastBatch: number
  /** Commit latency over the interval, ms, from the fixed buckets (interpolated); 0 without a commit. */
  readonly commitP50Ms: number
  readonly commitP99Ms: number
  /** Milliseconds this thread stood still for GC, per second; pauses per second; the longest since start. */
  readonly gcMsPerSec: number
  readonly gcPausesPerSec: number
  readonly gcMaxMs: number
  readonly busyAgents: number
  readonly timers: number
  readonly reminders: number
  readonly restarts: number
  readonly rateLimitedPerSec: number
}

export interface LinkSample {
  readonly peer: string
  readonly state: string
  readonly framesInPerSec: number
  readonly framesOutPerSec: number
  readonly bytesInPerSec: number
  readonly bytesOutPerSec: number
  readonly queuedBytes: number
  readonly rttMs: number
  readonly droppedFrames: number
  readonly lastError: string | null
}

export interface ClusterSample {
  readonly epoch: number
  readonly leader: string | null
  readonly fenced: boolean
  /** This host's lease (etcd), or null with a static list. */
  readonly lease: { readonly id: string | null, readonly ttlS: number, readonly fenced: boolean } | null
  readonly shardsServed: number
  readonly shardsMoving: number
  readonly movedIn: number
  readonly movedOut: number
  readonly forwardedPerSec: number
  readonly held: number
  readonly unroutable: number
  readonly callsInFlight: number
  readonly refusedFrames: number
  /** Peers refused by reason (authentication, garbage, ...), since the host started. */
  readonly refusedPeers: Readonly<Record<string, number>>
  readonly links: readonly LinkSample[]
}

export interface HostSample {
  /** Wall clock when taken, epoch ms. */
  readonly at: number
  /** Seconds since the dashboard started on this host: the charts' x axis. */
  readonly uptimeS: number
  readonly host: string
  readonly activeAgents: number
  readonly messagesPerSec: number
  readonly activationsPerSec: number
  readonly pendingCalls: number
  /** Round trips of the host's calls over the interval. */
  readonly calls: { readonly perSec: number, readonly p50Us: number, readonly p99Us: number, readonly maxUs: number }
  readonly workers: readonly ThreadSample[]
  /** The main thread's GC (with `workers: 0` it is also `workers[0]`). */
  readonly mainGc: { readonly msPerSec: number, readonly pausesPerSec: number, readonly maxMs: number }
  readonly quotas: ReadonlyArray<{ readonly quota: string, readonly limit: number | null, readonly count: number }>
  readonly cluster: ClusterSample | null
}

export interface DashboardEvent {
  readonly at: number
  readonly kind: 'agent-error' | 'worker-restart' | 'cluster-change' | 'note'
  readonly text: string
}
