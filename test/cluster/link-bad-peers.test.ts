/**
 * Bad peers never crash a host: each is refused (socket closed, with the reason in the
 * close frame), counted by reason in `stats().refused` and logged once per reason, and
 * the hub's good links keep working. The bad peers are raw `ws` clients and raw TCP
 * sockets speaking (or mangling) the link protocol, and fake acceptors for the dialing
 * side — all on 127.0.0.1.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import type { LinkHub } from '../../plugins/cluster/link/index.ts'
import { CTRL_CHALLENGE, CTRL_HELLO, CTRL_PROOF, CTRL_READY, CTRL_WELCOME, LINK_PATH, LINK_PROTOCOL, decodeControlBody, encodeControl, firstWord } from '../../plugins/cluster/link/wire.ts'
import { newNonce, proof } from '../../plugins/cluster/link/handshake.ts'
import { Received, SECRET, addressOf, logger, startHub, until, writeFrames, type Logged } from './link-helpers.ts'

const MAX_BATCH = 64 * 1024

/** A raw WebSocket peer that speaks as much of the protocol as a test wants. */
class RawPeer {
  readonly ws: WebSocket
  readonly closed: Promise<{ code: number, reason: string }>
  private readonly inbox: Buffer[] = []
  private wake: (() => void) | null = null

  constructor (port: number) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}${LINK_PATH}`)
    this.ws.on('error', () => {})
    this.ws.on('message', (data: Buffer) => { this.inbox.push(data); this.wake?.() })
    this.closed = new Promise((resolve) => { this.ws.on('close', (code, reason) => { resolve({ code, reason: reason.toString() }) }) })
  }

  static async open (port: number): Promise<RawPeer> {
    const p = new RawPeer(port)
    await new Promise((resolve, reject) => { p.ws.once('open', resolve); p.ws.once('error', reject) })
    return p
  }

  send (data: Uint8Array | string): void {
    this.ws.send(data)
  }

  async next (): Promise<Buffer> {
    while (this.inbox.length === 0) await new Promise<void>((resolve) => { this.wake = resolve })
    return this.inbox.shift()!
  }

  /** HELLO, CHALLENGE; answers with a proof over `secret`. Resolves with the acceptor's reply, if any. */
  async handshake (o: { from: string, to: string, secret?: string, hello?: object, v?: number, maxBatchBytes?: number }): Promise<unknown> {
    const nonce = newNonce()
    this.send(encodeControl(CTRL_HELLO, { v: o.v ?? LINK_PROTOCOL, from: o.from, to: o.to, nonce, maxBatchBytes: o.maxBatchBytes ?? MAX_BATCH }))
    const challenge = await Promise.race([this.next(), this.closed.then(() => null)])
    if (challenge === null) return null
    assert.equal(firstWord(challenge), CTRL_CHALLENGE)
    const c = decodeControlBody(challenge) as { nonce: Uint8Array }
    const key = Buffer.from(o.secret ?? SECRET)
    this.send(encodeControl(CTRL_PROOF, { proof: proof(key, 'dialer', o.from, o.to, nonce, c.nonce), hello: o.hello ?? { cluster: 'test' } }))
    const welcome = await Promise.race([this.next(), this.closed.then(() => null)])
    if (welcome === null) return null
    assert.equal(firstWord(welcome), CTRL_WELCOME)
    this.send(encodeControl(CTRL_READY, {}))
    return decodeControlBody(welcome)
  }
}

/** Expect the hub to refuse for `reason`: the socket closes (with that reason, when a close frame is sent) and the count grows. */
async function refused (hub: LinkHub, reason: string, peer: RawPeer | null, act: () => unknown): Promise<void> {
  const before = hub.stats().refused[reason as 'garbage'] ?? 0
  await act()
  if (peer !== null) {
    const { code, reason: text } = await peer.closed
    if (code === 4000) assert.ok(text.startsWith(`${reason}:`), `closed with ${JSON.stringify(text)}, expected ${reason}`)
  }
  await until(`a '${reason}' refusal`, () => (hub.stats().refused[reason as 'garbage'] ?? 0) === before + 1)
}

function loggedOnce (log: Logged, reason: string): void {
  assert.equal(log.lines.filter((l) => l.includes(`: ${reason} (`)).length, 1, `'${reason}' logged once`)
}

test('bad peers before authentication: refused by reason, counted, logged once, the host unharmed', async () => {
  const log = logger()
  const m = await startHub('m', { maxBatchBytes: MAX_BATCH, handshakeTimeoutMs: 150, logger: log })
  const a = await startHub('a', { maxBatchBytes: MAX_BATCH })
  const port = m.address!.port
  const rm = new Received(m)
  try {
    a.connect('m', addressOf(m))
    m.connect('a', addressOf(a))
    m.connect('c', '127.0.0.1:1') // a member that has not dialed yet
    await until('a real link', () => m.isUp('a'))

    for (let i = 0; i < 2; i++) {
      const p = await RawPeer.open(port)
      await refused(m, 'garbage', p, () => { p.send(Buffer.from([1, 2, 3])) })
    }
    loggedOnce(log, 'garbage')
    let p = await RawPeer.open(port)
    await refused(m, 'garbage', p, () => { p.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xc1])) }) // -1, then a byte msgpack never uses
    p = await RawPeer.open(port)
    await refused(m, 'garbage', p, () => { p.send(encodeControl(CTRL_HELLO, { v: 1, from: 5 })) })
    p = await RawPeer.open(port)
    await refused(m, 'garbage', p, () => { p.send(new Uint8Array(16)) }) // a batch of empty frames, before auth
    p = await RawPeer.open(port)
    await refused(m, 'garbage', p, () => { p.send(encodeControl(CTRL_WELCOME, { hello: {} })) }) // the wrong step
    p = await RawPeer.open(port)
    await refused(m, 'not-binary', p, () => { p.send('hello?') })
    p = await RawPeer.open(port)
    await refused(m, 'oversize', p, () => { p.send(Buffer.alloc(MAX_BATCH + 1)) }) // uWS maxPayloadLength
    p = await RawPeer.open(port)
    await refused(m, 'oversize', p, () => { p.send(encodeControl(CTRL_HELLO, { pad: 'x'.repeat(20_000) })) }) // our control limit
    p = await RawPeer.open(port)
    await refused(m, 'wrong-host', p, async () => await p.handshake({ from: 'a', to: 'n' }))
    p = await RawPeer.open(port)
    await refused(m, 'wrong-direction', p, async () => await p.handshake({ from: 'z', to: 'm' }))
    p = await RawPeer.open(port)
    await refused(m, 'protocol', p, async () => await p.handshake({ from: 'a', to: 'm', v: 99 }))
    p = await RawPeer.open(port)
    await refused(m, 'protocol', p, async () => await p.handshake({ from: 'a', to: 'm', maxBatchBytes: 1024 }))
    p = await RawPeer.open(port)
    await refused(m, 'bad-auth', p, async () => await p.handshake({ from: 'c', to: 'm', secret: 'another-secret-0123456789abcdef-012345' }))
    p = await RawPeer.open(port)
    await refused(m, 'bad-auth', p, async () => {
      p.send(encodeControl(CTRL_HELLO, { v: LINK_PROTOCOL, from: 'c', to: 'm', nonce: newNonce(), maxBatchBytes: MAX_BATCH }))
      await p.next()
      p.send(encodeControl(CTRL_PROOF, { proof: 'not a proof', hello: {} }))
    })
    loggedOnce(log, 'bad-auth')
    p = await RawPeer.open(port)
    await refused(m, 'unknown-peer', p, async () => await p.handshake({ from: 'b', to: 'm' }))
    p = await RawPeer.open(port)
    await refused(m, 'duplicate', p, async () => await p.handshake({ from: 'a', to: 'm' }))
    p = await RawPeer.open(port)
    await refused(m, 'hello-mismatch', p, async () => await p.handshake({ from: 'c', to: 'm', hello: { cluster: 'another' } }))
    assert.ok(log.lines.some((l) => l.includes('hello.cluster differs: ours "test", theirs "another"')))
    p = await RawPeer.open(port)
    await refused(m, 'handshake-timeout', p, () => {})

    // raw TCP: WebSocket framing broken right after the upgrade; a plain HTTP request; bytes that are not HTTP
    await refused(m, 'aborted', null, async () => {
      const s = net.connect(port, '127.0.0.1')
      s.on('error', () => {})
      s.write(`GET ${LINK_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`)
      await new Promise((resolve) => s.once('data', resolve))
      s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]))
      await new Promise((resolve) => s.once('close', resolve))
    })
    await refused(m, 'not-websocket', null, async () => {
      const res = await fetch(`http://127.0.0.1:${port}/`)
      assert.equal(res.status, 404)
    })
    const junk = net.connect(port, '127.0.0.1')
    junk.on('error', () => {})
    junk.write(Buffer.from('\x00\x01\x02 not http at all\r\n\r\n'))

    // the real link never noticed
    writeFrames(a.writer('m'), 0, 2_000)
    await until('frames over the real link', () => rm.from('a') === 2_000)
    assert.equal(m.stats().peers.find((x) => x.id === 'a')!.ups, 1)
    const refusedNow = m.stats().refused
    assert.deepEqual(Object.keys(refusedNow).sort(), ['aborted', 'bad-auth', 'duplicate', 'garbage', 'handshake-timeout', 'hello-mismatch', 'not-binary',
      'not-websocket', 'oversize', 'protocol', 'unknown-peer', 'wrong-direction', 'wrong-host'])
    assert.equal(log.lines.length, Object.keys(refusedNow).length, log.lines.join('\n'))
    junk.destroy()
  } finally {
    await a.close()
    await m.close()
  }
})

test('bad peers after authentication: a garbage batch, a text message, an oversize message take the link down, and it comes back', async () => {
  const m = await startHub('m', { maxBatchBytes: MAX_BATCH })
  const downs: string[] = []
  m.on('down', (peer, info) => { downs.push(`${peer}:${info.reason}`) })
  try {
    m.connect('c', '127.0.0.1:1')
    for (const [reason, bytes] of [
      ['bad-batch', new Int32Array([8, 1, 2, 40, 7]).buffer], // the second frame claims 40 bytes that are not there
      ['bad-batch', new Int32Array([4, 1, -8, 0, 0]).buffer], // a skip marker never travels
      ['bad-batch', Buffer.from([0, 0, 0, 0, 9])], // not a multiple of 4
      ['not-binary', 'text'],
      ['oversize', Buffer.alloc(MAX_BATCH + 4)]
    ] as const) {
      const p = await RawPeer.open(m.address!.port)
      assert.deepEqual(await p.handshake({ from: 'c', to: 'm' }), { hello: { cluster: 'test' } })
      await until('c up', () => m.isUp('c'))
      await refused(m, reason, p, () => { p.send(typeof bytes === 'string' ? bytes : new Uint8Array(bytes)) })
      await until('c down', () => !m.isUp('c'))
    }
    assert.deepEqual(downs, ['c:bad-batch', 'c:bad-batch', 'c:bad-batch', 'c:not-binary', 'c:oversize'])
    assert.equal(m.stats().peers[0]!.ups, 5)
  } finally {
    await m.close()
  }
})

test('the dialing side refuses an acceptor with the wrong secret, garbage or an oversize message, and keeps redialing', async () => {
  const behaviours = ['bad-proof', 'garbage', 'oversize'] as const
  for (const behaviour of behaviours) {
    const fake = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    let attempts = 0
    fake.on('connection', (ws) => {
      attempts++
      ws.on('error', () => {})
      ws.on('message', (data: Buffer) => {
        const hello = decodeControlBody(data) as { nonce: Uint8Array, from: string, to: string }
        if (behaviour === 'bad-proof') {
          const nonce = newNonce()
          ws.send(encodeControl(CTRL_CHALLENGE, { nonce, proof: proof(Buffer.from('x'.repeat(32)), 'acceptor', hello.from, hello.to, hello.nonce, nonce), maxBatchBytes: MAX_BATCH }))
        } else if (behaviour === 'garbage') {
          ws.send(Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xc1]))
        } else {
          ws.send(Buffer.alloc(MAX_BATCH + 100))
        }
      })
    })
    await new Promise((resolve) => fake.once('listening', resolve))
    const log = logger()
    const a = await startHub('a', { maxBatchBytes: MAX_BATCH, logger: log })
    let up = false
    a.on('up', () => { up = true })
    try {
      a.connect('z', `127.0.0.1:${(fake.address() as net.AddressInfo).port}`)
      const reason = behaviour === 'bad-proof' ? 'bad-auth' : behaviour
      await until(`${behaviour}: refused twice`, () => (a.stats().refused[reason] ?? 0) >= 2 && attempts >= 2)
      assert.equal(up, false)
      loggedOnce(log, reason)
      assert.match(a.stats().peers[0]!.lastError ?? '', new RegExp(reason))
    } finally {
      await a.close()
      await new Promise((resolve) => { fake.close(resolve); for (const c of fake.clients) c.terminate() })
    }
  }
})

test('a host with another secret is refused by its own proof check and never links', async () => {
  const m = await startHub('m')
  const a = await startHub('a', { secret: 'a-different-secret-of-enough-bytes-1234' })
  let up = false
  a.on('up', () => { up = true })
  m.on('up', () => { up = true })
  try {
    a.connect('m', addressOf(m))
    m.connect('a', addressOf(a))
    await until('refused twice', () => (a.stats().refused['bad-auth'] ?? 0) >= 2 && (m.stats().refused.aborted ?? 0) >= 2)
    assert.equal(up, false)
    assert.equal(m.stats().refused['bad-auth'], undefined, 'the acceptor never saw a proof: the dialer stopped first')
  } finally {
    await a.close()
    await m.close()
  }
})

test('a dialer that refuses the acceptor\'s hello: the acceptor never reports the link up', async () => {
  // the default check compares only our own keys: here only the dialer has one the other lacks
  const m = await startHub('m', { hello: { cluster: 'test' } })
  const a = await startHub('a', { hello: { cluster: 'test', registry: 'v2' } })
  const ups: string[] = []
  a.on('up', (p) => { ups.push(`a<-${p}`) })
  m.on('up', (p) => { ups.push(`m<-${p}`) })
  m.on('down', (p) => { ups.push(`m-x-${p}`) })
  try {
    a.connect('m', addressOf(m))
    m.connect('a', addressOf(a))
    await until('refused twice', () => (a.stats().refused['hello-mismatch'] ?? 0) >= 2)
    assert.deepEqual(ups, [])
    assert.match(a.stats().peers[0]!.lastError ?? '', /hello.registry differs: ours "v2", theirs undefined/)
    assert.ok((m.stats().refused.aborted ?? 0) >= 1)
  } finally {
    await a.close()
    await m.close()
  }
})
