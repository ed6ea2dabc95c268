/**
 * The README's "Testing your agents" section, run as written: its example, the values
 * its comments claim, and the failure printout it shows for the version without the
 * idempotency check.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { defineAgent, explore, simulate } from '../../native-free-core/index.ts'
import * as core from '../../native-free-core/index.ts'
import type { WorldView } from '../../native-free-core/index.ts'

export const account = defineAgent({
  type: 'account',
  initial: () => ({ balance: 100, done: {} as Record<string, boolean> }),
  commands: {
    transfer (s, t: { to: string, amount: number, tx: string }, ctx) {
      if (t.tx in s.done) return s.done[t.tx]
      const ok = s.balance >= t.amount
      s.done[t.tx] = ok
      if (ok) {
        s.balance -= t.amount
        ctx.send({ type: 'account', key: t.to }, 'deposit', t.amount)
      }
      return ok
    },
    deposit (s, amount: number) { s.balance += amount }
  }
})

// the same, without the `done` check
const withoutDone = defineAgent({
  type: 'account',
  initial: () => ({ balance: 100 }),
  commands: {
    transfer (s, t: { to: string, amount: number, tx: string }, ctx) {
      const ok = s.balance >= t.amount
      if (ok) {
        s.balance -= t.amount
        ctx.send({ type: 'account', key: t.to }, 'deposit', t.amount)
      }
      return ok
    },
    deposit (s, amount: number) { s.balance += amount }
  }
})

const accounts = ['a', 'b', 'c', 'd']
const messages = accounts.map((key, i) => ({
  to: { type: 'account', key }, method: 'transfer',
  payload: { to: accounts[(i + 1) % 4]!, amount: 30, tx: `t${i}` }
}))

function invariant (world: WorldView): void {
  const balances = accounts.map((key) => world.state({ type: 'account', key }).balance)
  for (const b of balances) assert.ok(b >= 70, `an account paid out ${100 - b}, more than its one transfer of 30`)
  if (world.idle) assert.equal(balances.reduce((x, y) => x + y), 400, 'money was created or lost')
}
const faults = { drop: 0.1, duplicate: 0.1, reorder: 0.1, delay: 0.1, crash: 0.1 }

test('README: transfers survive every ordering and every fault', async () => {
  const result = await explore({ agents: [account], messages, invariant, faults })
  assert.ok(result.ok, result.printout)
  assert.equal(result.exhaustive, true)
})

test('README: one run, step by step', async () => {
  const world = await simulate({ agents: [account], messages, seed: 42, faults: { crash: 0.2 } })
  assert.deepEqual(world.state({ type: 'account', key: 'a' }), { balance: 70, done: { t0: true } })
  assert.deepEqual(world.replies[0], { ok: true, value: true })
  const again = await simulate({ agents: [account], messages, seed: 42, faults: { crash: 0.2 } })
  assert.equal(again.print(), world.print())
})

test('README: the printout shown for the version without the done check is the one explore gives', async () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const shown = /Without the `done` check[\s\S]*?```\n([\s\S]*?)\n```/.exec(readme)?.[1]
  assert.ok(shown !== undefined, 'the README shows a printout')
  const result = await explore({ agents: [withoutDone], messages, invariant, faults })
  assert.equal(result.ok, false)
  assert.equal(result.printout, shown)
})

test('README: the example imports everything from shoal/core, which exports it (no native addon needed)', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const example = /```ts\n\/\/ bank\.test\.ts\n([\s\S]*?)\n```/.exec(readme)?.[1]
  assert.ok(example !== undefined, 'the README has the bank.test.ts example')
  const imports = [...example.matchAll(/^import (type )?\{([^}]*)\} from '([^']+)'/gm)]
  assert.deepEqual([...new Set(imports.map((m) => m[3]).filter((spec) => spec!.startsWith('shoal')))], ['shoal/core'])
  const values = imports.filter((m) => m[1] === undefined && m[3] === 'shoal/core').flatMap((m) => m[2]!.split(',').map((n) => n.trim()))
  assert.deepEqual(values.sort(), ['defineAgent', 'explore', 'simulate'])
  for (const name of values) assert.equal(typeof (core as Record<string, unknown>)[name], 'function', `shoal/core exports ${name}`)
})
