/**
 * `hot`: DNA's one-agent benchmark — `hotCasts` `add(1)` casts to one agent, then one
 * call whose reply the output gate holds until everything before it has committed.
 * Figure: commands committed per second = casts / (first cast → that reply).
 * The reply must equal `hotCasts`, or the run fails: a lost or doubled command is a
 * bug, not a figure.
 *
 * DNA's agent keeps its keys in KV storage: here `hotStore.add` counts into state AND
 * `ctx.storage.put`s a new key per command, as DNA's `put(name, to_string(n), "test")`.
 * (`variant` stays in the JSON for its readers: it is always 'storage' now.)
 */
import { hotStore } from '../bench-agents.ts'
import { fmt } from '../progress.ts'
import { Pacer } from '../thread-probes.ts'
import { kChunk, perSec, totals } from './context.ts'
import type { ScenarioContext } from './context.ts'
import type { CpuSplit } from '../thread-cpu.ts'

export type HotVariant = 'state' | 'storage'

/** The hot agent's key, and the value its `add` puts under each new storage key (bench-agents.ts). */
export const kHotKey = 'hot'
export const kHotValue = 'test'

export interface HotResult {
  readonly variant: HotVariant
  readonly casts: number
  readonly elapsedMs: number
  /** Commands committed per second (the final reply waited for their commit). */
  readonly commandsPerSec: number
  readonly commits: number
  readonly commandsPerCommit: number
  /** CPU time of the whole process (every thread) per command, up to the final reply. */
  readonly cpuUsPerCommand: number
  /** The same CPU time by thread (ms over the phase; Linux only, else null). */
  readonly cpu: CpuSplit | null
}

export async function hot (ctx: ScenarioContext): Promise<HotResult> {
  const variant: HotVariant = 'storage'
  const ref = ctx.host.ref(hotStore, kHotKey)
  const base = await ref.call('sync')
  const before = totals(ctx.host)
  const pacer = new Pacer(ctx.probes)
  const total = ctx.hotCasts
  let casts = 0
  const endCpu = await ctx.probes.cpu()
  const cpu0 = process.cpuUsage()
  const start = performance.now()
  const phase = ctx.progress.phase(`hot (${variant})`, total, () => ({
    value: casts,
    detail: `${fmt(casts)} casts, ${fmt(perSec(casts, performance.now() - start))}/s`
  }))
  while (casts < total) {
    const n = Math.min(kChunk * 2, total - casts)
    for (let i = 0; i < n; i++) ref.cast('add', 1)
    casts += n
    await pacer.step()
  }
  const n = await ref.call('sync')
  const elapsedMs = performance.now() - start
  const cpu = process.cpuUsage(cpu0)
  const threads = endCpu()
  await pacer.drain()
  await ctx.probes.barrier()
  if (n - base !== total) {
    phase.done('FAILED')
    throw new Error(`hot agent counted ${n - base} of ${total} commands`)
  }
  const commits = totals(ctx.host).commits - before.commits
  const result: HotResult = {
    variant,
    casts: total,
    elapsedMs,
    commandsPerSec: perSec(total, elapsedMs),
    commits,
    commandsPerCommit: commits > 0 ? total / commits : 0,
    cpuUsPerCommand: (cpu.user + cpu.system) / total,
    cpu: threads
  }
  phase.done(`${fmt(total)} commands committed in ${(elapsedMs / 1000).toFixed(2)} s — ${fmt(result.commandsPerSec)}/s, ${fmt(result.commandsPerCommit)} per commit, ${result.cpuUsPerCommand.toFixed(2)} µs CPU each (all threads)`)
  return result
}
