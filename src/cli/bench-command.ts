/**
 * `shoal bench`: how many agents this host carries, and how fast. The run, in order:
 *
 *   1. raw baselines (ring, ring RTT, postMessage, LMDB), with no host running
 *   2. a host on `--workers` threads, durable (LMDB in a temp dir removed afterwards, or
 *      `--data-dir`, kept) or `--memory`
 *
 * Scratch: one temp directory per run holds the LMDB baseline's environment and the
 * default data dir; it is removed at the end, on an error, and on SIGINT/SIGTERM.
 *   3. the scenarios asked for, always in the order activate → fanout → hot → mixed →
 *      latency; memory checkpoints (full GC on every thread) around `activate`; each
 *      thread's GC pauses taken per scenario (the checkpoints' forced GCs excluded)
 *   4. close the host, remove the temp dir, print the table, write the JSON (always
 *      bench/results/latest.json, plus `--json`) and the HTML report (`--html`)
 *
 * Durable is the default: commands are acknowledged after LMDB flushed them to disk,
 * so the commit figures are the engine's real durable throughput.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createHost } from '../index.ts'
import type { Host } from '../index.ts'
import type { HostPlugin } from '../host/plugin.ts'
import { semiSpaceFlags } from '../host/worker-young-generation.ts'
import { stateCodec } from '../thread/codec.ts'
import { counter, hotStore } from './bench-agents.ts'
import { kHotKey, kHotValue } from './scenarios/hot.ts'
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'
import { measureBaselines } from './baselines.ts'
import type { Baselines } from './baselines.ts'
import { perAgent, snapshot } from './memory.ts'
import type { MemoryResult, MemorySnapshot } from './memory.ts'
import { Progress, fmt, fmtBytes } from './progress.ts'
import { SCHEMA, machineInfo, scenarioNames, summarize, summaryRows, writeJson } from './results.ts'
import type { BenchResults, RunConfig, ScenarioName } from './results.ts'
import { writeHtml } from './report-html.ts'
import { Rng } from './rng.ts'
import { activate } from './scenarios/activate.ts'
import type { ActivateResult } from './scenarios/activate.ts'
import type { ScenarioContext } from './scenarios/context.ts'
import { fanout } from './scenarios/fanout.ts'
import type { FanoutResult } from './scenarios/fanout.ts'
import { hot } from './scenarios/hot.ts'
import type { HotResult } from './scenarios/hot.ts'
import { mixed } from './scenarios/mixed.ts'
import type { MixedResult } from './scenarios/mixed.ts'
import { latency } from './scenarios/latency.ts'
import type { LatencyResult } from './scenarios/latency.ts'
import type { GcByScenario } from './results.ts'
import { renderSummary } from './summary-table.ts'
import { Timeline } from './timeline.ts'
import { ThreadProbes } from './thread-probes.ts'

export interface BenchOptions {
  readonly agents: number
  readonly workers: number
  readonly store: 'durable' | 'memory'
  readonly dataDir: string | null
  readonly durationMs: number
  readonly scenarios: readonly ScenarioName[]
  readonly hotCasts: number
  readonly concurrency: number
  readonly seed: number
  readonly baselines: boolean
  /** Extra JSON file (bench/results/latest.json is always written unless `latest` is null). */
  readonly json: string | null
  readonly html: string | null
  readonly latest: string | null
  /** Progress display: bars on a terminal, plain lines otherwise. */
  readonly plain: boolean
  /** Serve the live dashboard on 127.0.0.1 at this port during the run (0: any free port), or null. */
  readonly dashboard?: number | null
  /** The host option workerYoungGenerationMb, or null (V8's default). */
  readonly workerYoungMb?: number | null
  /** The host option `durability` with a durable store (`--durability`); default 'disk'. */
  readonly durability?: 'disk' | 'os'
}

const agentsUrl = new URL('./bench-agents.js', import.meta.url)
export const latestJson = fileURLToPath(new URL('../../../bench/results/latest.json', import.meta.url))
const kSampleMs = 250
const kStateSizeSamples = 100_000

export function threadLayout (workers: number): string {
  const cores = availableParallelism()
  if (workers === 0) return `agents on the main thread (no workers), ${cores} cores${mainYoungGeneration()}`
  const over = workers + 1 > cores
  return `${workers} worker${workers === 1 ? '' : 's'} + main thread on ${cores} cores${over ? ' (over-subscribed)' : ''}${mainYoungGeneration()}`
}

/** The node flags that size the main thread's young generation, if the process has any (the workers keep their own). */
function mainYoungGeneration (): string {
  const { min, max } = semiSpaceFlags(process.execArgv, process.env.NODE_OPTIONS)
  if (min === null && max === null) return ''
  const flags = [min === null ? null : `--min-semi-space-size=${min}`, max === null ? null : `--max-semi-space-size=${max}`].filter((f) => f !== null)
  return `, main thread ${flags.join(' ')}`
}

interface StorePlan {
  readonly kind: 'durable' | 'memory'
  readonly dataDir: string | null
  readonly kept: boolean
  note: string | null
}

function planStore (o: BenchOptions, scratch: string): StorePlan {
  if (o.store === 'memory') return { kind: 'memory', dataDir: null, kept: false, note: null }
  if (o.dataDir !== null) {
    const dir = resolve(o.dataDir)
    mkdirSync(dir, { recursive: true })
    return { kind: 'durable', dataDir: dir, kept: true, note: null }
  }
  const dir = join(scratch, 'data')
  mkdirSync(dir)
  return { kind: 'durable', dataDir: dir, kept: false, note: null }
}

/** What the CLI uses of `shoal/dashboard`. */
interface DashboardModule {
  dashboard (options: { port?: number }): HostPlugin & { readonly url: string | null }
}

/**
 * The dashboard plugin, loaded by its package name as an application would load it: src/
 * never imports plugins/ (the layers run one way), and a run without `--dashboard` loads
 * nothing of it. The specifier is a variable so that the compiler does not resolve it
 * through dist/ while building dist/.
 */
async function loadDashboard (port: number): Promise<HostPlugin & { readonly url: string | null }> {
  const specifier = 'shoal/dashboard'
  const mod = await import(specifier) as DashboardModule
  return mod.dashboard({ port })
}

async function startHost (o: BenchOptions, plan: StorePlan, plugins: readonly HostPlugin[]): Promise<[Host, 'durable' | 'memory']> {
  const young = o.workerYoungMb ?? null
  const base = { agents: agentsUrl, workers: o.workers, plugins, ...(young === null ? {} : { workerYoungGenerationMb: young }) }
  if (plan.kind === 'memory') return [await createHost(base), 'memory']
  return [await createHost({ ...base, dataDir: plan.dataDir!, durability: o.durability ?? 'disk' }), 'durable']
}

async function runBaselines (o: BenchOptions, progress: Progress, scratch: string): Promise<Baselines> {
  let step = 0
  let current = ''
  const phase = progress.phase('baselines', 5, () => ({ value: step, detail: current }))
  const b = await measureBaselines({
    agents: o.agents,
    ms: Math.max(200, Math.min(1000, o.durationMs / 2)),
    seed: o.seed,
    valueBytes: stateCodec.encode(counter.initial('k0')).length,
    hotId: idString(DEFAULT_QUOTA, hotStore.type, kHotKey),
    hotValue: stateCodec.encode(kHotValue),
    scratchDir: scratch,
    onPhase: (name) => { current = name; step++ }
  })
  phase.done(`ring ${fmt(b.ring.msgsPerSec)} msgs/s, ring RTT p50 ${fmt(b.ringRoundTrip.p50Us)} µs, ` +
    `postMessage ${fmt(b.postMessage.msgsPerSec)} msgs/s, LMDB ${fmt(b.lmdb.putsPerSec)} puts/s (hot agent's keys ${fmt(b.lmdbHotKeys.putsPerSec)}/s)`)
  return b
}

export async function runBench (o: BenchOptions, out: NodeJS.WriteStream = process.stdout): Promise<BenchResults> {
  const startedAt = new Date()
  const timeline = new Timeline(performance.now())
  const progress = new Progress({ out, tty: o.plain ? false : out.isTTY === true })
  const layout = threadLayout(o.workers)
  progress.log(`Shoal bench: ${fmt(o.agents)} agents, scenarios ${o.scenarios.join(', ')}; ${layout}; Node ${process.version}`)

  const scratch = mkdtempSync(join(tmpdir(), 'shoal-bench-'))
  const removeScratch = (): void => rmSync(scratch, { recursive: true, force: true })
  const onSignal = (signal: NodeJS.Signals): void => {
    removeScratch()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let host: Host | null = null
  try {
    timeline.enter('baselines')
    const baselines = o.baselines ? await runBaselines(o, progress, scratch) : null
    const plan = planStore(o, scratch)
    timeline.enter('start host')
    const board = o.dashboard === undefined || o.dashboard === null ? null : await loadDashboard(o.dashboard)
    const [h, store] = await startHost(o, plan, board === null ? [] : [board])
    host = h
    if (board !== null) progress.log(`dashboard: ${board.url} (live while the run lasts)`)
    host.on('worker-restart', (e) => progress.log(`worker ${e.thread} restarted${e.error !== null ? `: ${e.error.message}` : ''}`))
    timeline.start(host, kSampleMs)
    const probes = await ThreadProbes.find(host, o.workers === 0 ? 1 : o.workers)
    const idArenaBytes = (): number => h.stats().workers.reduce((n, w) => n + w.idArenaBytes, 0)
    const ctx: ScenarioContext = {
      host,
      probes,
      progress,
      agents: o.agents,
      durationMs: o.durationMs,
      hotCasts: o.hotCasts,
      concurrency: o.concurrency,
      rng: new Rng(o.seed),
      scratchDir: plan.dataDir ?? scratch
    }
    let activated: ActivateResult | null = null
    let fanned: FanoutResult | null = null
    let hotResult: HotResult | null = null
    let mixedResult: MixedResult | null = null
    let latencyResult: LatencyResult | null = null
    let memory: MemoryResult | null = null
    const gc: GcByScenario = {}
    for (const name of scenarioNames) {
      if (!o.scenarios.includes(name)) continue
      if (name === 'activate') {
        timeline.enter('memory')
        const stateHeapBytes = (await probes.stateSize(kStateSizeSamples)).heapBytes
        const before: MemorySnapshot = await snapshot(probes, idArenaBytes)
        timeline.enter('activate')
        await probes.gcWindow()
        activated = await activate(ctx)
        gc.activate = await probes.gcWindow()
        timeline.enter('memory')
        const after = await snapshot(probes, idArenaBytes)
        memory = perAgent(o.agents, before, after, stateHeapBytes, stateCodec.encode(counter.initial('k0')).length)
        progress.log(`  memory: ${fmtBytes(after.rssBytes)} resident, ${fmt(memory.rssBytesPerAgent)} B/agent RSS ` +
          `(${fmt(memory.heapBytesPerAgent)} B heap), state ${fmt(stateHeapBytes)} B → ${fmt(memory.rssBytesPerAgentBeyondState)} B/agent beyond state`)
      } else {
        timeline.enter(name)
        await probes.gcWindow()
        if (name === 'fanout') fanned = await fanout(ctx)
        else if (name === 'hot') hotResult = await hot(ctx)
        else if (name === 'mixed') mixedResult = await mixed(ctx)
        else latencyResult = await latency(ctx)
        gc[name] = await probes.gcWindow()
      }
      const paused = gc[name]
      if (paused !== undefined) {
        progress.log(`  GC pauses (${name}): longest ${paused.map((t) => `${t.threadId === 0 ? 'main' : `t${t.threadId}`} ${t.maxMs.toFixed(1)}`).join(', ')} ms; ` +
          `total ${paused.map((t) => t.totalMs.toFixed(0)).join(' / ')} ms`)
      }
    }
    timeline.enter('close')
    const finalStats = host.stats()
    const rssBytes = process.memoryUsage.rss()
    await host.close()
    host = null
    timeline.stop()
    removeScratch()

    const config: RunConfig = {
      agents: o.agents,
      hosts: 1,
      membership: null,
      workers: o.workers,
      threadLayout: layout,
      store,
      storeRequested: o.store,
      storeNote: plan.note,
      ...(store === 'durable' ? { durability: o.durability ?? 'disk' } : {}),
      dataDir: store === 'durable' ? plan.dataDir : null,
      dataDirKept: store === 'durable' && plan.kept,
      durationMs: o.durationMs,
      scenarios: scenarioNames.filter((s) => o.scenarios.includes(s)),
      hotCasts: o.hotCasts,
      concurrency: o.concurrency,
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
      baselines,
      activate: activated,
      fanout: fanned,
      hot: hotResult,
      mixed: mixedResult,
      latency: latencyResult,
      memory,
      cluster: null,
      gc,
      final: { rssBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024, activeAgents: finalStats.activeAgents },
      timeline: timeline.samples,
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
    timeline.stop()
    if (host !== null) await host.close().catch(() => {})
    removeScratch()
  }
}
