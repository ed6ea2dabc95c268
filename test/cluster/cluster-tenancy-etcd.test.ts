/**
 * Tenancy on a real etcd (test/helpers/etcd.ts), hosts in this process with real links
 * and LMDB: a quota set on one host is enforced on all (its limit lives in etcd), its
 * count is summed over the hosts and stays exact while shards move with a join and a
 * leave (the moved agents are neither counted twice nor lost); `host.agents()` lists
 * every agent exactly once while shards move between its pages.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QuotaExceededError } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { EtcdCluster, until } from './tenancy-helpers.ts'

const N = 300

/**
 * A call, retried while it fails retriably: on a loaded machine a lease renewal can come
 * late and a host stop serving for a moment (ShardUnavailableError, the documented contract:
 * callers retry). A command that failed so did not run; anything else fails the test.
 */
async function retrying<T> (call: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await call()
    } catch (err) {
      if ((err as { code?: string }).code !== 'SHOAL_ERR_SHARD_UNAVAILABLE' || tries > 100) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

function counted (hosts: Iterable<Host>, quota: string, n: number): () => boolean {
  return () => [...hosts].every((h) => h.quotas.get(quota)?.count === n)
}

test('etcd cluster: quotas cluster-wide through a join and a leave; listing once each while shards move', { timeout: 120_000 }, async () => {
  const etcd = await startEtcd()
  const c = new EtcdCluster(etcd.endpoint)
  try {
    // a page ends after 512 shards: a listing spans several pages per host
    const small = { quotaSyncMs: 20 }
    const [a, b] = await Promise.all([c.start('a', 2, small), c.start('b', 2, small)]) as [Host, Host]
    await c.settled()
    await a.quotas.set('tenant', 10_000)
    assert.equal(a.quotas.get('tenant')?.limit, 10_000)
    await until('b has the limit from etcd', () => b.quotas.get('tenant')?.limit === 10_000)
    const keys = Array.from({ length: N }, (_, i) => `t${i}`)
    await Promise.all(keys.map((k) => retrying(() => b.ref('counter', k, { quota: 'tenant' }).call('add', 1))))
    await until(`both hosts count ${N}`, counted(c.hosts.values(), 'tenant', N))
    const all = keys.map((k) => idString('tenant', 'counter', k)).sort()

    // a listing that has read its first page when a third host joins and takes shards
    const listing = a.agents({ quota: 'tenant' })[Symbol.asyncIterator]()
    const seen: string[] = []
    const first = await listing.next()
    if (first.done !== true) seen.push(idString(first.value.quota, first.value.type, first.value.key))
    const racing = (async () => { // another listing, consumed as fast as it comes, during the moves
      const out: string[] = []
      for await (const id of b.agents({ quota: 'tenant' })) out.push(idString(id.quota, id.type, id.key))
      return out
    })()
    const h3 = await c.start('c', 1, small)
    await c.settled()
    const moved = (h3.stats() as unknown as { cluster: { shardsServed: number } }).cluster.shardsServed
    assert.ok(moved > 1000, `the new host took its part (${moved} shards)`)
    for (let r = await listing.next(); r.done !== true; r = await listing.next()) seen.push(idString(r.value.quota, r.value.type, r.value.key))
    assert.deepEqual(seen.sort(), all, 'the paused listing: every agent once')
    assert.deepEqual((await racing).sort(), all, 'the racing listing: every agent once')
    await until(`every host counts ${N} after the join`, counted(c.hosts.values(), 'tenant', N))

    // b leaves: its shards and their counts go to a and c
    c.hosts.delete('b')
    await b.close()
    await c.settled()
    await until(`a and c count ${N} after b left`, counted(c.hosts.values(), 'tenant', N))
    assert.equal((a.stats() as unknown as { cluster: { quotaPeers: number } }).cluster.quotaPeers, 1, 'b, which owns nothing, is no longer counted')
    const listed = []
    for await (const id of h3.agents({ quota: 'tenant' })) listed.push(idString(id.quota, id.type, id.key))
    assert.deepEqual(listed.sort(), all)

    // full at the count: no new agent through either host, on either host's shards
    await h3.quotas.set('tenant', N)
    await until('a has the new limit', () => a.quotas.get('tenant')?.limit === N)
    for (const h of [a, h3]) {
      for (const owner of ['a', 'c']) {
        const key = Array.from({ length: 500 }, (_, i) => `n${i}`).find((k) => h.cluster.ownerOf({ type: 'counter', key: k, quota: 'tenant' }) === owner)!
        await assert.rejects(h.ref('counter', key, { quota: 'tenant' }).call('add', 1), QuotaExceededError)
      }
    }
    assert.equal(await h3.quotas.delete('tenant'), true)
    await until('a deleted it', () => a.quotas.get('tenant') === undefined)
  } finally {
    await c.close()
    await etcd.stop()
  }
})
