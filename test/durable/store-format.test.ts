/**
 * The storage format on real LMDB files: a new data directory is written as format 2
 * with a random store id that it keeps; a directory of another format — today's
 * unversioned one (format 1) or a later one — is refused with a StorageError that names
 * the directory, the format found and the format this Shoal reads, by the store and by
 * createHost (nothing left running).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { open } from 'lmdb'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { STORE_FORMAT, isStoreId } from '../../native-free-core/storage/store-format.ts'
import { durableHost, tempDataDir } from './helpers.ts'

test('an empty data directory is initialised: format 2 and a store id, kept across opens', async () => {
  const dir = tempDataDir()
  let store = new LmdbStore({ path: dir, durability: 'disk' })
  const id = store.storeId
  assert.ok(isStoreId(id), id)
  await store.close()
  store = new LmdbStore({ path: dir, durability: 'disk' })
  assert.equal(store.storeId, id)
  await store.close()

  const env = open({ path: dir, maxDbs: 8 })
  const meta = env.openDB({ name: 'meta' })
  assert.equal(meta.get('format'), STORE_FORMAT)
  assert.equal(meta.get('storeId'), id)
  await env.close()

  const other = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  assert.notEqual(other.storeId, id, 'every environment has its own')
  await other.close()

  // a host's threads open the same environment: all see the id the first one made
  const hostDir = tempDataDir()
  const host = await durableHost(hostDir)
  await host.ref('account', 'a').call('fund', 1)
  await host.close()
  const reopened = new LmdbStore({ path: hostDir, durability: 'disk' })
  assert.ok(isStoreId(reopened.storeId))
  await reopened.close()
})

/** What a Shoal before formats left: states keyed by id alone, an incarnation, no format. */
async function unversionedDataDir (): Promise<string> {
  const dir = tempDataDir()
  const env = open({ path: dir, maxDbs: 8 })
  env.openDB({ name: 'states', encoding: 'binary' }).putSync(idString('default', 'account', 'old'), Buffer.from([0x81, 0xa1, 0x62, 0x05]))
  env.openDB({ name: 'meta' }).putSync('incarnation', 3)
  await env.close()
  return dir
}

const refusedFormat = (dir: string, found: number) => (err: { code?: string, message: string, data?: unknown }): boolean => {
  assert.equal(err.code, 'SHOAL_ERR_STORAGE')
  assert.ok(err.message.includes(dir), err.message)
  assert.match(err.message, new RegExp(`format ${found}\\b.*this Shoal reads format ${STORE_FORMAT}`))
  assert.deepEqual(err.data, { dataDir: dir, format: found, expected: STORE_FORMAT })
  return true
}

test('a data directory without a recorded format (format 1) is refused, by the store and by createHost', async () => {
  const dir = await unversionedDataDir()
  assert.throws(() => new LmdbStore({ path: dir, durability: 'disk' }), refusedFormat(dir, 1))
  for (const workers of [0, 2]) await assert.rejects(durableHost(dir, { workers }), refusedFormat(dir, 1))
  // refusing wrote nothing: still format 1
  const env = open({ path: dir, maxDbs: 8 })
  assert.equal(env.openDB({ name: 'meta' }).get('format'), undefined)
  await env.close()
})

test('a data directory of a later format is refused, naming it', async () => {
  const dir = tempDataDir()
  const env = open({ path: dir, maxDbs: 8 })
  env.openDB({ name: 'meta' }).putSync('format', 3)
  await env.close()
  assert.throws(() => new LmdbStore({ path: dir, durability: 'disk' }), refusedFormat(dir, 3))
  await assert.rejects(durableHost(dir), refusedFormat(dir, 3))
})
