/**
 * Durability 'os' (src/storage/lmdb-store.ts, its header): a command is acknowledged once
 * committed to the OS — no flush on its path (LMDB's MDB_NOSYNC), the environment flushed
 * in the background every `flushIntervalMs` and on close — and survives kill -9. Before,
 * 'os' opened LMDB with lmdb-js's overlappingSync like 'disk', whose commit promise settles
 * only after the commit's own sync (bench/RESULTS.md, 2026-12-07 night, branch wal), so 'os'
 * waited for the flush too.
 *
 * "No flush before the acknowledgement" is checked through LMDB's own counter of the time
 * spent in syncs (`trackMetrics`' timeSync, nanoseconds, counted by every sync LMDB runs):
 * the test opens the environment first with the store's options plus trackMetrics (lmdb-js
 * shares one environment per process, so the store then uses it) — no timing involved.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { open } from 'lmdb'
import type { RootDatabase } from 'lmdb'
import { LmdbStore, lmdbEnvOptionsFor } from '../../src/storage/lmdb-store.ts'
import type { Durability } from '../../src/storage/lmdb-store.ts'
import { JournalWriter } from '../../native-free-core/storage/commit-journal.ts'
import { RANGE_STATES } from '../../native-free-core/storage/shard-range.ts'
import { createHost } from '../../src/index.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idsInShard } from '../fixtures/shards.ts'
import { prng, between } from '../fixtures/prng.ts'
import { acknowledgedTallies, durableAgentsUrl, durableHost, runAndKill, tempDataDir } from './helpers.ts'

const S = 77
const kHour = 3_600_000

/** The environment at `path`, opened as the store opens it for `durability`, with LMDB's metrics on. */
function metered (path: string, durability: Durability): RootDatabase {
  return open({ path, ...lmdbEnvOptionsFor(durability), trackMetrics: true } as Parameters<typeof open>[0])
}

/** Seconds LMDB has spent in syncs of this environment (every thread's, this process). */
function syncTime (env: RootDatabase): number {
  return (env.getStats() as { timeSync: number }).timeSync
}

function segment (id: string, n: number): Uint8Array {
  const j = new JournalWriter()
  j.put(RANGE_STATES, Buffer.concat([Buffer.from([S >> 8, S & 255]), Buffer.from(id, 'utf8')]), stateCodec.encode({ n }))
  return j.take()!
}

test("'os': a commit, a replica's apply, a range import, count and drop and a quota limit settle with no flush run; flush() and close() flush", async () => {
  const path = tempDataDir()
  const env = metered(path, 'os')
  const store = new LmdbStore({ path, durability: 'os', flushIntervalMs: kHour })
  const donorPath = tempDataDir()
  const donor = new LmdbStore({ path: donorPath, durability: 'os', flushIntervalMs: kHour })
  try {
    const [a, b] = idsInShard(S, 'kv', 2)
    const [c] = idsInShard(S + 1, 'kv', 1)
    const before = syncTime(env)
    await store.commit({ states: [[a!, stateCodec.encode({ n: 1 })]], quotaDeltas: [['default', 1]] })
    assert.equal(syncTime(env), before, 'the commit settled and LMDB has not synced')
    assert.deepEqual(stateCodec.decode(store.getState(a!)!), { n: 1 }, 'committed: visible')

    const applied = store.queueReplicated([{ shard: S, segment: segment(b!, 2) }])
    await applied.durable
    assert.equal(syncTime(env), before, "a replica's apply is 'durable' (acknowledged) at commit")

    await donor.commit({ states: [[c!, stateCodec.encode({ n: 3 })]] })
    await store.importShard(S + 1, [...donor.exportShard(S + 1)], true)
    await store.countShard(S + 1)
    await store.putQuotaLimit('default', 5)
    await store.dropShard(S + 1)
    assert.equal(syncTime(env), before, 'import, count, quota limit and drop settled without a sync')

    await store.flush()
    const flushed = syncTime(env)
    assert.ok(flushed > before, 'flush() synced the environment')

    await store.commit({ states: [[a!, stateCodec.encode({ n: 4 })]] })
    assert.equal(syncTime(env), flushed)
    await store.close()
    assert.ok(syncTime(env) > flushed, 'close() flushed what was committed since')
  } finally {
    await store.close()
    await donor.close()
    await env.close()
  }
})

test("'disk' (unchanged): a commit settles only after LMDB synced it", async () => {
  const path = tempDataDir()
  const env = metered(path, 'disk')
  const store = new LmdbStore({ path, durability: 'disk' })
  try {
    const [a] = idsInShard(S, 'kv', 1)
    const before = syncTime(env)
    await store.commit({ states: [[a!, stateCodec.encode({ n: 1 })]] })
    assert.ok(syncTime(env) > before, 'the commit settled after its sync')
    const after = syncTime(env)
    await store.queueReplicated([{ shard: S, segment: segment(a!, 2) }]).durable
    assert.ok(syncTime(env) > after, "a replica's apply is durable after its sync")
  } finally {
    await store.close()
    await env.close()
  }
})

test("'os': the background flush runs every flushIntervalMs once something was written, and not while nothing is", async () => {
  const path = tempDataDir()
  const env = metered(path, 'os')
  const store = new LmdbStore({ path, durability: 'os', flushIntervalMs: 5 })
  try {
    // opening wrote nothing through the store: no flush is due
    await sleep(60)
    const idle = syncTime(env)
    const [a] = idsInShard(S, 'kv', 1)
    await store.commit({ states: [[a!, stateCodec.encode({ n: 1 })]] })
    const deadline = Date.now() + 10_000
    while (syncTime(env) === idle) {
      assert.ok(Date.now() < deadline, 'no background flush within 10 s of a commit (interval 5 ms)')
      await sleep(5)
    }
    // flushed and clean again: later ticks do not sync
    await sleep(60)
    const settled = syncTime(env)
    await sleep(60)
    assert.equal(syncTime(env), settled, 'no flush while nothing was written')
  } finally {
    await store.close()
    await env.close()
  }
})

test("a host with durability 'os': its workers' commands are acknowledged with no sync at all (flushIntervalMs reaches them), and close() flushes", async () => {
  const dataDir = tempDataDir()
  const env = metered(dataDir, 'os')
  const host = await durableHost(dataDir, { durability: 'os', flushIntervalMs: kHour })
  let closed = false
  try {
    const before = syncTime(env)
    for (let i = 0; i < 20; i++) assert.equal(await host.ref('tally', `k${i}`).call('bump'), 1)
    assert.equal(syncTime(env), before, 'every call was acknowledged and LMDB has not synced')
    // with the default period (1000 ms) a worker would have flushed by now
    await sleep(1500)
    assert.equal(syncTime(env), before, "the workers' stores flush every hour, as asked")
    await host.close()
    closed = true
    assert.ok(syncTime(env) > before, 'closing the host flushed')
  } finally {
    if (!closed) await host.close()
    await env.close()
  }
})

test('one process cannot hold one directory in both modes (StorageError); one after the other, either way, keeps the data', async () => {
  const path = tempDataDir()
  const [a, b] = idsInShard(S, 'kv', 2)
  let os = new LmdbStore({ path, durability: 'os' })
  await os.commit({ states: [[a!, stateCodec.encode({ n: 1 })]] })
  assert.throws(() => new LmdbStore({ path, durability: 'disk' }), { code: 'SHOAL_ERR_STORAGE', data: { dataDir: path, durability: 'disk' } })
  await os.close()

  const disk = new LmdbStore({ path, durability: 'disk' })
  assert.deepEqual(stateCodec.decode(disk.getState(a!)!), { n: 1 })
  await disk.commit({ states: [[b!, stateCodec.encode({ n: 2 })]] })
  assert.throws(() => new LmdbStore({ path, durability: 'os' }), { code: 'SHOAL_ERR_STORAGE', data: { dataDir: path, durability: 'os' } })
  await disk.close()

  os = new LmdbStore({ path, durability: 'os' })
  assert.deepEqual(stateCodec.decode(os.getState(b!)!), { n: 2 })
  await os.close()

  // a host refuses it the same way, as an open failure of its store
  const store = new LmdbStore({ path, durability: 'disk' })
  try {
    await assert.rejects(createHost({ agents: durableAgentsUrl, workers: 0, dataDir: path, durability: 'os' }), { code: 'SHOAL_ERR_STORAGE' })
  } finally {
    await store.close()
  }
})

function invalidFlushInterval (err: unknown): boolean {
  const e = err as { code?: string, data?: { option?: string } }
  return e.code === 'SHOAL_ERR_INVALID_OPTION' && e.data?.option === 'flushIntervalMs'
}

test('flushIntervalMs is validated: an integer from 1 to 3,600,000 ms, with durability os only', async () => {
  const dataDir = tempDataDir()
  for (const bad of [0, -1, 1.5, 3_600_001, '1000', Number.NaN]) {
    await assert.rejects(createHost({ agents: durableAgentsUrl, workers: 0, dataDir, durability: 'os', flushIntervalMs: bad as never }),
      invalidFlushInterval, String(bad))
  }
  await assert.rejects(createHost({ agents: durableAgentsUrl, workers: 0, dataDir, flushIntervalMs: 100 }),
    { code: 'SHOAL_ERR_INVALID_OPTION', data: { option: 'flushIntervalMs', value: 100 } }, 'default durability (disk)')
  await assert.rejects(createHost({ agents: durableAgentsUrl, workers: 0, dataDir, durability: 'disk', flushIntervalMs: 100 }),
    invalidFlushInterval)
  await assert.rejects(createHost({ agents: durableAgentsUrl, workers: 0, flushIntervalMs: 100 }), { code: 'SHOAL_ERR_INVALID_OPTION' }, 'no dataDir')
  assert.throws(() => new LmdbStore({ path: dataDir, durability: 'os', flushIntervalMs: 0 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
  const host = await createHost({ agents: durableAgentsUrl, workers: 0, dataDir, durability: 'os', flushIntervalMs: 250 })
  assert.equal(await host.ref('account', 'a').call('fund', 3), 3)
  await host.close()
})

const childUrl = new URL('../fixtures/durable-child.js', import.meta.url)

/** Every acknowledged bump of the child's run is in the host opened on its data afterwards. */
async function assertAcknowledgedKept (dataDir: string, lines: readonly string[], durability: Durability): Promise<void> {
  const acked = acknowledgedTallies(lines)
  const host = await durableHost(dataDir, { durability })
  try {
    for (const [key, n] of acked) {
      const stored = await host.ref('tally', key).call('get')
      // the call in flight at the kill may have committed without its reply getting out
      assert.ok(stored === n || stored === n + 1, `${key}: acknowledged ${n}, stored ${stored}`)
    }
  } finally {
    await host.close()
  }
}

test("kill -9 of a host with durability 'os' (no flush during its run): every acknowledged command is there, reopened 'disk'", async () => {
  const dataDir = tempDataDir()
  const lines = await runAndKill(childUrl, [dataDir, 'tally', '3', 'os'], between(prng(3), 300, 2000))
  await assertAcknowledgedKept(dataDir, lines, 'disk')
})

test("kill -9 of a host with durability 'disk', reopened 'os': every acknowledged command is there", async () => {
  const dataDir = tempDataDir()
  const lines = await runAndKill(childUrl, [dataDir, 'tally', '4'], between(prng(4), 300, 2000))
  await assertAcknowledgedKept(dataDir, lines, 'os')
})

test("'os': after a failed flush (an fsync error) commits and replica applies are refused, nothing of them written, until a flush succeeds", async () => {
  const path = tempDataDir()
  const store = new LmdbStore({ path, durability: 'os', flushIntervalMs: kHour })
  const env = (store as unknown as { env: { sync (cb: (err?: unknown) => void): void } }).env
  const sync = env.sync
  try {
    const [a, b] = idsInShard(S, 'kv', 2)
    await store.commit({ states: [[a!, stateCodec.encode({ n: 1 })]] })
    // the disk fails the next fsync, as EIO or a full disk would
    env.sync = (cb) => { setImmediate(() => cb(new Error('EIO: i/o error, fsync'))) }
    await assert.rejects(store.flush(), /EIO/)
    await assert.rejects(store.commit({ states: [[b!, stateCodec.encode({ n: 2 })]] }), (err: unknown) => {
      const e = err as { code?: string, message?: string }
      return e.code === 'SHOAL_ERR_STORAGE' && /flush .* failed \(EIO/.test(e.message ?? '')
    })
    assert.equal(store.getState(b!), undefined, 'the refused commit wrote nothing')
    assert.throws(() => store.queueReplicated([{ shard: S, segment: segment(b!, 3) }]), { code: 'SHOAL_ERR_STORAGE' }, "nor is a replica's apply acknowledged")
    assert.equal(store.getState(b!), undefined, 'the refused apply wrote nothing')
    await assert.rejects(store.flush(), /EIO/, 'still failing: still refused')
    await assert.rejects(store.commit({ states: [[b!, stateCodec.encode({ n: 2 })]] }), { code: 'SHOAL_ERR_STORAGE' })
    env.sync = sync
    await store.flush()
    await store.commit({ states: [[b!, stateCodec.encode({ n: 2 })]] })
    assert.deepEqual(stateCodec.decode(store.getState(b!)!), { n: 2 }, 'a flush succeeded: commits resume')
    assert.deepEqual(stateCodec.decode(store.getState(a!)!), { n: 1 })
  } finally {
    env.sync = sync
    await store.close()
  }
})
