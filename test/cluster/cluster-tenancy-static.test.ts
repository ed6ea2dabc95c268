/**
 * Tenancy in a static cluster of three hosts (in this process, real links and LMDB):
 * a quota set on one host applies on all, its count is summed over the hosts that own
 * its agents, a full quota refuses new agents through every host; `host.agents()` on
 * any host lists the cluster's agents, stored and resident, each once, with filters.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QuotaExceededError, ShardUnavailableError, UnknownQuotaError } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import type { AgentId } from '../../native-free-core/agent/agent-id.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { collect, secret, staticCluster, until } from './tenancy-helpers.ts'

const ids = (list: AgentId[]): string[] => list.map((a) => idString(a.quota, a.type, a.key)).sort()
const counts = (hosts: Host[], quota: string): Array<number | undefined> => hosts.map((h) => h.quotas.get(quota)?.count)

test('static cluster: quotas are cluster-wide, host.agents() lists every host once each', async () => {
  const { hosts, close } = await staticCluster(3, {}, { quotaSyncMs: 20 })
  const [h0, h1, h2] = hosts as [Host, Host, Host]
  try {
    await Promise.all(hosts.map((h) => h.cluster.settled({ timeoutMs: 10_000 })))
    await h1.quotas.set('tenant', 50)
    assert.equal(h1.quotas.get('tenant')?.limit, 50, 'enforced here when set resolves')
    await until('every host has the limit', () => hosts.every((h) => h.quotas.get('tenant')?.limit === 50))

    const keys = Array.from({ length: 30 }, (_, i) => `t${i}`)
    const owners = new Set(keys.map((k) => h0.cluster.ownerOf({ type: 'counter', key: k, quota: 'tenant' })))
    assert.equal(owners.size, 3, 'the quota\'s agents live on every host')
    await Promise.all(keys.map((k) => h0.ref('counter', k, { quota: 'tenant' }).call('add', 1)))
    await until('every host counts the 30 agents', () => counts(hosts, 'tenant').every((n) => n === 30))

    const more = Array.from({ length: 20 }, (_, i) => `u${i}`)
    await Promise.all(more.map((k) => h2.ref('counter', k, { quota: 'tenant' }).call('add', 1)))
    await until('every host counts 50', () => counts(hosts, 'tenant').every((n) => n === 50))
    for (const [i, h] of hosts.entries()) {
      // new agents owned by each of the hosts, asked through each: all refused
      for (let j = 0; j < 3; j++) {
        const key = Array.from({ length: 1000 }, (_, n) => `new${i}-${j}-${n}`).find((k) => h.cluster.ownerOf({ type: 'counter', key: k, quota: 'tenant' }) === `h${j}`)!
        await assert.rejects(h.ref('counter', key, { quota: 'tenant' }).call('add', 1), (err: unknown) => err instanceof QuotaExceededError && (err.data as { count: number }).count === 50)
      }
    }
    assert.equal(await h1.ref('counter', 't3', { quota: 'tenant' }).call('add', 1), 2, 'existing agents are never blocked')

    // listing: stored agents of every host, resident memory-only ones, default quota, filters
    await Promise.all(Array.from({ length: 12 }, (_, i) => h1.ref('counter', `d${i}`).call('add', 1)))
    await Promise.all(Array.from({ length: 7 }, (_, i) => h2.ref('ephemeral', `e${i}`).call('add', 1)))
    const tenant = [...keys, ...more].map((k) => idString('tenant', 'counter', k)).sort()
    const dflt = Array.from({ length: 12 }, (_, i) => idString('default', 'counter', `d${i}`))
    const ephemeral = Array.from({ length: 7 }, (_, i) => idString('default', 'ephemeral', `e${i}`))
    for (const h of hosts) {
      assert.deepEqual(ids(await collect(h.agents({ quota: 'tenant' }))), tenant)
      assert.deepEqual(ids(await collect(h.agents())), [...tenant, ...dflt, ...ephemeral].sort(), 'every agent of the cluster, once')
      assert.deepEqual(ids(await collect(h.agents({ type: 'ephemeral' }))), ephemeral.sort(), 'resident, never stored')
      assert.deepEqual(ids(await collect(h.agents({ type: 'counter', quota: 'default' }))), dflt.sort())
    }
    // a caller that stops early leaves nothing behind
    for await (const _ of h0.agents()) break
    const stats = h0.stats() as unknown as { cluster: { quotaPeers: number, listingsServed: number } }
    assert.equal(stats.cluster.quotaPeers, 2)

    assert.equal(await h2.quotas.delete('tenant'), true)
    await until('every host deleted it', () => hosts.every((h) => h.quotas.get('tenant') === undefined))
    assert.throws(() => h0.ref('counter', 't1', { quota: 'tenant' }), UnknownQuotaError)
    assert.equal(await h0.quotas.delete('tenant'), false)
  } finally {
    await close()
  }
})

test('static cluster: a listing whose shards no reachable host holds fails, retriable — never a silent gap', async () => {
  const { hosts, close } = await staticCluster(2, { callTimeoutMs: 300 })
  const [h0, h1] = hosts as [Host, Host]
  try {
    await Promise.all(hosts.map((h) => h.cluster.settled({ timeoutMs: 10_000 })))
    await Promise.all(Array.from({ length: 20 }, (_, i) => h0.ref('counter', `k${i}`).call('add', 1)))
    assert.equal((await collect(h0.agents())).length, 20)
    await h1.close() // static membership: its shards wait for it
    await assert.rejects(collect(h0.agents()), (err: unknown) => err instanceof ShardUnavailableError && err.retriable)
  } finally {
    await close()
  }
})

test('cluster.quotaSyncMs: a bad value is named', () => {
  for (const bad of [0, 1.5, 60_001, '100']) {
    assert.throws(() => cluster({ id: 'h', secret, membership: { static: ['h@127.0.0.1:1'] }, quotaSyncMs: bad as number }),
      (err: Error & { code?: string }) => err.code === 'SHOAL_ERR_INVALID_OPTION' && /cluster\.quotaSyncMs/.test(err.message))
  }
})
