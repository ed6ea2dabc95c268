/**
 * `shoal bench --replication`: what replication costs and what it buys (issue 12), each
 * figure beside a baseline from the same run (replication-results.ts). Host processes
 * on 127.0.0.1 (procs/), on an etcd (`--etcd URL`, or one started for the run). In order:
 *
 *   start      two clusters of `--hosts` processes on the same etcd (different prefixes):
 *              `replicas: 2` (r0, r1, ...) and `replicas: 1` (u0, u1, ...); each settled,
 *              every shard of the first with its replica in sync
 *   commands   every host calls `add(1)` on the counters it owns, `--concurrency` in
 *              flight, each call timed; the clusters take turns in slices (ABBA), so that
 *              the machine's other load falls on both alike. The replicas: 1 cluster
 *              closes after
 *   failover   `--failovers` times: kill -9 of one host (each in turn, the leader among
 *              them), then a surviving host calls `get` on one of the killed host's agents
 *              every 20 ms (1 s timeout) until it answers — from the new owner; then the
 *              host restarts on its data and the cluster settles, in sync again
 *   catch-up   blobs (`--catchup-mb` of random bytes, 8 KiB each) are written through
 *              their owners and replicated; one more host starts and takes its shards and
 *              its replica copies; timed from its start to every shard served and in
 *              sync. Baseline, after the cluster closed: that host's ranges exported
 *              from its LMDB and imported into a fresh one, shard by shard
 *
 * `--profile DIR` runs every host with `--cpu-prof` (written when it closes; a killed
 * host writes none).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { decodeFromCompressedBase64 } from 'hdr-histogram-js'
import { LmdbStore } from '../storage/lmdb-store.ts'
import { SHARDS } from '../../native-free-core/placement/hash.ts'
import { HdrLatency } from './hdr.ts'
import { ClusterProcs } from './procs/cluster-procs.ts'
import { startEtcd } from './procs/etcd-process.ts'
import type { EtcdProcess } from './procs/etcd-process.ts'
import type { HostProcess } from './procs/host-process.ts'
import type { LoadReport, ProcessInfo } from './procs/host-protocol.ts'
import { Progress, fmt } from './progress.ts'
import { machineInfo } from './results.ts'
import { REPLICATION_SCHEMA, replicationLegend, replicationRows } from './replication-results.ts'
import type { CatchUpFigures, CommandFigures, FailoverFigures, FailoverRun, ReplicationResults } from './replication-results.ts'
import { renderTable } from './summary-table.ts'

export interface ReplicationBenchOptions {
  readonly hosts: number
  /** An etcd endpoint, or null: one is started for the run. */
  readonly etcd: string | null
  /** Counters the command phase spreads its calls over. */
  readonly agents: number
  readonly workers: number
  /** Command phase: time each cluster is driven, in all (split into slices). */
  readonly durationMs: number
  /** Calls in flight per host in the command phase. */
  readonly concurrency: number
  readonly failovers: number
  readonly leaseTtlS: number
  /** Agent state written before the catch-up phase, MiB; 0 skips the phase. */
  readonly catchUpMiB: number
  /** The hosts' `durability` (createHost option); null: the default. */
  readonly durability: 'disk' | 'os' | null
  readonly profileDir: string | null
  readonly json: string | null
  readonly plain: boolean
  /** Module specifier of the cluster plugin the hosts load. Default `shoal/cluster`. */
  readonly clusterModule?: string
}

const agentsUrl = new URL('./bench-agents.js', import.meta.url).href
const kSlices = 4
const kBlobBytes = 8 * 1024
const MiB = 1024 * 1024
const kSettleMs = 300_000

interface ReplStats {
  messages: number
  cluster: {
    shardsServed: number
    movedIn: number
    leader: string | null
    links: { bytesIn: number, framesOut: number, peers: ReadonlyArray<{ batchesOut: number }> }
    replication?: { shardsWithReplicasInSync: number, shardsFailoverReady: number, copiesInSync: number, segmentsOut: number, unitsOut?: number, replicaApplies?: number, fellOut: number, snapshotsIn: number, snapshotBytesIn: number }
  }
}

const load1 = (): number => loadavg()[0]!
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export function replicationLayout (hosts: number, workers: number): string {
  const threads = hosts * (workers + 1)
  return `${hosts} host processes × (main + ${workers} worker${workers === 1 ? '' : 's'}) = ${threads} threads per cluster (two clusters during the command phase), + etcd + this driver, on ${availableParallelism()} cores`
}

/**
 * Until every shard is served and (replicas > 1) has a replica in sync that its owner's
 * in-sync record in etcd names (a failover needs the record), summed over the running hosts.
 */
async function inSync (c: ClusterProcs, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let served = 0
    let replicated = 0
    for (const h of c.running()) {
      const s = await h.stats<ReplStats>()
      served += s.cluster.shardsServed
      replicated += Math.min(s.cluster.replication?.shardsWithReplicasInSync ?? 0, s.cluster.replication?.shardsFailoverReady ?? 0)
    }
    if (served === SHARDS && replicated === SHARDS) return
    if (Date.now() > deadline) throw new Error(`not in sync after ${timeoutMs} ms: ${served} shards served, ${replicated} with a replica in sync, of ${SHARDS}`)
    await sleep(50)
  }
}

async function cpuUs (hosts: readonly HostProcess[]): Promise<number> {
  const infos = await Promise.all(hosts.map((h) => h.command<ProcessInfo>({ op: 'process' })))
  return infos.reduce((n, p) => n + p.cpuUs, 0)
}

interface ReplSums { segmentsOut: number, unitsOut: number, replicaApplies: number, linkFramesOut: number, linkBatchesOut: number, fellOut: number }

const kNoSums: ReplSums = { segmentsOut: 0, unitsOut: 0, replicaApplies: 0, linkFramesOut: 0, linkBatchesOut: 0, fellOut: 0 }

async function replicationSum (hosts: readonly HostProcess[]): Promise<ReplSums> {
  const all = await Promise.all(hosts.map((h) => h.stats<ReplStats>()))
  return {
    segmentsOut: all.reduce((n, s) => n + (s.cluster.replication?.segmentsOut ?? 0), 0),
    unitsOut: all.reduce((n, s) => n + (s.cluster.replication?.unitsOut ?? 0), 0),
    replicaApplies: all.reduce((n, s) => n + (s.cluster.replication?.replicaApplies ?? 0), 0),
    linkFramesOut: all.reduce((n, s) => n + s.cluster.links.framesOut, 0),
    linkBatchesOut: all.reduce((n, s) => n + s.cluster.links.peers.reduce((m, p) => m + p.batchesOut, 0), 0),
    fellOut: all.reduce((n, s) => n + (s.cluster.replication?.fellOut ?? 0), 0)
  }
}

/** One cluster under command load, summed over its slices. */
class CommandRun {
  readonly replicas: number
  readonly c: ClusterProcs
  owned = new Map<string, string[]>()
  calls = 0
  callsPerSec = 0
  errors = 0
  cpuUs = 0
  wallMs = 0
  readonly latency = new HdrLatency()
  loadBefore = 0
  loadAfter = 0
  private statsBefore: ReplSums = kNoSums
  private statsAfter: ReplSums = kNoSums
  private perSecByHost = new Map<string, { calls: number, ms: number }>()

  constructor (replicas: number, c: ClusterProcs) {
    this.replicas = replicas
    this.c = c
  }

  async begin (): Promise<void> {
    this.statsBefore = await replicationSum(this.c.running())
  }

  async slice (ms: number, concurrency: number, seq: number): Promise<void> {
    const hosts = this.c.running()
    const cpu0 = await cpuUs(hosts)
    const t0 = performance.now()
    if (seq === 0) this.loadBefore = load1()
    await Promise.all(hosts.map((h) => h.command({
      op: 'loadStart', id: `cmd${seq}`, agents: { type: 'counter', keys: this.owned.get(h.name)! }, method: 'add', payload: 1, concurrency, latency: true
    })))
    await sleep(ms)
    const reports = await Promise.all(hosts.map((h) => h.loadStop(`cmd${seq}`) as Promise<LoadReport>))
    this.wallMs += performance.now() - t0
    this.cpuUs += await cpuUs(hosts) - cpu0
    this.loadAfter = load1()
    reports.forEach((r, i) => {
      this.calls += r.calls
      this.errors += r.errors
      const p = this.perSecByHost.get(hosts[i]!.name) ?? { calls: 0, ms: 0 }
      p.calls += r.calls
      p.ms += r.elapsedMs
      this.perSecByHost.set(hosts[i]!.name, p)
      if (r.latencyHdr !== undefined) {
        const h = decodeFromCompressedBase64(r.latencyHdr)
        this.latency.histogram.add(h)
        h.destroy()
      }
    })
  }

  async end (): Promise<void> {
    this.statsAfter = await replicationSum(this.c.running())
  }

  figures (): CommandFigures {
    let perSec = 0
    for (const p of this.perSecByHost.values()) perSec += p.ms > 0 ? p.calls / (p.ms / 1000) : 0
    const cpuS = this.cpuUs / 1e6
    return {
      replicas: this.replicas,
      calls: this.calls,
      callsPerSec: perSec,
      latency: this.latency.summary(),
      errors: this.errors,
      cores: this.wallMs > 0 ? cpuS / (this.wallMs / 1000) : 0,
      callsPerCpuSec: cpuS > 0 ? this.calls / cpuS : 0,
      segmentsOut: this.statsAfter.segmentsOut - this.statsBefore.segmentsOut,
      unitsOut: this.statsAfter.unitsOut - this.statsBefore.unitsOut,
      replicaApplies: this.statsAfter.replicaApplies - this.statsBefore.replicaApplies,
      linkFramesOut: this.statsAfter.linkFramesOut - this.statsBefore.linkFramesOut,
      linkBatchesOut: this.statsAfter.linkBatchesOut - this.statsBefore.linkBatchesOut,
      fellOut: this.statsAfter.fellOut - this.statsBefore.fellOut,
      load: { before: this.loadBefore, after: this.loadAfter }
    }
  }
}

/** The keys of `type` each running host owns, of `{prefix}0 … {prefix}{count-1}`. */
async function ownedKeys (c: ClusterProcs, type: string, prefix: string, count: number): Promise<Map<string, string[]>> {
  const hosts = c.running()
  const owners = await hosts[0]!.owners({ type, keys: { prefix, count } })
  const owned = new Map<string, string[]>(hosts.map((h) => [h.name, []]))
  owners.forEach((owner, i) => owned.get(owner ?? '')?.push(`${prefix}${i}`))
  return owned
}

function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function failoverOnce (c: ClusterProcs, victim: string, leaseTtlS: number, progress: Progress): Promise<FailoverRun> {
  const loadBefore = load1()
  const survivor = c.running().find((h) => h.name !== victim)!
  const wasLeader = (await survivor.stats<ReplStats>()).cluster.leader === victim
  const owners = await survivor.owners({ type: 'counter', keys: { prefix: 'f', count: 512 } })
  const i = owners.indexOf(victim)
  if (i < 0) throw new Error(`failover: ${victim} owns none of 512 counters`)
  const key = `f${i}`
  await c.host(victim).call('counter', key, 'add', 1) // resident there, with a write its replica has
  const t0 = performance.now()
  await c.kill(victim)
  let firstAnswerMs = -1
  let mapMs = -1
  const deadline = t0 + Math.max(60_000, leaseTtlS * 10_000)
  while (performance.now() < deadline) {
    if (mapMs < 0) {
      const [owner] = await survivor.owners({ type: 'counter', keys: [key] })
      if (owner !== victim) mapMs = performance.now() - t0
    }
    try {
      await survivor.call('counter', key, 'get', undefined, { timeoutMs: 1000 })
      firstAnswerMs = performance.now() - t0
      if (mapMs < 0) mapMs = firstAnswerMs
      break
    } catch {
      await sleep(20)
    }
  }
  if (firstAnswerMs < 0) throw new Error(`failover: ${key} (of ${victim}) did not answer within ${Math.round(deadline - t0)} ms of the kill`)
  const loadAfter = load1()
  await c.start([victim])
  const tr = performance.now()
  await c.settled(kSettleMs)
  await inSync(c, kSettleMs)
  const rejoinMs = performance.now() - tr
  progress.log(`  failover: kill -9 ${victim}${wasLeader ? ' (the leader)' : ''} → ${key} answered from its new owner after ${Math.round(firstAnswerMs)} ms ` +
    `(the surviving host's map named a new owner after ${Math.round(mapMs)} ms; lease TTL ${leaseTtlS} s); restarted, in sync again after ${(rejoinMs / 1000).toFixed(1)} s; load ${loadBefore.toFixed(1)}`)
  return { killed: victim, wasLeader, firstAnswerMs, mapMs, rejoinMs, load: { before: loadBefore, after: loadAfter } }
}

async function catchUp (c: ClusterProcs, id: string, o: ReplicationBenchOptions, progress: Progress): Promise<Omit<CatchUpFigures, 'heldBytes' | 'mbPerSec' | 'rawShards' | 'rawMs' | 'rawMbPerSec'>> {
  const blobs = Math.max(1, Math.round(o.catchUpMiB * MiB / kBlobBytes))
  const owned = await ownedKeys(c, 'blob', 'b', blobs)
  const tf = performance.now()
  const fills = await Promise.all(c.running().map((h) => h.callEach({ type: 'blob', keys: owned.get(h.name)! }, 'fill', kBlobBytes, 32)))
  for (const f of fills) if (f.errors !== 0) throw new Error(`catch-up fill: ${f.errors} calls failed, e.g. ${f.errorSamples[0]?.message}`)
  await inSync(c, kSettleMs)
  progress.log(`  catch-up: ${fmt(blobs)} blobs of ${kBlobBytes / 1024} KiB (${(blobs * kBlobBytes / MiB).toFixed(0)} MiB) written and replicated in ${((performance.now() - tf) / 1000).toFixed(1)} s`)
  const before = await Promise.all(c.running().map((h) => h.stats<ReplStats>()))
  const loadBefore = load1()
  await c.start([id])
  const t0 = performance.now()
  await c.settled(kSettleMs)
  await inSync(c, kSettleMs)
  const elapsedMs = performance.now() - t0
  const loadAfter = load1()
  const joined = await c.host(id).stats<ReplStats>()
  const after = await Promise.all(c.running().map((h) => h.stats<ReplStats>()))
  const sum = (all: readonly ReplStats[], pick: (r: NonNullable<ReplStats['cluster']['replication']>) => number): number =>
    all.reduce((n, s) => n + (s.cluster.replication === undefined ? 0 : pick(s.cluster.replication)), 0)
  const bytesIn = joined.cluster.links.bytesIn
  return {
    host: id,
    stateBytes: blobs * kBlobBytes,
    blobBytes: kBlobBytes,
    bytesIn,
    snapshotBytes: sum(after, (r) => r.snapshotBytesIn) - sum(before, (r) => r.snapshotBytesIn),
    snapshots: sum(after, (r) => r.snapshotsIn) - sum(before, (r) => r.snapshotsIn),
    shardsMovedIn: joined.cluster.movedIn,
    copiesInSync: joined.cluster.replication?.copiesInSync ?? 0,
    elapsedMs,
    load: { before: loadBefore, after: loadAfter }
  }
}

/** The baseline: every non-empty shard range of `from` exported and imported into a fresh store, one after another. */
async function rawRangeCopy (from: string, to: string, durability: 'disk' | 'os'): Promise<{ bytes: number, shards: number, ms: number }> {
  const src = new LmdbStore({ path: from, durability })
  mkdirSync(to, { recursive: true })
  const dst = new LmdbStore({ path: to, durability })
  try {
    let bytes = 0
    let shards = 0
    const t0 = performance.now()
    for (let s = 0; s < SHARDS; s++) {
      const chunks = [...src.exportShard(s)]
      if (chunks.length === 0) continue
      for (const ch of chunks) bytes += ch.length
      shards++
      await dst.importShard(s, chunks, true)
    }
    return { bytes, shards, ms: performance.now() - t0 }
  } finally {
    await src.close()
    await dst.close()
  }
}

export async function runReplicationBench (o: ReplicationBenchOptions, out: NodeJS.WriteStream = process.stdout): Promise<ReplicationResults> {
  const startedAt = new Date()
  const progress = new Progress({ out, tty: o.plain ? false : out.isTTY === true })
  const layout = replicationLayout(o.hosts, o.workers)
  progress.log(`Shoal replication bench: ${o.hosts} hosts, ${layout}; Node ${process.version}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  const scratch = mkdtempSync(join(tmpdir(), 'shoal-repl-bench-'))
  if (o.profileDir !== null) mkdirSync(o.profileDir, { recursive: true })
  let etcd: EtcdProcess | null = null
  const clusters: ClusterProcs[] = []
  const onSignal = (signal: NodeJS.Signals): void => {
    void Promise.all(clusters.map((c) => c.close(5_000))).finally(async () => {
      await etcd?.stop()
      rmSync(scratch, { recursive: true, force: true })
      process.exit(signal === 'SIGINT' ? 130 : 143)
    })
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    let endpoint = o.etcd
    if (endpoint === null) {
      etcd = await startEtcd()
      endpoint = etcd.endpoint
    }
    const make = async (replicas: number, name: string): Promise<ClusterProcs> => {
      const c = await ClusterProcs.create({
        agents: agentsUrl,
        workers: o.workers,
        membership: { etcd: { hosts: [endpoint], leaseTtlS: o.leaseTtlS, minMembers: o.hosts } },
        cluster: { replicas },
        ...(o.durability === null ? {} : { host: { durability: o.durability } }),
        clusterModule: o.clusterModule ?? 'shoal/cluster',
        rootDir: join(scratch, name),
        ...(o.profileDir === null ? {} : { execArgv: () => ['--cpu-prof', '--cpu-prof-dir', resolve(o.profileDir!)] }),
        readyTimeoutMs: 120_000
      })
      clusters.push(c)
      return c
    }
    const r2 = await make(2, 'replicas-2')
    const r1 = await make(1, 'replicas-1')
    const ids = (p: string): string[] => Array.from({ length: o.hosts }, (_, i) => `${p}${i}`)
    const t0 = performance.now()
    // one cluster after the other: six processes loading at once on a busy machine can miss etcd's deadlines
    await r2.start(ids('r'))
    await r2.settled(kSettleMs)
    await inSync(r2, kSettleMs)
    await r1.start(ids('u'))
    await r1.settled(kSettleMs)
    progress.log(`  start: two clusters of ${o.hosts} ready, settled, replicas in sync in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

    // ---- commands: replicas 2 against replicas 1, slices alternating ----
    const on = new CommandRun(2, r2)
    const off = new CommandRun(1, r1)
    for (const run of [on, off]) {
      run.owned = await ownedKeys(run.c, 'counter', 'k', o.agents)
      const warm = await Promise.all(run.c.running().map((h) => h.callEach({ type: 'counter', keys: run.owned.get(h.name)! }, 'add', 1, 64)))
      for (const w of warm) if (w.errors !== 0) throw new Error(`warm-up: ${w.errors} calls failed, e.g. ${w.errorSamples[0]?.message}`)
      await run.begin()
    }
    const sliceMs = o.durationMs / kSlices
    for (let k = 0; k < kSlices; k++) {
      for (const run of k % 2 === 0 ? [on, off] : [off, on]) await run.slice(sliceMs, o.concurrency, k)
    }
    await on.end()
    await off.end()
    const replicated = on.figures()
    const unreplicated = off.figures()
    progress.log(`  commands: replicas 2 ${fmt(replicated.callsPerSec)}/s p50 ${replicated.latency.p50Us} µs p99 ${replicated.latency.p99Us} µs; ` +
      `replicas 1 ${fmt(unreplicated.callsPerSec)}/s p50 ${unreplicated.latency.p50Us} µs p99 ${unreplicated.latency.p99Us} µs; ` +
      `${(replicated.callsPerSec / unreplicated.callsPerSec).toFixed(2)}×; load ${replicated.load.before.toFixed(1)}`)
    await r1.close(60_000)
    clusters.splice(clusters.indexOf(r1), 1)

    // ---- failover: kill -9 of each host in turn ----
    let failover: FailoverFigures | null = null
    if (o.failovers > 0) {
      const runs: FailoverRun[] = []
      for (let k = 0; k < o.failovers; k++) runs.push(await failoverOnce(r2, `r${k % o.hosts}`, o.leaseTtlS, progress))
      const ms = runs.map((x) => x.firstAnswerMs)
      failover = { leaseTtlS: o.leaseTtlS, runs, medianMs: median(ms), maxMs: Math.max(...ms) }
    }

    // ---- catch-up of a new host, against a raw LMDB range copy ----
    let catchUpFigures: CatchUpFigures | null = null
    if (o.catchUpMiB > 0) {
      const id = `r${o.hosts}`
      const joined = await catchUp(r2, id, o, progress)
      await r2.close(60_000)
      clusters.splice(clusters.indexOf(r2), 1)
      // the bytes it holds now (its ranges, as exported) are what both the catch-up and the baseline copied
      const raw = await rawRangeCopy(r2.dataDir(id), join(scratch, 'raw-copy'), o.durability ?? 'disk')
      const mbPerSec = raw.bytes / MiB / (joined.elapsedMs / 1000)
      const rawMbPerSec = raw.bytes / MiB / (raw.ms / 1000)
      catchUpFigures = { ...joined, heldBytes: raw.bytes, mbPerSec, rawShards: raw.shards, rawMs: raw.ms, rawMbPerSec }
      progress.log(`  catch-up: ${id} holds ${(raw.bytes / MiB).toFixed(1)} MiB (${raw.shards} ranges), in sync ${(joined.elapsedMs / 1000).toFixed(1)} s after it started: ${mbPerSec.toFixed(2)} MiB/s ` +
        `(${(joined.bytesIn / MiB).toFixed(1)} MiB came over its links); raw LMDB range copy of the same ranges ${(raw.ms / 1000).toFixed(2)} s: ${rawMbPerSec.toFixed(2)} MiB/s`)
    }

    const parts: Omit<ReplicationResults, 'rows'> = {
      schema: REPLICATION_SCHEMA,
      startedAt: startedAt.toISOString(),
      elapsedMs: Date.now() - startedAt.getTime(),
      machine: machineInfo(),
      layout,
      hosts: o.hosts,
      workersPerHost: o.workers,
      durability: o.durability ?? 'disk (default)',
      agents: o.agents,
      concurrency: o.concurrency,
      durationMs: o.durationMs,
      replicated,
      unreplicated,
      failover,
      catchUp: catchUpFigures
    }
    const results: ReplicationResults = { ...parts, rows: replicationRows(parts) }
    out.write([
      '',
      `Shoal replication bench — ${o.hosts} hosts on etcd, ${fmt(o.agents)} counters, durability ${results.durability} · ${layout} · Node ${results.machine.node} · ${results.machine.cpuModel}`,
      renderTable(results.rows),
      ...replicationLegend.map((l) => `  · ${l}`),
      `  · run took ${(results.elapsedMs / 1000).toFixed(1)} s; load at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
      ''
    ].join('\n'))
    if (o.json !== null) {
      mkdirSync(dirname(resolve(o.json)), { recursive: true })
      writeFileSync(o.json, `${JSON.stringify(results, null, 2)}\n`)
      out.write(`results: ${o.json}\n`)
    }
    return results
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await Promise.all(clusters.map((c) => c.close(10_000).catch(() => {})))
    await etcd?.stop()
    rmSync(scratch, { recursive: true, force: true })
  }
}
