/**
 * What `shoal bench --replication` measures (replication-bench.ts), as it goes into the
 * JSON and the summary table (summary-table.ts `renderTable`). Same rules as results.ts:
 * stable field names, rates per second, latencies in µs, times in ms, null for what the
 * run did not measure; the machine's load (`loadavg`) beside every phase, since the
 * machine is shared.
 *
 * Every figure has its baseline from the same run:
 *   commands committed/s, p50/p99, replicas: 2   ← the same with replicas: 1 (a second
 *                                                  cluster on the same etcd, slices alternating)
 *   kill -9 → first answer from the new owner     ← the lease TTL (target: ≤ TTL + 2 s)
 *   catch-up MiB/s of a replica                   ← exportShard → importShard of the same
 *                                                  ranges between two LmdbStores in one process
 */
import type { LatencySummary } from './latency.ts'
import type { MachineInfo, SummaryRow } from './results.ts'
import { summaryRow } from './results.ts'

export const REPLICATION_SCHEMA = 'shoal-bench-replication/1'

/** The machine's 1-minute load average when a phase began and ended. */
export interface Load {
  readonly before: number
  readonly after: number
}

export interface CommandFigures {
  readonly replicas: number
  /** Commands acknowledged (committed, and with replicas: 2 applied by the replica), summed over the hosts. */
  readonly calls: number
  /** Each host's calls over its own driving time, summed over the hosts. */
  readonly callsPerSec: number
  readonly latency: LatencySummary
  readonly errors: number
  /** CPU-seconds of all the cluster's host processes per second of wall time (1.0 = one core). */
  readonly cores: number
  readonly callsPerCpuSec: number
  /** Replication stats deltas over the phase (replicas: 2 only): segments sent, replicas that fell out of sync. */
  readonly segmentsOut: number
  /** Replication units (CL_REPL frames) out; 0 where the hosts do not count them. */
  readonly unitsOut: number
  /** Replica apply transactions (live, not catch-ups); 0 where the hosts do not count them. */
  readonly replicaApplies: number
  /** Frames and batches (socket writes) out over the links, all kinds. */
  readonly linkFramesOut: number
  readonly linkBatchesOut: number
  readonly fellOut: number
  readonly load: Load
}

export interface FailoverRun {
  /** The host killed, and whether it was the leader then. */
  readonly killed: string
  readonly wasLeader: boolean
  /** kill -9 sent → the first answer from the agent's new owner, read through a surviving host. */
  readonly firstAnswerMs: number
  /** kill -9 sent → the surviving host's shard map names another owner for the agent. */
  readonly mapMs: number
  /** The restarted host ready → every shard served and replicated in sync again. */
  readonly rejoinMs: number
  readonly load: Load
}

export interface FailoverFigures {
  readonly leaseTtlS: number
  readonly runs: readonly FailoverRun[]
  readonly medianMs: number
  readonly maxMs: number
}

export interface CatchUpFigures {
  /** The host that joined and had to catch up. */
  readonly host: string
  /** Agent state written before it joined (the blobs), bytes, and each blob's size. */
  readonly stateBytes: number
  readonly blobBytes: number
  /** Bytes the joining host received over its links until in sync (snapshots, shard moves, framing). */
  readonly bytesIn: number
  /** Of which snapshot chunks (CL_SNAP_DATA), summed over every host (a join also moves other replicas). */
  readonly snapshotBytes: number
  readonly snapshots: number
  /** Shards the joining host took as owner (planned moves), and copies it keeps in sync as a replica. */
  readonly shardsMovedIn: number
  readonly copiesInSync: number
  /** The new host ready → every shard served and replicated in sync. */
  readonly elapsedMs: number
  /** What the joined host holds then: its ranges (owned and copies) as exportShard writes them — the same bytes the baseline copies. */
  readonly heldBytes: number
  /** heldBytes / elapsedMs */
  readonly mbPerSec: number
  /** The baseline: those ranges exported from the joined host's LMDB and imported into a fresh one, shard by shard, in one process. */
  readonly rawShards: number
  readonly rawMs: number
  readonly rawMbPerSec: number
  readonly load: Load
}

export interface ReplicationResults {
  readonly schema: typeof REPLICATION_SCHEMA
  readonly startedAt: string
  readonly elapsedMs: number
  readonly machine: MachineInfo
  /** Processes and threads on the cores, in words. */
  readonly layout: string
  readonly hosts: number
  readonly workersPerHost: number
  readonly durability: string
  readonly agents: number
  readonly concurrency: number
  readonly durationMs: number
  readonly replicated: CommandFigures | null
  readonly unreplicated: CommandFigures | null
  readonly failover: FailoverFigures | null
  readonly catchUp: CatchUpFigures | null
  readonly rows: readonly SummaryRow[]
}

const MB = 1024 * 1024

function loadText (l: Load): string {
  return `load ${l.before.toFixed(1)}→${l.after.toFixed(1)}`
}

function n (x: number): string {
  return Math.round(x).toLocaleString('en-US')
}

export function replicationRows (r: Omit<ReplicationResults, 'rows'>): SummaryRow[] {
  const rows: SummaryRow[] = []
  const s = 'replication'
  const on = r.replicated
  const off = r.unreplicated
  if (on !== null && off !== null) {
    rows.push(summaryRow(s, 'commands committed/s, replicas: 2', on.callsPerSec, '/s', {
      baseline: { name: 'replicas: 1', value: off.callsPerSec, unit: '/s' },
      target: { op: '>=', value: 0.5 },
      note: `counter add(1), each host calling the agents it owns, ${r.concurrency} in flight per host; ` +
        `per CPU-second of the hosts ${n(on.callsPerCpuSec)} vs ${n(off.callsPerCpuSec)}; cores used ${on.cores.toFixed(2)} vs ${off.cores.toFixed(2)}; ` +
        `${n(on.segmentsOut)} journal segments out${on.unitsOut === 0 ? '' : ` in ${n(on.unitsOut)} units`}${on.replicaApplies === 0 ? '' : `, ${n(on.replicaApplies)} replica applies`}; link frames out ${n(on.linkFramesOut)} / ${n(off.linkFramesOut)}, link batches out ${n(on.linkBatchesOut)} / ${n(off.linkBatchesOut)}; ${on.fellOut} replicas fell out of sync; errors ${on.errors} / ${off.errors}; ${loadText(on.load)} / ${loadText(off.load)}`
    }))
    rows.push(summaryRow(s, 'command p50, replicas: 2', on.latency.p50Us, 'µs', {
      baseline: { name: 'replicas: 1', value: off.latency.p50Us, unit: 'µs' }
    }))
    rows.push(summaryRow(s, 'command p99, replicas: 2', on.latency.p99Us, 'µs', {
      baseline: { name: 'replicas: 1', value: off.latency.p99Us, unit: 'µs' }
    }))
  }
  const f = r.failover
  if (f !== null && f.runs.length !== 0) {
    const ttlMs = f.leaseTtlS * 1000
    const runs = f.runs.map((x) => `${x.killed}${x.wasLeader ? ' (leader)' : ''} ${n(x.firstAnswerMs)} ms (map ${n(x.mapMs)} ms)`).join(', ')
    rows.push(summaryRow(s, `kill -9 → first answer from the new owner, median of ${f.runs.length}`, f.medianMs, 'ms', {
      baseline: { name: 'lease TTL', value: ttlMs, unit: 'ms' },
      target: { op: '<=', value: 2000, on: 'over' },
      note: `${runs}; rejoin to in sync ${f.runs.map((x) => `${(x.rejoinMs / 1000).toFixed(1)} s`).join(', ')}; ${f.runs.map((x) => loadText(x.load)).join(', ')}`
    }))
    rows.push(summaryRow(s, 'kill -9 → first answer from the new owner, max', f.maxMs, 'ms', {
      baseline: { name: 'lease TTL', value: ttlMs, unit: 'ms' },
      target: { op: '<=', value: 2000, on: 'over' }
    }))
  }
  const c = r.catchUp
  if (c !== null) {
    rows.push(summaryRow(s, `catch-up of a new host (${c.host}), MiB/s`, c.mbPerSec, 'MiB/s', {
      baseline: { name: 'raw LMDB range copy', value: c.rawMbPerSec, unit: 'MiB/s' },
      note: `${(c.stateBytes / MB).toFixed(1)} MiB of agent state (${c.blobBytes} B blobs) in the cluster; ${c.host} holds ${(c.heldBytes / MB).toFixed(1)} MiB ` +
        `(${c.shardsMovedIn} shards moved in, ${c.copiesInSync} replica copies), in sync ${(c.elapsedMs / 1000).toFixed(1)} s after it started; ${(c.bytesIn / MB).toFixed(1)} MiB came over its links; ` +
        `${c.snapshots} snapshots, ${(c.snapshotBytes / MB).toFixed(1)} MiB, cluster-wide; raw: ${c.rawShards} shard ranges in ${(c.rawMs / 1000).toFixed(2)} s; ${loadText(c.load)}`
    }))
  }
  return rows
}

export const replicationLegend = [
  'replicas: 1: a second cluster of the same size on the same etcd and machine, in slices alternating with the replicated one, so that the machine\'s other load falls on both alike',
  'lease TTL: membership.etcd.leaseTtlS — a dead host\'s lease must expire before its shards fail over; the target is TTL + 2 s',
  'raw LMDB range copy: LmdbStore.exportShard → importShard (as a replica\'s copy, same durability) of every non-empty shard of the joined host\'s data directory, into a fresh LmdbStore, one shard after another, in the driver process'
]
