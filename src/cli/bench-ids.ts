/**
 * The agent keys and id strings every part of the bench uses — scenarios, baselines,
 * the baseline worker — so that raw baselines hash, pack and look up exactly the
 * strings the engine does.
 */
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'

/** '0' … '999', and '000' … '999': the digit groups agentKey joins. */
const GROUP = Array.from({ length: 1000 }, (_, n) => n.toFixed(0))
const GROUP3 = GROUP.map((g) => g.padStart(3, '0'))

/**
 * Key of the i-th bench agent (type `counter`): `k` and i's decimal digits (i is a
 * non-negative integer), joined from 3-digit groups of two precomputed tables. Not with
 * `${i}` or `String(i)`: those go through V8's number-string cache, an old-generation
 * table that keeps each number's new string — so with keys picked at random among a
 * million, every call's key string survived the main thread's next scavenge, and
 * ≈ 100 KB of them per scavenge were promoted: the latency scenario's main-thread
 * scavenges copied ≈ 300 KB and took 2–3 ms where the same calls with fresh strings copy
 * ≈ 25 KB in ≈ 0.5 ms (bench/RESULTS.md, issue 13, 2026-12-07 night, branch qtail). Nor
 * with `toFixed(0)` (qtail's fix, which touches no cache either): it is a runtime call,
 * 70–200 ns a key against ≈ 20 ns joined, and the activate scenario builds a key per
 * activation on the thread that drives them — 7–12 % of that thread's time in a profile
 * (bench/RESULTS.md, issue 13, 2026-12-07 late night, branch act2). Joined strings are
 * fresh ones, like toFixed's; the strings are the same.
 */
export function agentKey (i: number): string {
  if (i < 1000) return 'k' + GROUP[i]!
  if (i < 1_000_000) return 'k' + GROUP[(i / 1000) | 0]! + GROUP3[i % 1000]!
  if (i < 1_000_000_000) {
    const hi = (i / 1_000_000) | 0
    const lo = i - hi * 1_000_000
    return 'k' + GROUP[hi]! + GROUP3[(lo / 1000) | 0]! + GROUP3[lo % 1000]!
  }
  return 'k' + i.toFixed(0)
}

/** Full id string of the i-th bench agent, as the engine's tables and LMDB keys hold it. */
export function benchId (i: number): string {
  return idString(DEFAULT_QUOTA, 'counter', agentKey(i))
}
