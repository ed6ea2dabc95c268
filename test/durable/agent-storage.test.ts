/**
 * ctx.storage on a real LMDB environment: synchronous reads of what the turn and the
 * batch wrote, UTF-8 key order merged across uncommitted writes and the store, rollback
 * with the turn, persistence across restarts, and every bad input.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { agentErrorWith, durableHost, tempDataDir } from './helpers.ts'

test('put, get, delete and list — prefix, start, limit — in UTF-8 key order', async () => {
  const host = await durableHost(tempDataDir())
  const a = host.ref('kv', 'ordered')
  // code unit order would put the surrogate pair (U+1F600) before U+E000; UTF-8 order puts it after
  await a.call('putMany', [['b', 2], ['a', 1], ['\u{1F600}', 4], ['\uE000', 3], ['p/2', 6], ['p/1', 5]])
  assert.deepEqual((await a.call('list')).map(([k]: [string]) => k), ['a', 'b', 'p/1', 'p/2', '\uE000', '\u{1F600}'])
  assert.deepEqual(await a.call('list', { prefix: 'p/' }), [['p/1', 5], ['p/2', 6]])
  assert.deepEqual(await a.call('list', { start: 'b', limit: 2 }), [['b', 2], ['p/1', 5]])
  assert.equal(await a.call('get', 'b'), 2)
  assert.equal(await a.call('get', 'missing'), undefined)
  assert.equal(await a.call('del', 'b'), true)
  assert.equal(await a.call('del', 'b'), false)
  assert.deepEqual(await a.call('putThenRead', ['c', { x: 1 }]), [{ x: 1 }, [['a', 1], ['c', { x: 1 }], ['p/1', 5], ['p/2', 6], ['\uE000', 3], ['\u{1F600}', 4]]])
  assert.deepEqual(await a.call('mutateRead', 'c'), { x: 1 }, 'a value read is a copy')
  await host.close()
})

test('storage survives restarts; a listing merges uncommitted writes and deletions with the store', async () => {
  const dataDir = tempDataDir()
  let host = await durableHost(dataDir)
  const entries = Array.from({ length: 300 }, (_, i): [string, number] => [`k${String(i).padStart(3, '0')}`, i])
  await host.ref('kv', 'big').call('putMany', entries)
  await host.close()
  host = await durableHost(dataDir)
  const a = host.ref('kv', 'big')
  assert.equal((await a.call('list')).length, 300)
  a.cast('del', 'k000')
  a.cast('put', ['k0995', 'new'])
  a.cast('put', ['k001', 'changed'])
  const listed = await a.call('list', { limit: 4 })
  assert.deepEqual(listed, [['k001', 'changed'], ['k002', 2], ['k003', 3], ['k004', 4]])
  assert.deepEqual(await a.call('list', { prefix: 'k099' }), [['k099', 99], ['k0995', 'new']])
  await host.close()
  host = await durableHost(dataDir)
  assert.equal(await host.ref('kv', 'big').call('get', 'k000'), undefined)
  assert.equal(await host.ref('kv', 'big').call('get', 'k001'), 'changed')
  assert.equal((await host.ref('kv', 'big').call('list')).length, 300)
  await host.close()
})

test('a handler that throws after a put rolls the put back, on disk too', async () => {
  const dataDir = tempDataDir()
  let host = await durableHost(dataDir)
  const a = host.ref('kv', 'careful')
  await a.call('put', ['kept', 1])
  await assert.rejects(a.call('putThenThrow', ['lost', 2]), { code: 'SHOAL_ERR_AGENT', message: 'refused after put' })
  assert.equal(await a.call('get', 'lost'), undefined)
  assert.equal(await a.call('writes'), 1)
  await host.close()
  host = await durableHost(dataDir)
  assert.deepEqual(await host.ref('kv', 'careful').call('list'), [['kept', 1]])
  assert.equal(await host.ref('kv', 'careful').call('writes'), 1)
  await host.close()
})

test('bad storage input fails the turn with a typed error and disturbs nothing else', async () => {
  const host = await durableHost(tempDataDir(), { workers: 1 })
  const a = host.ref('kv', 'strict')
  await a.call('put', ['ok', 1])
  await assert.rejects(a.call('tryPut', 'x'), agentErrorWith('SHOAL_ERR_INVALID_ARGUMENT'), 'a write in a query')
  await assert.rejects(a.call('badKey', 42), agentErrorWith('SHOAL_ERR_INVALID_ARGUMENT'), 'a key that is not a string')
  await assert.rejects(a.call('badKey', 'x'.repeat(513)), agentErrorWith('SHOAL_ERR_INVALID_ARGUMENT'), 'a key over 512 bytes')
  await assert.rejects(a.call('putUnencodable', 'y'), agentErrorWith('SHOAL_ERR_ENCODE'))
  await assert.rejects(a.call('putUndefined', 'y'), agentErrorWith('SHOAL_ERR_INVALID_ARGUMENT'))
  await assert.rejects(a.call('list', { limit: -1 }), agentErrorWith('SHOAL_ERR_INVALID_ARGUMENT'))
  assert.deepEqual(await a.call('list'), [['ok', 1]])
  assert.equal(await host.ref('kv', 'neighbour').call('put', ['n', 2]), undefined)
  await host.close()
})

test('keys of every kind — non-ASCII, 512 bytes, NUL, a key that is a prefix of another — round-trip through LMDB, in UTF-8 order, across a restart', async () => {
  const dataDir = tempDataDir()
  const keys = ['', 'a', 'a\0', 'a\0b', 'é', 'naïve', '日本語', '\u{1F600}', 'x'.repeat(512), 'é'.repeat(256), '\u{1F600}'.repeat(128), 'k'.repeat(40), 'ключ'.repeat(10), '\uFFFD']
  const entries = keys.map((k, i): [string, number] => [k, i])
  const utf8Order = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  let host = await durableHost(dataDir)
  const a = host.ref('kv', 'every-key')
  await a.call('putMany', entries.slice(0, 7)) // one batch, then casts that share a batch
  for (const e of entries.slice(7)) a.cast('put', e)
  for (const [k, i] of entries) assert.equal(await a.call('get', k), i, JSON.stringify(k).slice(0, 30))
  assert.deepEqual((await a.call('list')).map(([k]: [string]) => k), utf8Order)
  await host.close()
  host = await durableHost(dataDir)
  const b = host.ref('kv', 'every-key')
  for (const [k, i] of entries) assert.equal(await b.call('get', k), i, JSON.stringify(k).slice(0, 30))
  assert.deepEqual(await b.call('list'), utf8Order.map((k) => [k, keys.indexOf(k)]))
  assert.deepEqual(await b.call('list', { prefix: 'a' }), [['a', 1], ['a\0', 2], ['a\0b', 3]])
  assert.equal(await b.call('del', 'é'.repeat(256)), true)
  assert.equal(await b.call('get', 'é'.repeat(256)), undefined)
  await host.close()
})

test('a bad key is still a typed error after a good one in the same batch: 513 UTF-8 bytes of é', async () => {
  const host = await durableHost(tempDataDir(), { workers: 1 })
  const a = host.ref('kv', 'bad-keys')
  a.cast('put', ['ok', 1])
  await assert.rejects(a.call('put', ['x' + 'é'.repeat(256), 1]), agentErrorWith('SHOAL_ERR_INVALID_ARGUMENT'), '513 UTF-8 bytes')
  assert.deepEqual(await a.call('list'), [['ok', 1]])
  await host.close()
})
