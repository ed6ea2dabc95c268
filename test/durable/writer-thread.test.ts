/**
 * The writer thread (src/storage/lmdb-writer-thread.ts): an agent worker's store hands
 * its commits to the host's writer thread as journals instead of queuing lmdb-js puts
 * (issue 13: lmdb-js's per-put records were what the workers' scavenges copied). What the
 * store promised before must still hold: commits settle in order with their writes
 * readable at once, a batch's states, storage, outbox records and quota counts commit
 * together, one failing batch fails alone, and a writer that goes away fails what it
 * owed instead of leaving it hanging.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MessageChannel, Worker } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import type { Durability } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { StorageError } from '../../native-free-core/errors.ts'
import { tempDataDir } from './helpers.ts'

const writerUrl = new URL('../../src/storage/lmdb-writer-thread.js', import.meta.url)
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

interface Writer {
  port (): MessagePort
  stop (): Promise<void>
}

function startWriter (path: string, durability: Durability): Writer {
  const worker = new Worker(writerUrl, { workerData: { path, durability } })
  return {
    port: () => {
      const { port1, port2 } = new MessageChannel()
      worker.postMessage({ type: 'attach', port: port1 }, [port1])
      return port2
    },
    stop: () => new Promise((resolve) => {
      worker.once('exit', () => resolve())
      worker.postMessage({ type: 'stop' })
    })
  }
}

for (const durability of ['disk', 'os'] as const) {
  test(`durability '${durability}': commits through the writer settle in order, each readable at once, and are there after a reopen`, async () => {
    const path = tempDataDir()
    const writer = startWriter(path, durability)
    const store = new LmdbStore({ path, durability })
    store.writeThrough(writer.port())
    const settled: number[] = []
    const commits: Array<Promise<void>> = []
    for (let b = 0; b < 40; b++) {
      const id = idString('default', 'counter', `k${b}`)
      commits.push(store.commit({ states: [[id, stateCodec.encode({ b })]] }).then(() => {
        settled.push(b)
        // another thread committed it: this thread's read snapshot must not predate it (the
        // outbox test below is the one that fails without the renewal; here lmdb-js's own
        // renewal, a macrotask after each read, usually comes first)
        assert.deepEqual(stateCodec.decode(store.getState(id)!), { b })
      }))
      if (b % 3 === 0) await immediate() // some batches share a transaction, others do not
    }
    await Promise.all(commits)
    assert.deepEqual(settled, Array.from({ length: 40 }, (_, b) => b))
    await store.close()
    await writer.stop()
    const again = new LmdbStore({ path, durability })
    try {
      for (let b = 0; b < 40; b++) assert.deepEqual(stateCodec.decode(again.getState(idString('default', 'counter', `k${b}`))!), { b })
    } finally {
      await again.close()
    }
  })
}

test('a batch\'s states, storage, outbox record and quota count commit together through the writer', async () => {
  const path = tempDataDir()
  const writer = startWriter(path, 'disk')
  const store = new LmdbStore({ path, durability: 'disk' })
  store.writeThrough(writer.port())
  try {
    store.newIncarnation()
    const id = idString('q1', 'counter', 'a')
    const send = { senderShard: 7, origin: store.storeId, key: 1 }
    await store.commit({
      states: [[id, stateCodec.encode({ n: 1 })]],
      storage: new Map([[id, { wiped: false, entries: new Map([['k', stateCodec.encode('v')]]) }]]),
      outboxPuts: [{ ...send, bytes: stateCodec.encode(['from', 'to', 't', 'm', 1]) }],
      quotaDeltas: [['q1', 1]]
    })
    assert.deepEqual(stateCodec.decode(store.getState(id)!), { n: 1 })
    assert.deepEqual(stateCodec.decode(store.getStorage(id, 'k')!), 'v')
    assert.equal(store.hasOutbox(send), true)
    await store.deleteOutbox([send])
    // this thread read the record just before: without a renewed snapshot at the writer's
    // acknowledgement it would still see it (this is the assertion that fails without it)
    assert.equal(store.hasOutbox(send), false)
    assert.deepEqual([...store.quotaCounts()], [['q1', 1]])
  } finally {
    await store.close()
    await writer.stop()
  }
})

test('a batch the writer cannot write fails alone: the other batches of its group commit', async () => {
  const path = tempDataDir()
  const writer = startWriter(path, 'disk')
  const a = new LmdbStore({ path, durability: 'disk' })
  const b = new LmdbStore({ path, durability: 'disk' })
  a.writeThrough(writer.port())
  b.writeThrough(writer.port())
  try {
    const good = idString('default', 'counter', 'good')
    const alsoGood = idString('default', 'counter', 'also-good')
    const tooLong = idString('default', 'counter', 'x'.repeat(3000)) // past LMDB's key size
    // sent in one turn: the writer may take them in one transaction or several — the outcome must not differ
    const bad = a.commit({ states: [[tooLong, stateCodec.encode(1)], [alsoGood, stateCodec.encode(1)]] })
    const ok = b.commit({ states: [[good, stateCodec.encode(2)]] })
    await assert.rejects(bad, (err) => err instanceof StorageError && /key size/i.test(err.message))
    await ok
    assert.deepEqual(stateCodec.decode(b.getState(good)!), 2)
    assert.equal(a.getState(alsoGood), undefined, 'nothing of the failed batch is committed')
    await a.commit({ states: [[alsoGood, stateCodec.encode(3)]] }) // the store goes on committing
    assert.deepEqual(stateCodec.decode(a.getState(alsoGood)!), 3)
  } finally {
    await a.close()
    await b.close()
    await writer.stop()
  }
})

test('a writer that goes away fails the commits it has not acknowledged; later ones go through lmdb-js', async () => {
  const path = tempDataDir()
  const store = new LmdbStore({ path, durability: 'disk' })
  // a writer that takes the batch and never answers, then ends
  const { port1: writerSide, port2 } = new MessageChannel()
  const received = new Promise<void>((resolve) => writerSide.once('message', () => resolve()))
  store.writeThrough(port2)
  try {
    const id = idString('default', 'counter', 'a')
    const owed = store.commit({ states: [[id, stateCodec.encode(1)]] })
    await received
    writerSide.close()
    await assert.rejects(owed, (err) => err instanceof StorageError && /writer thread ended/.test(err.message))
    await store.commit({ states: [[id, stateCodec.encode(2)]] })
    assert.deepEqual(stateCodec.decode(store.getState(id)!), 2)
  } finally {
    await store.close()
  }
})
