/**
 * The owner's half of replication (plugins/cluster/replication/owner-streams.ts), on its
 * own: a real wire and frame buffers for the link, and an in-sync record writer that the
 * test makes fail — as etcd does while the host is fenced or etcd restarts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NONE, plan, replicasOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { JournalWriter } from '../../native-free-core/storage/commit-journal.ts'
import { isMarkedInSync } from '../../native-free-core/placement/in-sync.ts'
import type { InSyncRecord } from '../../native-free-core/placement/in-sync.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { OwnerStreams } from '../../plugins/cluster/replication/owner-streams.ts'
import { CL_REPL, CL_REPL_ACK, CL_UNREPLICA, ClusterWire } from '../../plugins/cluster/wire.ts'
import { readSegments, streamId } from '../../plugins/cluster/replication/segment-frames.ts'
import { SHARDS } from '../../native-free-core/placement/hash.ts'
import { Buffer } from 'node:buffer'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { ShardUnavailableError } from '../../native-free-core/errors.ts'
import { RANGE_STATES, readRangeChunks } from '../../native-free-core/storage/shard-range.ts'
import { CL_SNAP_DATA, CL_SNAP_END } from '../../plugins/cluster/wire.ts'
import { tempDataDir } from '../durable/helpers.ts'
import { idsInShard } from '../fixtures/shards.ts'

interface Harness {
  readonly streams: OwnerStreams
  readonly map: ShardMap
  readonly shard: number
  readonly records: InSyncRecord[]
  readonly wire: ClusterWire
  /** Frames written to each peer, decoded: [kind, value] (msgpack frames; binary ones are skipped). */
  frames (peer: string): Array<[number, unknown]>
  /** Frames written to each peer, as they are: [kind, frame]. */
  raw (peer: string): Array<[number, Buffer]>
  /** Make the record's writes fail (true) or land (false). */
  failing: boolean
  linkUp: boolean
  warnings: string[]
}

function harness (store?: LmdbStore): Harness {
  const wire = new ClusterWire(1 << 20)
  const sinks = new Map<string, FrameBuffer>()
  const h: Harness = {
    streams: undefined as unknown as OwnerStreams,
    map: plan(null, [{ id: 'a', state: 'up' }, { id: 'b', state: 'up' }], { replicas: 2 })!,
    shard: -1,
    records: [],
    failing: false,
    linkUp: true,
    warnings: [],
    wire,
    frames (peer) {
      const out: Array<[number, unknown]> = []
      sinks.get(peer)?.forEach((frame) => {
        if (frame[0] !== CL_REPL && frame[0] !== CL_REPL_ACK) out.push([frame[0]!, wire.read(frame)!.value])
      })
      sinks.get(peer)?.clear()
      return out
    },
    raw (peer) {
      const out: Array<[number, Buffer]> = []
      sinks.get(peer)?.forEach((frame) => out.push([frame[0]!, Buffer.from(frame)]))
      sinks.get(peer)?.clear()
      return out
    }
  }
  const shard = h.map.owner.findIndex((o) => h.map.hosts[o] === 'a')
  assert.ok(shard >= 0 && replicasOf(h.map, shard).includes('b'))
  Object.assign(h, { shard })
  const streams = new OwnerStreams({
    self: 'a',
    wire,
    store: store ?? { exportShard: () => [] } as never, // snapshots: only where a store is given
    writer: (peer) => {
      if (!h.linkUp) throw new Error('link down')
      let sink = sinks.get(peer)
      if (sink === undefined) sinks.set(peer, sink = new FrameBuffer())
      return sink
    },
    publish: async (record) => {
      await new Promise((resolve) => setTimeout(resolve, 5))
      if (h.failing) throw new Error('member key not under its live lease')
      h.records.push(record)
    },
    ackTimeoutMs: 60_000,
    committed: async () => await store?.localCommits(),
    warn: (m) => h.warnings.push(m)
  })
  Object.assign(h, { streams })
  return h
}

/** A one-record commit journal of the shard. */
function journal (shard: number): Uint8Array {
  const w = new JournalWriter()
  w.put(0, Uint8Array.of(shard >> 8, shard & 0xff, 1, 2, 3), Uint8Array.of(9))
  return w.take()!
}

/** The stream the owner announced to `peer` for the shard (its first CL_REPL): its id, nonce and epoch. */
function streamOf (h: Harness, peer: string): { id: string, nonce: number, epoch: number, gen: number } {
  for (const [kind, frame] of h.raw(peer)) {
    if (kind !== CL_REPL) continue
    const read = readSegments(h.wire.payloadOf(frame)!, SHARDS)!
    for (const seg of read.segments) if (seg.shard === h.shard) return { id: streamId(read.nonce, seg.epoch, seg.gen), nonce: read.nonce, epoch: seg.epoch, gen: seg.gen }
  }
  throw new Error(`no CL_REPL for shard ${h.shard} to ${peer}`)
}

/** The owner serves the map and streams to b; b says it holds the snapshot (synced at 0) and the record with b in sync lands. */
async function bInSync (h: Harness): Promise<ReturnType<typeof streamOf>> {
  h.streams.setMap(h.map, () => true)
  const stream = streamOf(h, 'b')
  h.streams.synced('b', h.shard, stream.id, 0)
  await new Promise((resolve) => setTimeout(resolve, 300)) // the records with b in sync land
  assert.ok(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'), 'b is in sync in the record')
  return stream
}

const settledWithin = async (p: Promise<void>, ms: number): Promise<'resolved' | 'rejected' | 'pending'> =>
  await Promise.race([
    p.then(() => 'resolved' as const, () => 'rejected' as const),
    new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))
  ])

test('a replica falling out while the in-sync record cannot be written: writes wait for it until a record without it lands, then go', async () => {
  const h = harness()
  try {
    const { nonce, epoch } = await bInSync(h)

    // b acknowledges a write: it is done
    const first = h.streams.replicate(journal(h.shard))
    h.streams.acked('b', h.shard, nonce, epoch, 1)
    assert.equal(await settledWithin(first, 100), 'resolved')

    // etcd refuses the record from now on; b's link drops with a write waiting for it
    h.failing = true
    const second = h.streams.replicate(journal(h.shard))
    h.streams.down('b')
    // never acknowledged to the caller while the record still names b: b may be promoted
    assert.equal(await settledWithin(second, 1200), 'pending', 'a write b lacks waits while the record without b cannot be written')
    assert.ok(h.streams.publishFailures >= 2, `the record was tried again (${h.streams.publishFailures} failures)`)
    assert.equal(h.warnings.filter((w) => w.includes('in-sync record failed')).length, 1, 'a run of failures is logged once')

    // etcd takes writes again: the retry lands the record without b, and the write goes
    h.failing = false
    assert.equal(await settledWithin(second, 3000), 'resolved', 'the write goes once a record without b has landed')
    assert.equal(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'), false)
  } finally {
    h.streams.close()
  }
})

test('a replica the map no longer lists is told to drop its copy, and told again when its link comes up (the first frame was lost)', async () => {
  const h = harness()
  try {
    const { id } = await bInSync(h)

    // the map drops b as a replica of the shard (same owner, same epoch), while b's link is down
    const replicas = h.map.replicas.slice()
    replicas[h.shard] = NONE
    h.linkUp = false
    h.streams.setMap({ ...h.map, epoch: h.map.epoch + 1, replicas }, () => true)
    await new Promise((resolve) => setTimeout(resolve, 400)) // the record without b lands
    assert.equal(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'), false)
    assert.deepEqual(h.frames('b').filter(([kind]) => kind === CL_UNREPLICA), [])

    h.linkUp = true
    h.streams.up('b')
    const told = h.frames('b').filter(([kind]) => kind === CL_UNREPLICA).map(([, v]) => v)
    assert.deepEqual(told, [[h.shard, id]], 'b is told to drop its copy once its link is up')

    // a host listed again is not told to drop what it keeps now
    h.streams.setMap({ ...h.map, epoch: h.map.epoch + 2 }, () => true)
    h.frames('b')
    h.streams.up('b')
    assert.deepEqual(h.frames('b').filter(([kind]) => kind === CL_UNREPLICA), [])
  } finally {
    h.streams.close()
  }
})

test('a replica dropped from the list before it caught up is told to drop its copy at once; one that catches up after is told too', async () => {
  const h = harness()
  try {
    h.streams.setMap(h.map, () => true)
    const { id } = streamOf(h, 'b')
    const replicas = h.map.replicas.slice()
    replicas[h.shard] = NONE
    // b never said CL_SYNCED: no record names it, nothing to wait for
    h.streams.setMap({ ...h.map, epoch: h.map.epoch + 1, replicas }, () => true)
    assert.deepEqual(h.frames('b').filter(([kind]) => kind === CL_UNREPLICA).map(([, v]) => v), [[h.shard, id]])
    // its snapshot lands after that: it is still not counted on, and told again
    h.streams.synced('b', h.shard, id, 0)
    assert.deepEqual(h.frames('b').filter(([kind]) => kind === CL_UNREPLICA).map(([, v]) => v), [[h.shard, id]])
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'), false, 'b never entered the record')
  } finally {
    h.streams.close()
  }
})

test('a snapshot asked for before the commits it is numbered after have committed here waits for them: it holds every segment up to its base', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  const h = harness(store)
  try {
    store.replicateWith((j) => h.streams.replicate(j), () => assert.fail('no commit fails here'))
    h.streams.setMap(h.map, () => true)
    const { id, nonce, epoch } = streamOf(h, 'b')
    const [agent] = idsInShard(h.shard, 'kv', 1)
    // the commit is queued and its journal numbered (seq 1) in this synchronous step; b asks
    // for a snapshot in the same step, before LMDB has committed it
    const write = store.commit({ states: [[agent!, stateCodec.encode('written')]] })
    write.catch(() => {}) // awaited at the end; a failed assertion before that must not hide behind it
    const resync = h.streams.resync('b', h.shard, id)
    await resync
    const frames = h.frames('b')
    const end = frames.find(([kind]) => kind === CL_SNAP_END)
    assert.ok(end !== undefined, 'the snapshot went out')
    const base = (end[1] as [number, string, number])[2]
    assert.equal(base, 1, 'numbered after the commit')
    const chunks = frames.filter(([kind]) => kind === CL_SNAP_DATA).map(([, v]) => (v as [number, string, Uint8Array])[2])
    const states = readRangeChunks(h.shard, chunks).filter(([db]) => db === RANGE_STATES).map(([, key, value]) => [Buffer.from(key).toString(), stateCodec.decode(value)])
    assert.deepEqual(states, [[agent, 'written']], 'the snapshot holds the segment up to its base')
    h.streams.synced('b', h.shard, id, base)
    await new Promise((resolve) => setTimeout(resolve, 300))
    h.streams.acked('b', h.shard, nonce, epoch, 1)
    await write
  } finally {
    h.streams.close()
    await store.close()
  }
})

test('a stream started over (a commit lost here after its journal went out): a new id, the writes waiting on the old one fail (retriable), the replicas hear of the new one and are out of sync until they catch up', async () => {
  const h = harness()
  try {
    h.streams.setMap(h.map, () => true)
    const old = streamOf(h, 'b')
    h.streams.synced('b', h.shard, old.id, 0)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.ok(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'))

    const waiting = h.streams.replicate(journal(h.shard))
    h.raw('b') // its segment of the old stream
    h.streams.restart([h.shard])
    await assert.rejects(waiting, ShardUnavailableError)
    const fresh = streamOf(h, 'b')
    assert.notEqual(fresh.id, old.id, 'a new stream id')
    assert.equal(fresh.epoch, old.epoch)
    assert.equal(fresh.gen, old.gen + 1)
    assert.equal(h.streams.restarts, 1)
    // b's acknowledgement of the old stream counts for nothing on the new one
    const next = h.streams.replicate(journal(h.shard))
    h.streams.acked('b', h.shard, old.nonce, old.epoch, 5)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'), false, 'the record no longer names b for the shard')
    assert.equal(await settledWithin(next, 50), 'resolved', 'with nobody in sync, the new stream\'s writes go once its record has landed')
    assert.equal(h.streams.inSyncCount(), 0)
    // b catches up on the new stream: in sync again
    h.streams.synced('b', h.shard, fresh.id, 1)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.ok(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'))
  } finally {
    h.streams.close()
  }
})

test('a replica that catches up while it is falling out (the record without it not written yet): the writes it now has are done, not left waiting', async () => {
  // the chaos test (seed 3001, two tracks, etcd restarted under load): a host fenced itself
  // and released its shards, and the release waited for ever on one write of shard 3508 —
  // "in sync [h2 acked 9]", the write seq 9. h2 had fallen behind while etcd was away, asked
  // for a snapshot, and said CL_SYNCED at 9 before the record without it could land; the
  // owner counted it in sync again and never looked at the writes waiting for it
  const h = harness()
  try {
    const { id } = await bInSync(h)

    // etcd away; a write b does not acknowledge: b falls out, but the record cannot say so
    h.failing = true
    const write = h.streams.replicate(journal(h.shard))
    h.streams.down('b')
    assert.equal(await settledWithin(write, 300), 'pending', 'it waits for b while the record names b')

    // b asks for a snapshot (it lost the stream), applies it and every segment up to 1: in sync
    await h.streams.resync('b', h.shard, id)
    const end = h.frames('b').find(([kind]) => kind === CL_SNAP_END)
    assert.ok(end !== undefined, 'a snapshot went to b')
    const base = (end[1] as [number, string, number])[2]
    assert.equal(base, 1, 'numbered after the waiting write')
    h.streams.synced('b', h.shard, id, base)
    assert.equal(await settledWithin(write, 300), 'resolved', 'b has it: the write is done')

    // and when etcd is back the record names b in sync
    h.failing = false
    await new Promise((resolve) => setTimeout(resolve, 1200))
    assert.ok(isMarkedInSync(h.records.at(-1)!, h.shard, 'b'))
  } finally {
    h.streams.close()
  }
})
