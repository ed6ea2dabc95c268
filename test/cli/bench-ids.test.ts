/**
 * The bench's agent keys are `k` and the index's decimal digits, whatever builds them
 * (bench-ids.ts builds them without V8's number-string cache): the same strings as
 * before, so the same --seed picks the same agents and the raw baselines hash the same ids.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { agentKey, benchId } from '../../src/cli/bench-ids.ts'
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'
import { Rng } from '../../src/cli/rng.ts'

test('agentKey(i) is `k${i}` for the indices the bench uses', () => {
  const rng = new Rng(7)
  const picks = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 10_010, 100_001, 999_999, 1_000_000, 1_000_999, 1_001_000, 9_999_999, 10_000_000, 999_999_999, 1_000_000_000, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1]
  for (let n = 0; n < 10_000; n++) picks.push(rng.below(10_000_000))
  for (const i of picks) {
    assert.equal(agentKey(i), `k${i}`)
    assert.equal(benchId(i), idString(DEFAULT_QUOTA, 'counter', `k${i}`))
  }
})
