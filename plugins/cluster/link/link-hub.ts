/**
 * A host's links to the other hosts of its cluster: one uWebSockets.js server that
 * accepts, `ws` clients that dial, one authenticated WebSocket per pair of hosts carrying
 * both directions, and a batch writer per peer that the engine writes frames into as it
 * writes them into a thread ring.
 *
 *   engine ──begin/end──▶ BatchWriter(peer) ──batches──▶ socket ══▶ peer's hub ──'batch'──▶ engine
 *                           (queue while connecting           (many frames per
 *                            or over the high-water mark)      WebSocket message)
 *
 * What the upper layer (the cluster plugin) can rely on:
 * - Frames written to one peer's writer arrive in order (FIFO per pair), whole and
 *   byte-exact, as long as the link stays up.
 * - `down` reports every frame the hub dropped from its queue; frames already handed to
 *   the socket may or may not have arrived. Calls in flight fail with a retriable error
 *   and durable sends are redelivered by the layer above — the hub never retransmits,
 *   so it never needs acks or sequence numbers of its own.
 * - Writes while a link is connecting wait in its queue and go out, in order, when it
 *   comes up; past `maxQueueBytes` `begin` throws LinkUnavailableError (retriable).
 * - Nothing a peer sends makes the hub throw; bad peers are refused and counted.
 *
 * Flushing is per event-loop turn: the first frame written to an idle writer queues one
 * microtask for the whole hub, which sends every writer's open batch; a batch that
 * reaches `flushBytes` goes at once. Heartbeats are one interval timer per hub.
 */
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import { WebSocket as WsClient } from 'ws'
import type * as Uws from 'uWebSockets.js'
import { HostClosedError, InvalidArgumentError, InvalidOptionError } from '../../../native-free-core/errors.ts'
import { Connection, type ConnectionHost } from './connection.ts'
import { sameHello, secretBytes, type Hello, type HelloCheck } from './handshake.ts'
import { uwsForServer, nativeUwsLoaded } from './native-uws.ts'
import { Peer, type LinkPeerStats } from './peer.ts'
import { Refusals, type LinkLogger, type RefusalReason } from './refusals.ts'
import { UwsLinkSocket, WsLinkSocket, zeroMask } from './link-socket.ts'
import type { BatchWriter } from './batch-writer.ts'
import { CLOSE_DISCONNECTED, CLOSE_GOING_AWAY, LINK_PATH } from './wire.ts'

export interface LinkHubOptions {
  /** This host's id: stable, unique in the cluster, 1–512 UTF-8 bytes (membership's rule is stricter). */
  readonly id: string
  /** Shared by every host of the cluster, at least 32 bytes. */
  readonly secret: string | Uint8Array
  /** Where `listen()` binds. Default 127.0.0.1, port 0 (any free port). */
  readonly listen?: { readonly host?: string, readonly port?: number }
  /** Told to peers once they authenticated (cluster name, registry fingerprint, ...). */
  readonly hello?: Hello
  /** Whether a peer's hello is compatible. Default: every key of our hello is equal in theirs. */
  readonly checkHello?: HelloCheck
  /** Largest WebSocket message either side sends or accepts; both hosts must agree. Default 4 MiB. */
  readonly maxBatchBytes?: number
  /** A batch is sent once it holds this many bytes (else at the end of the turn). Default 64 KiB. */
  readonly flushBytes?: number
  /** Bytes a peer's queue may hold before `begin` throws LinkUnavailableError. Default 64 MiB. */
  readonly maxQueueBytes?: number
  /** Stop sending when the socket buffers more than this; resume below half. Default 1 MiB. */
  readonly highWaterBytes?: number
  /** Ping interval; a link that received nothing for 3 intervals is closed. Default 1,000 ms. */
  readonly heartbeatMs?: number
  /**
   * Warn when a peer's wall clock differs from this host's by more than this (estimated at
   * each heartbeat from the pong's wall time and half the round trip): once, and again
   * after it came back within. Default: never.
   */
  readonly clockWarnMs?: number
  /** Wall-clock ms, the clock told to peers in pongs. Default Date.now (tests skew one). */
  readonly wallClock?: () => number
  /** A handshake (TCP, WebSocket upgrade, authentication) must finish within this. Default 5,000 ms. */
  readonly handshakeTimeoutMs?: number
  /** Dialer's reconnect delays. Defaults 100 ms doubling to 5,000 ms, with jitter. */
  readonly reconnect?: { readonly initialMs?: number, readonly maxMs?: number, readonly factor?: number }
  /** Random numbers in [0, 1) for the reconnect jitter (tests inject a seeded one). */
  readonly random?: () => number
  /** Where refusals and unreachable peers are reported. Default console. */
  readonly logger?: LinkLogger
}

export interface LinkDown {
  /** 'heartbeat-timeout', 'connection-lost', 'closed-by-peer', 'bad-batch', 'send-dropped', 'disconnected', 'hub-closed', ... */
  readonly reason: string
  readonly detail: string
  /** Frames that were waiting in the queue and were dropped. */
  readonly dropped: number
  readonly droppedBytes: number
}

export interface LinkHubEvents {
  /** The link to `peerId` is authenticated and up; `hello` is what the peer said about itself. */
  up: [peerId: string, hello: Hello]
  /** The link went down; what was queued is dropped (counted in `info.dropped`). */
  down: [peerId: string, info: LinkDown]
  /**
   * A batch arrived: `frames` frames in the ring layout, walk them with `forEachFrame(i32,
   * bytes.length, ...)`. The bytes are only valid during the call (no copy was made:
   * uWS neuters its ArrayBuffer when the callback returns). Listeners must not throw: as
   * from any socket event, an exception is uncaught (the link itself stays up).
   */
  batch: [peerId: string, bytes: Buffer, i32: Int32Array, frames: number]
  /** The link to `peerId` was over its high-water mark and has drained. */
  drain: [peerId: string]
}

export interface LinkHubStats {
  readonly id: string
  /** Where the hub listens, once `listen()` resolved. */
  readonly address: { readonly host: string, readonly port: number } | null
  /** uWebSockets.js's native binary is loaded (false: the opted-in fallback, or not loaded yet). */
  readonly nativeUws: boolean
  /** Peers refused, by reason. */
  readonly refused: Readonly<Partial<Record<RefusalReason, number>>>
  readonly linksUp: number
  readonly framesOut: number
  readonly framesIn: number
  readonly bytesOut: number
  readonly bytesIn: number
  readonly queuedBytes: number
  readonly droppedFrames: number
  readonly peers: readonly LinkPeerStats[]
}

interface UwsUserData {
  conn?: Connection
  socket?: UwsLinkSocket
}

const MAX_ID_BYTES = 512
const CLOSE_WAIT_MS = 1_000

export class LinkHub extends EventEmitter<LinkHubEvents> {
  readonly id: string
  private readonly secret: Buffer
  private readonly listenOn: { host: string, port: number }
  private readonly hello: Hello
  private readonly checkHello: HelloCheck
  private readonly maxBatchBytes: number
  private readonly flushBytes: number
  private readonly maxQueueBytes: number
  private readonly highWaterBytes: number
  private readonly heartbeatMs: number
  private readonly clockWarnMs: number
  private readonly wallClock: () => number
  private readonly handshakeTimeoutMs: number
  private readonly backoff: { initialMs: number, maxMs: number, factor: number, random: () => number }
  private readonly logger: LinkLogger
  private readonly refusals: Refusals
  private readonly peers = new Map<string, Peer>()
  /** Accepted sockets still in their handshake (not yet a peer's). */
  private readonly handshaking = new Set<Connection>()
  private readonly uwsSockets = new Set<UwsLinkSocket>()
  private readonly wsClients = new Set<WsClient>()
  private readonly host: ConnectionHost
  private uws: typeof Uws | null = null
  /** The uWebSockets.js app behind the server, once listening (shared with the dashboard: see `app`). */
  private uwsApp: Uws.TemplatedApp | null = null
  private listenSocket: Uws.us_listen_socket | null = null
  private bound: { host: string, port: number } | null = null
  private listening: Promise<{ host: string, port: number }> | null = null
  private heartbeat: NodeJS.Timeout | null = null
  private dirty: Peer[] = []
  private flushQueued = false
  private closing: Promise<void> | null = null

  constructor (options: LinkHubOptions) {
    super()
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', options, 'must be an object')
    this.id = checkId(options.id, (v, rule) => new InvalidOptionError('id', v, rule))
    this.secret = secretBytes(options.secret)
    const listen = options.listen ?? {}
    if (listen.host !== undefined && (typeof listen.host !== 'string' || listen.host === '')) throw new InvalidOptionError('listen.host', listen.host, 'must be a host name or IP address')
    this.listenOn = { host: listen.host ?? '127.0.0.1', port: intOption('listen.port', listen.port, 0, 0, 65535) }
    if (options.hello !== undefined && (typeof options.hello !== 'object' || options.hello === null || Array.isArray(options.hello))) {
      throw new InvalidOptionError('hello', options.hello, 'must be a plain object')
    }
    this.hello = options.hello ?? {}
    if (options.checkHello !== undefined && typeof options.checkHello !== 'function') throw new InvalidOptionError('checkHello', options.checkHello, 'must be a function')
    this.checkHello = options.checkHello ?? sameHello(this.hello)
    this.maxBatchBytes = intOption('maxBatchBytes', options.maxBatchBytes, 4 * 1024 * 1024, 1024, 1024 * 1024 * 1024)
    this.flushBytes = intOption('flushBytes', options.flushBytes, Math.min(64 * 1024, this.maxBatchBytes), 64, this.maxBatchBytes)
    this.maxQueueBytes = intOption('maxQueueBytes', options.maxQueueBytes, 64 * 1024 * 1024, this.maxBatchBytes, 2 ** 40)
    this.highWaterBytes = intOption('highWaterBytes', options.highWaterBytes, 1024 * 1024, 1024, 2 ** 40)
    this.heartbeatMs = intOption('heartbeatMs', options.heartbeatMs, 1_000, 1, 3_600_000)
    this.clockWarnMs = options.clockWarnMs ?? Number.POSITIVE_INFINITY
    this.wallClock = options.wallClock ?? Date.now
    this.handshakeTimeoutMs = intOption('handshakeTimeoutMs', options.handshakeTimeoutMs, 5_000, 1, 3_600_000)
    const reconnect = options.reconnect ?? {}
    const initialMs = intOption('reconnect.initialMs', reconnect.initialMs, 100, 1, 3_600_000)
    this.backoff = {
      initialMs,
      maxMs: intOption('reconnect.maxMs', reconnect.maxMs, Math.max(5_000, initialMs), initialMs, 3_600_000),
      factor: numberOption('reconnect.factor', reconnect.factor, 2, 1, 100),
      random: options.random ?? Math.random
    }
    if (typeof this.backoff.random !== 'function') throw new InvalidOptionError('random', options.random, 'must be a function returning numbers in [0, 1)')
    this.logger = options.logger ?? console
    this.refusals = new Refusals(this.id, this.logger)
    this.host = this.connectionHost()
    this.heartbeat = setInterval(() => { this.beat() }, this.heartbeatMs)
    this.heartbeat.unref()
  }

  /** Start the uWebSockets.js server; resolves with the bound address (port 0 picks one). */
  async listen (): Promise<{ host: string, port: number }> {
    this.checkOpen()
    this.listening ??= this.startServer()
    return await this.listening
  }

  private async startServer (): Promise<{ host: string, port: number }> {
    const uws = uwsForServer((m) => { this.logger.warn(m) })
    this.uws = uws
    const app = uws.App()
    this.uwsApp = app
    app.ws<UwsUserData>(LINK_PATH, {
      compression: uws.DISABLED,
      maxPayloadLength: this.maxBatchBytes,
      // never reached: sending stops at highWaterBytes, one batch and a few pings past it at most
      maxBackpressure: this.highWaterBytes + 2 * this.maxBatchBytes + 1024 * 1024,
      idleTimeout: 0,
      sendPingsAutomatically: false,
      open: (ws) => {
        const socket = new UwsLinkSocket(ws as Uws.WebSocket<unknown>)
        const data = ws.getUserData()
        data.socket = socket
        this.uwsSockets.add(socket)
        if (this.closing !== null) { socket.destroy(); return }
        const conn = new Connection(this.host, 'accept', null, socket, this.handshakeTimeoutMs)
        data.conn = conn
        this.handshaking.add(conn)
      },
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn
        if (conn === undefined) return
        if (!isBinary) return conn.refuse('not-binary', `a text message of ${message.byteLength} bytes`)
        conn.message(Buffer.from(message), new Int32Array(message, 0, message.byteLength >> 2))
      },
      drain: (ws) => { ws.getUserData().conn?.checkDrain() },
      close: (ws, code, message) => {
        const data = ws.getUserData()
        if (data.socket !== undefined) { data.socket.closed = true; this.uwsSockets.delete(data.socket) }
        data.conn?.socketClosed(code, Buffer.from(message).toString())
      }
    })
    app.any('/*', (res, req) => {
      const who = Buffer.from(res.getRemoteAddressAsText()).toString()
      this.refusals.record('not-websocket', who, `${req.getMethod().toUpperCase()} ${req.getUrl()}`)
      res.writeStatus('404 Not Found').end('not a shoal link endpoint', true)
    })
    const { host, port } = this.listenOn
    const socket = await new Promise<Uws.us_listen_socket | false>((resolve) => { app.listen(host, port, resolve) })
    if (socket === false) throw new InvalidOptionError('listen', { host, port }, 'must be an address this host can listen on (is the port taken, or the host not local?)')
    if (this.closing !== null) { uws.us_listen_socket_close(socket); this.checkOpen() }
    this.listenSocket = socket
    this.bound = { host, port: uws.us_socket_local_port(socket as unknown as Uws.us_socket) }
    return this.bound
  }

  /** Where the hub listens, once `listen()` resolved. */
  get address (): { host: string, port: number } | null {
    return this.bound
  }

  /**
   * The uWebSockets.js app the hub listens with, once `listen()` resolved: other plugins
   * may add HTTP and WebSocket routes of their own to it (the dashboard serves its page
   * here), so a host opens one port. Their routes must stay off LINK_PATH; uWS matches a
   * route more specific than the hub's catch-all first, whenever it was added.
   */
  get app (): Uws.TemplatedApp | null {
    return this.uwsApp
  }

  /**
   * Link with `peerId`, reachable at `address` ('host:port' or a ws:// URL). The host
   * whose id sorts lower dials (and redials with backoff until `disconnect`); the other
   * waits for it, and refuses authenticated peers it was not told about. Idempotent; a
   * new address is used from the next attempt on. Writes may start at once.
   */
  connect (peerId: string, address: string): void {
    this.checkOpen()
    checkId(peerId, (v, rule) => new InvalidArgumentError(`peerId ${rule} (got ${JSON.stringify(v)})`, { peerId: v }))
    if (peerId === this.id) throw new InvalidArgumentError(`a hub cannot link to itself (${JSON.stringify(peerId)})`, { peerId })
    linkUrl(address)
    let peer = this.peers.get(peerId)
    if (peer === undefined) {
      const created: Peer = new Peer(peerId, address, this.id < peerId, {
        peer: peerId,
        flushBytes: this.flushBytes,
        sendBytes: Math.max(this.flushBytes, Math.min(256 * 1024, this.highWaterBytes)),
        maxBatchBytes: this.maxBatchBytes,
        maxQueueBytes: this.maxQueueBytes,
        onPending: () => { this.touch(created) },
        onFull: () => { this.flushPeer(created) }
      }, this.backoff)
      peer = created
      this.peers.set(peerId, peer)
    }
    peer.address = address
    if (peer.dials && peer.conn === null && peer.retry === null) this.dial(peer)
  }

  /**
   * Close the link to `peerId` and forget it: no redial, later writes throw
   * LinkUnavailableError. Emits `down` if it was up. Returns the frames dropped from the queue.
   */
  disconnect (peerId: string): number {
    const peer = this.peers.get(peerId)
    if (peer === undefined) return 0
    return this.forget(peer, 'disconnected', 'disconnect() was called', CLOSE_DISCONNECTED)
  }

  /** The frame sink for `peerId` (after `connect`): the same for the peer's whole life. */
  writer (peerId: string): BatchWriter {
    const peer = this.peers.get(peerId)
    if (peer === undefined) throw new InvalidArgumentError(`no link to ${JSON.stringify(peerId)}: call connect() first`, { peerId })
    return peer.writer
  }

  /** Send every writer's open batch now (the engine may call this at the end of its pass). */
  flush (): void {
    this.flushQueued = false
    const dirty = this.dirty
    this.dirty = []
    for (const peer of dirty) this.flushPeer(peer)
  }

  /** Peers this hub was told about (connected or connecting). */
  peerIds (): string[] {
    return [...this.peers.keys()]
  }

  isUp (peerId: string): boolean {
    return this.peers.get(peerId)?.up === true
  }

  stats (): LinkHubStats {
    const peers = [...this.peers.values()].map((p) => p.stats())
    let linksUp = 0; let framesOut = 0; let framesIn = 0; let bytesOut = 0; let bytesIn = 0; let queuedBytes = 0; let droppedFrames = 0
    for (const p of peers) {
      if (p.state === 'up') linksUp++
      framesOut += p.framesOut; framesIn += p.framesIn; bytesOut += p.bytesOut; bytesIn += p.bytesIn
      queuedBytes += p.queuedBytes; droppedFrames += p.droppedFrames
    }
    return {
      id: this.id,
      address: this.bound,
      nativeUws: this.uws !== null && nativeUwsLoaded(),
      refused: { ...this.refusals.counts },
      linksUp, framesOut, framesIn, bytesOut, bytesIn, queuedBytes, droppedFrames,
      peers
    }
  }

  /**
   * Close every link (peers see a going-away close and this hub emits `down` for each
   * link that was up), stop listening, and resolve when the sockets are closed.
   */
  async close (): Promise<void> {
    if (this.closing !== null) return await this.closing
    this.closing = this.shutdown()
    return await this.closing
  }

  private async shutdown (): Promise<void> {
    if (this.heartbeat !== null) { clearInterval(this.heartbeat); this.heartbeat = null }
    for (const peer of [...this.peers.values()]) this.forget(peer, 'hub-closed', 'the hub is closing', CLOSE_GOING_AWAY)
    for (const conn of [...this.handshaking]) conn.fail('hub-closed', 'the hub is closing', CLOSE_GOING_AWAY, true)
    if (this.listenSocket !== null && this.uws !== null) {
      this.uws.us_listen_socket_close(this.listenSocket)
      this.listenSocket = null
    }
    const deadline = Date.now() + CLOSE_WAIT_MS
    while ((this.uwsSockets.size !== 0 || this.wsClients.size !== 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    for (const s of [...this.uwsSockets]) s.destroy()
    for (const ws of [...this.wsClients]) ws.terminate()
  }

  // ---- peers --------------------------------------------------------------------------

  private forget (peer: Peer, reason: string, detail: string, code: number): number {
    this.peers.delete(peer.id)
    if (peer.retry !== null) { clearTimeout(peer.retry); peer.retry = null }
    peer.writer.close(reason === 'hub-closed' ? 'closed' : 'disconnected')
    const conn = peer.conn
    peer.conn = null
    const wasUp = peer.up
    if (conn !== null) {
      peer.retire(conn)
      conn.fail(reason, detail, code, true)
    }
    if (wasUp) return this.linkDown(peer, reason, detail)
    const dropped = peer.writer.drop()
    peer.droppedFrames += dropped.frames
    return dropped.frames
  }

  private linkDown (peer: Peer, reason: string, detail: string): number {
    peer.up = false
    peer.downs++
    peer.lastError = `${reason}: ${detail}`
    const dropped = peer.writer.drop()
    peer.droppedFrames += dropped.frames
    this.emit('down', peer.id, { reason, detail, dropped: dropped.frames, droppedBytes: dropped.bytes })
    return dropped.frames
  }

  private dial (peer: Peer): void {
    let ws: WsClient
    try {
      ws = new WsClient(linkUrl(peer.address), {
        perMessageDeflate: false,
        maxPayload: this.maxBatchBytes,
        skipUTF8Validation: true,
        handshakeTimeout: this.handshakeTimeoutMs,
        generateMask: zeroMask
      })
    } catch (err) {
      this.dialFailed(peer, `cannot dial ${peer.address}: ${(err as Error).message}`)
      return
    }
    this.wsClients.add(ws)
    const conn = new Connection(this.host, 'dial', peer.id, new WsLinkSocket(ws, peer.address), this.handshakeTimeoutMs)
    peer.conn = conn
    let socketError = ''
    ws.on('open', () => { conn.opened() })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) conn.refuse('not-binary', `a text message of ${data.length} bytes`)
      else conn.message(data, null)
    })
    ws.on('error', (err: Error & { code?: string }) => {
      socketError = err.message
      // `ws` found the peer breaking the protocol: refuse it as uWS's side would
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') conn.refuse('oversize', err.message)
      else if (err.code?.startsWith('WS_ERR_') === true) conn.refuse('garbage', err.message)
    })
    ws.on('close', (code: number, reason: Buffer) => {
      this.wsClients.delete(ws)
      conn.socketClosed(code, reason.length !== 0 ? reason.toString() : socketError)
    })
  }

  private dialFailed (peer: Peer, error: string): void {
    peer.lastError = error
    if (!peer.loggedUnreachable) {
      peer.loggedUnreachable = true
      this.logger.warn(`shoal link ${this.id}: no link to ${peer.id} at ${peer.address} yet (${error}); retrying with backoff, logged once until it links`)
    }
    this.redial(peer)
  }

  private redial (peer: Peer): void {
    if (this.closing !== null || this.peers.get(peer.id) !== peer || peer.retry !== null) return
    peer.retry = setTimeout(() => {
      peer.retry = null
      if (this.closing === null && this.peers.get(peer.id) === peer && peer.conn === null) this.dial(peer)
    }, peer.backoff.next())
    peer.retry.unref()
  }

  // ---- flushing -----------------------------------------------------------------------

  private touch (peer: Peer): void {
    this.dirty.push(peer)
    if (!this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(() => { if (this.flushQueued) this.flush() })
    }
  }

  private flushPeer (peer: Peer): void {
    const conn = peer.conn
    if (conn === null || !conn.writable) return
    conn.socket.cork(() => { peer.writer.drain(conn) })
  }

  private beat (): void {
    const now = performance.now()
    const limit = 3 * this.heartbeatMs
    for (const peer of this.peers.values()) {
      const conn = peer.conn
      if (!peer.up || conn === null) continue
      const silent = now - conn.lastReceived
      if (silent > limit) conn.fail('heartbeat-timeout', `nothing received for ${Math.round(silent)} ms (heartbeatMs ${this.heartbeatMs})`)
      else conn.ping()
    }
  }

  // ---- what connections call ------------------------------------------------------------

  private connectionHost (): ConnectionHost {
    const hub = this
    return {
      id: this.id,
      secret: this.secret,
      hello: this.hello,
      maxBatchBytes: this.maxBatchBytes,
      highWaterBytes: this.highWaterBytes,
      now: () => performance.now(),
      wall: this.wallClock,
      refused (conn, reason, detail) {
        hub.refusals.record(reason, conn.who, detail)
        if (conn.role === 'dial' && conn.peerId !== null) {
          const peer = hub.peers.get(conn.peerId)
          if (peer !== undefined && peer.conn === conn) peer.lastError = `refused ${reason}: ${detail}`
        }
      },
      admit (conn, hello) {
        const peer = hub.peers.get(conn.peerId!)
        if (peer === undefined || hub.closing !== null) return { reason: 'unknown-peer', detail: `${JSON.stringify(conn.peerId)} is not a host this hub links with` }
        if (conn.role === 'accept' && peer.conn !== null) return { reason: 'duplicate', detail: `${JSON.stringify(peer.id)} already has a live link` }
        if (conn.role === 'dial' && peer.conn !== conn) return { reason: 'unknown-peer', detail: `${JSON.stringify(peer.id)} was disconnected meanwhile` }
        let why: string | undefined
        try {
          why = hub.checkHello({ id: peer.id, hello })
        } catch (err) {
          why = `checkHello threw: ${(err as Error).message}`
        }
        if (why !== undefined) return { reason: 'hello-mismatch', detail: why }
        if (conn.role === 'accept') {
          hub.handshaking.delete(conn)
          peer.conn = conn
        }
        return undefined
      },
      up (conn, hello) {
        const peer = hub.peers.get(conn.peerId!)!
        peer.up = true
        peer.ups++
        peer.lastError = null
        peer.loggedUnreachable = false
        peer.backoff.reset()
        hub.flushPeer(peer)
        hub.emit('up', peer.id, hello)
      },
      batch (conn, u8, i32, frames) {
        const peer = hub.peers.get(conn.peerId!)
        if (peer === undefined || peer.conn !== conn) return
        peer.framesIn += frames
        peer.batchesIn++
        peer.bytesIn += u8.length
        hub.emit('batch', peer.id, u8, i32, frames)
      },
      clock (conn, offsetMs) {
        const peer = hub.peers.get(conn.peerId!)
        if (peer === undefined || peer.conn !== conn) return
        const off = Math.abs(offsetMs) > hub.clockWarnMs
        if (off && !peer.clockWarned) {
          hub.logger.warn(`shoal link ${hub.id}: ${peer.id}'s clock is ${Math.round(offsetMs)} ms ${offsetMs > 0 ? 'ahead of' : 'behind'} ours (more than ${hub.clockWarnMs} ms): keep the hosts' clocks in sync (NTP)`)
        }
        peer.clockWarned = off
      },
      drained (conn) {
        const peer = hub.peers.get(conn.peerId!)
        if (peer === undefined || peer.conn !== conn) return
        hub.flushPeer(peer)
        if (!conn.backpressured && conn.state === 'up') hub.emit('drain', peer.id)
      },
      closed (conn, wasUp, reason, detail) {
        hub.handshaking.delete(conn)
        const peer = conn.peerId === null ? undefined : hub.peers.get(conn.peerId)
        if (peer === undefined || peer.conn !== conn) return
        peer.conn = null
        peer.retire(conn)
        if (wasUp) hub.linkDown(peer, reason, detail)
        if (!peer.dials) return
        if (wasUp) hub.redial(peer)
        else hub.dialFailed(peer, `${reason}: ${detail}`)
      }
    }
  }

  private checkOpen (): void {
    if (this.closing !== null) throw new HostClosedError(`link hub ${this.id} is closed`)
  }
}

function checkId (value: unknown, error: (value: unknown, rule: string) => Error): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_ID_BYTES) {
    throw error(value, `must be a string of 1 to ${MAX_ID_BYTES} UTF-8 bytes`)
  }
  return value
}

/** 'host:port', '[v6]:port' or a ws:// URL → the link endpoint's URL. */
function linkUrl (address: unknown): string {
  if (typeof address !== 'string' || address === '') throw new InvalidArgumentError(`address must be 'host:port' or a ws:// URL (got ${JSON.stringify(address)})`, { address })
  const withScheme = /^wss?:\/\//.test(address) ? address : `ws://${address}`
  let url: URL
  try { url = new URL(withScheme) } catch { throw new InvalidArgumentError(`address must be 'host:port' or a ws:// URL (got ${JSON.stringify(address)})`, { address }) }
  if (url.port === '') throw new InvalidArgumentError(`address needs a port (got ${JSON.stringify(address)})`, { address })
  if (url.pathname === '/' || url.pathname === '') url.pathname = LINK_PATH
  return url.href
}

function intOption (name: string, value: unknown, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `must be an integer from ${min} to ${max}`)
  }
  return value
}

function numberOption (name: string, value: unknown, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `must be a number from ${min} to ${max}`)
  }
  return value
}
