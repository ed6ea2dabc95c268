import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CallTable } from '../../src/host/pending-calls.ts'

const call = (id: number): { readonly id: number } => ({ id })

test('the call table finds, removes and lists calls by id, through slot collisions and growth', () => {
  const t = new CallTable<{ readonly id: number }>()
  // a hung call, then ids that land on its slot (1024 slots at first) while it is in flight
  const hung = call(5)
  t.set(hung)
  const colliding = [5 + 1024, 5 + 2048].map(call)
  for (const c of colliding) t.set(c)
  assert.equal(t.size, 3)
  assert.equal(t.get(5), hung)
  for (const c of colliding) assert.equal(t.get(c.id), c)
  assert.equal(t.get(5 + 3072), undefined)
  assert.equal(t.delete(5 + 3072), false, 'an id not in flight')
  assert.equal(t.delete(5 + 1024), true)
  assert.equal(t.get(5 + 1024), undefined)
  assert.equal(t.get(5), hung, 'the hung call is still found')
  assert.equal(t.size, 2)
  // many in flight at once: the table grows, and every call is still found once
  const many = Array.from({ length: 5000 }, (_, i) => call(10_000 + i))
  for (const c of many) t.set(c)
  assert.equal(t.size, 5002)
  for (const c of many) assert.equal(t.get(c.id), c)
  assert.deepEqual(t.values().map((c) => c.id).sort((a, b) => a - b), [5, 5 + 2048, ...many.map((c) => c.id)])
  const grown = t.capacity
  assert.ok(grown >= 8192, `grew to ${grown} slots`)
  for (const c of many) assert.equal(t.delete(c.id), true)
  // few left: compact shrinks the array, and what is left is still found
  t.compact()
  assert.ok(t.capacity < grown, `shrank from ${grown} to ${t.capacity}`)
  assert.equal(t.get(5), hung)
  assert.equal(t.get(5 + 2048), colliding[1])
  assert.equal(t.delete(5), true)
  assert.equal(t.delete(5 + 2048), true)
  assert.equal(t.size, 0)
  assert.deepEqual(t.values(), [])
  assert.equal(t.get(5), undefined)
})

test('ids far apart (the id space wrapping) share the table', () => {
  const t = new CallTable<{ readonly id: number }>()
  const high = call(0x7fffffff)
  const low = call(1)
  t.set(high)
  t.set(low)
  assert.equal(t.get(0x7fffffff), high)
  assert.equal(t.get(1), low)
  assert.equal(t.delete(0x7fffffff), true)
  assert.equal(t.get(1), low)
  assert.equal(t.size, 1)
})
