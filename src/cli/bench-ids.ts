/**
 * The agent keys and id strings every part of the bench uses — scenarios, baselines,
 * the baseline worker — so that raw baselines hash, pack and look up exactly the
 * strings the engine does.
 */
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'

/**
 * Key of the i-th bench agent (type `counter`): `k` and i's decimal digits (i is a
 * non-negative integer). Built with `toFixed(0)` rather than `${i}` or `String(i)`: those
 * go through V8's number-string cache, an old-generation table that keeps each number's
 * new string — so with keys picked at random among a million, every call's key string
 * survived the main thread's next scavenge, and ≈ 100 KB of them per scavenge were
 * promoted: the latency scenario's main-thread scavenges copied ≈ 300 KB and took
 * 2–3 ms where the same calls with fresh strings copy ≈ 25 KB in ≈ 0.5 ms
 * (bench/RESULTS.md, issue 13, 2026-12-07 night, branch qtail). `toFixed` does not touch the
 * cache; the strings are the same.
 */
export function agentKey (i: number): string {
  return 'k' + i.toFixed(0)
}

/** Full id string of the i-th bench agent, as the engine's tables and LMDB keys hold it. */
export function benchId (i: number): string {
  return idString(DEFAULT_QUOTA, 'counter', agentKey(i))
}
