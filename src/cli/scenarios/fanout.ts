/**
 * `fanout`: casts spread over all N agents for the phase's duration — `add(1)` to a
 * uniformly random `counter` key (seeded), so consecutive messages hit different
 * agents, cells and cache lines, as a busy host's traffic does. Commands: each one
 * makes its agent dirty; the thread's loop commits the dirty states of a pass as one
 * batch (group commit) to the host's store.
 *
 * Figures: casts/s (first cast → barrier after the last), commits/s and committed
 * states/s (after a commit barrier, so the last batch is counted), mean batch size =
 * committed states per commit. Agents not yet resident are activated on the way.
 */
import { counter } from '../bench-agents.ts'
import { fmt } from '../progress.ts'
import { Pacer } from '../thread-probes.ts'
import { agentKey, kChunk, perSec, totals } from './context.ts'
import type { ScenarioContext } from './context.ts'
import type { CpuSplit } from '../thread-cpu.ts'

export interface FanoutResult {
  readonly casts: number
  readonly elapsedMs: number
  readonly castsPerSec: number
  /** Group commits (store batches) during the phase, up to the commit of its last cast. */
  readonly commits: number
  readonly committedStates: number
  readonly commitMs: number
  readonly commitsPerSec: number
  readonly committedStatesPerSec: number
  /** Committed states per commit. */
  readonly meanBatchSize: number
  /** CPU time of the whole process (every thread) per cast, up to the commit of the last one. */
  readonly cpuUsPerCast: number
  /** The same CPU time by thread (ms over the phase; Linux only, else null). */
  readonly cpu: CpuSplit | null
}

export async function fanout (ctx: ScenarioContext): Promise<FanoutResult> {
  const { host, agents, rng } = ctx
  const before = totals(host)
  const pacer = new Pacer(ctx.probes)
  let casts = 0
  const endCpu = await ctx.probes.cpu()
  const cpu0 = process.cpuUsage()
  const start = performance.now()
  const deadline = start + ctx.durationMs
  const phase = ctx.progress.phase('fanout', ctx.durationMs, () => ({
    value: performance.now() - start,
    detail: `${fmt(perSec(casts, performance.now() - start))} casts/s`
  }))
  do {
    for (let i = 0; i < kChunk; i++) host.ref(counter, agentKey(rng.below(agents))).cast('add', 1)
    casts += kChunk
    await pacer.step()
  } while (performance.now() < deadline)
  await pacer.drain()
  const elapsedMs = performance.now() - start
  await ctx.probes.flush()
  const commitMs = performance.now() - start
  const cpu = process.cpuUsage(cpu0)
  const threads = endCpu()
  await ctx.probes.barrier()
  const after = totals(host)
  // the probes' flush commands are one state per thread in the last batches: not the scenario's
  const flushes = ctx.probes.refs.length
  const commits = after.commits - before.commits
  const committedStates = Math.max(0, after.committedStates - before.committedStates - flushes)
  const result: FanoutResult = {
    casts,
    elapsedMs,
    castsPerSec: perSec(casts, elapsedMs),
    commits,
    committedStates,
    commitMs,
    commitsPerSec: perSec(commits, commitMs),
    committedStatesPerSec: perSec(committedStates, commitMs),
    meanBatchSize: commits > 0 ? committedStates / commits : 0,
    cpuUsPerCast: (cpu.user + cpu.system) / casts,
    cpu: threads
  }
  phase.done(`${fmt(result.castsPerSec)} casts/s, ${fmt(result.commitsPerSec)} commits/s of ${fmt(result.meanBatchSize)} states, ` +
    `${result.cpuUsPerCast.toFixed(2)} µs CPU per cast (all threads)`)
  return result
}
