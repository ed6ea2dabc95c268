/**
 * A new owner whose old owner's CL_FLUSHED was lost with a dropped link asks for it when
 * the link is up again, instead of leaving the shards unserved for the flush wait (10 s).
 *
 * After a planned move, the new owner adopts the shards once the map names it and the old
 * owner said it forwarded every frame it held (CL_FLUSHED) — so what the old owner held is
 * delivered before what others send straight to the new owner. The old owner writes that
 * frame when it sees the map; written into a link that dropped (or while it was down), it
 * was lost, and the new owner waited 10 s (chaos seed 5203: 38 shards "waiting for
 * CL_FLUSHED from h1", the cluster settling 7.3 s after the faults).
 *
 * Deterministic here: the test leads (it writes the maps); h0 moves shards to h1 and
 * reports; the proxy in front of h1 silences the link (h0 dials h1); the test writes the
 * map naming h1; h0 finishes its move out and its CL_FLUSHED goes into the silence, h1 adopts
 * and waits; the silent link is declared dead (the frame is lost with it), the proxy heals,
 * and h1 serves the shards within a few seconds.
 * Real etcd, host processes, links, LMDB.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'
import { ClusterKeys, writeMap } from '../../plugins/cluster/membership/cluster-keys.ts'
import { createEtcdClient } from '../../plugins/cluster/membership/etcd-client.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { clusterProcs } from '../helpers/cluster-procs.ts'
import { shardOfId } from '../fixtures/shards.ts'
import { until } from './tenancy-helpers.ts'
import { MOVES, leadAsTheTest, reportsOf, twoHostRing, withMoves } from './led-moves.ts'

interface ClusterStats { cluster: { flushAsks: number, links: { up: number } } }

/** FLUSH_WAIT_MS in plugins/cluster/handover.ts: how long a new owner waits without an answer. */
const FLUSH_WAIT_MS = 10_000

test('a new owner asks for the CL_FLUSHED a dropped link lost, and serves the moved shards when the link is up again, not after the flush wait', { timeout: 150_000 }, async () => {
  const etcd = await startEtcd()
  const raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
  const prefix = '/lost-flush'
  const keys = new ClusterKeys(prefix)
  const c = await clusterProcs({
    membership: { etcd: { hosts: [etcd.endpoint], prefix, leaseTtlS: 5 } },
    proxies: true,
    // a silent link is declared dead after 3 heartbeats
    cluster: { replicas: 1, heartbeatMs: 250 }
  })
  try {
    const { lease, leaderRevision } = await leadAsTheTest(raw, keys, 120)
    // the ring, but MOVES of h1's shards still h0's: the map the test ends on is the ring itself
    const { ring, i0, i1 } = twoHostRing()
    const moving: number[] = []
    for (let s = 0; moving.length < MOVES; s++) if (ring.owner[s] === i1) moving.push(s)
    const atH0: ShardMap = { ...ring, epoch: 2, owner: ring.owner.slice() }
    for (const s of moving) atH0.owner[s] = i0
    let revision = (await writeMap(raw, keys, { map: atH0, mapRevision: 0, leaderRevision, folded: [] })).revision
    await c.start(['h0', 'h1'])
    await c.settled(30_000)

    // state in a moving shard, written at h0
    const inMoving = new Set(moving)
    let k = 0
    while (!inMoving.has(shardOfId(idString(DEFAULT_QUOTA, 'counter', `f${k}`)))) k++
    const counter = `f${k}`
    for (let i = 0; i < 3; i++) await c.host('h0').call('counter', counter, 'add', 1)

    // h0 moves the shards to h1 and reports the handovers (the test folds them itself)
    const w3 = await writeMap(raw, keys, { map: withMoves(ring, moving, i0, i1, 3), mapRevision: revision, leaderRevision, folded: [] })
    assert.ok(w3.ok)
    revision = w3.revision
    await until('h0 reports the handovers', async () => await reportsOf(raw, keys, inMoving) === MOVES, 20_000)

    // the link goes silent; the map names h1: h0 finishes its move out and writes its
    // CL_FLUSHED into the silent link, h1 adopts and waits for it; the link is declared dead
    // and closed with the frame in it. (A frame written while a link is down waits in the
    // peer's queue and goes out when it is up again: only one written into a link that then
    // drops is lost.)
    c.proxy('h1').pause()
    const view = async (id: string): Promise<string> => (await c.describe()).find((v) => v.id === id)!.view
    const w4 = await writeMap(raw, keys, { map: { ...ring, epoch: 4 }, mapRevision: revision, leaderRevision, folded: [] })
    assert.ok(w4.ok)
    await until('h0 finishes the move out', async () => (await view('h0')).includes('no move out held'), 10_000)
    await until('h1 waits for the CL_FLUSHED h0 sent into the silence', async () => (await view('h1')).includes(`${MOVES} waiting for CL_FLUSHED from h0`), 10_000)
    const waiting = Date.now()
    await until('the silent link is declared dead', async () => (await c.host('h1').stats<ClusterStats>()).cluster.links.up === 0, 5_000)
    const asksBefore = (await c.host('h1').stats<ClusterStats>()).cluster.flushAsks

    // the link comes back: h1 asks, h0 answers, h1 serves the shards — well before the wait ends
    c.proxy('h1').heal()
    try {
      await until('h1 serves the moved shards', async () => (await view('h1')).includes('0 waiting for CL_FLUSHED'), FLUSH_WAIT_MS - 4_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}; h1: ${await view('h1')}`)
    }
    const tookMs = Date.now() - waiting
    assert.ok(tookMs < FLUSH_WAIT_MS - 3_000, `served ${tookMs} ms after it waited (the flush wait is ${FLUSH_WAIT_MS} ms)`)
    assert.ok((await c.host('h1').stats<ClusterStats>()).cluster.flushAsks > asksBefore, 'h1 asked h0 for the flush')
    assert.equal(await c.host('h1').call('counter', counter, 'get'), 3, 'the state h0 had, served by h1')
    assert.equal(await c.host('h0').call('counter', counter, 'add', 1), 4, 'through h0 too')

    // the test steps down: a host leads, folds the reports, and the cluster settles
    await raw.leaseClient.leaseRevoke({ ID: lease })
    await c.settled(60_000)
    assert.equal(await c.host('h1').call('counter', counter, 'get'), 4)
  } finally {
    await c.close()
    raw.close()
    await etcd.stop()
  }
})
