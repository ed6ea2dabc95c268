/**
 * The replica's apply transactions (plugins/cluster/replication/replica-copies.ts): segments
 * of every owner that arrive together go in one transaction, and those that arrive while an
 * apply is committing wait and go together in the next — one transaction each, counted in
 * `applies` (the bench's "replica applies"). Each owner hears one acknowledgement per apply,
 * sent once it is durable, with the last seq of each of its streams. A real LMDB store
 * (durability 'disk'), the links as frame buffers.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { rmSync } from 'node:fs'
import { plan, replicasOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { SHARDS } from '../../native-free-core/placement/hash.ts'
import { JournalWriter } from '../../native-free-core/storage/commit-journal.ts'
import { RANGE_STATES } from '../../native-free-core/storage/shard-range.ts'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { ReplicaCopies } from '../../plugins/cluster/replication/replica-copies.ts'
import { readAcks, streamId } from '../../plugins/cluster/replication/segment-frames.ts'
import { CL_REPL_ACK, CL_SYNCED, ClusterWire } from '../../plugins/cluster/wire.ts'
import { tempDataDir } from '../durable/helpers.ts'
import { until } from './tenancy-helpers.ts'

/** A one-record journal segment of the shard: key [shard hi, shard lo, n], value [n]. */
function segmentOf (shard: number, n: number): Uint8Array {
  const w = new JournalWriter()
  w.put(RANGE_STATES, Uint8Array.of(shard >> 8, shard & 0xff, n), Uint8Array.of(n))
  return w.take()!
}

test('segments of two owners taken together go in one apply transaction; those arriving while it commits go together in the next; each owner gets one acknowledgement per apply, once durable', async () => {
  // three hosts, two copies of each shard: b keeps copies of a shard of a and of a shard of c
  const map: ShardMap = plan(null, ['a', 'b', 'c'].map((id) => ({ id, state: 'up' as const })), { replicas: 2 })!
  const shardOf = (owner: string): number => map.owner.findIndex((o, s) => map.hosts[o] === owner && replicasOf(map, s).includes('b'))
  const shards = { a: shardOf('a'), c: shardOf('c') }
  assert.ok(shards.a >= 0 && shards.c >= 0)
  const nonce = { a: 0x1111, c: 0x2222 }
  const wire = new ClusterWire(1 << 20)
  const sinks = new Map<string, FrameBuffer>()
  const sink = (peer: string): FrameBuffer => {
    let s = sinks.get(peer)
    if (s === undefined) sinks.set(peer, s = new FrameBuffer())
    return s
  }
  /** What b wrote to `peer`, taken: acknowledgements as [shard, seq] lists per frame, and the kinds of the others. */
  const taken = (peer: string): { acks: Array<Array<[number, number]>>, kinds: number[] } => {
    const acks: Array<Array<[number, number]>> = []
    const kinds: number[] = []
    sink(peer).forEach((frame) => {
      if (frame[0] !== CL_REPL_ACK) {
        kinds.push(frame[0]!)
        return
      }
      const one: Array<[number, number]> = []
      assert.ok(readAcks(wire.payloadOf(Buffer.from(frame))!, SHARDS, (shard, n, epoch, seq) => {
        assert.equal(n, nonce[peer as 'a' | 'c'])
        assert.equal(epoch, map.shardEpoch[shard])
        one.push([shard, seq])
      }))
      acks.push(one)
    })
    sink(peer).clear()
    return { acks, kinds }
  }
  const dir = tempDataDir()
  const store = new LmdbStore({ path: dir, durability: 'disk' })
  const warnings: string[] = []
  const replica = new ReplicaCopies({ self: 'b', wire, store, writer: sink, holds: () => false, warn: (m) => warnings.push(m) })
  const seg = (owner: 'a' | 'c', seq: number): void =>
    replica.segments(owner, nonce[owner], [{ shard: shards[owner], epoch: map.shardEpoch[shards[owner]]!, seq, gen: 0, segment: segmentOf(shards[owner], seq) }])
  try {
    replica.setMap(map)
    // each stream's first segment: b catches up (an empty snapshot, the kept segment after it) and says it is in sync
    for (const owner of ['a', 'c'] as const) {
      seg(owner, 1)
      replica.snapshotEnd(owner, shards[owner], streamId(nonce[owner], map.shardEpoch[shards[owner]]!), 0)
    }
    await until('both copies in sync', () => replica.copiesInSync === 2)
    assert.ok(taken('a').kinds.includes(CL_SYNCED) && taken('c').kinds.includes(CL_SYNCED))
    assert.equal(replica.applies, 0, 'a catch-up is not a live apply')

    // both owners' segments in one turn: one transaction, one acknowledgement to each owner
    seg('a', 2)
    seg('c', 2)
    await until('both acknowledged', () => sink('a').count !== 0 && sink('c').count !== 0)
    assert.equal(replica.applies, 1)
    assert.deepEqual(taken('a').acks, [[[shards.a, 2]]])
    assert.deepEqual(taken('c').acks, [[[shards.c, 2]]])

    // a's next segment starts an apply; c's and a's that come while it commits wait, and go in one more
    seg('a', 3)
    await new Promise((resolve) => setImmediate(resolve)) // the apply of a:3 has started
    assert.equal(replica.applies, 2)
    seg('c', 3)
    seg('a', 4)
    seg('a', 5)
    await until('all acknowledged', () => sink('a').count === 2 && sink('c').count === 1)
    assert.equal(replica.applies, 3)
    assert.deepEqual(taken('a').acks, [[[shards.a, 3]], [[shards.a, 5]]], 'one acknowledgement per apply: its stream\'s last seq')
    assert.deepEqual(taken('c').acks, [[[shards.c, 3]]])
    assert.equal(replica.segmentsIn, 8)
    assert.equal(store.shardSize(shards.a).records, 5, 'every segment of a written')
    assert.equal(store.shardSize(shards.c).records, 3)
    assert.deepEqual(warnings, [])
  } finally {
    replica.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
