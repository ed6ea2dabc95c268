/**
 * A replica's apply (`queueReplicated`) is durable — and acknowledged to the owner — once
 * ITS transaction is flushed, not a later one's; so are a shard range's import, drop and
 * count, and a quota limit. lmdb-js's `flushed` names the newest transaction at the moment
 * its `then` is called: asked once the writes had committed, it named whatever the thread
 * had queued since, and the replica's acknowledgement — on every replicated command's path
 * — also waited for that transaction's write and flush (commit-flush.test.ts is the same
 * for `commit`; bench/RESULTS.md, 2026-12-07 evening, branch repl-flush).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { JournalWriter } from '../../native-free-core/storage/commit-journal.ts'
import { RANGE_STATES } from '../../native-free-core/storage/shard-range.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idsInShard } from '../fixtures/shards.ts'
import { tempDataDir } from './helpers.ts'

const S = 101

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Count the calls of `then` on the store's `env.flushed` (lmdb-js picks the newest transaction's flush in it). */
function countFlushAsks (store: LmdbStore): { readonly asked: number } {
  const env = (store as unknown as { env: { flushed: PromiseLike<unknown> } }).env
  const real = env.flushed
  const counter = { asked: 0 }
  Object.defineProperty(env, 'flushed', {
    configurable: true,
    value: { then: (ok?: (v: unknown) => unknown, fail?: (e: unknown) => unknown) => { counter.asked++; return real.then(ok, fail) } }
  })
  return counter
}

/** A journal segment of shard S putting state `id` = `{ n }`, as an owner writes it. */
function segment (id: string, n: number): Uint8Array {
  const j = new JournalWriter()
  const key = Buffer.concat([Buffer.from([S >> 8, S & 255]), Buffer.from(id, 'utf8')])
  j.put(RANGE_STATES, key, stateCodec.encode({ n }))
  return j.take()!
}

test('a replica\'s apply takes the flush of its own transaction, as it is queued, not once it has committed', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  try {
    const counter = countFlushAsks(store)
    const [a, b] = idsInShard(S, 'kv', 2)
    const first = store.queueReplicated([{ shard: S, segment: segment(a!, 1) }])
    assert.equal(counter.asked, 1, 'taken while its writes are the newest queued')
    // the replica queues its next apply once the one before has committed (replica-copies.ts):
    // the first apply's acknowledgement must not wait for the second's write and flush
    await first.committed
    const second = store.queueReplicated([{ shard: S, segment: segment(b!, 2) }])
    assert.equal(counter.asked, 2)
    await Promise.all([first.durable, second.durable])
    assert.equal(counter.asked, 2, 'no flush asked for after an apply: that one would be a later transaction\'s')
    assert.deepEqual(stateCodec.decode(store.getState(a!)!), { n: 1 })
    assert.deepEqual(stateCodec.decode(store.getState(b!)!), { n: 2 })
  } finally {
    await store.close()
  }
})

test('a replica\'s applies are durable in the order they were queued, each readable then', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  try {
    const ids = idsInShard(S, 'kv', 40)
    const settled: number[] = []
    const all: Array<Promise<void>> = []
    for (let i = 0; i < ids.length; i++) {
      const write = store.queueReplicated([{ shard: S, segment: segment(ids[i]!, i) }])
      all.push(write.durable.then(() => {
        settled.push(i)
        assert.deepEqual(stateCodec.decode(store.getState(ids[i]!)!), { n: i })
      }))
      // some applies share a transaction, others follow a commit, others do not wait
      if (i % 5 === 0) await write.committed
      else if (i % 3 === 0) await immediate()
    }
    await Promise.all(all)
    assert.deepEqual(settled, Array.from({ length: ids.length }, (_, i) => i))
  } finally {
    await store.close()
  }
})

test('a range import, drop and count and a quota limit take their own transaction\'s flush as they are queued', async () => {
  const owner = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  try {
    const [a] = idsInShard(S, 'kv', 1)
    await owner.commit({ states: [[a!, stateCodec.encode({ n: 7 })]], quotaDeltas: [['default', 1]] })
    const chunks = [...owner.exportShard(S, 64)]
    const counter = countFlushAsks(store)

    const imported = store.importShard(S, chunks, true)
    assert.equal(counter.asked, 1, 'import: taken as its transaction is queued')
    await imported
    assert.equal(counter.asked, 1, 'import: none asked for after its transaction committed')
    assert.deepEqual(stateCodec.decode(store.getState(a!)!), { n: 7 })

    const counted = store.countShard(S)
    assert.equal(counter.asked, 2, 'count: taken as its transaction is queued')
    await counted
    assert.equal(counter.asked, 2)
    assert.equal(store.isReplicaRange(S), false)

    const limited = store.putQuotaLimit('default', 10)
    assert.equal(counter.asked, 3, 'quota limit: taken as its write is queued')
    await limited
    assert.equal(counter.asked, 3)
    assert.deepEqual([...store.quotaLimits()], [['default', 10]])

    const dropped = store.dropShard(S)
    assert.equal(counter.asked, 4, 'drop: taken as its transaction is queued')
    await dropped
    assert.equal(counter.asked, 4)
    assert.equal(store.getState(a!), undefined)
  } finally {
    await owner.close()
    await store.close()
  }
})
