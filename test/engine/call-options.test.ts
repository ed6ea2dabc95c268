import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startHost } from './helpers.ts'
import { AbortedError, TimeoutError } from '../../src/index.ts'

test('timeoutMs, the default call timeout and AbortSignal settle a call that gets no reply', async () => {
  // the stuck agent's turn never ends: close waits closeTimeoutMs for it (default 10 s), so keep that short
  const host = await startHost({ workers: 1, callTimeoutMs: 200, closeTimeoutMs: 300 })
  try {
    const stuck = host.ref('crasher', 'stuck')
    await assert.rejects(stuck.call('hang', undefined, { timeoutMs: 20 }), (err: unknown) => err instanceof TimeoutError && err.retriable)
    // the agent is now busy forever; the default timeout catches calls queued behind it
    // (the errors name the call: its type and method, kept apart until an error needs them)
    await assert.rejects(stuck.call('ping'), { code: 'SHOAL_ERR_TIMEOUT', message: 'crasher.ping timed out after 200 ms' })
    const controller = new AbortController()
    const pending = host.ref('crasher', 'stuck').call('ping', undefined, { signal: controller.signal, timeoutMs: 60_000 })
    controller.abort(new Error('user gave up'))
    await assert.rejects(pending, (err: unknown) => {
      assert.ok(err instanceof AbortedError)
      assert.equal((err as AbortedError).message, 'crasher.ping was aborted')
      assert.equal((err as AbortedError).name, 'AbortError')
      assert.equal(((err as Error).cause as Error).message, 'user gave up')
      return true
    })
    await assert.rejects(host.ref('counter', 'c').call('get', undefined, { signal: AbortSignal.abort() }), { code: 'SHOAL_ERR_ABORTED' })
    // other agents are unaffected by the stuck one; concurrent calls each get their own reply
    assert.equal(await host.ref('counter', 'c').call('add', 1), 1)
    const keys = Array.from({ length: 50 }, (_, i) => `n${i}`)
    await Promise.all(keys.map((k, i) => host.ref('counter', k).call('add', i + 1)))
    assert.deepEqual(await Promise.all(keys.map((k) => host.ref('counter', k).call('get'))), keys.map((_, i) => i + 1))
    assert.equal(host.stats().pendingCalls, 0)
  } finally {
    await host.close()
  }
})

test('timeoutMs 0 means never, as the host\'s callTimeoutMs 0 does; a bad timeoutMs or signal is refused before sending', async () => {
  const host = await startHost({ workers: 1, callTimeoutMs: 20, closeTimeoutMs: 300 })
  try {
    const stuck = host.ref('crasher', 'stuck')
    const controller = new AbortController()
    let settled = false
    const forever = stuck.call('hang', undefined, { timeoutMs: 0, signal: controller.signal })
    forever.then(() => { settled = true }, () => { settled = true })
    // a call under the host's default (20 ms) times out; the one with timeoutMs 0 is still waiting
    await assert.rejects(stuck.call('ping'), { code: 'SHOAL_ERR_TIMEOUT' })
    await assert.rejects(stuck.call('ping', undefined, { timeoutMs: 1 }), { code: 'SHOAL_ERR_TIMEOUT' })
    assert.equal(settled, false, 'timeoutMs: 0 did not time out')
    controller.abort()
    await assert.rejects(forever, { code: 'SHOAL_ERR_ABORTED' })

    for (const timeoutMs of [-1, NaN, 1.5, Infinity, 2 ** 31, '5' as unknown as number, null as unknown as number]) {
      await assert.rejects(host.ref('counter', 'c').call('add', 1, { timeoutMs }), (err: unknown) => {
        const e = err as { code: string, message: string }
        assert.equal(e.code, 'SHOAL_ERR_INVALID_ARGUMENT')
        assert.match(e.message, /timeoutMs must be an integer from 0 \(never\) to 2147483647 \(got /)
        return true
      }, String(timeoutMs))
    }
    await assert.rejects(host.ref('counter', 'c').call('add', 1, { signal: {} as AbortSignal }), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /signal must be an AbortSignal/ })
    await assert.rejects(host.ref('counter', 'c').call('add', 1, 5 as never), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /call options must be an object/ })
    // the main thread's ring to a worker is in order: an add sent before would have run first
    assert.equal(await host.ref('counter', 'c').call('get'), 0, 'none of the refused calls was sent')
    assert.equal(host.stats().pendingCalls, 0)
  } finally {
    await host.close()
  }
})
