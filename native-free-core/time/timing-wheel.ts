/**
 * Hierarchical timing wheel: every agent timer and idle deadline of one worker thread
 * (docs/architecture.md §7), advanced one host tick at a time.
 *
 * Cost: `schedule` and `cancel` are O(1); `advance` is O(timers fired + timers cascaded
 * + levels per non-empty slot reached), never O(ticks): it jumps straight to the next
 * tick where something happens, so `advance(now + 2 ** 40)` over an empty stretch is a
 * handful of steps. A timer is cascaded at most once per level it sits above level 0
 * (≤ 10 times, in practice once or twice).
 *
 * Memory: no object and no closure per timer. Timers are nodes in typed arrays plus
 * one slot in a plain array for the payload — 28 bytes per node of capacity (4 next +
 * 4 prev + 4 generation interleaved, 8 deadline, 8 payload pointer).
 * Capacity doubles when full, so a wheel that grew on its own holds 28–56 bytes per
 * live timer; pass `initialCapacity` when the count is known. Growth briefly holds the
 * old and the new arrays (3× the old size). Freed nodes go on a free list (LIFO, so the
 * hot node stays in cache) and payload references are dropped on fire and on cancel,
 * so the wheel never keeps an agent cell alive.
 *
 * Precision: ticks are integers; a timer fires exactly at its deadline tick, never
 * early and never late relative to the tick count (the wall-clock precision is the
 * host's tickMs). Timers fire in deadline order; timers due on the same tick fire in
 * no guaranteed order.
 *
 * Layout — 11 levels × 32 slots; level k slot s holds the timers whose deadline shares
 * every bit above bit 5(k+1) with `now`, and whose 5-bit digit k is s (> now's digit k):
 *
 *   tick bits:  52 ........ 50 49 ... 45 ... 14 ... 10  9 ..... 5  4 ..... 0
 *               [ level 10  ][ level 9 ] ... [ level 2 ][ level 1 ][ level 0 ]
 *
 *   level 0   slot:  0   1   2  ...  31      one tick per slot: the exact deadline
 *                        ^now  [t]->[t]      (circular doubly linked list per slot)
 *   level 1   slot:  0   1   2  ...  31      32 ticks per slot
 *   level 2   slot:  0   1   2  ...  31      1,024 ticks per slot
 *     ...                                    32^k ticks per slot
 *   level 10  slot:  0   1   2  ...  31      2^50 ticks per slot
 *
 *   When `now` reaches the first tick of a level-k slot (its low 5k bits are zero), the
 *   slot is emptied and each timer is re-filed by its deadline against the new `now`:
 *   it lands on a lower level ("cascade") and eventually in its level-0 slot.
 *   Because level k only holds deadlines beyond everything on levels < k, the next
 *   tick worth visiting is the lowest set bit of the lowest non-empty level's bitmap.
 *
 *   Nodes (index = node): 0..351 are the 352 slot heads (sentinels of circular lists,
 *   so unlinking never needs to know the slot), 352.. are timers.
 *
 *     links    Int32Array, 3 per node, interleaved (one cache line per node):
 *              [kNext] forward link (the free-list link while free)
 *              [kPrev] backward link; kFree (-1) while the node is free
 *              [kGen]  generation, bumped on every free: makes old handles stale
 *     deadline Float64Array  the (clamped) deadline tick
 *     payload  Array<T>      the caller's value; undefined while free
 *
 * Handles: `generation * 2^28 + node`, a non-negative safe integer (up to 2^53).
 *   - node < 2^28: at most MAX_TIMERS (268,435,104) live timers per wheel.
 *   - generation wraps at 2^25: a stale handle could only alias a new timer after its
 *     node was reused exactly 33,554,432 times — keep handles no longer than needed.
 *   - Handles above 2^31 (a node's 8th reuse onwards) are not V8 small integers: an
 *     object field holding them becomes a double field (one 16-byte box per object,
 *     updated in place) and a call V8 does not inline boxes them (a short-lived
 *     HeapNumber). Keep them in a Float64Array side table rather than in each agent
 *     cell; schedule and cancel are kept within V8's inlining budget so a tight caller
 *     handles them unboxed.
 *
 * Deadline range: integers in [-(2^53 - 1), MAX_TICK]; ticks (`now`, `startTick`,
 * `toTick`) in [0, MAX_TICK]. Deadlines are stored as float64 — exact for every safe
 * integer, no 32-bit wrap. Deadlines below 2^32 are filed with plain 32-bit bit
 * operations; above, the high and low halves are compared separately (measured ≈ 30%
 * slower schedule+cancel), so count ticks from 0 rather than from the epoch: 2^32 ticks
 * is 136 years at tickMs 1000, 49.7 days at tickMs 1. Any distance ahead (5 ticks or
 * 2^52) costs the same to schedule.
 *
 * Gotchas:
 *   - A deadline ≤ now is due on the next tick: it is stored as now + 1 (so
 *     `deadlineOf` returns now + 1) and fires on the next `advance` that moves time.
 *   - Re-entrancy: `onExpire` may call `schedule`, `cancel`, `deadlineOf`, `nextDeadline`
 *     and read `now` (= the tick being fired). A timer it schedules for ≤ now fires at
 *     now + 1: within the same `advance` call when toTick > now, otherwise on the next
 *     one — never in the tick being fired, so a callback that re-arms itself at "now"
 *     cannot loop forever. Cancelling a timer due on the same tick that has not fired
 *     yet prevents it from firing. Calling `advance` from `onExpire` throws.
 *   - If `onExpire` throws, the error propagates out of `advance`; the timer that threw
 *     is already gone, `now` is the tick being fired, and the other timers due on that
 *     tick stay pending and fire on the next `advance` (even `advance(now)`).
 *   - The handle passed to `onExpire` is already dead (cancel returns false): compare it
 *     with the handle you stored to tell which timer fired.
 *   - Errors are coded: a bad argument (or `advance` from `onExpire`) throws
 *     InvalidArgumentError, a wheel holding MAX_TIMERS throws CapacityExceededError.
 */
import { CapacityExceededError, InvalidArgumentError } from '../errors.ts'

const kSlotBits = 5
const kSlotsPerLevel = 1 << kSlotBits
const kSlotMask = kSlotsPerLevel - 1
/** 11 levels × 5 bits = 55 bits ≥ the 53 bits of a safe-integer tick. */
const kLevels = 11
/** Slot heads occupy nodes 0..kSlots-1; timers start at node kSlots. */
const kSlots = kLevels * kSlotsPerLevel
const kIndexBits = 28
const kIndexSpan = 2 ** kIndexBits
const kIndexMask = kIndexSpan - 1
const kGenMask = 2 ** 25 - 1
/** Fields of a node record in `links` (node i starts at i * kStride). */
const kNext = 0
const kPrev = 1
const kGen = 2
const kStride = 3
/** End of the free list (in the next field). */
const kNil = -1
/** The prev field of a node on the free list: a live node's prev is always ≥ 0. */
const kFree = -1
const k2Pow32 = 2 ** 32

/** Largest tick or deadline; `now + 1` must stay a safe integer. */
export const MAX_TICK = Number.MAX_SAFE_INTEGER - 1
/** Most timers one wheel can hold (node indices must fit in 28 bits of the handle). */
export const MAX_TIMERS = kIndexSpan - kSlots
const DEFAULT_CAPACITY = 1024

/** kPow[k] = 32^k, the ticks per slot on level k (kPow[kLevels] = 2^55 closes the top). */
const kPow = new Float64Array(kLevels + 1)
for (let k = 0; k <= kLevels; k++) kPow[k] = 2 ** (k * kSlotBits)
/** kLevelOfBit[b]: the level holding tick bit b. */
const kLevelOfBit = new Uint8Array(64)
for (let b = 0; b < 64; b++) kLevelOfBit[b] = Math.floor(b / kSlotBits)

/**
 * Slot head (level × 32 + slot) for a deadline d ≥ now above 2^32 - 1: bit operations
 * only see 32 bits, so the high halves (`x / 2^32`, truncated by `^` to ≤ 21 bits) and
 * the low halves (`d ^ now` keeps the low 32) are compared separately.
 */
function headOf53 (d: number, now: number): number {
  const high = (d / k2Pow32) ^ (now / k2Pow32)
  const level = kLevelOfBit[high !== 0 ? 63 - Math.clz32(high) : 31 - Math.clz32((d ^ now) | kSlotMask)]!
  return (level << kSlotBits) | ((d / kPow[level]!) & kSlotMask)
}

export interface TimingWheelOptions {
  /** Timers held before the arrays first double. Default 1,024. */
  readonly initialCapacity?: number
  /** The wheel's first `now`. Default 0. */
  readonly startTick?: number
}

export class TimingWheel<T> {
  // Number fields start as numbers so V8 keeps a number representation (a bare
  // declaration starts them undefined: every later store of a double would allocate).
  #now = 0
  #size = 0
  /** Nodes the arrays hold: kSlots + capacity. */
  #limit = 0
  #free = kNil
  /**
   * [next, prev, gen] per node, interleaved: cancel and unlink touch all three of one
   * node, so one cache line instead of three (≈ 1.25× on random re-arms over 10M timers).
   */
  #links: Int32Array
  #deadline: Float64Array
  #payload: Array<T | undefined>
  /** Bit s of occupied[k] is set when level k slot s is non-empty. */
  readonly #occupied = new Int32Array(kLevels)
  #advancing = false

  constructor (options: TimingWheelOptions = {}) {
    const capacity = options.initialCapacity ?? DEFAULT_CAPACITY
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_TIMERS) {
      throw new InvalidArgumentError(`options.initialCapacity must be an integer in [1, ${MAX_TIMERS}], got ${String(capacity)}`)
    }
    const start = options.startTick ?? 0
    if (!Number.isSafeInteger(start) || start < 0 || start > MAX_TICK) {
      throw new InvalidArgumentError(`options.startTick must be an integer in [0, ${MAX_TICK}], got ${String(start)}`)
    }
    this.#now = start
    this.#limit = kSlots + capacity
    this.#links = new Int32Array(this.#limit * kStride)
    this.#deadline = new Float64Array(this.#limit)
    this.#payload = new Array<T | undefined>(this.#limit)
    for (let h = 0; h < kSlots; h++) {
      this.#links[h * kStride + kNext] = h
      this.#links[h * kStride + kPrev] = h
    }
    this.#free = kNil
    this.#pushFree(kSlots, this.#limit)
  }

  /** The current tick: the last tick advanced to (the tick being fired inside onExpire). */
  get now (): number { return this.#now }

  /** Live timers. */
  get size (): number { return this.#size }

  /** Timers the arrays hold before they double next. */
  get capacity (): number { return this.#limit - kSlots }

  /**
   * Add a timer due at `deadlineTick` (an integer; ≤ now means "next tick") carrying
   * `payload`. Returns its handle. Throws InvalidArgumentError on a deadline that is not
   * a safe integer or is above MAX_TICK, CapacityExceededError when the wheel holds
   * MAX_TIMERS.
   */
  schedule (deadlineTick: number, payload: T): number {
    if (!Number.isSafeInteger(deadlineTick) || deadlineTick > MAX_TICK) badDeadline(deadlineTick)
    if (this.#free === kNil) this.#grow()
    const i = this.#free
    const links = this.#links
    this.#free = links[i * kStride + kNext]!
    const d = deadlineTick > this.#now ? deadlineTick : this.#now + 1
    this.#deadline[i] = d
    this.#payload[i] = payload
    this.#link(i, d)
    this.#size++
    return links[i * kStride + kGen]! * kIndexSpan + i
  }

  /** Remove a live timer. False for a handle that fired, was cancelled, or never existed. */
  cancel (handle: number): boolean {
    // #live, inlined by hand: the handle (a double once its node's generation passes 7)
    // then never crosses a call V8 might not inline, so it is never boxed.
    const i = handle & kIndexMask
    if (i < kSlots || i >= this.#limit) return false
    const b = i * kStride
    if (this.#links[b + kPrev]! === kFree || this.#links[b + kGen]! * kIndexSpan + i !== handle) return false
    this.#remove(i)
    return true
  }

  /** The tick a live timer is due at (after clamping, see schedule), or -1 if not live. */
  deadlineOf (handle: number): number {
    const i = this.#live(handle)
    return i < 0 ? -1 : this.#deadline[i]!
  }

  /**
   * Move time forward to `toTick`, firing every timer due on each tick in between, in
   * deadline order. Returns how many fired. `toTick` ≤ now fires nothing, except timers
   * left due on `now` by an onExpire that threw. See the header for re-entrancy.
   */
  advance (toTick: number, onExpire: (payload: T, handle: number) => void): number {
    if (!Number.isSafeInteger(toTick) || toTick < 0 || toTick > MAX_TICK) {
      throw new InvalidArgumentError(`toTick must be an integer in [0, ${MAX_TICK}], got ${String(toTick)}`)
    }
    if (this.#advancing) throw new InvalidArgumentError('TimingWheel.advance called from inside onExpire')
    this.#advancing = true
    let fired = 0
    try {
      for (;;) {
        const t = this.#nextEventTick()
        if (t < 0 || t > toTick) {
          // Nothing happens before toTick: jumping is safe because every level-k slot
          // still starts after toTick, so every timer keeps sharing now's high bits.
          if (toTick > this.#now) this.#now = toTick
          return fired
        }
        this.#now = t
        if ((t & kSlotMask) === 0) this.#cascade(t)
        fired += this.#fire(t & kSlotMask, onExpire)
      }
    } finally {
      this.#advancing = false
    }
  }

  /**
   * The earliest pending deadline, or -1 when the wheel is empty. O(levels) when that
   * timer is on level 0; otherwise it scans the one slot that holds it (stopping early
   * at the slot's first tick), so O(timers in that slot) — call it per tick, not per
   * message.
   */
  nextDeadline (): number {
    const occupied = this.#occupied
    for (let k = 0; k < kLevels; k++) {
      const bits = occupied[k]!
      if (bits === 0) continue
      const s = 31 - Math.clz32(bits & -bits)
      const start = Math.floor(this.#now / kPow[k + 1]!) * kPow[k + 1]! + s * kPow[k]!
      if (k === 0) return start
      const head = k * kSlotsPerLevel + s
      const links = this.#links
      const deadline = this.#deadline
      let min = Infinity
      for (let i = links[head * kStride + kNext]!; i !== head; i = links[i * kStride + kNext]!) {
        const d = deadline[i]!
        if (d < min) { min = d; if (d === start) break }
      }
      return min
    }
    return -1
  }

  /**
   * The next tick at which `advance` has work — a timer to fire or a slot to cascade —
   * or -1 when the wheel is empty. Never after `nextDeadline()` (it is the first tick
   * of the slot holding the earliest timer), and O(levels) whatever the wheel holds:
   * the tick a thread may sleep until. Always > now.
   */
  nextEventTick (): number {
    return this.#nextEventTick()
  }

  /**
   * The node part of a handle: a small integer (< 2^28, a V8 small integer) that a
   * caller keeping one timer per payload object can store instead of the handle (which
   * passes 2^31 once its node is reused 8 times and then boxes as a double).
   */
  static nodeOf (handle: number): number {
    return handle & kIndexMask
  }

  /**
   * The live handle of the timer in `node` if that timer carries `payload`, else -1.
   * With one live timer per payload object (compared by identity), the node alone
   * names it: a freed node holds no payload and a reused one holds another's.
   */
  handleAt (node: number, payload: T): number {
    if ((node | 0) !== node || node < kSlots || node >= this.#limit || this.#payload[node] !== payload) return -1
    const b = node * kStride
    if (this.#links[b + kPrev]! === kFree) return -1
    return this.#links[b + kGen]! * kIndexSpan + node
  }

  /** Node index of a live handle, or -1. Rejects non-numbers, fractions and stale handles. */
  #live (handle: number): number {
    const i = handle & kIndexMask
    // below kSlots: a slot head, never a handle; at or past the limit: never issued
    if (i < kSlots || i >= this.#limit) return -1
    const links = this.#links
    const b = i * kStride
    return links[b + kPrev]! === kFree || links[b + kGen]! * kIndexSpan + i !== handle ? -1 : i
  }

  /** File node i (due at d ≥ now) into its slot: the level of the highest bit where d and now differ. */
  #link (i: number, d: number): void {
    let head: number
    if (d <= 0xFFFFFFFF) {
      // Common case: d and now (≤ d) fit in 32 bits, so plain bit operations are exact.
      const level = kLevelOfBit[31 - Math.clz32((d ^ this.#now) | kSlotMask)]!
      head = (level << kSlotBits) | ((d >>> (level * kSlotBits)) & kSlotMask)
    } else {
      head = headOf53(d, this.#now)
    }
    const links = this.#links
    // Append at the tail: timers due on the same tick fire in scheduling order.
    const tail = links[head * kStride + kPrev]!
    links[tail * kStride + kNext] = i
    links[i * kStride + kPrev] = tail
    links[i * kStride + kNext] = head
    links[head * kStride + kPrev] = i
    const level = head >> kSlotBits
    this.#occupied[level] = this.#occupied[level]! | (1 << (head & kSlotMask))
  }

  /**
   * Unlink node i from its slot, put it on the free list and make its handle stale.
   * One method, not two, to help schedule + cancel fit V8's inlining budget (measured
   * 994 → 75 scavenges and 27 → 40M pairs/s in a tight loop).
   */
  #remove (i: number): void {
    const links = this.#links
    const b = i * kStride
    const n = links[b + kNext]!
    const p = links[b + kPrev]!
    links[p * kStride + kNext] = n
    links[n * kStride + kPrev] = p
    // Only a slot head (node < kSlots) links to itself: that slot just became empty.
    if (n === p && n < kSlots) {
      const level = n >> kSlotBits
      this.#occupied[level] = this.#occupied[level]! & ~(1 << (n & kSlotMask))
    }
    links[b + kPrev] = kFree
    links[b + kGen] = (links[b + kGen]! + 1) & kGenMask
    links[b + kNext] = this.#free
    this.#free = i
    this.#payload[i] = undefined
    this.#size--
  }

  /** The next tick at which a slot must be cascaded or fired, or -1 when empty. */
  #nextEventTick (): number {
    const occupied = this.#occupied
    for (let k = 0; k < kLevels; k++) {
      const bits = occupied[k]!
      if (bits === 0) continue
      // Every occupied slot on level k is at or after now's digit k, and all of them
      // come after everything on lower levels: the lowest set bit is the next event.
      const s = 31 - Math.clz32(bits & -bits)
      return Math.floor(this.#now / kPow[k + 1]!) * kPow[k + 1]! + s * kPow[k]!
    }
    return -1
  }

  /** At tick t (t % 32 === 0): empty the slot t enters on every level whose boundary t is. */
  #cascade (t: number): void {
    let top = 1
    while (top < kLevels - 1 && t % kPow[top + 1]! === 0) top++
    const links = this.#links
    const deadline = this.#deadline
    // One pass in any order: a re-filed timer lands where its digit is > t's digit on
    // that level (or, due at t, in level-0 slot t, fired right after), so never in a
    // slot this loop has yet to empty.
    for (let k = top; k >= 1; k--) {
      const s = (t / kPow[k]!) & kSlotMask
      if ((this.#occupied[k]! & (1 << s)) === 0) continue
      const head = k * kSlotsPerLevel + s
      let i = links[head * kStride + kNext]!
      links[head * kStride + kNext] = head
      links[head * kStride + kPrev] = head
      this.#occupied[k] = this.#occupied[k]! & ~(1 << s)
      while (i !== head) {
        const n = links[i * kStride + kNext]!
        this.#link(i, deadline[i]!)
        i = n
      }
    }
  }

  /**
   * Fire every timer in level-0 slot `head`, one at a time so callbacks may cancel
   * siblings. The arrays are re-read after every callback: one that schedules may grow
   * (replace) them.
   */
  #fire (head: number, onExpire: (payload: T, handle: number) => void): number {
    let fired = 0
    for (;;) {
      const i = this.#links[head * kStride + kNext]!
      if (i === head) return fired
      const p = this.#payload[i] as T
      const handle = this.#links[i * kStride + kGen]! * kIndexSpan + i
      this.#remove(i)
      fired++
      onExpire(p, handle)
    }
  }

  /** Double the node arrays (capped at MAX_TIMERS) and put the new nodes on the free list. */
  #grow (): void {
    const capacity = this.#limit - kSlots
    if (capacity >= MAX_TIMERS) throw new CapacityExceededError(`TimingWheel holds at most ${MAX_TIMERS} timers`, { limit: MAX_TIMERS })
    const limit = kSlots + Math.min(capacity * 2, MAX_TIMERS)
    const old = this.#limit
    const links = new Int32Array(limit * kStride)
    links.set(this.#links)
    this.#links = links
    const deadline = new Float64Array(limit)
    deadline.set(this.#deadline)
    this.#deadline = deadline
    const payload = new Array<T | undefined>(limit)
    for (let i = 0; i < old; i++) payload[i] = this.#payload[i]
    this.#payload = payload
    this.#limit = limit
    this.#pushFree(old, limit)
  }

  /** Put nodes [from, to) on the free list so that `from` is handed out first. */
  #pushFree (from: number, to: number): void {
    const links = this.#links
    for (let i = to - 1; i >= from; i--) {
      links[i * kStride + kNext] = this.#free
      links[i * kStride + kPrev] = kFree
      this.#free = i
    }
  }
}

function badDeadline (deadline: number): never {
  if (typeof deadline === 'number' && Number.isSafeInteger(deadline)) {
    throw new InvalidArgumentError(`deadlineTick must be ≤ MAX_TICK (${MAX_TICK}), got ${deadline}`)
  }
  throw new InvalidArgumentError(`deadlineTick must be a safe integer, got ${String(deadline)}`)
}
