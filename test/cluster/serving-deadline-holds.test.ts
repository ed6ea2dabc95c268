/**
 * A thread past its host's serving deadline starts no turn from what it holds (issue 12:
 * "a host paused past its lease never answers from stale state: it forwards or fails").
 * Frames from a ring were refused past the deadline already (thread-loop.ts, `lapsed`),
 * but two holds of the thread started turns anyway: the messages waiting in a busy
 * agent's mailbox (run when the turn ahead of them ends) and the frames kept for an
 * arriving shard (run on ADOPT). Past the deadline those go to the main thread's router,
 * in order, which forwards them or fails them — here it fails calls, as the cluster's
 * router does for a shard of its own while past the deadline.
 *
 * A real host with one worker; a test router plugin claims the gateway (as the cluster
 * does), serves every shard, sets the deadline (`Gateway.serveUntil`, what the cluster
 * copies from its lease) and records what it is given. The mailbox case is deterministic:
 * the busy turn and the messages behind it are published in one ring write, and the turn
 * holds its thread until after the deadline (test/fixtures/deadline-agents.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Buffer } from 'node:buffer'
import { createHost } from '../../src/index.ts'
import type { Gateway } from '../../src/host/gateway.ts'
import type { HostPlugin, PluginHost } from '../../src/host/plugin.ts'
import { MSG_CALL } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { SHARDS, hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import { ShardUnavailableError } from '../../native-free-core/errors.ts'

const agents = new URL('../fixtures/deadline-agents.js', import.meta.url)

/** Serves every shard; what reaches the router is recorded, and a call there fails (retriable). */
class DeadlineRouter implements HostPlugin {
  readonly name = 'deadline-router'
  readonly routes = true
  gateway!: Gateway
  /** [frame kind, call id] of each frame routed, in order. */
  readonly routed: Array<[number, number]> = []

  setup (host: PluginHost): void {
    this.gateway = host.gateway({ route: (frame) => this.route(frame) })
    this.gateway.serveAtStart(Array.from({ length: SHARDS }, (_, s) => s))
  }

  route (frame: Buffer): void {
    this.routed.push([frame[0]!, frame.readUInt32LE(8)])
    if (frame[0] === MSG_CALL) this.gateway.failCalls([frame.readUInt32LE(8)], () => new ShardUnavailableError('past the serving deadline'))
  }
}

const settle = (p: Promise<unknown>): Promise<string> => p.then((v) => `ok:${String(v)}`, (e: { code?: string }) => `err:${String(e.code)}`)

/** The three calls failed (retriable) and the router got them in the order they were sent. */
async function failedThroughRouter (router: DeadlineRouter, notes: ReadonlyArray<Promise<string>>, why: string): Promise<void> {
  assert.deepEqual(await Promise.all(notes), ['err:SHOAL_ERR_SHARD_UNAVAILABLE', 'err:SHOAL_ERR_SHARD_UNAVAILABLE', 'err:SHOAL_ERR_SHARD_UNAVAILABLE'], why)
  const calls = router.routed.filter(([kind]) => kind === MSG_CALL).map(([, id]) => id)
  assert.equal(calls.length, 3)
  assert.deepEqual(calls, [...calls].sort((x, y) => x - y), 'routed in the order they were sent')
}

test('past the serving deadline, messages waiting in a busy agent\'s mailbox go to the router in order, not run', async () => {
  const router = new DeadlineRouter()
  const host = await createHost({ agents, workers: 1, plugins: [router] })
  try {
    const ref = host.ref('stale', 'm')
    assert.deepEqual(await ref.call('log'), [])
    const deadline = Date.now() + 1_000
    router.gateway.serveUntil(deadline)
    // one ring write: `hold` starts (and yields), the notes wait in the mailbox behind it
    const held = ref.call('hold', deadline + 50)
    const notes = ['a', 'b', 'c'].map((t) => settle(ref.call('note', t)))
    const started = await held as number
    assert.ok(started < deadline, 'the hold started before the deadline (its notes were queued, not refused at the ring)')
    await failedThroughRouter(router, notes, 'the waiting notes failed (retriable) instead of running from possibly stale state')
    router.gateway.serveUntil(0)
    assert.deepEqual(await ref.call('log'), ['hold'], 'none of them ran')
  } finally {
    await host.close()
  }
})

test('past the serving deadline, the frames kept for an arriving shard go to the router on ADOPT, in order, not run', async () => {
  const router = new DeadlineRouter()
  const host = await createHost({ agents, workers: 1, plugins: [router] })
  try {
    const ref = host.ref('stale', 'a')
    const shard = shardOf(hashId(idString('default', 'stale', 'a')))
    await router.gateway.release([shard])
    await router.gateway.arrive([shard])
    const notes = ['a', 'b', 'c'].map((t) => settle(ref.call('note', t)))
    // kept by the home thread (arriving) — a fence through its ring makes sure they are there
    await router.gateway.commitsOf(router.gateway.homeOf(shard))
    router.gateway.serveUntil(Date.now() - 1) // the host stood still past its lease meanwhile
    await router.gateway.adopt([shard], [], () => undefined)
    await failedThroughRouter(router, notes, 'the kept notes failed (retriable) instead of running')
    router.gateway.serveUntil(0)
    assert.deepEqual(await ref.call('log'), [], 'none of them ran')
  } finally {
    await host.close()
  }
})
