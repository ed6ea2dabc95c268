/**
 * Durable reminders (Orleans reminders, Durable Objects alarms): `ctx.remind(name, ms,
 * { every? })` runs the definition's `reminder(state, name, ctx)` at a wall-clock time,
 * even if the agent was passivated or the process restarted meanwhile.
 *
 * Where they live:
 *   - in the store, one record per (agent, name) — `[due epoch ms, every ms (0: once)]`
 *     as two float64 — written in the same batch as the turn that set or cancelled it
 *     (so a turn that throws sets nothing), and removed with the agent by `ctx.delete`;
 *   - in memory, each thread indexes the reminders of the agents it owns: read from
 *     the store when the thread starts (a new process, a restarted worker), then kept
 *     up to date by the turns. A timing wheel over ticks holds one entry per reminder,
 *     so a tick costs the reminders due, and a parked thread wakes only for those.
 *
 * Time: the host clock's tick mapped to wall time, `epochMs + tick × tickMs` (epochMs:
 * when the host's clock started). With the manual clock that time moves only with
 * `host.advance`, so tests see reminders fire without waiting.
 *
 * Firing: when a reminder is due the runtime delivers a reminder turn (a command turn:
 * committed, rolled back on throw, queued behind a busy agent, activating a passivated
 * agent from its committed state). Missed firings coalesce: a periodic reminder due
 * long ago fires once, and its next due time is the first period boundary after now
 * — no backlog flood after downtime. The reminder's new due time (or, for a one-shot
 * reminder, its removal) is written in the batch of the pass that fired it, whatever
 * the turn does: a reminder whose handler throws is not retried (a periodic one fires
 * again at its next period). A crash between firing and that commit fires it again
 * after the restart: delivery is at least once.
 *
 * Memory: ≈ 165 B per reminder (measured with 1,000,000 held: a record object, an
 * agent-map entry, a wheel node; the id string is the caller's) in the thread that owns
 * its agent, whether or not the agent is resident; nothing for agents without reminders.
 */
import { TimingWheel } from './timing-wheel.ts'

/** Longest reminder period or delay, in ms (about 35 years). */
export const MAX_REMINDER_MS = 2 ** 40

export class Reminder {
  readonly id: string
  readonly hash: number
  readonly typeIdx: number
  readonly name: string
  /** Due time, epoch ms. */
  due: number
  /** Period in ms; 0 fires once. */
  every: number
  /** Wheel node of its entry, or -1. */
  node = -1
  /** The agent's next reminder (a short list per agent). */
  next: Reminder | null = null

  constructor (id: string, hash: number, typeIdx: number, name: string, due: number, every: number) {
    this.id = id
    this.hash = hash
    this.typeIdx = typeIdx
    this.name = name
    this.due = due
    this.every = every
  }
}

/** The store's record of a reminder: float64 due, float64 every. */
export function encodeReminder (due: number, every: number): Uint8Array {
  const bytes = new Uint8Array(16)
  const view = new DataView(bytes.buffer)
  view.setFloat64(0, due, true)
  view.setFloat64(8, every, true)
  return bytes
}

export function decodeReminder (bytes: Uint8Array): { due: number, every: number } | null {
  if (bytes.length !== 16) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16)
  const due = view.getFloat64(0, true)
  const every = view.getFloat64(8, true)
  return due >= 0 && due <= 2 ** 52 && every >= 0 && every <= MAX_REMINDER_MS ? { due, every } : null
}

/**
 * When a reminder fired at `now` is due next: the first `due + k × every` after `now`
 * (all the periods missed meanwhile coalesce into the firing that just happened), or -1
 * for a one-shot reminder.
 */
export function nextDue (due: number, every: number, now: number): number {
  if (every <= 0) return -1
  if (due > now) return due + every
  return due + every * (Math.floor((now - due) / every) + 1)
}

export class ReminderIndex {
  // replaced by setClock when the thread starts its reminders; small until then (every
  // runtime makes one, and the simulator makes tens of thousands)
  private wheel = new TimingWheel<Reminder>({ initialCapacity: 1 })
  /** Per agent id, the first of its reminders; the others follow through `next` (most agents have one). */
  private readonly byAgent = new Map<string, Reminder>()
  private epochMs = 0
  private tickMs = 1000

  /** Reminders held. */
  size = 0

  /** Map ticks to wall time: tick t is `epochMs + t × tickMs`. */
  setClock (epochMs: number, tickMs: number, tick: number): void {
    this.epochMs = epochMs
    this.tickMs = tickMs
    this.wheel = new TimingWheel<Reminder>({ startTick: tick })
    for (const first of this.byAgent.values()) for (let r: Reminder | null = first; r !== null; r = r.next) this.file(r)
  }

  /** Wall time of tick `t`. */
  timeOf (tick: number): number {
    return this.epochMs + tick * this.tickMs
  }

  /** Set (or replace) a reminder. */
  set (id: string, hash: number, typeIdx: number, name: string, due: number, every: number): void {
    const old = this.find(id, name)
    if (old !== null) this.remove(old)
    const r = new Reminder(id, hash, typeIdx, name, due, every)
    r.next = this.byAgent.get(id) ?? null
    this.byAgent.set(id, r)
    this.size++
    this.file(r)
  }

  /** Remove a reminder; false if there was none. */
  cancel (id: string, name: string): boolean {
    const r = this.find(id, name)
    if (r === null) return false
    this.remove(r)
    return true
  }

  /** Remove every reminder of an agent (ctx.delete); returns their names. */
  removeAgent (id: string): string[] {
    const names: string[] = []
    for (let r = this.byAgent.get(id) ?? null; r !== null; r = r.next) {
      this.unfile(r)
      names.push(r.name)
      this.size--
    }
    this.byAgent.delete(id)
    return names
  }

  /** Remove the reminders of every agent `select` picks by hash (their shard left this thread); returns how many. */
  removeWhere (select: (hash: number) => boolean): number {
    let removed = 0
    for (const [id, first] of this.byAgent) {
      if (!select(first.hash)) continue
      removed += this.removeAgent(id).length
    }
    return removed
  }

  /** The next tick a reminder is due at, or -1. */
  nextTick (): number {
    return this.wheel.nextEventTick()
  }

  /**
   * Every reminder due by tick `t` (their entries leave the wheel): the caller fires
   * each and then calls `rearm` or `cancel` for it.
   */
  due (t: number, into: Reminder[]): void {
    this.wheel.advance(t, (r) => { r.node = -1; into.push(r) })
  }

  /** A fired periodic reminder, due again at `due`. */
  rearm (r: Reminder, due: number): void {
    if (!this.holds(r)) return // replaced or removed meanwhile
    r.due = due
    this.file(r)
  }

  /** Is `r` still the agent's reminder of that name? */
  holds (r: Reminder): boolean {
    return this.find(r.id, r.name) === r
  }

  clear (): void {
    this.wheel = new TimingWheel<Reminder>({ startTick: this.wheel.now })
    this.byAgent.clear()
    this.size = 0
  }

  private find (id: string, name: string): Reminder | null {
    for (let r = this.byAgent.get(id) ?? null; r !== null; r = r.next) if (r.name === name) return r
    return null
  }

  /** Unlink `r` from its agent's list and the wheel. */
  private remove (r: Reminder): void {
    this.unfile(r)
    this.size--
    const first = this.byAgent.get(r.id)!
    if (first === r) {
      if (r.next === null) this.byAgent.delete(r.id)
      else this.byAgent.set(r.id, r.next)
    } else {
      let p = first
      while (p.next !== r) p = p.next!
      p.next = r.next
    }
    r.next = null
  }

  private file (r: Reminder): void {
    // due at the first tick whose wall time has reached it
    const tick = Math.max(0, Math.ceil((r.due - this.epochMs) / this.tickMs))
    r.node = TimingWheel.nodeOf(this.wheel.schedule(tick, r))
  }

  private unfile (r: Reminder): void {
    if (r.node === -1) return
    const h = this.wheel.handleAt(r.node, r)
    if (h !== -1) this.wheel.cancel(h)
    r.node = -1
  }
}
