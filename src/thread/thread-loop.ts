/**
 * The loop every thread runs (the main thread and each worker): drain inbound rings
 * up to a budget → run the turns they carry → close the commit batch → publish
 * outbound rings → yield with `setImmediate` if work remains, else park on the
 * doorbell with `Atomics.waitAsync`, leaving the event loop free for LMDB callbacks,
 * timers and control messages.
 *
 *        ┌──────── pass ────────┐
 *   wake → copyOut → decode → deliver → commit → publish ─┬─ more? → setImmediate(pass)
 *        └──────────────────────┘                         └─ idle  → park (waitAsync)
 *
 * States: `running` (inside a pass), `scheduled` (setImmediate pending), `parked`
 * (waitAsync pending). A local wake — an async turn settled, a commit finished, the
 * main thread wrote a call — rings this thread's own doorbell when parked, which
 * resolves the pending waitAsync; there is never more than one waiter.
 *
 * It is also the runtime's `RuntimeOutput`: replies and sends are encoded straight into
 * the ring of the thread they go to. Whoever else writes to other threads from this one
 * (the host's calls and casts, follows, offload tasks and results) does it through the
 * `send*` methods: the rings and the frame writer are the loop's own.
 *
 * Time (thread-clock.ts): each pass first moves the runtime to the host clock's tick,
 * firing due timers (at most TIMER_BUDGET per pass; the rest next pass). Before parking
 * it publishes the next tick its timers are due at, and re-checks the clock after
 * announcing sleep, so the clock rings its doorbell exactly when a tick has work for it.
 */
import { kNudgeAfter, kNudgeTries, minorGcNow } from './pretenure-nudge.ts'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingConsumer, RingProducer, align4 } from '../../native-free-core/ring/ring-queue.ts'
import type { BytesView, FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import { shardOf } from '../../native-free-core/placement/hash.ts'
import type { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/ports.ts'
import { toWire } from '../../native-free-core/errors.ts'
import { kStatActivations, kStatIdBytes, kStatSent, kStatStateReads } from './mesh.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { FRAME_CONTROL, FRAME_REPLY, FRAME_STATE, FRAME_TASK, FrameReader, FrameWriter, KIND_HELD } from './frame-codec.ts'
import type { IdPrefixBytes, SendCopy } from './frame-codec.ts'
import { FrameBuffer } from './frame-buffer.ts'
import { ShardHandover } from './shard-handover.ts'
import type { ControlOp } from './shard-handover.ts'
import { SHARD_ARRIVING, SHARD_FORWARD, SHARD_LOCAL } from '../../native-free-core/placement/shard-state.ts'
import type { ShardStates } from '../../native-free-core/placement/shard-state.ts'
import { MSG_FORGET, MSG_SEND } from '../../native-free-core/agent/envelope.ts'
import type { SendId } from '../../native-free-core/storage/store.ts'
import type { Envelope } from '../../native-free-core/agent/envelope.ts'
import type { Mesh } from './mesh.ts'
import {
  kStatActive, kStatAlive, kStatBusy, kStatCommits, kStatCommitted, kStatMessages, kStatOverflowBytes,
  kStatPasses, kStatPendingCommit, kStatRateLimited, kStatFollowers, kStatReminders, kStatRunning, kStatCommitStats, kStatTimers, kStatGc, statsView,
  kStatAgentErrors, kStatBadFrames, kStatFailedSends
} from './mesh.ts'
import { ClockView } from '../time/thread-clock.ts'
import { threadGcPauses } from '../observe/gc-pauses.ts'
import { UnreleasedSends } from './unreleased-sends.ts'

/** Bytes of frames taken from one ring per pass: bounds a pass to a few ms so timers and I/O interleave. */
const RING_BUDGET_BYTES = 256 * 1024
/** Timer expiries handled per pass: a million idle agents due on one tick spread over passes. */
const TIMER_BUDGET = 65_536
/** Message frames whose agents touchAhead loads before they are delivered. */
const kTouchAhead = 16

const bufferView: BytesView = (b, o, l) => Buffer.from(b as ArrayBuffer, o, l)

export interface ThreadLoopOptions {
  readonly index: number
  readonly mesh: Mesh
  readonly maxMessageBytes: number
  /**
   * The shard runtime this thread runs, made once the loop exists (the loop is its
   * output). None on a main thread whose agents all live in workers.
   */
  readonly runtime?: (loop: ThreadLoop) => ShardRuntime
  /** Called for each reply frame (main thread). */
  readonly onReply?: (callId: number, ok: boolean, value: unknown) => void
  /** A message could not be delivered or a handler failed. */
  readonly onAgentError?: (id: string, method: string, error: WireError) => void
  /** Result frames other than replies: FRAME_STATE (follow), FRAME_TASK_DONE (offload). */
  readonly onResult?: (kind: number, id: number, ok: boolean, value: unknown) => void
  /** A FRAME_TASK from `peer` (the thread that owns the offload pool). */
  readonly onTask?: (peer: number, taskId: number, name: string, input: unknown) => void
  /**
   * Cluster (main thread): a message frame for a shard this host does not serve, as its
   * ring bytes (a view, valid during the call): forwarded by a home thread, or one of the
   * main thread's own runtime's (`workers: 0`). `from` is the thread it came from.
   */
  readonly onForeign?: (frame: Buffer, from: number) => void
  /**
   * Cluster (main thread): a reply or follow state whose id is a proxy's (≥ 2^31: the call
   * or follow came from another host), as its ring bytes; true when taken.
   */
  readonly onRawResult?: (kind: number, frame: Buffer) => boolean
  /** Cluster (main thread): an answer of a home thread to a shard move step (shard-handover.ts). */
  readonly onControl?: (from: number, token: number, msg: ControlOp) => void
  /** Dedup mode: the runtime applied a durable send, committed (RuntimeOutput.applied). */
  readonly onApplied?: (id: string, hash: number, send: SendId) => void
}

export class ThreadLoop implements RuntimeOutput {
  readonly index: number
  readonly bell: Doorbell
  readonly mesh: Mesh
  readonly clock: ClockView
  readonly runtime: ShardRuntime | null
  private readonly producers: Array<RingProducer | null> = []
  private readonly consumers: Array<RingConsumer | null> = []
  private readonly writer: FrameWriter
  private readonly reader: FrameReader
  private readonly shardTable: Uint16Array
  private readonly bells: Doorbell[]
  private readonly stats: Float64Array
  private readonly onReply: ((callId: number, ok: boolean, value: unknown) => void) | undefined
  private readonly onAgentError: ((id: string, method: string, error: WireError) => void) | undefined
  private readonly onResult: ((kind: number, id: number, ok: boolean, value: unknown) => void) | undefined
  private readonly onTask: ((peer: number, taskId: number, name: string, input: unknown) => void) | undefined
  private readonly onForeign: ((frame: Buffer, from: number) => void) | undefined
  private readonly onRawResult: ((kind: number, frame: Buffer) => boolean) | undefined
  private readonly onControl: ((from: number, token: number, msg: ControlOp) => void) | undefined
  private readonly onApplied: ((id: string, hash: number, send: SendId) => void) | undefined
  /** Shard states (placement/shard-state.ts); null on a single host: every shard is served by its home. */
  private readonly states: ShardStates | null
  /** The host's serving deadline (mesh.ts `servingUntil`), and whether this pass is past it. */
  private readonly servingUntil: Float64Array | null
  private lapsed = false
  /** The host's threads' unreleased durable sends (mesh.ts `unreleasedSends`); null on a single host. */
  readonly unreleasedSends: UnreleasedSends | null
  /** Shards leaving and arriving at this thread (cluster only). */
  private readonly handover: ShardHandover | null
  /** Durable sends applied and committed, to report to the main thread (cluster, dedup mode). */
  private appliedAcks: Array<[number, string, number, string, number]> = []
  /** Where a decoded message is encoded before it leaves (the main thread forwarding to its router). */
  private scratchFrames: FrameBuffer | null = null

  /** Replies, sends and followed states the runtime wrote (RuntimeOutput), for stats. */
  private sent = 0
  private running = false
  /** This thread's GC pauses are mirrored into its stats words (between start and stop). */
  private observingGc = false
  private scheduled = false
  private parked = false
  private again = false
  private stopped = false
  /** Producers written since the last publish. */
  private readonly dirty = new Set<number>()
  /** The early minor GC of a worker's first mass activation is still to come (pretenure-nudge.ts). */
  private nudgePending = true
  private nudgeTries = 0
  /** 1 for a peer in `dirty`: a cast tests a byte, not the Set, for a peer already written since the last publish. */
  private dirtyMarks = new Uint8Array(0)
  private flushQueued = false
  /** What touchAhead's loads folded into (kept so that they are not optimized away). */
  private touchSink = 0
  /** The hashes of the frames touchAhead looks at. */
  private readonly touchHashes = new Int32Array(kTouchAhead)
  private passes = 0
  /** Counted whether or not anyone listens for 'agent-error' (published in the stats words). */
  private agentErrors = 0
  private badFrames = 0
  private failedSends = 0
  /** The nextDue last published (skips a store per park when it did not change). */
  private publishedDue = -1
  /** This thread's parkedAt word holds a tick (see thread-clock.ts). */
  private parkedAtSet = false

  constructor (options: ThreadLoopOptions) {
    this.index = options.index
    this.mesh = options.mesh
    this.writer = new FrameWriter(options.maxMessageBytes)
    this.reader = new FrameReader(options.mesh.ringBytes)
    this.shardTable = new Uint16Array(options.mesh.shardTable)
    this.bells = options.mesh.bells.map((b) => new Doorbell(b))
    this.bell = this.bells[this.index]!
    this.stats = statsView(options.mesh, this.index)
    this.clock = new ClockView(options.mesh.clock)
    this.onReply = options.onReply
    this.onApplied = options.onApplied
    this.onAgentError = options.onAgentError
    this.onResult = options.onResult
    this.onTask = options.onTask
    this.onForeign = options.onForeign
    this.onRawResult = options.onRawResult
    this.onControl = options.onControl
    this.states = options.mesh.shardStates === null ? null : new Uint8Array(options.mesh.shardStates)
    this.servingUntil = options.mesh.servingUntil == null ? null : new Float64Array(options.mesh.servingUntil)
    this.unreleasedSends = options.mesh.unreleasedSends == null ? null : new UnreleasedSends(options.mesh.unreleasedSends)
    // a restarted thread: what its predecessor had not released the main thread keeps until it has landed (Gateway.restarted)
    this.unreleasedSends?.set(this.index, 0, 0)
    for (let peer = 0; peer < this.mesh.threads; peer++) {
      this.producers.push(null)
      this.consumers.push(null)
      this.attach(peer)
    }
    this.runtime = options.runtime?.(this) ?? null
    this.handover = this.states === null ? null : new ShardHandover(this, this.states, this.runtime)
  }

  /** (Re)connect the rings to and from `peer`, e.g. after the peer restarted. */
  attach (peer: number): void {
    const out = this.mesh.rings[this.index]![peer]
    const inn = this.mesh.rings[peer]![this.index]
    this.producers[peer] = out ? new RingProducer(out, this.bells[peer]!, bufferView) : null
    this.consumers[peer] = inn ? new RingConsumer(inn, this.bells[peer]!) : null
    this.dirty.delete(peer)
    if (this.dirtyMarks.length <= peer) {
      const marks = new Uint8Array(this.producers.length)
      marks.set(this.dirtyMarks)
      this.dirtyMarks = marks
    }
    this.dirtyMarks[peer] = 0
  }

  /** Process what `peer` already published, then switch to its new rings (it restarted). */
  reattach (peer: number, out: SharedArrayBuffer | null, inn: SharedArrayBuffer | null): void {
    this.drainFrom(peer)
    this.mesh.rings[this.index]![peer] = out
    this.mesh.rings[peer]![this.index] = inn
    this.attach(peer)
  }

  /** Run every frame `peer` has published, now, outside the loop (used before re-attaching). */
  drainFrom (peer: number): void {
    const ring = this.consumers[peer]
    if (ring == null) return
    const wasRunning = this.running
    this.running = true
    this.unparkClock()
    this.lapsed = this.pastServingDeadline()
    try {
      let bytes: number
      while ((bytes = ring.copyOut(this.reader.scratch, RING_BUDGET_BYTES)) > 0) this.dispatch(bytes, peer)
      this.runtime?.commit()
      this.flush()
    } finally {
      this.running = wasRunning
    }
    // parked meanwhile (a control message): pass and park again, so parkedAt is set anew
    if (this.parked && !this.stopped) this.bell.ring()
  }

  /** Final pass: run what is inbound, commit, wait for commits in flight, publish; then stop. */
  async drainAndStop (): Promise<void> {
    for (let peer = 0; peer < this.consumers.length; peer++) this.drainFrom(peer)
    this.stop()
    this.runtime?.commit()
    await this.runtime?.whenCommitted()
    this.flush()
    this.publishStats()
  }

  /** Which thread owns the agent with this hash. */
  ownerOf (hash: number): number {
    return this.shardTable[shardOf(hash)]!
  }

  /** Which thread owns this shard. */
  ownerOfShard (shard: number): number {
    return this.shardTable[shard]!
  }

  start (): void {
    this.bell.cancelSleep()
    this.stats[kStatAlive] = 1
    if (!this.observingGc) {
      this.observingGc = true
      threadGcPauses.start(this.stats, kStatGc)
    }
    // a restarted worker joins a running clock, and its predecessor's words are stale
    this.clock.setNextDue(this.index, -1)
    this.clock.setParkedAt(this.index, -1)
    const rt = this.runtime
    if (rt !== null) {
      // reminders first: those due by the clock's tick fire in the first catch-up
      // in a cluster, only the shards this host serves now (the others' reminders come with an adoption)
      const states = this.states
      rt.startReminders(this.clock.epochMs, this.clock.tickMs, states === null
        ? (hash) => this.ownerOf(hash) === this.index
        : (hash) => this.ownerOf(hash) === this.index && states[shardOf(hash)] === SHARD_LOCAL)
      rt.advanceTo(this.clock.now(), TIMER_BUDGET)
    }
    this.schedule()
  }

  /** Stop parking and scheduling; the current pass finishes. */
  stop (): void {
    this.stopped = true
    this.stats[kStatAlive] = 0
    if (this.observingGc) {
      this.observingGc = false
      threadGcPauses.stop(this.stats)
    }
    if (this.parked) this.bell.ring()
  }

  // ---- RuntimeOutput -------------------------------------------------------------

  reply (replyTo: number, callId: number, ok: boolean, value: unknown): void {
    const ring = this.producers[replyTo]
    if (ring == null) return // the caller's thread is gone (restarting): its calls already failed
    this.writer.reply(ring, callId, ok, value)
    this.sent++
    this.touched(replyTo)
  }

  send (id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown, durable: SendId | null, _from?: string, payloadBytes?: Uint8Array | null): void {
    const to = this.ownerOf(hash)
    try {
      this.writer.send(this.producers[to]!, id, hash, typeIdx, methodIdx, payload, durable, payloadBytes ?? null)
      this.touched(to)
      this.sent++
    } catch (err) {
      // the turn already committed: the send cannot fail its handler any more — report it
      this.failedSends++
      this.agentErrors++
      this.onAgentError?.(id, `#${methodIdx}`, toWire(err))
    }
  }

  followed (thread: number, followId: number, ok: boolean, value: Uint8Array | WireError): void {
    const ring = this.producers[thread]
    if (ring == null) return // the following thread is gone
    if (ok) {
      try {
        this.writer.resultBytes(ring, FRAME_STATE, followId, value as Uint8Array)
      } catch (err) {
        this.writer.result(ring, FRAME_STATE, followId, false, toWire(err)) // a state over maxMessageBytes
      }
    } else {
      this.writer.result(ring, FRAME_STATE, followId, false, value)
    }
    this.touched(thread)
    this.sent++
  }

  unreleased (lowest: number, upper: number): void {
    this.unreleasedSends?.set(this.index, lowest, upper)
  }

  /** Past the host's serving deadline now (its lease was last confirmed too long ago): serve nothing from memory. */
  pastServingDeadline (): boolean {
    const until = this.servingUntil
    return until !== null && until[0] !== 0 && Date.now() > until[0]!
  }

  applied (id: string, hash: number, send: SendId): void {
    if (this.onApplied !== undefined) this.onApplied(id, hash, send)
    else if (this.states !== null) {
      // a cluster: the main thread acknowledges them to their senders' hosts, batched per pass
      if (this.appliedAcks.length === 0) this.wake()
      this.appliedAcks.push([hash, id, send.senderShard, send.origin, send.key])
    }
  }

  /** Applied durable sends to report to the main thread (cluster), in the ring after the pass's other frames. */
  private sendApplied (): void {
    const acks = this.appliedAcks
    this.appliedAcks = []
    this.sendResult(0, FRAME_CONTROL, 0, true, { op: 'applied', acks } satisfies ControlOp)
  }

  wake (): void {
    if (this.running) this.again = true
    else this.schedule()
  }

  forward (env: Envelope): void {
    // to the main thread's router (a message that waited in a mailbox, or a redelivered send)
    try {
      if (this.index === 0) {
        const buf = this.scratchFrames ??= new FrameBuffer()
        buf.clear()
        this.encode(buf, env)
        buf.forEach((frame) => this.onForeign?.(frame, 0))
        return
      }
      this.encode(this.producers[0]!, env)
      this.touched(0)
    } catch (err) {
      this.onAgentError?.(env.id, `#${env.methodIdx}`, toWire(err))
    }
  }

  private encode (sink: FrameSink, env: Envelope): void {
    if (env.kind === MSG_SEND) this.writer.send(sink, env.id, env.hash, env.typeIdx, env.methodIdx, env.payload, identityOf(env))
    else if (env.kind === MSG_FORGET) this.writer.forget(sink, env.id, env.hash, env.origin, env.outboxKey)
    else this.writer.message(sink, env.kind, env.id, null, env.hash, env.typeIdx, env.methodIdx, env.payload, env.replyTo, env.callId)
  }

  /**
   * Cluster (main thread): a step of a shard move for the home thread `to`, in ring order
   * with the messages (shard-handover.ts); the answer comes to `onControl`.
   */
  sendControl (to: number, token: number, msg: ControlOp): void {
    this.sendResult(to, FRAME_CONTROL, token, true, msg)
  }

  /**
   * Cluster (main thread): a frame as its ring bytes (from another host, or held for a
   * moving shard) for the home thread `to`; `held` marks one held for an arriving shard.
   * False if there is no ring to `to`.
   */
  sendRaw (to: number, frame: Uint8Array, held: boolean): boolean {
    const ring = this.producers[to]
    if (ring == null) return false
    const o = ring.begin(frame.length)
    const u8 = ring.target.u8
    u8.set(frame, o)
    if (held) u8[o] = u8[o]! | KIND_HELD
    ring.end(frame.length)
    this.touched(to)
    return true
  }

  agentError (id: string, method: string, error: WireError): void {
    this.agentErrors++
    this.onAgentError?.(id, method, error)
  }

  // ---- producing from outside a pass (calls and casts, follows, offload) --------------

  /**
   * A message for an agent on thread `to` (a call, cast, follow or unfollow from this
   * thread, which the reply or state comes back to), published at the end of the current
   * turn of the event loop. Throws EncodeError/MessageTooLargeError, writing nothing;
   * false if there is no ring to `to` (its thread is gone).
   */
  sendMessage (to: number, kind: number, id: string, idBytes: Uint8Array | null, hash: number, typeIdx: number, methodIdx: number,
    payload: unknown, callId: number): boolean {
    const ring = this.producers[to]
    if (ring == null) return false
    this.writer.message(ring, kind, id, idBytes, hash, typeIdx, methodIdx, payload, this.index, callId)
    this.touched(to)
    return true
  }

  /**
   * `sendMessage` for an id given as the UTF-8 bytes of its `quota \x1f type \x1f` prefix
   * and its key (a ref's first message: no id string is made for it).
   */
  sendMessageTo (to: number, kind: number, prefix: IdPrefixBytes, key: string, hash: number, typeIdx: number, methodIdx: number,
    payload: unknown, callId: number): boolean {
    const ring = this.producers[to]
    if (ring == null) return false
    this.writer.messageTo(ring, kind, prefix, key, hash, typeIdx, methodIdx, payload, this.index, callId)
    this.touched(to)
    return true
  }

  /**
   * Dedup mode: a MSG_FORGET for agent `id`'s applied record of the send `(origin, key)`,
   * to the thread that owns it — after the copies this thread sent it, so handled after
   * them (durable-outbox.ts). On the owning thread itself, straight into its runtime.
   */
  sendForget (id: string, hash: number, origin: string, key: number): void {
    const to = this.ownerOf(hash)
    if (to === this.index) {
      this.runtime?.forget(id, hash, origin, key)
      this.wake()
      return
    }
    const ring = this.producers[to]
    if (ring == null) return // its thread is gone (restarting): the record stays until forgotten again
    this.writer.forget(ring, id, hash, origin, key)
    this.touched(to)
  }

  /** A result frame (`kind`: FRAME_TASK_DONE, ...) for thread `to`; false if there is no ring to it. */
  sendResult (to: number, kind: number, id: number, ok: boolean, value: unknown): boolean {
    const ring = this.producers[to]
    if (ring == null) return false
    this.writer.result(ring, kind, id, ok, value)
    this.touched(to)
    return true
  }

  /** `ctx.offload(name, input)` for the pool's thread `to`. Throws EncodeError/MessageTooLargeError, writing nothing. */
  sendTask (to: number, taskId: number, name: string, input: unknown): void {
    this.writer.task(this.producers[to]!, taskId, name, input)
    this.touched(to)
  }

  /** A producer was written: publish at the end of the current turn of the event loop. */
  private touched (peer: number): void {
    if (this.dirtyMarks[peer] !== 1) {
      this.dirtyMarks[peer] = 1
      this.dirty.add(peer)
    }
    if (!this.running && !this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(() => {
        this.flushQueued = false
        this.flush()
      })
    }
  }

  /** Publish every written producer (one Atomics.store each) and wake sleeping consumers. */
  flush (): void {
    for (const peer of this.dirty) {
      const ring = this.producers[peer]
      if (ring == null || !ring.publish()) {
        this.dirty.delete(peer)
        this.dirtyMarks[peer] = 0
      }
      // an overflowing producer stays in `dirty`: the consumer rings our bell when it frees space
    }
  }

  // ---- the loop --------------------------------------------------------------------

  private schedule (): void {
    if (this.stopped && !this.parked) return
    if (this.parked) {
      this.bell.ring()
      return
    }
    if (this.scheduled || this.running) {
      this.again = true
      return
    }
    this.scheduled = true
    setImmediate(this.pass)
  }

  private readonly pass = (): void => {
    this.scheduled = false
    this.running = true
    this.stats[kStatRunning] = 1
    this.again = false
    let more = false
    this.unparkClock()
    this.lapsed = this.pastServingDeadline()
    try {
      const rt = this.runtime
      if (rt !== null && !rt.advanceTo(this.clock.now(), TIMER_BUDGET)) more = true
      for (let peer = 0; peer < this.consumers.length; peer++) {
        const ring = this.consumers[peer]
        if (ring == null) continue
        const bytes = ring.copyOut(this.reader.scratch, RING_BUDGET_BYTES)
        if (bytes === 0) continue
        this.dispatch(bytes, peer)
        if (ring.hasData()) more = true
      }
      // once, early in a worker's first mass activation: V8 pretenures the new cells (pretenure-nudge.ts)
      if (this.nudgePending && rt !== null && rt.activations >= kNudgeAfter) {
        // another thread may hold V8's flag off this instant: tried again on the next passes, a few times
        if (this.index === 0 || minorGcNow() || ++this.nudgeTries >= kNudgeTries) this.nudgePending = false
      }
      this.runtime?.commit()
      this.handover?.check()
      if (this.appliedAcks.length !== 0 && this.index !== 0) this.sendApplied()
      // before publishing: a caller that got a reply reads stats that include its turn
      this.publishStats()
      this.flush()
    } finally {
      this.running = false
      this.stats[kStatRunning] = 0
    }
    this.passes++
    this.publishStats()
    if (this.stopped) return
    if (more || this.again) {
      this.scheduled = true
      setImmediate(this.pass)
    } else {
      this.park()
    }
  }

  /**
   * Touch the agents of the message frames from scratch offset `p` on, up to
   * kTouchAhead of them (ShardRuntime.touch); returns the offset after the last one
   * looked at. The loads of several frames are independent, so the CPU overlaps their
   * cache misses — which delivering frame by frame takes one after the other.
   */
  private touchAhead (rt: ShardRuntime, p: number, bytes: number): number {
    const i32 = this.reader.i32
    const u8 = this.reader.scratch
    const hashes = this.touchHashes
    let n = 0
    while (n < kTouchAhead && p < bytes) {
      const len = i32[p >> 2]!
      if (len < 0) { p -= len; continue }
      const o = p + 4
      p = o + align4(len)
      if (u8[o]! < FRAME_REPLY) hashes[n++] = i32[(o + 4) >> 2]!
    }
    this.touchSink ^= rt.touch(hashes, n)
    return p
  }

  /** Run every frame copied into scratch (they came from `peer`). */
  private dispatch (bytes: number, peer: number): void {
    const reader = this.reader
    const i32 = reader.i32
    const rt0 = this.runtime
    let p = 0
    let touched = 0
    while (p < bytes) {
      if (p >= touched && rt0 !== null) touched = this.touchAhead(rt0, p, bytes)
      const len = i32[p >> 2]!
      if (len < 0) { p -= len; continue } // skip marker at the ring's wrap point
      const o = p + 4
      p = o + align4(len)
      try {
        const kind = reader.kind(o)
        if (kind < FRAME_REPLY || kind === MSG_FORGET) {
          const rt = this.runtime
          if (this.states !== null) {
            const state = this.states[shardOf(i32[(o + 4) >> 2]! >>> 0)]!
            if (state !== SHARD_LOCAL || rt === null || this.lapsed) {
              // lapsed: the lease may have expired while this process stood still — the
              // main thread's router answers (fails fast while fenced, or forwards)
              this.notServed(state === SHARD_LOCAL ? SHARD_FORWARD : state, o, len, peer)
              continue
            }
          }
          if (rt !== null) rt.deliver(reader.message(o, len))
        } else if (kind === FRAME_REPLY) {
          if (i32[(o + 4) >> 2]! < 0 && this.onRawResult?.(kind, reader.scratch.subarray(o, o + len)) === true) continue
          const value = reader.reply(o, len)
          this.onReply?.(reader.replyCallId, reader.replyOk, value)
        } else if (kind === FRAME_CONTROL) {
          const msg = reader.reply(o, len) as ControlOp
          if (msg.op === 'fenced' || msg.op === 'released' || msg.op === 'adopted' || msg.op === 'applied' || msg.op === 'replicate' || msg.op === 'replicated' || msg.op === 'commit-failed' || msg.op === 'commits' || msg.op === 'committed') this.onControl?.(peer, reader.replyCallId >>> 0, msg)
          else this.handover?.control(peer, reader.replyCallId >>> 0, msg)
        } else if (kind >= KIND_HELD) {
          const state = this.states?.[shardOf(i32[(o + 4) >> 2]! >>> 0)] ?? SHARD_LOCAL
          if (state === SHARD_ARRIVING) {
            this.handover!.keep(shardOf(i32[(o + 4) >> 2]! >>> 0), reader.scratch.subarray(o, o + len), true)
          } else {
            reader.scratch[o] = kind & ~KIND_HELD
            if (state === SHARD_LOCAL && this.runtime !== null && !this.lapsed) this.runtime.deliver(reader.message(o, len))
            else this.notServed(state === SHARD_LOCAL ? SHARD_FORWARD : state, o, len, peer)
          }
        } else if (kind === FRAME_STATE && i32[(o + 4) >> 2]! < 0 && this.onRawResult?.(kind, reader.scratch.subarray(o, o + len)) === true) {
          continue
        } else if (kind === FRAME_TASK) {
          const input = reader.task(o, len)
          this.onTask?.(peer, reader.replyCallId, reader.taskName, input)
        } else {
          const value = reader.reply(o, len)
          this.onResult?.(kind, reader.replyCallId, reader.replyOk, value)
        }
      } catch (err) {
        // a frame that does not decode, or a bug in a reply callback: keep serving the rest
        this.badFrames++
        this.agentErrors++
        this.onAgentError?.('', '', toWire(err))
      }
    }
  }

  /** A message frame for a shard this thread does not serve: to the main thread's router, or kept while the shard arrives. */
  private notServed (state: number, o: number, len: number, peer: number): void {
    const frame = this.reader.scratch.subarray(o, o + len)
    if (state === SHARD_ARRIVING && this.runtime !== null) {
      this.handover!.keep(shardOf(this.reader.i32[(o + 4) >> 2]! >>> 0), frame, false)
    } else if (this.index === 0) {
      this.onForeign?.(frame, peer)
    } else {
      this.sendRaw(0, frame, false) // FORWARD: the main thread's router knows where the shard is
    }
  }

  private park (): void {
    const rt = this.runtime
    const due = rt === null ? -1 : rt.nextTimerTick()
    if (due !== this.publishedDue) {
      // before announcing sleep: see the parking race in thread-clock.ts
      this.clock.setNextDue(this.index, due)
      this.publishedDue = due
    }
    const seq = this.bell.announceSleep()
    const now = this.clock.now()
    if (this.hasInbound() || this.again || (due >= 0 && due <= now)) {
      this.bell.cancelSleep()
      this.schedule()
      return
    }
    const waiting = this.bell.wait(seq)
    if (waiting === null) {
      this.schedule()
      return
    }
    this.parked = true
    if (rt !== null && !rt.pendingCommit && !this.overflowing()) {
      this.parkedAtSet = true
      this.clock.setParkedAt(this.index, now)
    }
    void waiting.then(this.unpark)
  }

  /** Awake again: this thread's parkedAt no longer holds. */
  private unparkClock (): void {
    if (!this.parkedAtSet) return
    this.parkedAtSet = false
    this.clock.setParkedAt(this.index, -1)
  }

  private overflowing (): boolean {
    for (const ring of this.producers) if (ring != null && ring.overflowing) return true
    return false
  }

  private readonly unpark = (): void => {
    this.parked = false
    this.bell.cancelSleep()
    if (this.stopped) return
    this.scheduled = true
    this.pass()
  }

  private hasInbound (): boolean {
    for (const ring of this.consumers) if (ring != null && ring.hasData()) return true
    // an overflowing producer whose consumer freed space meanwhile: publish now, not on the next ring
    for (const peer of this.dirty) if (this.producers[peer]?.drainable() === true) return true
    return false
  }

  /** Write this thread's figures to its shared stats block (the host reads them without a round trip). */
  publishStats (): void {
    const s = this.stats
    s[kStatPasses] = this.passes
    s[kStatSent] = this.sent
    s[kStatAgentErrors] = this.agentErrors
    s[kStatBadFrames] = this.badFrames
    s[kStatFailedSends] = this.failedSends
    const rt = this.runtime
    if (rt !== null) {
      s[kStatMessages] = rt.messages
      s[kStatActive] = rt.activeAgents
      s[kStatBusy] = rt.busy
      s[kStatCommits] = rt.commits
      s[kStatCommitted] = rt.committedStates
      s[kStatPendingCommit] = rt.pendingCommit ? 1 : 0
      s[kStatRateLimited] = rt.rateLimited
      s[kStatFollowers] = rt.followers.size
      s.set(rt.commitStats.values, kStatCommitStats)
      s[kStatTimers] = rt.timers.size
      s[kStatReminders] = rt.reminders.size
      s[kStatActivations] = rt.activations
      s[kStatIdBytes] = rt.ids.allocatedBytes
      s[kStatStateReads] = rt.stateReads
    }
    let overflow = 0
    for (const ring of this.producers) if (ring != null && ring.overflowing) overflow += ring.overflowBytes
    s[kStatOverflowBytes] = overflow
  }

  /** Nothing inbound and nothing in overflow (turns and commits in flight aside). */
  get quiet (): boolean {
    return !this.hasInbound() && !this.overflowing()
  }

  /** Is this thread idle: nothing inbound, nothing in overflow, no turn or commit in flight? */
  get idle (): boolean {
    if (this.hasInbound()) return false
    for (const ring of this.producers) if (ring != null && ring.overflowing) return false
    return this.runtime === null || (this.runtime.busy === 0 && !this.runtime.pendingCommit)
  }
}

/** A durable send's identity from its envelope, or null. */
function identityOf (env: Envelope): SendCopy | null {
  return env.outboxKey === 0 ? null : { senderShard: env.senderShard, origin: env.origin, key: env.outboxKey, sentAt: env.sentAt }
}
