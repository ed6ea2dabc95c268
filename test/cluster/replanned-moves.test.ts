/**
 * A move out whose data went unanswered is called off as soon as the map plans it again,
 * not after its acknowledgement timeout.
 *
 * The old owner streams a moving shard's range to its target and holds the shard until the
 * target acknowledges (or MOVE_ACK_TIMEOUT_MS, 30 s). When the map meanwhile plans the move
 * again (its target left and came back, a newer plan), the leader will fold no report of the
 * old plan — but the old owner kept waiting for an answer that, in the chaos runs, never came
 * (seeds 3008 and 5202: "moves out held: 64 to h0 planned at 180, not reported yet; map:
 * target h0 at 182", the target with no stream coming in): the shards stayed out of service
 * and the cluster settled 20–25 s late. Now the new map ends the stream at once, as its
 * timeout would (the shards are served here again and moved under the new plan).
 *
 * Deterministic here: the test leads (it writes the maps), the target's link is silenced by
 * the TCP proxy in front of it (nothing forwarded, nothing closed; heartbeats every 10 s, so
 * the link is not declared dead within the test's bound), the move is planned, then planned
 * again. Real etcd, host processes, links, LMDB.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ownerOf, targetOf, decodeShardMap } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { ClusterKeys, writeMap } from '../../plugins/cluster/membership/cluster-keys.ts'
import { createEtcdClient } from '../../plugins/cluster/membership/etcd-client.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { clusterProcs } from '../helpers/cluster-procs.ts'
import { until } from './tenancy-helpers.ts'
import { MOVES, leadAsTheTest, twoHostRing, withMoves } from './led-moves.ts'

interface ClusterStats { cluster: { movesCalledOff: number } }

test('a move the map plans again while its data goes unanswered is called off at once, not after the acknowledgement timeout', { timeout: 150_000 }, async () => {
  const etcd = await startEtcd()
  const raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
  const prefix = '/replanned-moves'
  const keys = new ClusterKeys(prefix)
  const c = await clusterProcs({
    membership: { etcd: { hosts: [etcd.endpoint], prefix, leaseTtlS: 5 } },
    proxies: true,
    cluster: { heartbeatMs: 10_000, replicas: 1 }
  })
  try {
    const { lease, leaderRevision } = await leadAsTheTest(raw, keys, 120)
    const { ring, i0, i1 } = twoHostRing()
    let revision = (await writeMap(raw, keys, { map: { ...ring, epoch: 2 }, mapRevision: 0, leaderRevision, folded: [] })).revision
    await c.start(['h0', 'h1'])
    await c.settled(30_000)
    const calledOff = async (): Promise<number> => (await c.host('h0').stats<ClusterStats>()).cluster.movesCalledOff

    // h1's link goes silent: what h0 streams to it is never answered
    c.proxy('h1').pause()
    const moving: number[] = []
    for (let s = 0; moving.length < MOVES; s++) if (ring.owner[s] === i0) moving.push(s)
    const planned = (epoch: number): ShardMap => withMoves(ring, moving, i0, i1, epoch)
    const w3 = await writeMap(raw, keys, { map: planned(3), mapRevision: revision, leaderRevision, folded: [] })
    assert.ok(w3.ok)
    revision = w3.revision
    // h0 holds the shards out of service and streams them (into the silence); its view says
    // the data went out and waits for an answer (not that it is still releasing the shards)
    await until('h0 holds the moves out', async () => (await c.describe()).find((v) => v.id === 'h0')!.view.includes(`moves out held: ${MOVES} to h1 planned at 3, sent, no answer yet`), 20_000)
    const before = await calledOff()

    // the map plans the same moves again: the old plan's data is answered by nobody, and its
    // report would be ignored — h0 ends it now
    const w4 = await writeMap(raw, keys, { map: planned(4), mapRevision: revision, leaderRevision, folded: [] })
    assert.ok(w4.ok)
    const t0 = Date.now()
    await until('h0 calls the old plan off', async () => await calledOff() >= before + 1, 8_000)
    const tookMs = Date.now() - t0
    assert.ok(tookMs < 8_000, `called off after ${tookMs} ms (the acknowledgement timeout is 30 s)`)

    // the link heals, the test steps down: a host leads (the ring gives these shards to h0:
    // it calls the moves off or lets them finish) and the cluster settles with every shard served
    c.proxy('h1').heal()
    await raw.leaseClient.leaseRevoke({ ID: lease })
    await c.settled(60_000)
    const final = decodeShardMap((await raw.get(keys.map).buffer())!)
    for (const s of moving) {
      assert.ok(['h0', 'h1'].includes(ownerOf(final, s) ?? ''), `shard ${s} has an owner`)
      assert.equal(targetOf(final, s), undefined, `shard ${s}: no move planned any more`)
    }
    for (let k = 0; k < 16; k++) assert.equal(await c.host('h0').call('counter', `r${k}`, 'add', 1), 1)
  } finally {
    await c.close()
    raw.close()
    await etcd.stop()
  }
})
