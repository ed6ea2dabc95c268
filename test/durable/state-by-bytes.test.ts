import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { tempDataDir } from './helpers.ts'

test('a state read by the id\'s bytes (an activation\'s frame) is the one read by its string', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  try {
    const ids = [idString('default', 'counter', 'k1'), idString('default', 'counter', 'k10'), idString('q', 't', 'é日本🦀'), idString('q', 't', 'x'.repeat(900))]
    await store.commit({ states: ids.map((id, i) => [id, stateCodec.encode({ i })] as [string, Uint8Array]) })
    for (const [i, id] of ids.entries()) {
      const frame = Buffer.from(`head${id}tail`)
      const got = store.getStateOfBytes(frame, 4, Buffer.byteLength(id), hashId(id))
      assert.deepEqual(stateCodec.decode(got!), { i }, id.slice(0, 40))
    }
    const missing = Buffer.from(idString('default', 'counter', 'k2'))
    assert.equal(store.getStateOfBytes(missing, 0, missing.length, hashId(idString('default', 'counter', 'k2'))), undefined)
  } finally {
    await store.close()
  }
})
