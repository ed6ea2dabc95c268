/**
 * One chaos run: a real etcd and `hosts` host processes on 127.0.0.1, each behind a TCP
 * proxy that its peers dial (its `advertise` address), the workload (workload.ts)
 * running through every host while the fault injector applies the seeded plan
 * (fault-plan.ts) one fault at a time; then the faults stop, everything is healed, the
 * load finishes its last ops, and the checker (checker.ts) holds the final state
 * against the ledger.
 *
 *   const report = await runChaos({ seed: 7, rounds: 4, hosts: 3, agents, clusterModule })
 *   report.violations   // [] when every invariant held
 *   formatReport(report) // seed, options, the fault schedule with times, the counts
 *
 * The seed gives the fault plan and the workload's choices; `replicas` goes to the
 * cluster plugin as it is (1 until failover lands).
 */
import { ClusterProcs } from '../procs/cluster-procs.ts'
import { startEtcd } from '../procs/etcd-process.ts'
import { check } from './checker.ts'
import type { CheckReport } from './checker.ts'
import { FaultInjector } from './fault-injector.ts'
import type { FaultEvent } from './fault-injector.ts'
import { describeFault, faultKinds, planFaults } from './fault-plan.ts'
import type { FaultKind } from './fault-plan.ts'
import { Ledger } from './ledger.ts'
import { Workload, accountKey, counterKey } from './workload.ts'
import { ACCOUNT, COUNTER, shardOfAgent } from './chaos-agents.ts'

export interface ChaosOptions {
  readonly seed: number
  /** Faults. */
  readonly rounds: number
  /** Faults at once, at most (fault-injector.ts). Default 1. */
  readonly tracks?: number
  /** Host processes, 2 or more (3–5 is the point). */
  readonly hosts: number
  /** The cluster plugin's `replicas`. Default 2 (the plugin's default with etcd). */
  readonly replicas?: number
  readonly workers?: number
  readonly counters?: number
  readonly accounts?: number
  readonly lanes?: number
  readonly transferShare?: number
  readonly leaseTtlS?: number
  readonly heartbeatMs?: number
  readonly callTimeoutMs?: number
  /** Load before the first fault, ms. */
  readonly warmupMs?: number
  readonly settleTimeoutMs?: number
  readonly drainTimeoutMs?: number
  readonly kinds?: readonly FaultKind[]
  /** The agents module the hosts load (chaos-agents.ts, built: a file URL). */
  readonly agents?: string
  /** The cluster plugin's module specifier. Default `shoal/cluster`. */
  readonly clusterModule?: string
  /** Progress lines (the schedule as it runs). Default: none. */
  readonly log?: (line: string) => void
}

export interface ChaosReport {
  readonly seed: number
  readonly options: Required<Omit<ChaosOptions, 'log' | 'agents' | 'clusterModule' | 'kinds'>> & { kinds: readonly FaultKind[] }
  readonly events: readonly FaultEvent[]
  readonly ops: number
  readonly acked: number
  readonly attempts: number
  readonly adds: number
  readonly transfers: number
  /** Ops still unacknowledged when the load stopped (given up at the deadline). */
  readonly unfinished: number
  readonly retriable: ReadonlyArray<[string, number]>
  readonly check: CheckReport
  /** From the first op to the last fault healed, ms. */
  readonly faultPhaseMs: number
  readonly totalMs: number
  readonly violations: readonly string[]
}

export const defaultAgentsModule = new URL('./chaos-agents.js', import.meta.url).href

export async function runChaos (options: ChaosOptions): Promise<ChaosReport> {
  const o = {
    seed: options.seed,
    rounds: options.rounds,
    hosts: options.hosts,
    tracks: options.tracks ?? 1,
    replicas: options.replicas ?? 2,
    workers: options.workers ?? 1,
    counters: options.counters ?? 24,
    accounts: options.accounts ?? 12,
    lanes: options.lanes ?? 8,
    transferShare: options.transferShare ?? 0.4,
    leaseTtlS: options.leaseTtlS ?? 2,
    heartbeatMs: options.heartbeatMs ?? 250,
    callTimeoutMs: options.callTimeoutMs ?? 5000,
    warmupMs: options.warmupMs ?? 500,
    settleTimeoutMs: options.settleTimeoutMs ?? 30_000,
    drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
    kinds: options.kinds ?? faultKinds
  }
  if (!Number.isInteger(o.hosts) || o.hosts < 2) throw new RangeError(`chaos hosts: expected an integer ≥ 2, got ${o.hosts}`)
  const log = options.log ?? ((): void => {})
  const ids = Array.from({ length: o.hosts }, (_, i) => `h${i}`)
  const plan = planFaults(o.seed, { hosts: ids, rounds: o.rounds, leaseTtlS: o.leaseTtlS, heartbeatMs: o.heartbeatMs, kinds: o.kinds })
  const t0 = performance.now()
  const etcd = await startEtcd()
  let procs: ClusterProcs | null = null
  try {
    procs = await ClusterProcs.create({
      agents: options.agents ?? defaultAgentsModule,
      ...(options.clusterModule === undefined ? {} : { clusterModule: options.clusterModule }),
      workers: o.workers,
      membership: { etcd: { hosts: [etcd.endpoint], leaseTtlS: o.leaseTtlS, minMembers: o.hosts } },
      proxies: true,
      // each host logs where the workload's shards go (host-child.ts): a lost update's evidence
      env: { SHOAL_TRACE_SHARDS: [...new Set([
        ...Array.from({ length: o.counters }, (_, i) => shardOfAgent(COUNTER, counterKey(i))),
        ...Array.from({ length: o.accounts }, (_, i) => shardOfAgent(ACCOUNT, accountKey(i)))
      ])].join(',') },
      host: { callTimeoutMs: o.callTimeoutMs },
      cluster: { heartbeatMs: o.heartbeatMs, replicas: o.replicas }
    })
    await procs.start(ids)
    await procs.settled(o.settleTimeoutMs)
    log(`seed ${o.seed}: ${o.hosts} hosts up (${Math.round(performance.now() - t0)} ms), ${plan.length} faults${o.tracks === 1 ? '' : ` on ${o.tracks} tracks`}:`)

    const ledger = new Ledger()
    const tLoad = performance.now()
    const faults = new FaultInjector(procs, etcd, tLoad, log)
    const workload = new Workload(procs, ledger, {
      counters: o.counters,
      accounts: o.accounts,
      lanes: o.lanes,
      transferShare: o.transferShare,
      callTimeoutMs: o.callTimeoutMs,
      attemptTimeoutMs: o.callTimeoutMs + 3000,
      seed: o.seed ^ 0x5eed
    }, () => faults.usable(), tLoad)
    workload.start()
    await new Promise((resolve) => setTimeout(resolve, o.warmupMs))
    let faultError: string | null = null
    try {
      await faults.run(plan, o.tracks)
    } catch (err) {
      faultError = (err as Error).message.split('\n')[0]!
    } finally {
      faults.stop()
      await faults.healAll(ids)
    }
    const faultPhaseMs = performance.now() - tLoad
    const unfinished = await workload.stop(o.settleTimeoutMs)
    const counts = ledger.counts()
    log(`faults done at ${Math.round(faultPhaseMs)} ms: ${counts.ops} ops (${counts.acked} acknowledged, ${counts.attempts} attempts); checking`)
    const report = await check(procs, ledger, tLoad, {
      counters: o.counters,
      accounts: o.accounts,
      settleTimeoutMs: o.settleTimeoutMs,
      drainTimeoutMs: o.drainTimeoutMs
    })
    const violations = [...report.violations]
    if (faultError !== null) violations.push(`a fault could not be healed: ${faultError}`)
    if (unfinished !== 0) violations.push(`${unfinished} op(s) never acknowledged: retried until ${o.settleTimeoutMs} ms after the faults stopped`)
    return {
      seed: o.seed,
      options: o,
      events: faults.events,
      ...counts,
      unfinished,
      retriable: [...ledger.errors.retriable].sort((a, b) => b[1] - a[1]),
      check: report,
      faultPhaseMs,
      totalMs: performance.now() - t0,
      violations
    }
  } finally {
    await procs?.close().catch(() => {})
    await etcd.stop()
  }
}

/** The report as lines: what to print, and what a failing test shows (the seed and schedule first). */
export function formatReport (r: ChaosReport): string {
  const lines = [
    `chaos seed ${r.seed}: ${r.violations.length === 0 ? 'PASS' : `FAIL (${r.violations.length} violation${r.violations.length === 1 ? '' : 's'})`}`,
    `  replay: shoal chaos --seed ${r.seed} --rounds ${r.options.rounds} --hosts ${r.options.hosts} --replicas ${r.options.replicas} --tracks ${r.options.tracks} --faults ${r.options.kinds.join(',')}`,
    `  ${r.options.hosts} hosts × ${r.options.workers} worker, replicas ${r.options.replicas}, lease TTL ${r.options.leaseTtlS} s, heartbeat ${r.options.heartbeatMs} ms; ` +
      `${r.options.counters} counters, ${r.options.accounts} accounts, ${r.options.lanes} lanes`,
    '  faults (ms from the load\'s start: injected / healed / done):'
  ]
  for (const e of r.events) {
    lines.push(`    ${String(e.startMs).padStart(6)} / ${String(e.healMs).padStart(6)} / ${String(e.endMs).padStart(6)}  ${describeFault(e.fault)}${e.notes.length === 0 ? '' : `  [${e.notes.join('; ')}]`}`)
  }
  lines.push(
    `  ops: ${r.ops} (${r.adds} adds, ${r.transfers} transfers), ${r.acked} acknowledged, ${r.attempts} attempts, ${r.unfinished} unfinished; ` +
      `${Math.round(r.ops / Math.max(1, r.events.length))} ops per round`,
    `  retried errors: ${r.retriable.length === 0 ? 'none' : r.retriable.map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `  applied twice after a retry (allowed): ${r.check.retriedTwice}; balances ${r.check.totalBalance}`,
    `  hosts at the end: ${r.check.hosts.map((h) => `${h.id} epoch ${h.epoch}, ${h.served} shards, moved in/out ${h.movedIn}/${h.movedOut}${h.calledOff === 0 ? '' : `, ${h.calledOff} called off`}${h.staleCopies === 0 ? '' : `, ${h.staleCopies} late send copies dropped`}`).join('; ')}`,
    `  fault phase ${(r.faultPhaseMs / 1000).toFixed(1)} s, settled in ${Math.round(r.check.settleMs)} ms, drained in ${Math.round(r.check.drainMs)} ms, run ${(r.totalMs / 1000).toFixed(1)} s`
  )
  for (const v of r.violations) lines.push(`  VIOLATION ${v}`)
  if (r.check.evidence.length !== 0) lines.push('  evidence (!! = acknowledged, missing at the end):', ...r.check.evidence.map((l) => `    ${l}`))
  return lines.join('\n')
}
