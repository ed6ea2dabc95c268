/**
 * Commit journals (native-free-core/storage/commit-journal.ts): an LMDB store set to
 * replicate records every write of a commit — states, ctx.storage (a wipe as the keys it
 * removed), reminders, outbox and applied records — and a second store that applies the
 * journal's per-shard segments holds the same ranges, byte for byte. The commit resolves
 * only after the replication resolves, and fails with its error. Replica ranges stay out
 * of the quota counts until counted. Malformed journals are refused.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { JournalWriter, checkSegment, chunkJournal, forEachSegment, readJournal, splitJournal } from '../../native-free-core/storage/commit-journal.ts'
import { ShardUnavailableError, StorageError } from '../../native-free-core/errors.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { poisoner, tempDataDir, toleratingFailedCommits } from './helpers.ts'
import { idsInShard } from '../fixtures/shards.ts'

const S = 101
const T = 2002

function ranges (store: LmdbStore, shard: number): string[] {
  return [...store.exportShard(shard, 64)].map((c) => Buffer.from(c).toString('hex'))
}

test('journal records round-trip, split per shard in order, and chunk at record boundaries', () => {
  const j = new JournalWriter()
  const key = (shard: number, tail: string): Uint8Array => Buffer.concat([Buffer.from([shard >> 8, shard & 255]), Buffer.from(tail)])
  j.put(1, key(5, 'a'), Buffer.from('1'))
  j.put(1, key(9, 'b'), Buffer.from('22'))
  j.remove(2, key(5, 'c'))
  j.put(1, key(5, 'a'), Buffer.from('333'))
  const bytes = j.take()!
  assert.equal(j.take(), null, 'take empties the writer')
  const records = [...readJournal(bytes)]
  assert.deepEqual(records.map((r) => [r.db, r.op, Buffer.from(r.key.subarray(2)).toString(), Buffer.from(r.value).toString()]), [
    [1, 0, 'a', '1'], [1, 0, 'b', '22'], [2, 1, 'c', ''], [1, 0, 'a', '333']
  ])
  const split = splitJournal(bytes)
  assert.deepEqual(split.map(([s]) => s), [5, 9])
  assert.deepEqual([...readJournal(split[0]![1])].map((r) => Buffer.from(r.value).toString()), ['1', '', '333'], 'shard 5 keeps its order')
  const pieces = chunkJournal(bytes, 20)
  assert.ok(pieces.length > 1)
  assert.deepEqual(Buffer.concat(pieces), Buffer.from(bytes), 'pieces are the journal, cut between records')
  for (const p of pieces) [...readJournal(p)]
})

test('forEachSegment visits what splitJournal returns: views of the journal when each shard\'s records are together', () => {
  const key = (shard: number, tail: string): Uint8Array => Buffer.concat([Buffer.from([shard >> 8, shard & 255]), Buffer.from(tail)])
  const visit = (bytes: Uint8Array): Array<[number, string, boolean]> => {
    const out: Array<[number, string, boolean]> = []
    forEachSegment(bytes, (shard, b, start, end) => out.push([shard, Buffer.from(b.subarray(start, end)).toString('hex'), b === bytes]))
    return out
  }
  const together = new JournalWriter()
  together.put(1, key(5, 'a'), Buffer.from('1'))
  together.remove(2, key(5, 'c'))
  together.put(1, key(4095, 'b'), Buffer.from('x'.repeat(300)))
  together.put(1, key(9, 'd'), Buffer.from(''))
  const t = together.take()!
  const seen = visit(t)
  assert.deepEqual(seen.map(([s, hex]) => [s, hex]), splitJournal(t).map(([s, seg]) => [s, Buffer.from(seg).toString('hex')]))
  assert.deepEqual(seen.map(([s]) => s), [5, 4095, 9], 'shards in the order they first appear')
  assert.ok(seen.every(([, , view]) => view), 'each segment a range of the journal itself')
  // shard 5 again after shard 9: its records are gathered into a copy, in their order
  const apart = new JournalWriter()
  apart.put(1, key(5, 'a'), Buffer.from('1'))
  apart.put(1, key(9, 'b'), Buffer.from('22'))
  apart.put(1, key(5, 'a'), Buffer.from('333'))
  const a = apart.take()!
  const split = visit(a)
  assert.deepEqual(split.map(([s, hex]) => [s, hex]), splitJournal(a).map(([s, seg]) => [s, Buffer.from(seg).toString('hex')]))
  assert.deepEqual([...readJournal(Buffer.from(split[0]![1], 'hex'))].map((r) => Buffer.from(r.value).toString()), ['1', '333'])
  // many records, shards interleaved (the per-record lists grow): still splitJournal's segments
  const many = new JournalWriter()
  for (let i = 0; i < 700; i++) many.put(1 + (i % 3), key((i * 37) % 50, `k${i}`), Buffer.from('v'.repeat(i % 130)))
  const m = many.take()!
  assert.deepEqual(visit(m).map(([s, hex]) => [s, hex]), splitJournal(m).map(([s, seg]) => [s, Buffer.from(seg).toString('hex')]))
  // a shard seen in an earlier journal is not "seen" in the next one
  assert.deepEqual(visit(t).map(([s]) => s), [5, 4095, 9])
  // malformed: thrown before any segment is visited
  let visited = 0
  assert.throws(() => forEachSegment(t.subarray(0, t.length - 1), () => visited++), StorageError)
  const badShard = Buffer.from(t)
  badShard[8] = 0x10 // the first key's shard: 4096 + 5, past every shard
  assert.throws(() => forEachSegment(badShard, () => visited++), StorageError)
  assert.equal(visited, 0, 'nothing visited')
})

test('checkSegment refuses a segment with a record of another shard, a bad header or a cut record', () => {
  const j = new JournalWriter()
  j.put(1, Buffer.from([0, 7, 65]), Buffer.from('x'.repeat(70000))) // a value length past 16 bits
  j.remove(2, Buffer.from([0, 7, 66]))
  const seg = j.take()!
  checkSegment(seg, 7)
  assert.throws(() => checkSegment(seg, 8), StorageError, 'another shard')
  assert.throws(() => checkSegment(seg.subarray(0, seg.length - 1), 7), StorageError, 'cut short')
  const op = Buffer.from(seg)
  op[1] = 7
  assert.throws(() => checkSegment(op, 7), StorageError, 'unknown op')
})

test('a malformed journal is a StorageError, never a partial write', async () => {
  const j = new JournalWriter()
  j.put(1, Buffer.from([0, 7, 65]), Buffer.from('x'))
  const good = j.take()!
  assert.throws(() => [...readJournal(good.subarray(0, good.length - 1))], StorageError)
  const badDb = Buffer.from(good)
  badDb[0] = 99
  assert.throws(() => [...readJournal(badDb)], StorageError)
  const store = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  await assert.rejects(store.applyReplicated([[8, good]]), StorageError, 'a segment writing outside its shard is refused')
  assert.deepEqual(ranges(store, 7), [], 'nothing written')
  await store.close()
})

test('a replicating store journals every write; a replica applying the segments holds the same ranges', async () => {
  const owner = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  const replica = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  const journals: Uint8Array[] = []
  owner.replicateWith(async (journal) => { journals.push(journal) }, () => assert.fail('no commit fails here'))
  owner.newIncarnation()
  const [a, b] = idsInShard(S, 'kv', 2)
  const [c] = idsInShard(T, 'kv', 1)
  await owner.commit({
    states: [[a!, stateCodec.encode({ n: 1 })], [b!, stateCodec.encode({ n: 2 })], [c!, stateCodec.encode({ n: 3 })]],
    storage: new Map([[a!, { wiped: false, entries: new Map([['k1', stateCodec.encode('v1')], ['k2', stateCodec.encode('v2')]]) }]]),
    reminders: new Map([[b!, { wiped: false, entries: new Map([['r', new Uint8Array(16)]]) }]]),
    outboxPuts: [{ senderShard: S, origin: owner.storeId, key: 1, bytes: stateCodec.encode(['x']) }],
    appliedPuts: [{ shard: T, origin: 'ffffffffffffffff', key: 9, senderShard: 3, appliedAt: 1 }],
    quotaDeltas: [['default', 3]]
  })
  // a's deletion wipes its storage: the journal names each key removed
  await owner.commit({ states: [[a!, null]], storage: new Map([[a!, { wiped: true, entries: new Map() }]]) })
  await owner.deleteOutbox([{ senderShard: S, origin: owner.storeId, key: 1 }])
  assert.equal(journals.length, 3)
  for (const journal of journals) await replica.applyReplicated(splitJournal(journal))
  for (const shard of [S, T]) assert.deepEqual(ranges(replica, shard), ranges(owner, shard), `shard ${shard} is the same on both`)
  assert.ok(ranges(owner, S).length > 0)
  assert.equal(replica.getState(a!), undefined)
  assert.deepEqual(stateCodec.decode(replica.getState(b!)!), { n: 2 })
  // the replica's ranges are copies: not counted until the replica serves them
  assert.equal(replica.isReplicaRange(S), true)
  assert.deepEqual([...replica.quotaCounts()], [])
  const moved: Array<ReadonlyArray<readonly [string, number]>> = []
  replica.countsMoved = (change) => moved.push(change)
  await replica.countShard(S)
  assert.equal(replica.isReplicaRange(S), false)
  assert.deepEqual(moved, [[['default', 1]]], 'b is counted once shard S is served here')
  await replica.dropShard(T) // a copy: dropped without touching the counts
  assert.equal(moved.length, 1)
  await owner.close()
  await replica.close()
  const reopened = new LmdbStore({ path: replica.path, durability: 'os' })
  assert.equal(reopened.isReplicaRange(S), false, 'which ranges are copies survives a reopen')
  assert.deepEqual([...reopened.shardsHeld()].sort((x, y) => x - y), [S])
  await reopened.close()
})

test('a replicated commit resolves after the replicas and fails with their error', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  let release!: () => void
  let fail = false
  store.replicateWith((journal) => {
    assert.ok(journal.length > 0)
    if (fail) return Promise.reject(new ShardUnavailableError('deposed: retry'))
    return new Promise<void>((resolve) => { release = resolve })
  }, () => assert.fail('no commit fails here'))
  const [id] = idsInShard(S, 'kv', 1)
  let done = false
  const committed = store.commit({ states: [[id!, stateCodec.encode(1)]] }).then(() => { done = true })
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.equal(done, false, 'waits for the replicas')
  assert.deepEqual(stateCodec.decode(store.getState(id!)!), 1, 'committed locally meanwhile')
  release()
  await committed
  fail = true
  await assert.rejects(store.commit({ states: [[id!, stateCodec.encode(2)]] }), ShardUnavailableError)
  assert.equal(shardOf(hashId(id!)), S)
  await store.close()
})

test('a replicating store hands out a journal as its commit is queued; localCommits waits for the commits queued before it; a commit whose transaction fails reports its journal lost', async () => {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'disk' })
  const out: Uint8Array[] = []
  const lost: Uint8Array[] = []
  store.replicateWith(async (journal) => { out.push(journal) }, (journal) => lost.push(journal))
  const [id] = idsInShard(S, 'kv', 1)
  const poison = await poisoner(store)
  const first = store.commit({ states: [[id!, stateCodec.encode(1)]] })
  assert.equal(out.length, 1, 'the journal goes out as the commit is queued, before it has committed')
  await store.localCommits()
  assert.deepEqual(stateCodec.decode(store.getState(id!)!), 1, 'committed once localCommits resolves')
  await first

  await toleratingFailedCommits(async () => {
    const failing = store.commit({ states: [[id!, stateCodec.encode(2)]] })
    poison() // the same event turn: the same transaction, which LMDB refuses whole
    assert.equal(out.length, 2, 'its journal went out')
    const barrier = store.localCommits()
    await assert.rejects(failing)
    await barrier
    assert.equal(lost.length, 1, 'the failed commit is reported')
    assert.deepEqual(lost[0], out[1], '… with the journal that went out')
    assert.deepEqual(stateCodec.decode(store.getState(id!)!), 1, 'nothing of it was written here')
  })
  await store.commit({ states: [[id!, stateCodec.encode(3)]] })
  assert.equal(lost.length, 1, 'later commits go on')
  assert.deepEqual(stateCodec.decode(store.getState(id!)!), 3)
  await store.close()
})
