/**
 * Planned moves under the test's lead, for the handover tests: the test holds the leader
 * key, so nothing but the test writes the map and nobody folds a handover report while it
 * leads. Real etcd, hosts, links, LMDB.
 *
 *   movesUnderTheTestsLead(prefix, step, { replicas })
 *     writes the ring's map for h0 and h1 but for MOVES of h1's shards, still h0's and
 *     planned to move to h1; starts h1, then h0 (which must stream them and report the
 *     handovers on its own: the reports appear in etcd), with calls through h0 to an agent
 *     of a moving shard waiting meanwhile; runs `step` (what the test is about); steps down
 *     — a host leads, folds the reports — and checks that the cluster settles with h1
 *     serving the shards, the state h0 had, and the calls answered once each.
 *
 *   withMoves(ring, shards, from, to, epoch)   the ring's map with `shards` owned by `from`
 *                                              and planned to move to `to` at `epoch`
 */
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

export const MOVES = 8

/** The ring's map at `epoch` with `shards` owned by host index `from` and planned to move to `to` at `epoch`. */
export function withMoves (ring: ShardMap, shards: readonly number[], from: number, to: number, epoch: number): ShardMap {
  const map: ShardMap = { ...ring, epoch, owner: ring.owner.slice(), target: ring.target.slice(), targetEpoch: ring.targetEpoch.slice(), replicas: ring.replicas.slice() }
  const k = ring.replicaCount - 1
  for (const s of shards) {
    map.owner[s] = from
    map.target[s] = to
    map.targetEpoch[s] = epoch
    // replicated: the owner cannot be its own replica — the host it takes the place of is
    for (let i = s * k; i < (s + 1) * k; i++) if (map.replicas[i] === from) map.replicas[i] = to
  }
  return map
}

type Etcd = ReturnType<typeof createEtcdClient>

/** The test takes the leader key (a lease of `ttlS` s): nothing but the test writes the map until it revokes the lease. */
export async function leadAsTheTest (raw: Etcd, keys: ClusterKeys, ttlS: number): Promise<{ lease: string, leaderRevision: number }> {
  const lease = String((await raw.leaseClient.leaseGrant({ TTL: ttlS })).ID)
  const won = await campaign(raw, keys, 'the-test', lease)
  assert.ok(won.won)
  return { lease, leaderRevision: won.revision }
}

/** The ring's map for h0 and h1 (`replicas` copies of each shard), and the two hosts' indices in it. */
export function twoHostRing (replicas = 1): { ring: ShardMap, i0: number, i1: number } {
  const ring = plan(null, [{ id: 'h0', state: 'up' }, { id: 'h1', state: 'up' }], { replicas })!
  return { ring, i0: ring.hosts.indexOf('h0'), i1: ring.hosts.indexOf('h1') }
}

/** How many of `shards` have a handover report in etcd. */
export async function reportsOf (raw: Etcd, keys: ClusterKeys, shards: ReadonlySet<number>): Promise<number> {
  const found = await raw.getAll().prefix(keys.handovers).keys()
  return found.map((name) => Number(name.slice(keys.handovers.length))).filter((s) => shards.has(s)).length
}

/** What a test's own step sees while it leads, once h0 has reported the MOVES handovers. */
export interface LedMoves {
  readonly raw: Etcd
  readonly keys: ClusterKeys
  readonly plugins: ReadonlyMap<string, ClusterPlugin>
  /** The moving shards (h0's, planned to move to h1) and an agent of one of them with state (counter `counter`, 3 adds through h0). */
  readonly shards: readonly number[]
  readonly counter: string
  /** How many of the moving shards have a handover report in etcd. */
  reported (): Promise<number>
  /** `until`, with h0's view and the reports' count in the message when it times out. */
  untilReported (what: string, count: number, timeoutMs: number): Promise<void>
}

export async function movesUnderTheTestsLead (prefix: string, step: (led: LedMoves) => Promise<void>, options: { replicas?: 1 | 2 } = {}): Promise<void> {
  const replicas = options.replicas ?? 1
  const etcd = await startEtcd()
  const raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
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
      replicas,
      membership: { etcd: { hosts: [etcd.endpoint], prefix, leaseTtlS: 5 } }
    })
    plugins.set(id, plugin)
    const host = await createHost({ agents: agentsUrl, workers: 1, dataDir: dir, callTimeoutMs: 20_000, plugins: [plugin] })
    hosts.push(host)
    return host
  }
  try {
    const { lease, leaderRevision } = await leadAsTheTest(raw, keys, 60)
    // the ring's map for h0 and h1, but for MOVES of h1's shards, still h0's and planned to
    // move to h1: the leader the test leaves the cluster to has nothing more to plan
    const { ring, i0, i1 } = twoHostRing(replicas)
    const shards: number[] = []
    for (let s = 0; shards.length < MOVES; s++) if (ring.owner[s] === i1) shards.push(s)
    const map = withMoves(ring, shards, i0, i1, 2)
    const moves = plannedMoves(map)
    assert.equal(moves.length, MOVES)
    assert.ok(moves.every((m) => m.from === 'h0' && m.to === 'h1'))
    assert.ok((await writeMap(raw, keys, { map, mapRevision: 0, leaderRevision, folded: [] })).ok)

    const h1 = await start('h1')
    const h0 = await start('h0')
    // state in a moving shard, written through h0 (its owner): it must arrive at h1
    const moving = new Set(shards)
    let k = 0
    while (!moving.has(shardOfId(idString(DEFAULT_QUOTA, 'counter', `m${k}`)))) k++
    const counter = `m${k}`
    // calls to an agent of a moving shard, through its old owner: they wait for the move (the
    // test folds no report while it leads), they do not fail
    const adds = Promise.all([1, 2, 3].map(async () => await h0.ref('counter', counter).call('add', 1)))
    adds.catch(() => {}) // awaited below; if the step fails first, its error is the one to see, not the calls' as the hosts close

    const reported = async (): Promise<number> => await reportsOf(raw, keys, moving)
    const untilReported = async (what: string, count: number, timeoutMs: number): Promise<void> => {
      try {
        await until(what, async () => await reported() === count, timeoutMs)
      } catch (err) {
        throw new Error(`${(err as Error).message}; ${await reported()} reported; ${plugins.get('h0')!.describe()}`)
      }
    }
    // h0 serves every shard the map gives it, and moves the planned ones on its own: the
    // reports of their handovers appear (the map does not change while the test leads)
    await untilReported(`h0 reports the handover of the ${MOVES} shards the map plans to move to h1`, MOVES, 20_000)

    await step({ raw, keys, plugins, shards, counter, reported, untilReported })

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
}
