/**
 * The single-threaded shard runtime: the agents of the shards one thread owns, and the
 * turn engine that runs them.
 *
 * It activates agents on their first message, runs one turn at a time per agent
 * (an async handler makes its agent busy; later messages wait in its mailbox while
 * other agents go on), and rolls an agent back when a handler throws (crash-only, as in
 * Pachyderm's "immortal" entities). What a turn leaves goes to the commit pipeline
 * (commit-pipeline.ts: group commit, rollback snapshots, the output gate); durable sends
 * to the outbox (durable-outbox.ts); reminders to time/shard-reminders.ts; follows to
 * followers.ts.
 *
 * It knows nothing of threads, rings or LMDB: messages come in through `deliver`, go
 * out through `RuntimeOutput`, and state goes to an injected `Store` (ports.ts). The same
 * runtime runs in worker threads, on the main thread (`workers: 0`) and in the simulator.
 */
import { idOf, printable } from '../agent/agent-id.ts'
import type { AgentAddress } from '../agent/agent-id.ts'
import { newCell, typeIndexOf, kBusy, kCounted, kDeactivate, kDefaultQuota, kDelete, kDirty, kDropped, kLimited, kNew, kPersistent, kQueued, kSnapFresh } from './cell.ts'
import type { Cell } from './cell.ts'
import { systemClock } from '../time/clock.ts'
import type { Clock } from '../time/clock.ts'
import { AgentTable } from './agent-table.ts'
import { IdArena, decodeUtf8 } from './id-arena.ts'
import { Envelope, MSG_CALL, MSG_FOLLOW, MSG_FORGET, MSG_REMINDER, MSG_TIMER, MSG_UNFOLLOW, isMessage } from '../agent/envelope.ts'
import { ShardUnavailableError } from '../errors.ts'
import { AgentTimers } from '../time/agent-timers.ts'
import type { TimerHost } from '../time/agent-timers.ts'
import { ShardReminders } from '../time/shard-reminders.ts'
import type { ReminderHost } from '../time/shard-reminders.ts'
import {
  AgentError, DecodeError, EncodeError, InvalidArgumentError, OffloadError, RateLimitedError, ShoalError,
  StorageError, UnknownAgentTypeError, UnknownMethodError, messageOf
} from '../errors.ts'
import { hashId, shardOf } from '../placement/hash.ts'
import { SHARD_LOCAL } from '../placement/shard-state.ts'
import type { ShardStates } from '../placement/shard-state.ts'
import type { MovedTimeout } from '../time/agent-timers.ts'
import { Mailbox } from './mailbox.ts'
import { Followers } from './followers.ts'
import type { FollowHost } from './followers.ts'
import type { CommitStats } from './commit-stats.ts'
import { CommitPipeline, unencodable } from './commit-pipeline.ts'
import type { CommitHost } from './commit-pipeline.ts'
import { DurableOutbox } from './durable-outbox.ts'
import type { OutboxHost } from './durable-outbox.ts'
import type { RuntimeOutput, ShardRuntimeOptions, ValueCodec } from './ports.ts'
import { QuotaCounters } from '../tenancy/quota-counters.ts'
import { QuotaDirectory, QuotaGate, isDefaultQuotaBytes, isDefaultQuotaId } from '../tenancy/quota-gate.ts'
import { RateLimits } from '../tenancy/rate-limits.ts'
import type { LimitedCell } from '../tenancy/rate-limits.ts'
import type { AgentRegistry, MethodInfo, TypeInfo } from '../agent/registry.ts'
import type { OutboxRecord, Store } from '../storage/store.ts'
import type { StorageOverlay } from '../storage/agent-storage.ts'
import { OutboundSend, TurnContext } from './turn-context.ts'
import type { ContextHost } from './turn-context.ts'

export type { RuntimeOutput, ShardRuntimeOptions, ValueCodec } from './ports.ts'

/** Most hashes one `touch` call takes. */
export const kTouchMax = 64

export class ShardRuntime implements ContextHost, TimerHost, FollowHost, CommitHost, OutboxHost, ReminderHost {
  readonly registry: AgentRegistry
  readonly store: Store | null
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  readonly table: AgentTable<Cell>
  /** The resident agents' ids, as bytes (a cell holds its record's ref: `idOf`). */
  readonly ids: IdArena
  private lastIdCell: Cell | null = null
  private lastId = ''
  /** The host clock's tick as this thread has processed it; moved by `advanceTo`. */
  tick = 0
  /** ctx.timeout and idle deadlines of the resident agents (agent-timers.ts). */
  readonly timers: AgentTimers
  /** Durable reminders of the agents this thread owns, resident or not (time/shard-reminders.ts). */
  readonly reminders: ShardReminders = new ShardReminders(this)
  /** Durable sends: keys handed out, and keys applied and not yet committed as removed. */
  readonly outbox: DurableOutbox
  /** The open batch, the commits in flight, and the effects they hold back. */
  readonly pipeline: CommitPipeline

  /** touch()'s cells (its reused scratch). */
  private readonly touchCells: Array<Cell | undefined> = new Array<Cell | undefined>(kTouchMax).fill(undefined)

  /** Messages delivered, for stats. */
  messages = 0
  /** Agents taken into the table (loaded or created), for stats. */
  activations = 0
  /**
   * Activations of durable agents that read the store for their state, for stats: the
   * others were in a shard the store knows holds no state (`Store.knownStateless`).
   */
  stateReads = 0
  /** Async turns in flight. */
  busy = 0
  /** Durable sends dropped because they had already been applied. */
  duplicateSends = 0
  /** Messages refused by a rate limit. */
  rateLimited = 0
  readonly clock: Clock
  private nowMs = 0
  private nowRead = false
  /** Null when no type has a rate limit. */
  readonly limits: RateLimits | null
  /** `ref.follow()` subscriptions to this thread's agents. */
  readonly followers: Followers = new Followers(this)
  readonly quotas: QuotaGate

  private readonly persistent: readonly boolean[]
  private readonly offloader: ((name: string, input: unknown) => Promise<unknown>) | undefined
  /** encodeStored's last primitive value and its bytes. */
  private lastStoredValue: unknown = undefined
  private lastStoredBytes: Uint8Array | null = null
  /** Reused for timer turns (deliver clones it when it must wait in a mailbox). */
  private readonly timerEnvelope = new Envelope()
  /** Which shards this thread serves; null on a single host (all of them). */
  private readonly states: ShardStates | null
  /** The mailboxes of busy agents that have messages waiting (flag kQueued). */
  private readonly mailboxes = new Map<Cell, Mailbox<Envelope>>()
  /** Timer turns that waited in the mailbox of an agent whose shard left: they go with it, due at once. */
  private strandedTimeouts: MovedTimeout[] = []

  constructor (options: ShardRuntimeOptions) {
    this.registry = options.registry
    this.store = options.store
    this.codec = options.codec
    this.output = options.output
    this.offloader = options.offload
    this.ids = options.idChunkBytes === undefined ? new IdArena(options.decodeUtf8 ?? decodeUtf8) : new IdArena(options.decodeUtf8 ?? decodeUtf8, options.idChunkBytes)
    this.table = new AgentTable<Cell>(options.tableCapacity, this.ids)
    this.clock = options.clock ?? systemClock
    this.limits = RateLimits.of(this.registry.types)
    this.quotas = options.quotas ?? new QuotaGate(new QuotaDirectory(), new QuotaCounters(1), 0)
    this.persistent = this.registry.types.map((t) => options.store !== null && t.def.durable !== false)
    this.tick = options.startTick ?? 0
    this.timers = new AgentTimers(this, this.registry.types.map((t) => t.def.idleTicks ?? 0), this.tick, options.tableCapacity)
    this.pipeline = new CommitPipeline(this, options.stopwatch ?? systemClock, options.batchRoom ?? null)
    // takes its first incarnation now, at the thread's start, not in the middle of building a batch
    const mode = options.outbox ?? 'claim'
    if (mode !== 'claim' && mode !== 'dedup') throw new InvalidArgumentError(`ShardRuntime: outbox must be 'claim' or 'dedup' (got ${String(mode)})`)
    this.outbox = new DurableOutbox(this, options.store, options.maxMessageBytes ?? Number.POSITIVE_INFINITY, mode)
    this.states = options.shardStates ?? null
  }

  get activeAgents (): number {
    return this.table.size
  }

  /** True when a batch is open or commits are in flight. */
  get pendingCommit (): boolean {
    return this.pipeline.pending
  }

  /** Batches committed. */
  get commits (): number {
    return this.pipeline.commits
  }

  /** States committed, over all batches. */
  get committedStates (): number {
    return this.pipeline.committedStates
  }

  /** Batch sizes and commit latencies. */
  get commitStats (): CommitStats {
    return this.pipeline.stats
  }

  /** Wall time of the current tick, epoch ms (reminders; not the rate-limit clock). */
  get tickTimeMs (): number {
    return this.reminders.timeOf(this.tick)
  }

  deliver (env: Envelope): void {
    // a message for a shard served elsewhere: a redelivered durable send, or one that waited in a mailbox (a forget too)
    if (this.states !== null && (env.kind <= MSG_UNFOLLOW || env.kind === MSG_FORGET) && this.states[shardOf(env.hash)] !== SHARD_LOCAL) {
      this.output.forward!(env)
      return
    }
    if (env.kind === MSG_FOLLOW || env.kind === MSG_UNFOLLOW) {
      this.followers.handle(env)
      return
    }
    if (env.kind === MSG_FORGET) {
      // after whatever waits in the agent's mailbox: copies of the send may be there
      const cell = this.lookup(env)
      if (cell !== undefined && (cell.flags & kBusy) !== 0) this.queue(cell, env)
      else this.outbox.forget({ shard: shardOf(env.hash), origin: env.origin, key: env.outboxKey })
      return
    }
    this.messages++
    let cell = this.lookup(env)
    if (cell === undefined) {
      cell = this.activate(env)
      if (cell === undefined) return
      this.activations++
    }
    // timer and reminder turns are not messages: no rate limit
    if ((cell.flags & kLimited) !== 0 && isMessage(env.kind) && !this.admit(cell as LimitedCell, env)) return
    if ((cell.flags & kBusy) !== 0) {
      this.queue(cell, env)
      return
    }
    if (isMessage(env.kind)) cell.lastTick = this.tick // timer and reminder turns are not messages: idleness goes on
    this.turn(cell, env)
  }

  /**
   * Touch what delivering the messages for `hashes[0..n)` will read — each one's table
   * slot, the cell there, the cell's id bytes (IdArena) and state — and return a number made of
   * them (the caller keeps it, so that the loads are not optimized away). The thread loop
   * calls this for the next frames before delivering them: at 1M agents each of those
   * reads is a cache miss (the table lookup was a quarter of a fanout worker,
   * bench/RESULTS.md, issue 13). One level at a time over all n — slots, then cells and
   * ids, then states — so that the misses of n agents overlap instead of stalling one
   * by one. At most kTouchMax hashes.
   */
  touch (hashes: Int32Array, n: number): number {
    const near = this.touchCells
    const table = this.table
    let sink = 0
    for (let j = 0; j < n; j++) near[j] = table.homeCell(hashes[j]!)
    for (let j = 0; j < n; j++) {
      const c = near[j]
      if (c !== undefined) sink ^= c.flags ^ this.ids.touch(c.idRef as number)
    }
    for (let j = 0; j < n; j++) {
      const c = near[j]
      if (c !== undefined && typeof c.state === 'object') sink ^= 1
    }
    return sink
  }

  /**
   * Move time to the host clock's tick `to`: fire the timers, idle checks and reminders
   * due on the way (agent-timers.ts, shard-reminders.ts), handling at most `budget` of
   * them. True once caught up; false means call again (from the next loop pass).
   */
  advanceTo (to: number, budget: number): boolean {
    const timers = this.timers
    const reminders = this.reminders
    for (;;) {
      // finish the tick in hand, then step to the next tick with timer or reminder work
      if ((budget = timers.drain(budget)) < 0) return false
      if ((budget = reminders.fire(budget, this.tick)) < 0) return false
      if (this.tick >= to) return true
      const a = timers.nextEvent()
      const b = reminders.nextTick()
      const next = a < 0 ? b : b < 0 ? a : Math.min(a, b)
      const t = next < 0 || next > to ? to : Math.max(next, this.tick + 1)
      this.tick = t
      timers.collect(t)
      reminders.collect(t)
    }
  }

  /** The next tick this thread has timer or reminder work at, or -1: it may park until then. */
  nextTimerTick (): number {
    if (this.reminders.hasDue) return this.tick
    const a = this.timers.nextTick()
    const b = this.reminders.nextTick()
    return a < 0 ? b : b < 0 ? a : Math.min(a, b)
  }

  /**
   * Start durable reminders: map ticks to wall time (tick t is `epochMs + t × tickMs`)
   * and read the stored reminders of the agents `owns` accepts. Once per thread start.
   */
  startReminders (epochMs: number, tickMs: number, owns: (hash: number) => boolean): void {
    this.reminders.start(epochMs, tickMs, this.tick, owns)
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
      this.pipeline.commit()
    } finally {
      this.nowRead = false
    }
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
    const send = new OutboundSend(id, hashId(id), info.index, m.index, payload)
    if (this.outbox.durable && (from.flags & kPersistent) !== 0) this.outbox.record(send, this.idOf(from), info.type, m.name, payload)
    return send
  }

  /**
   * Deliver stored durable sends again (after a crash, or when one may have been lost
   * with a ring): those addressed to agents `owns` accepts. Copies of sends already
   * applied are dropped when their turn would run. Returns how many were delivered.
   */
  redeliver (records: Iterable<OutboxRecord>, owns: (hash: number) => boolean): number {
    return this.outbox.redeliver(records, owns)
  }

  /**
   * Dedup mode: forget that agent `id` applied the send `(origin, key)` — as a MSG_FORGET
   * arriving now would (after what waits in the agent's mailbox), in the open batch.
   */
  forget (id: string, hash: number, origin: string, key: number): void {
    const env = new Envelope()
    env.kind = MSG_FORGET
    env.id = id
    env.hash = hash
    env.origin = origin
    env.outboxKey = key
    this.deliver(env)
  }

  // ---- StorageHost ---------------------------------------------------------------

  /**
   * Encode a stored value (a `ctx.storage` value, a durable send). `what` (and `key`,
   * quoted after it) name it in the error, built only if there is one: the message was
   * built for every put before.
   *
   * The last string, number or boolean encoded is kept with its bytes: an agent putting
   * the same small value under many keys (DNA's `put(n, "test")`, flags, statuses) gets
   * the same immutable bytes back without encoding them again. Bytes are never written
   * after encoding (stores copy them or point at them), so sharing them is safe.
   */
  encodeStored (value: unknown, what: string, key?: string): Uint8Array {
    if (this.lastStoredBytes !== null && Object.is(value, this.lastStoredValue)) return this.lastStoredBytes
    let bytes: Uint8Array
    try {
      bytes = this.codec.encode(value)
    } catch (err) {
      throw new EncodeError(`${key === undefined ? what : `${what} ${JSON.stringify(key)}`} cannot be encoded: ${messageOf(err).replace(/^state cannot be encoded: /, '')}`)
    }
    const t = typeof value
    if (t === 'string' || t === 'number' || t === 'boolean') {
      this.lastStoredValue = value
      this.lastStoredBytes = bytes
    }
    return bytes
  }

  decodeStored (bytes: Uint8Array, what: string, key?: string): unknown {
    try {
      return this.codec.decode(bytes)
    } catch (err) {
      throw new DecodeError(`${key === undefined ? what : `${what} ${JSON.stringify(key)}`} does not decode: ${messageOf(err)}`)
    }
  }

  storageBelow (id: string): StorageOverlay[] {
    return this.pipeline.storageBelow(id)
  }

  openLayer (id: string): StorageOverlay {
    return this.pipeline.openLayer(id)
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
    return this.pipeline.whenCommitted()
  }

  /**
   * Ids of resident agents starting with `prefix` that the store may not hold yet: never
   * committed (or first commit in flight), or of a type kept in memory only. Listing
   * merges them with the store's.
   */
  residentIds (prefix: string): string[] {
    const ids: string[] = []
    for (const cell of this.table.values()) {
      const id = this.idOf(cell)
      const unsaved = (cell.flags & (kNew | kPersistent)) !== kPersistent || this.hasInflight(id)
      if (unsaved && id.startsWith(prefix)) ids.push(id)
    }
    return ids
  }

  // ---- shards leaving and arriving (cluster moves; docs/cluster.md) ----------------

  /**
   * Can the shards `picks` selects (by hash) leave now? Their state must be LOCAL no more
   * (so no turn of theirs starts), and none of their agents may be in a turn, in the open
   * batch, or in a commit in flight: what leaves is what the store has committed.
   */
  releasable (picks: (hash: number) => boolean): boolean {
    for (const cell of this.table.values()) {
      if ((cell.flags & (kBusy | kDirty)) !== 0 && picks(cell.hash)) return false
    }
    return !this.pipeline.inflightWhere((id) => picks(hashId(id)))
  }

  /**
   * The shards `picks` selects leave this thread (call once `releasable`): their agents are
   * passivated, their reminders forgotten (they are stored), their followers told to
   * subscribe again where the shard goes. Returns the agents' armed timeouts, which live
   * only in memory, for the new owner to arm.
   */
  release (picks: (hash: number) => boolean): MovedTimeout[] {
    const moved = this.timers.takeTimeouts((cell) => picks(cell.hash), this.table.values())
    const stranded = this.strandedTimeouts
    if (stranded.length !== 0) {
      this.strandedTimeouts = []
      for (const t of stranded) if (picks(t[1])) moved.push(t); else this.strandedTimeouts.push(t)
    }
    const leaving: Cell[] = []
    for (const cell of this.table.values()) if (picks(cell.hash)) leaving.push(cell)
    for (const cell of leaving) {
      cell.flags |= kDeactivate
      this.drop(cell)
    }
    this.reminders.drop(picks)
    if (this.followers.size !== 0) {
      this.followers.endWhere(picks, hashId, new ShardUnavailableError('the agent moved to another host', { moved: true }).toWire())
    }
    return moved
  }

  /**
   * The shards `picks` selects arrived (their records are in the store): read their
   * reminders and arm the timeouts that came with them.
   */
  adopt (picks: (hash: number) => boolean, timeouts: readonly MovedTimeout[]): void {
    this.reminders.load(picks)
    for (const [id, hash, typeIdx, ticksLeft] of timeouts) {
      const info = this.registry.types[typeIdx]
      if (info === undefined || !picks(hash) || this.table.get(id, hash) !== undefined) continue
      this.timers.giveTimeout(newCell(id, hash, typeIdx, undefined, 0, this.tick), ticksLeft)
    }
  }

  /**
   * Drop every resident agent (host shutdown, after the last commit). The id arena keeps
   * its records: a late completion of a cell dropped here still reads its id by its ref.
   */
  clear (): void {
    this.table.clear()
    this.mailboxes.clear()
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
        const store = this.store!
        bytes = this.pipeline.hasDropped ? this.pipeline.droppedState(env.id) : undefined
        // by the frame's bytes when the store reads by bytes: no id string for an activation;
        // no read at all in a shard the store knows holds no state (a fresh store's, mostly)
        if (bytes === undefined && (store.knownStateless === undefined || !store.knownStateless(env.hash))) {
          this.stateReads++
          bytes = env.idBytes !== null && store.getStateOfBytes !== undefined
            ? store.getStateOfBytes(env.idBytes, env.idAt, env.idLen, env.hash)
            : store.getState(env.id, env.hash)
        }
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
    const refused = env.idBytes !== null
      ? this.quotas.admitBytes(env.idBytes, env.idAt, env.idLen, !found, () => env.id)
      : this.quotas.admit(env.id, !found)
    if (refused !== null) {
      this.reject(env, m.name, refused)
      return undefined
    }
    if (!found) {
      try {
        // no key decoded for an `initial` that cannot read it (registry.ts, takesNoArgument)
        state = info.initialTakesKey ? info.def.initial(env.key()) : (info.def.initial as () => unknown)()
      } catch (err) {
        this.reject(env, m.name, new AgentError(`initial() failed: ${messageOf(err)}`, { name: nameOf(err), id: env.id }))
        return undefined
      }
      flags |= kNew
    }
    // the id's bytes go to the arena (from the frame when it came in one): the cell holds no
    // string; whether it is of the default quota is noted now, while its bytes are in hand
    let ref: number
    if (env.idBytes !== null) {
      ref = this.ids.addBytes(env.idBytes, env.idAt, env.idLen)
      if (isDefaultQuotaBytes(env.idBytes, env.idAt, env.idLen)) flags |= kDefaultQuota
    } else {
      ref = this.ids.addString(env.id)
      if (isDefaultQuotaId(env.id)) flags |= kDefaultQuota
    }
    const cell = this.limits !== null && this.limits.limited(info.index)
      ? this.limits.create(env.id, ref, env.hash, info.index, state, flags, this.tick, this.now())
      : newCell(ref, env.hash, info.index, state, flags, this.tick)
    this.table.add(env.hash, cell) // not resident: deliver looked it up
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
    this.reject(env, this.infoOf(cell).methods[env.methodIdx]?.name ?? `#${env.methodIdx}`, new RateLimitedError(
      `agent ${printable(this.idOf(cell))} is rate limited (${this.limits!.describe(typeIndexOf(cell))}): retry after ${retryAfterMs} ms`,
      { id: this.idOf(cell), retryAfterMs }))
    return false
  }

  private turn (cell: Cell, env: Envelope): void {
    if (env.kind === MSG_FOLLOW || env.kind === MSG_UNFOLLOW) {
      this.followers.handle(env) // queued behind a busy memory-only agent's turn
      return
    }
    if (env.kind === MSG_FORGET) {
      this.outbox.forget({ shard: shardOf(env.hash), origin: env.origin, key: env.outboxKey }) // queued behind a busy agent's turn
      return
    }
    const info = this.infoOf(cell)
    const m = methodOf(info, env)
    if (m === undefined) {
      this.reject(env, `#${env.methodIdx}`, new UnknownMethodError(info.type, `#${env.methodIdx}`))
      return
    }
    if (env.outboxKey !== 0 && !this.outbox.admit(env)) {
      this.duplicateSends++
      return
    }
    if (m.command && (cell.flags & (kNew | kCounted)) === kNew) {
      // the first command of a new agent creates it: one unit of its quota, or refused unrun
      // an agent of the default quota is told by its cell's flag (set at activation): no string
      const refused = (cell.flags & kDefaultQuota) !== 0
        ? this.quotas.reserveDefault(cell)
        : this.quotas.reserve(cell, this.idOf(cell))
      if (refused !== null) {
        this.reject(env, m.name, refused)
        if ((cell.flags & kDirty) === 0) this.drop(cell)
        return
      }
    }
    if (m.command && (cell.flags & (kPersistent | kDirty | kSnapFresh)) === (kPersistent | kDirty)) {
      // a second command in the open batch: keep the state the first one left, for rollback
      try {
        this.pipeline.snapshot(cell)
      } catch (err) {
        this.pipeline.poison(cell, unencodable(this.idOf(cell), err))
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
      ctx.goneAsync() // its storage writes leave the open batch: other turns and commits run before it ends
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
      const pipeline = this.pipeline
      pipeline.stage(cell)
      if (ctx.reminderChanges !== null) this.reminders.applyTurn(this.idOf(cell), cell.hash, typeIndexOf(cell), ctx.reminderChanges)
      const storage = ctx.turnStorage
      if (storage !== null && storage.hasOwnWrites) pipeline.joinStorage(this.idOf(cell), storage)
      cell.flags &= ~kSnapFresh
      if (env.kind === MSG_CALL) pipeline.holdReply(cell, env.replyTo, env.callId, true, value)
      if (ctx.outbox !== null) for (const s of ctx.outbox) pipeline.holdSend(cell, s)
      return
    }
    if (env.kind === MSG_CALL) this.output.reply(env.replyTo, env.callId, true, value)
    if (ctx.outbox !== null) for (const s of ctx.outbox) this.output.send(s.id, s.hash, s.typeIdx, s.methodIdx, s.payload, null, this.idOf(cell))
    // a memory-only agent's state counts as committed once its command's turn has ended
    if (m.command && this.followers.size !== 0 && this.followers.of(this.idOf(cell)) !== undefined) this.followers.publishTurn(cell)
    if ((cell.flags & (kDeactivate | kDelete)) !== 0 && (cell.flags & kDirty) === 0) this.drop(cell)
  }

  private failTurn (cell: Cell, env: Envelope, m: MethodInfo, ctx: TurnContext, err: unknown): void {
    ctx.ended = true
    ctx.turnStorage?.discard()
    const id = this.idOf(cell)
    const error = new AgentError(messageOf(err), { name: nameOf(err), id, method: m.name, ...codeOf(err) })
    const gated = m.command && (cell.flags & kPersistent) !== 0
    if (m.command) {
      cell.flags &= ~(kDeactivate | kDelete)
      if ((cell.flags & kDirty) !== 0) {
        // uncommitted turns of this batch stay: back to the state they left
        try {
          this.pipeline.restore(cell)
        } catch (decodeErr) {
          this.pipeline.poison(cell, unencodable(this.idOf(cell), decodeErr))
        }
      } else {
        this.drop(cell) // back to the last committed state on the next message
      }
    }
    // queries are read-only by contract: nothing to roll back
    if (env.kind === MSG_CALL) {
      if (gated) this.pipeline.holdReply(cell, env.replyTo, env.callId, false, error.toWire())
      else this.output.reply(env.replyTo, env.callId, false, error.toWire())
    }
    this.output.agentError?.(id, m.name, error.toWire())
  }

  private drainMailbox (cell: Cell): void {
    if ((cell.flags & kQueued) === 0) return
    const mailbox = this.mailboxes.get(cell)!
    if (this.states !== null && this.states[shardOf(cell.hash)] !== SHARD_LOCAL) {
      // the shard is leaving: no new turn starts here; what waited goes after it, in order
      this.unqueue(cell)
      for (const env of mailbox.drain()) {
        if (env.kind === MSG_TIMER) this.strandedTimeouts.push([env.id, env.hash, env.typeIdx, 1])
        else if (env.kind !== MSG_REMINDER) this.output.forward!(env) // a reminder's next firing is stored already
      }
      return
    }
    // past the host's serving deadline (a process that stood still past its lease, the turn
    // ahead of them among what stood): what waited goes to whoever serves the shard now, in
    // order, as a frame from the ring would — not run from possibly stale state. Timer turns
    // are this host's own, and run as the wheel runs them.
    const lapsed = this.states !== null && this.output.pastServingDeadline?.() === true
    while (mailbox.size !== 0) {
      if ((cell.flags & kDropped) !== 0) {
        this.unqueue(cell)
        for (const env of mailbox.drain()) this.deliver(env)
        return
      }
      if ((cell.flags & kBusy) !== 0) return
      const env = mailbox.shift()!
      if (lapsed && env.kind !== MSG_TIMER && env.kind !== MSG_REMINDER) {
        this.output.forward!(env)
        continue
      }
      if (isMessage(env.kind)) cell.lastTick = this.tick
      this.turn(cell, env)
    }
    if ((cell.flags & kBusy) === 0) this.unqueue(cell)
  }

  private unqueue (cell: Cell): void {
    this.mailboxes.delete(cell)
    cell.flags &= ~kQueued
  }

  // ---- FollowHost (followers.ts) ------------------------------------------------

  /** @internal */
  residentCell (id: string, hash: number): Cell | undefined {
    return this.table.get(id, hash)
  }

  /** @internal a state written to the store and not yet committed */
  hasInflight (id: string): boolean {
    return this.pipeline.inflightState(id) !== undefined
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
    let mailbox = (cell.flags & kQueued) !== 0 ? this.mailboxes.get(cell) : undefined
    if (mailbox === undefined) {
      mailbox = new Mailbox()
      this.mailboxes.set(cell, mailbox)
      cell.flags |= kQueued
    }
    mailbox.push(env.clone())
  }

  /** @internal CommitHost: take a cell out of the table (rollback, passivation, deletion). */
  drop (cell: Cell): void {
    if (this.table.remove(cell)) {
      // out of the table, out of the arena: from now on the cell holds its id as a string
      // (late completions, commits in flight and orphaned timers read it), and its bytes'
      // record goes to the next id of its size
      const ref = cell.idRef as number
      cell.idRef = this.ids.string(ref)
      this.ids.release(ref)
    } else if ((cell.flags & kDropped) !== 0) return
    cell.flags |= kDropped
    if ((cell.flags & kPersistent) !== 0) this.pipeline.dropped(cell)
    if (cell.timer !== -1) this.timers.dropped(cell)
    if ((cell.flags & kLimited) !== 0) this.limits!.dropped(this.idOf(cell), cell as LimitedCell, this.now())
    if ((cell.flags & kCounted) !== 0) this.quotas.release(cell, this.idOf(cell))
  }

  /**
   * The agent's id as a string: a resident cell holds only the ref of its id's bytes in
   * `ids` (id-arena.ts), and the string is made here, on demand — a new one each time,
   * except for the cell asked about last (a hot agent's turns ask for theirs again and
   * again: ctx.storage, commits).
   */
  /** The cell's agent type (its index is in the cell's `flags`: cell.ts, TYPE_SHIFT). */
  infoOf (cell: Cell): TypeInfo {
    return this.registry.types[typeIndexOf(cell)]!
  }

  idOf (cell: Cell): string {
    const ref = cell.idRef
    if (typeof ref !== 'number') return ref
    if (cell === this.lastIdCell) return this.lastId
    this.lastIdCell = cell
    return (this.lastId = this.ids.string(ref))
  }

  /** The resident cell a message is for: by its frame's id bytes while it has them (no string decoded), else by its id. */
  private lookup (env: Envelope): Cell | undefined {
    const bytes = env.idBytes
    return bytes !== null ? this.table.getBytes(env.hash, bytes, env.idAt, env.idLen) : this.table.get(env.id, env.hash)
  }

  private reject (env: Envelope, method: string, error: ShoalError): void {
    if (env.outboxKey !== 0) this.outbox.admit(env) // a stored send that can never run: consumed, and reported below
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

function nameOf (err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

function codeOf (err: unknown): { code?: string } {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? { code } : {}
}
