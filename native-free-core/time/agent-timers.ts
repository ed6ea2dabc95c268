/**
 * The timers of one shard runtime's agents — every `ctx.timeout` and every idle
 * deadline — in one hierarchical timing wheel (docs/architecture.md §7), advanced by the
 * host clock's ticks.
 *
 * One wheel entry per agent at most, due at the agent's next event:
 *   - its `ctx.timeout` deadline while one is armed (cell flag kTimeoutArmed), else
 *   - its idle check, `lastTick + idle`, when the type has `idleTicks` or the
 *     activation called `ctx.idleAfter`.
 * An armed timeout defers the idle check until it has fired: an agent is never
 * passivated for idleness with a timer pending. A timer turn is not a message — it
 * does not restart the idle count (Orleans' grain timers do not keep a grain active
 * either) — so an agent that only re-arms its timer still passivates once its timer
 * stops being re-armed.
 *
 * Idle checks are lazy: a message only writes `cell.lastTick`, as it always did. When
 * the entry fires, an agent that got a message meanwhile is re-filed at
 * `lastTick + idle`. So an active agent costs one wheel re-file per idle period, not
 * one per message, and a tick costs O(entries due), never a scan of the agent table.
 *
 * Memory: a wheel node (28 B of typed arrays per node of capacity; the capacity
 * doubles, so 28–56 B) for each agent with idle passivation or a pending timer, nothing
 * for the others. `cell.timer` holds the node index, a small integer (a handle would
 * box as a double once past 2^31), or a TimerExtra { node, idle } once `ctx.idleAfter`
 * overrode the type's idleTicks. With one entry per cell, `wheel.handleAt(node, cell)`
 * recovers the handle.
 *
 * Lifetime. Timers belong to the activation (kept in memory, never persisted):
 *   - passivation (idle, `ctx.deactivate`), `ctx.delete` and a worker restart end them;
 *   - a rollback that drops the activation (a command threw) does not: the armed
 *     timeout carries over — the next activation adopts it, or, if the agent is not
 *     active again by the deadline, the timer activates it to run `timeout`.
 *
 * Catching up: the runtime walks from event tick to event tick (not tick by tick), so a
 * thread that was parked or busy for many ticks fires every due timer at its own
 * deadline, in order (`ctx.tick` is that deadline), and a timer re-armed by a timer
 * turn fires again within the same catch-up. `drain` stops after `budget` entries so a big
 * expiry (a million idle agents on one tick) is spread over several loop passes.
 */
import { kBusy, kDeactivate, kDelete, kDropped, kQueued, kTimeoutArmed, typeIndexOf } from '../runtime/cell.ts'
import type { Cell, TimerExtra } from '../runtime/cell.ts'
import { TimingWheel } from './timing-wheel.ts'

/** Largest `ctx.timeout` / `ctx.idleAfter` / `idleTicks`: ticks stay far below the wheel's MAX_TICK. */
export const MAX_TIMER_TICKS = 2 ** 40

/** A timeout leaving with its agent's shard: [agent id, hash, type index, ticks left]. */
export type MovedTimeout = [id: string, hash: number, typeIdx: number, ticksLeft: number]

/** What the timers need from their runtime. */
export interface TimerHost {
  /** The runtime's current tick; `advanceTo` moves it. */
  tick: number
  /** Run the agent's `timeout` as a turn (queued if it is busy), activating the agent if needed. */
  timerTurn (id: string, hash: number, typeIdx: number): void
  /** Passivate a resident agent: now, or once the open batch holding its last turns commits. */
  passivate (cell: Cell): void
  /** The cell's id as a string (made on demand: a resident cell holds only its bytes' ref). */
  idOf (cell: Cell): string
}

function nodeOf (cell: Cell): number {
  const t = cell.timer
  return typeof t === 'number' ? t : t.node
}

function setNode (cell: Cell, node: number): void {
  if (typeof cell.timer === 'number') cell.timer = node
  else cell.timer.node = node
}

export class AgentTimers {
  private wheel: TimingWheel<Cell>
  private readonly host: TimerHost
  /** idleTicks per type index; 0 = none. */
  private readonly idleOfType: Float64Array
  /** Rolled-back cells whose armed timeout still waits in the wheel, by agent id. */
  private readonly orphans = new Map<string, Cell>()
  /** Entries fired on the current tick and not yet handled (a budget ran out). */
  private due: Array<Cell | undefined> = []
  private dueAt = 0
  private readonly collectOne = (cell: Cell): void => {
    setNode(cell, -1)
    this.due.push(cell)
  }

  /** `capacity`: initial wheel nodes (the wheel grows); the simulator's many small runtimes start small. */
  constructor (host: TimerHost, idleTicksByType: readonly number[], startTick = 0, capacity?: number) {
    this.host = host
    this.idleOfType = Float64Array.from(idleTicksByType)
    this.wheel = new TimingWheel<Cell>(capacity === undefined ? { startTick } : { startTick, initialCapacity: capacity })
  }

  /** Live wheel entries (agents with a pending timer or idle check, plus orphans). */
  get size (): number {
    return this.wheel.size
  }

  /**
   * The next tick at which this thread has timer work, or -1: a thread may park until
   * then. The current tick while fired entries wait to be handled.
   */
  nextTick (): number {
    return this.dueAt < this.due.length ? this.host.tick : this.wheel.nextEventTick()
  }

  /** True when every entry due by the current tick has been handled. */
  get caughtUp (): boolean {
    return this.dueAt >= this.due.length
  }

  /** The next tick the wheel has work at (a firing or a cascade), or -1. */
  nextEvent (): number {
    return this.wheel.nextEventTick()
  }

  /**
   * Take the entries due at tick `t` (the host's tick has just moved to it) out of the
   * wheel; `drain` handles them. The runtime steps from event tick to event tick.
   */
  collect (t: number): void {
    this.wheel.advance(t, this.collectOne)
  }

  /**
   * Handle collected entries, at most `budget`. Returns the budget left, or -1 when it
   * ran out with entries still waiting (call again from the next loop pass).
   */
  drain (budget: number): number {
    const t = this.host.tick
    while (this.dueAt < this.due.length) {
      if (budget <= 0) return -1
      budget--
      const cell = this.due[this.dueAt]!
      this.due[this.dueAt++] = undefined
      this.expired(cell, t)
    }
    if (this.due.length !== 0) {
      this.due = []
      this.dueAt = 0
    }
    return budget
  }

  /** A new activation: adopt a rolled-back predecessor's armed timeout, or file its idle check. */
  activated (cell: Cell): void {
    if (this.orphans.size !== 0) {
      const id = this.host.idOf(cell)
      const old = this.orphans.get(id)
      if (old !== undefined && this.adopt(cell, id, old)) return
    }
    const idle = this.idleOf(cell)
    if (idle !== 0) this.file(cell, this.host.tick + idle)
  }

  /**
   * The activation ended. Passivation and deletion cancel its timers; a rollback with
   * a timeout armed leaves that entry in the wheel for the agent's next activation.
   */
  dropped (cell: Cell): void {
    if (nodeOf(cell) === -1) return
    if ((cell.flags & kTimeoutArmed) !== 0 && (cell.flags & (kDeactivate | kDelete)) === 0) {
      this.orphans.set(this.host.idOf(cell), cell)
      return
    }
    this.unfile(cell)
  }

  /**
   * Apply a finished turn's `ctx.timeout` (`timeoutAt`: the deadline tick, 0 = cancel,
   * -1 = not called) and `ctx.idleAfter` (`idle`: ticks, 0 = off, -1 = not called).
   */
  fromTurn (cell: Cell, timeoutAt: number, idle: number): void {
    if ((cell.flags & kDropped) !== 0) return
    if (idle !== -1) {
      if (typeof cell.timer === 'number') {
        if (idle !== this.idleOfType[typeIndexOf(cell)]) cell.timer = { node: cell.timer, idle } satisfies TimerExtra
      } else {
        cell.timer.idle = idle
      }
    }
    if (timeoutAt > 0) {
      this.unfile(cell)
      cell.flags |= kTimeoutArmed
      this.file(cell, timeoutAt)
    } else if (timeoutAt === 0 || (idle !== -1 && (cell.flags & kTimeoutArmed) === 0)) {
      // cancelled, or a new idle period while no timeout defers the idle check: re-file it
      cell.flags &= ~kTimeoutArmed
      this.unfile(cell)
      this.fileIdle(cell, this.host.tick + 1)
    }
  }

  /**
   * Take out the armed timeouts of the agents `select` picks — resident ones and those a
   * rollback left waiting — as [id, hash, type index, ticks left] (a shard leaves this
   * thread: its agents' timeouts go with them). Resident cells keep their idle checks
   * until they are passivated.
   */
  takeTimeouts (select: (cell: Cell) => boolean, resident: Iterable<Cell>): MovedTimeout[] {
    const moved: MovedTimeout[] = []
    const take = (cell: Cell): void => {
      const node = nodeOf(cell)
      if (node === -1 || (cell.flags & kTimeoutArmed) === 0) return
      const h = this.wheel.handleAt(node, cell)
      if (h === -1) return
      moved.push([this.host.idOf(cell), cell.hash, typeIndexOf(cell), Math.max(1, this.wheel.deadlineOf(h) - this.host.tick)])
      this.wheel.cancel(h)
      setNode(cell, -1)
      cell.flags &= ~kTimeoutArmed
    }
    for (const cell of resident) if (select(cell)) take(cell)
    for (const [id, cell] of this.orphans) {
      if (!select(cell)) continue
      take(cell)
      this.orphans.delete(id)
    }
    return moved
  }

  /**
   * Arm a timeout that came with a shard from another thread or host, for an agent that
   * is not resident here: like a rolled-back activation's timer, it activates the agent
   * when it falls due, or the agent's next activation takes it over.
   */
  giveTimeout (placeholder: Cell, ticksLeft: number): void {
    placeholder.flags |= kDropped | kTimeoutArmed
    const id = this.host.idOf(placeholder)
    const old = this.orphans.get(id)
    if (old !== undefined) this.unfile(old)
    this.orphans.set(id, placeholder)
    this.file(placeholder, this.host.tick + Math.max(1, ticksLeft))
  }

  /** Forget every timer (the runtime dropped all its agents). */
  clear (): void {
    this.wheel = new TimingWheel<Cell>({ startTick: this.host.tick })
    this.orphans.clear()
    this.due = []
    this.dueAt = 0
  }

  /** An entry fired on tick `t`. */
  private expired (cell: Cell, t: number): void {
    const flags = cell.flags
    if ((flags & kTimeoutArmed) !== 0) {
      cell.flags = flags & ~kTimeoutArmed
      if ((flags & kDropped) !== 0) {
        // a rolled-back activation's timer (passivated ones were cancelled): run it on the agent
        if ((flags & (kDeactivate | kDelete)) !== 0) return
        // still an orphan during the turn, so the activation it causes adopts its idle period
        const id = this.host.idOf(cell)
        this.host.timerTurn(id, cell.hash, typeIndexOf(cell))
        if (this.orphans.get(id) === cell) this.orphans.delete(id)
        return
      }
      this.host.timerTurn(this.host.idOf(cell), cell.hash, typeIndexOf(cell))
      // unless the turn re-armed, passivated or dropped the agent, idle checks resume
      if ((cell.flags & kDropped) === 0 && nodeOf(cell) === -1) this.fileIdle(cell, t + 1)
      return
    }
    if ((flags & kDropped) !== 0) return
    const idle = this.idleOf(cell)
    if (idle === 0) return
    if ((flags & (kBusy | kQueued)) !== 0) this.file(cell, t + idle) // mid-turn: active
    else if (cell.lastTick + idle <= t) this.host.passivate(cell)
    else this.file(cell, cell.lastTick + idle)
  }

  /**
   * Take over a rolled-back predecessor's idle period and, while its entry is still in
   * the wheel, its armed timeout. False when there is no timeout to take (file idle).
   */
  private adopt (cell: Cell, id: string, old: Cell): boolean {
    this.orphans.delete(id)
    if (typeof old.timer !== 'number') cell.timer = { node: -1, idle: old.timer.idle } satisfies TimerExtra
    const h = this.wheel.handleAt(nodeOf(old), old)
    if (h === -1) return false
    const at = this.wheel.deadlineOf(h)
    this.wheel.cancel(h)
    setNode(old, -1)
    old.flags &= ~kTimeoutArmed
    cell.flags |= kTimeoutArmed
    this.file(cell, at)
    return true
  }

  private idleOf (cell: Cell): number {
    const t = cell.timer
    return typeof t === 'number' ? this.idleOfType[typeIndexOf(cell)]! : t.idle
  }

  /** File the idle check, no earlier than `earliest`. */
  private fileIdle (cell: Cell, earliest: number): void {
    const idle = this.idleOf(cell)
    if (idle !== 0) this.file(cell, Math.max(cell.lastTick + idle, earliest))
  }

  /** Give a cell without an entry one, due at `at`. */
  private file (cell: Cell, at: number): void {
    setNode(cell, TimingWheel.nodeOf(this.wheel.schedule(at, cell)))
  }

  private unfile (cell: Cell): void {
    const node = nodeOf(cell)
    if (node === -1) return
    const h = this.wheel.handleAt(node, cell)
    if (h !== -1) this.wheel.cancel(h)
    setNode(cell, -1)
    if (this.orphans.size !== 0) {
      const id = this.host.idOf(cell)
      if (this.orphans.get(id) === cell) this.orphans.delete(id)
    }
  }
}
