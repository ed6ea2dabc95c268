/**
 * The correct transfer agent holds its ledger under every ordering the scheduler can
 * choose, exhaustively, and under every kind of fault.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { explore } from '../../native-free-core/index.ts'
import { account, ledger, ringTransfers } from '../fixtures/bank.ts'

const accounts = ['a', 'b', 'c', 'd']

test('every ordering of 8 transfers among 4 accounts keeps the ledger (exhaustive search)', async () => {
  const messages = ringTransfers(accounts, 8)
  const result = await explore({ agents: [account], messages, invariant: ledger(accounts, messages), maxRuns: 100_000 })
  assert.equal(result.ok, true, result.printout)
  assert.equal(result.exhaustive, true, result.printout)
  // 8 transfers and 8 deposits interleave in far more orders than there are states
  assert.ok(result.states > 1_000, `${result.states} states`)
  assert.match(result.printout, /every reachable state/)
})

test('every ordering with one fault of any kind, then random runs with many, keeps the ledger', async () => {
  const messages = ringTransfers(accounts, 4)
  const faults = { drop: 0.1, duplicate: 0.1, reorder: 0.1, delay: 0.1, crash: 0.1 }
  const exhaustive = await explore({ agents: [account], messages, invariant: ledger(accounts, messages), faults: { ...faults, max: 1 }, maxRuns: 50_000 })
  assert.equal(exhaustive.ok, true, exhaustive.printout)
  assert.equal(exhaustive.exhaustive, true, exhaustive.printout)
  assert.equal(exhaustive.faultsPerRun, 1)
  const many = ringTransfers(accounts, 8)
  const random = await explore({ agents: [account], messages: many, invariant: ledger(accounts, many), faults, maxRuns: 1_500 })
  assert.equal(random.ok, true, random.printout)
  assert.equal(random.runs, 1_500)
})
