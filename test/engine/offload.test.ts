/**
 * ctx.offload on the host's piscina pool, with real worker threads and pool threads. The
 * long task is made deterministic by an Atomics handshake: it signals that it runs, then
 * holds its pool thread until the test lets it go — after another agent on the same
 * worker has answered.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHost } from '../../src/index.ts'
import type { HostOptions } from '../../src/index.ts'
import { agentsUrl, keyOn, startHost } from './helpers.ts'

const tasks = new URL('../fixtures/tasks.js', import.meta.url)

function gate (): Int32Array {
  return new Int32Array(new SharedArrayBuffer(8))
}

test('a long offloaded task does not delay other agents on the same worker', async () => {
  const g = gate()
  const host = await startHost({ workers: 2, offload: { filename: tasks, maxThreads: 2, workerData: { gate: g.buffer } } })
  try {
    const a = host.ref('offloader', keyOn(1, 'offloader', 'a'))
    const neighbour = host.ref('counter', keyOn(1, 'counter', 'n'))
    const sameType = host.ref('offloader', keyOn(1, 'offloader', 'b'))
    let settled = false
    const long = a.call('run', { task: 'block', input: 'x' }).finally(() => { settled = true })
    // wait until the task holds its pool thread
    const started = Atomics.waitAsync(g, 0, 0)
    if (started.async) await started.value
    assert.equal(await neighbour.call('add', 1), 1)
    assert.deepEqual(await sameType.call('run', { task: 'double', input: 21 }), 42, 'the other pool thread serves other tasks')
    assert.deepEqual(await sameType.call('results'), [42])
    assert.equal(settled, false, 'the long task is still running')
    assert.equal(host.stats().workers.find((w) => w.thread === 1)!.busyAgents, 1)
    Atomics.store(g, 1, 1)
    Atomics.notify(g, 1)
    assert.deepEqual(await long, { released: 'x' })
    assert.deepEqual(await a.call('results'), [{ released: 'x' }], 'the turn committed its result')
    const offload = host.stats().offload!
    assert.equal(offload.completed, 2)
    assert.equal(offload.inFlight, 0)
  } finally {
    Atomics.store(g, 1, 1)
    Atomics.notify(g, 1)
    await host.close()
  }
})

test('a task that throws rejects the handler\'s await with OffloadError carrying the task\'s error', async () => {
  const host = await startHost({ workers: 2, offload: { filename: tasks, maxThreads: 1, workerData: { gate: gate().buffer } } })
  try {
    const a = host.ref('offloader', keyOn(2, 'offloader'))
    assert.deepEqual(await a.call('tryRun', { task: 'fail', input: 7 }), {
      ok: false,
      code: 'SHOAL_ERR_OFFLOAD',
      name: 'OffloadError',
      message: 'bad input 7',
      data: { task: 'fail', name: 'RangeError' },
      isOffloadError: true
    })
    // not caught: the turn fails with AgentError, rolled back, and the code says why
    await assert.rejects(a.call('run', { task: 'fail', input: 1 }), (err: unknown) => {
      const e = err as { code: string, message: string, data: { code: string } }
      return e.code === 'SHOAL_ERR_AGENT' && e.data.code === 'SHOAL_ERR_OFFLOAD' && e.message === 'bad input 1'
    })
    assert.deepEqual(await a.call('results'), [])
    // a name the module does not export
    const missing = await a.call('tryRun', { task: 'noSuchTask' }) as { code: string, message: string, data: { task: string } }
    assert.equal(missing.code, 'SHOAL_ERR_OFFLOAD')
    assert.equal(missing.data.task, 'noSuchTask')
    assert.match(missing.message, /tasks\.js has no function export "noSuchTask"$/)
    // an input the rings cannot carry fails in the handler, before anything is sent
    const unencodable = await a.call('tryRun', { task: 'double', unencodable: true }) as { code: string }
    assert.equal(unencodable.code, 'SHOAL_ERR_ENCODE')
    assert.equal(await a.call('run', { task: 'double', input: 4 }), 8, 'the pool still serves')
  } finally {
    await host.close()
  }
})

test('without the offload option, ctx.offload fails with OffloadError; workers: 0 offloads too', async () => {
  const plain = await startHost({ workers: 1 })
  try {
    const r = await plain.ref('offloader', 'k').call('tryRun', { task: 'double', input: 1 }) as { code: string, message: string }
    assert.equal(r.code, 'SHOAL_ERR_OFFLOAD')
    assert.match(r.message, /needs the host option `offload/)
    assert.equal(plain.stats().offload, null)
  } finally {
    await plain.close()
  }
  const local = await startHost({ workers: 0, offload: { filename: tasks, maxThreads: 1, workerData: { gate: gate().buffer } } })
  try {
    assert.equal(await local.ref('offloader', 'k').call('run', { task: 'double', input: 5 }), 10)
    const failed = await local.ref('offloader', 'k').call('tryRun', { task: 'fail', input: 2 }) as { code: string, data: { name: string } }
    assert.equal(failed.code, 'SHOAL_ERR_OFFLOAD')
    assert.equal(failed.data.name, 'RangeError')
  } finally {
    await local.close()
  }
})

test('bad offload options are refused at createHost', async () => {
  const bad: Array<[unknown, string]> = [
    [null, 'offload'],
    [{}, 'offload.filename'],
    [{ filename: new URL('../fixtures/no-such-tasks.js', import.meta.url) }, 'offload.filename'],
    [{ filename: 'data:text/javascript,export const x = 1' }, 'offload.filename'],
    [{ filename: tasks, maxThreads: 0 }, 'offload.maxThreads'],
    [{ filename: tasks, maxThreads: 2, minThreads: 3 }, 'offload.minThreads'],
    [{ filename: tasks, threads: 2 }, 'offload.threads']
  ]
  for (const [offload, option] of bad) {
    await assert.rejects(createHost({ agents: agentsUrl, workers: 1, offload } as HostOptions), (err: unknown) => {
      const e = err as { code: string, data: { option: string } }
      assert.equal(e.code, 'SHOAL_ERR_INVALID_OPTION')
      assert.equal(e.data.option, option, JSON.stringify(offload))
      return true
    })
  }
})
