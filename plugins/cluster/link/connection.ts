/**
 * One socket between two hosts, from open to close: the handshake (handshake.ts) as
 * dialer or acceptor, then batches and heartbeats once it is up.
 *
 *   acceptor:  await-hello → await-proof → await-ready → up → closed
 *   dialer:    opening → await-challenge → await-welcome → up → closed
 *
 * Anything a peer can send — any bytes, in any order, of any size the socket lets
 * through — ends in one of three places: a handled message, a refusal (counted by
 * reason, socket closed with the reason in the close frame so an honest but
 * misconfigured peer learns why) or, once up, the link going down. Nothing a peer sends
 * throws out of here: the hub's event loop callbacks (uWS's and ws's) must never see
 * an exception caused by the network.
 *
 * A connection learns nothing about peers' state beyond its socket; whether an
 * authenticated id may link (known? already linked?) is the hub's call (`admit`), and
 * so is what `up` and `closed` mean for the peer.
 */
import {
  CLOSE_LINK_DOWN, CLOSE_REFUSED, CTRL_CHALLENGE, CTRL_HELLO, CTRL_PING, CTRL_PONG, CTRL_PROOF, CTRL_READY, CTRL_WELCOME,
  LINK_PROTOCOL, MAX_CONTROL_BYTES, batchFrameCount, decodeControlBody, encodeControl, firstWord
} from './wire.ts'
import { isNonce, newNonce, proof, proofMatches, type Hello } from './handshake.ts'
import type { LinkSocket } from './link-socket.ts'
import type { RefusalReason } from './refusals.ts'
import type { BatchOutput } from './batch-writer.ts'

export type ConnectionState = 'opening' | 'await-hello' | 'await-challenge' | 'await-proof' | 'await-welcome' | 'await-ready' | 'up' | 'closed'

/** What a connection needs from its hub. */
export interface ConnectionHost {
  readonly id: string
  readonly secret: Buffer
  readonly hello: Hello
  readonly maxBatchBytes: number
  readonly highWaterBytes: number
  now (): number
  /** Wall-clock ms (Date.now unless a test skews it). */
  wall (): number
  /** Count and log a refusal (the connection closes itself). */
  refused (conn: Connection, reason: RefusalReason, detail: string): void
  /** May this authenticated peer link? A refusal, or undefined to go ahead. */
  admit (conn: Connection, hello: Hello): { reason: RefusalReason, detail: string } | undefined
  up (conn: Connection, hello: Hello): void
  batch (conn: Connection, u8: Buffer, i32: Int32Array, frames: number): void
  /** A heartbeat's estimate of the peer's wall clock minus ours, ms. */
  clock (conn: Connection, offsetMs: number): void
  /** The socket fell below the low-water mark after backpressure. */
  drained (conn: Connection): void
  /** The connection ended; `wasUp` tells whether `up` was called for it. */
  closed (conn: Connection, wasUp: boolean, reason: string, detail: string): void
}

const MAX_ID_BYTES = 512

export class Connection implements BatchOutput {
  readonly role: 'dial' | 'accept'
  state: ConnectionState
  /** The other host's id: known from the start when dialing, from HELLO when accepting. */
  peerId: string | null
  socket: LinkSocket
  readonly copiesOnSend: boolean
  /** When something was last received (ms, the hub's clock). */
  lastReceived: number
  /** Over the high-water mark: batches wait in the writer until `drained`. */
  backpressured = false
  rttMs = -1
  /** The peer's wall clock minus ours at the last pong, ms (null before the first). */
  clockOffsetMs: number | null = null
  private readonly hub: ConnectionHost
  private readonly nonce = newNonce()
  private theirNonce: Uint8Array | null = null
  /** Acceptor: the dialer's hello, admitted, until READY makes the link up. */
  private peerHello: Hello | null = null
  private handshakeTimer: NodeJS.Timeout | null
  /** Counters of what this connection moved, folded into its peer's on close. */
  framesOut = 0
  batchesOut = 0
  bytesOut = 0

  constructor (hub: ConnectionHost, role: 'dial' | 'accept', peerId: string | null, socket: LinkSocket, handshakeTimeoutMs: number) {
    this.hub = hub
    this.role = role
    this.peerId = peerId
    this.socket = socket
    this.copiesOnSend = socket.copiesOnSend
    this.state = role === 'dial' ? 'opening' : 'await-hello'
    this.lastReceived = hub.now()
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null
      this.refuse('handshake-timeout', `no complete handshake within ${handshakeTimeoutMs} ms (stuck in ${this.state})`)
    }, handshakeTimeoutMs)
    this.handshakeTimer.unref()
  }

  get who (): string {
    return this.peerId === null ? this.socket.remote : `${this.peerId} (${this.socket.remote})`
  }

  /** Dialer: the WebSocket is open, start the handshake. */
  opened (): void {
    if (this.state !== 'opening') return
    this.state = 'await-challenge'
    this.control(CTRL_HELLO, { v: LINK_PROTOCOL, from: this.hub.id, to: this.peerId, nonce: this.nonce, maxBatchBytes: this.hub.maxBatchBytes })
  }

  /**
   * A binary message. `i32` views the same bytes when the caller has them 4-aligned
   * (uWS's ArrayBuffer); otherwise a batch is copied to an aligned buffer first.
   */
  message (u8: Buffer, i32: Int32Array | null): void {
    if (this.state === 'closed') return
    this.lastReceived = this.hub.now()
    if (u8.length > this.hub.maxBatchBytes) return this.refuse('oversize', `a message of ${u8.length} bytes (maxBatchBytes ${this.hub.maxBatchBytes})`)
    if (u8.length < 4) return this.refuse('garbage', `a message of ${u8.length} bytes`)
    const word = firstWord(u8)
    if (word >= 0) {
      if (this.state !== 'up') return this.refuse('garbage', `a batch before the handshake finished (${this.state})`)
      if (i32 === null) {
        const aligned = alignedCopy(u8)
        u8 = aligned
        i32 = new Int32Array(aligned.buffer, aligned.byteOffset, aligned.length >> 2)
      }
      const frames = batchFrameCount(i32, u8.length)
      if (frames < 0) return this.refuse('bad-batch', `a batch of ${u8.length} bytes whose frame lengths do not add up`)
      this.hub.batch(this, u8, i32, frames)
      return
    }
    if (u8.length > MAX_CONTROL_BYTES) return this.refuse('oversize', `a control message of ${u8.length} bytes`)
    let body: unknown
    try {
      body = decodeControlBody(u8)
    } catch {
      return this.refuse('garbage', `control message ${-word} does not decode`)
    }
    // a pong echoes the ping's time and adds the answerer's wall clock: the round trip, and
    // how far the peer's clock is from ours (durable sends' copy stamps assume they agree)
    if (word === CTRL_PING && this.state === 'up') { this.control(CTRL_PONG, [body, this.hub.wall()]); return }
    if (word === CTRL_PONG && this.state === 'up') {
      if (Array.isArray(body) && typeof body[0] === 'number' && typeof body[1] === 'number') {
        this.rttMs = this.hub.now() - body[0]
        this.clockOffsetMs = body[1] - (this.hub.wall() - this.rttMs / 2)
        this.hub.clock(this, this.clockOffsetMs)
      }
      return
    }
    const msg = typeof body === 'object' && body !== null && !Array.isArray(body) ? body as Record<string, unknown> : null
    if (msg !== null) {
      if (word === CTRL_HELLO && this.state === 'await-hello') return this.onHello(msg)
      if (word === CTRL_CHALLENGE && this.state === 'await-challenge') return this.onChallenge(msg)
      if (word === CTRL_PROOF && this.state === 'await-proof') return this.onProof(msg)
      if (word === CTRL_WELCOME && this.state === 'await-welcome') return this.onWelcome(msg)
      if (word === CTRL_READY && this.state === 'await-ready') return this.goUp(this.peerHello!)
    }
    this.refuse('garbage', `control message ${-word}${msg === null ? ' with a malformed body' : ''} while ${this.state}`)
  }

  /** Acceptor: a dialer introduces itself. */
  private onHello (msg: Record<string, unknown>): void {
    const { v, from, to, nonce, maxBatchBytes } = msg
    if (typeof from !== 'string' || typeof to !== 'string' || !isNonce(nonce) || typeof v !== 'number' || typeof maxBatchBytes !== 'number' ||
      Buffer.byteLength(from) > MAX_ID_BYTES || from.length === 0) {
      return this.refuse('garbage', 'a malformed HELLO')
    }
    this.peerId = from
    if (v !== LINK_PROTOCOL) return this.refuse('protocol', `link protocol ${v}, this host speaks ${LINK_PROTOCOL}`)
    if (to !== this.hub.id) return this.refuse('wrong-host', `HELLO addressed to ${JSON.stringify(to)}`)
    if (!(from < this.hub.id)) return this.refuse('wrong-direction', `${JSON.stringify(from)} does not sort below ${JSON.stringify(this.hub.id)}: the lower id dials`)
    if (maxBatchBytes !== this.hub.maxBatchBytes) return this.refuse('protocol', `maxBatchBytes ${maxBatchBytes}, ours ${this.hub.maxBatchBytes}`)
    this.theirNonce = nonce
    this.state = 'await-proof'
    this.control(CTRL_CHALLENGE, {
      nonce: this.nonce,
      proof: proof(this.hub.secret, 'acceptor', from, this.hub.id, nonce, this.nonce),
      maxBatchBytes: this.hub.maxBatchBytes
    })
  }

  /** Dialer: the acceptor proves itself and challenges us. */
  private onChallenge (msg: Record<string, unknown>): void {
    const { nonce, proof: theirs, maxBatchBytes } = msg
    if (!isNonce(nonce) || typeof maxBatchBytes !== 'number') return this.refuse('garbage', 'a malformed CHALLENGE')
    const peer = this.peerId!
    if (!proofMatches(proof(this.hub.secret, 'acceptor', this.hub.id, peer, this.nonce, nonce), theirs)) {
      return this.refuse('bad-auth', 'its proof does not match our secret')
    }
    if (maxBatchBytes !== this.hub.maxBatchBytes) return this.refuse('protocol', `maxBatchBytes ${maxBatchBytes}, ours ${this.hub.maxBatchBytes}`)
    this.theirNonce = nonce
    this.state = 'await-welcome'
    this.control(CTRL_PROOF, { proof: proof(this.hub.secret, 'dialer', this.hub.id, peer, this.nonce, nonce), hello: this.hub.hello })
  }

  /** Acceptor: the dialer proves itself. */
  private onProof (msg: Record<string, unknown>): void {
    const peer = this.peerId!
    if (!proofMatches(proof(this.hub.secret, 'dialer', peer, this.hub.id, this.theirNonce!, this.nonce), msg.proof)) {
      return this.refuse('bad-auth', 'its proof does not match our secret')
    }
    const hello = plainObject(msg.hello)
    if (hello === null) return this.refuse('garbage', 'a PROOF without a hello object')
    const refusal = this.hub.admit(this, hello)
    if (refusal !== undefined) return this.refuse(refusal.reason, refusal.detail)
    this.peerHello = hello
    this.state = 'await-ready'
    this.control(CTRL_WELCOME, { hello: this.hub.hello })
  }

  /** Dialer: the acceptor let us in. */
  private onWelcome (msg: Record<string, unknown>): void {
    const hello = plainObject(msg.hello)
    if (hello === null) return this.refuse('garbage', 'a WELCOME without a hello object')
    const refusal = this.hub.admit(this, hello)
    if (refusal !== undefined) return this.refuse(refusal.reason, refusal.detail)
    this.control(CTRL_READY, {})
    this.goUp(hello)
  }

  private goUp (hello: Hello): void {
    if (this.handshakeTimer !== null) { clearTimeout(this.handshakeTimer); this.handshakeTimer = null }
    this.state = 'up'
    this.hub.up(this, hello)
  }

  /** BatchOutput: up, the socket open and under the high-water mark. */
  get writable (): boolean {
    return this.state === 'up' && !this.backpressured && this.socket.open
  }

  /** BatchOutput: one batch to the socket. */
  sendBatch (bytes: Buffer, frames: number): void {
    this.framesOut += frames
    this.batchesOut++
    this.bytesOut += bytes.length
    if (!this.socket.send(bytes)) {
      this.fail('send-dropped', 'the socket dropped a batch over its backpressure limit')
      return
    }
    if (!this.backpressured && this.socket.bufferedAmount() > this.hub.highWaterBytes) {
      this.backpressured = true
      this.socket.whenDrained(this.checkDrain)
    }
  }

  /** The socket may have drained (uWS `drain`, or the net.Socket's under `ws`). */
  readonly checkDrain = (): void => {
    if (!this.backpressured || this.state !== 'up' || !this.socket.open) return
    if (this.socket.bufferedAmount() > this.hub.highWaterBytes / 2) {
      this.socket.whenDrained(this.checkDrain)
      return
    }
    this.backpressured = false
    this.hub.drained(this)
  }

  ping (): void {
    this.control(CTRL_PING, this.hub.now())
  }

  /** Refuse the peer: count, log once, close with the reason. Before or after `up`. */
  refuse (reason: RefusalReason, detail: string): void {
    if (this.state === 'closed') return
    this.hub.refused(this, reason, detail)
    this.finish(reason, detail, CLOSE_REFUSED, true)
  }

  /** Take an up link down for a reason of our own (heartbeat, a dropped send, disconnect). */
  fail (reason: string, detail: string, code = CLOSE_LINK_DOWN, graceful = false): void {
    if (this.state === 'closed') return
    this.finish(reason, detail, code, graceful)
  }

  /** The socket closed underneath us (the peer, the network, or after our own close). */
  socketClosed (code: number, text: string): void {
    if (this.state === 'closed') return
    const detail = `code ${code}${text ? ` ${JSON.stringify(text)}` : ''}`
    const wasUp = this.state === 'up'
    let reason = code === 1005 || code === 1006 ? 'connection-lost' : 'closed-by-peer'
    // uWS closes on an oversize message before our handler sees it, and on broken framing
    if (this.role === 'accept' && text === 'Received too big message') {
      reason = 'oversize'
      this.hub.refused(this, 'oversize', `a message over maxBatchBytes (${this.hub.maxBatchBytes}), closed by uWebSockets.js`)
    } else if (!wasUp && this.role === 'accept') {
      this.hub.refused(this, 'aborted', `the socket closed during the handshake (${this.state}): ${detail}`)
    }
    this.state = 'closed'
    this.clearTimer()
    this.hub.closed(this, wasUp, reason, detail)
  }

  private finish (reason: string, detail: string, code: number, graceful: boolean): void {
    const wasUp = this.state === 'up'
    this.state = 'closed'
    this.clearTimer()
    // a close frame tells an honest peer why; a silent peer would never answer it
    if (graceful) this.socket.end(code, `${reason}: ${detail}`)
    else this.socket.destroy()
    this.hub.closed(this, wasUp, reason, detail)
  }

  private clearTimer (): void {
    if (this.handshakeTimer !== null) { clearTimeout(this.handshakeTimer); this.handshakeTimer = null }
  }

  private control (kind: number, body: unknown): void {
    this.socket.send(encodeControl(kind, body))
  }
}

function plainObject (value: unknown): Hello | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) ? value as Hello : null
}

let scratch = Buffer.alloc(0)

/** A 4-aligned copy of a message `ws` handed over at an odd offset; valid until the next call. */
function alignedCopy (u8: Buffer): Buffer {
  if ((u8.byteOffset & 3) === 0) return u8
  if (scratch.length < u8.length) scratch = Buffer.allocUnsafeSlow(Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(u8.length))))
  scratch.set(u8)
  return scratch.subarray(0, u8.length)
}
