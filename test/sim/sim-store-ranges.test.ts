/**
 * The simulator's store moves shards as the host's stores do (shard-range.ts), and keeps
 * its order-free content hash exact through it: a store rebuilt shard by shard from
 * another's exports hashes the same; a dropped shard's records leave the hash.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimStore } from '../../native-free-core/sim/sim-store.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import type { WriteBatch } from '../../native-free-core/storage/store.ts'
import { encodeReminder } from '../../native-free-core/time/agent-reminders.ts'
import { idsInShard, shardOfId } from '../fixtures/shards.ts'

const noLabels = new Map<number, number>()
const hashOf = (s: SimStore): string => { const h = s.hash(noLabels); return `${h.a}:${h.b}` }

function filled (ids: readonly string[]): SimStore {
  const store = new SimStore(true)
  const batch: WriteBatch = {
    states: ids.map((id) => [id, simCodec.encode({ id })] as const),
    storage: new Map(ids.map((id) => [id, { wiped: false, entries: new Map([['k', simCodec.encode([id])]]) }])),
    reminders: new Map(ids.map((id) => [id, { wiped: false, entries: new Map([['r', encodeReminder(1000, 0)]]) }]))
  }
  store.commit(batch)
  return store
}

test('SimStore: export every shard into a fresh store → the same content hash; drop a shard → its records leave it', () => {
  const ids = [...idsInShard(1, 'a', 3), ...idsInShard(2, 'a', 2), ...idsInShard(4000, 'b', 1)]
  const a = filled(ids)
  const b = new SimStore(true)
  for (const shard of new Set(ids.map(shardOfId))) b.importShard(shard, a.exportShard(shard, 64))
  assert.equal(hashOf(b), hashOf(a))
  assert.deepEqual([...b.ids('')], [...a.ids('')])
  assert.deepEqual(b.shardSize(1), a.shardSize(1))
  assert.equal(b.shardSize(1).records, 3 * 3)

  b.dropShard(2)
  assert.deepEqual(b.shardSize(2), { records: 0, bytes: 0 })
  assert.equal(hashOf(b), hashOf(filled([...idsInShard(1, 'a', 3), ...idsInShard(4000, 'b', 1)])))
  assert.equal([...b.reminders(1)].length, 3)
  assert.equal([...b.reminders()].length, 4)
})
