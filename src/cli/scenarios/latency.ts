/**
 * `latency`: latency at a fixed offered load, the way wrk2 and autocannon's `--rate`
 * report it — open loop, no coordinated omission.
 *
 * For queries (`get`) and for commands (`add(1)`, whose reply waits for its batch's
 * commit), each to a uniformly random `counter` among the N agents:
 *
 *   1. the maximum rate: a closed loop with `concurrency` calls in flight for a short
 *      while, calls/s completed;
 *   2. for each share of it (25%, 50%, 75%): calls sent on a fixed schedule — call i is
 *      *intended* at start + i / rate — for the phase's length, whatever the replies do.
 *      Latency runs from the intended send time to the reply, into an HDR histogram
 *      (hdr.ts): a call the sender issued late because the process was stalled counts
 *      its wait, which a closed loop (or a timer taken at the real send) would hide.
 *
 * The sender's schedule is pacer.ts's (the raw lmdb-js baseline uses the same): it polls
 * the clock with `setImmediate`, naps 0.1 ms in `Atomics.wait` when nothing is due —
 * spinning made much of the tail it measured (bench/RESULTS.md, issue 13, 2026-12-06
 * evening) — and yields once before each nap so that the calls just made are published
 * first. A nap delays replies that arrive meanwhile by up to 0.1 ms; it is counted. How
 * late each call left is recorded too (`sendLag`), so the generator's own delay is
 * visible beside the latency.
 * Both are kept per call during the phase and go into their HDR histograms after it:
 * the same values, without the histogram's per-value work on the thread being measured.
 *
 * Baseline: the raw disk sync (4 KiB write + fdatasync, one at a time) measured in this
 * scenario just before the command phases, on the data directory's filesystem. A
 * durable command's reply needs at least one; the target is command p99 ≤ fsync p99 + 2 ms.
 * A second baseline, after the command phases: raw lmdb-js at the 50% phase's offered
 * rate, open loop, each write awaited until committed and flushed (raw-commit.ts) —
 * what the engine adds over its storage library at the same load.
 */
import { fsyncLatency } from '../../baselines/raw-baselines.ts'
import { counter, gcTrace } from '../bench-agents.ts'
import { HdrLatency, summarizeUs } from '../hdr.ts'
import type { LatencySummary } from '../latency.ts'
import { fmt } from '../progress.ts'
import { agentKey, perSec } from './context.ts'
import type { ScenarioContext } from './context.ts'
import { ownTid, threadCpuMs, threadRunQueueNs } from '../thread-cpu.ts'
import { threadGcPauses } from '../../observe/gc-pauses.ts'
import { LATENCY_BOUNDS_MS } from '../../../native-free-core/runtime/commit-stats.ts'
import { openLoopStart, pace } from './pacer.ts'
import type { OpenLoopFigures } from './pacer.ts'
import { rawCommitLoop } from './raw-commit.ts'
import type { RawCommitResult } from './raw-commit.ts'
import { benchId } from '../bench-ids.ts'
import { stateCodec } from '../../thread/codec.ts'

/** Offered loads, as shares of the measured maximum. */
export const kShares: readonly number[] = [0.25, 0.5, 0.75]
export type CallKind = 'query' | 'command'

/** An open-loop phase of calls; `latency` runs from a call's intended send time to its reply. */
export interface RatePoint extends OpenLoopFigures {
  /** Where the phase's time went, per thread (null without /proc). */
  readonly threads: PhaseThreads | null
  /** The calls at or above the p99: how many were in flight during a GC pause of the main thread, of a worker, of neither. */
  readonly tail: TailCauses
}

export interface TailCauses {
  /** Calls whose latency was ≥ the phase's p99. */
  readonly calls: number
  /** …of which in flight (intended send → reply) while the main thread stood in a GC pause. */
  readonly mainGc: number
  /** …of the others, in flight during a GC pause of a worker. */
  readonly workerGc: number
  /** …in flight during no GC pause: scheduling, queueing, commits. */
  readonly neither: number
  /** Share of the phase's wall time the main thread / any worker spent in GC pauses. */
  readonly mainGcShare: number
  readonly workerGcShare: number
}

/** One thread (or group of threads) over one open-loop phase. */
export interface ThreadTime {
  /** CPU time, ms (clock ticks: 10 ms resolution). */
  readonly cpuMs: number
  /** Time runnable but waiting for a CPU (schedstat), ms. */
  readonly runQueueMs: number
  /** GC pauses of this thread's JavaScript in the phase: how many, their total (ms). Absent for `other`. */
  readonly gcPauses?: number
  readonly gcMs?: number
}

/** The main thread, each worker, and every other thread of the process (V8's helpers, libuv, lmdb-js). */
export interface PhaseThreads {
  readonly main: ThreadTime
  readonly workers: readonly ThreadTime[]
  readonly other: ThreadTime
  /** Group commits of all workers in the phase, the states they carried, and their latency (batch closed → store done). */
  readonly commits: number
  readonly committedStates: number
  /** Upper bounds (ms) of the commit-latency buckets holding the median and the 99th percentile (null: beyond the last bound, 1 s); 0 without commits. */
  readonly commitP50Ms: number | null
  readonly commitP99Ms: number | null
}

export interface OpenLoopSeries {
  readonly kind: CallKind
  readonly method: string
  /** Closed-loop maximum, calls/s, with `concurrency` in flight. */
  readonly maxPerSec: number
  readonly maxConcurrency: number
  readonly points: readonly RatePoint[]
}

export interface LatencyResult {
  readonly shares: readonly number[]
  readonly queries: OpenLoopSeries
  readonly commands: OpenLoopSeries
  /** Raw disk sync latency (µs), measured before the command phases. */
  readonly fsync: LatencySummary
  /** Raw lmdb-js put + flush, open loop at the offered rate of the command phase at `rawCommit.share`, measured after the command phases. */
  readonly rawCommit: RawCommitResult | null
}

/** The command phase the raw lmdb-js baseline stands beside. */
export const kRawCommitShare = 0.5

type Send = () => Promise<unknown>

function sender (ctx: ScenarioContext, kind: CallKind): Send {
  const { host, agents, rng } = ctx
  return kind === 'query'
    ? () => host.ref(counter, agentKey(rng.below(agents))).call('get')
    : () => host.ref(counter, agentKey(rng.below(agents))).call('add', 1)
}

/** Closed loop: `concurrency` calls in flight for `ms`; completed calls per second. */
async function maxRate (send: Send, concurrency: number, ms: number): Promise<number> {
  let calls = 0
  const start = performance.now()
  const deadline = start + ms
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await send()
      calls++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  return perSec(calls, performance.now() - start)
}

interface ThreadReading {
  readonly cpu: Map<number, number>
  readonly runQueue: Map<number, number>
  readonly gc: ReadonlyArray<readonly [number, number]>
  readonly commits: number
  readonly committedStates: number
  readonly commitBuckets: readonly number[]
}

/** Outside the timed loop: asks each probe for its thread's lifetime GC figures. */
async function readThreads (ctx: ScenarioContext): Promise<ThreadReading> {
  const workers = await Promise.all(ctx.probes.refs.map((r) => r.call('gcLifetime')))
  const main = threadGcPauses.read()
  const stats = ctx.host.stats().workers
  const commitBuckets = LATENCY_BOUNDS_MS.map(() => 0).concat(0)
  for (const w of stats) w.commitLatencyBuckets.forEach((n, i) => { commitBuckets[i] = commitBuckets[i]! + n })
  return {
    cpu: threadCpuMs(),
    runQueue: threadRunQueueNs(),
    gc: [[main.pauses, main.totalMs], ...workers],
    commits: stats.reduce((n, w) => n + w.commits, 0),
    committedStates: stats.reduce((n, w) => n + w.committedStates, 0),
    commitBuckets
  }
}

/** Per-thread time between two readings; workerTids in the order of the probes. */
function phaseThreads (a: ThreadReading, b: ThreadReading, workerTids: readonly number[]): PhaseThreads | null {
  if (b.cpu.size === 0) return null
  const main = ownTid()
  const time = (tids: readonly number[], gc: number | null): ThreadTime => {
    let cpuMs = 0
    let rq = 0
    for (const t of tids) {
      cpuMs += (b.cpu.get(t) ?? 0) - (a.cpu.get(t) ?? 0)
      rq += (b.runQueue.get(t) ?? 0) - (a.runQueue.get(t) ?? 0)
    }
    const out: ThreadTime = { cpuMs, runQueueMs: rq / 1e6 }
    if (gc === null) return out
    return { ...out, gcPauses: b.gc[gc]![0] - a.gc[gc]![0], gcMs: b.gc[gc]![1] - a.gc[gc]![1] }
  }
  const known = new Set([main, ...workerTids])
  const buckets = b.commitBuckets.map((n, i) => n - a.commitBuckets[i]!)
  const commits = buckets.reduce((x, y) => x + y, 0)
  const quantile = (q: number): number | null => {
    let seen = 0
    for (let i = 0; i < buckets.length; i++) {
      seen += buckets[i]!
      if (seen >= q * commits) return LATENCY_BOUNDS_MS[i] ?? null
    }
    return null
  }
  return {
    commits: b.commits - a.commits,
    committedStates: b.committedStates - a.committedStates,
    commitP50Ms: commits === 0 ? 0 : quantile(0.5),
    commitP99Ms: commits === 0 ? 0 : quantile(0.99),
    main: time([main], 0),
    // with `workers: 0` the main thread is the only worker and its figures are above
    workers: workerTids.flatMap((t, i) => t === main ? [] : [time([t], i + 1)]),
    other: time([...b.cpu.keys()].filter((t) => !known.has(t)), null)
  }
}

const bound = (ms: number | null): string => ms === null ? `> ${LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!} ms` : `≤ ${ms} ms`

function fmtThreads (t: PhaseThreads | null): string {
  if (t === null) return ''
  const one = (name: string, x: ThreadTime): string =>
    `${name} cpu ${fmt(x.cpuMs)} ms, run-queue ${fmt(x.runQueueMs)} ms` + (x.gcMs !== undefined ? `, GC ${fmt(x.gcPauses!)} pauses ${fmt(x.gcMs)} ms` : '')
  const commits = t.commits === 0 ? [] : [`${fmt(t.commits)} commits of ${fmt(t.committedStates / t.commits)} states, latency p50 ${bound(t.commitP50Ms)}, p99 ${bound(t.commitP99Ms)}`]
  return [one('main', t.main), ...t.workers.map((w, i) => one(`w${i + 1}`, w)), one('other', t.other), ...commits].join('; ')
}

/** Sorted, merged [start, end] spans (flat pairs). */
function mergeSpans (flat: readonly number[]): number[] {
  const pairs: Array<[number, number]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!])
  pairs.sort((a, b) => a[0] - b[0])
  const out: number[] = []
  for (const [s, e] of pairs) {
    if (out.length !== 0 && s <= out[out.length - 1]!) out[out.length - 1] = Math.max(out[out.length - 1]!, e)
    else out.push(s, e)
  }
  return out
}

/** Does [from, to] meet any of the merged spans? (binary search) */
function meets (spans: readonly number[], from: number, to: number): boolean {
  let lo = 0
  let hi = spans.length / 2
  while (lo < hi) { // first span ending at or after `from`
    const mid = (lo + hi) >> 1
    if (spans[mid * 2 + 1]! < from) lo = mid + 1
    else hi = mid
  }
  return lo < spans.length / 2 && spans[lo * 2]! <= to
}

function covered (spans: readonly number[], from: number, to: number): number {
  let ms = 0
  for (let i = 0; i < spans.length; i += 2) ms += Math.max(0, Math.min(to, spans[i + 1]!) - Math.max(from, spans[i]!))
  return ms
}

/** Attribute the calls at or above `p99Ms` to the GC pauses they were in flight through. */
function tailCauses (sentAt: Float64Array, took: Float64Array, p99Ms: number, main: number[], workers: number[], from: number, to: number): TailCauses {
  const m = mergeSpans(main)
  const w = mergeSpans(workers)
  let calls = 0
  let mainGc = 0
  let workerGc = 0
  // the HDR p99 is the top of its bucket (3 significant digits: 1/1024 wide); the bucket's own calls count
  const floor = p99Ms * (1 - 2 / 1024)
  for (let k = 0; k < sentAt.length; k++) {
    const t = took[k]!
    if (!(t >= floor)) continue
    calls++
    const a = sentAt[k]!
    if (meets(m, a, a + t)) mainGc++
    else if (meets(w, a, a + t)) workerGc++
  }
  const wall = Math.max(1e-9, to - from)
  return { calls, mainGc, workerGc, neither: calls - mainGc - workerGc, mainGcShare: covered(m, from, to) / wall, workerGcShare: covered(w, from, to) / wall }
}

/** Open loop: `rate` calls/s on a fixed schedule for `ms`, latency from each call's intended time. */
async function openLoop (ctx: ScenarioContext, workerTids: readonly number[], probesOnMain: boolean, send: Send, share: number, rate: number, ms: number): Promise<RatePoint> {
  const before = await readThreads(ctx)
  await Promise.all(ctx.probes.refs.map((r) => r.call('gcTraceStart')))
  // `workers: 0`: the probe agent lives on the main thread, and its trace is the main thread's
  const mainOwnTrace = !probesOnMain
  if (mainOwnTrace) gcTrace.start()
  const latency = new HdrLatency()
  const lag = new HdrLatency()
  const total = Math.max(1, Math.round(rate * ms / 1000))
  const interval = 1000 / rate
  // each call's intended send time (epoch ms) and latency (ms; NaN: failed), for the tail's causes
  const sentAt = new Float64Array(total)
  const took = new Float64Array(total).fill(NaN)
  const epoch = performance.timeOrigin
  let completed = 0
  let errors = 0
  let lastReply = 0
  let allDone!: () => void
  const finished = new Promise<void>((resolve) => { allDone = resolve })
  // how late each call left (ms); recorded into `lag` after the phase, like `took` into `latency`
  const lateBy = new Float64Array(total)
  const settle = (ok: boolean): void => {
    lastReply = performance.now()
    if (ok) completed++
    else errors++
    if (completed + errors === total) allDone()
  }
  const failed = (): void => settle(false)
  const start = openLoopStart()
  await pace(start, interval, total, (k, at, now) => {
    sentAt[k] = epoch + at
    lateBy[k] = now - at
    send().then(() => {
      // `start + k * interval` is `at` (the same expression): the closure keeps only k
      took[k] = performance.now() - (start + k * interval)
      settle(true)
    }, failed)
  })
  await finished
  // into the histograms after the phase, not per call inside it: the same values, without
  // HdrHistogram's per-value work on the thread being measured
  for (let k = 0; k < total; k++) {
    lag.recordMs(lateBy[k]!)
    if (!Number.isNaN(took[k])) latency.recordMs(took[k]!)
  }
  const mainSpans = mainOwnTrace ? gcTrace.take() : []
  const workerSpans = (await Promise.all(ctx.probes.refs.map((r) => r.call('gcTraceTake')))).flat()
  const threads = phaseThreads(before, await readThreads(ctx), workerTids)
  const summary = latency.summary()
  // with `workers: 0` the probe runs on the main thread: its trace is the main thread's
  const tail = mainOwnTrace
    ? tailCauses(sentAt, took, summary.p99Us / 1000, mainSpans, workerSpans, epoch + start, epoch + lastReply)
    : tailCauses(sentAt, took, summary.p99Us / 1000, workerSpans, [], epoch + start, epoch + lastReply)
  ctx.progress.log(`  ${share * 100}%: ${fmtThreads(threads)}`)
  ctx.progress.log(`  ${share * 100}%: ${fmt(tail.calls)} calls ≥ p99: ${fmt(tail.mainGc)} through a main-thread GC pause, ${fmt(tail.workerGc)} through a worker's, ${fmt(tail.neither)} through none; ` +
    `GC pauses covered ${fmt(tail.mainGcShare * 100)}% (main) / ${fmt(tail.workerGcShare * 100)}% (workers) of the phase`)
  return {
    share,
    offeredPerSec: rate,
    durationMs: ms,
    sent: total,
    completed,
    errors,
    achievedPerSec: perSec(completed, lastReply - start),
    latency: summary,
    sendLag: lag.summary(),
    threads,
    tail
  }
}

async function series (ctx: ScenarioContext, kind: CallKind, maxMs: number, rateMs: number,
  between: () => Promise<void>): Promise<OpenLoopSeries> {
  const send = sender(ctx, kind)
  let step = 0
  let detail = 'measuring the maximum rate'
  const phase = ctx.progress.phase(`latency (${kind})`, kShares.length + 1, () => ({ value: step, detail }))
  const workerTids = await Promise.all(ctx.probes.refs.map((r) => r.call('tid')))
  const probesOnMain = (await Promise.all(ctx.probes.refs.map((r) => r.call('thread')))).includes(0)
  const max = await maxRate(send, ctx.concurrency, maxMs)
  await between()
  step++
  const points: RatePoint[] = []
  for (const share of kShares) {
    const rate = Math.max(1, Math.round(max * share))
    detail = `${fmt(rate)}/s offered (${share * 100}% of ${fmt(max)}/s)`
    points.push(await openLoop(ctx, workerTids, probesOnMain, send, share, rate, rateMs))
    await between()
    step++
  }
  phase.done(`max ${fmt(max)}/s; ` + points.map((p) =>
    `${p.share * 100}%: p50 ${fmt(p.latency.p50Us)} µs, p99 ${fmt(p.latency.p99Us)} µs, p99.9 ${fmt(p.latency.p999Us)} µs`).join('; '))
  return { kind, method: kind === 'query' ? 'get' : 'add', maxPerSec: max, maxConcurrency: ctx.concurrency, points }
}

export async function latency (ctx: ScenarioContext): Promise<LatencyResult> {
  const maxMs = Math.max(250, ctx.durationMs / 4)
  const rateMs = Math.max(400, ctx.durationMs / 2)
  const queries = await series(ctx, 'query', maxMs, rateMs, () => ctx.probes.barrier())
  const fsync = summarizeUs(fsyncLatency(ctx.scratchDir, Math.min(1000, Math.max(200, ctx.durationMs / 5))))
  ctx.progress.log(`  raw fsync (4 KiB write + fdatasync): p50 ${fmt(fsync.p50Us)} µs, p99 ${fmt(fsync.p99Us)} µs over ${fmt(fsync.count)}`)
  const commands = await series(ctx, 'command', maxMs, rateMs, () => ctx.probes.flush())
  const rawCommit = await rawCommitBeside(ctx, commands, Math.min(1000, Math.max(300, ctx.durationMs / 5)))
  return { shares: kShares, queries, commands, fsync, rawCommit }
}

/** Raw lmdb-js at the rate the command phase at kRawCommitShare was offered, the host idle (its commits flushed). */
async function rawCommitBeside (ctx: ScenarioContext, commands: OpenLoopSeries, ms: number): Promise<RawCommitResult | null> {
  const point = commands.points.find((p) => p.share === kRawCommitShare)
  if (point === undefined) return null
  const skipTids = await Promise.all(ctx.probes.refs.map((r) => r.call('tid')))
  const { rng, agents } = ctx
  const raw = await rawCommitLoop({
    dir: ctx.scratchDir,
    share: kRawCommitShare,
    rate: point.offeredPerSec,
    ms,
    id: () => benchId(rng.below(agents)),
    value: stateCodec.encode({ n: 1 }),
    skipTids
  })
  const t = raw.threads
  ctx.progress.log(`  raw lmdb-js at ${kRawCommitShare * 100}% (${fmt(raw.offeredPerSec)}/s offered, put + its flush, open loop): ` +
    `p50 ${fmt(raw.latency.p50Us)} µs, p99 ${fmt(raw.latency.p99Us)} µs, p99.9 ${fmt(raw.latency.p999Us)} µs; ` +
    `${fmt(raw.transactions)} LMDB transactions of ${fmt(raw.writesPerTransaction)} writes, ${fmt(raw.pagesWritten / Math.max(1, raw.transactions))} pages, sync busy ${fmt(raw.syncMs)} ms` +
    (t === null ? '' : `; main cpu ${fmt(t.mainCpuMs)} ms, other cpu ${fmt(t.otherCpuMs)} ms, run-queue ${fmt(t.otherRunQueueMs)} ms`))
  return raw
}
