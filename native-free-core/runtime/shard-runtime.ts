/**
 * The single-threaded shard runtime: the agents of the shards one thread owns.
 *
 * It activates agents on their first message, runs one turn at a time per agent
 * (an async handler makes its agent busy; later messages wait in its mailbox while
 * other agents go on), rolls an agent back when a handler throws (crash-only, as in
 * Pachyderm's "immortal" entities), and gathers the turns of one loop iteration into
 * one store batch (group commit). Replies and sends of committed turns leave only
 * after their batch has committed: the output gate of Durable Objects, DNA's
 * `after_persist`. Queries never wait for a commit.
 *
 * It knows nothing of threads, rings or LMDB: messages come in through `deliver`, go
 * out through `RuntimeOutput`, and state goes to an injected `Store`. The same runtime
 * runs in worker threads, on the main thread (`workers: 0`) and in the simulator.
 *
 * Rollback. A handler mutates its state in place, so rolling back needs the last good
 * state. Outside the open batch it is in the store (drop the cell, reload on the next
 * message). Inside it, an agent may already have uncommitted turns: before a second
 * command on such an agent its state is encoded into `snapshots`, and a throw restores
 * it. A batch whose agent's last turn was followed by no other then commits the
 * snapshot bytes as-is (kSnapFresh), so each persisted command costs one encode.
 *
 * `ctx.storage` writes (agent-storage.ts) ride in the same batch: a turn's writes join
 * the open batch when it succeeds and are dropped when it throws.
 *
 * Effectively-once sends (with a durable store). A durable agent's `ctx.send` is an
 * outbox record written in its turn's batch and released after that batch commits. The
 * receiver applies it only while the record still exists, and removes the record in the
 * batch of the turn that applied it — one transaction, so "applied" and "removed" are
 * the same fact. A crash before that commit leaves the record, which is delivered again
 * (`redeliver`); a copy arriving after it finds no record and is dropped. Keys are
 * incarnation × 2^32 + sequence: the sender's thread takes a fresh incarnation from the
 * store whenever it starts, so a key is never reused.
 */
import { keyOf, idOf, typeOf } from '../agent/agent-id.ts'
import type { AgentAddress } from '../agent/agent-id.ts'
import { Cell, kBusy, kCounted, kDeactivate, kDelete, kDirty, kDropped, kLimited, kNew, kPersistent, kSnapFresh } from './cell.ts'
import { systemClock } from '../time/clock.ts'
import type { Clock } from '../time/clock.ts'
import { AgentTable } from './agent-table.ts'
import { Envelope, MSG_CALL, MSG_FOLLOW, MSG_REMINDER, MSG_SEND, MSG_TIMER, MSG_UNFOLLOW, isMessage } from '../agent/envelope.ts'
import { AgentTimers } from '../time/agent-timers.ts'
import type { TimerHost } from '../time/agent-timers.ts'
import { ReminderIndex, decodeReminder, encodeReminder, nextDue } from '../time/agent-reminders.ts'
import type { Reminder } from '../time/agent-reminders.ts'
import {
  AgentError, DecodeError, EncodeError, InvalidArgumentError, MessageTooLargeError, OffloadError, RateLimitedError, ShoalError,
  StorageError, UnknownAgentTypeError, UnknownMethodError, messageOf
} from '../errors.ts'
import type { WireError } from '../errors.ts'
import { hashId } from '../placement/hash.ts'
import { Mailbox } from './mailbox.ts'
import { Followers } from './followers.ts'
import { CommitStats } from './commit-stats.ts'
import { QuotaCounters } from '../tenancy/quota-counters.ts'
import { QuotaDirectory, QuotaGate } from '../tenancy/quota-gate.ts'
import type { QuotaBatch } from '../tenancy/quota-gate.ts'
import { RateLimits } from '../tenancy/rate-limits.ts'
import type { LimitedCell } from '../tenancy/rate-limits.ts'
import type { AgentRegistry, MethodInfo, TypeInfo } from '../agent/registry.ts'
import { MAX_INCARNATION } from '../storage/store.ts'
import type { OutboxRecord, Store } from '../storage/store.ts'
import { StorageOverlay } from '../storage/agent-storage.ts'
import { OutboundSend, TurnContext } from './turn-context.ts'
import type { ContextHost } from './turn-context.ts'

export interface ValueCodec {
  /** Encode a state; the bytes must stay valid until the batch has committed. */
  encode (value: unknown): Uint8Array
  decode (bytes: Uint8Array): unknown
}

/** Where the runtime's effects go: the host's rings, or the simulator's queues. */
export interface RuntimeOutput {
  reply (replyTo: number, callId: number, ok: boolean, value: unknown): void
  /**
   * `outboxKey` is non-zero for a durable send: the receiver needs it to apply the send
   * once. `from` is the sending agent's id (the simulator keeps sends in order per
   * sender and receiver; a batch may hold the turns of many agents).
   */
  send (id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown, outboxKey: number, from: string): void
  /** An async turn settled outside the host loop: run `commit()` and flush soon. */
  wake (): void
  /** A handler failed, or a message could not be handled (for events and dead letters). */
  agentError? (id: string, method: string, error: WireError): void
  /**
   * A committed state for the follower `(thread, followId)`: the state's encoded bytes
   * (`ok`), or why the subscription failed (a WireError).
   */
  followed? (thread: number, followId: number, ok: boolean, value: Uint8Array | WireError): void
}

export interface ShardRuntimeOptions {
  readonly registry: AgentRegistry
  /** Committed states; null keeps every type in memory only (as `durable: false`). */
  readonly store: Store | null
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  readonly offload?: (name: string, input: unknown) => Promise<unknown>
  /** The host clock's tick when the runtime starts (a restarted worker joins a running clock). */
  readonly startTick?: number
  /** Largest encoded durable send: checked in the handler, since a stored send must be deliverable. */
  readonly maxMessageBytes?: number
  /** Time for rate limits. Default: `performance.now()`. */
  readonly clock?: Clock
  /** Real time for commit latency (stats only). Default: `performance.now()`. */
  readonly stopwatch?: Clock
  /** The host's quotas as this thread sees them. Default: only 'default', unlimited, counted privately. */
  readonly quotas?: QuotaGate
  /** Initial agent-table slots and timer-wheel nodes (default 1024 each); the simulator starts its many small runtimes smaller. */
  readonly tableCapacity?: number
}

/** A reply or send held by the output gate until its batch commits. */
class Effect {
  readonly cell: Cell
  readonly send: OutboundSend | null
  readonly replyTo: number
  readonly callId: number
  readonly ok: boolean
  readonly value: unknown

  constructor (cell: Cell, send: OutboundSend | null, replyTo: number, callId: number, ok: boolean, value: unknown) {
    this.cell = cell
    this.send = send
    this.replyTo = replyTo
    this.callId = callId
    this.ok = ok
    this.value = value
  }
}

/** The states of one commit in flight, by id: what a reactivation must read instead of the store. */
interface InflightStates { readonly seq: number, readonly states: Map<string, Uint8Array | null> }
/** A commit in flight's storage changes of one agent. */
interface InflightStorage { readonly overlay: StorageOverlay, readonly seq: number }

export class ShardRuntime implements ContextHost, TimerHost {
  readonly registry: AgentRegistry
  readonly store: Store | null
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  readonly table: AgentTable<Cell>
  /** The host clock's tick as this thread has processed it; moved by `advanceTo`. */
  tick = 0
  /** ctx.timeout and idle deadlines of the resident agents (agent-timers.ts). */
  readonly timers: AgentTimers
  /** Durable reminders of the agents this thread owns, resident or not (agent-reminders.ts). */
  readonly reminders = new ReminderIndex()

  /** Messages delivered, for stats. */
  messages = 0
  /** Async turns in flight. */
  busy = 0
  commits = 0
  committedStates = 0
  /** Durable sends dropped because they had already been applied. */
  duplicateSends = 0
  /** Messages refused by a rate limit. */
  rateLimited = 0
  readonly clock: Clock
  private nowMs = 0
  private nowRead = false
  /** Batch sizes and commit latencies. */
  readonly commitStats = new CommitStats()
  private readonly stopwatch: Clock
  /** Null when no type has a rate limit. */
  readonly limits: RateLimits | null
  /** `ref.follow()` subscriptions to this thread's agents. */
  readonly followers: Followers = new Followers(this)
  readonly quotas: QuotaGate

  private readonly persistent: readonly boolean[]
  private readonly offloader: ((name: string, input: unknown) => Promise<unknown>) | undefined
  private dirty: Cell[] = []
  private effects: Effect[] = []
  private readonly snapshots = new Map<Cell, Uint8Array>()
  /**
   * States written to the store but not yet committed, one map per commit (oldest
   * first): reads must see them. Dropped whole when their commit settles — a map per
   * batch, not an entry per state to find and delete (5% of a durable worker's time).
   */
  private inflight: InflightStates[] = []
  private commitSeq = 0
  private lastCommit: Promise<void> | null = null
  /** Reused for timer and reminder turns (deliver clones it when it must wait in a mailbox). */
  private readonly timerEnvelope = new Envelope()
  /** Reminder records of the open batch, per agent id (name → bytes, null removes). */
  private openReminders = new Map<string, StorageOverlay>()
  /** Reminders due and not yet fired (a budget ran out), and the next to fire. */
  private remindersDue: Reminder[] = []
  private remindersAt = 0
  /** `ctx.storage` writes of the open batch, per agent id. */
  private openStorage = new Map<string, StorageOverlay>()
  /** `ctx.storage` writes handed to the store and not yet committed, per agent newest first. */
  private readonly inflightStorage = new Map<string, InflightStorage[]>()
  private readonly durableOutbox: boolean
  private readonly maxMessageBytes: number
  /** Outbox keys applied in the open batch, removed from the store by its commit. */
  private consumed: number[] = []
  /** Outbox keys applied and not yet committed as removed (open batch and commits in flight). */
  private readonly claimed = new Set<number>()
  private incarnation = 0
  private sendSeq = 0

  constructor (options: ShardRuntimeOptions) {
    this.registry = options.registry
    this.store = options.store
    this.codec = options.codec
    this.output = options.output
    this.offloader = options.offload
    this.table = new AgentTable<Cell>(options.tableCapacity)
    this.clock = options.clock ?? systemClock
    this.stopwatch = options.stopwatch ?? systemClock
    this.limits = RateLimits.of(this.registry.types)
    this.quotas = options.quotas ?? new QuotaGate(new QuotaDirectory(), new QuotaCounters(1), 0)
    this.persistent = this.registry.types.map((t) => options.store !== null && t.def.durable !== false)
    this.tick = options.startTick ?? 0
    this.timers = new AgentTimers(this, this.registry.types.map((t) => t.def.idleTicks ?? 0), this.tick, options.tableCapacity)
    this.durableOutbox = options.store?.durable === true
    this.maxMessageBytes = options.maxMessageBytes ?? Number.POSITIVE_INFINITY
    // taken now, at the thread's start, not in the middle of building a batch
    if (this.durableOutbox) this.takeIncarnation()
  }

  get activeAgents (): number {
    return this.table.size
  }

  /** True when a batch is open or commits are in flight. */
  get pendingCommit (): boolean {
    return this.dirty.length !== 0 || this.effects.length !== 0 || this.consumed.length !== 0 || this.openReminders.size !== 0 || this.lastCommit !== null
  }

  /** Wall time of the current tick, epoch ms (reminders; not the rate-limit clock). */
  get tickTimeMs (): number {
    return this.reminders.timeOf(this.tick)
  }

  deliver (env: Envelope): void {
    if (env.kind === MSG_FOLLOW || env.kind === MSG_UNFOLLOW) {
      this.followers.handle(env)
      return
    }
    this.messages++
    let cell = this.table.get(env.id, env.hash)
    if (cell === undefined) {
      cell = this.activate(env)
      if (cell === undefined) return
    }
    // timer and reminder turns are not messages: no rate limit
    if ((cell.flags & kLimited) !== 0 && isMessage(env.kind) && !this.admit(cell as LimitedCell, env)) return
    if ((cell.flags & kBusy) !== 0) {
      (cell.mailbox ??= new Mailbox()).push(env.clone())
      return
    }
    if (isMessage(env.kind)) cell.lastTick = this.tick // timer and reminder turns are not messages: idleness goes on
    this.turn(cell, env)
  }

  /**
   * Move time to the host clock's tick `to`: fire the timers and idle checks due on the
   * way (agent-timers.ts), handling at most `budget` of them. True once caught up;
   * false means call again (from the next loop pass).
   */
  advanceTo (to: number, budget: number): boolean {
    const timers = this.timers
    for (;;) {
      // finish the tick in hand, then step to the next tick with timer or reminder work
      if ((budget = timers.drain(budget)) < 0) return false
      if ((budget = this.fireReminders(budget)) < 0) return false
      if (this.tick >= to) return true
      const a = timers.nextEvent()
      const b = this.reminders.nextTick()
      const next = a < 0 ? b : b < 0 ? a : Math.min(a, b)
      const t = next < 0 || next > to ? to : Math.max(next, this.tick + 1)
      this.tick = t
      timers.collect(t)
      this.reminders.due(t, this.remindersDue)
    }
  }

  /** The next tick this thread has timer or reminder work at, or -1: it may park until then. */
  nextTimerTick (): number {
    if (this.remindersAt < this.remindersDue.length) return this.tick
    const a = this.timers.nextTick()
    const b = this.reminders.nextTick()
    return a < 0 ? b : b < 0 ? a : Math.min(a, b)
  }

  /**
   * Start durable reminders: map ticks to wall time (tick t is `epochMs + t × tickMs`)
   * and read the stored reminders of the agents `owns` accepts. Once per thread start.
   */
  startReminders (epochMs: number, tickMs: number, owns: (hash: number) => boolean): void {
    this.reminders.setClock(epochMs, tickMs, this.tick)
    if (this.store === null) return
    for (const [id, name, bytes] of this.store.reminders()) {
      const hash = hashId(id)
      if (!owns(hash)) continue
      const info = this.registry.get(typeOf(id))
      const record = decodeReminder(bytes)
      if (info?.reminderMethod == null || record === null) {
        // the definitions changed since it was stored (or the record is damaged): it can never fire
        this.reminderOverlay(id).entries.set(name, null)
        const error = info === undefined
          ? new UnknownAgentTypeError(typeOf(id), this.registry.types.map((t) => t.type))
          : record === null ? new DecodeError(`the stored reminder ${JSON.stringify(name)} does not decode`) : new UnknownMethodError(info.type, 'reminder')
        this.output.agentError?.(id, 'reminder', error.toWire())
        continue
      }
      this.reminders.set(id, hash, info.index, name, record.due, record.every)
    }
  }

  /** Fire the collected reminders, at most `budget`: the budget left, or -1 if some wait. */
  private fireReminders (budget: number): number {
    if (this.remindersAt >= this.remindersDue.length) {
      if (this.remindersDue.length !== 0) {
        this.remindersDue = []
        this.remindersAt = 0
      }
      return budget
    }
    const now = this.tickTimeMs
    while (this.remindersAt < this.remindersDue.length) {
      if (budget <= 0) return -1
      budget--
      const r = this.remindersDue[this.remindersAt++]!
      if (!this.reminders.holds(r)) continue // cancelled or replaced since it fell due
      // reschedule (or remove) in this pass's batch, whatever the turn does: missed periods coalesce
      const next = nextDue(r.due, r.every, now)
      if (next < 0) {
        this.reminders.cancel(r.id, r.name)
        this.reminderOverlay(r.id).entries.set(r.name, null)
      } else {
        this.reminders.rearm(r, next)
        this.reminderOverlay(r.id).entries.set(r.name, encodeReminder(next, r.every))
      }
      const env = this.timerEnvelope
      env.kind = MSG_REMINDER
      env.id = r.id
      env.hash = r.hash
      env.typeIdx = r.typeIdx
      env.methodIdx = 0
      env.payload = r.name
      env.outboxKey = 0
      this.deliver(env)
    }
    this.remindersDue = []
    this.remindersAt = 0
    return budget
  }

  private reminderOverlay (id: string): StorageOverlay {
    let overlay = this.openReminders.get(id)
    if (overlay === undefined) this.openReminders.set(id, overlay = new StorageOverlay())
    return overlay
  }

  /** A successful command's ctx.remind / ctx.cancelReminder. */
  private applyReminders (cell: Cell, changes: ReadonlyMap<string, readonly [number, number] | null>): void {
    const overlay = this.reminderOverlay(cell.id)
    for (const [name, r] of changes) {
      if (r === null) {
        this.reminders.cancel(cell.id, name)
        overlay.entries.set(name, null)
      } else {
        this.reminders.set(cell.id, cell.hash, cell.info.index, name, r[0], r[1])
        overlay.entries.set(name, encodeReminder(r[0], r[1]))
      }
    }
  }

  /** ctx.delete: the agent's reminders go with it. */
  private wipeReminders (id: string): void {
    const overlay = new StorageOverlay()
    overlay.wiped = true
    // explicit deletes too: the store's wipe sees only committed records, not those in flight
    for (const name of this.reminders.removeAgent(id)) overlay.entries.set(name, null)
    const open = this.openReminders.get(id)
    if (open !== undefined) for (const name of open.entries.keys()) overlay.entries.set(name, null)
    this.openReminders.set(id, overlay)
  }

  /** @internal TimerHost: the agent's ctx.timeout fired. */
  timerTurn (id: string, hash: number, typeIdx: number): void {
    const env = this.timerEnvelope
    env.kind = MSG_TIMER
    env.id = id
    env.hash = hash
    env.typeIdx = typeIdx
    env.methodIdx = 0
    env.payload = undefined
    env.outboxKey = 0
    this.deliver(env)
  }

  /** @internal TimerHost: idle passivation, committing first like ctx.deactivate. */
  passivate (cell: Cell): void {
    cell.flags |= kDeactivate
    if ((cell.flags & kDirty) === 0) this.drop(cell)
  }

  /**
   * Close the open batch: encode dirty states, hand them to the store, and release the
   * batch's replies and sends once it has committed. Call once per loop iteration.
   */
  commit (): void {
    // a batch's messages share one reading of the rate-limit clock (see now())
    this.nowRead = false
    try {
      this.commitBatch()
    } finally {
      this.nowRead = false
    }
  }

  private commitBatch (): void {
    if (this.dirty.length === 0 && this.effects.length === 0 && this.consumed.length === 0 && this.openReminders.size === 0) return
    const startedAt = this.stopwatch.now()
    const effects = this.effects
    this.effects = []
    const states: Array<[string, Uint8Array | null]> = []
    let failed: Map<Cell, ShoalError> | null = null
    for (const cell of this.dirty) {
      if ((cell.flags & kDirty) === 0) continue // poisoned and dropped earlier in this batch
      let bytes: Uint8Array | null
      if ((cell.flags & kDelete) !== 0) {
        bytes = null
        this.openStorage.set(cell.id, this.wipeOverlay(cell.id))
        this.wipeReminders(cell.id)
      } else if ((cell.flags & kSnapFresh) !== 0) bytes = this.snapshots.get(cell)!
      else {
        try {
          bytes = this.codec.encode(cell.state)
        } catch (err) {
          (failed ??= new Map()).set(cell, unencodable(cell, err))
          cell.flags &= ~(kDirty | kSnapFresh)
          this.openStorage.delete(cell.id)
          this.drop(cell)
          continue
        }
      }
      if ((cell.flags & (kCounted | kDelete)) !== 0) this.quotas.committing(cell)
      states.push([cell.id, bytes])
      cell.flags &= ~(kDirty | kSnapFresh | kNew)
      if ((cell.flags & (kDeactivate | kDelete)) !== 0 && (cell.flags & kBusy) === 0) this.drop(cell)
    }
    this.dirty = []
    this.snapshots.clear()
    const released = failed === null ? effects : this.failEffects(effects, failed)
    let outboxPuts: OutboxRecord[] | null = null
    for (const e of released) {
      if (e.send?.record != null) {
        e.send.outboxKey = this.nextOutboxKey();
        (outboxPuts ??= []).push({ key: e.send.outboxKey, bytes: e.send.record })
      }
    }
    const outboxDeletes = this.consumed.length === 0 ? null : this.consumed
    this.consumed = []
    let storage: Map<string, StorageOverlay> | null = null
    if (this.openStorage.size !== 0) {
      storage = this.openStorage
      this.openStorage = new Map()
    }
    let reminders: Map<string, StorageOverlay> | null = null
    if (this.openReminders.size !== 0) {
      reminders = this.openReminders
      this.openReminders = new Map()
    }
    if (states.length === 0 && storage === null && outboxPuts === null && outboxDeletes === null && reminders === null) {
      this.releaseInOrder(released)
      return
    }
    this.commits++
    this.committedStates += states.length
    this.commitStats.batch(states.length)
    const quota = this.quotas.closeBatch()
    const seq = ++this.commitSeq
    if (storage !== null) {
      for (const [id, overlay] of storage) {
        const chain = this.inflightStorage.get(id)
        if (chain === undefined) this.inflightStorage.set(id, [{ overlay, seq }])
        else chain.unshift({ overlay, seq })
      }
    }
    const settled = (): void => {
      if (this.inflight.length !== 0) this.inflight = this.inflight.filter((b) => b.seq !== seq)
      if (storage !== null) {
        for (const id of storage.keys()) {
          const chain = this.inflightStorage.get(id)
          if (chain === undefined) continue
          const i = chain.findIndex((c) => c.seq === seq)
          if (i >= 0) chain.splice(i, 1)
          if (chain.length === 0) this.inflightStorage.delete(id)
        }
      }
      if (outboxDeletes !== null) for (const k of outboxDeletes) this.claimed.delete(k)
    }
    let result: Promise<void> | undefined
    try {
      result = this.store!.commit({ states, storage, outboxPuts, outboxDeletes, quotaDeltas: quota?.deltas ?? null, reminders })
    } catch (err) {
      settled()
      this.commitFailed(states, released, err, quota)
      return
    }
    if (result === undefined) {
      settled()
      this.commitStats.latency(this.stopwatch.now() - startedAt)
      if (quota !== null) this.quotas.committed(quota)
      if (this.followers.size !== 0) {
        if (this.lastCommit === null) this.followers.publish(states)
        else this.lastCommit = this.lastCommit.then(() => this.followers.publish(states))
      }
      this.releaseInOrder(released)
      return
    }
    const byId = new Map<string, Uint8Array | null>()
    for (const [id, bytes] of states) byId.set(id, bytes)
    this.inflight.push({ seq, states: byId })
    const done = result.then(() => {
      settled()
      this.commitStats.latency(this.stopwatch.now() - startedAt)
      if (quota !== null) this.quotas.committed(quota)
      if (this.followers.size !== 0) this.followers.publish(states)
      this.release(released)
    }, (err: unknown) => {
      settled()
      this.commitFailed(states, released, err, quota)
    }).finally(() => {
      if (this.lastCommit === done) this.lastCommit = null
      this.output.wake()
    })
    this.lastCommit = done
  }

  /**
   * Resolve a `ctx.send` target now, so that mistakes throw inside the handler. A
   * durable sender's send is encoded now too: it is stored, so it must be deliverable.
   */
  resolveSend (from: Cell, target: AgentAddress, method: string, payload: unknown): OutboundSend {
    const info = this.registry.require(target?.type)
    const m = this.registry.method(info, method)
    const id = idOf(target)
    if (target.quota !== undefined) {
      const refused = this.quotas.admit(id, false) // the quota must exist; the limit is the receiver's business
      if (refused !== null) throw refused
    }
    let record: Uint8Array | null = null
    if (this.durableOutbox && (from.flags & kPersistent) !== 0) {
      record = this.encodeStored([from.id, id, info.type, m.name, payload], `the payload of ctx.send to ${info.type}.${m.name}`)
      if (record.length > this.maxMessageBytes) {
        throw new MessageTooLargeError(`ctx.send to ${info.type}.${m.name}: ${record.length} bytes is over maxMessageBytes (${this.maxMessageBytes})`, { bytes: record.length, maxMessageBytes: this.maxMessageBytes })
      }
    }
    return new OutboundSend(id, hashId(id), info.index, m.index, payload, record)
  }

  /**
   * Deliver stored durable sends again (after a crash, or when one may have been lost
   * with a ring): those addressed to agents `owns` accepts. Copies of sends already
   * applied are dropped when their turn would run. Returns how many were delivered.
   */
  redeliver (records: Iterable<readonly [key: number, bytes: Uint8Array]>, owns: (hash: number) => boolean): number {
    let n = 0
    for (const [key, bytes] of records) {
      if (this.claimed.has(key)) continue
      let to: string, type: string, method: string, payload: unknown
      try {
        [, to, type, method, payload] = this.codec.decode(bytes) as [string, string, string, string, unknown]
      } catch (err) {
        this.output.agentError?.('', '', new DecodeError(`a stored send does not decode: ${messageOf(err)}`).toWire())
        continue
      }
      const hash = hashId(to)
      if (!owns(hash)) continue
      const env = new Envelope()
      env.kind = MSG_SEND
      env.id = to
      env.hash = hash
      env.payload = payload
      env.outboxKey = key
      const info = this.registry.get(type)
      const m = info?.byName.get(method)
      if (info === undefined || m === undefined) {
        // the definitions changed since it was stored: it can never run, so it is consumed and reported
        this.claim(key)
        const error = info === undefined ? new UnknownAgentTypeError(type, this.registry.types.map((t) => t.type)) : new UnknownMethodError(type, method)
        this.output.agentError?.(to, method, error.toWire())
        continue
      }
      env.typeIdx = info.index
      env.methodIdx = m.index
      this.deliver(env)
      n++
    }
    return n
  }

  // ---- StorageHost ---------------------------------------------------------------

  encodeStored (value: unknown, what: string): Uint8Array {
    try {
      return this.codec.encode(value)
    } catch (err) {
      throw new EncodeError(`${what} cannot be encoded: ${messageOf(err).replace(/^state cannot be encoded: /, '')}`)
    }
  }

  decodeStored (bytes: Uint8Array, what: string): unknown {
    try {
      return this.codec.decode(bytes)
    } catch (err) {
      throw new DecodeError(`${what} does not decode: ${messageOf(err)}`)
    }
  }

  storageBelow (id: string): StorageOverlay[] {
    const open = this.openStorage.get(id)
    const chain = this.inflightStorage.get(id)
    if (chain === undefined) return open === undefined ? kNoLayers : [open]
    const layers = chain.map((c) => c.overlay)
    if (open !== undefined) layers.unshift(open)
    return layers
  }

  offload (name: string, input: unknown): Promise<unknown> {
    if (typeof name !== 'string' || name.length === 0) {
      return Promise.reject(new InvalidArgumentError(`ctx.offload(name) takes the name of an export of the offload module (got ${typeof name === 'string' ? '""' : typeof name})`))
    }
    if (this.offloader === undefined) {
      return Promise.reject(new OffloadError(`ctx.offload(${JSON.stringify(name)}) needs the host option \`offload: { filename }\``, { task: name }))
    }
    return this.offloader(name, input)
  }

  /** Resolves when every commit handed to the store so far has completed and released its effects. */
  whenCommitted (): Promise<void> {
    return this.lastCommit ?? Promise.resolve()
  }

  /**
   * Ids of resident agents starting with `prefix` that the store may not hold yet: never
   * committed (or first commit in flight), or of a type kept in memory only. Listing
   * merges them with the store's.
   */
  residentIds (prefix: string): string[] {
    const ids: string[] = []
    for (const cell of this.table.values()) {
      const unsaved = (cell.flags & (kNew | kPersistent)) !== kPersistent || this.hasInflight(cell.id)
      if (unsaved && cell.id.startsWith(prefix)) ids.push(cell.id)
    }
    return ids
  }

  /** Drop every resident agent (host shutdown, after the last commit). */
  clear (): void {
    this.table.clear()
    this.timers.clear()
    this.reminders.clear()
  }

  private activate (env: Envelope): Cell | undefined {
    const info = this.registry.types[env.typeIdx]
    if (info === undefined) {
      this.reject(env, '?', new UnknownAgentTypeError(`#${env.typeIdx}`))
      return undefined
    }
    const m = methodOf(info, env)
    if (m === undefined) {
      this.reject(env, `#${env.methodIdx}`, new UnknownMethodError(info.type, `#${env.methodIdx}`))
      return undefined
    }
    let flags = 0
    let state: unknown
    let found = false
    if (this.persistent[env.typeIdx] === true) {
      flags = kPersistent
      let bytes: Uint8Array | null | undefined
      try {
        bytes = this.inflightState(env.id)
        if (bytes === undefined) bytes = this.store!.getState(env.id)
      } catch (err) {
        this.reject(env, m.name, new StorageError(`reading agent ${printable(env.id)} failed: ${messageOf(err)}`, { id: env.id }))
        return undefined
      }
      if (bytes != null) {
        try {
          state = this.codec.decode(bytes)
          found = true
        } catch (err) {
          this.reject(env, m.name, new DecodeError(`the stored state of agent ${printable(env.id)} does not decode: ${messageOf(err)}`, { id: env.id }))
          return undefined
        }
      }
    }
    const refused = this.quotas.admit(env.id, !found)
    if (refused !== null) {
      this.reject(env, m.name, refused)
      return undefined
    }
    if (!found) {
      try {
        state = info.def.initial(keyOf(env.id))
      } catch (err) {
        this.reject(env, m.name, new AgentError(`initial() failed: ${messageOf(err)}`, { name: nameOf(err), id: env.id }))
        return undefined
      }
      flags |= kNew
    }
    const cell = this.limits !== null && this.limits.limited(info.index)
      ? this.limits.create(env.id, env.hash, info, state, flags, this.tick, this.now())
      : new Cell(env.id, env.hash, info, state, flags, this.tick)
    this.table.set(env.id, env.hash, cell)
    this.timers.activated(cell)
    return cell
  }

  /**
   * Rate-limit time, read from the clock once per batch of messages: performance.now()
   * costs ~80 ns here, several times the bucket itself. The reading is forgotten when the
   * batch commits and when an async turn's settlement is done, so it is never older than
   * the loop pass (a few ms) it was taken in. Readings never go backwards, so the buckets
   * stay exact token buckets; messages of one pass are simply timed at its start.
   */
  private now (): number {
    if (!this.nowRead) {
      this.nowMs = this.clock.now()
      this.nowRead = true
    }
    return this.nowMs
  }

  /** Take a token from a limited agent's bucket, or refuse the message without running it. */
  private admit (cell: LimitedCell, env: Envelope): boolean {
    const wait = this.limits!.take(cell, this.now())
    if (wait === 0) return true
    this.rateLimited++
    const retryAfterMs = Math.ceil(wait * 1000) / 1000
    this.reject(env, cell.info.methods[env.methodIdx]?.name ?? `#${env.methodIdx}`, new RateLimitedError(
      `agent ${printable(cell.id)} is rate limited (${this.limits!.describe(cell.info.index)}): retry after ${retryAfterMs} ms`,
      { id: cell.id, retryAfterMs }))
    return false
  }


  private turn (cell: Cell, env: Envelope): void {
    if (env.kind === MSG_FOLLOW || env.kind === MSG_UNFOLLOW) {
      this.followers.handle(env) // queued behind a busy memory-only agent's turn
      return
    }
    const m = methodOf(cell.info, env)
    if (m === undefined) {
      this.reject(env, `#${env.methodIdx}`, new UnknownMethodError(cell.info.type, `#${env.methodIdx}`))
      return
    }
    if (env.outboxKey !== 0 && !this.claim(env.outboxKey)) {
      this.duplicateSends++
      return
    }
    if (m.command && (cell.flags & (kNew | kCounted)) === kNew) {
      // the first command of a new agent creates it: one unit of its quota, or refused unrun
      const refused = this.quotas.reserve(cell)
      if (refused !== null) {
        this.reject(env, m.name, refused)
        if ((cell.flags & kDirty) === 0) this.drop(cell)
        return
      }
    }
    if (m.command && (cell.flags & (kPersistent | kDirty | kSnapFresh)) === (kPersistent | kDirty)) {
      // a second command in the open batch: keep the state the first one left, for rollback
      try {
        this.snapshots.set(cell, this.codec.encode(cell.state))
        cell.flags |= kSnapFresh
      } catch (err) {
        this.poison(cell, unencodable(cell, err))
        this.deliver(env)
        return
      }
    }
    const ctx = new TurnContext(this, cell, m.command)
    let result: unknown
    try {
      result = m.fn(cell.state, env.payload, ctx)
    } catch (err) {
      this.failTurn(cell, env, m, ctx, err)
      return
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      cell.flags |= kBusy
      this.busy++
      const held = env.kind === MSG_CALL ? env.clone() : env
      Promise.resolve(result as PromiseLike<unknown>).then(
        (value) => this.settle(cell, held, m, ctx, true, value),
        (err: unknown) => this.settle(cell, held, m, ctx, false, err))
      return
    }
    this.finishTurn(cell, env, m, ctx, result)
  }

  private settle (cell: Cell, env: Envelope, m: MethodInfo, ctx: TurnContext, ok: boolean, value: unknown): void {
    cell.flags &= ~kBusy
    this.busy--
    if (ok) this.finishTurn(cell, env, m, ctx, value)
    else this.failTurn(cell, env, m, ctx, value)
    this.drainMailbox(cell)
    this.nowRead = false // outside a batch: the next one reads the clock again
    this.output.wake()
  }

  private finishTurn (cell: Cell, env: Envelope, m: MethodInfo, ctx: TurnContext, value: unknown): void {
    ctx.ended = true
    if (ctx.timeoutAt !== -1 || ctx.idleTicks !== -1) this.timers.fromTurn(cell, ctx.timeoutAt, ctx.idleTicks)
    if (m.command && (cell.flags & kPersistent) !== 0) {
      if ((cell.flags & kDirty) === 0) {
        cell.flags |= kDirty
        this.dirty.push(cell)
      }
      if (ctx.reminderChanges !== null) this.applyReminders(cell, ctx.reminderChanges)
      const storage = ctx.turnStorage
      if (storage !== null && storage.writes !== null) {
        let open = this.openStorage.get(cell.id)
        if (open === undefined) this.openStorage.set(cell.id, open = new StorageOverlay())
        storage.joinTo(open)
      }
      cell.flags &= ~kSnapFresh
      if (env.kind === MSG_CALL) this.effects.push(new Effect(cell, null, env.replyTo, env.callId, true, value))
      if (ctx.outbox !== null) for (const s of ctx.outbox) this.effects.push(new Effect(cell, s, 0, 0, true, undefined))
      return
    }
    if (env.kind === MSG_CALL) this.output.reply(env.replyTo, env.callId, true, value)
    if (ctx.outbox !== null) for (const s of ctx.outbox) this.output.send(s.id, s.hash, s.typeIdx, s.methodIdx, s.payload, 0, cell.id)
    // a memory-only agent's state counts as committed once its command's turn has ended
    if (m.command && this.followers.size !== 0 && this.followers.of(cell.id) !== undefined) this.followers.publishTurn(cell)
    if ((cell.flags & (kDeactivate | kDelete)) !== 0 && (cell.flags & kDirty) === 0) this.drop(cell)
  }

  private failTurn (cell: Cell, env: Envelope, m: MethodInfo, ctx: TurnContext, err: unknown): void {
    ctx.ended = true
    const error = new AgentError(messageOf(err), { name: nameOf(err), id: cell.id, method: m.name, ...codeOf(err) })
    const gated = m.command && (cell.flags & kPersistent) !== 0
    if (m.command) {
      cell.flags &= ~(kDeactivate | kDelete)
      if ((cell.flags & kDirty) !== 0) {
        // uncommitted turns of this batch stay: back to the state they left
        try {
          cell.state = this.codec.decode(this.snapshots.get(cell)!)
          cell.flags |= kSnapFresh
        } catch (decodeErr) {
          this.poison(cell, unencodable(cell, decodeErr))
        }
      } else {
        this.drop(cell) // back to the last committed state on the next message
      }
    }
    // queries are read-only by contract: nothing to roll back
    if (env.kind === MSG_CALL) {
      if (gated) this.effects.push(new Effect(cell, null, env.replyTo, env.callId, false, error.toWire()))
      else this.output.reply(env.replyTo, env.callId, false, error.toWire())
    }
    this.output.agentError?.(cell.id, m.name, error.toWire())
  }

  private drainMailbox (cell: Cell): void {
    const mailbox = cell.mailbox
    if (mailbox === null) return
    while (mailbox.size !== 0) {
      if ((cell.flags & kDropped) !== 0) {
        cell.mailbox = null
        for (const env of mailbox.drain()) this.deliver(env)
        return
      }
      if ((cell.flags & kBusy) !== 0) return
      const env = mailbox.shift()!
      if (isMessage(env.kind)) cell.lastTick = this.tick
      this.turn(cell, env)
    }
    if ((cell.flags & kBusy) === 0) cell.mailbox = null
  }

  /**
   * An agent's uncommitted state cannot be encoded: fail the batch's replies for it,
   * drop its sends, and return it to its last committed state.
   */
  private poison (cell: Cell, error: ShoalError): void {
    cell.flags &= ~(kDirty | kSnapFresh)
    this.snapshots.delete(cell)
    this.openStorage.delete(cell.id)
    this.effects = this.failEffects(this.effects, new Map([[cell, error]]))
    this.drop(cell)
    this.output.agentError?.(cell.id, '', error.toWire())
  }

  private failEffects (effects: Effect[], failed: ReadonlyMap<Cell, ShoalError>): Effect[] {
    const kept: Effect[] = []
    for (const e of effects) {
      const error = failed.get(e.cell)
      if (error === undefined) kept.push(e)
      else if (e.send === null) kept.push(new Effect(e.cell, null, e.replyTo, e.callId, false, error.toWire()))
    }
    return kept
  }

  private commitFailed (states: ReadonlyArray<readonly [string, Uint8Array | null]>, effects: Effect[], err: unknown, quota: QuotaBatch | null): void {
    if (quota !== null) this.quotas.failed(quota)
    const error = new StorageError(`commit failed: ${messageOf(err)}`)
    for (const [id] of states) {
      const cell = this.table.get(id, hashId(id))
      if (cell !== undefined && (cell.flags & kBusy) === 0) this.drop(cell)
    }
    for (const e of effects) {
      if (e.send === null) this.output.reply(e.replyTo, e.callId, false, error.toWire())
    }
  }

  /** Release effects after every earlier commit in flight (replies stay in order). */
  private releaseInOrder (effects: Effect[]): void {
    if (effects.length === 0) return
    if (this.lastCommit === null) this.release(effects)
    else this.lastCommit = this.lastCommit.then(() => this.release(effects))
  }

  private release (effects: Effect[]): void {
    for (const e of effects) {
      if (e.send !== null) this.output.send(e.send.id, e.send.hash, e.send.typeIdx, e.send.methodIdx, e.send.payload, e.send.outboxKey, e.cell.id)
      else this.output.reply(e.replyTo, e.callId, e.ok, e.value)
    }
  }

  /**
   * Take a durable send for the open batch, unless it was applied already: its record
   * is gone, or a turn of this thread applied it and the removal has not committed yet.
   */
  private claim (key: number): boolean {
    if (this.claimed.has(key) || !this.store!.hasOutbox(key)) return false
    this.claimed.add(key)
    this.consumed.push(key)
    return true
  }

  /**
   * The storage layer of a delete: everything below is gone. A store wipes the keys it
   * has committed when the batch is written; keys of commits still in flight are not
   * there yet, so they are deleted by name too.
   */
  private wipeOverlay (id: string): StorageOverlay {
    const wipe = new StorageOverlay()
    wipe.wiped = true
    for (const c of this.inflightStorage.get(id) ?? []) for (const [key, bytes] of c.overlay.entries) if (bytes !== null) wipe.entries.set(key, null)
    return wipe
  }

  private nextOutboxKey (): number {
    if (this.sendSeq === 0xffffffff) this.takeIncarnation()
    return this.incarnation * 0x100000000 + ++this.sendSeq
  }

  private takeIncarnation (): void {
    this.incarnation = this.store!.newIncarnation()
    if (!(this.incarnation >= 1 && this.incarnation < MAX_INCARNATION)) {
      throw new StorageError(`the store ran out of outbox incarnations (${this.incarnation})`)
    }
    this.sendSeq = 0
  }

  // ---- FollowHost (followers.ts) ------------------------------------------------

  /** @internal */
  residentCell (id: string, hash: number): Cell | undefined {
    return this.table.get(id, hash)
  }

  /** @internal a state written to the store and not yet committed */
  hasInflight (id: string): boolean {
    return this.inflightState(id) !== undefined
  }

  /** The newest state of `id` in a commit in flight: bytes, null (deleted), or undefined (none). */
  private inflightState (id: string): Uint8Array | null | undefined {
    for (let i = this.inflight.length - 1; i >= 0; i--) {
      const bytes = this.inflight[i]!.states.get(id)
      if (bytes !== undefined) return bytes
    }
    return undefined
  }

  /** @internal the last committed state in the store (persistent types), or undefined */
  storedState (typeIdx: number, id: string): Uint8Array | undefined {
    if (this.persistent[typeIdx] !== true) return undefined
    try {
      return this.store!.getState(id) // committed only: writes in flight are not visible yet
    } catch (err) {
      throw new StorageError(`reading agent ${printable(id)} failed: ${messageOf(err)}`, { id })
    }
  }

  /** @internal wait behind a busy agent's turn */
  queue (cell: Cell, env: Envelope): void {
    (cell.mailbox ??= new Mailbox()).push(env.clone())
  }

  private drop (cell: Cell): void {
    if (this.table.get(cell.id, cell.hash) === cell) this.table.delete(cell.id, cell.hash)
    else if ((cell.flags & kDropped) !== 0) return
    cell.flags |= kDropped
    if (cell.timer !== -1) this.timers.dropped(cell)
    if ((cell.flags & kLimited) !== 0) this.limits!.dropped(cell as LimitedCell, this.now())
    if ((cell.flags & kCounted) !== 0) this.quotas.release(cell)
  }

  private reject (env: Envelope, method: string, error: ShoalError): void {
    if (env.outboxKey !== 0) this.claim(env.outboxKey) // a stored send that can never run: consumed, and reported below
    if (env.kind === MSG_CALL) this.output.reply(env.replyTo, env.callId, false, error.toWire())
    this.output.agentError?.(env.id, method, error.toWire())
  }
}

/** The handler a message runs: a command or query by index, or the type's timeout for MSG_TIMER. */
function methodOf (info: TypeInfo, env: Envelope): MethodInfo | undefined {
  if (env.kind === MSG_TIMER) return info.timeoutMethod ?? undefined
  if (env.kind === MSG_REMINDER) return info.reminderMethod ?? undefined
  return info.methods[env.methodIdx]
}
const kNoLayers: StorageOverlay[] = []

function unencodable (cell: Cell, err: unknown): EncodeError {
  return new EncodeError(`the state of agent ${printable(cell.id)} cannot be encoded: ${messageOf(err)}`, { id: cell.id })
}

function nameOf (err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

function codeOf (err: unknown): { code?: string } {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? { code } : {}
}

/** Ids in messages: the separators shown as '/'. */
export function printable (id: string): string {
  return id.replaceAll('\u001f', '/')
}
