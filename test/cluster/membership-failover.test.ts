/**
 * Replicas and failover on a real etcd (test/helpers/etcd.ts), lease TTL 2 s: in-sync
 * records written only under a live lease and outliving it; the leader names replicas
 * in the map and, when a member's lease is revoked, moves its shards to the host its
 * in-sync record names — the others wait for it. Plus the `replicas` option's rules.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Etcd3 } from 'etcd3'
import { ClusterFencedError, InvalidArgumentError, InvalidOptionError } from '../../native-free-core/errors.ts'
import { decodeInSync, markInSync, newInSyncRecord, setShardEpoch } from '../../native-free-core/placement/in-sync.ts'
import { ownerOf, replicasOf, shardsOf, targetOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { ClusterKeys, key } from '../../plugins/cluster/membership/cluster-keys.ts'
import { createEtcdClient } from '../../plugins/cluster/membership/etcd-client.ts'
import { EtcdMembership } from '../../plugins/cluster/membership/etcd-membership.ts'
import { StaticMembership } from '../../plugins/cluster/membership/static-membership.ts'
import { resolveClusterOptions } from '../../plugins/cluster/options.ts'
import { startEtcd } from '../helpers/etcd.ts'
import type { EtcdProcess } from '../helpers/etcd.ts'

const TTL_S = 2
let etcd: EtcdProcess
let raw: Etcd3
const open: EtcdMembership[] = []

before(async () => {
  etcd = await startEtcd()
  raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
})

after(async () => {
  await Promise.all(open.map(async (m) => await m.close()))
  raw?.close()
  await etcd?.stop()
})

function member (prefix: string, id: string, extra: { replicas?: number, minMembers?: number } = {}): EtcdMembership {
  const m = new EtcdMembership({ id, address: `127.0.0.1:${7400 + open.length}`, hosts: [etcd.endpoint], prefix, leaseTtlS: TTL_S, maxMovesPerHost: Infinity, ...extra })
  open.push(m)
  return m
}

async function until (what: string, cond: () => boolean, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('cluster replicas: 2 with etcd, 1 with static; static refuses more; at most 5', () => {
  const secret = 'x'.repeat(40)
  const etcdOpts = { id: 'h', secret, membership: { etcd: { hosts: ['http://127.0.0.1:1'] } } }
  assert.equal(resolveClusterOptions(etcdOpts).replicas, 2)
  assert.equal(resolveClusterOptions({ ...etcdOpts, replicas: 5 }).replicas, 5)
  assert.equal(resolveClusterOptions({ ...etcdOpts, replicas: 1 }).replicas, 1)
  assert.throws(() => resolveClusterOptions({ ...etcdOpts, replicas: 6 }), (e: Error) => e instanceof InvalidOptionError && /cluster\.replicas/.test(e.message) && /from 1 to 5/.test(e.message))
  const staticOpts = { id: 'h', secret, membership: { static: ['h@127.0.0.1:1'] } }
  assert.equal(resolveClusterOptions(staticOpts).replicas, 1)
  assert.throws(() => resolveClusterOptions({ ...staticOpts, replicas: 2 }), (e: Error) => e instanceof InvalidOptionError && /cluster\.replicas/.test(e.message) && /must be 1 with static membership/.test(e.message))
  assert.throws(() => new EtcdMembership({ id: 'h', address: '127.0.0.1:1', hosts: ['http://127.0.0.1:1'], replicas: 0 }), /replicas/)
})

test('static membership: publishInSync resolves (one copy, no failover)', async () => {
  const m = new StaticMembership({ id: 'a', address: '127.0.0.1:1', members: ['a@127.0.0.1:1', 'b@127.0.0.1:2'] })
  await m.start()
  assert.equal(m.map()!.replicaCount, 1)
  await m.publishInSync(newInSyncRecord('a'))
})

test('publishInSync: written only under the live lease, and outlives it', async () => {
  const P = '/f1'
  const keys = new ClusterKeys(P)
  const a = member(P, 'a')
  await a.start()
  await until('a has a map', () => a.map() !== undefined)
  const rec = newInSyncRecord('a')
  setShardEpoch(rec, 3, a.map()!.shardEpoch[3]!)
  markInSync(rec, 3, 'b', true)
  await a.publishInSync(rec)
  await assert.rejects(a.publishInSync(newInSyncRecord('b')), InvalidArgumentError)
  await until('a sees its own record', () => a.inSyncRecords().get('a')?.hosts.has('b') === true)
  // the lease goes (as when it expires): the next publish is refused, the record stays
  const lease = a.leaseId!
  await raw.leaseClient.leaseRevoke({ ID: lease })
  const later = newInSyncRecord('a')
  await assert.rejects(a.publishInSync(later), (e: Error) => e instanceof ClusterFencedError && e.code === 'SHOAL_ERR_CLUSTER_FENCED')
  const stored = await raw.kv.range({ key: key(keys.inSync('a')) })
  assert.equal(stored.kvs.length, 1)
  assert.equal(stored.kvs[0]!.lease, '0', 'not under any lease')
  assert.ok(decodeInSync(stored.kvs[0]!.value).hosts.has('b'), 'the record published under the lease is still there')
  await a.close()
})

test('three members, R = 2: a member whose lease is revoked loses the shards its record names in sync to those hosts, at a higher epoch; the rest wait for it', async () => {
  const P = '/f2'
  const three = ['a', 'b', 'c'].map((id) => member(P, id, { replicas: 2, minMembers: 3 }))
  await Promise.all(three.map(async (m) => await m.start()))
  await until('one leader, a map with replicas everywhere', () =>
    three.every((m) => m.map()?.replicaCount === 2) && three.filter((m) => m.isLeader).length === 1)
  const leader = three.find((m) => m.isLeader)!
  const victim = three.find((m) => !m.isLeader)!
  const survivors = three.filter((m) => m !== victim)
  const map1: ShardMap = victim.map()!
  for (let s = 0; s < 4096; s++) {
    const reps = replicasOf(map1, s)
    assert.equal(reps.length, 1)
    assert.notEqual(reps[0], ownerOf(map1, s))
  }
  const mine = shardsOf(map1, victim.self.id)
  assert.ok(mine.length > 1000)
  // the victim's word: even shards (by position) in sync on their replica, odd ones on nobody
  const rec = newInSyncRecord(victim.self.id)
  const synced = new Set<number>()
  mine.forEach((s, i) => {
    setShardEpoch(rec, s, map1.shardEpoch[s]!)
    if (i % 2 === 0) {
      markInSync(rec, s, replicasOf(map1, s)[0]!, true)
      synced.add(s)
    }
  })
  await victim.publishInSync(rec)
  await until('the leader has the record', () => leader.inSyncRecords().get(victim.self.id) !== undefined)
  assert.equal(leader.map()!.epoch, map1.epoch, 'a record alone changes nothing while its owner lives')
  const maps: ShardMap[] = []
  leader.on('map', (m) => maps.push(m))
  // the victim's lease dies
  await raw.leaseClient.leaseRevoke({ ID: victim.leaseId! })
  await victim.close()
  await until('the survivors see the failover', () => survivors.every((m) => {
    const map = m.map()!
    return map.epoch > map1.epoch && [...synced].every((s) => ownerOf(map, s) !== victim.self.id)
  }))
  // the first write after the victim's key went is the failover (later ones may plan moves)
  const map2 = maps[0]!
  assert.equal(map2.epoch, map1.epoch + 1)
  for (const s of mine) {
    if (synced.has(s)) {
      assert.equal(ownerOf(map2, s), replicasOf(map1, s)[0], `shard ${s}: to the replica its record names`)
      assert.ok(map2.shardEpoch[s]! > map1.epoch, `shard ${s}: a new shard epoch`)
      assert.equal(targetOf(map2, s), undefined)
    } else {
      assert.equal(ownerOf(map2, s), victim.self.id, `shard ${s}: nobody in sync, it waits for its owner`)
      assert.equal(map2.shardEpoch[s], map1.shardEpoch[s])
    }
  }
  // the shards of the live members did not change hands (they may be planned to move back to the ring)
  for (let s = 0; s < 4096; s++) {
    if (ownerOf(map1, s) !== victim.self.id) assert.equal(ownerOf(map2, s), ownerOf(map1, s))
  }
  // the dead host is nobody's replica any more
  for (let s = 0; s < 4096; s++) assert.ok(!replicasOf(map2, s).includes(victim.self.id))
})
