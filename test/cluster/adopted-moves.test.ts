/**
 * A host that takes up shards the map already plans to move away from it moves them.
 *
 * The handover compares the map with what the host serves one step at a time, and a step
 * planned its moves out from the shards served when it began: a shard it adopted in that
 * step (a host serving its shards again after it was fenced, a host that starts or restarts
 * and finds moves from it planned) was compared with the map's target only by the next
 * step. Steps run when the map changes, and the leader writes no new map while a planned
 * move waits for its old owner: the moves never started and the cluster never settled.
 * The two-track chaos runs found it (seed 3001, about one run in three, "5 h3→h2 planned at
 * 84"): etcd restarted under the load, the old owner fenced itself, and when it could serve
 * again it served those shards and moved none of them — its own view said "no move out
 * held, no reconcile step running".
 *
 * Deterministic here: the test holds the leader key, so nothing but the test writes the map,
 * and before h0 starts it writes the ring's map for h0 and h1 but for 8 of h1's shards, still
 * h0's and planned to move to h1. h0 must stream them and report the handovers on its own
 * (the reports appear in etcd); then the test steps down, a host becomes leader, folds the
 * reports, and the cluster settles with h1 serving the shards, and the calls made through h0
 * meanwhile answered once each. Real etcd, hosts, links, LMDB.
 */
import { test } from 'node:test'
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

test('a host that starts with moves from it planned in the map makes them: it streams the shards and reports, and the cluster settles', { timeout: 90_000 }, async () => {
  const etcd = await startEtcd()
  const raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
  const prefix = '/adopted'
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
