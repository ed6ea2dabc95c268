/**
 * Every kind of bad input gets a typed error with a stable code, and none of them
 * crashes a worker or disturbs other agents.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHost } from '../../src/index.ts'
import type { HostOptions } from '../../src/index.ts'
import { agentsUrl, startHost } from './helpers.ts'

test('bad calls and casts get typed errors and leave the workers and other agents alone', async () => {
  const host = await startHost({ workers: 2, maxMessageBytes: 4096 })
  try {
    const c = host.ref('counter', 'bystander')
    assert.equal(await c.call('add', 5), 5)
    const f = host.ref('fragile', 'x')

    assert.throws(() => host.ref('nope', 'k'), { code: 'SHOAL_ERR_UNKNOWN_AGENT_TYPE' })
    assert.throws(() => host.ref('counter', 42 as unknown as string), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    assert.throws(() => host.ref('counter', 'bad\ud800key'), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    assert.throws(() => host.ref('counter', 'x'.repeat(2000)), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    assert.throws(() => host.ref('counter', 'k', { quota: 'nobody' }), { code: 'SHOAL_ERR_UNKNOWN_QUOTA' })
    await assert.rejects(c.call('nope' as 'get'), { code: 'SHOAL_ERR_UNKNOWN_METHOD' })
    assert.throws(() => c.cast('nope' as 'get'), { code: 'SHOAL_ERR_UNKNOWN_METHOD' })

    // payloads msgpack cannot encode
    const circular: Record<string, unknown> = {}
    circular.self = circular
    for (const payload of [Symbol('s'), () => 1, circular, { deep: Symbol('nested') }, [1, Symbol('in an array')]]) {
      await assert.rejects(f.call('echo', payload), { code: 'SHOAL_ERR_ENCODE' }, String(typeof payload))
      assert.throws(() => f.cast('echo', payload), { code: 'SHOAL_ERR_ENCODE' })
    }
    // a reply the agent cannot encode
    await assert.rejects(host.ref('probe', 'p').call('badReply'), { code: 'SHOAL_ERR_ENCODE' })

    // over maxMessageBytes, in every payload form
    await assert.rejects(f.call('echo', 'x'.repeat(5000)), { code: 'SHOAL_ERR_MESSAGE_TOO_LARGE' })
    await assert.rejects(f.call('echo', '€'.repeat(1500)), { code: 'SHOAL_ERR_MESSAGE_TOO_LARGE' })
    await assert.rejects(f.call('echo', { big: new Uint8Array(5000) }), { code: 'SHOAL_ERR_MESSAGE_TOO_LARGE' })
    assert.throws(() => f.cast('echo', 'x'.repeat(5000)), { code: 'SHOAL_ERR_MESSAGE_TOO_LARGE' })
    // just under the limit still goes through
    assert.equal((await f.call('echo', 'y'.repeat(3000)) as string).length, 3000)

    // nothing above disturbed anyone
    assert.equal(await c.call('get'), 5)
    assert.deepEqual(host.stats().workers.map((w) => w.restarts), [0, 0])
  } finally {
    await host.close()
  }
  await assert.rejects(host.ref('counter', 'late').call('get'), { code: 'SHOAL_ERR_HOST_CLOSED' })
  assert.throws(() => host.ref('counter', 'late').cast('add', 1), { code: 'SHOAL_ERR_HOST_CLOSED' })
})

test('invalid options are refused at createHost with the option, the rule and the value', async () => {
  const bad: Array<[Partial<HostOptions> | null, string]> = [
    [null, '(root)'],
    [{ agents: undefined as unknown as string }, 'agents'],
    [{ agents: new URL('http://example.invalid/agents.js') }, 'agents'],
    [{ workers: -1 }, 'workers'],
    [{ workers: 1.5 }, 'workers'],
    [{ workers: '2' as unknown as number }, 'workers'],
    [{ tickMs: 0 }, 'tickMs'],
    [{ tickMs: Number.NaN }, 'tickMs'],
    [{ maxMessageBytes: 10 }, 'maxMessageBytes'],
    [{ ringBytes: 100_000 }, 'ringBytes'],
    [{ ringBytes: 8192, maxMessageBytes: 8192 }, 'maxMessageBytes'],
    [{ callTimeoutMs: -5 }, 'callTimeoutMs'],
    [{ closeTimeoutMs: Infinity }, 'closeTimeoutMs'],
    [{ workerYoungGenerationMb: 1 }, 'workerYoungGenerationMb'],
    [{ workerYoungGenerationMb: 8.5 }, 'workerYoungGenerationMb'],
    [{ dataDir: '' }, 'dataDir'],
    [{ worker: 2 } as unknown as Partial<HostOptions>, 'worker']
  ]
  for (const [options, option] of bad) {
    const full = options === null ? null : { agents: agentsUrl, ...options }
    await assert.rejects(createHost(full as HostOptions), (err: unknown) => {
      const e = err as { code: string, message: string, data: { option: string } }
      assert.equal(e.code, 'SHOAL_ERR_INVALID_OPTION', JSON.stringify(options))
      assert.equal(e.data.option, option)
      assert.ok(e.message.startsWith(`options.${option} `), e.message)
      assert.match(e.message, /\(got .*\)$/)
      return true
    })
  }
  for (const [typo, meant] of [['worker', 'workers'], ['timeout', 'callTimeoutMs'], ['datadir', 'dataDir'], ['ringbytes', 'ringBytes']]) {
    await assert.rejects(createHost({ agents: agentsUrl, [typo!]: 1 } as unknown as HostOptions),
      { code: 'SHOAL_ERR_INVALID_OPTION', message: new RegExp(`^options\\.${typo} is not an option \\(did you mean ${meant}\\?\\)`) })
  }
  await assert.rejects(createHost({ agents: agentsUrl, offload: { filename: agentsUrl, maxThread: 1 } as never }),
    { code: 'SHOAL_ERR_INVALID_OPTION', message: /^options\.offload\.maxThread is not an option \(did you mean maxThreads\?\)/ })
  // the README's ringBytes rule, at its edge: a frame of maxMessageBytes and a skip marker fit in half a ring
  await assert.rejects(createHost({ agents: agentsUrl, workers: 0, ringBytes: 8192, maxMessageBytes: 8192 / 2 - 7 }),
    { code: 'SHOAL_ERR_INVALID_OPTION', message: /^options\.maxMessageBytes must be at most ringBytes \/ 2 - 8 \(4088 with ringBytes 8192\)/ })
  const edge = await createHost({ agents: agentsUrl, workers: 0, ringBytes: 8192, maxMessageBytes: 8192 / 2 - 8 })
  await edge.close()
  await assert.rejects(createHost({ agents: new URL('../fixtures/no-such-module.js', import.meta.url) }), { code: 'SHOAL_ERR_INVALID_OPTION' })
  await assert.rejects(createHost({ agents: new URL('./helpers.js', import.meta.url) }), /exports no agent definitions/)
})
