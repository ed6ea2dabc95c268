/**
 * The read-only hooks the dashboard stands on: `host.inspect(...)` (where an agent lives,
 * whether it is resident, its committed state, storage keys and reminders — and that
 * looking never activates it), the per-thread counters `host.stats()` gained
 * (activations, messages sent, commit latency buckets) and the call-latency window a
 * plugin can open. Real worker threads, a real LMDB directory.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import type { HostPlugin, PluginHost } from '../../src/host/plugin.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { LATENCY_BOUNDS_MS } from '../../native-free-core/runtime/commit-stats.ts'

const agents = new URL('../fixtures/inspect-agents.js', import.meta.url)

function home (type: string, key: string, workers: number, quota = 'default'): { shard: number, thread: number } {
  const shard = shardOf(hashId(idString(quota, type, key)))
  return { shard, thread: workers === 0 ? 0 : 1 + (shard % workers) }
}

let host: Host
let dir: string
let plugin: PluginHost | undefined
const spy: HostPlugin = { name: 'spy', setup (h) { plugin = h } }

describe('one host, two workers, LMDB', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-inspect-'))
    host = await createHost({ agents, workers: 2, dataDir: dir, plugins: [spy] })
  })

  after(async () => {
    await host?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('inspect: where an agent lives, its committed state, storage keys and reminders', async () => {
    const ledger = host.ref('ledger', 'L1')
    const before = Date.now()
    for (const key of ['b', 'a', 'c']) await ledger.call('put', { key, value: { key } })
    const seen = await host.inspect('ledger', 'L1')
    assert.deepEqual(seen.id, { quota: 'default', type: 'ledger', key: 'L1' })
    assert.deepEqual({ shard: seen.shard, thread: seen.thread }, home('ledger', 'L1', 2))
    assert.equal(seen.served, true)
    assert.equal(seen.active, true)
    assert.equal(seen.busy, false)
    assert.equal(seen.stateFrom, 'store')
    assert.deepEqual(seen.state, { entries: 3, owner: '' })
    assert.ok(seen.stateBytes > 0)
    assert.deepEqual(seen.storageKeys, ['a', 'b', 'c'])
    assert.equal(seen.moreStorageKeys, false)
    assert.equal(seen.reminders.length, 1)
    const r = seen.reminders[0]!
    assert.equal(r.name, 'audit')
    assert.equal(r.everyMs, 86_400_000)
    assert.ok(r.dueAt >= before + 86_400_000 - 2_000 && r.dueAt <= Date.now() + 86_400_000 + 2_000, `due in a day (${r.dueAt - Date.now()} ms)`)
    assert.equal(seen.error, null)

    const two = await host.inspect('ledger', 'L1', { storageKeys: 2 })
    assert.deepEqual(two.storageKeys, ['a', 'b'])
    assert.equal(two.moreStorageKeys, true)
  })

  test('inspect never activates; a memory-only type shows its resident state; bad input is refused', async () => {
    const active = host.stats().activeAgents
    const fresh = await host.inspect('counter', 'never-seen')
    assert.equal(fresh.active, false)
    assert.equal(fresh.stateFrom, null)
    assert.equal(fresh.state, undefined)
    assert.deepEqual(fresh.storageKeys, [])
    assert.deepEqual(fresh.reminders, [])
    assert.equal(host.stats().activeAgents, active, 'nothing was activated')
    assert.equal((await host.inspect('counter', 'never-seen')).active, false)

    // an unknown quota is read, not refused: its agents may still be stored
    assert.equal((await host.inspect('counter', 'k', { quota: 'nobody' })).stateFrom, null)

    // a memory-only type: its resident state, since there is no stored one
    await host.ref('memo', 'm').call('note', 'hello')
    const memo = await host.inspect('memo', 'm')
    assert.equal(memo.stateFrom, 'memory')
    assert.deepEqual(memo.state, { notes: ['hello'] })

    await assert.rejects(host.inspect('nosuch', 'k'), { code: 'SHOAL_ERR_UNKNOWN_AGENT_TYPE' })
    await assert.rejects(host.inspect('counter', '\ud800'), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await assert.rejects(host.inspect('counter', 'k', { storageKeys: -1 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
  })

  test('stats count activations, messages sent and commit latencies per thread', async () => {
    const sum = (f: (w: ReturnType<Host['stats']>['workers'][number]) => number): number => host.stats().workers.reduce((n, w) => n + f(w), 0)
    const [activations, sent] = [sum((w) => w.activations), sum((w) => w.sent)]
    const keys = Array.from({ length: 60 }, (_, i) => `c${i}`)
    await Promise.all(keys.map((k) => host.ref('counter', k).call('add', 1)))
    await Promise.all(keys.map((k) => host.ref('counter', k).call('get')))
    assert.equal(sum((w) => w.activations) - activations, 60, 'each agent activated once')
    assert.equal(sum((w) => w.sent) - sent, 120, 'one reply per call')
    const workers = host.stats().workers
    // the resident agents' ids are in each thread's id arena, 1 MiB chunks that no
    // process.memoryUsage() figure counts: the stats do
    for (const w of workers) if (w.activeAgents > 0) assert.ok(w.idArenaBytes >= 1 << 20 && w.idArenaBytes % (1 << 20) === 0, `thread ${w.thread}: ${w.idArenaBytes} B of ids`)
    for (const w of workers) {
      assert.equal(w.commitLatencyBuckets.length, LATENCY_BOUNDS_MS.length + 1)
      assert.ok(w.commitLatencyBuckets.reduce((a, b) => a + b, 0) <= w.commits)
    }
    assert.ok(sum((w) => w.commitLatencyBuckets.reduce((a, b) => a + b, 0)) > 0, 'durable commits were timed')
  })

  test('a plugin\'s call-latency window measures round trips only while it is open', async () => {
    const ref = host.ref('counter', 'lat')
    await ref.call('add', 1)
    const window = plugin!.callLatency()
    assert.equal(window.take().count, 0, 'calls before the window are not in it')
    for (let i = 0; i < 50; i++) await ref.call('get')
    const w = window.take()
    assert.equal(w.count, 50)
    assert.ok(w.p50Us > 0 && w.p99Us >= w.p50Us && w.maxUs >= w.p99Us, JSON.stringify(w))
    assert.equal(window.take().count, 0, 'take() starts a new window')
    window.close()
    await ref.call('get')
    assert.equal(window.take().count, 0, 'a closed window measures nothing')
    assert.deepEqual(plugin!.quotaList().map((q) => q.quota), ['default'])
    assert.equal((await plugin!.inspect('counter', 'lat')).active, true)
  })
})

test('inspect with workers: 0 reads the main thread\'s own runtime and memory store', async () => {
  const host = await createHost({ agents, workers: 0 })
  try {
    await host.ref('counter', 'z').call('add', 7)
    const seen = await host.inspect('counter', 'z')
    assert.equal(seen.thread, 0)
    assert.equal(seen.active, true)
    assert.equal(seen.stateFrom, 'store')
    assert.deepEqual(seen.state, { n: 7 })
  } finally {
    await host.close()
  }
  await assert.rejects(host.inspect('counter', 'z'), { code: 'SHOAL_ERR_HOST_CLOSED' })
})
