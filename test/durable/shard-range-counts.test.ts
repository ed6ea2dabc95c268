/**
 * A shard range takes its agents' quota counts along: the store that imports it counts
 * them, the store that drops it stops counting them — in the range's own transaction, so
 * the counts read back after a reopen are still the agents each store holds — and both
 * tell `countsMoved` (the host's live counters follow it). LMDB and memory stores alike;
 * `shardIds` lists one shard's ids in storage order.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { compareKeys } from '../../native-free-core/storage/store.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import type { ShardRanges } from '../../native-free-core/storage/shard-range.ts'
import type { QuotaRecords } from '../../native-free-core/tenancy/quota-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { tempDataDir } from './helpers.ts'
import { idsInShard } from '../fixtures/shards.ts'

type Full = Store & ShardRanges & QuotaRecords

const S = 77
const T = 78

async function fill (store: Full): Promise<{ q: string[], d: string[], other: string[] }> {
  const q = idsInShard(S, 'kv', 3, 'tenant-q')
  const d = idsInShard(S, 'kv', 2)
  const other = idsInShard(T, 'kv', 1)
  store.newIncarnation()
  await store.commit({
    states: [...q, ...d, ...other].map((id) => [id, stateCodec.encode({ id })] as const),
    quotaDeltas: [['tenant-q', 3], ['default', 3]]
  })
  return { q, d, other }
}

const sorted = (m: Iterable<readonly [string, number]>): Array<[string, number]> => [...m].map(([k, v]): [string, number] => [k, v]).sort((a, b) => compareKeys(a[0], b[0]))

test('LMDB: import counts the range, drop uncounts it, in the same transaction; both tell countsMoved', async () => {
  const fromDir = tempDataDir()
  const toDir = tempDataDir()
  let a = new LmdbStore({ path: fromDir, durability: 'os' })
  let b = new LmdbStore({ path: toDir, durability: 'os' })
  const { q, d } = await fill(a)
  assert.deepEqual(sorted(a.quotaCounts()), [['default', 3], ['tenant-q', 3]])
  const told: Array<[string, Array<[string, number]>]> = []
  a.countsMoved = (c) => told.push(['a', sorted(c)])
  b.countsMoved = (c) => told.push(['b', sorted(c)])

  await b.importShard(S, a.exportShard(S, 128))
  assert.deepEqual([...b.shardIds(S, '')], [...q, ...d].sort(compareKeys), 'storage order (ASCII ids: UTF-8 byte order)')
  assert.deepEqual([...b.shardIds(S, 'tenant-q\u001f')], q.sort(compareKeys))
  assert.deepEqual([...b.shardIds(T, '')], [])
  await a.dropShard(S)
  await b.importShard(S, b.exportShard(S)) // a re-import replaces the range: counts unchanged
  assert.deepEqual(told, [
    ['b', [['default', 2], ['tenant-q', 3]]],
    ['a', [['default', -2], ['tenant-q', -3]]]
  ])
  await a.close()
  await b.close()
  a = new LmdbStore({ path: fromDir, durability: 'os' })
  b = new LmdbStore({ path: toDir, durability: 'os' })
  try {
    assert.deepEqual(sorted(a.quotaCounts()), [['default', 1]], 'the agent of the other shard stays counted')
    assert.deepEqual(sorted(b.quotaCounts()), [['default', 2], ['tenant-q', 3]])
  } finally {
    await a.close()
    await b.close()
  }
})

test('memory store: the same counts move with a range', async () => {
  const a = new MemoryStore()
  const b = new MemoryStore()
  const { q } = await fill(a)
  const told: Array<[string, Array<[string, number]>]> = []
  b.countsMoved = (c) => told.push(['b', sorted(c)])
  a.countsMoved = (c) => told.push(['a', sorted(c)])
  b.importShard(S, a.exportShard(S))
  a.dropShard(S)
  assert.deepEqual(told, [['b', [['default', 2], ['tenant-q', 3]]], ['a', [['default', -2], ['tenant-q', -3]]]])
  assert.deepEqual(sorted(a.quotaCounts()), [['default', 1]])
  assert.deepEqual(sorted(b.quotaCounts()), [['default', 2], ['tenant-q', 3]])
  assert.deepEqual([...b.shardIds(S, 'tenant-q\u001f')], q.sort(compareKeys))
})
