import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BatchIds } from '../../native-free-core/runtime/batch-ids.ts'
import { IdArena, decodeUtf8 } from '../../native-free-core/runtime/id-arena.ts'
import { MAX_ID_BYTES } from '../../native-free-core/agent/agent-id.ts'

test('a batch\'s ids are copies of the arena\'s records, in order, past the room first made and after the records are reused', () => {
  const arena = new IdArena(decodeUtf8, 4096)
  const ids = ['default\u001fcounter\u001fk1', 'q\u001ft\u001fé日本🦀', 'x'.repeat(MAX_ID_BYTES), '', 'default\u001fcounter\u001fk2']
  const batch = new BatchIds(decodeUtf8, 1) // room for one: the rest grow it
  const refs: number[] = []
  for (const [k, id] of ids.entries()) {
    if (k === 3) { batch.skip(); refs.push(-1); continue } // held as a string by the batch itself
    const ref = arena.addString(id)
    refs.push(ref)
    batch.addRef(arena, ref)
  }
  for (const ref of refs) if (ref >= 0) arena.release(ref)
  for (const id of ids) arena.addString(`${id.slice(0, -1)}Z`) // the same sizes: the freed records, written over
  const into = Buffer.alloc(MAX_ID_BYTES + 16, 0xee)
  for (const [k, id] of ids.entries()) {
    assert.equal(batch.id(k), id, `id ${k}`)
    const n = batch.writeId(k, into, 5)
    assert.equal(n, Buffer.byteLength(id))
    assert.equal(into.toString('utf8', 5, 5 + n), id)
    assert.equal(into[4], 0xee, 'nothing written before its offset')
  }
  assert.deepEqual(batch.resolved([[null, null, 1], ['s', null, 2]]).map(([id]) => id), [ids[0], 's'])
})
