/**
 * `shoal chaos` (`npm run chaos`): one chaos run (chaos-run.ts), its schedule printed as
 * it goes, then the report. The seed is printed first, so a run that fails can be
 * replayed with `--seed N`; the exit code is 1 when an invariant broke.
 */
import { randomInt } from 'node:crypto'
import { formatReport, runChaos } from './chaos-run.ts'
import type { FaultKind } from './fault-plan.ts'

export interface ChaosFlags {
  readonly seed?: number
  readonly rounds: number
  readonly tracks: number
  readonly hosts: number
  readonly replicas: number
  readonly workers: number
  readonly lanes: number
  readonly leaseTtl: number
  readonly faults: readonly FaultKind[]
}

/** Runs one chaos run and prints it; resolves with the process's exit code. */
export async function runChaosCommand (flags: ChaosFlags): Promise<number> {
  const seed = flags.seed ?? randomInt(1, 2 ** 31 - 1)
  process.stdout.write(`shoal chaos: seed ${seed} (replay: --seed ${seed})\n`)
  const report = await runChaos({
    seed,
    rounds: flags.rounds,
    tracks: flags.tracks,
    hosts: flags.hosts,
    replicas: flags.replicas,
    workers: flags.workers,
    lanes: flags.lanes,
    leaseTtlS: flags.leaseTtl,
    kinds: flags.faults,
    log: (line) => process.stdout.write(`${line}\n`)
  })
  process.stdout.write(`${formatReport(report)}\n`)
  return report.violations.length === 0 ? 0 : 1
}
