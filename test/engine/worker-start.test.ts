/**
 * Workers that fail to start: `createHost` rejects with a coded error, and a replacement
 * that fails is reported by 'worker-restart' — never by an EventEmitter 'error', which
 * would end a process that has no listener for it — and is tried again.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { InvalidOptionError, WorkerStartError, createHost } from '../../src/index.ts'
import type { WorkerRestartEvent } from '../../src/index.ts'
import { keyOn } from './helpers.ts'
import { INIT_CLAIMED, INIT_SAFE, INIT_STARTED, claimForTerminate, enterNative, initWord, leftNative, startedNative } from '../../src/thread/init-phase.ts'

const faultyAgents = new URL('../fixtures/worker-faulty-agents.js', import.meta.url)

async function startFailure (fault: string, closeTimeoutMs?: number): Promise<unknown> {
  process.env.SHOAL_TEST_WORKER_FAULT = fault
  try {
    await createHost({ agents: faultyAgents, workers: 2, ...(closeTimeoutMs !== undefined ? { closeTimeoutMs } : {}) })
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

/** Counts `Worker#terminate` calls (the host's workers are node:worker_threads Workers) while `run` runs. */
async function countingTerminates<T> (run: () => Promise<T>): Promise<{ result: T, terminated: number }> {
  const original = Worker.prototype.terminate
  let terminated = 0
  Worker.prototype.terminate = function (this: Worker) {
    terminated++
    return original.call(this)
  }
  try {
    return { result: await run(), terminated }
  } finally {
    Worker.prototype.terminate = original
  }
}

// terminating a worker while lmdb-js's addon loads or opens its environment can abort the
// whole process (init-phase.ts): the other workers of a failed start end by themselves
test('a failed start stops the other workers without terminating them, and terminates one stuck in its agents module', async () => {
  const started = await countingTerminates(() => startFailure('diverge-1'))
  assert.ok(started.result instanceof WorkerStartError, String(started.result))
  assert.match(started.result.message, /^worker 1 failed to start: worker 1 loaded different agent definitions/)
  assert.equal(started.terminated, 0, 'worker 2 started, was asked to stop and exited by itself')

  // both fail as they start: neither is terminated
  const both = await countingTerminates(() => startFailure('diverge'))
  assert.ok(both.result instanceof WorkerStartError, String(both.result))
  assert.equal(both.terminated, 0)

  // a worker whose agents module never settles cannot read 'stop': terminated after closeTimeoutMs (at least 1 s)
  const t0 = Date.now()
  const stuck = await countingTerminates(() => startFailure('diverge-1-hang', 0))
  assert.ok(stuck.result instanceof WorkerStartError, String(stuck.result))
  assert.equal(stuck.terminated, 1)
  assert.ok(Date.now() - t0 >= 1000, `terminated after ${Date.now() - t0} ms`)
})

test('the start phase word: claimed for termination only outside the native start, and a claimed worker does not enter it', () => {
  const word = initWord()
  assert.equal(claimForTerminate(word), false, 'loading the addon (the initial phase)')
  leftNative(word)
  assert.equal(word[0], INIT_SAFE)
  enterNative(word)
  assert.equal(claimForTerminate(word), false, 'opening the store')
  startedNative(word)
  assert.equal(claimForTerminate(word), true, 'past its native start')
  assert.equal(word[0], INIT_STARTED)

  const claimed = initWord()
  leftNative(claimed)
  assert.equal(claimForTerminate(claimed), true)
  assert.equal(claimed[0], INIT_CLAIMED)
  assert.equal(Atomics.compareExchange(claimed, 0, INIT_SAFE, 0), INIT_CLAIMED, 'the worker\'s move into the native start fails (it then waits for its end)')
})
