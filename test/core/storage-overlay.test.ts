/**
 * StorageOverlay, the uncommitted `ctx.storage` writes of one agent: keys kept as UTF-8
 * bytes in one array. Keys of every kind come back as the same strings, in write order,
 * as their UTF-8 bytes to a store that asks for bytes, and through truncation (a turn
 * that threw) and a lookup index made late.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_STORAGE_KEY_BYTES, StorageOverlay } from '../../native-free-core/storage/agent-storage.ts'

const utf8 = new TextEncoder()

/** Keys of varied content: ASCII, empty, 2-, 3- and 4-byte UTF-8, long, mixed, NUL and control bytes. */
const kKeys = [
  'a', '', '0', '12345', 'é', 'naïve', '日本語のキー', '\u{1F600}', 'a\u{1F600}b', '\0', 'tab\there', '\x7f\x80',
  'x'.repeat(MAX_STORAGE_KEY_BYTES), 'é'.repeat(MAX_STORAGE_KEY_BYTES / 2), '\u{1F600}'.repeat(MAX_STORAGE_KEY_BYTES / 4),
  'ascii then é', 'é then ascii', 'k'.repeat(33), 'ü'.repeat(17), '\uFFFD', '\uE000'
]

function entries (o: StorageOverlay): Array<[string, Uint8Array | null]> {
  const out: Array<[string, Uint8Array | null]> = []
  o.forEach((bytes, key) => out.push([key, bytes]))
  return out
}

test('keys of every kind come back as written, in order, as strings and as their UTF-8 bytes', () => {
  const o = new StorageOverlay()
  const values = kKeys.map((_, i) => i % 3 === 2 ? null : Uint8Array.of(i))
  kKeys.forEach((k, i) => o.set(k, values[i]!))
  assert.equal(o.length, kKeys.length)
  assert.deepEqual(entries(o), kKeys.map((k, i) => [k, values[i]]))
  const asBytes: Array<[Uint8Array, Uint8Array | null]> = []
  o.forEachBytes((bytes, keys, start, end) => asBytes.push([keys.slice(start, end), bytes]))
  assert.deepEqual(asBytes, kKeys.map((k, i) => [utf8.encode(k), values[i]]))
  for (const [i, k] of kKeys.entries()) assert.equal(o.get(k), values[i], JSON.stringify(k).slice(0, 40))
  assert.equal(o.get('missing'), undefined)
  assert.equal(o.get('e\u0301'), undefined, 'é decomposed is another key')
})

test('a key written again: both writes in order, the later one counts; the same bytes put again share a value slot but stay their own writes', () => {
  const o = new StorageOverlay()
  const test1 = Uint8Array.of(1)
  o.set('k', test1)
  o.set('é', test1)
  o.set('k', test1)
  o.set('k', null)
  o.set('z', Uint8Array.of(2))
  assert.deepEqual(entries(o).map(([k, v]) => [k, v === null ? null : v[0]]), [['k', 1], ['é', 1], ['k', 1], ['k', null], ['z', 2]])
  assert.equal(o.get('k'), null)
  assert.deepEqual([...o.latest()].map(([k, v]) => [k, v === null ? null : v[0]]), [['k', null], ['é', 1], ['z', 2]])
  o.set('k', test1) // after the index exists: it follows
  assert.equal(o.get('k'), test1)
})

test('truncate returns the writes after the mark and forgets them; writing on continues from the mark', () => {
  const o = new StorageOverlay()
  const v = Uint8Array.of(7)
  o.set('keep', v)
  o.set('日本', v)
  assert.equal(o.get('keep'), v) // an index made before the cut is dropped with it
  const mark = o.length
  o.set('gone', v)
  o.set('\u{1F600}', null)
  o.set('keep', Uint8Array.of(8))
  const cut = o.truncate(mark)
  assert.deepEqual(cut.map((x) => x instanceof Uint8Array ? x[0] : x), ['gone', 7, '\u{1F600}', null, 'keep', 8])
  assert.equal(o.length, 2)
  assert.equal(o.get('gone'), undefined)
  assert.equal(o.get('keep'), v)
  assert.deepEqual(o.truncate(5), [], 'a mark past the end cuts nothing')
  o.set('after', null)
  o.set('é'.repeat(100), v)
  assert.deepEqual(entries(o).map(([k, b]) => [k, b === null ? null : b[0]]), [['keep', 7], ['日本', 7], ['after', null], ['é'.repeat(100), 7]])
  o.truncate(0)
  assert.deepEqual(entries(o), [])
  o.set('x', v)
  assert.deepEqual(entries(o), [['x', v]])
})

test('thousands of writes grow the arrays; a layer sized like one before it holds the same', () => {
  const first = new StorageOverlay()
  const v = Uint8Array.of(1)
  for (let i = 0; i < 5000; i++) first.set(i % 7 === 0 ? `ключ-${i}` : String(i), v)
  const keys = entries(first).map(([k]) => k)
  assert.equal(keys.length, 5000)
  assert.equal(keys[4999], '4999')
  assert.equal(keys[4998], 'ключ-4998')
  const next = new StorageOverlay(first)
  for (let i = 0; i < 9000; i++) next.set(`n${i}`, i === 8999 ? null : v)
  assert.equal(next.length, 9000)
  assert.equal(next.get('n8999'), null)
  assert.equal(next.get('n0'), v)
})
