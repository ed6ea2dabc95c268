/**
 * The host's side of the cluster (src/host/gateway.ts), with two real hosts in one
 * process joined by a test router that passes frames by direct calls
 * (test/fixtures/twin-router.ts): routing to the host that serves a shard, replies and
 * follow states back through proxies, ctx.send across hosts, and shard moves that keep
 * every message and its order.
 */
import { test } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { agentsUrl } from './helpers.ts'
import { move, twins } from '../fixtures/twin-router.ts'
import type { Twin } from '../fixtures/twin-router.ts'

function shardOfAgent (type: string, key: string): number {
  return shardOf(hashId(idString('default', type, key)))
}

/**
 * Two twins; with `shared`, one LMDB data directory for both (one process shares one
 * environment), so a moved shard's records are where the new owner reads them.
 */
async function pair (workers = 2, shared = false): Promise<{ a: Host, b: Host, ta: Twin, tb: Twin, close: () => Promise<void> }> {
  const [ta, tb] = twins((s) => (s % 2) as 0 | 1)
  const dir = shared ? mkdtempSync(join(tmpdir(), 'shoal-twins-')) : null
  const data = dir === null ? {} : { dataDir: dir }
  const a = await createHost({ agents: agentsUrl, workers, plugins: [ta], ...data })
  const b = await createHost({ agents: agentsUrl, workers, plugins: [tb], ...data })
  return {
    a, b, ta, tb,
    close: async () => {
      await Promise.all([a.close(), b.close()])
      if (dir !== null) rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Keys of `type` whose shard is served by twin `index` (even shards: 0, odd: 1). */
function keysOn (index: number, type: string, n: number, prefix = 'k'): string[] {
  const keys: string[] = []
  for (let i = 0; keys.length < n; i++) if (shardOfAgent(type, `${prefix}${i}`) % 2 === index) keys.push(`${prefix}${i}`)
  return keys
}

test('calls and casts reach agents on the other host, replies come back, from both sides', async () => {
  for (const workers of [2, 0]) {
    const { a, b, ta, tb, close } = await pair(workers)
    try {
      const there = keysOn(1, 'counter', 20)
      const here = keysOn(0, 'counter', 20)
      for (const k of there) a.ref('counter', k).cast('add', 2)
      const sums = await Promise.all(there.map((k) => a.ref('counter', k).call('add', 1)))
      assert.deepEqual(sums, there.map(() => 3), `workers: ${workers}`)
      // the same agents from the host that serves them: one agent, one state
      assert.deepEqual(await Promise.all(there.map((k) => b.ref('counter', k).call('get'))), there.map(() => 3))
      assert.deepEqual(await Promise.all(here.map((k) => b.ref('counter', k).call('add', 5))), here.map(() => 5))
      assert.deepEqual(await Promise.all(here.map((k) => a.ref('counter', k).call('get'))), here.map(() => 5))
      assert.ok(ta.routed >= 40 && tb.routed >= 20, `frames went through the routers (${ta.routed}, ${tb.routed})`)
      // errors cross too, typed
      await assert.rejects(a.ref('counter', there[0]!).call('nope' as never), { code: 'SHOAL_ERR_UNKNOWN_METHOD' })
    } finally {
      await close()
    }
  }
})

test('ctx.send chains hop between hosts and arrive in order per sender', async () => {
  const { a, b, close } = await pair()
  try {
    const report = { type: 'sink', key: 'report' }
    // hop h0 → h1 → … → h29: the keys land on both hosts
    await a.ref('hop', 'h0').call('pass', { path: [], left: 29, report })
    let paths: string[][] = []
    for (let i = 0; i < 200 && paths.length === 0; i++) {
      paths = await b.ref('sink', 'report').call('paths') as string[][]
      if (paths.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    assert.deepEqual(paths, [Array.from({ length: 30 }, (_, i) => `h${i}`)])
    // per-sender order across hosts: a recorder on the other host sees a's casts in order
    const rec = keysOn(1, 'recorder', 1)[0]!
    for (let i = 0; i < 500; i++) a.ref('recorder', rec).cast('record', ['a', i])
    const seen = await a.ref('recorder', rec).call('seen') as Array<[string, number]>
    assert.deepEqual(seen.map(([, i]) => i), Array.from({ length: 500 }, (_, i) => i))
  } finally {
    await close()
  }
})

test('follow an agent on the other host: its committed states arrive', async () => {
  const { a, b, close } = await pair()
  try {
    const key = keysOn(1, 'counter', 1)[0]!
    const it = a.ref('counter', key).follow()[Symbol.asyncIterator]()
    assert.deepEqual((await it.next()).value, { n: 0 })
    await b.ref('counter', key).call('add', 4)
    assert.deepEqual((await it.next()).value, { n: 4 })
    await a.ref('counter', key).call('add', 1)
    assert.deepEqual((await it.next()).value, { n: 5 })
    await it.return!()
  } finally {
    await close()
  }
})

test('a shard moves to the other host: no message lost, none reordered, callers see no error', async () => {
  const { a, b, ta, close } = await pair(2, true)
  try {
    // recorders on a's shards; a steady stream from both hosts while the shards move to b
    const keys = keysOn(0, 'recorder', 8, 'r')
    const shards = [...new Set(keys.map((k) => shardOfAgent('recorder', k)))]
    let i = 0
    const send = (): void => {
      for (const k of keys) {
        a.ref('recorder', k).cast('record', ['a', i])
        b.ref('recorder', k).cast('record', ['b', i])
      }
      i++
    }
    for (let n = 0; n < 50; n++) send()
    const moving = move(ta, shards)
    for (let n = 0; n < 50; n++) {
      send()
      await new Promise((resolve) => setImmediate(resolve))
    }
    await moving
    for (let n = 0; n < 50; n++) send()
    const calls = await Promise.all(keys.map((k) => a.ref('recorder', k).call('seen'))) as Array<Array<[string, number]>>
    for (const seen of calls) {
      for (const who of ['a', 'b']) {
        const mine = seen.filter(([w]) => w === who).map(([, n]) => n)
        assert.deepEqual(mine, Array.from({ length: i }, (_, n) => n), `${who}'s casts, in order, each once`)
      }
    }
    // b serves them now: its own threads run them, a forwards
    for (const s of shards) assert.equal(ta.owner[s], 1)
  } finally {
    await close()
  }
})
