/**
 * Where this host sends a frame for a shard it does not serve, and what it does with the
 * frames other hosts send it (docs/cluster.md, "Cross-host frames").
 *
 * Out (`route`, called by the gateway with a frame's ring bytes):
 *   - a shard moving away from here: held, in arrival order, until the new owner has the
 *     shard's records (then forwarded to it, followed by CL_FLUSHED);
 *   - a shard that is ours in the map but not served yet (arriving): held for the adoption;
 *   - a shard served here (its home thread forwarded the frame while past the serving
 *     deadline, and the deadline has moved on since): back to its home thread;
 *   - otherwise: copied into the owner's link batch. A shard with no reachable owner:
 *     a call fails at once with ShardUnavailableError (retriable), a follow is renewed
 *     later, a cast is dropped (casts are at most once), a durable send waits in its
 *     sender's outbox and is redelivered.
 *
 * In (`batch`, per link batch): messages go to the gateway (onto their home thread's ring),
 * replies and follow states to the gateway's waiting calls and follows, cluster frames
 * (wire.ts) to the handover. While a shard arrives here, messages for it from the old
 * owner and from everyone else are held apart: the old owner's (which it held during the
 * move, and were sent first) run first.
 *
 * Calls and follows routed to a peer are remembered until their answer comes back, so
 * that when the link drops they fail (retriable) or renew, instead of waiting for a reply
 * that cannot come.
 *
 * Old copies of durable sends are dropped, wherever the router sees one — arriving from a
 * peer, leaving for one, or released from a hold: a copy made more than `copyMaxAgeMs`
 * ago (half the cluster's forgetAfterMs) may come after its receiver forgot that it applied
 * the send, and would be applied twice. A copy can be that old only if something held it —
 * a host stopped (SIGSTOP, a VM paused) with it in its memory, a hold of a move that stalled
 * — and dropping one loses nothing: the sender keeps its record until the send is
 * acknowledged, and its next copy is fresh (docs/cluster.md, "Effectively-once sends").
 */
import type { Buffer } from 'node:buffer'
import { MSG_CALL, MSG_FOLLOW, MSG_FORGET, MSG_SEND, MSG_UNFOLLOW } from '../../native-free-core/agent/envelope.ts'
import { ShardUnavailableError } from '../../native-free-core/errors.ts'
import { shardOf } from '../../native-free-core/placement/hash.ts'
import { forEachFrame } from '../../native-free-core/ring/ring-queue.ts'
import type { FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import { NONE } from '../../native-free-core/placement/shard-map.ts'
import { SHARD_LOCAL } from '../../native-free-core/placement/shard-state.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import type { Gateway, RemoteRoutes, ResultSink } from '../../src/host/gateway.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { FRAME_REPLY, FRAME_STATE, copyAgeMs } from '../../src/thread/frame-codec.ts'
import { CL_FIRST, CL_LAST } from './wire.ts'

/** The links as the router uses them (LinkHub). */
export interface RouterLinks {
  writer (peerId: string): FrameSink
  isUp (peerId: string): boolean
}

/** Frames for an arriving shard: those its old owner held and forwarded, then everyone else's. */
class Arrival {
  readonly fromOld = new FrameBuffer(1024)
  readonly others = new FrameBuffer(1024)
  /** The host the shard comes from (null: a new cluster's shard, nobody held anything). */
  readonly from: string | null
  /** The old owner said it forwarded all it held (CL_FLUSHED). */
  flushed: boolean

  constructor (from: string | null) {
    this.from = from
    this.flushed = from === null
  }
}

/** What the router hands the handover: cluster frames from a peer. */
export type ClusterFrameHandler = (peer: string, kind: number, frame: Buffer) => void

class PeerSink implements ResultSink {
  readonly peer: string
  private readonly router: ClusterRouter
  open = true

  constructor (router: ClusterRouter, peer: string) {
    this.router = router
    this.peer = peer
  }

  result (frame: Buffer): void {
    if (this.open) this.router.sendRaw(this.peer, frame)
  }
}

export class ClusterRouter implements RemoteRoutes {
  private readonly self: string
  private readonly links: RouterLinks
  private gateway!: Gateway
  private map: ShardMap | null = null
  /** Shards leaving this host: their frames, held until the new owner has the shard. */
  private readonly leaving = new Map<number, FrameBuffer>()
  /** Shards arriving here: their frames, held until they are adopted. */
  private readonly arriving = new Map<number, Arrival>()
  /** Calls and follows routed to each peer and not answered yet (this host's ids or proxy ids). */
  private readonly calls = new Map<string, Set<number>>()
  private readonly follows = new Map<string, Set<number>>()
  private readonly sinks = new Map<string, PeerSink>()
  private readonly onCluster: ClusterFrameHandler

  /**
   * The host could not renew its lease in time: it serves nothing until it can, and a frame
   * for a shard the map still gives it fails at once (retriable) instead of waiting.
   */
  fenced = false
  /**
   * Wall ms (Date.now) until which this host may serve (its lease's self-fencing deadline):
   * past it, a frame for a shard the map gives this host fails at once — the process may
   * have stood still past its lease (SIGSTOP) and another host may serve the shard now. 0: none.
   */
  servingUntil = 0
  /** Figures for stats. */
  forwarded = 0
  held = 0
  unroutable = 0
  droppedCasts = 0
  /** Frames for agents received from any peer (not cluster traffic): a leaving host waits until they stop coming. */
  received = 0
  /** Copies of durable sends dropped as too old (`copyMaxAgeMs`). */
  staleCopies = 0
  /** Holds for shards the map gave this host and took away before it adopted them, released (`setMap`). */
  releasedArrivals = 0
  /** A copy of a durable send made longer ago than this (wall-clock ms) is dropped. */
  private readonly copyMaxAgeMs: number
  /** Wall-clock ms, read once per batch or send (a test may set another). */
  now: () => number = Date.now

  constructor (self: string, links: RouterLinks, onCluster: ClusterFrameHandler, copyMaxAgeMs = Number.POSITIVE_INFINITY) {
    this.self = self
    this.links = links
    this.onCluster = onCluster
    this.copyMaxAgeMs = copyMaxAgeMs
  }

  /** Is `frame` a copy of a durable send too old to apply (`copyMaxAgeMs`)? Counted when it is. */
  private stale (frame: Uint8Array, nowMs: number): boolean {
    if (copyAgeMs(frame, nowMs) <= this.copyMaxAgeMs) return false
    this.staleCopies++
    return true
  }

  attach (gateway: Gateway): void {
    this.gateway = gateway
  }

  setMap (map: ShardMap): void {
    this.map = map
    // frames held for a shard the map gave this host, which it had not adopted when the map
    // moved on (fenced, stopped past its lease, a failover elsewhere): routed by the new map
    // now. Nothing else would take them — a shard this host does not own is never adopted
    // here — and every later frame for that shard would be held behind them for ever.
    // (Arrivals of moves, `from` a peer, are the handover's: adopted or dropped with the move.)
    if (this.arriving.size === 0) return
    const self = map.hosts.indexOf(this.self)
    for (const [shard, a] of this.arriving) {
      if (a.from !== null || (self >= 0 && map.owner[shard] === self)) continue
      this.releasedArrivals++
      this.takeArrivals([shard]).get(shard)?.forEach((frame) => this.route(frame))
    }
  }

  /** The id of the host the map names owner of `shard`, or undefined. */
  ownerOf (shard: number): string | undefined {
    const map = this.map
    if (map === null) return undefined
    const i = map.owner[shard]!
    return i === NONE ? undefined : map.hosts[i]
  }

  // ---- out ---------------------------------------------------------------------

  route (frame: Buffer): void {
    const shard = shardOf(frame.readUInt32LE(4))
    const leaving = this.leaving.get(shard)
    if (leaving !== undefined) {
      leaving.push(frame)
      this.held++
      return
    }
    const arrival = this.arriving.get(shard)
    if (arrival !== undefined) {
      arrival.others.push(frame)
      this.held++
      return
    }
    const owner = this.ownerOf(shard)
    if (owner === undefined || owner === this.self) {
      if (owner === this.self && !this.fenced && (this.servingUntil === 0 || Date.now() <= this.servingUntil)) {
        // served here: its home thread forwarded it while past the serving deadline (from a
        // ring, a mailbox or a hold), and a renewal has moved the deadline on since — back to
        // the home thread, which runs it now. Held "for the adoption" it would wait for ever
        // (a shard served here is not adopted again), and every later frame behind it.
        if (this.gateway.states[shard] === SHARD_LOCAL && this.gateway.serveHere(frame)) return
        // ours in the map but not adopted yet: keep it for the adoption
        this.arrival(shard, null).others.push(frame)
        this.held++
        return
      }
      this.unroutable++
      this.fail(frame, shard, undefined)
      return
    }
    if (!this.send(owner, frame)) this.fail(frame, shard, owner)
  }

  /** Copy a frame into `peer`'s link batch, remembering calls and follows; false if the link cannot take it. */
  private send (peer: string, frame: Buffer): boolean {
    const kind = frame[0]!
    if (kind === MSG_SEND && this.stale(frame, this.now())) return true // dropped: its sender makes a fresh copy
    if (!this.sendRaw(peer, frame)) return false
    this.forwarded++
    if (kind === MSG_CALL) this.track(this.calls, peer).add(frame.readUInt32LE(8))
    else if (kind === MSG_FOLLOW) this.track(this.follows, peer).add(frame.readUInt32LE(8))
    else if (kind === MSG_UNFOLLOW) this.follows.get(peer)?.delete(frame.readUInt32LE(8))
    return true
  }

  /** @internal a frame as it is, to a peer (results to a proxy's caller, held frames); false if the link cannot take it. */
  sendRaw (peer: string, frame: Uint8Array): boolean {
    let sink: FrameSink
    try {
      sink = this.links.writer(peer)
      const o = sink.begin(frame.length)
      sink.target.u8.set(frame, o)
      sink.end(frame.length)
    } catch {
      return false // queue full (LinkUnavailableError) or an unknown peer
    }
    return true
  }

  private fail (frame: Buffer, shard: number, owner: string | undefined): void {
    const kind = frame[0]!
    const error = (): ShardUnavailableError => new ShardUnavailableError(owner === undefined
      ? `no host serves shard ${shard} now (its owner is down, or the cluster has no map yet): retry`
      : `the host serving shard ${shard} (${owner}) cannot be reached now: retry`, { shard, ...(owner === undefined ? {} : { host: owner }) })
    if (kind === MSG_CALL) this.gateway.failCalls([frame.readUInt32LE(8)], error)
    else if (kind === MSG_FOLLOW) this.gateway.renewFollows([frame.readUInt32LE(8)])
    else if (kind !== MSG_UNFOLLOW && kind !== MSG_FORGET) this.droppedCasts++ // casts; durable sends are redelivered from their outbox, forgets asked for again
  }

  private track (table: Map<string, Set<number>>, peer: string): Set<number> {
    let ids = table.get(peer)
    if (ids === undefined) table.set(peer, ids = new Set())
    return ids
  }

  // ---- moves -------------------------------------------------------------------

  /** From now on, hold the frames of `shards` (they are leaving this host). */
  holdLeaving (shards: readonly number[]): void {
    for (const s of shards) if (!this.leaving.has(s)) this.leaving.set(s, new FrameBuffer(1024))
  }

  /**
   * The shards left: forward what was held to their new owner, then CL_FLUSHED (written by
   * `flushed`, in the same batch), and route their frames by the map from now on.
   */
  releaseLeaving (shards: readonly number[], to: string, flushed: (sink: FrameSink) => void): void {
    for (const s of shards) {
      const held = this.leaving.get(s)
      this.leaving.delete(s)
      held?.forEach((frame) => { if (!this.send(to, frame)) this.fail(frame, s, to) })
    }
    try {
      flushed(this.links.writer(to))
    } catch {
      // the link is gone: the new owner stops waiting for it after its timeout
    }
  }

  /** A move out was called off: the held frames go back to this host's threads (the shard is served here again). */
  takeLeaving (shard: number): FrameBuffer | undefined {
    const held = this.leaving.get(shard)
    this.leaving.delete(shard)
    return held
  }

  /** Start holding frames for a shard that arrives from `from` (null: nobody had it). */
  arrival (shard: number, from: string | null): Arrival {
    let a = this.arriving.get(shard)
    if (a === undefined) this.arriving.set(shard, a = new Arrival(from))
    return a
  }

  /** The old owner of an arriving shard forwarded what it held. */
  flushedFrom (peer: string, shards: readonly number[]): void {
    for (const s of shards) {
      const a = this.arriving.get(s)
      if (a !== undefined && a.from === peer) a.flushed = true
    }
  }

  /** Arriving shards still waiting for `peer`'s CL_FLUSHED. */
  waitingFrom (peer: string): number[] {
    const shards: number[] = []
    for (const [s, a] of this.arriving) if (a.from === peer && !a.flushed) shards.push(s)
    return shards
  }

  /** Does this host hold frames for `shard` because it is leaving (a move out not finished)? */
  holdsLeaving (shard: number): boolean {
    return this.leaving.has(shard)
  }

  /** Is every shard of `shards` ready to be adopted (its old owner flushed, or gave up on it)? */
  flushed (shards: readonly number[]): boolean {
    for (const s of shards) if (this.arriving.get(s)?.flushed === false) return false
    return true
  }

  /**
   * The frames held for arriving `shards`, for the adoption: the old owner's first. Once
   * taken, the shards' frames are no longer held here (their home threads keep them
   * until they serve them).
   */
  takeArrivals (shards: readonly number[]): Map<number, FrameBuffer> {
    const held = new Map<number, FrameBuffer>()
    for (const s of shards) {
      const a = this.arriving.get(s)
      if (a === undefined) continue
      this.arriving.delete(s)
      const all = new FrameBuffer(a.fromOld.used + a.others.used + 64)
      const now = this.now()
      // forgets last: a copy of the send one forgets may be held behind it
      for (const forgets of [false, true]) {
        for (const list of [a.fromOld, a.others]) list.forEach((f) => { if ((f[0] === MSG_FORGET) === forgets && !this.stale(f, now)) all.push(f) })
      }
      held.set(s, all)
    }
    return held
  }

  /** Shards held as arriving (for stats and for the handover's bookkeeping). */
  arrivingShards (): number[] {
    return [...this.arriving.keys()]
  }

  // ---- in ----------------------------------------------------------------------

  /** A batch from `peer`: frames in the ring layout (valid during the call). */
  batch (peer: string, bytes: Buffer, i32: Int32Array): void {
    const gateway = this.gateway
    const sink = this.sinkOf(peer)
    let now = -1
    forEachFrame(i32, bytes.length, (o, len) => {
      const frame = bytes.subarray(o, o + len)
      const kind = frame[0]!
      if (kind < FRAME_REPLY || kind === MSG_FORGET) {
        this.received++
        if (kind === MSG_SEND && this.stale(frame, now < 0 ? (now = this.now()) : now)) return
        if (this.arriving.size !== 0) {
          const a = this.arriving.get(shardOf(frame.readUInt32LE(4)))
          if (a !== undefined) {
            // held before it reaches a ring: translated now, so that its answer finds the way back
            if (gateway.admit(frame, sink) < 0) return
            // from the old owner, before its CL_FLUSHED: what it held; everyone else's waits behind
            if (a.from === peer && !a.flushed) a.fromOld.push(frame)
            else a.others.push(frame)
            this.held++
            return
          }
        }
        gateway.deliver(frame, sink)
      } else if (kind === FRAME_REPLY || kind === FRAME_STATE) {
        const id = frame.readUInt32LE(4)
        if (kind === FRAME_REPLY) this.calls.get(peer)?.delete(id)
        else if (frame.readInt32LE(8) !== 1) this.follows.get(peer)?.delete(id)
        gateway.result(frame)
      } else if (kind >= CL_FIRST && kind <= CL_LAST) {
        this.onCluster(peer, kind, frame)
      } else {
        gateway.refused++
      }
    })
  }

  private sinkOf (peer: string): PeerSink {
    let sink = this.sinks.get(peer)
    if (sink === undefined) this.sinks.set(peer, sink = new PeerSink(this, peer))
    return sink
  }

  /** The link to `peer` dropped: fail what waits on it, renew its follows, forget its proxies. */
  down (peer: string): void {
    const calls = this.calls.get(peer)
    this.calls.delete(peer)
    if (calls !== undefined && calls.size !== 0) {
      this.gateway.failCalls(calls, () => new ShardUnavailableError(`the link to ${peer} dropped before the reply came (the call may or may not have run): retry`, { host: peer }))
    }
    const follows = this.follows.get(peer)
    this.follows.delete(peer)
    if (follows !== undefined && follows.size !== 0) this.gateway.renewFollows(follows)
    const sink = this.sinks.get(peer)
    if (sink !== undefined) {
      sink.open = false
      this.sinks.delete(peer)
      this.gateway.dropSink(sink)
    }
  }

  /** The frames this host holds for moving shards, for an unsettled cluster's report. */
  describeHolds (): string {
    let leavingFrames = 0
    for (const held of this.leaving.values()) leavingFrames += held.count
    let arrivingFrames = 0
    let waiting = 0
    const from = new Set<string>()
    for (const a of this.arriving.values()) {
      arrivingFrames += a.fromOld.count + a.others.count
      if (!a.flushed) {
        waiting++
        if (a.from !== null) from.add(a.from)
      }
    }
    return `router holds ${this.leaving.size} leaving shard(s) (${leavingFrames} frame(s)), ${this.arriving.size} arriving (${arrivingFrames} frame(s); ${waiting} waiting for CL_FLUSHED${from.size === 0 ? '' : ` from ${[...from].join(', ')}`})`
  }

  /** Calls waiting on other hosts, for stats. */
  get callsInFlight (): number {
    let n = 0
    for (const ids of this.calls.values()) n += ids.size
    return n
  }
}
