/**
 * Shard ranges on real LMDB files: a shard written by a real host is exported in bounded
 * chunks, imported into another data directory in one transaction, and served there by a
 * host that opens it — states, ctx.storage and reminders (which fire on the adopting
 * host). Import replaces the range, drop removes it, a malformed chunk writes nothing,
 * other shards are never touched; listing yields storage order, as the memory store does.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHost } from '../../src/index.ts'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { compareKeys } from '../../native-free-core/storage/store.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { WriteBatch } from '../../native-free-core/storage/store.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { durableHost, tempDataDir } from './helpers.ts'
import { idsInShard, shardOfId } from '../fixtures/shards.ts'

const kvId = (key: string): string => idString('default', 'kv', key)
const open = (path: string): LmdbStore => new LmdbStore({ path, durability: 'disk' })
const concat = (chunks: Uint8Array[]): number[] => chunks.flatMap((c) => [...c])

test('a shard moves between data directories: bounded chunks, one import, served by the host that opens it', async () => {
  const from = tempDataDir()
  let host = await durableHost(from)
  for (let i = 0; i < 40; i++) {
    await host.ref('kv', `k${i}`).call('putMany', [['x', i], ['y', { i }], ['z', 'z'.repeat(100)]])
    await host.ref('account', `a${i}`).call('fund', i + 1)
  }
  await host.close()

  const shard = shardOfId(kvId('k0'))
  const a = open(from)
  const inShard = [...a.ids('')].filter((id) => shardOfId(id) === shard)
  assert.ok(inShard.includes(kvId('k0')))
  const size = a.shardSize(shard)
  const kvs = inShard.filter((id) => id.startsWith(kvId(''))).length
  assert.equal(size.records, inShard.length + 3 * kvs, 'states, and 3 storage keys per kv agent')
  const chunks = [...a.exportShard(shard, 96)]
  assert.ok(chunks.length >= size.records / 2, `${chunks.length} chunks`)
  assert.ok(chunks.every((c) => c.length <= 96 || c.length > 100), 'bounded, but for a record larger than a chunk')
  assert.equal(chunks.reduce((n, c) => n + c.length, 0) - chunks.length - 7 * size.records, size.bytes)

  const to = tempDataDir()
  const b = open(to)
  assert.notEqual(b.storeId, a.storeId)
  await b.importShard(shard, chunks)
  assert.deepEqual(b.shardSize(shard), size)
  assert.deepEqual([...b.ids('')], inShard, 'that shard and nothing else')
  assert.deepEqual(concat([...b.exportShard(shard)]), concat([...a.exportShard(shard)]), 'the same records, byte for byte')
  await a.close()
  await b.close()

  host = await durableHost(to)
  try {
    assert.equal(await host.ref('kv', 'k0').call('writes'), 3)
    assert.deepEqual(await host.ref('kv', 'k0').call('list'), [['x', 0], ['y', { i: 0 }], ['z', 'z'.repeat(100)]])
    const elsewhere = Array.from({ length: 40 }, (_, i) => `a${i}`).find((k) => shardOfId(idString('default', 'account', k)) !== shard)!
    assert.equal(await host.ref('account', elsewhere).call('balance'), 0, 'agents of other shards did not move')
  } finally {
    await host.close()
  }
})

function batchOf (ids: readonly string[], tag: string): WriteBatch {
  return {
    states: ids.map((id) => [id, stateCodec.encode({ tag, id })] as const),
    storage: new Map(ids.map((id) => [id, { wiped: false, entries: new Map([['k', stateCodec.encode(tag)]]) }]))
  }
}

test('import replaces the range, drop removes it, a malformed chunk writes nothing; other shards are untouched', async () => {
  const store = open(tempDataDir())
  const source = open(tempDataDir())
  const [s, t] = [200, 201]
  const old = idsInShard(s, 'kv', 3)
  const neighbours = [...idsInShard(s - 1, 'kv', 2), ...idsInShard(t, 'kv', 2), ...idsInShard(s + 2, 'kv', 1)]
  await store.commit(batchOf([...old, ...neighbours], 'old'))
  const arriving = idsInShard(s, 'tally', 2)
  await source.commit(batchOf(arriving, 'new'))
  const outside = (): number[] => [s - 1, t, s + 2].map((x) => store.shardSize(x).records)
  const neighbourhood = outside()

  await store.importShard(s, source.exportShard(s))
  assert.deepEqual([...store.ids('')].filter((id) => shardOfId(id) === s), [...arriving].sort(compareKeys))
  for (const id of old) assert.equal(store.getState(id), undefined)
  for (const id of arriving) {
    assert.deepEqual(stateCodec.decode(store.getState(id)!), { tag: 'new', id })
    assert.deepEqual([...store.listStorage(id, '', undefined)].map(([k, v]) => [k, stateCodec.decode(v)]), [['k', 'new']])
  }
  assert.deepEqual(outside(), neighbourhood)

  const before = store.shardSize(t)
  await assert.rejects(async () => await store.importShard(t, source.exportShard(s)), { code: 'SHOAL_ERR_STORAGE' }, 'ids of another shard')
  const good = [...store.exportShard(t, 64)]
  const cut = [...good.slice(0, -1), good.at(-1)!.subarray(0, good.at(-1)!.length - 3)]
  await assert.rejects(async () => await store.importShard(t, cut), /range chunk \d+ is malformed: a record is cut off/)
  assert.deepEqual(store.shardSize(t), before, 'nothing written')

  await store.dropShard(s)
  assert.deepEqual(store.shardSize(s), { records: 0, bytes: 0 })
  for (const id of arriving) assert.equal(store.getState(id), undefined)
  assert.deepEqual(outside(), neighbourhood)
  assert.equal([...store.ids('')].length, neighbours.length)
  await store.close()
  await source.close()
})

test('listing: storage order (shard, then id bytes), by prefix across every shard, the same as the memory store', async () => {
  const lmdb = open(tempDataDir())
  const memory = new MemoryStore()
  const ids: string[] = []
  for (let i = 0; i < 400; i++) ids.push(idString(i % 3 === 0 ? 'gold' : 'default', i % 2 === 0 ? 'kv' : 'tally', `k${i}${i % 7 === 0 ? 'é\u{1F600}' : ''}`))
  const batch: WriteBatch = { states: ids.map((id) => [id, stateCodec.encode(1)] as const) }
  await lmdb.commit(batch)
  memory.commit(batch)
  const order = (a: string, b: string): number => shardOfId(a) - shardOfId(b) || compareKeys(a, b)
  for (const prefix of ['', 'gold\u001f', idString('default', 'tally', ''), idString('gold', 'kv', '')]) {
    const expected = ids.filter((id) => id.startsWith(prefix)).sort(order)
    assert.ok(expected.length > 20)
    assert.deepEqual([...lmdb.ids(prefix)], expected, JSON.stringify(prefix))
    assert.deepEqual([...memory.ids(prefix)], expected, JSON.stringify(prefix))
  }
  await lmdb.close()
})

test('reminders move with their shard and fire on the host that adopts it', async () => {
  const agents = new URL('../fixtures/reminder-agents.js', import.meta.url)
  const reminderHost = (dataDir: string): ReturnType<typeof createHost> => createHost({ agents, workers: 2, dataDir, clock: 'manual', tickMs: 1000 })
  const from = tempDataDir()
  let host = await reminderHost(from)
  await host.ref('reminded', 'moving').call('remind', { name: 'late', ms: 1500 })
  await host.ref('reminded', 'other').call('remind', { name: 'late', ms: 1500 })
  await host.close()
  const shard = shardOfId(idString('default', 'reminded', 'moving'))
  assert.notEqual(shardOfId(idString('default', 'reminded', 'other')), shard)

  const a = open(from)
  assert.deepEqual([...a.reminders(shard)].map(([id, name]) => [id, name]), [[idString('default', 'reminded', 'moving'), 'late']])
  assert.equal([...a.reminders()].length, 2)
  const to = tempDataDir()
  const b = open(to)
  await b.importShard(shard, a.exportShard(shard))
  assert.deepEqual([...b.reminders()].map(([id, name]) => [id, name]), [[idString('default', 'reminded', 'moving'), 'late']])
  await a.close()
  await b.close()

  host = await reminderHost(to)
  try {
    await host.advance(0)
    assert.equal(host.stats().workers.reduce((n, w) => n + w.reminders, 0), 1)
    await host.advance(3)
    assert.deepEqual((await host.ref('reminded', 'moving').call('fired') as Array<[string, number]>).map(([n]) => n), ['late'])
  } finally {
    await host.close()
  }
})

test('outbox records move with their sender\'s shard, applied records with their receiver\'s', async () => {
  const a = open(tempDataDir())
  const b = open(tempDataDir())
  const [s, t] = [300, 301]
  const send = { senderShard: s, origin: a.storeId, key: 5 * 2 ** 32 + 9 }
  const elsewhere = { senderShard: t, origin: a.storeId, key: 5 * 2 ** 32 + 10 }
  const applied = { shard: s, origin: 'abcdefabcdef0123', key: 77, senderShard: 4000, appliedAt: 1_700_000_000_000.5 }
  await a.commit({
    states: [],
    outboxPuts: [{ ...send, bytes: stateCodec.encode(['from', 'to', 't', 'm', 1]) }, { ...elsewhere, bytes: stateCodec.encode(2) }],
    appliedPuts: [applied, { ...applied, shard: t }]
  })
  assert.equal(a.shardSize(s).records, 2)
  await b.importShard(s, a.exportShard(s))
  assert.equal(b.hasOutbox(send), true)
  assert.equal(b.hasOutbox(elsewhere), false)
  assert.deepEqual([...b.outbox()].map((r) => [r.senderShard, r.origin, r.key, stateCodec.decode(r.bytes)]), [[s, a.storeId, send.key, ['from', 'to', 't', 'm', 1]]])
  assert.deepEqual([...b.applied()], [applied])
  assert.equal(b.isApplied(s, applied.origin, applied.key), true)
  assert.equal(b.isApplied(t, applied.origin, applied.key), false)

  await a.dropShard(s)
  assert.deepEqual([...a.outbox()].map((r) => r.key), [elsewhere.key])
  assert.deepEqual([...a.applied()].map((r) => r.shard), [t])
  await b.deleteOutbox([send])
  assert.equal(b.hasOutbox(send), false)
  await a.close()
  await b.close()
})
