import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BatchIds } from '../../native-free-core/runtime/batch-ids.ts'
import { IdArena, decodeUtf8 } from '../../native-free-core/runtime/id-arena.ts'
import { MAX_ID_BYTES } from '../../native-free-core/agent/agent-id.ts'
import { PackedStates } from '../../native-free-core/storage/packed-states.ts'

function check (batch: BatchIds, ids: ReadonlyArray<string | null>): void {
  const into = Buffer.alloc(MAX_ID_BYTES + 16, 0xee)
  assert.equal(batch.length, ids.length)
  for (const [k, id] of ids.entries()) {
    if (id === null) { assert.equal(batch.hasBytes(k), false, `entry ${k} is held as a string`); continue }
    assert.ok(batch.hasBytes(k), `entry ${k}`)
    assert.equal(batch.id(k), id, `id ${k}`)
    const n = batch.writeId(k, into, 5)
    assert.equal(n, Buffer.byteLength(id))
    assert.equal(into.toString('utf8', 5, 5 + n), id)
    assert.equal(into[4], 0xee, 'nothing written before its offset')
  }
}

test('a batch\'s ids are copies of the arena\'s records taken when staged, in order, past the room first made and after the records are reused', () => {
  const arena = new IdArena(decodeUtf8, 4096)
  const ids = ['default\u001fcounter\u001fk1', 'q\u001ft\u001fé日本🦀', 'x'.repeat(MAX_ID_BYTES), '', 'default\u001fcounter\u001fk2']
  const batch = new BatchIds(decodeUtf8, 16) // room for 16 bytes: the rest grow it
  const refs: number[] = []
  for (const [k, id] of ids.entries()) {
    if (k === 3) { batch.addString(); refs.push(-1); continue } // held as a string by the batch's state
    const ref = arena.addString(id)
    refs.push(ref)
    batch.addRef(arena, ref)
  }
  for (const ref of refs) if (ref >= 0) arena.release(ref)
  for (const id of ids) arena.addString(`${id.slice(0, -1)}Z`) // the same sizes: the freed records, written over
  check(batch, ids.map((id, k) => k === 3 ? null : id))
  const packed = new PackedStates()
  packed.push(null, null, 1)
  packed.push('s', Uint8Array.of(7), 2)
  assert.deepEqual(batch.resolved(packed), [[ids[0], null, 1], ['s', Uint8Array.of(7), 2]])
})

test('entries left out by the commit loop (keep, truncate) leave the kept ones in order; a reset batch is reused without new room', () => {
  const arena = new IdArena(decodeUtf8, 4096)
  const batch = new BatchIds(decodeUtf8, 64)
  const staged = Array.from({ length: 1200 }, (_, i) => `default\u001fcounter\u001fk${i}`) // past the first spans' room
  for (const id of staged) batch.addRef(arena, arena.addString(id))
  // the loop keeps every third entry but the first (the others poisoned or unencodable)
  const kept: string[] = []
  for (let k = 0; k < staged.length; k++) {
    if (k % 3 !== 1) continue
    batch.keep(k, kept.length)
    kept.push(staged[k]!)
  }
  batch.truncate(kept.length)
  check(batch, kept)
  const room = batch.capacity
  batch.reset()
  assert.equal(batch.length, 0)
  const next = ['default\u001fcounter\u001fnew', 'q\u001ft\u001fü']
  batch.addRef(arena, arena.addString(next[0]!))
  batch.addString()
  batch.addRef(arena, arena.addString(next[1]!))
  batch.keep(0, 0)
  batch.keep(2, 1)
  batch.truncate(2)
  check(batch, next)
  assert.equal(batch.capacity, room, 'the room made for the first batch is kept')
})
