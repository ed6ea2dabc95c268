/**
 * A transfer that is not idempotent is caught when a client's message arrives twice,
 * with the shortest possible trace; the engine itself never applies a durable send twice.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { explore, simulate } from '../../native-free-core/index.ts'
import type { TraceEntry } from '../../native-free-core/index.ts'
import { account, ledger, naiveAccount, ringTransfers, START } from '../fixtures/bank.ts'

const accounts = ['a', 'b', 'c', 'd']
const messages = ringTransfers(accounts, 4)

test('a transfer applied twice by a client retry is caught, shrunk to its two deliveries', async () => {
  const faults = { duplicate: 0.1 }
  const result = await explore({ agents: [naiveAccount], messages, invariant: ledger(accounts, messages), faults })
  assert.equal(result.ok, false)
  if (result.ok) return
  assert.equal(result.steps, 2, result.printout)
  const delivered = result.trace.filter((e) => e.kind === 'deliver')
  assert.equal(delivered.length, 2)
  assert.deepEqual(delivered.map((e) => [e.to, e.method, e.payload]), [delivered[0]!, delivered[0]!].map((e) => [e.to, e.method, e.payload]))
  assert.equal(result.trace.filter((e) => e.kind === 'duplicate').length, 1)
  assert.match(result.error, /paid out 60, more than all its transfers \(30\)/)
  assert.match(result.printout, /DUPLICATE/)
  assert.match(result.printout, /the invariant failed here/)
  // the replay string reruns the shrunk trace, step for step
  const world = await simulate({ agents: [naiveAccount], messages, faults, replay: result.replay })
  assert.deepEqual(world.trace.filter((e) => e.step <= result.steps), result.trace)
})

test('the idempotent version passes the same exploration, exhaustively', async () => {
  const result = await explore({ agents: [account], messages, invariant: ledger(accounts, messages), faults: { duplicate: 0.1, max: 2 }, maxRuns: 50_000 })
  assert.equal(result.ok, true, result.printout)
  assert.equal(result.exhaustive, true, result.printout)
})

test('a duplicated durable send is applied once: the runtime discards the copy (effectively-once)', async () => {
  let duplicatedSends = 0
  for (let seed = 1; seed <= 40; seed++) {
    // only one transfer per account, so a client retry cannot be told apart by the ledger
    const world = await simulate({ agents: [naiveAccount], messages: ringTransfers(accounts, 4), seed, faults: { duplicate: 0.3 } })
    const clients = new Set(world.trace.filter((e): e is Extract<TraceEntry, { kind: 'deliver' }> => e.kind === 'deliver' && e.from.startsWith('client')).map((e) => e.msg))
    for (const dup of world.trace) {
      if (dup.kind !== 'duplicate' || clients.has(dup.msg)) continue
      duplicatedSends++
      assert.ok(world.trace.some((e) => e.kind === 'discard' && e.msg === dup.copy), `seed ${seed}: copy #${dup.copy} of send #${dup.msg} was applied`)
    }
    let total = 0
    for (const key of accounts) total += world.state<{ balance: number }>({ type: 'account', key }).balance
    assert.equal(total, START * accounts.length, `seed ${seed}: money is conserved`)
  }
  assert.ok(duplicatedSends > 5, `${duplicatedSends} duplicated sends seen`)
})
