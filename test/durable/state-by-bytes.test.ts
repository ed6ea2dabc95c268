import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { tempDataDir } from './helpers.ts'
import type { StateIds } from '../../native-free-core/storage/store.ts'
import { PackedStates } from '../../native-free-core/storage/packed-states.ts'

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

test('a batch whose ids are bytes (stateIds) writes the states under the keys their strings would, in order', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  try {
    const ids = [idString('default', 'counter', 'k1'), idString('q', 't', 'é日本🦀'), idString('q', 't', 'x'.repeat(900)), idString('default', 'counter', 'k1')]
    const stateIds: StateIds = {
      id: (k) => ids[k]!,
      writeId: (k, into, at) => Buffer.from(ids[k]!).copy(into, at)
    }
    await store.commit({ states: [[ids[3]!, stateCodec.encode('gone')]] })
    // the same agent twice in one batch: the later one stands; a string id among byte ids
    await store.commit({
      states: [[null, stateCodec.encode(0), hashId(ids[0]!)], [ids[1]!, stateCodec.encode(1), hashId(ids[1]!)], [null, stateCodec.encode(2), hashId(ids[2]!)], [null, stateCodec.encode(3), hashId(ids[3]!)]],
      stateIds
    })
    assert.deepEqual(stateCodec.decode(store.getState(ids[0]!)!), 3)
    assert.deepEqual(stateCodec.decode(store.getState(ids[1]!)!), 1)
    assert.deepEqual(stateCodec.decode(store.getState(ids[2]!)!), 2)
    assert.deepEqual([...store.ids('q\u001f')].sort(), [ids[1], ids[2]].sort())
    await store.commit({ states: [[null, null, hashId(ids[2]!)]], stateIds: { id: () => ids[2]!, writeId: (_k, into, at) => Buffer.from(ids[2]!).copy(into, at) } })
    assert.equal(store.getState(ids[2]!), undefined, 'a delete by bytes')
  } finally {
    await store.close()
  }
})

test('a packed batch (one buffer, positioned per put) writes each state\'s own bytes, and the buffer reused for the next batch once settled writes the new ones', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  try {
    const ids = [idString('default', 'counter', 'k1'), idString('q', 't', 'é日本🦀'), idString('q', 't', 'x'.repeat(900)), idString('default', 'counter', 'k2')]
    const stateIds: StateIds = {
      id: (k) => ids[k]!,
      writeId: (k, into, at) => Buffer.from(ids[k]!).copy(into, at)
    }
    const values = [{ i: 0 }, 'a string state', { big: 'y'.repeat(500) }, [1, 2, 3]]
    const packed = new PackedStates(16, 1) // grows during the batch
    for (const [k, v] of values.entries()) packed.push(k === 1 ? ids[1]! : null, stateCodec.encode(v), hashId(ids[k]!))
    await store.commit({ states: packed, stateIds })
    for (const [k, v] of values.entries()) assert.deepEqual(stateCodec.decode(store.getState(ids[k]!)!), v, ids[k]!.slice(0, 30))
    packed.reset()
    packed.push(null, stateCodec.encode({ i: 9 }), hashId(ids[0]!))
    packed.push(null, null, hashId(ids[1]!))
    await store.commit({ states: packed, stateIds })
    assert.deepEqual(stateCodec.decode(store.getState(ids[0]!)!), { i: 9 })
    assert.equal(store.getState(ids[1]!), undefined, 'a packed delete')
    assert.deepEqual(stateCodec.decode(store.getState(ids[2]!)!), values[2], 'untouched by the reused buffer')
  } finally {
    await store.close()
  }
})
