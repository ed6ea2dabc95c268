/**
 * The cluster plugin with static membership, hosts in this process on 127.0.0.1 with real
 * links and their own LMDB data directories: every agent reachable from every host,
 * one owner per agent, bad options named.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { agentsUrl } from '../engine/helpers.ts'

const secret = 'a test secret of at least thirty-two bytes!!'

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

async function staticCluster (n: number, workers = 1): Promise<{ hosts: Host[], close: () => Promise<void> }> {
  const ports = await Promise.all(Array.from({ length: n }, freePort))
  const list = ports.map((p, i) => `h${i}@127.0.0.1:${p}`)
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'shoal-static-')))
  const hosts = await Promise.all(ports.map((port, i) => createHost({
    agents: agentsUrl,
    workers,
    dataDir: dirs[i]!,
    plugins: [cluster({ id: `h${i}`, secret, listen: { port }, membership: { static: list } })]
  })))
  return {
    hosts,
    close: async () => {
      await Promise.all(hosts.map((h) => h.close()))
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    }
  }
}

test('static cluster of three: every agent answers from every host, one state per agent', async () => {
  const { hosts, close } = await staticCluster(3)
  try {
    await Promise.all(hosts.map((h) => h.cluster.settled({ timeoutMs: 10_000 })))
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`)
    // each host adds its index + 1 to every counter
    for (const [i, h] of hosts.entries()) await Promise.all(keys.map((k) => h.ref('counter', k).call('add', i + 1)))
    for (const h of hosts) {
      const values = await Promise.all(keys.map((k) => h.ref('counter', k).call('get')))
      assert.deepEqual(values, keys.map(() => 6))
    }
    const owners = new Map<string, number>()
    for (const k of keys) {
      const owner = hosts[0]!.cluster.ownerOf({ type: 'counter', key: k })!
      owners.set(owner, (owners.get(owner) ?? 0) + 1)
      for (const h of hosts) assert.equal(h.cluster.ownerOf({ type: 'counter', key: k }), owner)
    }
    assert.deepEqual([...owners.keys()].sort(), ['h0', 'h1', 'h2'], 'agents spread over the three hosts')
    assert.equal(hosts[1]!.cluster.members().length, 3)
    const stats = hosts[0]!.stats() as unknown as { cluster: { shardsServed: number, links: { up: number } } }
    assert.ok(stats.cluster.shardsServed > 1200 && stats.cluster.shardsServed < 1500, `h0 serves about a third of the shards (${stats.cluster.shardsServed})`)
    assert.match(await hosts[0]!.metrics(), /shoal_cluster_members 3/)
  } finally {
    await close()
  }
})

test('cluster options: each bad one is named', async () => {
  const bad: Array<[object, RegExp]> = [
    [{ id: 'h', secret: 'short', membership: { static: ['127.0.0.1:1'] } }, /cluster\.secret/],
    [{ id: 'has space', secret, membership: { static: ['127.0.0.1:1'] } }, /cluster\.id/],
    [{ id: 'h', secret, membership: {} }, /cluster\.membership/],
    [{ id: 'h', secret, membership: { static: [] } }, /cluster\.membership\.static/],
    [{ id: 'h', secret, membership: { etcd: { hosts: ['http://127.0.0.1:1'], ttl: 3 } } }, /cluster\.membership\.etcd\.ttl/],
    [{ id: 'h', secret, membership: { static: ['127.0.0.1:1'] }, replicas: 2 }, /cluster\.replicas/],
    [{ id: 'h', secret, membership: { static: ['127.0.0.1:1'] }, advertise: 'nope' }, /cluster\.advertise/],
    [{ id: 'h', secret, membership: { static: ['127.0.0.1:1'] }, lsiten: {} }, /cluster\.lsiten/]
  ]
  for (const [options, message] of bad) {
    assert.throws(() => cluster(options as never), (err: Error & { code?: string }) => err.code === 'SHOAL_ERR_INVALID_OPTION' && message.test(err.message))
  }
  // a cluster needs a data directory: shards move with their LMDB records
  await assert.rejects(createHost({ agents: agentsUrl, workers: 1, plugins: [cluster({ id: 'h', secret, membership: { static: ['h@127.0.0.1:1'] } })] }),
    { code: 'SHOAL_ERR_INVALID_OPTION', message: /dataDir/ })
})
