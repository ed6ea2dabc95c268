/**
 * The durable reminders of one shard runtime (agent-reminders.ts says what reminders are
 * and where they live): the in-memory index of the reminders of the agents this thread
 * owns, the reminder records of the open batch, and the firing of those due.
 *
 * Records written by a turn (`ctx.remind`, `ctx.cancelReminder`), by firing (the next due
 * time, or removal) and by `ctx.delete` collect in `open`, per agent, until the commit
 * pipeline takes them into the batch it builds: so a turn that throws sets nothing, and
 * a fired reminder is rescheduled in the batch of the pass that fired it.
 */
import { DecodeError, UnknownAgentTypeError, UnknownMethodError } from '../errors.ts'
import { typeOf } from '../agent/agent-id.ts'
import { Envelope, MSG_REMINDER } from '../agent/envelope.ts'
import type { AgentRegistry } from '../agent/registry.ts'
import { hashId } from '../placement/hash.ts'
import { StorageOverlay } from '../storage/agent-storage.ts'
import type { Store } from '../storage/store.ts'
import type { RuntimeOutput } from '../runtime/ports.ts'
import { ReminderIndex, decodeReminder, encodeReminder, nextDue } from './agent-reminders.ts'
import type { Reminder } from './agent-reminders.ts'

/** What reminders need from the runtime. */
export interface ReminderHost {
  readonly registry: AgentRegistry
  readonly store: Store | null
  readonly output: RuntimeOutput
  /** Run a reminder turn (a command turn, queued behind a busy agent like any message). */
  deliver (env: Envelope): void
}

export class ShardReminders {
  private readonly host: ReminderHost
  private readonly index = new ReminderIndex()
  /** Reminder records of the open batch, per agent id (name → bytes, null removes). */
  private open = new Map<string, StorageOverlay>()
  /** Reminders due and not yet fired (a budget ran out), and the next to fire. */
  private due: Reminder[] = []
  private at = 0
  /** Reused for reminder turns (deliver clones it when it must wait in a mailbox). */
  private readonly envelope = new Envelope()

  constructor (host: ReminderHost) {
    this.host = host
  }

  /** Reminders held. */
  get size (): number {
    return this.index.size
  }

  /** Some reminders fell due and wait to fire (a budget ran out). */
  get hasDue (): boolean {
    return this.at < this.due.length
  }

  /** The open batch holds reminder records. */
  get hasOpen (): boolean {
    return this.open.size !== 0
  }

  /** Wall time of tick `t`, epoch ms. */
  timeOf (tick: number): number {
    return this.index.timeOf(tick)
  }

  /** The next tick a reminder is due at, or -1. */
  nextTick (): number {
    return this.index.nextTick()
  }

  /** Collect the reminders due by tick `t`, to fire with `fire`. */
  collect (t: number): void {
    this.index.due(t, this.due)
  }

  /**
   * Start: map ticks to wall time (tick t is `epochMs + t × tickMs`) and read the stored
   * reminders of the agents `owns` accepts. Once per thread start.
   */
  start (epochMs: number, tickMs: number, tick: number, owns: (hash: number) => boolean): void {
    this.index.setClock(epochMs, tickMs, tick)
    this.load(owns)
  }

  /** The shards of the agents `select` picks left this thread: forget their reminders (they stay stored). */
  drop (select: (hash: number) => boolean): void {
    this.index.removeWhere(select)
  }

  /** Read the stored reminders of the agents `owns` accepts (at start, or when shards arrive). */
  load (owns: (hash: number) => boolean): void {
    const { registry, store, output } = this.host
    if (store === null) return
    for (const [id, name, bytes] of store.reminders()) {
      const hash = hashId(id)
      if (!owns(hash)) continue
      const info = registry.get(typeOf(id))
      const record = decodeReminder(bytes)
      if (info?.reminderMethod == null || record === null) {
        // the definitions changed since it was stored (or the record is damaged): it can never fire
        this.overlay(id).set(name, null)
        const error = info === undefined
          ? new UnknownAgentTypeError(typeOf(id), registry.types.map((t) => t.type))
          : record === null ? new DecodeError(`the stored reminder ${JSON.stringify(name)} does not decode`) : new UnknownMethodError(info.type, 'reminder')
        output.agentError?.(id, 'reminder', error.toWire())
        continue
      }
      this.index.set(id, hash, info.index, name, record.due, record.every)
    }
  }

  /** Fire the collected reminders at tick `tick`, at most `budget`: the budget left, or -1 if some wait. */
  fire (budget: number, tick: number): number {
    if (this.at >= this.due.length) {
      if (this.due.length !== 0) {
        this.due = []
        this.at = 0
      }
      return budget
    }
    const now = this.index.timeOf(tick)
    while (this.at < this.due.length) {
      if (budget <= 0) return -1
      budget--
      const r = this.due[this.at++]!
      if (!this.index.holds(r)) continue // cancelled or replaced since it fell due
      // reschedule (or remove) in this pass's batch, whatever the turn does: missed periods coalesce
      const next = nextDue(r.due, r.every, now)
      if (next < 0) {
        this.index.cancel(r.id, r.name)
        this.overlay(r.id).set(r.name, null)
      } else {
        this.index.rearm(r, next)
        this.overlay(r.id).set(r.name, encodeReminder(next, r.every))
      }
      const env = this.envelope
      env.kind = MSG_REMINDER
      env.id = r.id
      env.hash = r.hash
      env.typeIdx = r.typeIdx
      env.methodIdx = 0
      env.payload = r.name
      env.outboxKey = 0
      this.host.deliver(env)
    }
    this.due = []
    this.at = 0
    return budget
  }

  /** A successful command's ctx.remind / ctx.cancelReminder. */
  applyTurn (id: string, hash: number, typeIdx: number, changes: ReadonlyMap<string, readonly [number, number] | null>): void {
    const overlay = this.overlay(id)
    for (const [name, r] of changes) {
      if (r === null) {
        this.index.cancel(id, name)
        overlay.set(name, null)
      } else {
        this.index.set(id, hash, typeIdx, name, r[0], r[1])
        overlay.set(name, encodeReminder(r[0], r[1]))
      }
    }
  }

  /** ctx.delete: the agent's reminders go with it. */
  wipe (id: string): void {
    const overlay = new StorageOverlay()
    overlay.wiped = true
    // explicit deletes too: the store's wipe sees only committed records, not those in flight
    for (const name of this.index.removeAgent(id)) overlay.set(name, null)
    const open = this.open.get(id)
    if (open !== undefined) for (const name of open.latest().keys()) overlay.set(name, null)
    this.open.set(id, overlay)
  }

  /** The open batch's records (null: none); the batch that commits them now owns them. */
  takeOpen (): Map<string, StorageOverlay> | null {
    if (this.open.size === 0) return null
    const open = this.open
    this.open = new Map()
    return open
  }

  clear (): void {
    this.index.clear()
  }

  private overlay (id: string): StorageOverlay {
    let overlay = this.open.get(id)
    if (overlay === undefined) this.open.set(id, overlay = new StorageOverlay())
    return overlay
  }
}
