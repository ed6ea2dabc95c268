/**
 * What every scenario gets: the running host, its thread probes (barriers, memory),
 * the progress display, the run's parameters and a seeded PRNG. Scenarios return
 * plain result objects that go into the JSON as they are (stable field names).
 */
import type { Host } from '../../index.ts'
import type { Progress } from '../progress.ts'
import type { Rng } from '../rng.ts'
import type { ThreadProbes } from '../thread-probes.ts'

export interface ScenarioContext {
  readonly host: Host
  readonly probes: ThreadProbes
  readonly progress: Progress
  /** Agents the scenarios spread over: keys `k0` … `k{agents-1}` of type `counter`. */
  readonly agents: number
  /** Length of each time-bounded phase. */
  readonly durationMs: number
  /** Casts to the one hot agent. */
  readonly hotCasts: number
  /** Calls in flight in the mixed scenario. */
  readonly concurrency: number
  readonly rng: Rng
  /** A scratch directory on the data directory's filesystem (raw disk baselines). */
  readonly scratchDir: string
}

/** Casts between two flow-control barriers (a barrier is one query per thread). */
export const kChunk = 8192

export { agentKey } from '../bench-ids.ts'

export interface Totals {
  readonly messages: number
  readonly commits: number
  readonly committedStates: number
  readonly activeAgents: number
}

/** The host's counters summed over its threads. */
export function totals (host: Host): Totals {
  const s = host.stats()
  let commits = 0
  let committedStates = 0
  for (const w of s.workers) {
    commits += w.commits
    committedStates += w.committedStates
  }
  return { messages: s.messages, commits, committedStates, activeAgents: s.activeAgents }
}

export function perSec (n: number, ms: number): number {
  return ms > 0 ? n / (ms / 1000) : 0
}
