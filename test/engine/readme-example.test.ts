import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHost } from '../../src/index.ts'
import { counter } from '../fixtures/agents.ts'

test('the README example runs as written', async () => {
  const host = await createHost({ agents: new URL('../fixtures/agents.js', import.meta.url) })
  const c = host.ref(counter, 'user-42')
  assert.equal(await c.call('add', 5), 5)
  c.cast('add', 1)
  assert.equal(await c.call('get', undefined, { timeoutMs: 500 }), 6)
  await host.close()
})
