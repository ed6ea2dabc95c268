/**
 * Receiver-side dedup (durable-outbox.ts, dedup mode — what the cluster uses between
 * hosts) with real threads, real LMDB and a real kill -9, on one host: the receiving
 * thread records each applied send in its own batch, acknowledges it by deleting the
 * sender's record (src/storage/local-acks.ts), and forgets its applied record later.
 * Money moves only by ctx.send: the total is conserved exactly, and nothing is left
 * behind — no outbox record, no applied record.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { prng, between } from '../fixtures/prng.ts'
import { durableHost, runAndKill, tempDataDir } from './helpers.ts'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { kOutboxMode } from '../../src/storage/local-acks.ts'
import type { Host } from '../../src/index.ts'

const childUrl = new URL('../fixtures/durable-child.js', import.meta.url)
const accounts = Array.from({ length: 20 }, (_, i) => `a${i}`)

function dedupHost (dataDir: string, workers = 2): Promise<Host> {
  return durableHost(dataDir, { workers, [kOutboxMode]: 'dedup' } as never)
}

async function leftBehind (dataDir: string): Promise<{ sends: number, applied: number }> {
  const store = new LmdbStore({ path: dataDir, durability: 'disk' })
  const left = { sends: [...store.outbox()].length, applied: [...store.applied()].length }
  await store.close()
  return left
}

async function total (host: Host): Promise<number> {
  const balances = await Promise.all(accounts.map((a) => host.ref('account', a).call('balance') as Promise<number>))
  return balances.reduce((x, y) => x + y, 0)
}

for (const workers of [2, 0]) {
  test(`dedup mode, workers: ${workers}: chains of transfers apply each send once; acknowledged and forgotten, nothing is left`, async () => {
    const dataDir = tempDataDir()
    const host = await dedupHost(dataDir, workers)
    await Promise.all(accounts.map((a) => host.ref('account', a).call('fund', 100)))
    const rand = prng(3)
    await Promise.all(Array.from({ length: 200 }, () => host.ref('account', `a${between(rand, 0, 19)}`).call('transfer', {
      amount: between(rand, 1, 20),
      path: Array.from({ length: between(rand, 1, 4) }, () => `a${between(rand, 0, 19)}`)
    })))
    await host.close() // lets the chains run to the end, then acknowledges and forgets what is left
    assert.deepEqual(await leftBehind(dataDir), { sends: 0, applied: 0 })
    const again = await dedupHost(dataDir, workers)
    assert.equal(await total(again), 20 * 100)
    await again.close()
  })
}

test('dedup mode: kill -9 in the middle of chains of transfers — after restart the total is conserved, no record or applied record is left', async () => {
  const dataDir = tempDataDir()
  let host = await dedupHost(dataDir)
  await Promise.all(accounts.map((a) => host.ref('account', a).call('fund', 1000)))
  await host.close()

  const lines = await runAndKill(childUrl, [dataDir, 'bank', '11', 'dedup'], between(prng(11), 500, 2500))
  assert.ok(lines.length > 500)
  const killed = await leftBehind(dataDir)
  assert.ok(killed.sends > 0, 'the kill caught sends whose records were not acknowledged yet')

  // the restart delivers every stored send: those applied before the kill are dropped and
  // acknowledged again, the others applied; close() lets the chains they start run to the end
  host = await dedupHost(dataDir)
  await host.close()
  assert.deepEqual(await leftBehind(dataDir), { sends: 0, applied: 0 })
  host = await dedupHost(dataDir)
  assert.equal(await total(host), 20 * 1000)
  const deposits = await Promise.all(accounts.map((a) => host.ref('account', a).call('deposits') as Promise<number>))
  assert.ok(deposits.reduce((x, y) => x + y, 0) >= lines.length - 1, 'every acknowledged transfer was deposited')
  await host.close()
})
