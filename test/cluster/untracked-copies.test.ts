/**
 * A replica range on disk that no stream keeps up to date, for a shard the map no longer
 * lists this host as a replica of — what a restart leaves (a copy's tracking is in memory),
 * or a stream lost with its link while the owner's CL_UNREPLICA was lost too. With an owner
 * that never changed, the shard's epoch never moves, so the orphan rule never let it go:
 * the two-track chaos runs found one left at the end (seed 2002, "a replica range with no
 * copy; map owner h3 at epoch 1"), its outbox records looking unsent for ever. The replica
 * now asks the owner (CL_RESYNC with no stream id) and drops the copy when the owner says
 * it counts on it no more; the owner says so only for a host it neither streams to nor
 * counts in sync. Both halves, a real LMDB store for the replica, the link as frame buffers.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { rmSync } from 'node:fs'
import { plan, replicasOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { OwnerStreams } from '../../plugins/cluster/replication/owner-streams.ts'
import { ReplicaCopies } from '../../plugins/cluster/replication/replica-copies.ts'
import { CL_REPL, CL_REPL_ACK, CL_RESYNC, CL_UNREPLICA, ClusterWire } from '../../plugins/cluster/wire.ts'
import { idsInShard } from '../fixtures/shards.ts'
import { tempDataDir } from '../durable/helpers.ts'
import { until } from './tenancy-helpers.ts'

/** Frames each host wrote to each peer, as [kind, value] (msgpack frames only), taken once. */
class Links {
  readonly wire = new ClusterWire(1 << 20)
  private readonly sinks = new Map<string, FrameBuffer>()

  writer (from: string, to: string): FrameBuffer {
    const key = `${from}>${to}`
    let sink = this.sinks.get(key)
    if (sink === undefined) this.sinks.set(key, sink = new FrameBuffer())
    return sink
  }

  take (from: string, to: string): Array<[number, unknown]> {
    const out: Array<[number, unknown]> = []
    const sink = this.sinks.get(`${from}>${to}`)
    sink?.forEach((frame) => {
      if (frame[0] !== CL_REPL && frame[0] !== CL_REPL_ACK) out.push([frame[0]!, this.wire.read(Buffer.from(frame))!.value])
    })
    sink?.clear()
    return out
  }
}


test('a replica range no stream tracks and the map does not list this host for: the owner is asked, and the copy goes once it says so', async () => {
  // three hosts, two copies of each shard: a shard owned by a whose replica is c, not b
  const map: ShardMap = plan(null, ['a', 'b', 'c'].map((id) => ({ id, state: 'up' as const })), { replicas: 2 })!
  const shard = map.owner.findIndex((o, s) => map.hosts[o] === 'a' && !replicasOf(map, s).includes('b'))
  assert.ok(shard >= 0)
  const links = new Links()
  const dir = tempDataDir()
  const store = new LmdbStore({ path: dir, durability: 'os' })
  const warnings: string[] = []
  const owner = new OwnerStreams({
    self: 'a',
    wire: links.wire,
    store: { exportShard: () => [] } as never, // no snapshot is asked for here
    writer: (peer: string) => links.writer('a', peer),
    publish: async () => {},
    serves: () => true,
    holds: () => true,
    ackTimeoutMs: 60_000,
    warn: (m: string) => warnings.push(m)
  } as never)
  const replica = new ReplicaCopies({
    self: 'b',
    wire: links.wire,
    store,
    writer: (peer) => links.writer('b', peer),
    holds: () => false,
    warn: (m) => warnings.push(m)
  })
  try {
    // b holds a replica's copy of the shard, with agents in it, from an earlier life
    const ids = idsInShard(shard, 'account', 3)
    const donor = new LmdbStore({ path: tempDataDir(), durability: 'os' })
    await donor.commit({ states: ids.map((id) => [id, stateCodec.encode({ id })] as const) })
    await store.importShard(shard, donor.exportShard(shard), true)
    await donor.close()
    rmSync(donor.path, { recursive: true, force: true })
    assert.ok(store.isReplicaRange(shard) && store.shardSize(shard).records === 3)

    owner.setMap(map, (s) => map.hosts[map.owner[s]!] === 'a')
    // b's map does not list it for the shard, and no stream tracks its copy: it asks a
    replica.setMap(map)
    const asked = links.take('b', 'a').filter(([kind, v]) => kind === CL_RESYNC && (v as [number, string])[0] === shard)
    assert.deepEqual(asked, [[CL_RESYNC, [shard, '']]])

    // a streams this shard to c, not to b: it may go
    void owner.resync('b', shard, '')
    const told = links.take('a', 'b').filter(([kind]) => kind === CL_UNREPLICA)
    assert.equal(told.length, 1)
    const [toldShard, id] = told[0]![1] as [number, string]
    assert.equal(toldShard, shard)
    replica.unreplica('a', toldShard, id)
    await until('the copy dropped', () => !store.isReplicaRange(shard))
    assert.equal(store.shardSize(shard).records, 0)

    // nothing left to ask about at the next map
    replica.setMap(map)
    assert.equal(links.take('b', 'a').filter(([kind]) => kind === CL_RESYNC).length, 0)

    // the owner never says so to a host it streams to: c asking gets no CL_UNREPLICA
    void owner.resync('c', shard, '')
    assert.equal(links.take('a', 'c').filter(([kind]) => kind === CL_UNREPLICA).length, 0)
    assert.deepEqual(warnings, [])
  } finally {
    owner.close()
    replica.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
