/**
 * Calls waiting for their reply, on the thread that made them.
 *
 * A call settles exactly once: by its reply, its timeout, its AbortSignal, the crash
 * of the worker it was routed to, or the host closing. Timers are cheap here: calls
 * under the host's default timeout carry a deadline, and one unref'd interval walks the
 * calls in flight and times out those past it. No `setTimeout` per call (≈1.6 µs and
 * 183 bytes each). Only a call with its own `timeoutMs` gets a timer of its own.
 *
 * The calls in flight are a slot array indexed by call id (ids are sequential), not a
 * Map. A long-lived Map with an insert and a delete per call rehashes into a new table
 * every few thousand calls, and the old table keeps a pointer to the new one (for
 * iterators). Once one table has been promoted to the old generation, every scavenge
 * treats that dead table's pointers as roots: the newer tables and the calls they held —
 * pending entries, promises, resolvers and whatever the callers hung on them — survive
 * and are promoted until the next mark-compact. In the latency bench that kept 4–6 MB per
 * scavenge of the main thread (half of what it allocated) and made its scavenges 7–17 ms
 * instead of 2–3 ms (bench/RESULTS.md, issue 13, 2026-12-06 evening).
 */
import { AbortedError, InvalidArgumentError, TimeoutError, errorFromWire } from '../../native-free-core/errors.ts'
import type { ShoalError, WireError } from '../../native-free-core/errors.ts'
import { CallLatencyWindow } from '../observe/call-latency.ts'

class Pending {
  readonly id: number
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
  /** Thread the call was routed to, and that thread's incarnation then. */
  readonly thread: number
  readonly epoch: number
  /** `type.method`, for errors: kept as its two parts, joined only when an error needs it. */
  readonly type: string
  readonly method: string

  constructor (id: number, resolve: (value: unknown) => void, reject: (error: unknown) => void, thread: number, epoch: number, type: string, method: string) {
    this.id = id
    this.resolve = resolve
    this.reject = reject
    this.thread = thread
    this.epoch = epoch
    this.type = type
    this.method = method
  }

  get what (): string {
    return `${this.type}.${this.method}`
  }

  /** Deadline under the host's default timeout (Date.now() ms), or 0. */
  deadline = 0
  /** performance.now() when registered, while a latency window is open (observe/call-latency.ts); else 0. */
  startMs = 0
  timer: ReturnType<typeof setTimeout> | null = null
  signal: AbortSignal | null = null
  onAbort: (() => void) | null = null
}

/*
 * One executor for every call's promise: it hands the resolving functions over through
 * these two slots (the executor runs synchronously inside `new Promise`), so a call does
 * not allocate a closure and its context just to capture them.
 */
let takenResolve: ((value: unknown) => void) | null = null
let takenReject: ((error: unknown) => void) | null = null
const takeResolvers = (resolve: (value: unknown) => void, reject: (error: unknown) => void): void => {
  takenResolve = resolve
  takenReject = reject
}

export interface CallOptions {
  /**
   * Fail with TimeoutError after this many milliseconds, an integer from 0 to 2^31 − 1;
   * `0` = never, as for the host's `callTimeoutMs`, which this overrides.
   */
  readonly timeoutMs?: number
  /** Abort the wait (the message may still be processed: a call is not a transaction). */
  readonly signal?: AbortSignal
}

/** The largest delay `setTimeout` keeps (a larger one fires at once, with a warning). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** Why `options` cannot be a call's options (an InvalidArgumentError), or null if they can. */
export function checkCallOptions (options: CallOptions | undefined): InvalidArgumentError | null {
  if (options === undefined) return null
  if (options === null || typeof options !== 'object') {
    return new InvalidArgumentError(`call options must be an object { timeoutMs?, signal? } (got ${String(options)})`)
  }
  const { timeoutMs, signal } = options
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
    return new InvalidArgumentError(`timeoutMs must be an integer from 0 (never) to ${MAX_TIMEOUT_MS} (got ${String(timeoutMs)})`, { timeoutMs: typeof timeoutMs === 'number' ? timeoutMs : String(timeoutMs) })
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    return new InvalidArgumentError(`signal must be an AbortSignal (got ${signal === null ? 'null' : typeof signal})`)
  }
  return null
}

/** Slots the call table starts with, and the most it grows to (beyond, collisions go to a Map). */
const kFirstSlots = 1024
const kMaxSlots = 1 << 20

/**
 * Calls in flight by id: slot `id & mask` of an array that doubles while more than half
 * of it is in use (up to kMaxSlots); a call whose slot is held by an older one still in
 * flight (a hung call, the id space wrapping) goes to a Map, which is empty otherwise.
 */
export class CallTable<P extends { readonly id: number }> {
  private slots: Array<P | undefined> = new Array<P | undefined>(kFirstSlots).fill(undefined)
  private mask = kFirstSlots - 1
  private readonly overflow = new Map<number, P>()
  size = 0

  set (p: P): void {
    if (this.size >= this.slots.length >> 1 && this.slots.length < kMaxSlots) this.grow()
    this.place(p)
    this.size++
  }

  get (id: number): P | undefined {
    const p = this.slots[id & this.mask]
    if (p !== undefined && p.id === id) return p
    return this.overflow.size === 0 ? undefined : this.overflow.get(id)
  }

  delete (id: number): boolean {
    const i = id & this.mask
    const p = this.slots[i]
    if (p !== undefined && p.id === id) this.slots[i] = undefined
    else if (this.overflow.size === 0 || !this.overflow.delete(id)) return false
    this.size--
    return true
  }

  /** Every call in flight (a copy: the caller may delete while it walks). */
  values (): P[] {
    const out: P[] = []
    for (const p of this.slots) if (p !== undefined) out.push(p)
    for (const p of this.overflow.values()) out.push(p)
    return out
  }

  /** After a burst: back to a smaller array once fewer than an eighth of the slots are in use (walks stay short). */
  compact (): void {
    let target = this.slots.length
    while (target > kFirstSlots && this.size < target >> 3) target >>= 1
    if (target !== this.slots.length) this.rebuild(target)
  }

  /** Slots in the array now (for tests). */
  get capacity (): number {
    return this.slots.length
  }

  private place (p: P): void {
    const i = p.id & this.mask
    if (this.slots[i] === undefined) this.slots[i] = p
    else this.overflow.set(p.id, p)
  }

  private grow (): void {
    this.rebuild(this.slots.length * 2)
  }

  private rebuild (length: number): void {
    const all = this.values()
    this.slots = new Array<P | undefined>(length).fill(undefined)
    this.mask = this.slots.length - 1
    this.overflow.clear()
    for (const p of all) this.place(p)
  }
}

export class PendingCalls {
  private readonly calls = new CallTable<Pending>()
  private nextId = 1
  private readonly defaultTimeoutMs: number
  private sweeper: ReturnType<typeof setInterval> | null = null
  /** Open call-latency windows: round trips are measured only while there is one. */
  private readonly latency: CallLatencyWindow[] = []

  constructor (defaultTimeoutMs: number) {
    this.defaultTimeoutMs = defaultTimeoutMs
  }

  get size (): number {
    return this.calls.size
  }

  /**
   * Register a call of `type.method`; returns its promise, and its id is `lastId` until
   * the next call is added. The caller sends the frame afterwards.
   */
  add (thread: number, epoch: number, type: string, method: string, options: CallOptions | undefined): Promise<unknown> {
    const id = this.nextId
    this.lastId = id
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1
    const promise = new Promise<unknown>(takeResolvers)
    const pending = new Pending(id, takenResolve!, takenReject!, thread, epoch, type, method)
    takenResolve = null
    takenReject = null
    this.calls.set(pending)
    if (this.latency.length !== 0) pending.startMs = performance.now()
    if (options === undefined) {
      if (this.defaultTimeoutMs > 0) this.armDefault(pending)
      return promise
    }
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs
    if (options.timeoutMs !== undefined) {
      if (timeoutMs > 0) pending.timer = setTimeout(() => this.settleTimeout(id, timeoutMs), timeoutMs)
    } else if (timeoutMs > 0) this.armDefault(pending)
    const signal = options.signal
    if (signal !== undefined) {
      pending.signal = signal
      pending.onAbort = () => this.fail(id, new AbortedError(`${pending.what} was aborted`, undefined, { cause: signal.reason }))
      signal.addEventListener('abort', pending.onAbort, { once: true })
    }
    return promise
  }

  /** The id of the call `add` registered last. */
  lastId = 0

  private armDefault (pending: Pending): void {
    pending.deadline = Date.now() + this.defaultTimeoutMs
    this.sweeper ??= setInterval(this.sweep, Math.max(10, Math.min(1000, this.defaultTimeoutMs / 4))).unref()
  }

  /** A reply frame arrived. Late replies (after a timeout or abort) are ignored. */
  settle (id: number, ok: boolean, value: unknown): void {
    const p = this.take(id)
    if (p === undefined) return
    if (p.startMs !== 0) {
      const us = (performance.now() - p.startMs) * 1000
      for (const w of this.latency) w.record(us)
    }
    if (ok) p.resolve(value)
    else p.reject(errorFromWire(value as WireError))
  }

  /** Measure the round trips of the calls registered from now on, until the window is closed. */
  latencyWindow (): CallLatencyWindow {
    return new CallLatencyWindow(this.latency)
  }

  fail (id: number, error: ShoalError): void {
    this.take(id)?.reject(error)
  }

  /** Fail every call routed to `thread` before its incarnation `epoch` (it crashed). */
  failThread (thread: number, epoch: number, error: () => ShoalError): void {
    for (const p of this.calls.values()) if (p.thread === thread && p.epoch < epoch) this.fail(p.id, error())
  }

  failAll (error: () => ShoalError): void {
    // in the order the calls were made (ids are sequential until they wrap)
    for (const p of this.calls.values().sort((a, b) => a.id - b.id)) this.fail(p.id, error())
  }

  private take (id: number): Pending | undefined {
    const p = this.calls.get(id)
    if (p === undefined) return undefined
    this.calls.delete(id)
    if (p.timer !== null) clearTimeout(p.timer)
    if (p.onAbort !== null) p.signal!.removeEventListener('abort', p.onAbort)
    return p
  }

  private settleTimeout (id: number, ms: number): void {
    const p = this.calls.get(id)
    if (p !== undefined) this.fail(id, new TimeoutError(`${p.what} timed out after ${ms} ms`, { timeoutMs: ms }))
  }

  private readonly sweep = (): void => {
    this.calls.compact()
    if (this.calls.size === 0) {
      // stopped lazily: clearing on every last settle would re-arm it per sequential call
      clearInterval(this.sweeper!)
      this.sweeper = null
      return
    }
    const now = Date.now()
    for (const p of this.calls.values()) {
      if (p.deadline !== 0 && p.deadline <= now) this.settleTimeout(p.id, this.defaultTimeoutMs) // 0: own timer, or no timeout
    }
  }
}
