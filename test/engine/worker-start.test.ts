/**
 * Workers that fail to start: `createHost` rejects with a coded error, and a replacement
 * that fails is reported by 'worker-restart' — never by an EventEmitter 'error', which
 * would end a process that has no listener for it — and is tried again.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { InvalidOptionError, WorkerStartError, createHost } from '../../src/index.ts'
import type { WorkerRestartEvent } from '../../src/index.ts'
import { keyOn } from './helpers.ts'

const faultyAgents = new URL('../fixtures/worker-faulty-agents.js', import.meta.url)

async function startFailure (fault: string): Promise<unknown> {
  process.env.SHOAL_TEST_WORKER_FAULT = fault
  try {
    await createHost({ agents: faultyAgents, workers: 2 })
  } catch (err) {
    return err
  } finally {
    delete process.env.SHOAL_TEST_WORKER_FAULT
  }
  assert.fail('createHost started')
}

test('a worker that does not start fails createHost with WorkerStartError, or with the ShoalError it raised', async () => {
  const diverged = await startFailure('diverge')
  assert.ok(diverged instanceof WorkerStartError, String(diverged))
  assert.equal(diverged.code, 'SHOAL_ERR_WORKER_START')
  assert.match(diverged.message, /^worker [12] failed to start: worker [12] loaded different agent definitions than the main thread/)
  assert.match((diverged.cause as Error).message, /loaded different agent definitions/)
  assert.equal((diverged.data as { exitCode: number }).exitCode, 1)

  const exited = await startFailure('exit')
  assert.ok(exited instanceof WorkerStartError, String(exited))
  assert.match(exited.message, /^worker [12] failed to start: it exited with code 3$/)
  assert.equal((exited.data as { exitCode: number }).exitCode, 3)
  assert.equal(exited.cause, undefined)

  // the worker's own ShoalError keeps its class and code across the thread
  const threw = await startFailure('throw')
  assert.ok(threw instanceof InvalidOptionError, String(threw))
  assert.match(threw.message, /^options\.agents could not be imported: this agents module refuses to load in a worker/)
  assert.equal((threw.data as { option: string }).option, 'agents')
})

test('a replacement worker that fails to start is a worker-restart with its error, and is tried again', async () => {
  const host = await createHost({ agents: faultyAgents, workers: 2 })
  try {
    assert.equal(host.listenerCount('error' as never), 0, 'no error listener: an emitted error would throw')
    const events: WorkerRestartEvent[] = []
    host.on('worker-restart', (e) => {
      events.push(e)
      // the first replacement starts with the fault set and fails; the next one starts clean
      if (events.length === 1) process.env.SHOAL_TEST_WORKER_FAULT = 'diverge'
      else delete process.env.SHOAL_TEST_WORKER_FAULT
    })
    const crasher = host.ref('crasher', keyOn(1, 'crasher'))
    await assert.rejects(crasher.call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    while (events.length < 2) await once(host, 'worker-restart')
    assert.equal(events[0]!.exitCode, 7)
    assert.equal(events[0]!.error, null)
    const failed = events[1]!
    assert.equal(failed.thread, 1)
    assert.equal(failed.exitCode, -1)
    assert.ok(failed.error instanceof WorkerStartError)
    assert.match(failed.error.message, /^worker 1 failed to start: worker 1 loaded different agent definitions/)
    // the next replacement starts; calls made meanwhile wait for it
    assert.equal(await crasher.call('ping'), 'pong')
    assert.equal(events.length, 2)
    assert.deepEqual(host.stats().workers.map((w) => [w.thread, w.alive, w.restarts]), [[1, true, 2], [2, true, 0]])
  } finally {
    delete process.env.SHOAL_TEST_WORKER_FAULT
    await host.close()
  }
})
