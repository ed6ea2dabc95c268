/**
 * A failed LMDB commit: its callers learn LMDB's own cause, and a thread of the engine does
 * not end over the rejections lmdb-js leaves unhandled (lmdb-commit-failure.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { poisoner, tempDataDir, toleratingFailedCommits } from './helpers.ts'

const MDB_BAD_VALSIZE = -30781
const workerUrl = new URL('../fixtures/commit-failure-worker.js', import.meta.url)

interface Step { step: string, message?: string, code?: unknown, value?: unknown }

/** Run the fixture worker: the steps it posted and how it ended. */
function runWorker (guard: boolean, stray: boolean): Promise<{ steps: Step[], error: Error | null, exitCode: number }> {
  return new Promise((resolve) => {
    const worker = new Worker(workerUrl, { workerData: { path: tempDataDir(), guard, stray } })
    const steps: Step[] = []
    let error: Error | null = null
    worker.on('message', (m: Step) => steps.push(m))
    worker.on('error', (err) => { error = err })
    worker.on('exit', (exitCode) => resolve({ steps, error, exitCode }))
  })
}

test('a failed commit rejects with LMDB\'s own cause, not lmdb-js\'s generic error', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  const poison = await poisoner(store)
  await toleratingFailedCommits(async () => {
    const failing = store.commit({ states: [['kv:a', stateCodec.encode(1)]] })
    poison()
    await assert.rejects(failing, (err: Error & { code?: unknown }) => {
      assert.equal(err.code, MDB_BAD_VALSIZE)
      assert.match(err.message, /^MDB_BAD_VALSIZE/)
      return true
    })
  })
  await store.commit({ states: [['kv:a', stateCodec.encode(2)]] })
  assert.equal(stateCodec.decode(store.getState('kv:a')!), 2)
  await store.close()
})

test('a worker thread with the guard outlives a failed commit and commits again; any other unhandled rejection still ends it', async () => {
  const { steps, error, exitCode } = await runWorker(true, true)
  assert.deepEqual(steps.map((s) => s.step), ['failed', 'alive', 'again'])
  assert.equal(steps[0]!.code, MDB_BAD_VALSIZE)
  assert.equal(steps[2]!.value, 2)
  assert.equal(error?.message, 'a rejection of the application', 'the application\'s own rejection is thrown as Node does by default')
  assert.equal(exitCode, 1)
})

test('without the guard, lmdb-js\'s unhandled rejection of the failed transaction ends the thread (why the guard exists)', async () => {
  const { steps, error } = await runWorker(false, false)
  assert.ok(!steps.some((s) => s.step === 'done'), `the worker went on: ${JSON.stringify(steps)}`)
  assert.match(String(error?.message), /Commit failed/)
})
