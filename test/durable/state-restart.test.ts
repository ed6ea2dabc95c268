/**
 * Durable state through the public API: what a command committed is there after the host
 * restarts on the same dataDir; `durable: false` opts out; `ctx.delete` removes state and
 * storage; passivation drops the cell, not the state.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHost } from '../../src/index.ts'
import { agentErrorWith, durableAgentsUrl, durableHost, tempDataDir } from './helpers.ts'

for (const workers of [2, 0]) {
  test(`acknowledged commands survive a restart on the same dataDir (workers: ${workers})`, async () => {
    const dataDir = tempDataDir()
    let host = await durableHost(dataDir, { workers })
    const keys = Array.from({ length: 200 }, (_, i) => `a${i}`)
    for (const key of keys) host.ref('account', key).cast('fund', 10)
    assert.deepEqual(await Promise.all(keys.map((key) => host.ref('account', key).call('fund', 1))), keys.map(() => 11))
    await host.close()

    host = await durableHost(dataDir, { workers })
    assert.deepEqual(await Promise.all(keys.map((key) => host.ref('account', key).call('balance'))), keys.map(() => 11))
    await host.close()
  })
}

test('durable: false keeps a type in memory only, beside durable types on the same host', async () => {
  const dataDir = tempDataDir()
  let host = await durableHost(dataDir)
  assert.equal(await host.ref('ephemeral', 'e').call('add', 5), 5)
  assert.equal(await host.ref('account', 'x').call('fund', 5), 5)
  await assert.rejects(host.ref('ephemeral', 'e').call('useStorage'), agentErrorWith('SHOAL_ERR_INVALID_ARGUMENT'))
  await host.close()
  host = await durableHost(dataDir)
  assert.equal(await host.ref('ephemeral', 'e').call('get'), 0)
  assert.equal(await host.ref('account', 'x').call('balance'), 5)
  await host.close()
})

test('ctx.delete removes state and storage; the next message starts from initial, also after a restart', async () => {
  const dataDir = tempDataDir()
  let host = await durableHost(dataDir)
  const a = host.ref('kv', 'doomed')
  await a.call('putMany', [['x', 1], ['y', 2]])
  assert.equal(await a.call('writes'), 2)
  await a.call('remove')
  assert.equal(await a.call('writes'), 0)
  assert.deepEqual(await a.call('list'), [])
  await a.call('put', ['z', 3])
  await host.close()
  host = await durableHost(dataDir)
  const again = host.ref('kv', 'doomed')
  assert.equal(await again.call('writes'), 1)
  assert.deepEqual(await again.call('list'), [['z', 3]])
  await host.close()
})

test('passivation drops the cell after its commit; the next message reloads the committed state', async () => {
  const dataDir = tempDataDir()
  const host = await durableHost(dataDir, { workers: 1 })
  const a = host.ref('kv', 'sleepy')
  await a.call('put', ['k', { deep: [1, 2] }])
  const before = host.stats().activeAgents
  await a.call('bye')
  assert.equal(host.stats().activeAgents, before - 1)
  assert.equal(await a.call('writes'), 1)
  assert.deepEqual(await a.call('get', 'k'), { deep: [1, 2] })
  await host.close()
})

test('host.agents() lists stored and resident agents once each, by type and quota', async () => {
  const dataDir = tempDataDir()
  let host = await durableHost(dataDir)
  for (let i = 0; i < 50; i++) await host.ref('account', `s${i}`).call('fund', 1) // stored
  await host.close()
  host = await durableHost(dataDir)
  for (let i = 0; i < 20; i++) await host.ref('account', `q${i}`).call('balance') // resident, never committed
  for (let i = 0; i < 5; i++) await host.ref('ephemeral', `e${i}`).call('add', 1) // memory-only type
  await host.ref('account', 's0').call('fund', 1) // stored and resident

  const all: string[] = []
  for await (const id of host.agents()) all.push(`${id.quota}/${id.type}/${id.key}`)
  assert.equal(all.length, new Set(all).size, 'no id twice')
  assert.equal(all.length, 75)
  const accounts: string[] = []
  for await (const id of host.agents({ type: 'account' })) accounts.push(id.key)
  assert.equal(accounts.length, 70)
  assert.ok(accounts.includes('q7') && accounts.includes('s49'))
  const inDefault: string[] = []
  for await (const id of host.agents({ quota: 'default', type: 'ephemeral' })) inDefault.push(id.key)
  assert.deepEqual(inDefault.sort(), ['e0', 'e1', 'e2', 'e3', 'e4'])
  await assert.rejects(host.agents({ type: 'nope' }).next(), { code: 'SHOAL_ERR_UNKNOWN_AGENT_TYPE' })
  await host.close()
})

test('durability is validated: a known mode, and only with dataDir', async () => {
  await assert.rejects(createHost({ agents: durableAgentsUrl, workers: 0, dataDir: tempDataDir(), durability: 'fsync' as never }),
    { code: 'SHOAL_ERR_INVALID_OPTION', data: { option: 'durability', value: 'fsync' } })
  await assert.rejects(createHost({ agents: durableAgentsUrl, workers: 0, durability: 'os' }),
    { code: 'SHOAL_ERR_INVALID_OPTION', data: { option: 'durability', value: 'os' } })
  const host = await createHost({ agents: durableAgentsUrl, workers: 0, dataDir: tempDataDir(), durability: 'os' })
  assert.equal(await host.ref('account', 'a').call('fund', 3), 3)
  await host.close()
})
