/**
 * `host.ref` in a loop, as an application (and the bench) makes them: one ref per key,
 * types and quotas mixed, bad refs in between. The router keeps the last type, the last
 * method it looked up and the default quota's id prefixes, and a ref keeps its hash as an int32; none of that may
 * change where a message goes or what a ref shows. Checked against `host.inspect`,
 * which finds an agent from its own hash of the id string. Real worker threads.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { counter, fragile, recorder } from '../fixtures/agents.ts'
import { startHost } from './helpers.ts'

/** `n` keys whose id's hash has its top bit set (`high`) or clear: both signs of the int32 the ref keeps. */
function keys (n: number, high: boolean, quota = 'default'): string[] {
  const out: string[] = []
  for (let i = 0; out.length < n; i++) {
    const key = `r${i}`
    if ((hashId(idString(quota, 'counter', key)) >= 0x80000000) === high) out.push(key)
  }
  return out
}

test('refs made one per key, types and quotas mixed and bad refs in between, reach the agent their id names', async () => {
  const host = await startHost({ workers: 2 })
  try {
    await host.quotas.set('tenant-a', 1000)
    const ks = [...keys(12, true), ...keys(12, false), 'é-key', '😀']
    for (const [i, k] of ks.entries()) {
      // by definition and by name, alternating with another type and another quota
      const byDef = host.ref(counter, k)
      assert.deepEqual([byDef.quota, byDef.type, byDef.key], ['default', 'counter', k])
      assert.deepEqual(JSON.parse(JSON.stringify(byDef)), { quota: 'default', type: 'counter', key: k })
      assert.deepEqual(Object.keys(byDef), ['quota', 'type', 'key'])
      assert.equal(await byDef.call('add', i + 1), i + 1)
      // the same method name on another type is another method (counter's get is its 2nd, fragile's its 3rd)
      assert.equal(await host.ref(counter, k).call('get'), i + 1)
      assert.deepEqual(await host.ref(fragile, k).call('get'), { n: 0, items: [] })
      await assert.rejects(host.ref(recorder, k).call('get' as 'seen'), { code: 'SHOAL_ERR_UNKNOWN_METHOD' })
      assert.throws(() => host.ref('nope', k), { code: 'SHOAL_ERR_UNKNOWN_AGENT_TYPE' })
      await host.ref(recorder, k).call('record', ['r', i])
      assert.throws(() => host.ref('counter', k, { quota: 'nobody' }), { code: 'SHOAL_ERR_UNKNOWN_QUOTA' })
      const tenant = host.ref('counter', k, { quota: 'tenant-a' })
      assert.deepEqual(tenant.toJSON(), { quota: 'tenant-a', type: 'counter', key: k })
      assert.equal(await tenant.call('add', 100 + i), 100 + i)
      assert.throws(() => host.ref(counter, 'bad\ud800key'), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
      host.ref('counter', k).cast('add', 1000)
    }
    for (const [i, k] of ks.entries()) {
      assert.equal(await host.ref('counter', k).call('get'), i + 1 + 1000, k)
      const home = await host.inspect('counter', k)
      assert.deepEqual([home.active, home.state], [true, { n: i + 1 + 1000 }], k)
      const other = await host.inspect('counter', k, { quota: 'tenant-a' })
      assert.deepEqual([other.active, other.state], [true, { n: 100 + i }], k)
      assert.deepEqual((await host.inspect('recorder', k)).state, { seen: [['r', i]] }, k)
    }
  } finally {
    await host.close()
  }
})
