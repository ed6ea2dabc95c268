/**
 * A state's write may carry the id's placement hash (the runtime passes its cell's, so
 * that commits do not hash every id again): the record lands under the key a read by id
 * alone builds, and a write without the hash still hashes the id.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { tempDataDir } from './helpers.ts'
import { shardOfId } from '../fixtures/shards.ts'

test('states written with and without their hash are read back by id, from their shard', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  try {
    const ids = Array.from({ length: 50 }, (_, i) => idString('default', 'counter', `c${i}`))
    // as the runtime passes it: the cell's hash, an int32 (negative for half the ids)
    await store.commit({ states: ids.map((id, i) => i % 2 === 0 ? [id, stateCodec.encode(i), hashId(id) | 0] as const : [id, stateCodec.encode(i)] as const) })
    assert.ok(ids.some((id) => (hashId(id) | 0) < 0), 'some hashes are negative as int32')
    ids.forEach((id, i) => {
      assert.equal(stateCodec.decode(store.getState(id)!), i, `${id} by id alone`)
      assert.equal(stateCodec.decode(store.getState(id, hashId(id))!), i, `${id} with its hash`)
    })
    const shards = new Set(ids.map(shardOfId))
    for (const shard of shards) {
      const inShard = [...store.ids('')].filter((id) => shardOfId(id) === shard)
      assert.deepEqual(inShard.sort(), ids.filter((id) => shardOfId(id) === shard).sort())
    }
  } finally {
    await store.close()
  }
})
