/**
 * A worker that dies with durable sends stored and not released: its replacement's
 * start-up redelivery must not send them before their turns' writes are where a failover
 * looks for them — or a failover that loses the turn makes the send apply twice
 * (issue 12: "never a silent loss", "none applied twice").
 *
 * A turn's outbox record is in the owner's LMDB once its local transaction commits, while
 * the batch still waits for the shard's replicas; redelivery skips such records
 * (unreleased-sends.ts). But a restarted worker cleared its predecessor's range, and its
 * start-up scan redelivers every stored send: the record of a transfer still waiting for
 * its replica went out at once. The worker's death starts its shards' streams over (a new
 * in-sync record without the old replicas); until that record lands, a failover still
 * picks an old replica — without the transfer. The host then dies, the replica serves the
 * sender, the transfer is retried there and sends again: two credits for one debit.
 *
 * Deterministic here: three hosts behind proxies (h0 dials the others), `replicas: 2`, a
 * long replica timeout so that the replica stays in sync while its link is silent, and h0
 * talks to etcd through a proxy of its own, paused when the worker dies, so its new record
 * cannot land. A transfer on h0 to an account on h2 waits for the replica h1; h0's worker
 * is killed (process.exit in a handler: a real crash) and restarted; after its start-up
 * scan and two more, the receiver must not have the credit; h0 is killed, h1 serves the
 * sender, the transfer is retried there: one credit. And nothing is lost: with etcd
 * answering, the new record lands, the range is released and the send is redelivered,
 * credited once. Real etcd, host processes, LMDB.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ACCOUNT, shardOfAgent } from '../../src/cli/chaos/chaos-agents.ts'
import type { AccountState } from '../../src/cli/chaos/chaos-agents.ts'
import { decodeShardMap, ownerOf, replicasOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { ClusterKeys } from '../../plugins/cluster/membership/cluster-keys.ts'
import { createEtcdClient } from '../../plugins/cluster/membership/etcd-client.ts'
import { TcpProxy } from '../../src/cli/procs/tcp-proxy.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { clusterProcs } from '../helpers/cluster-procs.ts'
import type { ClusterProcs } from '../helpers/cluster-procs.ts'
import { until } from './tenancy-helpers.ts'
import { replicasInSync } from './replica-helpers.ts'

const agents = new URL('../fixtures/restart-agents.js', import.meta.url).href
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const t0 = Date.now()
/** Progress, on stderr: where a run that times out stood. */
const step = (what: string): void => { process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}\n`) }

interface Scene {
  readonly c: ClusterProcs
  /** h0's own way to etcd (the others dial etcd directly). */
  readonly etcdOfH0: TcpProxy
  readonly from: string
  readonly to: string
  readonly crasher: string
  close (): Promise<void>
}

/**
 * Three hosts, `replicas: 2`, a sender served by h0 with its replica h1 and a receiver
 * served by h2 (replica h1 too) — silencing h1's proxy silences h0 → h1 only (the lower id
 * dials) — and a crasher served by h0; a warm-up transfer credited. Then the link h0 → h1
 * goes silent, a transfer 'x' commits at h0 (its batch waits for h1), and h0's worker dies.
 */
async function scene (prefix: string, silenceEtcd: boolean): Promise<Scene> {
  const etcd = await startEtcd()
  const leaseTtlS = 6 // the serving deadline (3/4 TTL) stays ahead of the steps below while h0's etcd is silent
  const etcdOfH0 = await TcpProxy.start(Number(new URL(etcd.endpoint).port))
  const raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
  const c = await clusterProcs({
    agents,
    // minMembers: the three hosts share the shards from the first map, with no moves to
    // wait for before the scene can start (they were half of the test's time)
    membership: { etcd: { hosts: [etcd.endpoint], prefix, leaseTtlS, minMembers: 3 } },
    proxies: true,
    cluster: { replicas: 2, heartbeatMs: 10_000, replicaAckTimeoutMs: 60_000 }
  })
  const close = async (): Promise<void> => {
    // h0 with a silent etcd could not leave: it goes first, at once
    etcdOfH0.heal()
    if (c.running().some((h) => h.name === 'h0')) await c.kill('h0')
    // the others are killed too: their graceful leave (moving every shard) checks nothing here
    await Promise.all(c.running().map(async (h) => await c.kill(h.name)))
    await c.close()
    raw.close()
    await etcdOfH0.close()
    await etcd.stop()
  }
  try {
    const ids = ['h0', 'h1', 'h2']
    await Promise.all([
      c.start(['h0'], { membership: { etcd: { hosts: [`http://${etcdOfH0.address}`], prefix: c.prefix, leaseTtlS, minMembers: 3 } } }),
      c.start(['h1', 'h2'])
    ])
    await c.settled(30_000)
    await replicasInSync(c, ids)
    step('in sync')
    const res = await raw.kv.range({ key: Buffer.from(new ClusterKeys(prefix).map, 'utf8') })
    const map: ShardMap = decodeShardMap(res.kvs[0]!.value)
    const keys = Array.from({ length: 2000 }, (_, i) => `a${i}`)
    const at = (type: string, k: string): string => `${String(ownerOf(map, shardOfAgent(type, k)))}:${replicasOf(map, shardOfAgent(type, k)).join(',')}`
    const from = keys.find((k) => at(ACCOUNT, k) === 'h0:h1')
    const to = keys.find((k) => at(ACCOUNT, k) === 'h2:h1')
    const crasher = keys.find((k) => at('crasher', k).startsWith('h0:'))
    assert.ok(from !== undefined && to !== undefined && crasher !== undefined, 'agents placed as the test needs')
    assert.equal(await c.host('h0').call(ACCOUNT, from, 'transfer', { to, amount: 1, opId: 'warm' }), 999)
    await until('the warm-up transfer is credited', async () => (await c.host('h2').call<AccountState>(ACCOUNT, to, 'state')).credits.includes('warm'), 10_000)

    // the link h0 → h1 goes silent: the transfer commits at h0, its batch waits for h1
    c.proxy('h1').pause()
    let first: unknown = 'pending'
    void c.host('h0').call(ACCOUNT, from, 'transfer', { to, amount: 9, opId: 'x' }, { timeoutMs: 60_000 }).then((v) => { first = v }, (err: unknown) => { first = err })
    await sleep(1_000) // its local transaction has committed: the record is in h0's LMDB
    assert.equal(first, 'pending', 'the transfer waits for the replica')

    if (silenceEtcd) etcdOfH0.pause() // h0's new in-sync record cannot land
    step('killing h0\'s worker')
    await assert.rejects(c.host('h0').call('crasher', crasher, 'exit', undefined, { timeoutMs: 10_000 }), (err: { code?: string }) => err.code === 'SHOAL_ERR_WORKER_CRASHED')
    await until('the replacement worker answers', async () => {
      try {
        return await c.host('h0').call('crasher', crasher, 'ping', undefined, { timeoutMs: 1_000 }) === 'pong'
      } catch {
        return false
      }
    }, 10_000)
    step('the replacement worker answers')
    return { c, etcdOfH0, from, to, crasher, close }
  } catch (err) {
    await close()
    throw err
  }
}

test('a restarted worker does not redeliver its predecessor\'s unreleased sends before they landed: the retried transfer is credited once', { timeout: 120_000 }, async () => {
  const { c, from, to, close } = await scene('/restarted', true)
  try {
    await sleep(2_500) // its start-up redelivery scan, and two more
    const early = await c.host('h2').call<AccountState>(ACCOUNT, to, 'state')
    assert.deepEqual(early.credits.filter((id) => id === 'x'), [], 'the receiver was not credited by the restarted worker while the transfer\'s writes had not landed')

    // the owner dies: h1 takes the sender's shard over (the record h0 could not replace names it) without the transfer
    await c.kill('h0')
    step('h0 killed')
    c.proxy('h1').cut({ refuse: false })
    c.proxy('h1').heal()
    let retried: number | undefined
    await until('the retried transfer is applied by the new owner', async () => {
      try {
        retried = await c.host('h2').call<number>(ACCOUNT, from, 'transfer', { to, amount: 9, opId: 'x' }, { timeoutMs: 2_000 })
        return true
      } catch {
        return false
      }
    }, 40_000)
    step('retried')
    assert.equal(retried, 1000 - 1 - 9, 'debited once')
    await until('the retried transfer is credited', async () => (await c.host('h2').call<AccountState>(ACCOUNT, to, 'state')).credits.includes('x'), 15_000)
    await sleep(3_000) // redelivery and any late copy
    const end = await c.host('h2').call<AccountState>(ACCOUNT, to, 'state')
    assert.equal(end.credits.filter((id) => id === 'x').length, 1, `credited once: ${JSON.stringify(end.credits)}`)
    assert.equal(end.balance, 1000 + 1 + 9)
  } finally {
    await close()
  }
})

test('once the dead worker\'s writes have landed (its new in-sync record), its unreleased send is redelivered: credited once, not lost', { timeout: 120_000 }, async () => {
  const { c, from, to, close } = await scene('/restarted-lands', false)
  try {
    // etcd answers h0: the streams' new record lands, the kept range is released, the
    // replacement's scans redeliver the transfer's send
    await until('the dead worker\'s transfer is credited', async () => (await c.host('h2').call<AccountState>(ACCOUNT, to, 'state')).credits.includes('x'), 15_000)
    step('credited')
    c.proxy('h1').cut({ refuse: false })
    c.proxy('h1').heal()
    // the caller saw WorkerCrashedError; its retry finds the transfer applied (idempotent by op id)
    await until('the retried transfer answers', async () => {
      try {
        return await c.host('h0').call<number>(ACCOUNT, from, 'transfer', { to, amount: 9, opId: 'x' }, { timeoutMs: 2_000 }) === 1000 - 1 - 9
      } catch {
        return false
      }
    }, 30_000)
    await sleep(3_000) // redelivery and any late copy
    const end = await c.host('h2').call<AccountState>(ACCOUNT, to, 'state')
    assert.equal(end.credits.filter((id) => id === 'x').length, 1, `credited once: ${JSON.stringify(end.credits)}`)
    assert.equal(end.balance, 1000 + 1 + 9)
    const sender = await c.host('h0').call<AccountState>(ACCOUNT, from, 'state')
    assert.equal(sender.balance, 1000 - 1 - 9, 'debited once')
  } finally {
    await close()
  }
})
