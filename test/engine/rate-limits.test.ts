/**
 * Rate limits on real worker threads, with time driven by the test (TestClock): excess
 * calls, casts and agent-to-agent sends get RateLimitedError without running the
 * handler, and tokens come back only when the test advances the clock.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RateLimitedError } from '../../src/index.ts'
import type { AgentErrorEvent } from '../../src/index.ts'
import { TestClock, kTestClock } from '../../src/time/test-clock.ts'
import { createHost } from '../../src/index.ts'
import type { HostOptions } from '../../src/index.ts'
import { agentsUrl, keyOn, startHost } from './helpers.ts'

test('a limited agent refuses excess messages with RateLimitedError until time passes', async () => {
  const clock = new TestClock(5_000)
  const host = await startHost({ workers: 2, [kTestClock]: clock })
  try {
    const a = host.ref('limited', keyOn(1, 'limited', 'a'))
    assert.equal(await a.call('hit'), 1)
    assert.equal(await a.call('hit'), 2)
    const refused = await a.call('hit').then(() => null, (err: unknown) => err)
    assert.ok(refused instanceof RateLimitedError, String(refused))
    assert.equal(refused.code, 'SHOAL_ERR_RATE_LIMITED')
    assert.equal(refused.retriable, true)
    assert.equal((refused.data as { retryAfterMs: number }).retryAfterMs, 1000)

    clock.advance(999)
    await assert.rejects(a.call('runs'), { code: 'SHOAL_ERR_RATE_LIMITED' }, '999 ms: still empty')
    clock.advance(1)
    assert.equal(await a.call('runs'), 2, 'the refused call never ran its handler')

    // other agents, limited or not, are unaffected
    assert.equal(await host.ref('limited', keyOn(1, 'limited', 'b')).call('hit'), 1)
    assert.equal(await host.ref('counter', keyOn(1, 'counter')).call('add', 1), 1)
  } finally {
    await host.close()
  }
})

test('casts and ctx.sends over the limit are dropped and reported as agent errors', async () => {
  const clock = new TestClock()
  const host = await startHost({ workers: 2, [kTestClock]: clock })
  try {
    const errors: AgentErrorEvent[] = []
    let twoErrors!: () => void
    const reported = new Promise<void>((resolve) => { twoErrors = resolve })
    host.on('agent-error', (e) => { if (errors.push(e) === 2) twoErrors() })
    const target = keyOn(2, 'limited', 't')
    const senders = [0, 1, 2].map((i) => host.ref('limited', keyOn(1, 'limited', 's', 2, i)))
    for (const s of senders) await s.call('poke', target) // worker 1 → worker 2, after each commit
    host.ref('limited', target).cast('hit') // the fourth message: refused as well
    // whichever two arrived last were refused; only then does time move on
    await reported
    clock.advance(2_000) // two tokens back
    assert.deepEqual(errors.map((e) => [e.id?.key, e.method, e.error.code]), [[target, 'hit', 'SHOAL_ERR_RATE_LIMITED'], [target, 'hit', 'SHOAL_ERR_RATE_LIMITED']])
    assert.ok(errors.every((e) => e.error instanceof RateLimitedError))
    assert.equal(await host.ref('limited', target).call('runs'), 2, 'two of the four messages ran')
    assert.equal(host.stats().workers.find((w) => w.thread === 2)!.rateLimited, 2)
  } finally {
    await host.close()
  }
})

test('the test clock hook refuses anything but a TestClock', async () => {
  await assert.rejects(createHost({ agents: agentsUrl, workers: 1, [kTestClock]: { now: () => 0 } } as unknown as HostOptions), (err: unknown) => {
    const e = err as { code: string, data: { option: string } }
    return e.code === 'SHOAL_ERR_INVALID_OPTION' && e.data.option === '[kTestClock]'
  })
})
