/**
 * One resident agent. Kept small and flat — millions of these live in one thread and
 * the budget is ≤ 200 bytes per agent beyond its state — so optional parts are -1 (timer)
 * or held by the runtime (a busy agent's mailbox: `kQueued`), and everything boolean is
 * a bit in `flags`.
 *
 * `timer` holds a timing-wheel *node* (a small integer), not a handle: handles pass
 * 2^31 once a node has been reused 8 times, and one such double would turn the field
 * into a boxed number in every cell. See agent-timers.ts.
 *
 * The agent's type is not a field either: its registry index is in `flags`' high bits
 * (from TYPE_SHIFT), set once when the cell is made; every write of `flags` sets or
 * clears single bits (`|=`, `&= ~`), so the type stays. `typeIndexOf(cell)` reads it,
 * the runtime's `infoOf(cell)` gives the TypeInfo. A TypeInfo pointer per cell was 8 of
 * its 80 bytes (bench/RESULTS.md, issue 13, 2026-12-08).
 */

/** An async handler is running: later messages wait in the mailbox. */
export const kBusy = 1
/** Changed by a committed-to-be turn in the open batch. */
export const kDirty = 2
/** The open batch's snapshot of this cell equals its current state (see ShardRuntime). */
export const kSnapFresh = 4
/** Passivate after the turn's batch is built. */
export const kDeactivate = 8
/** Delete state after the turn's batch is built. */
export const kDelete = 16
/** Removed from the table; late completions must not touch it. */
export const kDropped = 32
/** State is held by a store (the type is persistent). */
export const kPersistent = 64
/** Never committed yet: its first commit creates it (quota counting). */
export const kNew = 128
/** The type has a rate limit: the cell is a LimitedCell (rate-limits.ts). */
export const kLimited = 256
/** Holds one unit of its quota's count, not yet committed (quota-gate.ts). */
export const kCounted = 512
/** The agent's timer entry is its `ctx.timeout` deadline, not its idle check (agent-timers.ts). */
export const kTimeoutArmed = 1024
/**
 * Messages wait for the agent (it is busy): its mailbox is in its runtime's `mailboxes`,
 * not in the cell — a field in every cell for what only busy agents have was 8 bytes of
 * every resident agent (bench/RESULTS.md, issue 13).
 */
export const kQueued = 2048
/**
 * The agent's id is of the default quota (set at activation, from the bytes in hand):
 * quota counting at its first command and at commit reads no id — the commit loop's
 * reads of the id arena for it were cache misses (bench/RESULTS.md, issue 13).
 */
export const kDefaultQuota = 4096

/**
 * The first bit of the type index in `flags`. Below it, the flag bits above (13 now, room
 * for 16); from it, the type index: at most MAX_AGENT_TYPES (2^14) types — the registry
 * refuses more — so that `flags` stays below 2^30, a V8 small integer even in a build
 * with pointer compression (31-bit Smis). A new flag must stay below bit 16.
 */
export const TYPE_SHIFT = 16

/** The registry index of the cell's agent type (kept in `flags`' high bits). */
export function typeIndexOf (cell: { readonly flags: number }): number {
  return cell.flags >>> TYPE_SHIFT
}

/** `cell.timer` once `ctx.idleAfter` overrode the type's idleTicks (rare: most cells hold a number). */
export interface TimerExtra {
  /** Wheel node of the agent's timer entry, or -1. */
  node: number
  /** Idle ticks of this activation; 0 = never passivate for idleness. */
  idle: number
}

export class Cell {
  /**
   * The agent's id. While the cell is in its runtime's table: the ref of the id's UTF-8
   * bytes in the runtime's IdArena (a number; `ShardRuntime.idOf(cell)` makes the
   * string) — a string per resident agent was the young generation's main survivor
   * and a third of what a full GC marks at 10M agents (bench/RESULTS.md, issue 13).
   * Once dropped from the table, or for a cell never in it: the id string itself.
   */
  idRef: number | string
  readonly hash: number
  state: unknown
  /** The k* bits above, and from TYPE_SHIFT up the type's registry index (`typeIndexOf`). */
  flags: number
  /** Tick of the last message (idle passivation). */
  lastTick: number
  /** This agent's timer entry: its wheel node or -1 (see agent-timers.ts), or a TimerExtra. */
  timer: number | TimerExtra

  /** `typeIdx`: the type's registry index (< MAX_AGENT_TYPES); `flags`: k* bits only. */
  constructor (idRef: number | string, hash: number, typeIdx: number, state: unknown, flags: number, tick: number) {
    this.idRef = idRef
    // as int32: a uint32 above 2^31 is not a V8 small integer, and one such value turns
    // the field into a boxed double in every cell
    this.hash = hash | 0
    this.state = state
    this.flags = flags | (typeIdx << TYPE_SHIFT)
    this.lastTick = tick
    this.timer = -1
  }
}

/**
 * A plain cell, made as an object literal rather than with `new Cell`: V8 keeps an
 * allocation site for a literal (not for a constructor call), sees that nearly every
 * cell it makes survives, and then allocates them straight in the old generation
 * (pretenuring) — instead of copying each one through the young generation twice,
 * which was most of a worker's time while it activated agents.
 */
export function newCell (idRef: number | string, hash: number, typeIdx: number, state: unknown, flags: number, tick: number): Cell {
  return { idRef, hash: hash | 0, state, flags: flags | (typeIdx << TYPE_SHIFT), lastTick: tick, timer: -1 }
}
