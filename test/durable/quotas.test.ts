/**
 * Quotas on the LMDB store: limits and counts survive a restart on the same dataDir and a
 * worker's death, and survive kill -9 — after which the count is exactly the number of
 * the quota's agents the store holds, whatever was in flight.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { keyOn } from '../engine/helpers.ts'
import { durableHost, runAndKill, tempDataDir } from './helpers.ts'
import { prng, between } from '../fixtures/prng.ts'
import type { Host } from '../../src/index.ts'

async function stored (host: Host, quota: string): Promise<Set<string>> {
  const keys = new Set<string>()
  for await (const id of host.agents({ quota })) keys.add(id.key)
  return keys
}

for (const workers of [2, 0]) {
  test(`quota limits and counts survive a restart (workers: ${workers})`, async () => {
    const dataDir = tempDataDir()
    let host = await durableHost(dataDir, { workers })
    await host.quotas.set('t', 3)
    await host.quotas.set('gone', 5)
    await host.quotas.delete('gone')
    for (const key of ['a', 'b']) await host.ref('account', key, { quota: 't' }).call('fund', 1)
    await host.ref('kv', 'c', { quota: 't' }).call('put', ['x', 1])
    await host.ref('kv', 'c', { quota: 't' }).call('remove')
    await host.ref('account', 'free').call('fund', 1) // in 'default'
    assert.deepEqual(host.quotas.get('t'), { quota: 't', limit: 3, count: 2 })
    await host.close()

    host = await durableHost(dataDir, { workers })
    try {
      assert.deepEqual(host.quotas.list(), [{ quota: 'default', limit: Infinity, count: 1 }, { quota: 't', limit: 3, count: 2 }])
      assert.equal(host.quotas.get('gone'), undefined)
      assert.equal(await host.ref('account', 'd', { quota: 't' }).call('fund', 1), 1)
      await assert.rejects(host.ref('account', 'e', { quota: 't' }).call('fund', 1), { code: 'SHOAL_ERR_QUOTA_EXCEEDED' })
      assert.equal(await host.ref('account', 'a', { quota: 't' }).call('fund', 1), 2, 'a stored agent is an existing one')
      assert.equal(host.quotas.get('t')!.count, 3)
      assert.deepEqual([...await stored(host, 't')].sort(), ['a', 'b', 'd'])
    } finally {
      await host.close()
    }
    // a third start reads the records the second one wrote (and folded the first's)
    host = await durableHost(dataDir, { workers })
    try {
      assert.equal(host.quotas.get('t')!.count, 3)
    } finally {
      await host.close()
    }
  })
}

const childUrl = new URL('../fixtures/quota-child.js', import.meta.url)

test('after kill -9 mid-creations the count equals the agents stored, acknowledged ones included', async () => {
  const dataDir = tempDataDir()
  const lines = await runAndKill(childUrl, [dataDir, '3'], between(prng(3), 300, 1500))
  assert.equal(lines[0], 'ready')
  const alive = new Set<string>()
  const lastOfLane = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const [op, key] = line.split(' ')
    if (op === 'c') alive.add(key!)
    else alive.delete(key!)
    lastOfLane.set(key!.split('-')[0]!, key!)
  }
  // each lane's last created key may have been deleted by a command not yet acknowledged
  for (const key of lastOfLane.values()) alive.delete(key)
  const host = await durableHost(dataDir)
  try {
    const keys = await stored(host, 'q')
    for (const key of alive) assert.ok(keys.has(key), `acknowledged creation ${key} is stored`)
    assert.equal(host.quotas.get('q')!.count, keys.size, 'the count is the stored agents')
    assert.equal(host.quotas.get('q')!.limit, 1_000_000)
  } finally {
    await host.close()
  }
})

test('a worker that dies keeps its committed agents in the count (they are stored)', async () => {
  const dataDir = tempDataDir()
  const host = await durableHost(dataDir)
  try {
    await host.quotas.set('t', 10)
    const onWorker1 = [0, 1, 2].map((skip) => keyOn(1, 'account', 'w', 2, skip, 't'))
    for (const key of onWorker1) await host.ref('account', key, { quota: 't' }).call('fund', 1)
    assert.equal(host.quotas.get('t')!.count, 3)
    const restarted = once(host, 'worker-restart')
    await assert.rejects(host.ref('crasher', keyOn(1, 'crasher')).call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    await restarted
    assert.equal(host.quotas.get('t')!.count, 3)
    assert.equal(await host.ref('account', onWorker1[0]!, { quota: 't' }).call('fund', 1), 2, 'back from LMDB on the new worker')
  } finally {
    await host.close()
  }
})
