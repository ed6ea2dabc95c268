/**
 * Links between hubs on 127.0.0.1: frames arrive in order and byte-exact, batched; the
 * queue holds what is written before a link is up; a cut link goes down (reporting what
 * it dropped) and is redialed; heartbeats find a peer that went silent; backpressure
 * queues and drains. Real sockets throughout; a TCP proxy plays the network.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LinkUnavailableError, MessageTooLargeError, InvalidOptionError, HostClosedError } from '../../native-free-core/errors.ts'
import { LinkHub, type LinkDown } from '../../plugins/cluster/link/index.ts'
import { Received, SECRET, TcpProxy, addressOf, logger, mesh, startHub, until, writeFrames } from './link-helpers.ts'

test('two hubs: thousands of frames each way, FIFO and byte-exact, many per batch, queued before the link is up', async () => {
  const a = await startHub('a')
  const b = await startHub('b')
  const ra = new Received(a)
  const rb = new Received(b)
  const ups: string[] = []
  a.on('up', (peer, hello) => { ups.push(`a<-${peer}:${String(hello.cluster)}`) })
  b.on('up', (peer) => { ups.push(`b<-${peer}`) })
  try {
    mesh([a, b])
    // written at once, before the handshake can have finished: all of it waits in the queue
    writeFrames(a.writer('b'), 0, 5_000)
    writeFrames(b.writer('a'), 0, 5_000)
    assert.equal(a.stats().peers[0]!.queuedFrames, 5_000)
    assert.equal(a.stats().peers[0]!.state, 'connecting')
    await until('the first 5,000 each way', () => rb.from('a') === 5_000 && ra.from('b') === 5_000)
    assert.deepEqual(ups.sort(), ['a<-b:test', 'b<-a'])
    // then over a live link, in several turns
    for (let turn = 0; turn < 10; turn++) {
      writeFrames(a.writer('b'), 5_000 + turn * 1_500, 1_500)
      writeFrames(b.writer('a'), 5_000 + turn * 1_500, 1_500)
      await new Promise((resolve) => setImmediate(resolve))
    }
    await until('20,000 each way', () => rb.from('a') === 20_000 && ra.from('b') === 20_000)
    const sa = a.stats()
    const peer = sa.peers[0]!
    assert.equal(peer.role, 'dial')
    assert.equal(b.stats().peers[0]!.role, 'accept')
    assert.equal(peer.framesOut, 20_000)
    assert.equal(peer.framesIn, 20_000)
    assert.equal(peer.queuedBytes, 0)
    assert.ok(peer.batchesOut < 200, `20,000 frames went in ${peer.batchesOut} batches`)
    assert.equal(rb.batches, b.stats().peers[0]!.batchesIn)
    assert.equal(sa.linksUp, 1)
    assert.deepEqual(sa.refused, {})
    assert.equal(sa.nativeUws, true)
  } finally {
    await a.close()
    await b.close()
  }
})

test('three hubs: one socket per pair (the lower id dials), every pair FIFO both ways', async () => {
  const hubs = await Promise.all(['c', 'a', 'b'].map(async (id) => await startHub(id)))
  const received = hubs.map((h) => new Received(h))
  try {
    mesh(hubs)
    for (let turn = 0; turn < 5; turn++) {
      for (const from of hubs) for (const to of hubs) if (from !== to) writeFrames(from.writer(to.id), turn * 1_000, 1_000)
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await until('5,000 frames on each of 6 directed pairs', () =>
      hubs.every((h, i) => hubs.every((o) => o === h || received[i]!.from(o.id) === 5_000)))
    const roles = Object.fromEntries(hubs.map((h) => [h.id, h.stats().peers.map((p) => `${p.id}:${p.role}`).sort().join(' ')]))
    assert.deepEqual(roles, { a: 'b:dial c:dial', b: 'a:accept c:dial', c: 'a:accept b:accept' })
    for (const h of hubs) for (const p of h.stats().peers) assert.equal(p.ups, 1, `${h.id}-${p.id} came up once`)
  } finally {
    await Promise.all(hubs.map(async (h) => { await h.close() }))
  }
})

test('a cut link goes down on both sides with the queued frames it dropped, then the dialer redials', async () => {
  const b = await startHub('b', { highWaterBytes: 64 * 1024, heartbeatMs: 60_000 })
  const proxy = new TcpProxy(b.address!.port)
  const a = await startHub('a', { highWaterBytes: 64 * 1024, heartbeatMs: 60_000 })
  const rb = new Received(b, 1_024)
  const downs: Array<[string, LinkDown]> = []
  a.on('down', (_peer, info) => { downs.push(['a', info]) })
  b.on('down', (_peer, info) => { downs.push(['b', info]) })
  try {
    a.connect('b', await proxy.start())
    b.connect('a', addressOf(a))
    await until('up', () => a.isUp('b') && b.isUp('a'))
    writeFrames(a.writer('b'), 0, 100, 1_024)
    await until('100 frames', () => rb.from('a') === 100)
    // stall the network until frames wait in a's queue, then cut it
    proxy.pause()
    let seq = 100
    while (a.stats().peers[0]!.writable) {
      writeFrames(a.writer('b'), seq, 256, 1_024)
      seq += 256
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    writeFrames(a.writer('b'), seq, 100, 1_024)
    seq += 100
    const queued = a.stats().peers[0]!.queuedFrames
    assert.ok(queued >= 100)
    proxy.cut()
    proxy.resume()
    await until('down on both sides', () => downs.length === 2)
    const aDown = downs.find(([h]) => h === 'a')![1]
    assert.equal(aDown.reason, 'connection-lost')
    assert.equal(aDown.dropped, queued, 'every queued frame is reported dropped')
    assert.equal(a.stats().peers[0]!.queuedFrames, 0)
    assert.equal(a.stats().peers[0]!.droppedFrames, queued)
    // the dialer comes back by itself; what is written from now on arrives in order
    await until('redialed', () => a.isUp('b') && b.isUp('a'))
    assert.equal(a.stats().peers[0]!.ups, 2)
    rb.skipTo('a', seq)
    writeFrames(a.writer('b'), seq, 500, 1_024)
    await until('frames after the reconnect', () => rb.from('a') === seq + 500)
    assert.equal(proxy.connections, 1)
  } finally {
    await a.close()
    await b.close()
    await proxy.close()
  }
})

test('heartbeats: a peer that goes silent is reported down on both sides after 3 intervals; the link comes back', async () => {
  const b = await startHub('b', { heartbeatMs: 40 })
  const proxy = new TcpProxy(b.address!.port)
  const a = await startHub('a', { heartbeatMs: 40 })
  const downs: string[] = []
  a.on('down', (_peer, info) => { downs.push(`a:${info.reason} ${info.detail}`) })
  b.on('down', (_peer, info) => { downs.push(`b:${info.reason} ${info.detail}`) })
  try {
    a.connect('b', await proxy.start())
    b.connect('a', addressOf(a))
    await until('up', () => a.isUp('b') && b.isUp('a'))
    await until('a heartbeat round trip', () => a.stats().peers[0]!.rttMs >= 0 && b.stats().peers[0]!.rttMs >= 0)
    // heartbeats keep an idle link up
    await new Promise((resolve) => setTimeout(resolve, 250))
    assert.equal(downs.length, 0, downs.join())
    proxy.pause()
    await until('both sides time out', () => downs.length === 2)
    assert.deepEqual(downs.map((d) => d.split(' ')[0]).sort(), ['a:heartbeat-timeout', 'b:heartbeat-timeout'])
    for (const d of downs) assert.ok(Number(/nothing received for (\d+) ms/.exec(d)![1]) >= 3 * 40, d)
    proxy.resume()
    await until('back up', () => a.isUp('b') && b.isUp('a'))
  } finally {
    await a.close()
    await b.close()
    await proxy.close()
  }
})

test('heartbeats estimate how far a peer\'s wall clock is from ours; a peer off by more than clockWarnMs is logged once, and again after it came back', async () => {
  let skewMs = 8_000
  const logA = logger()
  const b = await startHub('b', { heartbeatMs: 20, wallClock: () => Date.now() + skewMs })
  const a = await startHub('a', { heartbeatMs: 20, clockWarnMs: 1_000, logger: logA })
  try {
    a.connect('b', addressOf(b))
    b.connect('a', addressOf(a))
    await until('up', () => a.isUp('b') && b.isUp('a'))
    await until('a clock estimate', () => a.stats().peers[0]!.clockOffsetMs !== null && b.stats().peers[0]!.clockOffsetMs !== null)
    // one machine: the estimates are the skew, give or take half a round trip
    assert.ok(Math.abs(a.stats().peers[0]!.clockOffsetMs! - 8_000) < 200, `a sees b ahead by ${a.stats().peers[0]!.clockOffsetMs}`)
    assert.ok(Math.abs(b.stats().peers[0]!.clockOffsetMs! + 8_000) < 200, `b sees a behind by ${b.stats().peers[0]!.clockOffsetMs}`)
    await new Promise((resolve) => setTimeout(resolve, 100)) // several more heartbeats
    const warned = (): string[] => logA.lines.filter((l) => l.includes("b's clock"))
    assert.equal(warned().length, 1, logA.lines.join('\n'))
    assert.match(warned()[0]!, /b's clock is \d+ ms ahead of ours \(more than 1000 ms\)/)
    skewMs = 0
    await until('back in sync', () => Math.abs(a.stats().peers[0]!.clockOffsetMs!) < 200)
    skewMs = -5_000
    await until('logged again', () => warned().length === 2)
    assert.match(warned()[1]!, /behind ours/)
  } finally {
    await a.close()
    await b.close()
  }
})

test('backpressure both ways: a reader that does not read makes the queue grow and writable false; it drains in order', async () => {
  const opts = { highWaterBytes: 128 * 1024, heartbeatMs: 60_000, maxQueueBytes: 512 * 1024 * 1024 }
  const b = await startHub('b', opts)
  const proxy = new TcpProxy(b.address!.port)
  const a = await startHub('a', opts)
  const ra = new Received(a, 1_024)
  const rb = new Received(b, 1_024)
  const drained: string[] = []
  a.on('drain', (peer) => { drained.push(`a->${peer}`) })
  b.on('drain', (peer) => { drained.push(`b->${peer}`) })
  try {
    a.connect('b', await proxy.start())
    b.connect('a', addressOf(a))
    await until('up', () => a.isUp('b') && b.isUp('a'))
    proxy.pause()
    // a dials (ws client), b accepted (uWS): both kinds of socket fill up
    const sent = { a: 0, b: 0 }
    for (const [hub, peer, key] of [[a, 'b', 'a'], [b, 'a', 'b']] as const) {
      while (hub.stats().peers[0]!.writable) {
        writeFrames(hub.writer(peer), sent[key], 1_024, 1_024)
        sent[key] += 1_024
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      // still accepted, now held in the queue
      const before = hub.stats().peers[0]!
      writeFrames(hub.writer(peer), sent[key], 1_024, 1_024)
      sent[key] += 1_024
      await new Promise((resolve) => setTimeout(resolve, 5))
      const after = hub.stats().peers[0]!
      assert.equal(after.writable, false)
      assert.ok(after.queuedBytes >= before.queuedBytes + 1_024 * 1_028, `${key}: queue grew from ${before.queuedBytes} to ${after.queuedBytes}`)
      assert.ok(after.bufferedBytes > 128 * 1024, `${key}: the socket holds ${after.bufferedBytes} bytes`)
    }
    proxy.resume()
    await until('everything delivered', () => rb.from('a') === sent.a && ra.from('b') === sent.b, 10_000)
    await until('writable again', () => a.stats().peers[0]!.writable && b.stats().peers[0]!.writable)
    assert.deepEqual([...new Set(drained)].sort(), ['a->b', 'b->a'])
    assert.equal(a.stats().peers[0]!.queuedBytes, 0)
    assert.equal(b.stats().peers[0]!.queuedBytes, 0)
    assert.equal(a.stats().peers[0]!.downs, 0)
  } finally {
    await a.close()
    await b.close()
    await proxy.close()
  }
})

test('writes to a peer that is not up wait up to maxQueueBytes, then throw a retriable LinkUnavailableError; disconnect drops them', async () => {
  const log = logger()
  // nothing listens on port 1 of 127.0.0.1: the dialer keeps failing and backing off
  const a = new LinkHub({ id: 'a', secret: SECRET, maxQueueBytes: 64 * 1024, maxBatchBytes: 16 * 1024, flushBytes: 4 * 1024, reconnect: { initialMs: 5, maxMs: 20 }, logger: log })
  try {
    a.connect('b', '127.0.0.1:1')
    const w = a.writer('b')
    let written = 0
    let error: unknown
    try {
      for (;;) { writeFrames(w, written, 1, 1_000); written++ }
    } catch (err) { error = err }
    assert.ok(error instanceof LinkUnavailableError, String(error))
    assert.equal(error.retriable, true)
    assert.deepEqual({ peer: (error.data as { peer: string }).peer, reason: (error.data as { reason: string }).reason }, { peer: 'b', reason: 'backlog' })
    assert.equal(written, Math.floor(64 * 1024 / 1_004))
    assert.throws(() => w.begin(16 * 1024), MessageTooLargeError)
    await until('a few failed dials', () => a.stats().peers[0]!.lastError !== null)
    await new Promise((resolve) => setTimeout(resolve, 60))
    assert.equal(log.lines.filter((l) => l.includes('no link to b')).length, 1, 'an unreachable peer is logged once')
    assert.equal(a.stats().peers[0]!.queuedFrames, written, 'failed dials keep the queue')
    assert.equal(a.disconnect('b'), written)
    assert.throws(() => w.begin(10), (err: unknown) => err instanceof LinkUnavailableError && (err.data as { reason: string }).reason === 'closed')
    assert.deepEqual(a.peerIds(), [])
  } finally {
    await a.close()
  }
  assert.throws(() => { a.connect('b', '127.0.0.1:1') }, HostClosedError)
})

test('bad options name the option and never echo the secret', () => {
  const short = 'short-secret'
  for (const [options, option] of [
    [{ id: 'a', secret: short }, 'secret'],
    [{ id: 'a' }, 'secret'],
    [{ id: '', secret: SECRET }, 'id'],
    [{ id: 'a', secret: SECRET, heartbeatMs: 0 }, 'heartbeatMs'],
    [{ id: 'a', secret: SECRET, flushBytes: 10 }, 'flushBytes'],
    [{ id: 'a', secret: SECRET, listen: { port: 70000 } }, 'listen.port'],
    [{ id: 'a', secret: SECRET, hello: [1] }, 'hello']
  ] as const) {
    assert.throws(() => new LinkHub(options as never), (err: unknown) => {
      assert.ok(err instanceof InvalidOptionError)
      assert.equal((err.data as { option: string }).option, option)
      assert.ok(!err.message.includes(short))
      return true
    })
  }
})

test('a port that is taken fails listen() with InvalidOptionError naming listen', async () => {
  const a = await startHub('a')
  const b = new LinkHub({ id: 'b', secret: SECRET, listen: { port: a.address!.port } })
  try {
    await assert.rejects(b.listen(), (err: unknown) => err instanceof InvalidOptionError && (err.data as { option: string }).option === 'listen')
  } finally {
    await b.close()
    await a.close()
  }
})
