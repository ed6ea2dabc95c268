/**
 * The results of one `shoal bench` run: the JSON written to bench/results/latest.json
 * (and `--json FILE`), the rows of the summary table, the data of the HTML report.
 *
 * Field names are a contract (`schema: 'shoal-bench/1'`): tools and the README read
 * them. Add fields freely; rename or remove only with a new schema version. Rates are
 * per second, latencies in microseconds (`…Us`), sizes in bytes (`…Bytes`), times in
 * milliseconds (`…Ms`). A figure that was not measured in this run is `null`, never 0.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { dirname } from 'node:path'
import type { Baselines } from './baselines.ts'
import { clusterRows } from './cluster-results.ts'
import type { ClusterResults } from './cluster-results.ts'
import type { MemoryResult } from './memory.ts'
import type { ActivateResult } from './scenarios/activate.ts'
import type { FanoutResult } from './scenarios/fanout.ts'
import type { HotResult } from './scenarios/hot.ts'
import type { MixedResult } from './scenarios/mixed.ts'
import type { LatencyResult, OpenLoopSeries, RatePoint } from './scenarios/latency.ts'
import type { ThreadGc } from './bench-agents.ts'
import type { PhaseSpan, Sample } from './timeline.ts'

export const SCHEMA = 'shoal-bench/1'
export const scenarioNames = ['activate', 'fanout', 'hot', 'mixed', 'latency'] as const
export type ScenarioName = typeof scenarioNames[number]

export interface MachineInfo {
  readonly cores: number
  readonly cpuModel: string
  readonly totalMemoryBytes: number
  readonly node: string
  readonly platform: string
}

export interface RunConfig {
  readonly agents: number
  /** Host processes (`--hosts`); 1: this process is the host. */
  readonly hosts: number
  /** The cluster's membership with `--hosts`, else null. */
  readonly membership: 'static' | 'etcd' | null
  readonly workers: number
  /** Who runs on which core, in words. */
  readonly threadLayout: string
  /** The store the engine really used. */
  readonly store: 'durable' | 'memory'
  /** What was asked for (the default is durable). */
  readonly storeRequested: 'durable' | 'memory'
  /** Why `store` differs from `storeRequested`, or null. */
  readonly storeNote: string | null
  /** The host option `durability` of a durable single-host run (`--durability`; absent: disk, or no LMDB). */
  readonly durability?: 'disk' | 'os'
  readonly dataDir: string | null
  /** False: the data directory was a temporary one, removed after the run. */
  readonly dataDirKept: boolean
  readonly durationMs: number
  readonly scenarios: readonly ScenarioName[]
  readonly hotCasts: number
  readonly concurrency: number
  readonly seed: number
}

/**
 * GC pauses per scenario: one entry per thread (main first, threadId 0), the pauses
 * observed while that scenario ran (see observe/gc-pauses.ts).
 */
export type GcByScenario = Partial<Record<ScenarioName, readonly ThreadGc[]>>

export interface FinalMemory {
  readonly rssBytes: number
  /** Peak resident set of the process over the whole run (getrusage maxrss). */
  readonly peakRssBytes: number
  readonly activeAgents: number
}

/** Headline figures, flat; null when the scenario that yields one did not run. */
export interface Summary {
  readonly agents: number
  readonly workers: number
  readonly store: 'durable' | 'memory'
  readonly residentAgents: number | null
  readonly activationsPerSec: number | null
  readonly castsPerSec: number | null
  readonly callsPerSec: number | null
  readonly callP50Us: number | null
  readonly callP99Us: number | null
  readonly callP999Us: number | null
  readonly callRoundTripP50Us: number | null
  readonly commitsPerSec: number | null
  readonly committedStatesPerSec: number | null
  readonly meanBatchSize: number | null
  readonly hotCommandsPerSec: number | null
  readonly hotVariant: 'state' | 'storage' | null
  readonly rssBytes: number
  readonly peakRssBytes: number
  readonly bytesPerAgent: number | null
  readonly heapBytesPerAgent: number | null
  readonly stateBytes: number | null
  readonly bytesPerAgentBeyondState: number | null
  readonly ringMsgsPerSec: number | null
  readonly ringRoundTripP50Us: number | null
  readonly postMessageMsgsPerSec: number | null
  readonly lmdbPutsPerSec: number | null
  readonly castsVsRing: number | null
  readonly callRoundTripVsRing: number | null
  readonly committedStatesVsLmdb: number | null
  /** `--hosts`: the cluster's figures (cluster-results.ts), else null. */
  readonly crossHostCastsPerSec: number | null
  readonly sameHostCastsPerSec: number | null
  readonly remoteCallP50Us: number | null
  readonly remoteCallP99Us: number | null
  readonly rawWsRoundTripP50Us: number | null
  readonly linkMsgsPerSec: number | null
  readonly rawLinkMsgsPerSec: number | null
  readonly shardsMovedPerSec: number | null
  /** The hot agent against raw lmdb-js puts of its own keys and values. */
  readonly hotVsLmdb: number | null
  /** Longest GC pause of any thread during activation / fanout, ms. */
  readonly gcActivateMaxMs: number | null
  readonly gcFanoutMaxMs: number | null
  /** Open loop at 50% of the measured maximum: p99 of queries and commands, µs. */
  readonly queryP99At50Us: number | null
  readonly commandP99At50Us: number | null
  /** Raw disk sync p99 measured in the same run, µs. */
  readonly fsyncP99Us: number | null
  /** Raw lmdb-js put + flush p99, open loop at the 50% command phase's rate, same run, µs. */
  readonly rawCommitP99At50Us: number | null
}

export interface Target {
  readonly op: '>=' | '<='
  readonly value: number
  /**
   * 'ratio' (default with a baseline): value / baseline is checked; 'value' (default
   * without): the value itself; 'over': value − baseline, e.g. ≤ fsync p99 + 2 ms.
   */
  readonly on?: 'ratio' | 'value' | 'over'
}

export interface SummaryRow {
  readonly section: string
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly baseline: { readonly name: string, readonly value: number, readonly unit: string } | null
  /** value / baseline.value */
  readonly ratio: number | null
  /** Checked against the ratio when there is a baseline, else against the value. */
  readonly target: Target | null
  readonly met: boolean | null
  readonly note: string | null
}

export interface BenchResults {
  readonly schema: typeof SCHEMA
  readonly startedAt: string
  readonly finishedAt: string
  readonly elapsedMs: number
  readonly machine: MachineInfo
  readonly config: RunConfig
  readonly baselines: Baselines | null
  readonly activate: ActivateResult | null
  readonly fanout: FanoutResult | null
  readonly hot: HotResult | null
  readonly mixed: MixedResult | null
  readonly latency: LatencyResult | null
  readonly memory: MemoryResult | null
  /** `shoal bench --hosts N`: the cluster's figures; the single-host scenarios are null then. */
  readonly cluster: ClusterResults | null
  readonly gc: GcByScenario
  readonly final: FinalMemory
  readonly summary: Summary
  readonly rows: readonly SummaryRow[]
  readonly timeline: readonly Sample[]
  readonly phases: readonly PhaseSpan[]
}

export function machineInfo (): MachineInfo {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    totalMemoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`
  }
}

type Parts = Omit<BenchResults, 'summary' | 'rows'>

export function summarize (r: Parts): Summary {
  const b = r.baselines
  const ratio = (x: number | null | undefined, y: number | null | undefined): number | null =>
    x == null || y == null || y === 0 ? null : x / y
  const commits = r.fanout ?? r.mixed
  return {
    agents: r.config.agents,
    workers: r.config.workers,
    store: r.config.store,
    residentAgents: r.activate?.residentAgents ?? null,
    activationsPerSec: r.activate?.activationsPerSec ?? null,
    castsPerSec: r.fanout?.castsPerSec ?? null,
    callsPerSec: r.mixed?.callsPerSec ?? null,
    callP50Us: r.mixed?.latency.p50Us ?? null,
    callP99Us: r.mixed?.latency.p99Us ?? null,
    callP999Us: r.mixed?.latency.p999Us ?? null,
    callRoundTripP50Us: r.mixed?.roundTrip.p50Us ?? null,
    commitsPerSec: commits?.commitsPerSec ?? null,
    committedStatesPerSec: r.fanout?.committedStatesPerSec ?? null,
    meanBatchSize: commits?.meanBatchSize ?? null,
    hotCommandsPerSec: r.hot?.commandsPerSec ?? null,
    hotVariant: r.hot?.variant ?? null,
    rssBytes: r.final.rssBytes,
    peakRssBytes: r.final.peakRssBytes,
    bytesPerAgent: r.memory?.rssBytesPerAgent ?? null,
    heapBytesPerAgent: r.memory?.heapBytesPerAgent ?? null,
    stateBytes: r.memory?.stateHeapBytes ?? null,
    bytesPerAgentBeyondState: r.memory?.rssBytesPerAgentBeyondState ?? null,
    ringMsgsPerSec: b?.ring.msgsPerSec ?? null,
    ringRoundTripP50Us: b?.ringRoundTrip.p50Us ?? null,
    postMessageMsgsPerSec: b?.postMessage.msgsPerSec ?? null,
    lmdbPutsPerSec: b?.lmdb.putsPerSec ?? null,
    castsVsRing: ratio(r.fanout?.castsPerSec, b?.ring.msgsPerSec),
    callRoundTripVsRing: ratio(r.mixed?.roundTrip.p50Us, b?.ringRoundTrip.p50Us),
    committedStatesVsLmdb: ratio(r.fanout?.committedStatesPerSec, b?.lmdb.putsPerSec),
    crossHostCastsPerSec: r.cluster?.crossHost.castsPerSec ?? null,
    sameHostCastsPerSec: r.cluster?.sameHost.castsPerSec ?? null,
    remoteCallP50Us: r.cluster?.remoteCall.p50Us ?? null,
    remoteCallP99Us: r.cluster?.remoteCall.p99Us ?? null,
    rawWsRoundTripP50Us: r.cluster?.rawWsRoundTrip.p50Us ?? null,
    linkMsgsPerSec: r.cluster?.link?.msgsPerSec ?? null,
    rawLinkMsgsPerSec: r.cluster?.link?.rawMsgsPerSec ?? null,
    shardsMovedPerSec: r.cluster?.join?.shardsPerSec ?? null,
    hotVsLmdb: ratio(r.hot?.commandsPerSec, b?.lmdbHotKeys.putsPerSec),
    gcActivateMaxMs: longestPause(r.gc.activate),
    gcFanoutMaxMs: longestPause(r.gc.fanout),
    queryP99At50Us: atShare(r.latency?.queries, 0.5)?.latency.p99Us ?? null,
    commandP99At50Us: atShare(r.latency?.commands, 0.5)?.latency.p99Us ?? null,
    fsyncP99Us: r.latency?.fsync.p99Us ?? null,
    rawCommitP99At50Us: r.latency?.rawCommit?.latency.p99Us ?? null
  }
}

/** " (main 1.1, workers 0.9 + 0.9, GC and other threads 0.5 µs)" */
function cpuNote (c: { mainMs: number, workersMs: readonly number[], otherMs: number } | null, n: number): string {
  if (c === null || n === 0) return ''
  const us = (ms: number): string => (ms * 1000 / n).toFixed(2)
  return ` (main ${us(c.mainMs)}, workers ${c.workersMs.map(us).join(' + ')}, V8 helpers and other threads ${us(c.otherMs)} µs)`
}

function longestPause (threads: readonly ThreadGc[] | undefined): number | null {
  if (threads === undefined || threads.length === 0) return null
  return Math.max(...threads.map((t) => t.maxMs))
}

function atShare (series: OpenLoopSeries | undefined, share: number): RatePoint | null {
  return series?.points.find((p) => p.share === share) ?? null
}

/** "main 12.3 / w1 45.6 / w2 7.8 ms" */
function perThread (threads: readonly ThreadGc[], pick: (t: ThreadGc) => number): string {
  return threads.map((t) => `${t.threadId === 0 ? 'main' : `t${t.threadId}`} ${pick(t).toFixed(1)}`).join(' / ') + ' ms'
}

/** One line of the summary table: the ratio to its baseline, and whether the target is met. */
export function summaryRow (section: string, name: string, value: number, unit: string,
  extra: { baseline?: SummaryRow['baseline'], target?: Target, note?: string } = {}): SummaryRow {
  const baseline = extra.baseline ?? null
  const ratio = baseline !== null && baseline.value !== 0 ? value / baseline.value : null
  const target = extra.target ?? null
  const on = target?.on ?? (baseline !== null ? 'ratio' : 'value')
  const checked = on === 'ratio' ? ratio : on === 'over' ? (baseline === null ? null : value - baseline.value) : value
  const met = target === null || checked === null ? null : target.op === '>=' ? checked >= target.value : checked <= target.value
  return { section, name, value, unit, baseline, ratio, target, met, note: extra.note ?? null }
}

/** The summary table: each engine figure beside its same-run baseline and target (docs/architecture.md §10). */
export function summaryRows (r: Parts): SummaryRow[] {
  const rows: SummaryRow[] = []
  const b = r.baselines
  const add = (section: string, name: string, value: number, unit: string,
    extra: { baseline?: SummaryRow['baseline'], target?: Target, note?: string } = {}): void => {
    rows.push(summaryRow(section, name, value, unit, extra))
  }
  const memoryStore = r.config.store === 'memory'
  if (r.activate !== null) {
    add('scale', 'resident agents', r.activate.residentAgents, 'agents')
    add('scale', 'activations/s', r.activate.activationsPerSec, '/s', {
      target: { op: '>=', value: 1_500_000 },
      note: `one get query cast to each new agent; ${r.activate.cpuUsPerActivation.toFixed(2)} µs of CPU per activation, all threads` +
        cpuNote(r.activate.cpu, r.activate.agents)
    })
  }
  if (r.memory !== null) {
    const m = r.memory
    add('memory', 'RSS after activation', m.after.rssBytes, 'B')
    add('memory', 'bytes per agent (RSS)', m.rssBytesPerAgent, 'B', { note: 'process RSS delta / agents, after full GCs' })
    add('memory', 'bytes per agent beyond state (RSS)', m.rssBytesPerAgentBeyondState, 'B', {
      target: { op: '<=', value: 200 }, note: `state { n } = ${m.stateHeapBytes.toFixed(0)} B of heap, ${m.stateEncodedBytes} B encoded`
    })
    add('memory', 'bytes per agent beyond state (heap)', m.heapBytesPerAgentBeyondState, 'B', { note: 'live V8 heap + off-heap typed arrays + id arenas, all threads' })
  }
  if (r.fanout !== null) {
    const f = r.fanout
    add('throughput', 'casts/s (fanout, all agents)', f.castsPerSec, '/s', {
      ...(b !== null ? { baseline: { name: 'raw ring', value: b.ring.msgsPerSec, unit: '/s' } } : {}),
      target: { op: '>=', value: 0.5 }
    })
    if (b !== null) {
      add('throughput', 'casts/s (fanout) vs postMessage', f.castsPerSec, '/s', {
        baseline: { name: 'postMessage', value: b.postMessage.msgsPerSec, unit: '/s' }
      })
    }
    add('throughput', 'commits/s (fanout)', f.commitsPerSec, '/s', {
      note: `mean batch ${f.meanBatchSize.toFixed(1)} states per commit; ${f.cpuUsPerCast.toFixed(2)} µs of CPU per cast, all threads` + cpuNote(f.cpu, f.casts)
    })
    add('throughput', 'committed states/s (fanout)', f.committedStatesPerSec, '/s', {
      ...(b !== null ? { baseline: { name: 'raw LMDB puts', value: b.lmdb.putsPerSec, unit: '/s' } } : {}),
      target: { op: '>=', value: 0.5 },
      ...(memoryStore
        ? { note: 'memory store: not durable, not comparable to LMDB' }
        : b !== null ? { note: `raw puts cost ${b.lmdb.cpuUsPerPut.toFixed(2)} µs of CPU each (all threads)` } : {})
    })
  }
  if (r.hot !== null) {
    if (b !== null) {
      add('throughput', 'hot agent vs raw lmdb-js puts of its keys', r.hot.commandsPerSec, '/s', {
        baseline: { name: 'raw puts, same keys/values', value: b.lmdbHotKeys.putsPerSec, unit: '/s' },
        target: { op: '>=', value: 0.8 },
        note: `raw puts cost ${b.lmdbHotKeys.cpuUsPerPut.toFixed(2)} µs of CPU each (all threads)`
      })
    }
    add('throughput', `hot agent: commands committed/s (${r.hot.variant})`, r.hot.commandsPerSec, '/s', {
      target: { op: '>=', value: 1_000_000 },
      note: `${r.hot.commandsPerCommit.toFixed(0)} commands per commit; ${r.hot.cpuUsPerCommand.toFixed(2)} µs of CPU each, all threads` +
        cpuNote(r.hot.cpu, r.hot.casts) + `; DNA's seed: 337,868/s` +
        (r.hot.variant === 'state' ? '; state-only variant until ctx.storage lands' : '') +
        (memoryStore ? '; memory store' : '')
    })
  }
  if (r.mixed !== null) {
    const x = r.mixed
    add('latency', 'call round trip p50 (one in flight)', x.roundTrip.p50Us, 'µs', {
      ...(b !== null ? { baseline: { name: 'raw ring ping-pong', value: b.ringRoundTrip.p50Us, unit: 'µs' } } : {}),
      target: { op: '<=', value: 2 }
    })
    add('latency', `calls/s (mixed, ${x.concurrency} in flight)`, x.callsPerSec, '/s', { note: '90% queries / 10% commands' })
    add('latency', 'call p50 under load', x.latency.p50Us, 'µs')
    add('latency', 'call p99 under load', x.latency.p99Us, 'µs')
    add('latency', 'call p999 under load', x.latency.p999Us, 'µs')
    add('latency', 'command call p99 (waits for commit)', x.commandLatency.p99Us, 'µs')
  }
  if (r.cluster !== null) clusterRows(r.cluster, add)
  if (r.latency !== null) {
    const l = r.latency
    for (const p of l.queries.points) {
      add('open loop', `query p99 at ${p.share * 100}% of max (${fmtRate(p.offeredPerSec)}/s offered)`, p.latency.p99Us, 'µs', {
        ...(p.share === 0.5 ? { target: { op: '<=', value: 1000 } } : {}),
        note: `p50 ${p.latency.p50Us} / p99.9 ${p.latency.p999Us} / max ${p.latency.maxUs} µs; max rate ${fmtRate(l.queries.maxPerSec)}/s ` +
          `(closed loop, ${l.queries.maxConcurrency} in flight); ${carried(p)}; sender lag p99 ${p.sendLag.p99Us} µs${p.errors !== 0 ? `; ${p.errors} errors` : ''}`
      })
    }
    for (const p of l.commands.points) {
      add('open loop', `command p99 at ${p.share * 100}% of max (${fmtRate(p.offeredPerSec)}/s offered)`, p.latency.p99Us, 'µs', {
        baseline: { name: 'raw fsync p99', value: l.fsync.p99Us, unit: 'µs' },
        ...(p.share === 0.5 ? { target: { op: '<=', value: 2000, on: 'over' } } : {}),
        note: `p50 ${p.latency.p50Us} / p99.9 ${p.latency.p999Us} / max ${p.latency.maxUs} µs; max rate ${fmtRate(l.commands.maxPerSec)}/s; ` +
          `${carried(p)}; sender lag p99 ${p.sendLag.p99Us} µs${p.errors !== 0 ? `; ${p.errors} errors` : ''}` + (memoryStore ? '; memory store' : '')
      })
    }
    const raw = l.rawCommit
    const beside = raw === null ? null : atShare(l.commands, raw.share)
    if (raw !== null && beside !== null) {
      // what the engine adds over its storage library at the same offered rate (no target: the issue's is the fsync row's)
      add('open loop', `command p99 at ${raw.share * 100}% vs raw lmdb-js at that rate`, beside.latency.p99Us, 'µs', {
        baseline: { name: 'raw lmdb-js put+flush p99', value: raw.latency.p99Us, unit: 'µs' },
        note: `raw: p50 ${raw.latency.p50Us} / p99.9 ${raw.latency.p999Us} µs, ${fmtRate(raw.offeredPerSec)}/s offered for ${raw.durationMs} ms, ` +
          `${carried(raw)}, ${raw.transactions} LMDB transactions of ${raw.writesPerTransaction.toFixed(1)} writes; command p50 ${beside.latency.p50Us} µs` +
          (memoryStore ? '; memory store: the commands did not write LMDB' : '')
      })
    }
  }
  for (const phase of ['activate', 'fanout'] as const) {
    const threads = r.gc[phase]
    if (threads === undefined || threads.length === 0) continue
    add('gc', `longest GC pause during ${phase === 'activate' ? 'activation' : 'fanout'}`, longestPause(threads)!, 'ms', {
      target: { op: '<=', value: 50 },
      note: `longest per thread ${perThread(threads, (t) => t.maxMs)}; total paused ${perThread(threads, (t) => t.totalMs)}; ` +
        `${threads.reduce((n, t) => n + t.pauses, 0)} pauses`
    })
  }
  return rows
}

/** What each baseline in the table is, printed under it. */
export const baselineLegend = [
  'raw ring: msgpackr pack → SAB ring → copy out → unpack → Map dispatch, one producer thread → one consumer thread, random ids as fanout',
  'raw ring ping-pong: one frame there and back, both sides parking on a doorbell with Atomics.waitAsync, as the engine does',
  'postMessage: one-way, one structured-clone message per message, to a worker that counts them',
  'raw LMDB puts: lmdb-js put() in a loop, state-sized values under the engine\'s id strings, awaiting the last put and the flush (fsync)',
  'raw puts, same keys/values: the same, of the hot agent\'s own ctx.storage keys (its store key bytes) and value bytes',
  'raw fsync: one 4 KiB write + fdatasync at a time on the data directory\'s filesystem, measured in the latency scenario before its command phases',
  'raw lmdb-js put+flush: lmdb-js alone (the store\'s open options, a fresh environment), one put at a time on the open loop\'s schedule at the 50% command rate, each awaited until committed and its transaction flushed; after the command phases',
  'open loop: calls sent on a fixed schedule at 25/50/75% of the closed-loop maximum; latency from each call\'s intended send time (no coordinated omission), HdrHistogram'
]

/** How a target reads in the table: "≥ 0.5×", "≤ 1,000 µs", "≤ baseline + 2,000 µs". */
export function targetText (r: SummaryRow, value: (v: number, unit: string) => string): string {
  const t = r.target
  if (t === null) return ''
  const on = t.on ?? (r.baseline !== null ? 'ratio' : 'value')
  const op = t.op === '>=' ? '≥' : '≤'
  if (on === 'ratio') return `${op} ${t.value}×`
  if (on === 'over') return `${op} baseline + ${value(t.value, r.unit)}`
  return `${op} ${value(t.value, r.unit)}`
}

function fmtRate (n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

/** Below this share of the offered rate a phase's latency is mostly its own backlog. */
const kCarried = 0.9

/**
 * The rate a phase achieved beside the one it offered. When the host (or the sender on
 * its main thread) could not carry the offered rate, the calls queue and the latency
 * grows with the phase's length: the figure then says "overloaded", not "slow at this
 * load", and the note says so rather than leave a reader to infer it from the lag.
 */
function carried (p: Pick<RatePoint, 'achievedPerSec' | 'offeredPerSec'>): string {
  const achieved = `achieved ${fmtRate(p.achievedPerSec)}/s`
  return p.achievedPerSec < kCarried * p.offeredPerSec ? `${achieved} — NOT CARRIED: the calls queued (a backlog, not a latency at this load)` : achieved
}

export function writeJson (file: string, results: BenchResults): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
}
