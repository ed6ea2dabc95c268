/**
 * A crash between a turn and its commit rolls the agent back as a host would: its state
 * returns to the last commit, the turn's reply and sends never leave, a durable send it
 * was handling is delivered again and a client's message is lost.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { explore, simulate } from '../../native-free-core/index.ts'
import { account, cachedAccountAgents, ledger, ringTransfers } from '../fixtures/bank.ts'

const accounts = ['a', 'b', 'c', 'd']
const one = [{ to: { type: 'account', key: 'a' }, method: 'transfer', payload: { to: 'b', amount: 30, tx: 't0' } }]
const balance = (world: { state: <S>(a: { type: string, key: string }) => S }, key: string): number => world.state<{ balance: number }>({ type: 'account', key }).balance

test('a crash before the commit of a client transfer: rolled back, no deposit sent, the caller gets WorkerCrashedError', async () => {
  // the only choice of this run: the first commit crashes
  const world = await simulate({ agents: [account], messages: one, faults: { crash: 0.5 }, replay: 'shoal-sim/1;faults=inf;1' })
  assert.deepEqual(world.trace.map((e) => e.kind), ['deliver', 'crash', 'reply'])
  assert.equal(balance(world, 'a'), 100)
  assert.equal(balance(world, 'b'), 100)
  assert.deepEqual(world.agents(), [], 'nothing was ever committed')
  const reply = world.replies[0]
  assert.equal(reply?.ok, false)
  assert.equal(reply?.ok === false && reply.error.code, 'SHOAL_ERR_WORKER_CRASHED')
  assert.ok(world.trace.some((e) => e.kind === 'crash' && e.input === 'lost'))
})

test('a crash before the commit of a deposit: rolled back, then delivered again from the outbox and applied once', async () => {
  // commit the transfer, crash the deposit's first commit, commit the redelivery
  const world = await simulate({ agents: [account], messages: one, faults: { crash: 0.5 }, replay: 'shoal-sim/1;faults=inf;0.1.0' })
  const crash = world.trace.find((e) => e.kind === 'crash')
  assert.ok(crash !== undefined && crash.kind === 'crash')
  assert.equal(crash.input, 'redelivered')
  assert.equal(crash.agent, 'account/b')
  const deliveries = world.trace.filter((e) => e.kind === 'deliver' && e.msg === crash.msg)
  assert.equal(deliveries.length, 2, 'the deposit was delivered again')
  assert.equal(balance(world, 'a'), 70)
  assert.equal(balance(world, 'b'), 130)
  assert.equal(world.replies[0]?.ok, true)
})

test('a version whose dedup cache outlives a rollback loses money, and explore catches it', async () => {
  const messages = ringTransfers(accounts, 8)
  const result = await explore({ agents: cachedAccountAgents, messages, invariant: ledger(accounts, messages), faults: { crash: 0.1 } })
  assert.equal(result.ok, false)
  if (result.ok) return
  assert.match(result.error, /at the end account . holds \d+, but the acknowledged transfers make it \d+/)
  const redelivered = result.trace.filter((e) => e.kind === 'crash' && e.input === 'redelivered')
  assert.ok(redelivered.length >= 1, result.printout)
  assert.ok(result.steps <= result.foundSteps)
  assert.match(result.printout, /CRASH .* redelivered/)
})

test('the version that keeps its dedup in its state survives crashes: exhaustive with two, random with many', async () => {
  const four = ringTransfers(accounts, 4)
  const exhaustive = await explore({ agents: [account], messages: four, invariant: ledger(accounts, four), faults: { crash: 0.1, max: 2 }, maxRuns: 50_000 })
  assert.equal(exhaustive.ok, true, exhaustive.printout)
  assert.equal(exhaustive.exhaustive, true, exhaustive.printout)
  const eight = ringTransfers(accounts, 8)
  const random = await explore({ agents: [account], messages: eight, invariant: ledger(accounts, eight), faults: { crash: 0.3 }, maxRuns: 1_000 })
  assert.equal(random.ok, true, random.printout)
})
