/**
 * Bad data on disk: a stored state or storage value that no longer decodes fails that
 * agent's messages with DecodeError; every other agent of the host keeps serving.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { open } from 'lmdb'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { stateKey, storageKey } from '../../src/storage/lmdb-keys.ts'
import { StorageError } from '../../src/index.ts'
import { agentErrorWith, durableHost, runToEnd, tempDataDir } from './helpers.ts'

test('a record that no longer decodes fails that agent only, with DecodeError', async () => {
  const dataDir = tempDataDir()
  let host = await durableHost(dataDir)
  await host.ref('account', 'good').call('fund', 5)
  await host.ref('kv', 'shelf').call('put', ['fine', 1])
  await host.close()

  // what a bug, a disk error or an incompatible change could leave behind: bytes that are not msgpack
  const env = open({ path: dataDir, maxDbs: 8 })
  const garbage = Buffer.from([0xc1, 0xc1, 0xc1])
  env.openDB({ name: 'states', encoding: 'binary', keyEncoding: 'binary' }).putSync(stateKey(idString('default', 'account', 'broken')), garbage)
  env.openDB({ name: 'storage', encoding: 'binary', keyEncoding: 'binary' }).putSync(storageKey(idString('default', 'kv', 'shelf'), 'rotten'), garbage)
  await env.close()

  host = await durableHost(dataDir)
  await assert.rejects(host.ref('account', 'broken').call('balance'), { code: 'SHOAL_ERR_DECODE' })
  await assert.rejects(host.ref('account', 'broken').call('fund', 1), { code: 'SHOAL_ERR_DECODE' }, 'and it stays refused, not overwritten')
  assert.equal(await host.ref('account', 'good').call('balance'), 5)
  await assert.rejects(host.ref('kv', 'shelf').call('get', 'rotten'), agentErrorWith('SHOAL_ERR_DECODE'))
  assert.equal(await host.ref('kv', 'shelf').call('get', 'fine'), 1)
  assert.equal(await host.ref('account', 'fresh').call('fund', 2), 2)
  await host.close()
})

test('a dataDir that cannot hold an LMDB environment fails createHost with StorageError', async () => {
  const file = join(tempDataDir(), 'a-file')
  writeFileSync(file, 'not a directory')
  // workers: 0 opens it on the main thread for the agents; workers: 2 on the main thread
  // too, first (for listings and quotas), before any worker starts
  for (const workers of [0, 2]) {
    await assert.rejects(durableHost(file, { workers }), (err: unknown) =>
      err instanceof StorageError && err.code === 'SHOAL_ERR_STORAGE' && (err.data as { dataDir?: string }).dataDir === file)
  }
})

test('a worker that cannot open the store fails createHost with that StorageError, and leaves nothing running', async () => {
  const dataDir = join(tempDataDir(), 'data')
  const { code, lines } = await runToEnd(new URL('../fixtures/start-failure-child.js', import.meta.url), [dataDir])
  assert.equal(code, 0, 'the process ended by itself: no worker was left running')
  assert.deepEqual(JSON.parse(lines[0]!), { code: 'SHOAL_ERR_STORAGE', isStorageError: true, dataDir, workersStarted: true })
})
