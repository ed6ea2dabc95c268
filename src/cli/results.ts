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
import type { PhaseSpan, Sample } from './timeline.ts'

export const SCHEMA = 'shoal-bench/1'
export const scenarioNames = ['activate', 'fanout', 'hot', 'mixed'] as const
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
  readonly dataDir: string | null
  /** False: the data directory was a temporary one, removed after the run. */
  readonly dataDirKept: boolean
  readonly durationMs: number
  readonly scenarios: readonly ScenarioName[]
  readonly hotCasts: number
  readonly concurrency: number
  readonly seed: number
}

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
}

export interface Target {
  readonly op: '>=' | '<='
  readonly value: number
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
  readonly memory: MemoryResult | null
  /** `shoal bench --hosts N`: the cluster's figures; the single-host scenarios are null then. */
  readonly cluster: ClusterResults | null
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
    shardsMovedPerSec: r.cluster?.join?.shardsPerSec ?? null
  }
}

/** The summary table: each engine figure beside its same-run baseline and target (docs/architecture.md §10). */
export function summaryRows (r: Parts): SummaryRow[] {
  const rows: SummaryRow[] = []
  const b = r.baselines
  const add = (section: string, name: string, value: number, unit: string,
    extra: { baseline?: SummaryRow['baseline'], target?: Target, note?: string } = {}): void => {
    const baseline = extra.baseline ?? null
    const ratio = baseline !== null && baseline.value !== 0 ? value / baseline.value : null
    const target = extra.target ?? null
    const checked = baseline !== null ? ratio : value
    const met = target === null || checked === null ? null : target.op === '>=' ? checked >= target.value : checked <= target.value
    rows.push({ section, name, value, unit, baseline, ratio, target, met, note: extra.note ?? null })
  }
  const memoryStore = r.config.store === 'memory'
  if (r.activate !== null) {
    add('scale', 'resident agents', r.activate.residentAgents, 'agents')
    add('scale', 'activations/s', r.activate.activationsPerSec, '/s', {
      target: { op: '>=', value: 1_500_000 }, note: 'one get query cast to each new agent'
    })
  }
  if (r.memory !== null) {
    const m = r.memory
    add('memory', 'RSS after activation', m.after.rssBytes, 'B')
    add('memory', 'bytes per agent (RSS)', m.rssBytesPerAgent, 'B', { note: 'process RSS delta / agents, after full GCs' })
    add('memory', 'bytes per agent beyond state (RSS)', m.rssBytesPerAgentBeyondState, 'B', {
      target: { op: '<=', value: 200 }, note: `state { n } = ${m.stateHeapBytes.toFixed(0)} B of heap, ${m.stateEncodedBytes} B encoded`
    })
    add('memory', 'bytes per agent beyond state (heap)', m.heapBytesPerAgentBeyondState, 'B', { note: 'live V8 heap + off-heap typed arrays, all threads' })
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
    add('throughput', 'commits/s (fanout)', f.commitsPerSec, '/s', { note: `mean batch ${f.meanBatchSize.toFixed(1)} states per commit` })
    add('throughput', 'committed states/s (fanout)', f.committedStatesPerSec, '/s', {
      ...(b !== null ? { baseline: { name: 'raw LMDB puts', value: b.lmdb.putsPerSec, unit: '/s' } } : {}),
      target: { op: '>=', value: 0.5 },
      ...(memoryStore ? { note: 'memory store: not durable, not comparable to LMDB' } : {})
    })
  }
  if (r.hot !== null) {
    add('throughput', `hot agent: commands committed/s (${r.hot.variant})`, r.hot.commandsPerSec, '/s', {
      target: { op: '>=', value: 1_000_000 },
      note: `${r.hot.commandsPerCommit.toFixed(0)} commands per commit; DNA's seed: 337,868/s` +
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
  return rows
}

/** What each baseline in the table is, printed under it. */
export const baselineLegend = [
  'raw ring: msgpackr pack → SAB ring → copy out → unpack → Map dispatch, one producer thread → one consumer thread, random ids as fanout',
  'raw ring ping-pong: one frame there and back, both sides parking on a doorbell with Atomics.waitAsync, as the engine does',
  'postMessage: one-way, one structured-clone message per message, to a worker that counts them',
  'raw LMDB puts: lmdb-js put() in a loop, state-sized values under the engine\'s id strings, awaiting the last put and the flush (fsync)'
]

export function writeJson (file: string, results: BenchResults): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
}
