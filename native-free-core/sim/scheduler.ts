/**
 * One simulated world: the real `ShardRuntime` running the user's definitions on this
 * thread, a `SimStore`, the messages in flight (network.ts), a virtual clock, and a
 * `Chooser` that makes every decision (choices.ts).
 *
 * A step is what one loop iteration of a host does for one message: deliver it (the
 * turn runs), then commit — and only after the commit do the turn's reply and sends
 * leave (the output gate), each meeting the send faults. The other kind of step
 * advances the clock by one tick. Which step comes next is a choice among every
 * deliverable message (oldest first) and the clock.
 *
 *   step ─┬─ [client drop / duplicate?] deliver #m ─▶ runtime.deliver ─▶ [async turn settles] ─▶ runtime.commit
 *         │                                                            │  └ crash? (store)
 *         │                              reply / send ◀── released ────┘
 *         │                                   └─ drop / duplicate / reorder / delay?
 *         ├─ tick ─▶ runtime.advanceTo(tick + 1, 0)
 *         └─ timer ─▶ runtime.advanceTo(tick, 1): one timeout / idle / reminder ─▶ runtime.commit
 *
 * The runtime sees the simulator only as its `RuntimeOutput` and its `Store`: no test
 * hook in the runtime. Sends are encoded when released and decoded at each delivery,
 * as the host's rings do, so a payload the host could not carry fails here too, and a
 * receiver never shares an object with its sender.
 *
 * A crash (faults.ts) makes the store refuse the commit: the runtime drops the agent's
 * cell (back to its last committed state), gives back the outbox sends the batch had
 * claimed, and never releases the turn's reply and sends. The message that the crashed
 * turn handled is then
 *   - delivered again, at the head of its channel, if it is a durable send: its outbox
 *     record was not removed, and a host delivers every stored send when the crashed
 *     worker restarts (runtime/durable-outbox.ts);
 *   - lost otherwise — a client's message (a host answers the pending call with
 *     WorkerCrashedError, which the world records as its reply) or a `durable: false`
 *     agent's send.
 *
 * The world keeps the state hashes explore needs (`stateHash`) only when asked
 * (`hashing`): they cost a decode per commit.
 *
 * Async handlers: a turn that returns a promise is settled before the step ends, by
 * yielding microtasks. Everything a handler can await in a simulation (`ctx.offload`
 * with the `offload` option, other promises) settles that way; a handler that waits on
 * real I/O or real timers would make runs depend on wall time, so after
 * SETTLE_MICROTASKS yields the run fails with SimulationError.
 *
 * Time. A tick step moves the clock (`runtime.advanceTo(tick, 0)`: nothing fires yet);
 * what it made due — `ctx.timeout` turns, idle passivations, reminder turns — is then
 * handled one per step (`advanceTo(tick, 1)`, a "timer" step, then its commit), and
 * those steps interleave with deliveries like any other; the clock moves on only once
 * they are all handled. Rate limits and reminders read virtual time, tick × tickMs.
 * Same-tick timers fire in the runtime's wheel order, as on one host thread.
 */
import type { AgentAddress, AgentId } from '../agent/agent-id.ts'
import { Envelope, MSG_CALL, MSG_SEND } from '../agent/envelope.ts'
import { SimulationError, WorkerCrashedError, errorFromWire, toWire } from '../errors.ts'
import type { WireError } from '../errors.ts'
import type { AgentRegistry } from '../agent/registry.ts'
import type { RuntimeOutput } from '../runtime/ports.ts'
import { stateIdOf } from '../storage/store.ts'
import type { SendId, WriteBatch } from '../storage/store.ts'
import { hashId, shardOf } from '../placement/hash.ts'
import type { Chooser } from './choices.ts'
import { decodeSimValue, encodeSimValue, simCodec } from './codec.ts'
import type { Faults } from './faults.ts'
import { Network, SimMessage } from './network.ts'
import type { Scenario } from './scenario.ts'
import { SimRuntime } from './sim-runtime.ts'
import type { TimeObserver } from './sim-runtime.ts'
import { SimStore } from './sim-store.ts'
import { Hash2 } from './state-hash.ts'
import { agentName, formatTrace } from './trace.ts'
import type { TraceEntry } from './trace.ts'
import { replyHash, worldHash } from './world-hash.ts'
import { WorldReadModel } from './world-read-model.ts'
import type { InFlightMessage, Reply, World } from './world-view.ts'

/** Microtasks an async turn may take to settle before the run is declared non-deterministic. */
const SETTLE_MICROTASKS = 10_000

type Event = TraceEntry extends infer T ? T extends unknown ? Omit<T, 'step' | 'tick'> : never : never

/**
 * A world between two steps, to start other worlds from (explore's fast path). Valid
 * only when `Scenario.restorable`: then everything that decides the future is in the
 * store, the network and the counters below — every cell holds exactly its committed
 * state, which a fresh runtime reloads on the next message.
 */
export interface WorldSnapshot {
  readonly store: SimStore
  readonly network: Network
  readonly tick: number
  readonly steps: number
  readonly faultsUsed: number
  readonly seq: number
  readonly replies: ReadonlyArray<Reply | undefined>
  readonly replyHash: Hash2
  /** The choices that reached it (a world restored from it continues the path). */
  readonly path: readonly number[]
}

export interface WorldOptions {
  readonly budget: number
  readonly record: boolean
  /** Keep state hashes (explore): `stateHash` works only then. */
  readonly hashing?: boolean
  readonly seed: number | null
  /** Start from this snapshot instead of the scenario's beginning. */
  readonly from?: WorldSnapshot
}

export class SimWorld implements RuntimeOutput, TimeObserver, World {
  readonly registry: AgentRegistry
  readonly runtime: SimRuntime
  readonly store: SimStore
  readonly network: Network
  readonly seed: number | null
  tick = 0
  steps = 0
  /** Faults injected so far; the run may inject at most `budget`. */
  faultsUsed = 0
  readonly budget: number
  private readonly scenario: Scenario
  private readonly faults: Faults
  readonly chooser: Chooser
  private readonly traceList: TraceEntry[] | null
  private readonly replyList: Array<Reply | undefined>
  private readonly replyHash: Hash2
  private readonly hasVolatile: boolean
  private readonly reads: WorldReadModel
  private readonly hashing: boolean
  private seq = 0
  private stepStartFaults = 0
  /** Timer, idle or reminder work is due at the current tick and not yet handled. */
  private timersDue = false
  /** The choices before this world's own (a world restored from a snapshot). */
  private readonly pathPrefix: readonly number[]
  private truncated = false
  /** The agent whose message is being handled (to name it when its async turn hangs). */
  private handling: string | null = null
  /** The current commit crashed: ignore the replies the runtime fails. */
  private crashed = false
  private crashable = true

  constructor (scenario: Scenario, chooser: Chooser, options: WorldOptions) {
    this.scenario = scenario
    this.faults = scenario.faults
    this.chooser = chooser
    this.budget = options.budget
    this.seed = options.seed
    this.traceList = options.record ? [] : null
    this.hashing = options.hashing === true
    this.store = new SimStore(this.hashing)
    this.registry = scenario.registry()
    this.hasVolatile = this.registry.types.some((t) => t.def.durable === false)
    const from = options.from
    // before the runtime starts: it takes an outbox incarnation from the store, which
    // must come after every incarnation the snapshot's records used
    if (from !== undefined) from.store.copyTo(this.store)
    this.pathPrefix = from?.path ?? []
    this.runtime = new SimRuntime({
      registry: this.registry,
      store: this.store,
      codec: simCodec,
      output: this,
      tableCapacity: 8,
      // a few agents per world: a 4 KiB id chunk holds ~100 short ids, and more chunks come as needed
      idChunkBytes: 4096,
      batchRoom: { bytes: 256, entries: 8 },
      // virtual time for rate limits and stats: a tick is tickMs, and nothing else moves it
      clock: { now: () => this.tick * scenario.tickMs },
      stopwatch: { now: () => this.tick * scenario.tickMs },
      quotas: scenario.quotaGate(),
      startTick: from?.tick ?? 0,
      ...(scenario.offload === undefined ? {} : { offload: scenario.offload })
    }, this)
    // reminders' wall time is virtual too: tick t is t × tickMs after the epoch 0 (skipped
    // when no type has reminders: it builds a timing wheel, a large part of a small runtime)
    if (this.registry.types.some((t) => t.reminderMethod !== null)) this.runtime.startReminders(0, scenario.tickMs, () => true)
    this.store.crashes = (batch) => this.crashNow(batch)
    this.store.committed = (ids) => { if (this.traceList !== null) this.record({ kind: 'commit', agents: ids.map(agentName) }) }
    if (from !== undefined) {
      this.network = from.network.clone()
      this.tick = from.tick
      this.steps = from.steps
      this.faultsUsed = from.faultsUsed
      this.seq = from.seq
      this.replyList = from.replies.slice()
      this.replyHash = new Hash2(from.replyHash.a, from.replyHash.b)
    } else {
      this.network = new Network()
      this.replyHash = new Hash2(0, 0)
      this.replyList = new Array<Reply | undefined>(scenario.messages.length).fill(undefined)
      for (const [i, p] of scenario.messages.entries()) {
        this.network.add(new SimMessage(++this.seq, null, p.client, `${p.client}\u0000${p.id}`, p.id, p.hash, p.typeIdx, p.methodIdx, p.method, p.bytes, i + 1, 0))
      }
    }
    this.reads = new WorldReadModel(this.registry, this.store, this.runtime, this.network, this.hasVolatile)
  }

  /**
   * This world between two steps (see WorldSnapshot: only for restorable scenarios).
   * The snapshot takes over the store and the network: do not step this world again.
   */
  snapshot (path: readonly number[]): WorldSnapshot {
    return {
      path,
      store: this.store,
      network: this.network,
      tick: this.tick,
      steps: this.steps,
      faultsUsed: this.faultsUsed,
      seq: this.seq,
      replies: this.replyList,
      replyHash: this.replyHash
    }
  }

  /** One scheduler step; false when the run is over. A promise only while an async turn settles. */
  step (): boolean | Promise<boolean> {
    const ready = this.network.deliverable(this.tick)
    // due timers are handled before the clock moves on, interleaved with the messages
    const timer = this.timersDue
    const clock = !timer && this.clockCanAdvance()
    const n = ready.length + (timer || clock ? 1 : 0)
    this.stepStartFaults = this.faultsUsed
    if (n === 0) return false
    if (this.steps >= this.scenario.maxSteps) {
      this.truncated = true
      this.record({ kind: 'limit' })
      return false
    }
    if (this.chooser.event !== undefined) {
      const keys = ready.map((m) => m.contentHash().value())
      if (timer) keys.push(-2)
      else if (clock) keys.push(-1)
      this.chooser.event(keys)
    }
    const choice = n === 1 ? 0 : this.chooser.pick(n)
    this.steps++
    if (choice === ready.length) return timer ? this.fireTimer() : this.advance()
    return this.deliver(ready[choice]!)
  }

  /** The options of the next step, in choice order: the deliverable messages, then the timers or the clock (target null). */
  events (): Array<{ readonly key: number, readonly target: string | null }> {
    const out: Array<{ readonly key: number, readonly target: string | null }> =
      this.network.deliverable(this.tick).map((m) => ({ key: m.contentHash().value(), target: m.to }))
    if (this.timersDue) out.push({ key: -2, target: null })
    else if (this.clockCanAdvance()) out.push({ key: -1, target: null })
    return out
  }

  /** A snapshot would hold everything: no agent timer is pending (they live only in the runtime's memory). */
  canSnapshot (): boolean {
    return this.runtime.timers.size === 0 && !this.timersDue
  }

  /** Faults the last step injected. */
  get stepFaults (): number {
    return this.faultsUsed - this.stepStartFaults
  }

  private clockCanAdvance (): boolean {
    return this.tick < this.scenario.ticks || this.network.nextRelease(this.tick) >= 0
  }

  /** The clock moves one tick; the timers it makes due are handled by later steps, one each. */
  private advance (): true {
    this.tick++
    this.record({ kind: 'tick' })
    this.timersDue = !this.runtime.advanceTo(this.tick, 0)
    return true
  }

  /**
   * One due timer, idle check or reminder (budget 1), then its commit. Its turn is not
   * crashed: the runtime arms timers and reminders in memory at the end of the turn,
   * which a failed commit does not undo, while a real crash would lose them.
   */
  private fireTimer (): boolean | Promise<boolean> {
    this.timersDue = !this.runtime.advanceTo(this.tick, 1)
    const done = (): true => {
      this.crashable = false
      this.runtime.commit()
      this.crashable = true
      return true
    }
    if (this.runtime.busy > 0) return this.settle().then(done)
    return done()
  }

  // ---- TimeObserver ---------------------------------------------------------------

  timerTurn (id: string, name: string | null): void {
    this.record({ kind: 'timer', agent: agentName(id), reminder: name })
  }

  passivated (id: string): void {
    this.record({ kind: 'passivate', agent: agentName(id) })
  }

  private deliver (m: SimMessage): boolean | Promise<boolean> {
    this.network.remove(m)
    // a client's message may be lost on its way, or sent twice (a retry after a timeout)
    const fault = m.from === null ? this.faults.clientFault(this.chooser, this.budget - this.faultsUsed) : 'none'
    if (fault !== 'none') this.faultsUsed++
    if (fault === 'drop') {
      this.record({ kind: 'drop', msg: m.seq, until: null })
      return true
    }
    if (this.traceList !== null) {
      this.record({ kind: 'deliver', msg: m.seq, from: m.sender, to: agentName(m.to), method: m.method, payload: decodeSimValue(m.bytes) })
    }
    if (fault === 'duplicate') {
      const copy = m.copy(++this.seq)
      this.network.add(copy)
      this.record({ kind: 'duplicate', msg: m.seq, copy: copy.seq })
    }
    const env = new Envelope()
    env.kind = m.callId > 0 ? MSG_CALL : MSG_SEND
    env.id = m.to
    env.hash = m.hash
    env.typeIdx = m.typeIdx
    env.methodIdx = m.methodIdx
    env.payload = decodeSimValue(m.bytes)
    env.callId = m.callId
    env.outboxKey = m.outboxKey
    if (m.outboxKey !== 0) {
      // one store, one origin; the sender's shard from its id
      env.origin = this.store.storeId
      env.senderShard = shardOf(hashId(m.from!))
    }
    this.handling = m.to
    const discarded = this.runtime.duplicateSends
    this.runtime.deliver(env)
    if (this.runtime.duplicateSends !== discarded) this.record({ kind: 'discard', msg: m.seq })
    if (this.runtime.busy > 0) return this.settle().then(() => this.finish(m))
    return this.finish(m)
  }

  private async settle (): Promise<void> {
    for (let i = 0; i < SETTLE_MICROTASKS && this.runtime.busy > 0; i++) await undefined
    if (this.runtime.busy > 0) {
      throw new SimulationError(`an async handler of ${agentName(this.handling ?? '')} did not settle within the simulation: it waits on something outside it (real I/O, a real timer, a promise that never settles)`)
    }
  }

  private finish (m: SimMessage): true {
    this.crashed = false
    this.runtime.commit()
    if (this.crashed) this.afterCrash(m)
    this.crashed = false
    this.handling = null
    return true
  }

  /**
   * The store asks before each commit. Not for the turns of types with `timeout` or
   * `reminder`: what they armed stays armed in the runtime after a failed commit.
   */
  private crashNow (batch: WriteBatch): boolean {
    if (!this.crashable || anyState(batch, (id) => SimRuntime.hasTimers(id, this.runtime))) return false
    if (!this.faults.crash(this.chooser, this.budget - this.faultsUsed)) return false
    this.faultsUsed++
    this.crashed = true
    return true
  }

  private afterCrash (m: SimMessage): void {
    // the outbox record was not removed (the batch never committed): the host delivers it again
    const redeliver = m.outboxKey !== 0
    this.record({ kind: 'crash', agent: agentName(m.to), msg: m.seq, input: redeliver ? 'redelivered' : 'lost' })
    if (redeliver) this.network.addFront(m)
    else if (m.callId > 0) {
      const error = new WorkerCrashedError(`the host crashed before committing the turn of ${agentName(m.to)}`).toWire()
      this.setReply(m.callId, { ok: false, error })
    }
  }

  // ---- RuntimeOutput -----------------------------------------------------------------

  reply (_replyTo: number, callId: number, ok: boolean, value: unknown): void {
    if (this.crashed) return // the runtime fails the batch's replies; the world records the crash instead
    let r: Reply
    if (!ok) r = { ok: false, error: value as WireError }
    else {
      try {
        r = { ok: true, value: decodeSimValue(encodeSimValue(value, 'the reply')) }
      } catch (err) {
        r = { ok: false, error: toWire(err) }
      }
    }
    this.setReply(callId, r)
  }

  send (id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown, durable: SendId | null, from: string): void {
    const outboxKey = durable?.key ?? 0
    const method = this.registry.types[typeIdx]!.methods[methodIdx]!.name
    let bytes: Uint8Array
    try {
      bytes = encodeSimValue(payload, `the payload of ${method}`)
    } catch (err) {
      // as on a host: the turn has committed, so the send is lost and reported
      const w = toWire(err)
      this.record({ kind: 'error', agent: agentName(from), method, code: w.code, message: w.message })
      return
    }
    const m = new SimMessage(++this.seq, from, agentName(from), `${from}\u0000${id}`, id, hash, typeIdx, methodIdx, method, bytes, 0, outboxKey)
    if (this.traceList !== null) {
      this.record({ kind: 'send', msg: m.seq, from: m.sender, to: agentName(id), method, payload: decodeSimValue(bytes) })
    }
    const fault = this.faults.sendFault(this.chooser, this.budget - this.faultsUsed)
    if (fault !== 'none') this.faultsUsed++
    switch (fault) {
      case 'drop':
        if (outboxKey === 0) {
          this.record({ kind: 'drop', msg: m.seq, until: null })
          return
        }
        // lost with a ring; its record stays in the outbox, which delivers it again (at the next scan)
        m.free = true
        m.notBefore = this.tick + 1
        this.record({ kind: 'drop', msg: m.seq, until: m.notBefore })
        break
      case 'duplicate': {
        this.network.add(m)
        const copy = m.copy(++this.seq)
        this.network.add(copy)
        this.record({ kind: 'duplicate', msg: m.seq, copy: copy.seq })
        return
      }
      case 'reorder':
        m.free = true
        this.record({ kind: 'reorder', msg: m.seq })
        break
      case 'delay':
        m.free = true
        m.notBefore = this.tick + this.faults.delayTicks(this.chooser)
        this.record({ kind: 'delay', msg: m.seq, until: m.notBefore })
        break
      case 'none':
        break
    }
    this.network.add(m)
  }

  wake (): void {
    // the world commits at the end of every step; nothing runs outside a step
  }

  agentError (id: string, method: string, error: WireError): void {
    this.record({ kind: 'error', agent: agentName(id), method, code: error.code, message: error.message })
  }

  // ---- what users see ----------------------------------------------------------------

  state<S = any> (address: AgentAddress): S {
    return this.reads.state<S>(address)
  }

  storage<V = unknown> (address: AgentAddress, options: { readonly prefix?: string } = {}): Array<[string, V]> {
    return this.reads.storage<V>(address, options)
  }

  agents (filter: { readonly type?: string, readonly quota?: string } = {}): AgentId[] {
    return this.reads.agents(filter)
  }

  get inFlight (): InFlightMessage[] {
    return this.reads.inFlight()
  }

  get replies (): ReadonlyArray<Reply | undefined> {
    return this.replyList
  }

  get idle (): boolean {
    return this.network.size === 0 && this.tick >= this.scenario.ticks && !this.timersDue
  }

  get complete (): boolean {
    return !this.truncated
  }

  get trace (): readonly TraceEntry[] {
    return this.traceList ?? []
  }

  print (): string {
    return formatTrace(this.trace)
  }

  /** The world's state for explore's visited set: everything that decides what can happen next (world-hash.ts). */
  stateHash (): number {
    // rate limits, or pending agent timers: state outside what is hashed, so every path is its own state
    const mergeable = this.scenario.mergeable && this.runtime.timers.size === 0
    return worldHash({
      network: this.network,
      store: this.store,
      replyHash: this.replyHash,
      tick: this.tick,
      budget: this.budget,
      faultsUsed: this.faultsUsed,
      timersDue: this.timersDue,
      mergeable,
      path: mergeable ? [] : [...this.pathPrefix, ...this.chooser.made],
      volatile: this.hasVolatile ? this.runtime : null
    })
  }

  /**
   * The reply a client acts on: the first definitive one. A message delivered twice (a
   * retry) gets two replies; a client keeps the first answer or non-retriable error, and
   * lets a later answer replace only a retriable error (WorkerCrashedError, ...).
   */
  private setReply (callId: number, r: Reply): void {
    const old = this.replyList[callId - 1]
    const kept = old !== undefined && (old.ok || !errorFromWire(old.error).retriable)
    if (kept) {
      this.record(r.ok
        ? { kind: 'reply', msg: callId, ok: true, value: r.value }
        : { kind: 'reply', msg: callId, ok: false, value: { code: r.error.code, message: r.error.message } })
      return
    }
    if (this.hashing) {
      if (old !== undefined) this.replyHash.subtract(replyHash(callId, old))
      this.replyHash.add(replyHash(callId, r))
    }
    this.replyList[callId - 1] = r
    this.record(r.ok
      ? { kind: 'reply', msg: callId, ok: true, value: r.value }
      : { kind: 'reply', msg: callId, ok: false, value: { code: r.error.code, message: r.error.message } })
  }

  private record (e: Event): void {
    if (this.traceList !== null) this.traceList.push({ step: this.steps, tick: this.tick, ...e } as TraceEntry)
  }
}

/** Whether `picks` selects the id of any of the batch's states. */
function anyState (batch: WriteBatch, picks: (id: string) => boolean): boolean {
  for (let k = 0; k < batch.states.length; k++) if (picks(stateIdOf(batch, k))) return true
  return false
}
