import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { IdArena, decodeUtf8 } from '../../native-free-core/runtime/id-arena.ts'
import { MAX_ID_BYTES } from '../../native-free-core/agent/agent-id.ts'
import { InvalidArgumentError } from '../../native-free-core/errors.ts'

const nodeUtf8 = (b: Uint8Array, at: number, end: number): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8', at, end)

test('ids of every length, ASCII or not, come back as themselves, by string and by bytes', () => {
  const ids = ['', 'a', 'default\u001fcounter\u001fk1', 'é', 'Ã©', '日本語', 'q\u001ft\u001f🦀 key', 'x'.repeat(MAX_ID_BYTES), 'é'.repeat(MAX_ID_BYTES / 2)]
  for (const decode of [decodeUtf8, nodeUtf8]) {
    const arena = new IdArena(decode)
    for (const id of ids) {
      const viaString = arena.addString(id)
      const bytes = Buffer.from(`..${id}..`)
      const viaBytes = arena.addBytes(bytes, 2, bytes.length - 4)
      assert.notEqual(viaString, viaBytes)
      for (const ref of [viaString, viaBytes]) {
        assert.equal(arena.string(ref), id)
        assert.equal(arena.byteLength(ref), Buffer.byteLength(id))
        assert.ok(arena.equalsString(ref, id))
        assert.ok(arena.equalsBytes(ref, bytes, 2, bytes.length - 4))
        const into = Buffer.alloc(MAX_ID_BYTES + 8, 0xee)
        assert.equal(arena.copyTo(ref, into, 3), Buffer.byteLength(id), 'copyTo returns the length')
        assert.equal(into.toString('utf8', 3, 3 + Buffer.byteLength(id)), id, 'copyTo writes the bytes at its offset')
        assert.equal(into[2], 0xee, 'and nothing before them')
        assert.equal(into[3 + Buffer.byteLength(id)], 0xee, 'nor after them')
        const prefix = Buffer.from(id).subarray(0, 7)
        assert.ok(arena.startsWith(ref, prefix))
        assert.equal(arena.startsWith(ref, Buffer.from(`${id}!`)), false, 'longer than the id')
        if (id.length > 0) assert.equal(arena.startsWith(ref, Buffer.from(`\u0000${id}`).subarray(0, Buffer.byteLength(id))), false)
      }
    }
    assert.equal(arena.size, ids.length * 2)
  }
})

test('equality is exact: same char codes are not the same bytes, a prefix is not the id', () => {
  const arena = new IdArena()
  const e = arena.addString('é') // C3 A9
  const mojibake = arena.addString('Ã©') // C3 83 C2 A9
  assert.ok(!arena.equalsString(e, 'Ã©'))
  assert.ok(!arena.equalsString(mojibake, 'é'))
  // "Ã©" has two UTF-16 units whose codes are é's two bytes: equal length, not equal
  assert.ok(!arena.equalsString(e, String.fromCharCode(0xc3, 0xa9)))
  const k = arena.addString('default\u001fcounter\u001fk1')
  assert.ok(!arena.equalsString(k, 'default\u001fcounter\u001fk10'))
  assert.ok(!arena.equalsString(k, 'default\u001fcounter\u001fk'))
  const b = Buffer.from('default\u001fcounter\u001fk10')
  assert.ok(!arena.equalsBytes(k, b, 0, b.length))
  assert.ok(arena.equalsBytes(k, b, 0, b.length - 1))
})

test('records fill chunk after chunk, never spanning two, and stay readable', () => {
  const chunkBytes = 4096 // the smallest allowed: the longest record must fit
  const arena = new IdArena(decodeUtf8, chunkBytes)
  const ids: string[] = []
  const refs: number[] = []
  for (let i = 0; i < 5000; i++) {
    // lengths 1..300 bytes, some non-ASCII: records of many sizes straddle the chunk ends
    const id = (i % 7 === 0 ? 'ü' : 'k') + String(i).repeat(1 + (i % 60))
    ids.push(id)
    refs.push(arena.addString(id))
  }
  assert.ok(arena.allocatedBytes > 50 * chunkBytes, `${arena.allocatedBytes} bytes in chunks`)
  for (let i = 0; i < ids.length; i++) assert.equal(arena.string(refs[i]!), ids[i])
  // the longest id fits a chunk on its own
  const long = 'z'.repeat(MAX_ID_BYTES)
  const r = arena.addString(long)
  assert.equal(arena.string(r), long)
  assert.equal(arena.string(refs[0]!), ids[0])
})

test('a released record is reused by the next id of its size, and only then', () => {
  const arena = new IdArena(decodeUtf8, 4096)
  const a = arena.addString('default\u001fcounter\u001fk1')
  const b = arena.addString('default\u001fcounter\u001fk2')
  const used = arena.allocatedBytes
  arena.release(a)
  assert.equal(arena.size, 1)
  const other = arena.addString('a much longer id than the one released, another size')
  assert.notEqual(other, a)
  const c = arena.addString('default\u001fcounter\u001fk3') // 24 bytes, as a's
  assert.equal(c, a, 'same size: the freed record')
  assert.equal(arena.string(c), 'default\u001fcounter\u001fk3')
  assert.equal(arena.string(b), 'default\u001fcounter\u001fk2', 'its neighbour untouched')
  // churn: activate and passivate the same number of ids again and again — no growth
  const live: number[] = []
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) live.push(arena.addString(`default\u001fcounter\u001fr${round}-${i % 10}`))
    for (const ref of live.splice(0)) arena.release(ref)
  }
  assert.ok(arena.allocatedBytes <= used + 4096, `${arena.allocatedBytes} bytes after churn`)
})

test('a model of adds and releases agrees with the arena', () => {
  const op = fc.oneof(
    fc.record({ add: fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => s.isWellFormed()) }),
    fc.record({ release: fc.nat() }))
  fc.assert(fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
    const arena = new IdArena(decodeUtf8, 4096)
    const live = new Map<number, string>()
    for (const o of ops) {
      if ('add' in o) {
        const ref = arena.addString(o.add)
        assert.ok(!live.has(ref), 'a ref in use is never handed out again')
        live.set(ref, o.add)
      } else if (live.size !== 0) {
        const ref = [...live.keys()][o.release % live.size]!
        arena.release(ref)
        live.delete(ref)
      }
      assert.equal(arena.size, live.size)
    }
    for (const [ref, id] of live) {
      assert.equal(arena.string(ref), id)
      assert.ok(arena.equalsString(ref, id))
      const b = Buffer.from(id)
      assert.ok(arena.equalsBytes(ref, b, 0, b.length))
    }
  }), { seed: 13, numRuns: 200 })
})

test('bad sizes are typed errors', () => {
  const arena = new IdArena()
  const tooLong = Buffer.alloc(MAX_ID_BYTES + 1, 0x61)
  assert.throws(() => arena.addBytes(tooLong, 0, tooLong.length), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'SHOAL_ERR_INVALID_ARGUMENT')
  assert.throws(() => arena.addString('é'.repeat(MAX_ID_BYTES)), InvalidArgumentError)
  assert.throws(() => new IdArena(decodeUtf8, 1000), InvalidArgumentError)
  assert.throws(() => new IdArena(decodeUtf8, 1024), InvalidArgumentError, 'below the longest record')
})

test('the chunks do not count as V8 external memory (which starts marking cycles as it grows)', () => {
  const arena = new IdArena(decodeUtf8)
  const external0 = process.memoryUsage().external
  const id = Buffer.from('default\u001fcounter\u001fk-00000000')
  while (arena.allocatedBytes < 32 << 20) arena.addBytes(id, 0, id.length)
  const grown = process.memoryUsage().external - external0
  assert.ok(grown < 4 << 20, `external memory grew ${grown} B for ${arena.allocatedBytes} B of chunks`)
  assert.equal(arena.string(arena.addString('é日本')), 'é日本', 'and they read as any other bytes')
})
