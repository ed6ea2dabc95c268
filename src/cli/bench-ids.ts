/**
 * The agent keys and id strings every part of the bench uses — scenarios, baselines,
 * the baseline worker — so that raw baselines hash, pack and look up exactly the
 * strings the engine does.
 */
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'

/** Key of the i-th bench agent (type `counter`). */
export function agentKey (i: number): string {
  return `k${i}`
}

/** Full id string of the i-th bench agent, as the engine's tables and LMDB keys hold it. */
export function benchId (i: number): string {
  return idString(DEFAULT_QUOTA, 'counter', agentKey(i))
}
