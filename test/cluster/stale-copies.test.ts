/**
 * Effectively-once durable sends between hosts keep their promise when a copy comes late.
 * A receiver keeps the record that it applied a send for `forgetAfterMs` after the sender
 * dropped its outbox record; a copy that arrives after that finds no record and would be
 * applied again. Copies can come that late when something held them — a host stopped
 * (SIGSTOP) with the copy in its memory and resumed, a stalled move's hold — as the chaos
 * test found once (seed 2002, 4 hosts, two fault tracks: a deposit credited twice). So each
 * copy carries the time it was made, and the router drops one older than half of
 * `forgetAfterMs` (its sender, which keeps the record until it is acknowledged, makes a
 * fresh one). Two real hosts, real links and LMDB; the late copy is the very frame the
 * sender sent, replayed into the receiver's router once the receiver forgot it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Buffer } from 'node:buffer'
import { createHost } from '../../src/index.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { MSG_SEND } from '../../native-free-core/agent/envelope.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { copyAgeMs, copyStamp } from '../../src/thread/frame-codec.ts'
import { durableAgentsUrl } from '../durable/helpers.ts'
import { freePort } from '../helpers/etcd.ts'
import { until } from './tenancy-helpers.ts'

const secret = 'a test secret of at least thirty-two bytes!!'
const forgetAfterMs = 400


/** The router's surface this test reaches into: what goes out on a link, and a batch as if from a peer. */
interface RouterInside {
  sendRaw (peer: string, frame: Uint8Array): boolean
  batch (peer: string, bytes: Buffer, i32: Int32Array): void
  staleCopies: number
}
const routerOf = (plugin: unknown): RouterInside => (plugin as { router: RouterInside }).router

/** Hand `frame` to `router` as one link batch from `peer`. */
function replay (router: RouterInside, peer: string, frame: Uint8Array): void {
  const fb = new FrameBuffer()
  fb.push(frame)
  const bytes = fb.bytes
  router.batch(peer, bytes, new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2))
}

test('copy stamps: a durable send frame says how old it is; other frames have no age', () => {
  const frame = Buffer.alloc(40)
  frame[0] = MSG_SEND
  frame.writeInt32LE(1, 16) // an incarnation: durable
  frame.writeUInt32LE(copyStamp(1_000_000), 32)
  assert.equal(copyAgeMs(frame, 1_000_000), 0)
  assert.equal(copyAgeMs(frame, 1_002_500), 2500)
  assert.equal(copyAgeMs(frame, 999_000), 0, 'a sender whose clock runs ahead: age 0, not a huge one')
  // across the stamp's wrap (ms mod 2^32)
  frame.writeUInt32LE(copyStamp(2 ** 32 - 10), 32)
  assert.equal(copyAgeMs(frame, 2 ** 32 + 90), 100)
  frame.writeInt32LE(0, 16) // not durable: no identity, no age
  assert.equal(copyAgeMs(frame, 1_000_000), -1)
})

test('a copy of a durable send older than half of forgetAfterMs is dropped, not applied a second time', async () => {
  const ports = await Promise.all([freePort(), freePort()])
  const list = ports.map((p, i) => `h${i}@127.0.0.1:${p}`)
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'shoal-stale-')))
  const plugins = ports.map((port, i) => cluster({ id: `h${i}`, secret, listen: { port }, membership: { static: list }, forgetAfterMs }))
  const hosts = await Promise.all(ports.map((_, i) => createHost({ agents: durableAgentsUrl, workers: 1, dataDir: dirs[i]!, plugins: [plugins[i]!] })))
  try {
    // a sender on h0 and a receiver on h1
    const keys = Array.from({ length: 64 }, (_, i) => `acct${i}`)
    const on = (h: string): string => keys.find((k) => hosts[0]!.cluster.ownerOf({ type: 'account', key: k }) === h)!
    const from = on('h0')
    const to = on('h1')
    await hosts[0]!.ref('account', from).call('fund', 100)

    // every durable send h0 puts on the link to h1, as its bytes
    const copies: Buffer[] = []
    const out = routerOf(plugins[0])
    const sendRaw = out.sendRaw.bind(out)
    out.sendRaw = (peer, frame) => {
      if (peer === 'h1' && copyAgeMs(frame, Date.now()) >= 0) copies.push(Buffer.from(frame))
      return sendRaw(peer, frame)
    }
    assert.equal(await hosts[0]!.ref('account', from).call('transfer', { amount: 7, path: [to] }), true)
    const receiver = hosts[1]!.ref('account', to)
    await until('the deposit applied', async () => await receiver.call('deposits') === 1, 2_000).catch(() => {}) // asserted below
    assert.equal(await receiver.call('deposits'), 1)
    assert.equal(copies.length, 1, 'one copy crossed the link')

    // acknowledged, the sender's record deleted, and forgetAfterMs later the receiver's applied record forgotten
    const backlog = (): { outbox: number, applied: number } => {
      const s = plugins.map((p) => p.durableBacklog())
      return { outbox: s[0]!.outbox + s[1]!.outbox, applied: s[0]!.applied + s[1]!.applied }
    }
    await until('the send acknowledged and forgotten', () => backlog().outbox === 0 && backlog().applied === 0, 5_000)
    assert.deepEqual(backlog(), { outbox: 0, applied: 0 })

    // the same copy, late (as from a host that stood still with it): dropped
    const late = copies[0]!
    assert.ok(copyAgeMs(late, Date.now()) > forgetAfterMs / 2, 'the copy is older than half of forgetAfterMs by now')
    const into = routerOf(plugins[1])
    replay(into, 'h0', late)
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(await receiver.call('deposits'), 1, 'the late copy was not applied')
    assert.equal(await receiver.call('balance'), 7)
    assert.equal(into.staleCopies, 1)
    assert.equal((hosts[1]!.stats() as unknown as { cluster: { durable: { staleCopies: number } } }).cluster.durable.staleCopies, 1)

    // why it must be dropped: the receiver no longer knows the send, so the same bytes
    // made to look fresh are applied again (what the stamp is there to prevent)
    const fresh = Buffer.from(late)
    fresh.writeUInt32LE(copyStamp(), 32)
    replay(into, 'h0', fresh)
    await until('the fresh-looking copy applied', async () => await receiver.call('deposits') === 2, 2_000).catch(() => {}) // asserted below
    assert.equal(await receiver.call('deposits'), 2, 'a copy the receiver forgot is applied again: only its age tells it apart')
  } finally {
    await Promise.all(hosts.map((h) => h.close()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
})
