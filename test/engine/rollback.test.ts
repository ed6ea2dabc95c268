import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { startHost } from './helpers.ts'
import { AgentError } from '../../src/index.ts'

test('a throwing command rolls back, the caller gets AgentError, the agent stays usable', async () => {
  const host = await startHost({ workers: 2 })
  const events: unknown[] = []
  host.on('agent-error', (e) => events.push(e))
  try {
    const f = host.ref('fragile', 'f1')
    assert.equal(await f.call('add', 2), 2)
    await assert.rejects(f.call('addThenThrow', 40), (err: unknown) => {
      assert.ok(err instanceof AgentError)
      assert.equal(err.code, 'SHOAL_ERR_AGENT')
      assert.equal(err.message, 'refused 40')
      assert.equal((err.data as { name: string }).name, 'RangeError')
      return true
    })
    assert.deepEqual(await f.call('get'), { n: 2, items: [2] })
    await assert.rejects(f.call('addThenReject', 5), { code: 'SHOAL_ERR_AGENT', message: 'async refusal' })
    assert.deepEqual(await f.call('get'), { n: 2, items: [2] })
    assert.equal(await f.call('add', 1), 3)
    // casts roll back too, silently for the sender
    f.cast('addThenThrow', 100)
    assert.deepEqual(await f.call('get'), { n: 3, items: [2, 1] })
    while (events.length < 3) await once(host, 'agent-error')
    assert.equal(events.length, 3, 'one agent-error event per failed turn')
    assert.deepEqual((events[0] as { id: unknown }).id, { quota: 'default', type: 'fragile', key: 'f1' })
  } finally {
    await host.close()
  }
})

test('a state a handler made unencodable fails that agent with EncodeError, not its neighbours', async () => {
  const host = await startHost({ workers: 1 })
  try {
    const bad = host.ref('fragile', 'bad')
    const good = host.ref('fragile', 'good')
    await bad.call('add', 1)
    const results = await Promise.allSettled([good.call('add', 5), bad.call('poison'), good.call('add', 5)])
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
    assert.equal(((results[1] as PromiseRejectedResult).reason as { code: string }).code, 'SHOAL_ERR_ENCODE')
    assert.deepEqual(await bad.call('get'), { n: 1, items: [1] }, 'back to its last committed state')
    assert.deepEqual(await good.call('get'), { n: 10, items: [5, 5] })
  } finally {
    await host.close()
  }
})
