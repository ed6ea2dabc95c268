/**
 * Known-stateless shards (LmdbStore.findStatelessShards): on one host, an activation in a
 * shard that held no state when the host opened the store, and has had none written
 * since, reads nothing and starts from `initial`. What must never happen: an agent that
 * committed comes back as `initial` — after passivation, a host restart, a worker killed
 * and replaced, with `workers: 0`, or after a range was imported into its shard.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { SHARDS, hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { keyOn } from '../engine/helpers.ts'
import { durableHost, tempDataDir } from './helpers.ts'
import type { Host } from '../../src/index.ts'

const stateReads = (host: Host): number => host.stats().workers.reduce((n, w) => n + w.stateReads, 0)
const activations = (host: Host): number => host.stats().workers.reduce((n, w) => n + w.activations, 0)
/** The shard of an agent of the durable fixtures' default quota. */
const shardOfAgent = (type: string, key: string): number => shardOf(hashId(idString('default', type, key)))

test('a fresh store knows every shard stateless; a committed state clears its shard before it is queued, for every thread sharing the bytes', async () => {
  const path = tempDataDir()
  const store = new LmdbStore({ path, durability: 'os' })
  const other = new LmdbStore({ path, durability: 'os' }) // another thread's handle on the same environment
  try {
    const id = idString('default', 'counter', 'c1')
    const hash = hashId(id)
    assert.equal(store.knownStateless(hash), false, 'nothing known before findStatelessShards')
    const shared = store.findStatelessShards()
    other.shareStateless(shared)
    for (let s = 0; s < SHARDS; s++) assert.equal(new Uint8Array(shared)[s], 1)
    const committed = other.commit({ states: [[id, stateCodec.encode({ n: 1 })]] })
    // synchronously after the commit was queued: no reader may still skip the shard
    assert.equal(store.knownStateless(hash), false)
    assert.equal(other.knownStateless(hash), false)
    await committed
    assert.deepEqual(stateCodec.decode(store.getState(id, hash)!), { n: 1 })
    const elsewhere = idString('default', 'counter', [...Array(200).keys()].map((i) => `c${i}`).find((k) => shardOf(hashId(idString('default', 'counter', k))) !== shardOf(hash))!)
    assert.equal(store.knownStateless(hashId(elsewhere)), true, 'other shards stay known stateless')
    // a delete does not make a shard stateless again
    await store.commit({ states: [[id, null]] })
    assert.equal(store.knownStateless(hash), false)

    // reopened: the shard that holds a state is found so; a shard whose only state was deleted is empty again
    await store.commit({ states: [[elsewhere, stateCodec.encode({ n: 2 })]] })
    const again = new LmdbStore({ path, durability: 'os' })
    try {
      const bytes = new Uint8Array(again.findStatelessShards())
      assert.equal(bytes[shardOf(hashId(elsewhere))], 0)
      assert.equal(bytes[shardOf(hash)], 1)
      let known = 0
      for (let s = 0; s < SHARDS; s++) known += bytes[s]!
      assert.equal(known, SHARDS - 1)
    } finally {
      await again.close()
    }
  } finally {
    await other.close()
    await store.close()
  }
})

test('a store of more than 4 states per shard on average is not scanned: no shard known stateless, none skipped', async () => {
  const path = tempDataDir()
  const store = new LmdbStore({ path, durability: 'os' })
  try {
    // every state in shards 0..9: most shards are empty, but the store is too full to scan
    const ids: string[] = []
    for (let i = 0; ids.length <= SHARDS * 4; i++) {
      const id = idString('default', 'counter', `f${i}`)
      if (shardOf(hashId(id)) < 10) ids.push(id)
    }
    await store.commit({ states: ids.map((id) => [id, stateCodec.encode(1)] as [string, Uint8Array]) })
    const bytes = new Uint8Array(store.findStatelessShards())
    assert.equal(bytes.reduce((n, b) => n + b, 0), 0)
    const empty = [...Array(1000).keys()].map((i) => idString('default', 'counter', `e${i}`)).find((id) => shardOf(hashId(id)) >= 10)!
    assert.equal(store.knownStateless(hashId(empty)), false)
    ids.length = 0
  } finally {
    await store.close()
  }
})

test('importing a range into a known-stateless shard clears it (a cluster\'s copy, a move)', async () => {
  const from = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  const to = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  try {
    const id = idString('default', 'counter', 'moved')
    const hash = hashId(id)
    await from.commit({ states: [[id, stateCodec.encode({ n: 7 })]] })
    to.findStatelessShards()
    assert.equal(to.knownStateless(hash), true)
    const done = to.importShard(shardOf(hash), [...from.exportShard(shardOf(hash))])
    assert.equal(to.knownStateless(hash), false, 'cleared before the import is written')
    await done
    assert.deepEqual(stateCodec.decode(to.getState(id, hash)!), { n: 7 })
  } finally {
    await from.close()
    await to.close()
  }
})

test('on a fresh host activations read no state; a committed, passivated agent reads its shard again and gets its state', async () => {
  const dataDir = tempDataDir()
  const host = await durableHost(dataDir, { workers: 2 })
  try {
    const keys = Array.from({ length: 100 }, (_, i) => `fresh${i}`)
    assert.deepEqual(await Promise.all(keys.map((k) => host.ref('account', k).call('balance'))), keys.map(() => 0))
    assert.equal(activations(host), 100)
    assert.equal(stateReads(host), 0, 'no LMDB read on a fresh store')

    const a = host.ref('kv', 'sleepy')
    await a.call('put', ['k', 'v'])
    await a.call('bye')
    const reads = stateReads(host)
    assert.deepEqual(await a.call('get', 'k'), 'v')
    assert.equal(await a.call('writes'), 1, 'the committed state, not initial')
    assert.equal(stateReads(host), reads + 1)
  } finally {
    await host.close()
  }
})

for (const workers of [2, 0]) {
  test(`after a restart the shards that hold states are read, the others are not (workers: ${workers})`, async () => {
    const dataDir = tempDataDir()
    let host = await durableHost(dataDir, { workers })
    await host.ref('account', 'saved').call('fund', 5)
    await host.close()
    host = await durableHost(dataDir, { workers })
    try {
      assert.equal(await host.ref('account', 'saved').call('balance'), 5)
      if (workers !== 0) assert.equal(stateReads(host), 1)
      // an agent of another shard: no read
      const other = [...Array(100).keys()].map((i) => `o${i}`).find((k) => shardOfAgent('account', k) !== shardOfAgent('account', 'saved'))!
      assert.equal(await host.ref('account', other).call('balance'), 0)
      if (workers !== 0) assert.equal(stateReads(host), 1)
      // with workers: 0 the main thread's runtime shares the store's bytes: passivate and come back
      const k = host.ref('kv', 'w0')
      await k.call('put', ['x', 1])
      await k.call('bye')
      assert.equal(await k.call('writes'), 1)
    } finally {
      await host.close()
    }
  })
}

test('a worker killed and replaced: an agent that committed in a shard known stateless at start comes back with its state', async () => {
  const dataDir = tempDataDir()
  const host = await durableHost(dataDir, { workers: 2 })
  try {
    const key = keyOn(1, 'tally', 'dead')
    for (let i = 0; i < 3; i++) await host.ref('tally', key).call('bump')
    const restarted = new Promise((resolve) => host.once('worker-restart', resolve))
    await assert.rejects(host.ref('crasher', keyOn(1, 'crasher')).call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    await restarted
    const w1 = (): number => host.stats().workers.find((w) => w.thread === 1)!.stateReads
    assert.equal(w1(), 0, 'the new worker has read nothing yet')
    assert.equal(await host.ref('tally', key).call('get'), 3)
    assert.equal(w1(), 1, 'its shard was read')
  } finally {
    await host.close()
  }
})

test('a host whose plugin routes shards (a cluster) keeps no stateless shards: every activation reads', async () => {
  const host = await durableHost(tempDataDir(), { workers: 2, plugins: [{ name: 'routes-only', routes: true }] })
  try {
    const keys = Array.from({ length: 20 }, (_, i) => `r${i}`)
    assert.deepEqual(await Promise.all(keys.map((k) => host.ref('account', k).call('balance'))), keys.map(() => 0))
    assert.equal(stateReads(host), 20)
  } finally {
    await host.close()
  }
})
