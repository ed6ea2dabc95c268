/**
 * A durable commit ('disk') resolves once ITS transaction is flushed — not a later one's.
 * lmdb-js's `flushed` names the newest transaction at the moment its `then` is called;
 * asked after the commit's writes had committed, it named the next batch's transaction
 * too, so every commit also waited for the following one's writes and flush (issue 13,
 * bench/RESULTS.md 2026-12-07 evening: the command latency over raw lmdb-js).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { tempDataDir } from './helpers.ts'

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('a durable commit takes the flush of its own transaction, as it is queued, not once it has committed', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  try {
    // lmdb-js's `flushed` is a thenable whose `then` picks the newest transaction's flush
    // when called: count the calls and when they come
    const env = (store as unknown as { env: { flushed: PromiseLike<unknown> } }).env
    const real = env.flushed
    let asked = 0
    Object.defineProperty(env, 'flushed', {
      configurable: true,
      value: { then: (ok?: (v: unknown) => unknown, fail?: (e: unknown) => unknown) => { asked++; return real.then(ok, fail) } }
    })
    const first = store.commit({ states: [[idString('default', 'counter', 'a'), stateCodec.encode({ n: 1 })]] })
    assert.equal(asked, 1, 'taken while its writes are the newest queued')
    await immediate()
    // a later batch, queued while the first is still in flight: the first must not wait for it
    const second = store.commit({ states: [[idString('default', 'counter', 'b'), stateCodec.encode({ n: 2 })]] })
    assert.equal(asked, 2)
    await Promise.all([first, second])
    assert.equal(asked, 2, 'no flush asked for after a commit: that one would be a later transaction\'s')
    assert.deepEqual(stateCodec.decode(store.getState(idString('default', 'counter', 'a'))!), { n: 1 })
  } finally {
    await store.close()
  }
})

test('durable commits settle in the order they were queued, each with its writes readable', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  try {
    const settled: number[] = []
    const commits: Array<Promise<void>> = []
    for (let b = 0; b < 40; b++) {
      const id = idString('default', 'counter', `k${b}`)
      commits.push(store.commit({ states: [[id, stateCodec.encode({ b })]] }).then(() => {
        settled.push(b)
        assert.deepEqual(stateCodec.decode(store.getState(id)!), { b })
      }))
      if (b % 3 === 0) await immediate() // some batches share a transaction, others do not
    }
    await Promise.all(commits)
    assert.deepEqual(settled, Array.from({ length: 40 }, (_, b) => b))
  } finally {
    await store.close()
  }
})
