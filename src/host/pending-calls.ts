/**
 * Calls waiting for their reply, on the thread that made them.
 *
 * A call settles exactly once: by its reply, its timeout, its AbortSignal, the crash
 * of the worker it was routed to, or the host closing. Timers are cheap here: calls
 * under the host's default timeout all wait the same time, so in the pending map's
 * insertion order they are also in deadline order; one unref'd interval walks the map
 * from its oldest entry and stops at the first call not yet due. No `setTimeout` per
 * call (≈1.6 µs and 183 bytes each) and no second structure to keep in step. Only a
 * call with its own `timeoutMs` gets a timer of its own.
 */
import { AbortedError, InvalidArgumentError, TimeoutError, errorFromWire } from '../../native-free-core/errors.ts'
import type { ShoalError, WireError } from '../../native-free-core/errors.ts'
import { CallLatencyWindow } from '../observe/call-latency.ts'

class Pending {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
  /** Thread the call was routed to, and that thread's incarnation then. */
  readonly thread: number
  readonly epoch: number
  /** `type.method`, for errors: kept as its two parts, joined only when an error needs it. */
  readonly type: string
  readonly method: string

  constructor (resolve: (value: unknown) => void, reject: (error: unknown) => void, thread: number, epoch: number, type: string, method: string) {
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

export class PendingCalls {
  private readonly calls = new Map<number, Pending>()
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
    const pending = new Pending(takenResolve!, takenReject!, thread, epoch, type, method)
    takenResolve = null
    takenReject = null
    this.calls.set(id, pending)
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
    for (const [id, p] of this.calls) if (p.thread === thread && p.epoch < epoch) this.fail(id, error())
  }

  failAll (error: () => ShoalError): void {
    for (const id of [...this.calls.keys()]) this.fail(id, error())
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
    if (this.calls.size === 0) {
      // stopped lazily: clearing on every last settle would re-arm it per sequential call
      clearInterval(this.sweeper!)
      this.sweeper = null
      return
    }
    const now = Date.now()
    for (const [id, p] of this.calls) {
      if (p.deadline === 0) continue // own timer, or no timeout
      if (p.deadline > now) break // every later default-timeout call is due later still
      this.settleTimeout(id, this.defaultTimeoutMs)
    }
  }
}
