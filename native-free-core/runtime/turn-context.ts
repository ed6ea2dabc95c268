/**
 * `ctx`, the second half of a handler's world: everything it may do besides changing
 * its own state. One per turn, because an async handler keeps using its ctx across
 * awaits while other agents' turns run. Effects are collected here and applied by the
 * runtime when the turn ends (sends leave after the turn's commit: the outbox).
 */
import type { AgentAddress, AgentId } from '../agent/agent-id.ts'
import { parseId } from '../agent/agent-id.ts'
import type { AgentContext, AgentStorage } from '../agent/define-agent.ts'
import { InvalidArgumentError } from '../errors.ts'
import { kDeactivate, kDelete, kPersistent } from './cell.ts'
import { MAX_TIMER_TICKS } from '../time/agent-timers.ts'
import { MAX_REMINDER_MS } from '../time/agent-reminders.ts'
import type { Cell } from './cell.ts'
import type { TypeInfo } from '../agent/registry.ts'
import { MAX_STORAGE_KEY_BYTES, TurnStorage } from '../storage/agent-storage.ts'
import { utf8Length } from '../agent/agent-id.ts'
import type { StorageHost } from '../storage/agent-storage.ts'
import type { SendId } from '../storage/store.ts'

/** A resolved `ctx.send`: target and method as registry indices; a durable one is also its own identity (`SendId`). */
export class OutboundSend implements SendId {
  readonly id: string
  readonly hash: number
  readonly typeIdx: number
  readonly methodIdx: number
  readonly payload: unknown
  /** A durable agent's send: the encoded outbox record, stored with the sender's state (durable-outbox.ts). */
  record: Uint8Array | null = null
  /** An object payload's msgpack bytes, the record's tail: the frame carries them as they are. */
  payloadBytes: Uint8Array | null = null
  /** Its identity, given when its batch is built: the key (0: not durable), the store that numbered it, the sender's shard. */
  key = 0
  origin = ''
  senderShard = 0

  constructor (id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown) {
    this.id = id
    this.hash = hash
    this.typeIdx = typeIdx
    this.methodIdx = methodIdx
    this.payload = payload
  }
}

/** What a context needs from its runtime. */
export interface ContextHost extends StorageHost {
  readonly tick: number
  /** Wall time of the current tick, epoch ms (the host clock's, so the manual clock moves it too). */
  readonly tickTimeMs: number
  resolveSend (from: Cell, target: AgentAddress, method: string, payload: unknown): OutboundSend
  offload (name: string, input: unknown): Promise<unknown>
  /** The cell's id as a string (made on demand: a resident cell holds only its bytes' ref). */
  idOf (cell: Cell): string
  /** The cell's agent type (a cell holds only its index: cell.ts, TYPE_SHIFT). */
  infoOf (cell: Cell): TypeInfo
}

/** ctx.timeout, ctx.idleAfter, reminders and the parsed id of a turn: made on first use, most turns use none. */
class TurnExtras {
  /** ctx.timeout, applied when the turn succeeds: the deadline tick, 0 = cancel, -1 = not called. */
  timeoutAt = -1
  /** ctx.idleAfter, applied when the turn succeeds: ticks, 0 = never, -1 = not called. */
  idleTicks = -1
  /** ctx.remind / ctx.cancelReminder, applied when the turn succeeds: name → [due epoch ms, every ms], null = cancel. */
  reminderChanges: Map<string, readonly [number, number] | null> | null = null
  idCache: AgentId | null = null
}

const kCommand = 1
const kEnded = 2
/** The handler returned a promise. */
const kAsync = 4

/**
 * One per turn — a million a second for a hot agent, each with its storage view — so it
 * keeps to five fields: flags in one number, the rarely used effects in `TurnExtras`.
 */
export class TurnContext implements AgentContext {
  private readonly host: ContextHost
  readonly cell: Cell
  private bits: number
  outbox: OutboundSend[] | null = null
  /** `ctx.storage`, made on first use. */
  turnStorage: TurnStorage | null = null
  private extras: TurnExtras | null = null

  constructor (host: ContextHost, cell: Cell, command: boolean) {
    this.host = host
    this.cell = cell
    this.bits = command ? kCommand : 0
  }

  /** Commands may change state and send; queries only read. */
  get command (): boolean {
    return (this.bits & kCommand) !== 0
  }

  get ended (): boolean {
    return (this.bits & kEnded) !== 0
  }

  set ended (yes: boolean) {
    this.bits = yes ? this.bits | kEnded : this.bits & ~kEnded
  }

  /** ctx.timeout, applied when the turn succeeds: the deadline tick, 0 = cancel, -1 = not called. */
  get timeoutAt (): number {
    return this.extras === null ? -1 : this.extras.timeoutAt
  }

  /** ctx.idleAfter, applied when the turn succeeds: ticks, 0 = never, -1 = not called. */
  get idleTicks (): number {
    return this.extras === null ? -1 : this.extras.idleTicks
  }

  /** ctx.remind / ctx.cancelReminder, applied when the turn succeeds: name → [due epoch ms, every ms], null = cancel. */
  get reminderChanges (): Map<string, readonly [number, number] | null> | null {
    return this.extras === null ? null : this.extras.reminderChanges
  }

  private get more (): TurnExtras {
    return (this.extras ??= new TurnExtras())
  }

  get id (): AgentId {
    const extras = this.more
    return (extras.idCache ??= parseId(this.host.idOf(this.cell)))
  }

  get tick (): number {
    return this.host.tick
  }

  send (target: AgentAddress, method: string, payload?: unknown): void {
    this.live('send')
    if (!this.command) throw new InvalidArgumentError('ctx.send is not allowed in a query: queries are read-only')
    const out = this.host.resolveSend(this.cell, target, method, payload);
    (this.outbox ??= []).push(out)
  }

  deactivate (): void {
    this.live('deactivate')
    this.cell.flags |= kDeactivate
  }

  delete (): void {
    this.live('delete')
    if (!this.command) throw new InvalidArgumentError('ctx.delete is not allowed in a query: queries are read-only')
    this.cell.flags |= kDelete
  }

  offload<R = unknown> (name: string, input?: unknown): Promise<R> {
    this.live('offload')
    return this.host.offload(name, input) as Promise<R>
  }

  timeout (ticks: number): void {
    this.live('timeout')
    if (!this.command) throw new InvalidArgumentError('ctx.timeout is not allowed in a query: queries are read-only')
    checkTicks('timeout', ticks)
    if (ticks !== 0 && this.host.infoOf(this.cell).timeoutMethod === null) {
      throw new InvalidArgumentError(`ctx.timeout needs a timeout(state, ctx) handler in the definition of ${JSON.stringify(this.host.infoOf(this.cell).type)}`)
    }
    this.more.timeoutAt = ticks === 0 ? 0 : this.host.tick + ticks
  }

  idleAfter (ticks: number): void {
    this.live('idleAfter')
    if (!this.command) throw new InvalidArgumentError('ctx.idleAfter is not allowed in a query: queries are read-only')
    checkTicks('idleAfter', ticks)
    this.more.idleTicks = ticks
  }

  remind (name: string, ms: number, options?: { every?: number }): void {
    this.checkReminder('remind', name)
    if (this.host.infoOf(this.cell).reminderMethod === null) {
      throw new InvalidArgumentError(`ctx.remind needs a reminder(state, name, ctx) handler in the definition of ${JSON.stringify(this.host.infoOf(this.cell).type)}`)
    }
    checkMs('remind', 'ms', ms, 0)
    const every = options?.every
    if (every !== undefined) checkMs('remind', 'options.every', every, 1)
    const changes = this.more.reminderChanges ??= new Map()
    changes.set(name, [this.host.tickTimeMs + ms, every ?? 0])
  }

  cancelReminder (name: string): void {
    this.checkReminder('cancelReminder', name)
    const changes = this.more.reminderChanges ??= new Map()
    changes.set(name, null)
  }

  private checkReminder (what: string, name: unknown): void {
    this.live(what)
    if (!this.command) throw new InvalidArgumentError(`ctx.${what} is not allowed in a query: queries are read-only`)
    if ((this.cell.flags & kPersistent) === 0) {
      throw new InvalidArgumentError(`ctx.${what} needs a persistent agent type: ${JSON.stringify(this.host.infoOf(this.cell).type)} is defined with durable: false`)
    }
    if (typeof name !== 'string' || name.length === 0 || !name.isWellFormed() || utf8Length(name) > MAX_STORAGE_KEY_BYTES) {
      throw new InvalidArgumentError(`ctx.${what}(name): name must be a well-formed string of 1 to ${MAX_STORAGE_KEY_BYTES} UTF-8 bytes`)
    }
  }

  get storage (): AgentStorage {
    if (this.turnStorage !== null) return this.turnStorage
    this.live('storage')
    if ((this.cell.flags & kPersistent) === 0) {
      throw new InvalidArgumentError(`ctx.storage needs a persistent agent type: ${JSON.stringify(this.host.infoOf(this.cell).type)} is defined with durable: false`)
    }
    const storage = this.turnStorage = new TurnStorage(this)
    if ((this.bits & kAsync) !== 0) storage.detach()
    return storage
  }

  /** @internal StorageGuard: the runtime a storage view works for. */
  get storageHost (): StorageHost {
    return this.host
  }

  /** @internal StorageGuard: the agent whose storage it is. */
  get storageId (): string {
    return this.host.idOf(this.cell)
  }

  /** The handler returned a promise: storage writes from now on are the turn's own until it ends (see TurnStorage). */
  goneAsync (): void {
    this.bits |= kAsync
    this.turnStorage?.detach()
  }

  /** @internal StorageGuard: storage calls are checked against this turn. */
  checkStorage (what: string, write: boolean): void {
    this.live(what)
    if (write && !this.command) throw new InvalidArgumentError(`ctx.${what} is not allowed in a query: queries are read-only`)
  }

  private live (what: string): void {
    if ((this.bits & kEnded) !== 0) {
      throw new InvalidArgumentError(`ctx.${what}() was called after the turn ended: keep using ctx only inside the handler (await the work instead of leaving it running)`)
    }
  }
}

function checkMs (what: string, arg: string, ms: unknown, min: number): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < min || ms > MAX_REMINDER_MS) {
    throw new InvalidArgumentError(`ctx.${what}: ${arg} must be a number of milliseconds from ${min} to 2^40, got ${typeof ms === 'number' ? ms : typeof ms}`)
  }
}

function checkTicks (what: string, ticks: unknown): void {
  if (typeof ticks !== 'number' || !Number.isInteger(ticks) || ticks < 0 || ticks > MAX_TIMER_TICKS) {
    throw new InvalidArgumentError(`ctx.${what}(ticks): ticks must be an integer from 0 to 2^40, got ${typeof ticks === 'number' ? ticks : typeof ticks}`)
  }
}
