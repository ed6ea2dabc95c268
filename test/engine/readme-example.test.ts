import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHost } from '../../src/index.ts'
import { counter, session } from '../fixtures/agents.ts'

test('the README example runs as written', async () => {
  const host = await createHost({ agents: new URL('../fixtures/agents.js', import.meta.url) })
  const c = host.ref(counter, 'user-42')
  assert.equal(await c.call('add', 5), 5)
  c.cast('add', 1)
  assert.equal(await c.call('get', undefined, { timeoutMs: 500 }), 6)
  await host.close()
})

test('the README Time example runs as written', async () => {
  const host = await createHost({ agents: new URL('../fixtures/agents.js', import.meta.url), clock: 'manual' })
  try {
    await host.ref(session, 'u1').call('ping')
    await host.advance(59)
    assert.equal(await host.ref(session, 'u1').call('expired'), false)
    await host.advance(1)
    assert.equal(await host.ref(session, 'u1').call('expired'), true)
    await host.ref(session, 'u2').call('keepForever')
    // u1's last message was at tick 60: idle until 360; u2 never passivates
    await host.advance(299)
    assert.equal(host.stats().activeAgents, 2)
    await host.advance(1)
    assert.equal(host.stats().activeAgents, 1)
    assert.equal(await host.ref(session, 'u1').call('expired'), true, 'committed before passivation')
  } finally {
    await host.close()
  }
})
