/**
 * The gateway: where a host meets the hosts it is clustered with. A router plugin (the
 * cluster) claims it in `setup` and drives it; the host stays ignorant of links, maps
 * and membership. What the gateway does (docs/cluster.md):
 *
 *   - keeps the shard states (native-free-core/placement/shard-state.ts): which shards
 *     this host serves, forwards, or is receiving;
 *   - hands the router every message frame for a shard this host does not serve
 *     (`RemoteRoutes.route`), as its ring bytes;
 *   - takes frames from other hosts onto the right home thread's ring (`deliver`),
 *     giving calls and follows a proxy id so their replies and states find their way
 *     back (proxies.ts), and takes replies and states from other hosts to the calls and
 *     follows waiting here (`result`);
 *   - runs the host's half of a shard move: `release` (stop serving, passivate, hand
 *     back the armed timeouts), `arrive` and `adopt` (keep frames, then serve).
 */
import { Buffer } from 'node:buffer'
import { MSG_CALL, MSG_CAST, MSG_FOLLOW, MSG_FORGET, MSG_UNFOLLOW } from '../../native-free-core/agent/envelope.ts'
import { ShardUnavailableError, WorkerCrashedError } from '../../native-free-core/errors.ts'
import type { ShoalError, WireError } from '../../native-free-core/errors.ts'
import { toWire } from '../../native-free-core/errors.ts'
import { SHARDS, shardOf } from '../../native-free-core/placement/hash.ts'
import { align4 } from '../../native-free-core/ring/ring-queue.ts'
import { SHARD_ARRIVING, SHARD_FORWARD, SHARD_LOCAL } from '../../native-free-core/placement/shard-state.ts'
import type { ShardStates } from '../../native-free-core/placement/shard-state.ts'
import type { MovedTimeout } from '../../native-free-core/time/agent-timers.ts'
import { FrameBuffer } from '../thread/frame-buffer.ts'
import {
  FRAME_CALL_AT, FRAME_HASH_AT, FRAME_REPLY, FRAME_REPLY_TO_AT, FRAME_RESULT_ID_AT, FRAME_STATE, FrameReader, FrameWriter
} from '../thread/frame-codec.ts'
import type { Mesh } from '../thread/mesh.ts'
import type { ControlOp } from '../thread/shard-handover.ts'
import type { ThreadLoop } from '../thread/thread-loop.ts'
import type { Follows } from './follow.ts'
import type { PendingCalls } from './pending-calls.ts'
import { PROXY_BIT, Proxies } from './proxies.ts'
import type { Proxy, ResultSink } from './proxies.ts'

export type { ResultSink } from './proxies.ts'

const kRefused = -1
const kNothingToDo = -2

/**
 * A durable send this host's runtimes applied (dedup mode), committed: the receiver's hash
 * and id, then the send's identity (sender shard, origin, key).
 */
export type AppliedAck = [receiverHash: number, receiverId: string, senderShard: number, origin: string, key: number]

/** What a router plugin gives the gateway. */
export interface RemoteRoutes {
  /**
   * A message frame for a shard this host does not serve, as its ring bytes (a view, valid
   * during the call): forwarded by its home thread, or sent by the main thread's own
   * runtime (`workers: 0`). The router sends it to the shard's owner, or holds it while the
   * shard moves. `from` is the thread it came from.
   */
  route (frame: Buffer, from: number): void
  /** Durable sends applied here (committed): acknowledge them to their senders' hosts. */
  applied? (acks: readonly AppliedAck[]): void
  /**
   * Given, every commit of this host is replicated: its journal (commit-journal.ts, handed
   * out as the commit is queued, before its local transaction has committed) comes here,
   * and the commit's replies and sends wait until the promise resolves (and the local
   * commit is durable); a rejection (a ShoalError, retriable when the caller may try again)
   * is what their callers get instead. Decided before the workers start.
   */
  replicate? (journal: Uint8Array): Promise<void>
  /** Replicating: the local transaction of a commit whose journal `replicate` had was lost (it failed, or its worker died). */
  lost? (shards: readonly number[] | ((shard: number) => boolean)): void
  /**
   * Replicating: resolves once every write of the shards `which` picks, handed to
   * `replicate` so far, is where a failover looks for it (or the shard is not served here).
   */
  landed? (which: (shard: number) => boolean): Promise<void>
}

export interface GatewayParts {
  readonly mesh: Mesh
  readonly loop: ThreadLoop
  readonly pending: PendingCalls
  readonly follows: () => Follows
  /** A thread's incarnation (a worker's restarts; 0 for the main thread). */
  epochOf (thread: number): number
  readonly maxMessageBytes: number
}

interface Control {
  readonly home: number
  readonly msg: ControlOp
  readonly resolve: (answer: ControlOp) => void
}

export class Gateway {
  readonly states: ShardStates
  private readonly parts: GatewayParts
  private readonly shardTable: Uint16Array
  private routes: RemoteRoutes | null = null
  private readonly proxies = new Proxies()
  private readonly controls = new Map<number, Control>()
  private nextToken = 0
  private readonly reader: FrameReader
  private readonly writer: FrameWriter
  private readonly scratch = new FrameBuffer(256)
  /**
   * Shards whose frames the main thread hands straight to the router: served elsewhere, and
   * every frame it sent through their home thread before has been forwarded (set when a
   * release has answered, or from the start; cleared before a shard arrives). Saves a remote
   * call two thread hops; per sender order holds because the switch follows a fence.
   */
  private readonly direct = new Uint8Array(SHARDS)
  /** Frames the main thread sent through a shard's home thread while the shard was not direct (wraps). */
  private readonly homeSends = new Uint32Array(SHARDS)
  private readonly directFrames = new FrameBuffer(4096)
  /** Frames from other hosts refused because they were not messages for agents. */
  refused = 0

  constructor (parts: GatewayParts) {
    if (parts.mesh.shardStates === null) throw new Error('a gateway needs a mesh made with shard states')
    this.parts = parts
    this.states = new Uint8Array(parts.mesh.shardStates)
    this.shardTable = new Uint16Array(parts.mesh.shardTable)
    this.reader = new FrameReader(align4(parts.maxMessageBytes + 64))
    this.writer = new FrameWriter(parts.maxMessageBytes)
    this.states.fill(SHARD_FORWARD) // nothing is served until the router says so
    this.direct.fill(1) // and no frame went through a home thread yet
  }

  /**
   * The main thread's own call or cast to an agent of a shard served elsewhere: encoded
   * and given to the router at once. False when the shard must go through its home thread
   * (served here, arriving, or not known to be stably elsewhere); throws as a ring write does.
   */
  /**
   * Does the main thread send to this agent's shard straight to the router? When not, the
   * caller is about to send through the home thread: counted, so that a switch to direct
   * waits for a fence that comes after it.
   */
  isDirect (hash: number): boolean {
    const shard = shardOf(hash)
    if (this.direct[shard] === 1 && this.routes !== null) return true
    this.homeSends[shard] = this.homeSends[shard]! + 1
    return false
  }

  sendDirect (kind: number, id: string, idBytes: Uint8Array | null, hash: number, typeIdx: number, methodIdx: number, payload: unknown, callId: number): boolean {
    const shard = shardOf(hash)
    if (this.direct[shard] === 0 || this.routes === null) {
      this.homeSends[shard] = this.homeSends[shard]! + 1
      return false
    }
    const buf = this.directFrames
    buf.clear()
    this.writer.message(buf, kind, id, idBytes, hash, typeIdx, methodIdx, payload, 0, callId)
    buf.forEach((frame) => this.routes!.route(frame, 0))
    return true
  }

  /** @internal the router plugin, once */
  attach (routes: RemoteRoutes): void {
    this.routes = routes
  }

  /** The home thread of a shard on this host (fixed for the host's life). */
  homeOf (shard: number): number {
    return this.shardTable[shard]!
  }

  /** Before the workers start (static membership): serve exactly these shards. */
  serveAtStart (shards: Iterable<number>): void {
    for (const s of shards) {
      this.states[s] = SHARD_LOCAL
      this.direct[s] = 0
    }
  }

  // ---- frames from other hosts ----------------------------------------------------

  /**
   * A message frame from another host (its ring bytes; patched in place) onto its home
   * thread's ring. Its home thread runs it, keeps it, or forwards it back to the router,
   * as the shard's state says. False if the frame is not a message for an agent.
   */
  deliver (frame: Buffer, sink: ResultSink): boolean {
    const home = this.admit(frame, sink)
    if (home < 0) return home === kNothingToDo
    this.parts.loop.sendRaw(home, frame, false)
    return true
  }

  /**
   * Make a frame from another host this host's own, in place: a call or follow gets a
   * proxy id whose answer goes to `sink`, an unfollow the proxy id of its follow. For a
   * frame the router holds before it reaches a ring (its shard is arriving here), so that
   * the answer finds its way back when it runs. Returns the frame's home thread, or a
   * negative number when it is not a message for an agent (refused) or needs nothing done.
   */
  admit (frame: Buffer, sink: ResultSink): number {
    const kind = frame.length < 20 ? 0 : frame[0]!
    if ((kind < MSG_CAST || kind > MSG_UNFOLLOW) && kind !== MSG_FORGET) {
      this.refused++
      return kRefused
    }
    const home = this.homeOf(shardOf(frame.readUInt32LE(FRAME_HASH_AT)))
    if (kind === MSG_CALL || kind === MSG_FOLLOW) {
      const proxy = this.proxies.add(sink, frame.readUInt32LE(FRAME_CALL_AT), kind === MSG_FOLLOW, home, this.parts.epochOf(home))
      frame.writeUInt32LE(proxy, FRAME_CALL_AT)
      frame.writeInt32LE(0, FRAME_REPLY_TO_AT) // the reply or state comes to the main thread
    } else if (kind === MSG_UNFOLLOW) {
      const proxy = this.proxies.followOf(sink, frame.readUInt32LE(FRAME_CALL_AT))
      if (proxy === undefined) return kNothingToDo // never subscribed here, or ended already
      this.proxies.delete(proxy)
      frame.writeUInt32LE(proxy, FRAME_CALL_AT)
      frame.writeInt32LE(0, FRAME_REPLY_TO_AT)
    }
    return home
  }

  /**
   * A result frame from another host: a reply to a call made here, a state for a follow
   * made here, or (a proxy id) one passing through this host to the host that asked.
   */
  result (frame: Buffer): void {
    const kind = frame[0]
    if (frame.length < 20 || (kind !== FRAME_REPLY && kind !== FRAME_STATE)) {
      this.refused++
      return
    }
    const id = frame.readUInt32LE(FRAME_RESULT_ID_AT)
    if (id >= PROXY_BIT) {
      this.proxied(kind, frame)
      return
    }
    const reader = this.reader
    if (frame.length > reader.scratch.length) {
      this.refused++
      return
    }
    reader.scratch.set(frame, 0)
    const value = reader.reply(0, frame.length)
    if (kind === FRAME_REPLY) this.parts.pending.settle(reader.replyCallId, reader.replyOk, value)
    else this.parts.follows().deliver(reader.replyCallId, reader.replyOk, value)
  }

  /** @internal ThreadLoop.onRawResult: a reply or state for a proxy id, from a home thread. */
  proxied (kind: number, frame: Buffer): boolean {
    const id = frame.readUInt32LE(FRAME_RESULT_ID_AT)
    const ended = kind === FRAME_REPLY || frame.readInt32LE(8) !== 1 // a follow ends with an error state
    const p = ended ? this.proxies.delete(id) : this.proxies.get(id)
    if (p === undefined) return true // its sink is gone, or it was answered already
    frame.writeUInt32LE(p.remoteId, FRAME_RESULT_ID_AT)
    p.sink.result(frame)
    return true
  }

  /**
   * A frame a home thread forwarded (as its ring bytes, this host's own ids) back onto that
   * thread's ring: the shard is served here, and the thread forwarded it only because it was
   * past the serving deadline then. False if there is no ring to the thread (restarting).
   */
  serveHere (frame: Buffer): boolean {
    return this.parts.loop.sendRaw(this.homeOf(shardOf(frame.readUInt32LE(FRAME_HASH_AT))), frame, false)
  }

  /** @internal ThreadLoop.onForeign */
  foreign (frame: Buffer, from: number): void {
    this.routes?.route(frame, from)
  }

  /** @internal durable sends this host's runtimes applied, committed (from the threads, batched) */
  applied (acks: readonly AppliedAck[]): void {
    this.routes?.applied?.(acks)
  }

  /**
   * The sender of a durable send dropped its record: agent `id` forgets that it applied
   * it (a MSG_FORGET onto its home thread's ring, behind what was delivered to it before).
   */
  forget (id: string, hash: number, origin: string, key: number): void {
    this.parts.loop.sendForget(id, hash, origin, key)
  }

  // ---- when a peer or a thread goes away -----------------------------------------

  /**
   * Calls routed away that will get no answer (their link dropped): fail them with
   * `error`. Ids of this host's calls, or proxy ids (their caller is told).
   */
  failCalls (ids: Iterable<number>, error: () => ShoalError): void {
    for (const id of ids) {
      if (id >= PROXY_BIT) {
        const p = this.proxies.delete(id)
        if (p !== undefined) this.answer(p, error().toWire())
      } else {
        this.parts.pending.fail(id, error())
      }
    }
  }

  /** Follows routed away whose link dropped: subscribe again (this host's), or tell the follower (a proxy's). */
  renewFollows (ids: Iterable<number>): void {
    const unavailable = new ShardUnavailableError('the host serving the followed agent became unreachable').toWire()
    for (const id of ids) {
      if (id >= PROXY_BIT) {
        const p = this.proxies.delete(id)
        if (p !== undefined) this.answer(p, unavailable)
      } else {
        this.parts.follows().renewOne(id)
      }
    }
  }

  /** A sink (another host's link) is gone: drop every proxy that would answer it. */
  dropSink (sink: ResultSink): void {
    this.proxies.take((p) => p.sink === sink)
  }

  /** @internal the worker on `thread` restarted: answer its proxies, and send it the move steps it never answered. */
  restarted (thread: number): void {
    const epoch = this.parts.epochOf(thread)
    const crashed = new WorkerCrashedError(`the worker thread running the agent died before replying; it has been restarted`, { thread }).toWire()
    const moved = new ShardUnavailableError('the worker thread running the followed agent restarted').toWire()
    for (const [, p] of this.proxies.take((q) => q.thread === thread && q.epoch < epoch)) this.answer(p, p.follow ? moved : crashed)
    for (const [token, c] of this.controls) if (c.home === thread) this.parts.loop.sendControl(thread, token, c.msg)
    // commits the dead worker had queued may be lost while their journals went out: the
    // streams of its shards start over (their replicas take a snapshot)
    const routes = this.routes
    if (routes?.replicate === undefined) return
    const its = (shard: number): boolean => this.homeOf(shard) === thread
    // and the sends it had stored and not released are not redelivered — by its replacement
    // at start-up, or any thread — until its shards' writes have landed (unreleased-sends.ts)
    const unreleased = this.parts.loop.unreleasedSends
    const kept = unreleased?.keep(thread) ?? null
    routes.lost?.(its)
    if (kept === null) return
    if (routes.landed === undefined) unreleased!.release(thread, kept)
    else void routes.landed(its).then(() => unreleased!.release(thread, kept))
  }

  private answer (p: Proxy, error: WireError): void {
    const buf = this.scratch
    buf.clear()
    this.writer.result(buf, p.follow ? FRAME_STATE : FRAME_REPLY, p.remoteId, false, error)
    buf.forEach((frame) => p.sink.result(frame))
  }

  // ---- shard moves (docs/cluster.md) ------------------------------------------------

  /**
   * Stop serving `shards`: their frames go to the router from now on, their home threads
   * let their turns and commits finish and passivate their agents. Resolves with the
   * agents' armed timeouts once every home thread is done — and every frame it forwarded
   * before has reached the router.
   */
  async release (shards: readonly number[]): Promise<MovedTimeout[]> {
    for (const s of shards) this.states[s] = SHARD_FORWARD
    const answers = await Promise.all([...this.byHome(shards)].map(([home, group]) => this.control(home, { op: 'release', shards: group })))
    void this.goDirect(shards)
    const timeouts: MovedTimeout[] = []
    for (const a of answers) if (a.op === 'released') timeouts.push(...a.timeouts)
    return timeouts
  }

  /**
   * Send the main thread's frames for `shards` (served elsewhere now) straight to the
   * router — each once a fence through its home thread has come back with no frame of the
   * main thread's sent that way after it: the home thread has forwarded all of them, so
   * nothing sent direct can overtake one. A few tries; a shard that stays busy stays on
   * the home path (correct, one hop slower).
   */
  private async goDirect (shards: readonly number[]): Promise<void> {
    let pending = shards.filter((s) => this.states[s] === SHARD_FORWARD)
    for (let attempt = 0; attempt < 5 && pending.length !== 0; attempt++) {
      const before = pending.map((s) => this.homeSends[s]!)
      await Promise.all([...this.byHome(pending)].map(([home]) => this.control(home, { op: 'fence' })))
      const busy: number[] = []
      pending.forEach((s, i) => {
        if (this.states[s] !== SHARD_FORWARD) return // arriving again meanwhile
        if (this.homeSends[s] === before[i]) this.direct[s] = 1
        else busy.push(s)
      })
      pending = busy
    }
  }

  /**
   * `shards` are coming here: their home threads keep their frames from now on. Resolves
   * once every frame a home thread forwarded before has reached the router, which holds
   * them for `adopt`.
   */
  async arrive (shards: readonly number[]): Promise<void> {
    for (const s of shards) {
      this.direct[s] = 0
      this.states[s] = SHARD_ARRIVING
    }
    await Promise.all([...this.byHome(shards)].map(([home]) => this.control(home, { op: 'fence' })))
  }

  /**
   * Serve `shards` (after `arrive`; their records are in the store): the frames the router
   * held for them go first, then what their home threads kept; their reminders are read
   * and `timeouts` armed.
   */
  async adopt (shards: readonly number[], timeouts: readonly MovedTimeout[], held: (shard: number) => FrameBuffer | undefined): Promise<void> {
    const loop = this.parts.loop
    await Promise.all([...this.byHome(shards)].map(([home, group]) => {
      for (const s of group) held(s)?.forEach((frame) => { loop.sendRaw(home, frame, true) })
      const set = new Set(group)
      return this.control(home, { op: 'adopt', shards: group, timeouts: timeouts.filter((t) => set.has(shardOf(t[1]))) })
    }))
  }

  /** Calls other hosts made to agents here that have not been answered yet. */
  get proxiedCalls (): number {
    return this.proxies.calls
  }

  /** Commits are replicated (the router gave `replicate`): workers are told so when they start. */
  get replicates (): boolean {
    return this.routes?.replicate !== undefined
  }

  /** @internal a thread's commit whose journal went out failed locally (FRAME_CONTROL 'commit-failed') */
  commitFailed (shards: readonly number[]): void {
    this.routes?.lost?.(shards)
  }

  /**
   * Resolves once every commit that thread `home` queued before this call has committed
   * (or failed) — a barrier through its ring (FRAME_CONTROL 'commits'). A worker that
   * restarts meanwhile answers for itself (what its predecessor had queued is `lost`).
   */
  commitsOf (home: number): Promise<void> {
    return this.control(home, { op: 'commits' }).then(() => {})
  }

  /** @internal a thread's commit journal (FRAME_CONTROL 'replicate'): answer once replicated */
  replicate (from: number, token: number, journal: Uint8Array): void {
    const routes = this.routes
    const epoch = this.parts.epochOf(from)
    const answer = (error: WireError | null): void => {
      // the worker died meanwhile: its replacement numbers its own journals from 1 again, and
      // this answer would settle the replacement's commit of the same token — release its
      // replies before its replicas have it. The dead one's batch is `lost` (restarted).
      if (this.parts.epochOf(from) !== epoch) return
      this.parts.loop.sendControl(from, token, { op: 'replicated', error })
      this.parts.loop.wake()
    }
    if (routes?.replicate === undefined) {
      answer(null)
      return
    }
    routes.replicate(journal).then(() => answer(null), (err: unknown) => answer(toWire(err)))
  }

  /**
   * Until when (wall ms, `Date.now()`) this host may serve
   * from memory: its threads stop serving after it (mesh.ts `servingUntil`). 0: no limit.
   */
  serveUntil (ms: number): void {
    const word = this.parts.mesh.servingUntil
    if (word !== null) new Float64Array(word)[0] = ms
  }

  /** @internal ThreadLoop.onControl */
  answered (token: number, msg: ControlOp): void {
    const c = this.controls.get(token)
    if (c === undefined) return
    this.controls.delete(token)
    c.resolve(msg)
  }

  private control (home: number, msg: ControlOp): Promise<ControlOp> {
    const token = this.nextToken = (this.nextToken + 1) >>> 0
    return new Promise((resolve) => {
      this.controls.set(token, { home, msg, resolve })
      this.parts.loop.sendControl(home, token, msg)
    })
  }

  private byHome (shards: readonly number[]): Map<number, number[]> {
    const groups = new Map<number, number[]>()
    for (const s of shards) {
      const home = this.homeOf(s)
      let g = groups.get(home)
      if (g === undefined) groups.set(home, g = [])
      g.push(s)
    }
    return groups
  }
}
