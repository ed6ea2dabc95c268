/**
 * The exhaustive search's reductions change its cost, never what it covers: with sleep
 * sets and without, with snapshots and with replays, it visits the same states, on
 * seeded random scenarios of agents that relay messages to each other.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import type { AgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import { Explorer } from '../../native-free-core/sim/explore.ts'
import { prepareScenario } from '../../native-free-core/sim/scenario.ts'
import type { ScenarioMessage } from '../../native-free-core/sim/scenario.ts'
import type { FaultOptions } from '../../native-free-core/sim/faults.ts'
import { between, prng } from '../fixtures/prng.ts'

interface Relay { readonly route: readonly string[], readonly tag: number }

const node = defineAgent({
  type: 'node',
  initial: () => ({ sum: 0, last: -1 }),
  commands: {
    relay (s, r: Relay, ctx) {
      // order-sensitive: `last` and the weighted sum depend on who came first
      s.sum = s.sum * 3 + r.tag
      s.last = r.tag
      const [next, ...rest] = r.route
      if (next !== undefined) ctx.send({ type: 'node', key: next }, 'relay', { route: rest, tag: r.tag })
    }
  }
})

function scenario (seed: number): ScenarioMessage[] {
  const rand = prng(seed)
  const keys = ['a', 'b', 'c', 'd'].slice(0, between(rand, 2, 4))
  return Array.from({ length: between(rand, 2, 3) }, (_, i) => ({
    to: { type: 'node', key: keys[between(rand, 0, keys.length - 1)]! },
    method: 'relay',
    payload: { route: Array.from({ length: between(rand, 0, 2) }, () => keys[between(rand, 0, keys.length - 1)]!), tag: i }
  }))
}

async function statesOf (agents: readonly AgentDefinition[] | (() => AgentDefinition[]), messages: ScenarioMessage[], faults: FaultOptions, reduction: boolean): Promise<{ states: number, runs: number }> {
  const explorer = new Explorer(prepareScenario({ agents, messages, faults }), () => true, 1_000_000, reduction)
  const result = await explorer.run(1)
  assert.equal(result.exhaustive, true)
  return { states: result.states, runs: result.runs }
}

test('sleep sets and snapshots visit exactly the states a plain replaying search visits', async () => {
  let saved = 0
  for (let seed = 1; seed <= 12; seed++) {
    const messages = scenario(seed)
    for (const faults of [{}, { duplicate: 0.1, crash: 0.1, max: 1 }, { reorder: 0.1, drop: 0.1, max: 1 }]) {
      const reduced = await statesOf([node], messages, faults, true)
      const plain = await statesOf([node], messages, faults, false)
      const what = `seed ${seed}, faults ${JSON.stringify(faults)}`
      assert.equal(reduced.states, plain.states, what)
      // an agents factory makes the search replay paths instead of restoring snapshots
      if (seed % 3 === 0) assert.equal((await statesOf(() => [node], messages, faults, true)).states, plain.states, what)
      assert.ok(reduced.runs <= plain.runs, what)
      saved += plain.runs - reduced.runs
    }
  }
  assert.ok(saved > 0, 'sleep sets saved some runs')
})
