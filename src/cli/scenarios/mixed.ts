/**
 * `mixed`: request/response traffic — `concurrency` calls kept in flight, each to a
 * uniformly random `counter` among the N agents: 90% `get` queries (never wait for a
 * commit), 10% `add(1)` commands (their reply waits for their batch's commit: the
 * output gate). Every call's round trip goes into an HDR histogram (all, queries,
 * commands): p50/p99/p999 under load.
 *
 * Before the loaded phase, `kRoundTrips` sequential `get` calls to one resident agent
 * give the unloaded round trip main → worker → main, the figure held against the raw
 * ring ping-pong (docs/architecture.md §10: p50 ≤ 2×).
 */
import { counter } from '../bench-agents.ts'
import { Latency } from '../latency.ts'
import type { LatencySummary } from '../latency.ts'
import { fmt } from '../progress.ts'
import { agentKey, perSec, totals } from './context.ts'
import type { ScenarioContext } from './context.ts'

const kRoundTrips = 2000
const kWarmupTrips = 200
const kCommandShare = 0.1

export interface MixedResult {
  readonly concurrency: number
  readonly calls: number
  readonly queries: number
  readonly commands: number
  readonly elapsedMs: number
  readonly callsPerSec: number
  readonly latency: LatencySummary
  readonly queryLatency: LatencySummary
  readonly commandLatency: LatencySummary
  /** Sequential calls, one in flight: the engine's own round trip. */
  readonly roundTrip: LatencySummary
  readonly commits: number
  readonly commitsPerSec: number
  readonly meanBatchSize: number
}

export async function mixed (ctx: ScenarioContext): Promise<MixedResult> {
  const { host, agents, rng } = ctx
  const one = host.ref(counter, agentKey(0))
  const rtt = new Latency()
  for (let i = 0; i < kWarmupTrips + kRoundTrips; i++) {
    const t0 = performance.now()
    await one.call('get')
    if (i >= kWarmupTrips) rtt.since(t0)
  }

  const all = new Latency()
  const queries = new Latency()
  const commands = new Latency()
  const before = totals(host)
  let calls = 0
  const start = performance.now()
  const deadline = start + ctx.durationMs
  const phase = ctx.progress.phase('mixed', ctx.durationMs, () => ({
    value: performance.now() - start,
    detail: `${fmt(perSec(calls, performance.now() - start))} calls/s`
  }))
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const ref = host.ref(counter, agentKey(rng.below(agents)))
      const command = rng.next() < kCommandShare
      const t0 = performance.now()
      if (command) await ref.call('add', 1)
      else await ref.call('get')
      const ns = Math.max(1, Math.round((performance.now() - t0) * 1e6))
      all.histogram.record(ns);
      (command ? commands : queries).histogram.record(ns)
      calls++
    }
  }
  await Promise.all(Array.from({ length: ctx.concurrency }, lane))
  const elapsedMs = performance.now() - start
  await ctx.probes.barrier()
  const after = totals(host)
  const commits = after.commits - before.commits
  const committed = after.committedStates - before.committedStates
  const result: MixedResult = {
    concurrency: ctx.concurrency,
    calls,
    queries: queries.histogram.count,
    commands: commands.histogram.count,
    elapsedMs,
    callsPerSec: perSec(calls, elapsedMs),
    latency: all.summary(),
    queryLatency: queries.summary(),
    commandLatency: commands.summary(),
    roundTrip: rtt.summary(),
    commits,
    commitsPerSec: perSec(commits, elapsedMs),
    meanBatchSize: commits > 0 ? committed / commits : 0
  }
  const l = result.latency
  phase.done(`${fmt(result.callsPerSec)} calls/s, p50 ${fmt(l.p50Us)} µs, p99 ${fmt(l.p99Us)} µs, p999 ${fmt(l.p999Us)} µs`)
  return result
}
