/**
 * `activate`: touch N distinct agents, once each — a `get` query cast to `counter`
 * keys k0 … k{N-1}, which the engine has never seen. Each message is one activation:
 * a store lookup (LMDB with a durable host) that finds nothing, `initial(key)`, a new
 * cell in the agent table. Nothing is written: activation is not a state change (the
 * `fanout` scenario's commands are).
 *
 * Figure: activations/s = N / (first cast → barrier after the last one), as seen by
 * the caller, main-thread encoding included.
 */
import { counter } from '../bench-agents.ts'
import { fmt } from '../progress.ts'
import { Pacer } from '../thread-probes.ts'
import { agentKey, kChunk, perSec, totals } from './context.ts'
import type { ScenarioContext } from './context.ts'
import type { CpuSplit } from '../thread-cpu.ts'

export interface ActivateResult {
  readonly agents: number
  readonly elapsedMs: number
  readonly activationsPerSec: number
  /** Resident agents the host reports afterwards (the bench's own probes excluded). */
  readonly residentAgents: number
  /**
   * CPU time of the whole process (every thread, GC helpers included) during the phase,
   * per activation: what the activations cost, less sensitive than the rate to other
   * processes sharing the cores.
   */
  readonly cpuUsPerActivation: number
  /** The same CPU time by thread (ms over the phase; Linux only, else null). */
  readonly cpu: CpuSplit | null
}

export async function activate (ctx: ScenarioContext): Promise<ActivateResult> {
  const { host, agents } = ctx
  const before = totals(host).activeAgents
  const pacer = new Pacer(ctx.probes)
  let sent = 0
  const endCpu = await ctx.probes.cpu()
  const cpu0 = process.cpuUsage()
  const start = performance.now()
  const phase = ctx.progress.phase('activate', agents, () => ({
    value: sent,
    detail: `${fmt(sent)} / ${fmt(agents)} agents, ${fmt(perSec(sent, performance.now() - start))}/s`
  }))
  while (sent < agents) {
    const end = Math.min(agents, sent + kChunk)
    for (let i = sent; i < end; i++) host.ref(counter, agentKey(i)).cast('get')
    sent = end
    await pacer.step()
  }
  await pacer.drain()
  const elapsedMs = performance.now() - start
  const cpu = process.cpuUsage(cpu0)
  const threads = endCpu()
  await ctx.probes.barrier() // replies from a later pass: the stats words of the last one are written
  const residentAgents = totals(host).activeAgents - before
  const result = { agents, elapsedMs, activationsPerSec: perSec(agents, elapsedMs), residentAgents, cpuUsPerActivation: (cpu.user + cpu.system) / agents, cpu: threads }
  phase.done(`${fmt(agents)} agents in ${(elapsedMs / 1000).toFixed(2)} s — ${fmt(result.activationsPerSec)} activations/s, ` +
    `${result.cpuUsPerActivation.toFixed(2)} µs CPU each (all threads)`)
  return result
}
