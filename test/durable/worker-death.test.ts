/**
 * A worker thread dies in the middle of a batch (process.exit in a handler, after other
 * turns of the same loop pass ran and before their commit): what was acknowledged is on
 * disk, what was not fails with WorkerCrashedError, and the new worker serves on.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { keyOn } from '../engine/helpers.ts'
import { durableHost, tempDataDir } from './helpers.ts'

test('a worker killed mid-batch loses nothing acknowledged', async () => {
  const dataDir = tempDataDir()
  const host = await durableHost(dataDir)
  const keys = Array.from({ length: 20 }, (_, i) => keyOn(1, 'tally', 'w', 2, i))
  const acked = new Map<string, number>()
  let crashed = 0
  const bump = (key: string): Promise<void> => host.ref('tally', key).call('bump').then(
    (n: number) => { acked.set(key, Math.max(acked.get(key) ?? 0, n)) },
    (err: { code?: string }) => { assert.equal(err.code, 'SHOAL_ERR_WORKER_CRASHED'); crashed++ })
  // committed and acknowledged before the crash
  await Promise.all(keys.map(bump))
  // one synchronous burst: these turns and the exit share the worker's next pass
  const burst: Array<Promise<void>> = []
  for (let r = 0; r < 10; r++) for (const key of keys) burst.push(bump(key))
  const died = host.ref('crasher', keyOn(1, 'crasher')).call('exit').then(() => 'replied', (err: { code?: string }) => err.code)
  const restarted = new Promise((resolve) => host.once('worker-restart', resolve))
  await Promise.all(burst)
  assert.equal(await died, 'SHOAL_ERR_WORKER_CRASHED')
  await restarted
  assert.ok(crashed > 0, 'turns of the dying batch were not acknowledged')
  for (const key of keys) {
    const stored = await host.ref('tally', key).call('get')
    assert.ok(stored >= acked.get(key)!, `${key}: acknowledged ${acked.get(key)}, stored ${stored}`)
    assert.equal(await host.ref('tally', key).call('keys'), stored)
  }
  assert.equal(await host.ref('tally', keys[0]!).call('bump'), (await host.ref('tally', keys[0]!).call('get')))
  await host.close()
})
