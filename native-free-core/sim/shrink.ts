/**
 * Shrinking a failing run to a shorter, plainer one. Every candidate is replayed from
 * scratch and kept only if it still fails and is better: its failure comes after fewer
 * steps; at equal steps, with fewer faults, then fewer and smaller choices (closer to
 * "oldest message, no fault").
 *
 * Two representations of a run are edited, in this order:
 *
 * 1. Its *schedule* — one record per step: which message (by content, so it is found
 *    again wherever it now sits) plus that step's fault choices (ScheduleChooser).
 *    Deleting records removes deliveries that did not matter, as delta debugging of
 *    executions does (ddmin: halves, quarters, ... single steps); a failure caused by
 *    two of sixteen deliveries shrinks to those two and their causes. Then each
 *    record's faults are set to none, one record at a time.
 * 2. Its raw *choices* (the approach of Hypothesis): delete runs of 8, 4, 2, 1 choices,
 *    and lower each choice to 0, else by one.
 *
 * The passes repeat until none improves or the attempts run out. The result is a local
 * minimum, not a proof of minimality; when the exhaustive phase found the failure, its
 * trace already has the fewest steps, and shrinking only makes it plainer.
 */
import type { Chooser, StepRecord } from './choices.ts'
import { ReplayChooser, ScheduleChooser } from './choices.ts'

export interface Attempt {
  readonly failed: boolean
  /** Steps until the failure (or until the run ended). */
  readonly steps: number
  /** Faults injected until then. */
  readonly faults: number
  /** The choices the run used until then. */
  readonly made: readonly number[]
  /** The run as step records (present when it was recorded). */
  readonly records?: readonly StepRecord[]
  /** False when the run stopped at maxSteps. */
  readonly complete?: boolean
}

export async function shrink (start: Attempt, attempt: (chooser: Chooser) => Promise<Attempt>, maxAttempts: number): Promise<Attempt> {
  let best = start
  let attempts = 0
  const tryIt = async (chooser: Chooser): Promise<boolean> => {
    if (attempts >= maxAttempts) return false
    attempts++
    const a = await attempt(chooser)
    if (a.failed && better(a, best)) {
      best = a
      return true
    }
    return false
  }
  let improved = true
  while (improved && attempts < maxAttempts) {
    improved = false
    // 1. the schedule: drop deliveries, then faults
    for (let size = Math.max(1, (best.records?.length ?? 0) >> 1); size >= 1; size >>= 1) {
      for (let i = 0; i + size <= (best.records?.length ?? 0) && attempts < maxAttempts;) {
        const r = best.records!
        if (await tryIt(new ScheduleChooser([...r.slice(0, i), ...r.slice(i + size)]))) improved = true
        else i += size
      }
    }
    for (let i = 0; i < (best.records?.length ?? 0) && attempts < maxAttempts; i++) {
      const r = best.records!
      if (!r[i]!.faults.some((f) => f !== 0)) continue
      const plain = r.map((rec, j) => (j === i ? { key: rec.key, faults: [] } : rec))
      if (await tryIt(new ScheduleChooser(plain))) improved = true
    }
    // 2. the raw choices
    for (const size of [8, 4, 2, 1]) {
      for (let i = 0; i + size <= best.made.length && attempts < maxAttempts;) {
        const c = best.made
        if (await tryIt(new ReplayChooser([...c.slice(0, i), ...c.slice(i + size)]))) improved = true
        else i++
      }
    }
    for (let i = 0; i < best.made.length && attempts < maxAttempts; i++) {
      const v = best.made[i]!
      if (v === 0) continue
      const c = [...best.made]
      c[i] = 0
      if (await tryIt(new ReplayChooser(c))) { improved = true; continue }
      if (v > 1) {
        c[i] = v - 1
        if (await tryIt(new ReplayChooser(c))) improved = true
      }
    }
  }
  return best
}

function better (a: Attempt, b: Attempt): boolean {
  if (a.steps !== b.steps) return a.steps < b.steps
  if (a.faults !== b.faults) return a.faults < b.faults
  if (a.made.length !== b.made.length) return a.made.length < b.made.length
  for (let i = 0; i < a.made.length; i++) {
    if (a.made[i] !== b.made[i]) return a.made[i]! < b.made[i]!
  }
  return false
}
