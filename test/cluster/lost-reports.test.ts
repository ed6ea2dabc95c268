/**
 * Handover reports lost with the lease are made again.
 *
 * An old owner reports a finished handover with a key under its lease, and holds the
 * shards until the map names the new owner. When the lease expires before the leader folds
 * the report (the host stood still past its TTL; etcd deletes every key under the lease),
 * the report is gone — but the old owner counted it made: it held the shards for ever, the
 * map kept planning the move, the leader wrote no new map, the cluster never settled. The
 * two-track chaos runs found it (seed 3008: "moves out held: 3 to h0 planned at 161,
 * reported; map: owner h2, target h0 at 161, still planned as held: true", the new owner
 * waiting for CL_FLUSHED). Now a lost lease makes the host report those moves again, under
 * the lease it registers with next.
 *
 * Deterministic here: the test holds the leader key (nothing folds a report while it
 * leads), lets h0 move 8 shards to h1 and report them, revokes h0's lease (the reports go
 * with it) and waits for them to come back; then it steps down and the cluster settles.
 * Real etcd, hosts, links, LMDB.
 */
import { test } from 'node:test'
import { Buffer } from 'node:buffer'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { decodeShardMap, ownerOf, plan, plannedMoves, targetOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { ClusterKeys, campaign, writeMap } from '../../plugins/cluster/membership/cluster-keys.ts'
import type { ClusterPlugin } from '../../plugins/cluster/cluster-plugin.ts'
import { createEtcdClient } from '../../plugins/cluster/membership/etcd-client.ts'
import { agentsUrl } from '../engine/helpers.ts'
import { freePort, startEtcd } from '../helpers/etcd.ts'
import { secret, until } from './tenancy-helpers.ts'
import { shardOfId } from '../fixtures/shards.ts'
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'

const MOVES = 8

test('the reports of handovers a lost lease took with it are made again, and the moves finish', { timeout: 90_000 }, async () => {
  const etcd = await startEtcd()
  const raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
  const prefix = '/lost-reports'
  const keys = new ClusterKeys(prefix)
  const hosts: Host[] = []
  const plugins = new Map<string, ClusterPlugin>()
  const dirs: string[] = []
  const start = async (id: string): Promise<Host> => {
    const dir = mkdtempSync(join(tmpdir(), `shoal-${id}-`))
    dirs.push(dir)
    const plugin = cluster({
      id,
      secret,
      listen: { host: '127.0.0.1', port: await freePort() },
      replicas: 1,
      membership: { etcd: { hosts: [etcd.endpoint], prefix, leaseTtlS: 5 } }
    })
    plugins.set(id, plugin)
    const host = await createHost({ agents: agentsUrl, workers: 1, dataDir: dir, callTimeoutMs: 20_000, plugins: [plugin] })
    hosts.push(host)
    return host
  }
  try {
    // the test is the leader: the map is what it writes, and nobody folds a report meanwhile
    const lease = String((await raw.leaseClient.leaseGrant({ TTL: 60 })).ID)
    const won = await campaign(raw, keys, 'the-test', lease)
    assert.ok(won.won)
    // the ring's map for h0 and h1, but for 8 of h1's shards, still h0's and planned to move
    // to h1: the leader the test leaves the cluster to has nothing more to plan
    const ring = plan(null, [{ id: 'h0', state: 'up' }, { id: 'h1', state: 'up' }], { replicas: 1 })!
    const [i0, i1] = [ring.hosts.indexOf('h0'), ring.hosts.indexOf('h1')]
    const map: ShardMap = { ...ring, epoch: 2, owner: ring.owner.slice(), target: ring.target.slice(), targetEpoch: ring.targetEpoch.slice() }
    for (let s = 0, n = 0; n < MOVES; s++) {
      if (map.owner[s] !== i1) continue
      map.owner[s] = i0
      map.target[s] = i1
      map.targetEpoch[s] = 2
      n++
    }
    const moves = plannedMoves(map)
    assert.equal(moves.length, MOVES)
    assert.ok(moves.every((m) => m.from === 'h0' && m.to === 'h1'))
    assert.ok((await writeMap(raw, keys, { map, mapRevision: 0, leaderRevision: won.revision, folded: [] })).ok)

    const h1 = await start('h1')
    const h0 = await start('h0')
    // state in a moving shard, written through h0 (its owner): it must arrive at h1
    const moving = new Set(moves.map((m) => m.shard))
    let k = 0
    while (!moving.has(shardOfId(idString(DEFAULT_QUOTA, 'counter', `m${k}`)))) k++
    const counter = `m${k}`
    // calls to an agent of a moving shard, through its old owner: they wait for the move (the
    // test folds no report while it leads), they do not fail
    const adds = Promise.all([1, 2, 3].map(async () => await h0.ref('counter', counter).call('add', 1)))

    // h0 serves every shard the map gives it, and moves the planned ones on its own: the
    // reports of their handovers appear (the map does not change while the test leads)
    const reported = async (): Promise<number> => {
      const found = await raw.getAll().prefix(keys.handovers).keys()
      return found.map((name) => Number(name.slice(keys.handovers.length))).filter((s) => moving.has(s)).length
    }
    try {
      await until(`h0 reports the handover of the ${MOVES} shards the map plans to move to h1`, async () => await reported() === MOVES, 20_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${await reported()} reported; ${plugins.get('h0')!.describe()}`)
    }

    // h0's lease expires (revoked here): its member key and its reports go
    const lease0 = (await raw.kv.range({ key: Buffer.from(keys.member('h0')) })).kvs[0]!.lease
    await raw.leaseClient.leaseRevoke({ ID: lease0 })
    await until('the reports went with the lease', async () => await reported() === 0, 5_000)
    try {
      await until('h0 reports the handovers again, under its new lease', async () => await reported() === MOVES, 20_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${await reported()} reported; ${plugins.get('h0')!.describe()}`)
    }

    // the test steps down: a host leads, folds the reports, and the cluster settles
    await raw.leaseClient.leaseRevoke({ ID: lease })
    await Promise.all(hosts.map(async (h) => await h.cluster.settled({ timeoutMs: 20_000 })))
    const final = decodeShardMap((await raw.get(keys.map).buffer())!)
    for (const s of moving) {
      assert.equal(ownerOf(final, s), 'h1', `shard ${s} moved`)
      assert.equal(targetOf(final, s), undefined)
    }
    assert.deepEqual((await adds).sort(), [1, 2, 3])
    assert.equal(h1.cluster.ownerOf({ type: 'counter', key: counter }), 'h1')
    assert.equal(await h0.ref('counter', counter).call('get'), 3, 'the state h0 had, served by h1')
    assert.equal(await h1.ref('counter', counter).call('get'), 3)
  } finally {
    await Promise.all(hosts.map(async (h) => await h.close()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    raw.close()
    await etcd.stop()
  }
})
