/**
 * A durable send whose turn the replicas do not have yet does not leave its host, not even
 * by redelivery — or a failover that loses the turn makes the send apply twice.
 *
 * The chaos test found this once (seed 2002, 4 hosts, two fault tracks: "o62 a11 → a6
 * (9): credited 2×", the transfer in a11's `out` once). A turn's outbox record is in the
 * owner's LMDB once the local transaction commits, while the batch still waits for the
 * shard's replicas; the redelivery scan, which reads LMDB, sent it after 1–2 s anyway.
 * When the replicas then never got the batch — here the link to the replica is silent and
 * the owner is killed; in the chaos run its owner stood still past its lease — the shard
 * fails over without the turn, the caller retries the transfer on the new owner, which
 * debits and sends again under a new identity: two credits for one debit.
 *
 * Deterministic here: three hosts behind proxies (h0 dials the others), `replicas: 2`, a
 * slow heartbeat and a long replica timeout so that the replica stays in the in-sync set
 * while its link is silent. A transfer on h0 to an account on the third host waits for the
 * replica; after 3 s (two redelivery scans) the receiver must not have the credit; h0 is
 * killed, the replica serves the sender, the transfer is retried there: one credit.
 * Real etcd, host processes, links, LMDB.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ACCOUNT, shardOfAgent } from '../../src/cli/chaos/chaos-agents.ts'
import type { AccountState } from '../../src/cli/chaos/chaos-agents.ts'
import { defaultAgentsModule } from '../../src/cli/chaos/chaos-run.ts'
import { decodeShardMap, ownerOf, replicasOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { ClusterKeys } from '../../plugins/cluster/membership/cluster-keys.ts'
import { createEtcdClient } from '../../plugins/cluster/membership/etcd-client.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { clusterProcs } from '../helpers/cluster-procs.ts'
import { until } from './tenancy-helpers.ts'
import { replicasInSync } from './replica-helpers.ts'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

test('a transfer whose batch the replica never got: its send is not redelivered before, and after the failover the retried transfer is credited once', { timeout: 120_000 }, async () => {
  const etcd = await startEtcd()
  const prefix = '/unreleased'
  const raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
  const c = await clusterProcs({
    agents: defaultAgentsModule,
    // minMembers: the three hosts share the shards from the first map, no moves to wait for
    membership: { etcd: { hosts: [etcd.endpoint], prefix, leaseTtlS: 2, minMembers: 3 } },
    proxies: true,
    // a silent link is closed after 3 heartbeats (30 s), a replica falls out after 60 s: the
    // replica stays in the in-sync set, and the sender's commit waits for it, all test long
    cluster: { replicas: 2, heartbeatMs: 10_000, replicaAckTimeoutMs: 60_000 }
  })
  try {
    const ids = ['h0', 'h1', 'h2']
    await c.start(ids)
    await c.settled(30_000)
    await replicasInSync(c, ids)
    const res = await raw.kv.range({ key: Buffer.from(new ClusterKeys(prefix).map, 'utf8') })
    const map: ShardMap = decodeShardMap(res.kvs[0]!.value)

    // a sender served by h0, its replica h1; a receiver served by h2, its replica h1 too. The
    // lower id dials: silencing h1's proxy silences h0 → h1 only (h1 dials h2, h0 dials h2)
    const keys = Array.from({ length: 2000 }, (_, i) => `a${i}`)
    const at = (k: string): string => `${String(ownerOf(map, shardOfAgent(ACCOUNT, k)))}:${replicasOf(map, shardOfAgent(ACCOUNT, k)).join(',')}`
    const from = keys.find((k) => at(k) === 'h0:h1')
    const to = keys.find((k) => at(k) === 'h2:h1')
    assert.ok(from !== undefined && to !== undefined, 'accounts placed as the test needs')
    const y = 'h1'
    const z = 'h2'
    assert.equal(await c.host('h0').call(ACCOUNT, from, 'transfer', { to, amount: 1, opId: 'warm' }), 999)
    await until('the warm-up transfer is credited', async () => (await c.host(z).call<AccountState>(ACCOUNT, to, 'state')).credits.includes('warm'), 10_000)

    // the link h0 → y goes silent (h0 dials y's proxy): the transfer commits at h0, its batch waits for y
    c.proxy(y).pause()
    let first: unknown = 'pending'
    void c.host('h0').call(ACCOUNT, from, 'transfer', { to, amount: 9, opId: 'x' }, { timeoutMs: 60_000 }).then((v) => { first = v }, (err: unknown) => { first = err })
    await sleep(3_500) // the redelivery scan saw the record stored at least twice
    assert.equal(first, 'pending', 'the transfer waits for the replica')
    const early = await c.host(z).call<AccountState>(ACCOUNT, to, 'state')
    assert.deepEqual(early.credits.filter((id) => id === 'x'), [], 'the receiver was not credited while the transfer\'s batch waited for the replica')

    // the owner dies with the batch: y takes the sender's shard over without the transfer
    // (the silent link's bytes are dropped with it, never forwarded)
    await c.kill('h0')
    c.proxy(y).cut({ refuse: false })
    c.proxy(y).heal()
    let retried: number | undefined
    await until('the retried transfer is applied by the new owner', async () => {
      try {
        retried = await c.host(z).call<number>(ACCOUNT, from, 'transfer', { to, amount: 9, opId: 'x' }, { timeoutMs: 2_000 })
        return true
      } catch {
        return false
      }
    }, 30_000)
    assert.equal(retried, 1000 - 1 - 9, 'debited once')
    await until('the retried transfer is credited', async () => (await c.host(z).call<AccountState>(ACCOUNT, to, 'state')).credits.includes('x'), 15_000)
    await sleep(3_000) // redelivery and any late copy
    const end = await c.host(z).call<AccountState>(ACCOUNT, to, 'state')
    assert.equal(end.credits.filter((id) => id === 'x').length, 1, `credited once: ${JSON.stringify(end.credits)}`)
    assert.equal(end.balance, 1000 + 1 + 9)
  } finally {
    // killed, not closed: a graceful leave (moving every shard) checks nothing here
    await Promise.all(c.running().map(async (h) => await c.kill(h.name)))
    await c.close()
    raw.close()
    await etcd.stop()
  }
})
