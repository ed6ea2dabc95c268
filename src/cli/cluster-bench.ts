/**
 * `shoal bench --hosts N`: a cluster of N host processes on 127.0.0.1 (procs/), static
 * membership unless `--etcd URL`, every figure beside a baseline from the same run
 * (cluster-results.ts). The run, in order:
 *
 *   start      fork the hosts (each its own LMDB directory under one temp root, or
 *              `--data-dir`), wait until every one has settled
 *   activate   each host reads the agents it owns (`get`), so that no timed phase pays
 *              for first activations
 *   same-host  every host casts `add(1)` to agents it owns, paced by barrier calls to
 *              a probe agent on each of its own threads
 *   cross-host every host casts to agents the others own, paced by probes on their
 *              threads (a call queued behind the casts, on the same path, answers once
 *              they ran); the two kinds alternate in 4 slices each, `--duration` in all
 *              per kind, so that the machine's other load falls on both alike; then
 *              every counter is read: casts issued − counted = lost
 *   latency    host 0 calls a query on an agent of host 1, one in flight, in slices
 *              interleaved with a bare `ws` → uWebSockets.js echo between the same two
 *              processes, and with same-host calls
 *   join       (etcd only) one more host starts; time until every host has settled
 *   link       after the hosts closed: bench/link.bench.ts in processes of its own, a
 *              LinkHub link against the raw batched ws → uWS link (skipped by --no-baselines)
 *
 * The hosts are children; this process only drives them over IPC, and the load is
 * generated inside each host (procs/child-commands.ts). `--profile DIR` runs every host
 * with `--cpu-prof` (written when it closes).
 *
 * The cluster plugin is loaded by the children as `shoal/cluster` (this package's own
 * export), and the link bench is spawned by path: src/ imports neither (the layers).
 */
import { fork } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { agentKey } from './bench-ids.ts'
import type { CastPhase, ClusterResults, ClusterSample, HostFigures, JoinFigures, LinkFigures } from './cluster-results.ts'
import { Latency } from './latency.ts'
import type { LatencySummary } from './latency.ts'
import { ClusterProcs } from './procs/cluster-procs.ts'
import type { HostProcess } from './procs/host-process.ts'
import type { CastsReport, ProcessInfo } from './procs/host-protocol.ts'
import { Progress, fmt } from './progress.ts'
import { SCHEMA, machineInfo, summarize, summaryRows, writeJson } from './results.ts'
import type { BenchResults, RunConfig } from './results.ts'
import { writeHtml } from './report-html.ts'
import { renderSummary } from './summary-table.ts'
import { Timeline } from './timeline.ts'

export interface ClusterBenchOptions {
  readonly hosts: number
  /** An etcd endpoint, or null for static membership. */
  readonly etcd: string | null
  readonly agents: number
  /** Workers per host process. */
  readonly workers: number
  readonly durationMs: number
  readonly seed: number
  /** Run the link-alone bench (the raw ws round trip is always measured: it is the remote call's baseline). */
  readonly baselines: boolean
  /** Root of the hosts' data directories, kept; null: a temp directory, removed. */
  readonly dataDir: string | null
  /** Write a CPU profile of every host process here. */
  readonly profileDir: string | null
  /** Round trips of each kind in the latency phase. */
  readonly rounds: number
  readonly json: string | null
  readonly html: string | null
  readonly latest: string | null
  readonly plain: boolean
  /** Module specifier of the cluster plugin the hosts load. Default `shoal/cluster`. */
  readonly clusterModule?: string
}

const agentsUrl = new URL('./bench-agents.js', import.meta.url).href
const linkBench = fileURLToPath(new URL('../../bench/link.bench.js', import.meta.url))
const kSampleMs = 500
const kSlices = 10
/** Slices of each kind of cast phase, alternating (--duration split among them). */
const kCastSlices = 4

/** Samples in µs, summarized as the single-host bench's histograms are. */
function summarizeUs (samples: readonly number[]): LatencySummary {
  const l = new Latency()
  for (const s of samples) l.histogram.record(Math.max(1, Math.round(s * 1000)))
  return l.summary()
}

export function clusterLayout (hosts: number, workers: number): string {
  const cores = availableParallelism()
  const threads = hosts * (workers + 1)
  return `${hosts} host processes × (main + ${workers} worker${workers === 1 ? '' : 's'}) = ${threads} threads, + this driver, on ${cores} cores` +
    (threads + 1 > cores ? ' (over-subscribed)' : '')
}

/** Each host's messages/s and link frames/s over time, sampled over IPC. */
class ClusterTimeline {
  readonly samples: ClusterSample[] = []
  private timer: NodeJS.Timeout | null = null
  private busy = false
  private readonly last = new Map<string, { t: number, messages: number, framesIn: number }>()
  private readonly procs: ClusterProcs
  private readonly timeline: Timeline
  /** The phase running, as the samples are tagged. */
  current = 'start'

  constructor (procs: ClusterProcs, timeline: Timeline) {
    this.procs = procs
    this.timeline = timeline
  }

  start (): void {
    this.timer = setInterval(() => { void this.sample() }, kSampleMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  private async sample (): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      const t = this.timeline.now()
      const phase = this.current
      const hosts = await Promise.all(this.procs.running().map(async (h) => {
        const s = await h.stats<{ messages: number, cluster?: { links?: { framesIn?: number } } }>()
        const framesIn = s.cluster?.links?.framesIn ?? 0
        const prev = this.last.get(h.name)
        this.last.set(h.name, { t, messages: s.messages, framesIn })
        const dt = prev === undefined ? 0 : (t - prev.t) / 1000
        return {
          id: h.name,
          messagesPerSec: prev === undefined || dt <= 0 ? 0 : (s.messages - prev.messages) / dt,
          linkFramesInPerSec: prev === undefined || dt <= 0 ? 0 : (framesIn - prev.framesIn) / dt
        }
      }))
      this.samples.push({ t, phase, hosts })
    } catch {
      // a host closing or joining: skip this sample
    } finally {
      this.busy = false
    }
  }
}

async function cpu (hosts: readonly HostProcess[]): Promise<number[]> {
  return (await Promise.all(hosts.map((h) => h.command<ProcessInfo>({ op: 'process' })))).map((p) => p.cpuUs)
}

/** Casts in one slice, per host: how many, the host's own timing, and its CPU time. */
interface CastSlice {
  readonly reports: readonly CastsReport[]
  readonly cpuUs: readonly number[]
  readonly wallMs: number
}

/** Casts from every host at once for `durationMs`; `targets(h)` are the keys it casts to, `probes(h)` the barrier agents. */
async function castSlice (hosts: readonly HostProcess[], targets: (h: HostProcess) => string[], probes: (h: HostProcess) => string[], durationMs: number, seed: number): Promise<CastSlice> {
  const cpu0 = await cpu(hosts)
  const t0 = performance.now()
  const reports = await Promise.all(hosts.map((h, i) => h.command<CastsReport>({
    op: 'casts',
    agents: { type: 'counter', keys: targets(h) },
    method: 'add',
    payload: 1,
    probes: { type: 'probe', keys: probes(h) },
    probeMethod: 'ping',
    durationMs,
    seed: seed + i
  })))
  const wallMs = performance.now() - t0
  const cpu1 = await cpu(hosts)
  return { reports, cpuUs: cpu1.map((x, i) => x - cpu0[i]!), wallMs }
}

/** The slices of one kind summed: each host's casts over its own casting time, summed over the hosts. */
function castPhase (hosts: readonly HostProcess[], slices: readonly CastSlice[]): CastPhase {
  const perHost = hosts.map((h, i) => {
    let casts = 0
    let ms = 0
    for (const s of slices) {
      casts += s.reports[i]!.casts
      ms += s.reports[i]!.elapsedMs
    }
    return { id: h.name, casts, castsPerSec: ms > 0 ? casts / (ms / 1000) : 0 }
  })
  const wallS = slices.reduce((n, s) => n + s.wallMs, 0) / 1000
  const cpuS = slices.reduce((n, s) => n + s.cpuUs.reduce((m, x) => m + x, 0), 0) / 1e6
  const casts = perHost.reduce((n, h) => n + h.casts, 0)
  return {
    casts,
    castsPerCpuSec: cpuS > 0 ? casts / cpuS : 0,
    castsPerSec: perHost.reduce((n, h) => n + h.castsPerSec, 0),
    perHost,
    cpuPerHost: hosts.map((h, i) => ({ id: h.name, cores: slices.reduce((n, s) => n + s.cpuUs[i]!, 0) / 1e6 / wallS }))
  }
}

/** One probe agent per (host, thread): keys `probe-i` until every thread of every host has one. */
async function findProbes (c: ClusterProcs, hosts: readonly HostProcess[], threads: number): Promise<Map<string, string[]>> {
  const found = new Map<string, Map<number, string>>(hosts.map((h) => [h.name, new Map()]))
  const first = hosts[0]!
  for (let i = 0; i < 100_000; i += 64) {
    const keys = Array.from({ length: 64 }, (_, j) => `probe-${i + j}`)
    const owners = await first.owners({ type: 'probe', keys })
    const threadIds = await Promise.all(keys.map((k, j) => c.host(owners[j]!).call<number>('probe', k, 'thread')))
    keys.forEach((k, j) => {
      const byThread = found.get(owners[j]!)
      if (byThread !== undefined && !byThread.has(threadIds[j]!)) byThread.set(threadIds[j]!, k)
    })
    if ([...found.values()].every((m) => m.size >= threads)) break
  }
  for (const [id, m] of found) if (m.size < threads) throw new Error(`found probe agents on ${m.size} of ${threads} threads of ${id}`)
  return new Map([...found].map(([id, m]) => [id, [...m.values()]]))
}

async function runLinkBench (scratch: string): Promise<{ link: LinkFigures | null, note: string | null }> {
  if (!existsSync(linkBench)) return { link: null, note: `the link bench is not built (${linkBench})` }
  const file = join(scratch, 'link.json')
  const code = await new Promise<number | null>((resolveExit) => {
    const child = fork(linkBench, ['--batches', '1024', '--rounds', '0', '--envelopes', '1048576', '--reps', '3', '--json', file], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    child.once('exit', (c) => resolveExit(c))
  })
  if (code !== 0 || !existsSync(file)) return { link: null, note: `the link bench exited with ${code}` }
  const rows = (JSON.parse(readFileSync(file, 'utf8')) as { rows: Array<{ name: string, value: number, baseline?: { value: number } }> }).rows
  const row = (prefix: string): { value: number, baseline?: { value: number } } => {
    const r = rows.find((x) => x.name.startsWith(prefix))
    if (r === undefined) throw new Error(`the link bench did not report "${prefix}"`)
    return r
  }
  const sent = row('link envelopes decoded/s, 1024 per message, encoded by the sender')
  const recv = row('receiver: envelopes decoded per CPU-second, 1024 per message')
  return {
    link: {
      msgsPerSec: sent.value,
      preEncodedMsgsPerSec: row('link envelopes decoded/s, 1024 per message, pre-encoded frames').value,
      rawMsgsPerSec: sent.baseline?.value ?? 0,
      recvPerCpuSec: recv.value,
      rawRecvPerCpuSec: recv.baseline?.value ?? 0
    },
    note: null
  }
}

export async function runClusterBench (o: ClusterBenchOptions, out: NodeJS.WriteStream = process.stdout): Promise<BenchResults> {
  const startedAt = new Date()
  const timeline = new Timeline(performance.now())
  const progress = new Progress({ out, tty: o.plain ? false : out.isTTY === true })
  const layout = clusterLayout(o.hosts, o.workers)
  const membership = o.etcd === null ? 'static' as const : 'etcd' as const
  progress.log(`Shoal cluster bench: ${o.hosts} hosts (${membership}${o.etcd === null ? '' : ` at ${o.etcd}`}), ${fmt(o.agents)} agents; ${layout}; Node ${process.version}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)

  const scratch = mkdtempSync(join(tmpdir(), 'shoal-cluster-bench-'))
  const root = o.dataDir === null ? join(scratch, 'data') : resolve(o.dataDir)
  mkdirSync(root, { recursive: true })
  if (o.profileDir !== null) mkdirSync(o.profileDir, { recursive: true })
  const removeScratch = (): void => rmSync(scratch, { recursive: true, force: true })
  const ids = Array.from({ length: o.hosts }, (_, i) => `h${i}`)
  const c = await ClusterProcs.create({
    agents: agentsUrl,
    workers: o.workers,
    membership: o.etcd === null ? { static: ids } : { etcd: { hosts: [o.etcd], minMembers: o.hosts } },
    clusterModule: o.clusterModule ?? 'shoal/cluster',
    rootDir: root,
    ...(o.profileDir === null ? {} : { execArgv: () => ['--cpu-prof', '--cpu-prof-dir', resolve(o.profileDir!)] }),
    readyTimeoutMs: 120_000
  })
  const sampler = new ClusterTimeline(c, timeline)
  const enter = (name: string): void => {
    timeline.enter(name)
    sampler.current = name
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    void c.close(5_000).finally(() => {
      removeScratch()
      process.exit(signal === 'SIGINT' ? 130 : 143)
    })
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    enter('start')
    const t0 = performance.now()
    const hosts = await c.start(ids)
    await c.settled(120_000)
    const startMs = performance.now() - t0
    sampler.start()
    progress.log(`  start: ${o.hosts} host processes ready and settled in ${(startMs / 1000).toFixed(1)} s`)

    const allKeys = Array.from({ length: o.agents }, (_, i) => agentKey(i))
    const owners = await hosts[0]!.owners({ type: 'counter', keys: { prefix: 'k', count: o.agents } })
    const owned = new Map<string, string[]>(ids.map((id) => [id, []]))
    owners.forEach((owner, i) => owned.get(owner!)?.push(allKeys[i]!))
    const probes = await findProbes(c, hosts, Math.max(1, o.workers))

    enter('activate')
    const ta = performance.now()
    const before = await Promise.all(hosts.map((h) => h.callEach({ type: 'counter', keys: owned.get(h.name)! }, 'get', undefined, 256)))
    let counted0 = 0
    for (const r of before) {
      if (r.errors !== 0) throw new Error(`activation: ${r.errors} calls failed, e.g. ${r.errorSamples[0]?.message}`)
      for (const v of r.values) counted0 += v as number
    }
    progress.log(`  activate: ${fmt(o.agents)} agents in ${((performance.now() - ta) / 1000).toFixed(1)} s (${ids.map((id) => `${id} ${fmt(owned.get(id)!.length)}`).join(', ')})`)

    // same-host and cross-host in alternating slices, so that the machine's other load falls on both alike
    const others = (h: HostProcess, of: Map<string, string[]>): string[] => ids.filter((id) => id !== h.name).flatMap((id) => of.get(id)!)
    const sameSlices: CastSlice[] = []
    const crossSlices: CastSlice[] = []
    const sliceMs = o.durationMs / kCastSlices
    for (let k = 0; k < kCastSlices; k++) {
      for (const kind of k % 2 === 0 ? ['same', 'cross'] : ['cross', 'same']) {
        if (kind === 'same') {
          enter('same-host casts')
          sameSlices.push(await castSlice(hosts, (h) => owned.get(h.name)!, (h) => probes.get(h.name)!, sliceMs, o.seed + k * 16))
        } else {
          enter('cross-host casts')
          crossSlices.push(await castSlice(hosts, (h) => others(h, owned), (h) => others(h, probes), sliceMs, o.seed + 1000 + k * 16))
        }
      }
    }
    const sameHost = castPhase(hosts, sameSlices)
    const crossHost = castPhase(hosts, crossSlices)
    progress.log(`  same-host casts: ${fmt(sameHost.castsPerSec)} casts/s (${sameHost.perHost.map((p) => `${p.id} ${fmt(p.castsPerSec)}`).join(', ')})`)
    progress.log(`  cross-host casts: ${fmt(crossHost.castsPerSec)} casts/s (${crossHost.perHost.map((p) => `${p.id} ${fmt(p.castsPerSec)}`).join(', ')}), ${(crossHost.castsPerSec / sameHost.castsPerSec).toFixed(2)}× same-host`)

    enter('check')
    const after = await hosts[0]!.callEach({ type: 'counter', keys: allKeys }, 'get', undefined, 256)
    if (after.errors !== 0) throw new Error(`check: ${after.errors} calls failed, e.g. ${after.errorSamples[0]?.message}`)
    let counted = 0
    for (const v of after.values) counted += v as number
    const castsLost = sameHost.casts + crossHost.casts - (counted - counted0)
    progress.log(`  check: ${fmt(counted - counted0)} of ${fmt(sameHost.casts + crossHost.casts)} casts counted`)

    enter('latency')
    const [caller, callee] = [hosts[0]!, hosts[1]!]
    const remoteKey = owned.get(callee.name)![0]!
    const localKey = owned.get(caller.name)![0]!
    const echo = await callee.command<number>({ op: 'rawEchoListen' })
    const remote: number[] = []
    const local: number[] = []
    const raw: number[] = []
    const slice = Math.max(1, Math.ceil(o.rounds / kSlices))
    for (let k = -1; k < kSlices; k++) {
      // the first slice warms every path up and is not counted
      const r = await caller.command<Float64Array>({ op: 'latency', type: 'counter', key: remoteKey, method: 'get', rounds: slice })
      const w = await caller.command<Float64Array>({ op: 'rawRoundTrips', port: echo, rounds: slice })
      const l = await caller.command<Float64Array>({ op: 'latency', type: 'counter', key: localKey, method: 'get', rounds: slice })
      if (k < 0) continue
      remote.push(...r)
      raw.push(...w)
      local.push(...l)
    }
    const remoteCall = summarizeUs(remote)
    const rawWsRoundTrip = summarizeUs(raw)
    const sameHostCall = summarizeUs(local)
    progress.log(`  latency: remote call p50 ${remoteCall.p50Us} µs p99 ${remoteCall.p99Us} µs; raw ws→uWS p50 ${rawWsRoundTrip.p50Us} µs p99 ${rawWsRoundTrip.p99Us} µs; same-host call p50 ${sameHostCall.p50Us} µs`)

    let join_: JoinFigures | null = null
    if (o.etcd !== null) {
      enter('join')
      const id = `h${o.hosts}`
      const tj = performance.now()
      const [joined] = await c.start([id])
      const tr = performance.now()
      await c.settled(300_000)
      const tEnd = performance.now()
      const s = await joined!.stats<{ cluster: { movedIn: number } }>()
      const now = await hosts[0]!.owners({ type: 'counter', keys: { prefix: 'k', count: o.agents } })
      const agentsMoved = now.filter((x) => x === id).length
      const movingMs = tEnd - tr
      join_ = {
        joined: id,
        shardsMoved: s.cluster.movedIn,
        agentsMoved,
        elapsedMs: tEnd - tj,
        movingMs,
        shardsPerSec: s.cluster.movedIn / (movingMs / 1000),
        agentsPerSec: agentsMoved / (movingMs / 1000)
      }
      progress.log(`  join: ${id} took ${join_.shardsMoved} shards (${fmt(agentsMoved)} agents) in ${(movingMs / 1000).toFixed(1)} s: ${fmt(join_.shardsPerSec)} shards/s`)
    }

    enter('close')
    sampler.stop()
    const running = c.running()
    const finalOwners = await running[0]!.owners({ type: 'counter', keys: { prefix: 'k', count: o.agents } })
    const perHost: HostFigures[] = await Promise.all(running.map(async (h) => {
      const s = await h.stats<{ cluster: { shardsServed: number, forwarded: number, links: { framesIn: number, framesOut: number, bytesIn: number, bytesOut: number } } }>()
      const p = await h.command<ProcessInfo>({ op: 'process' })
      return {
        id: h.name,
        shardsServed: s.cluster.shardsServed,
        agentsOwned: finalOwners.filter((x) => x === h.name).length,
        linkFramesIn: s.cluster.links.framesIn,
        linkFramesOut: s.cluster.links.framesOut,
        linkBytesIn: s.cluster.links.bytesIn,
        linkBytesOut: s.cluster.links.bytesOut,
        forwarded: s.cluster.forwarded,
        rssBytes: p.rssBytes
      }
    }))
    await c.close(60_000)

    let link: LinkFigures | null = null
    let linkNote: string | null = 'skipped (--no-baselines)'
    if (o.baselines) {
      enter('link alone')
      const r = await runLinkBench(scratch)
      link = r.link
      linkNote = r.note
      if (link !== null) progress.log(`  link alone: ${fmt(link.msgsPerSec)} envelopes/s decoded (raw batched ws→uWS ${fmt(link.rawMsgsPerSec)}/s); receiver ${fmt(link.recvPerCpuSec)} per CPU-second`)
      else progress.log(`  link alone: ${linkNote}`)
    }
    timeline.stop()

    const cluster: ClusterResults = {
      hosts: o.hosts,
      workersPerHost: o.workers,
      membership,
      layout,
      agents: o.agents,
      startMs,
      sameHost,
      crossHost,
      castsLost,
      remoteCall,
      sameHostCall,
      rawWsRoundTrip,
      link,
      linkNote,
      join: join_,
      perHost,
      timeline: sampler.samples
    }
    const config: RunConfig = {
      agents: o.agents,
      hosts: o.hosts,
      membership,
      workers: o.workers,
      threadLayout: layout,
      store: 'durable',
      storeRequested: 'durable',
      storeNote: null,
      dataDir: root,
      dataDirKept: o.dataDir !== null,
      durationMs: o.durationMs,
      scenarios: [],
      hotCasts: 0,
      concurrency: 0,
      seed: o.seed
    }
    const finishedAt = new Date()
    const parts = {
      schema: SCHEMA,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      elapsedMs: finishedAt.getTime() - startedAt.getTime(),
      machine: machineInfo(),
      config,
      baselines: null,
      activate: null,
      fanout: null,
      hot: null,
      mixed: null,
      memory: null,
      latency: null,
      gc: {},
      cluster,
      final: { rssBytes: process.memoryUsage.rss(), peakRssBytes: process.resourceUsage().maxRSS * 1024, activeAgents: 0 },
      timeline: [],
      phases: timeline.phases
    } as const
    const results: BenchResults = { ...parts, summary: summarize(parts), rows: summaryRows(parts) }
    out.write(`${renderSummary(results)}\n`)
    const written: string[] = []
    for (const file of [o.latest, o.json]) {
      if (file === null) continue
      writeJson(file, results)
      written.push(file)
    }
    if (o.html !== null) {
      writeHtml(o.html, results)
      written.push(o.html)
    }
    if (written.length !== 0) out.write(`\nresults: ${written.join(', ')}\n`)
    return results
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    sampler.stop()
    await c.close(10_000).catch(() => {})
    removeScratch()
  }
}
