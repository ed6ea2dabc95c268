import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startHost } from './helpers.ts'
import { AbortedError, TimeoutError } from '../../src/index.ts'

test('timeoutMs, the default call timeout and AbortSignal settle a call that gets no reply', async () => {
  const host = await startHost({ workers: 1, callTimeoutMs: 200 })
  try {
    const stuck = host.ref('crasher', 'stuck')
    await assert.rejects(stuck.call('hang', undefined, { timeoutMs: 20 }), (err: unknown) => err instanceof TimeoutError && err.retriable)
    // the agent is now busy forever; the default timeout catches calls queued behind it
    await assert.rejects(stuck.call('ping'), { code: 'SHOAL_ERR_TIMEOUT' })
    const controller = new AbortController()
    const pending = host.ref('crasher', 'stuck').call('ping', undefined, { signal: controller.signal, timeoutMs: 60_000 })
    controller.abort(new Error('user gave up'))
    await assert.rejects(pending, (err: unknown) => {
      assert.ok(err instanceof AbortedError)
      assert.equal((err as AbortedError).name, 'AbortError')
      assert.equal(((err as Error).cause as Error).message, 'user gave up')
      return true
    })
    await assert.rejects(host.ref('counter', 'c').call('get', undefined, { signal: AbortSignal.abort() }), { code: 'SHOAL_ERR_ABORTED' })
    // other agents are unaffected by the stuck one
    assert.equal(await host.ref('counter', 'c').call('add', 1), 1)
    assert.equal(host.stats().pendingCalls, 0)
  } finally {
    await host.close()
  }
})
