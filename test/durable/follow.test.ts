/**
 * Follow on the LMDB store: a follower of an agent that is not resident starts from the
 * state LMDB holds (read without activating it), then gets each committed state.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { durableHost, tempDataDir } from './helpers.ts'

test('follow after a restart starts from the stored state', async () => {
  const dataDir = tempDataDir()
  let host = await durableHost(dataDir)
  await host.ref('account', 'f').call('fund', 7)
  await host.close()
  host = await durableHost(dataDir)
  try {
    const it = host.ref('account', 'f').follow()
    assert.deepEqual((await it.next()).value, { balance: 7, deposits: 0 })
    assert.equal(host.stats().activeAgents, 0, 'read from LMDB, not activated')
    await host.ref('account', 'f').call('fund', 1)
    assert.deepEqual((await it.next()).value, { balance: 8, deposits: 0 })
    await it.return!()
  } finally {
    await host.close()
  }
})
