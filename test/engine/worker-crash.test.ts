import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { startHost, keyOn } from './helpers.ts'
import { WorkerCrashedError } from '../../src/index.ts'
import type { WorkerRestartEvent } from '../../src/index.ts'

test('a worker that dies is restarted: its pending calls fail with WorkerCrashedError, the rest carries on', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const crasher = host.ref('crasher', keyOn(1, 'crasher'))
    const onOther = host.ref('counter', keyOn(2, 'counter'))
    const onSame = host.ref('counter', keyOn(1, 'counter'))
    assert.equal(await onOther.call('add', 7), 7)
    assert.equal(await onSame.call('add', 1), 1)
    const hanging = host.ref('crasher', keyOn(1, 'crasher', 'h')).call('hang')
    const restarted = once(host, 'worker-restart') as Promise<[WorkerRestartEvent]>
    const exiting = crasher.call('exit')
    await assert.rejects(exiting, (err: unknown) => err instanceof WorkerCrashedError && err.retriable)
    await assert.rejects(hanging, { code: 'SHOAL_ERR_WORKER_CRASHED' })
    const [event] = await restarted
    assert.equal(event.thread, 1)
    assert.equal(event.exitCode, 7)
    assert.equal(event.failedCalls, 2)
    // calls made during the restart wait for the new worker instead of failing
    assert.equal(await crasher.call('ping'), 'pong')
    // the other worker's agents kept their state; the crashed worker's in-memory ones start over
    assert.equal(await onOther.call('get'), 7)
    assert.equal(await onSame.call('get'), 0)
    const stats = host.stats()
    assert.deepEqual(stats.workers.map((w) => [w.thread, w.alive, w.restarts]), [[1, true, 1], [2, true, 0]])
  } finally {
    await host.close()
  }
})

test('an uncaught exception in a worker (outside any handler) restarts it too', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const key = keyOn(2, 'crasher')
    const restarted = once(host, 'worker-restart') as Promise<[WorkerRestartEvent]>
    await host.ref('crasher', key).call('throwLater')
    const [event] = await restarted
    assert.equal(event.thread, 2)
    assert.match(String(event.error?.message), /uncaught in a timer/)
    assert.equal(await host.ref('crasher', key).call('ping'), 'pong')
  } finally {
    await host.close()
  }
})
