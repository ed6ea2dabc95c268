/**
 * A shard a planned move is bringing to this host is this host's own range: no replica copy
 * of it is started, written into or dropped while the move's records are written or wait
 * for the map.
 *
 * The replica side (replication/replica-copies.ts) leaves alone the shards the handover
 * keeps, but it was told only of those served or leaving, not those arriving. Chaos seed
 * 2002 lost acknowledged writes that way (2 of 10 runs): h3, just made owner of a shard by
 * a failover, moved it to h0 at once; h0 — one of its replicas in the map — got a segment
 * of h3's new stream while it wrote the move's range, started a copy, imported the owner's
 * snapshot over the range as a replica's, then dropped that copy as one nobody kept, and
 * adopted the now empty range when the map named it: the next add answered 1.
 *
 * Here the test leads (nothing folds the move), h0 moves shards to h1, which is their
 * replica in the map; while h1 holds the move's range waiting for the map, a segment of
 * the shard from its owner reaches h1's replica side: no copy starts. Then the move ends
 * and h1 serves the state h0 had. Real etcd, hosts, links, LMDB.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeShardMap, replicasOf } from '../../native-free-core/placement/shard-map.ts'
import type { ReplicaCopies } from '../../plugins/cluster/replication/replica-copies.ts'
import { shardOfId } from '../fixtures/shards.ts'
import { DEFAULT_QUOTA, idString } from '../../native-free-core/agent/agent-id.ts'
import { movesUnderTheTestsLead } from './led-moves.ts'

test('a replica takes no copy of a shard a move is bringing to its host: a segment from the owner meanwhile starts none', { timeout: 90_000 }, async () => {
  await movesUnderTheTestsLead('/moving-in-copies', async ({ raw, keys, plugins, counter }) => {
    const map = decodeShardMap((await raw.get(keys.map).buffer())!)
    const shard = shardOfId(idString(DEFAULT_QUOTA, 'counter', counter))
    assert.deepEqual(replicasOf(map, shard), ['h1'], 'the move goes to the shard\'s replica')
    const replica = (plugins.get('h1') as unknown as { replication: { replica: ReplicaCopies } }).replication.replica
    // a segment of the shard from its owner at the shard's epoch: one a replica would take
    replica.segments('h0', 0x5eed, [{ shard, epoch: map.shardEpoch[shard]!, seq: 1, segment: new Uint8Array(16), gen: 0 }])
    assert.equal(replica.copyOf(shard), undefined, 'no replica copy of a shard being moved here')
  }, { replicas: 2 })
})
