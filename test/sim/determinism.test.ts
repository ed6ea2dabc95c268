/**
 * Same seed, same run: the trace, the replies and the states of two runs of one seed
 * are identical, with every fault on; and explore refuses agents that are not
 * deterministic instead of reporting a failure it cannot reproduce.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { SimulationError, explore, simulate } from '../../native-free-core/index.ts'
import { account, ringTransfers } from '../fixtures/bank.ts'

const accounts = ['a', 'b', 'c', 'd']
const faults = { drop: 0.1, duplicate: 0.1, reorder: 0.1, delay: 0.1, crash: 0.1 }
const messages = ringTransfers(accounts, 8)

test('one seed twice gives the same trace, replies and states', async () => {
  for (const seed of [1, 7, 0xffffffff]) {
    const a = await simulate({ agents: [account], messages, seed, faults, ticks: 2 })
    const b = await simulate({ agents: [account], messages, seed, faults, ticks: 2 })
    assert.ok(a.trace.length > 16)
    assert.deepEqual(b.trace, a.trace)
    assert.equal(JSON.stringify(b.trace), JSON.stringify(a.trace))
    assert.equal(b.print(), a.print())
    assert.deepEqual(b.replies, a.replies)
    for (const key of accounts) assert.deepEqual(b.state({ type: 'account', key }), a.state({ type: 'account', key }))
    assert.equal(a.seed, seed)
    assert.equal(a.complete, true)
    assert.equal(a.idle, true)
  }
})

test('different seeds choose different orderings', async () => {
  const traces = new Set<string>()
  for (let seed = 1; seed <= 6; seed++) traces.add(JSON.stringify((await simulate({ agents: [account], messages, seed })).trace))
  assert.ok(traces.size >= 5, `${traces.size} distinct traces of 6`)
})

test('a failure that does not come back on replay is reported as SimulationError', async () => {
  let calls = 0 // module state shared by every run: the second run behaves differently
  const flaky = defineAgent({
    type: 'flaky',
    initial: () => ({ n: -1 }),
    commands: { hit (s: { n: number }) { s.n = ++calls % 2 } }
  })
  await assert.rejects(
    explore({
      agents: [flaky],
      messages: [{ to: { type: 'flaky', key: 'x' }, method: 'hit' }],
      invariant: (w) => w.state<{ n: number }>({ type: 'flaky', key: 'x' }).n !== 0
    }),
    (err: unknown) => err instanceof SimulationError && (err as SimulationError).code === 'SHOAL_ERR_SIMULATION')
})
