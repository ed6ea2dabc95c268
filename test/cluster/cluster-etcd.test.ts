/**
 * The cluster plugin on a real etcd (test/helpers/etcd.ts), hosts in this process with
 * real links and LMDB: they share the shards, a host that joins under load takes its
 * part with the agents' states, one that leaves hands everything over — callers see no
 * error and every counter equals the adds acknowledged to it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { agentsUrl } from '../engine/helpers.ts'
import { startEtcd } from '../helpers/etcd.ts'
import type { EtcdProcess } from '../helpers/etcd.ts'

const secret = 'a test secret of at least thirty-two bytes!!'

class Cluster {
  readonly hosts = new Map<string, Host>()
  private readonly dirs: string[] = []
  private readonly etcd: EtcdProcess
  private readonly prefix = `/t${Math.floor(Math.random() * 1e9)}`

  /**
   * `leaseTtlS`: 2 where the test is about the lease; 5 (the default) for four hosts under
   * load in one process on two cores, where one event loop renews four leases while it
   * replicates every command — 2 s leaves too little room for a renewal to be late.
   */
  private readonly leaseTtlS: number

  constructor (etcd: EtcdProcess, leaseTtlS = 2) {
    this.etcd = etcd
    this.leaseTtlS = leaseTtlS
  }

  async start (id: string, minMembers = 1): Promise<Host> {
    const dir = mkdtempSync(join(tmpdir(), `shoal-${id}-`))
    this.dirs.push(dir)
    const host = await createHost({
      agents: agentsUrl,
      workers: 1,
      dataDir: dir,
      callTimeoutMs: 20_000,
      plugins: [cluster({ id, secret, membership: { etcd: { hosts: [this.etcd.endpoint], prefix: this.prefix, leaseTtlS: this.leaseTtlS, minMembers } } })]
    })
    this.hosts.set(id, host)
    return host
  }

  async settled (): Promise<void> {
    await Promise.all([...this.hosts.values()].map((h) => h.cluster.settled({ timeoutMs: 30_000 })))
  }

  async close (): Promise<void> {
    await Promise.all([...this.hosts.values()].map((h) => h.close()))
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true })
  }
}

test('etcd cluster: three hosts share the shards; a fourth joins under load and one leaves, no add lost, no error', { timeout: 120_000 }, async () => {
  const etcd = await startEtcd()
  const c = new Cluster(etcd, 5)
  try {
    const [a, b] = await Promise.all([c.start('a', 3), c.start('b', 3), c.start('c', 3)])
    await c.settled()
    const owners = new Set(Array.from({ length: 100 }, (_, i) => a!.cluster.ownerOf({ type: 'counter', key: `k${i}` })))
    assert.deepEqual([...owners].sort(), ['a', 'b', 'c'])

    const keys = Array.from({ length: 400 }, (_, i) => `k${i}`)
    const acked = new Map<string, number>()
    let stop = false
    let errors = 0
    const load = (async () => {
      let round = 0
      while (!stop) {
        const callers = [...c.hosts.values()]
        const host = callers[round++ % callers.length]!
        await Promise.all(keys.map(async (k) => {
          try {
            await host.ref('counter', k).call('add', 1)
            acked.set(k, (acked.get(k) ?? 0) + 1)
          } catch (err) {
            errors++
            throw err
          }
        }))
      }
    })()
    await new Promise((resolve) => setTimeout(resolve, 300))
    await c.start('d')
    await c.settled()
    assert.ok(c.hosts.get('d')!.cluster.ownerOf({ type: 'counter', key: 'k1' }) !== null)
    const dServes = (c.hosts.get('d')!.stats() as unknown as { cluster: { shardsServed: number } }).cluster.shardsServed
    assert.ok(dServes > 700, `the new host serves its part (${dServes} shards)`)
    // b leaves gracefully while the load goes on (through the hosts that stay)
    c.hosts.delete('b')
    await b!.close()
    await c.settled()
    stop = true
    await load
    assert.equal(errors, 0)
    for (const k of keys) assert.equal(await a!.ref('counter', k).call('get'), acked.get(k), `counter ${k}`)
    assert.ok(!a!.cluster.members().some((m) => m.id === 'b'))
  } finally {
    await c.close()
    await etcd.stop()
  }
})

test('a host that cannot renew its lease stops serving: calls fail at once, retriable, until etcd is back', { timeout: 60_000 }, async () => {
  const etcd = await startEtcd()
  const c = new Cluster(etcd)
  try {
    const [a] = await Promise.all([c.start('a', 2), c.start('b', 2)])
    await c.settled()
    const keys = Array.from({ length: 40 }, (_, i) => `f${i}`)
    await Promise.all(keys.map((k) => a!.ref('counter', k).call('add', 1)))
    await etcd.kill()
    // within TTL/2 (1 s) plus a renewal interval, every host fences itself
    const deadline = Date.now() + 5_000
    let refused: unknown = null
    while (refused === null && Date.now() < deadline) {
      try {
        await a!.ref('counter', keys.find((k) => a!.cluster.ownerOf({ type: 'counter', key: k }) === 'a')!).call('get', undefined, { timeoutMs: 2_000 })
        await new Promise((resolve) => setTimeout(resolve, 100))
      } catch (err) {
        refused = err
      }
    }
    assert.ok(refused !== null, 'a fenced host stopped answering for its agents')
    assert.equal((refused as { code?: string }).code, 'SHOAL_ERR_SHARD_UNAVAILABLE')
    assert.equal((refused as { retriable?: boolean }).retriable, true)
    await etcd.restart()
    await c.settled()
    assert.deepEqual(await Promise.all(keys.map((k) => a!.ref('counter', k).call('get'))), keys.map(() => 1), 'served again, nothing lost')
  } finally {
    await c.close()
    await etcd.stop()
  }
})
