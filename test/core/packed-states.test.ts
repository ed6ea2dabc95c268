import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { PackedStates } from '../../native-free-core/storage/packed-states.ts'
import { stateBytesNow, stateBytesOf, stateHashOf, stateIdOf, stateOwnId } from '../../native-free-core/storage/store.ts'
import type { WriteBatch } from '../../native-free-core/storage/store.ts'

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)

test('packed states: bytes, deletes, hashes and string ids by index, past the room first made', () => {
  const p = new PackedStates(16, 2) // room for 16 bytes and 2 states: the rest grow it
  const values = [bytes(5, 1), null, bytes(100, 2), bytes(0, 3), bytes(64, 4), bytes(65, 5)]
  const names = [null, 'b', null, null, 'e', null]
  for (const [k, v] of values.entries()) p.push(names[k]!, v, 0xfffffff0 + k) // hashes past int32
  assert.equal(p.length, values.length)
  const positions = new Set<Uint8Array>()
  for (const [k, v] of values.entries()) {
    assert.equal(p.id(k), names[k])
    assert.equal(p.hash(k), 0xfffffff0 + k)
    assert.equal(p.deleted(k), v === null)
    assert.deepEqual(p.view(k), v)
    const copy = p.copy(k)
    assert.deepEqual(copy, v)
    if (v === null) continue
    assert.notEqual(copy!.buffer, p.view(k)!.buffer, 'a copy has bytes of its own')
    const at = p.value(k)
    positions.add(at)
    assert.equal(at.byteOffset, 0, 'lmdb-js adds start to the ArrayBuffer\'s address')
    assert.deepEqual(at.subarray(at.start, at.end), v)
  }
  assert.equal(positions.size, 1, 'one buffer for every put: positioned, not a view each')
})

test('a reset batch is reused with its room, and forgets its string ids', () => {
  const p = new PackedStates(16, 2)
  for (let k = 0; k < 100; k++) p.push(k === 3 ? 's' : null, bytes(20, k), k)
  const room = p.capacity
  p.reset()
  assert.equal(p.length, 0)
  p.push(null, bytes(20, 9), 1)
  assert.equal(p.capacity, room)
  assert.equal(p.id(0), null)
  assert.deepEqual(p.view(0), bytes(20, 9))
  p.push(null, bytes(3, 1), 2)
  p.push(null, bytes(3, 1), 2)
  p.push(null, bytes(3, 1), 2)
  assert.equal(p.id(3), null, 'no string id left from before the reset')
})

test('the store helpers read tuples and packed states alike', () => {
  const packed = new PackedStates()
  packed.push(null, bytes(4, 1), 7)
  packed.push('default\u001fcounter\u001fs', null, 8)
  const tuples: WriteBatch['states'] = [[null, bytes(4, 1), 7], ['default\u001fcounter\u001fs', null, 8]]
  const stateIds = { id: () => 'default\u001fcounter\u001fbytes', writeId: () => 0 }
  for (const states of [packed, tuples]) {
    const batch: WriteBatch = { states, stateIds }
    assert.deepEqual([0, 1].map((k) => stateIdOf(batch, k)), ['default\u001fcounter\u001fbytes', 'default\u001fcounter\u001fs'])
    assert.deepEqual([0, 1].map((k) => stateOwnId(states, k)), [null, 'default\u001fcounter\u001fs'])
    assert.deepEqual([0, 1].map((k) => stateBytesOf(states, k)), [bytes(4, 1), null])
    assert.deepEqual([0, 1].map((k) => stateBytesNow(states, k)), [bytes(4, 1), null])
    assert.deepEqual([0, 1].map((k) => stateHashOf(states, k)), [7, 8])
  }
})

test('tuples packed for a store: the same ids, bytes and hashes; a missing hash is the id\'s own', () => {
  const fromIds = 'default\u001fcounter\u001fbytes'
  const stateIds = { id: () => fromIds, writeId: () => 0 }
  const packed = PackedStates.from([[null, bytes(3, 9)], ['default\u001fcounter\u001fs', null], ['default\u001fcounter\u001ft', bytes(70, 2), 5]], stateIds)
  assert.equal(packed.length, 3)
  assert.deepEqual([0, 1, 2].map((k) => packed.id(k)), [null, 'default\u001fcounter\u001fs', 'default\u001fcounter\u001ft'])
  assert.deepEqual([0, 1, 2].map((k) => packed.view(k)), [bytes(3, 9), null, bytes(70, 2)])
  assert.deepEqual([0, 1, 2].map((k) => packed.hash(k)), [hashId(fromIds), hashId('default\u001fcounter\u001fs'), 5])
})
