/**
 * Process death: a child process hosting durable agents under load is killed with
 * SIGKILL at a moment chosen by a seeded PRNG, a new host opens the same dataDir, and
 * every acknowledged command's effect is there — and, for sends between agents, applied
 * exactly once: money moved only by ctx.send is neither lost nor doubled.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { prng, between } from '../fixtures/prng.ts'
import { acknowledgedTallies, durableHost, runAndKill, tempDataDir } from './helpers.ts'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'

async function storedSends (dataDir: string): Promise<number> {
  const store = new LmdbStore({ path: dataDir, durability: 'disk' })
  const n = [...store.outbox()].length
  await store.close()
  return n
}

const childUrl = new URL('../fixtures/durable-child.js', import.meta.url)

for (const seed of [1, 2]) {
  test(`kill -9 under load: every acknowledged command is there after restart (seed ${seed})`, async () => {
    const dataDir = tempDataDir()
    const acks = between(prng(seed), 300, 3000)
    const acked = acknowledgedTallies(await runAndKill(childUrl, [dataDir, 'tally', String(seed)], acks))
    const host = await durableHost(dataDir)
    for (const [key, n] of acked) {
      const ref = host.ref('tally', key)
      const stored = await ref.call('get')
      // the call in flight at the kill may have committed without its reply getting out
      assert.ok(stored === n || stored === n + 1, `${key}: acknowledged ${n}, stored ${stored}`)
      assert.equal(await ref.call('keys'), stored, `${key}: one storage key per committed command`)
    }
    await host.close()
  })
}

test('kill -9 in the middle of chains of transfers: after restart the total is conserved', async () => {
  const dataDir = tempDataDir()
  const accounts = Array.from({ length: 20 }, (_, i) => `a${i}`)
  let host = await durableHost(dataDir)
  await Promise.all(accounts.map((a) => host.ref('account', a).call('fund', 1000)))
  await host.close()

  const lines = await runAndKill(childUrl, [dataDir, 'bank', '7'], between(prng(7), 500, 2500))
  assert.ok(lines.length > 500)
  assert.ok(await storedSends(dataDir) > 0, 'the kill caught sends committed by their senders and not yet applied')

  // the restart delivers every send that was stored and not yet applied; close() lets the
  // chains they start run to the end
  host = await durableHost(dataDir)
  await host.close()
  assert.equal(await storedSends(dataDir), 0, 'every stored send was applied, and its record removed with it')
  host = await durableHost(dataDir)
  const balances = await Promise.all(accounts.map((a) => host.ref('account', a).call('balance')))
  assert.equal(balances.reduce((x, y) => x + y, 0), 20 * 1000)
  const deposits = await Promise.all(accounts.map((a) => host.ref('account', a).call('deposits')))
  assert.ok(deposits.reduce((x, y) => x + y, 0) >= lines.length - 1, 'every acknowledged transfer was deposited')
  await host.close()
})
