/**
 * Shard ranges without LMDB: the chunk format (bounded chunks, checked on the way in) and
 * the memory store's range API — export, import replacing the range, drop, size — and
 * listing in storage order (by shard, then id bytes). The LMDB store's are in
 * test/durable/shard-ranges.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compareKeys } from '../../native-free-core/storage/store.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { StorageChanges, WriteBatch } from '../../native-free-core/storage/store.ts'
import {
  RANGE_STATES, RANGE_STORAGE, agentKey, parseAgentKey, parseSendKey, rangeChunks, readRangeChunks, sendKey, stateKey
} from '../../native-free-core/storage/shard-range.ts'
import type { RangeRecord } from '../../native-free-core/storage/shard-range.ts'
import { STORE_FORMAT, isStoreId } from '../../native-free-core/storage/store-format.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { idsInShard, shardOfId } from '../fixtures/shards.ts'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined): string | undefined => b === undefined ? undefined : new TextDecoder().decode(b)

function changes (entries: Array<[string, string | null]>): StorageChanges {
  return { wiped: false, entries: new Map(entries.map(([k, v]) => [k, v === null ? null : bytes(v)])) }
}

/** States, storage keys and a reminder for each id. */
function fill (store: MemoryStore, ids: readonly string[], tag: string): void {
  const batch: WriteBatch = {
    states: ids.map((id) => [id, bytes(`${tag}:${id}`)] as const),
    storage: new Map(ids.map((id) => [id, changes([['a', `${tag}a`], ['b', `${tag}b`]])])),
    reminders: new Map(ids.map((id) => [id, changes([['tick', '0123456789abcdef']])]))
  }
  store.commit(batch)
}

test('chunks stay within the bound (a larger record gets its own) and read back as written', () => {
  const records: RangeRecord[] = []
  for (let i = 0; i < 50; i++) records.push([RANGE_STATES, bytes(`id-${i}`), bytes('v'.repeat(i))])
  records.push([RANGE_STORAGE, bytes('\u0000\u0001xk'), new Uint8Array(1000)])
  const chunks = [...rangeChunks(records, 128)]
  assert.ok(chunks.length > 10)
  for (const c of chunks) {
    assert.equal(c[0], STORE_FORMAT)
    assert.ok(c.length <= 128 || c.length === 1 + 7 + 4 + 1000, `chunk of ${c.length} bytes`)
  }
  const back: RangeRecord[] = []
  for (const c of chunks) {
    const view = new DataView(c.buffer, c.byteOffset)
    for (let at = 1; at < c.length;) {
      const k = view.getUint16(at + 1)
      const v = view.getUint32(at + 3)
      back.push([c[at]!, c.slice(at + 7, at + 7 + k), c.slice(at + 7 + k, at + 7 + k + v)])
      at += 7 + k + v
    }
  }
  assert.deepEqual(back.map(([db, k, v]) => [db, [...k], [...v]]), records.map(([db, k, v]) => [db, [...k], [...v]]))
  assert.throws(() => [...rangeChunks(records, 10)], { code: 'SHOAL_ERR_STORAGE' })
})

test('keys: agent keys and send identities round-trip', () => {
  assert.deepEqual(parseAgentKey(agentKey('q\u001ft\u001fé', 'a/ß')), ['q\u001ft\u001fé', 'a/ß'])
  assert.deepEqual(parseSendKey(sendKey('0123456789abcdef', 2 ** 52 + 7)), ['0123456789abcdef', 2 ** 52 + 7])
  assert.deepEqual(parseSendKey(sendKey('ffffffffffffffff', 1)), ['ffffffffffffffff', 1])
})

test('a malformed chunk is refused with StorageError, naming the shard and the chunk', () => {
  const [id] = idsInShard(7, 't', 1)
  const good = [...rangeChunks([[RANGE_STATES, stateKey(id!), bytes('x')]])]
  assert.equal(readRangeChunks(7, good).length, 1)
  const refused = (chunks: Uint8Array[], why: RegExp): void => {
    assert.throws(() => readRangeChunks(7, chunks), (err: { code?: string, message: string, data?: { shard?: number } }) =>
      err.code === 'SHOAL_ERR_STORAGE' && why.test(err.message) && err.data?.shard === 7)
  }
  refused([Uint8Array.of(1, ...good[0]!.subarray(1))], /storage format 1, this Shoal reads 2/)
  refused([good[0]!.subarray(0, good[0]!.length - 1)], /cut off/)
  refused([Uint8Array.of(2, 9, 0, 1, 0, 0, 0, 0, 0x41)], /unknown database 9/)
  refused([...rangeChunks([[RANGE_STATES, stateKey(idsInShard(8, 't', 1)[0]!), bytes('x')]])], /is in shard 8/)
  refused([...rangeChunks([[RANGE_STORAGE, Uint8Array.of(0, 200, 65), bytes('x')]])], /cut off or not UTF-8/)
  assert.throws(() => readRangeChunks(4096, good), { code: 'SHOAL_ERR_STORAGE' })
})

test('memory store: a shard exports, imports into another store replacing its range, and drops', () => {
  const a = new MemoryStore()
  const b = new MemoryStore()
  assert.ok(isStoreId(a.storeId) && isStoreId(b.storeId) && a.storeId !== b.storeId)
  const moving = idsInShard(100, 't', 3)
  const staying = idsInShard(101, 't', 2)
  fill(a, [...moving, ...staying], 'a')
  const old = idsInShard(100, 'u', 2)
  fill(b, [...old, ...idsInShard(102, 't', 1)], 'b') // b's shard 100 holds other agents: replaced

  const size = a.shardSize(100)
  assert.deepEqual(size.records, 3 * 4)
  const chunks = [...a.exportShard(100, 64)]
  assert.ok(chunks.length >= 6 && chunks.every((c) => c.length <= 64))
  b.importShard(100, chunks)
  assert.deepEqual(b.shardSize(100), size)
  for (const id of moving) {
    assert.equal(text(b.getState(id)), `a:${id}`)
    assert.deepEqual([...b.listStorage(id, '', undefined)].map(([k, v]) => [k, text(v)]), [['a', 'aa'], ['b', 'ab']])
  }
  for (const id of old) assert.equal(b.getState(id), undefined, 'what the range held is gone')
  assert.deepEqual([...b.reminders(100)].map(([id, name]) => [id, name]).sort(), moving.map((id) => [id, 'tick']).sort())
  assert.equal([...b.reminders(102)].length, 1)
  assert.equal([...b.reminders()].length, 4)
  assert.equal(b.size, 4)

  a.dropShard(100)
  assert.deepEqual(a.shardSize(100), { records: 0, bytes: 0 })
  for (const id of moving) assert.equal(a.getState(id), undefined)
  assert.equal(a.shardSize(101).records, 2 * 4, 'other shards untouched')
  assert.equal(a.size, 2)

  // a refused import writes nothing
  const before = b.shardSize(101)
  assert.throws(() => b.importShard(101, chunks), { code: 'SHOAL_ERR_STORAGE' })
  assert.deepEqual(b.shardSize(101), before)
})

test('memory store: ids come in storage order — by shard, then by UTF-8 bytes — whatever the prefix', () => {
  const store = new MemoryStore()
  const ids: string[] = []
  for (let i = 0; i < 300; i++) ids.push(idString('default', i % 2 === 0 ? 'even' : 'odd', `k${i}${i % 7 === 0 ? '\u{1F600}' : i % 5 === 0 ? '\uFFFD' : ''}`))
  store.commit({ states: ids.map((id) => [id, bytes('s')] as const) })
  const order = (a: string, b: string): number => shardOfId(a) - shardOfId(b) || compareKeys(a, b)
  assert.deepEqual([...store.ids('')], [...ids].sort(order))
  const odd = ids.filter((id) => id.startsWith(idString('default', 'odd', ''))).sort(order)
  assert.deepEqual([...store.ids(idString('default', 'odd', ''))], odd)
})
