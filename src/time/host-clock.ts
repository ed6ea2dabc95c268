/**
 * The host clock (main thread): one tick every `tickMs`, or — with
 * `createHost({ clock: 'manual' })` — only when a test calls `host.advance(ticks)`.
 *
 * A tick is one store into shared memory (thread-clock.ts) plus a doorbell ring for
 * each parked thread whose timers are due by then; a thread with nothing due is not
 * woken, and an awake thread reads the tick at the start of its next pass.
 *
 * Real clock: a `setInterval(tickMs)` that sets the tick to
 * floor(elapsed wall time / tickMs), so a late callback (a busy main thread) catches
 * up instead of drifting; the threads then fire everything due in between, in
 * deadline order. The interval is cleared by `close()` (it is the only thing the clock
 * holds, so it never keeps the process alive past close).
 *
 * Manual clock: `advance(ticks)` moves the tick and resolves once every live thread
 * that runs agents has processed it — its due timers fired, the turns they ran and
 * the messages those sent all handled and committed — so tests check timer logic
 * without waiting on wall time. It does not wait for promises returned by async
 * handlers. Calls queue: each advance starts when the previous one has resolved.
 *
 * Knowing "every thread has processed tick T" without a round trip: a thread parked
 * with nothing to do publishes the tick it is idle through (`parkedAt`) and bumps a
 * progress word whenever it sets or clears it. The host reads progress, then every
 * thread's words and every ring's depth, then progress again: equal means no thread
 * changed state in between, so the snapshot is one consistent moment. Otherwise it
 * waits for the next bump (`Atomics.waitAsync`, with a 20 ms safety net for a thread
 * that died mid-change — it then counts as gone).
 */
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { HostClosedError, InvalidArgumentError } from '../../native-free-core/errors.ts'
import { MAX_TIMER_TICKS } from '../../native-free-core/time/agent-timers.ts'
import { ringDepth } from '../../native-free-core/ring/ring-queue.ts'
import type { Mesh } from '../thread/mesh.ts'
import { CLOCK_MANUAL, ClockView } from './thread-clock.ts'
import type { ClockKind } from './thread-clock.ts'

const kSafetyNetMs = 20

/** What the clock needs to know about the host's threads. */
export interface ClockThreads {
  /** Threads that run agents: 1..workers, or [0] with `workers: 0`. */
  readonly agentThreads: readonly number[]
  /** False while thread t is dead or restarting (its timers died with it). */
  alive (t: number): boolean
  /** The main thread's loop has nothing inbound and nothing in overflow. */
  mainQuiet (): boolean
}

export class HostClock {
  readonly kind: ClockKind
  readonly tickMs: number
  private readonly view: ClockView
  private readonly mesh: Mesh
  private readonly threads: ClockThreads
  private readonly bells: Doorbell[]
  private tick = 0
  private startedAt = 0
  private interval: ReturnType<typeof setInterval> | null = null
  private queue: Promise<void> = Promise.resolve()
  private stopped = false

  constructor (mesh: Mesh, kind: ClockKind, tickMs: number, threads: ClockThreads) {
    this.kind = kind
    this.tickMs = tickMs
    this.mesh = mesh
    this.view = new ClockView(mesh.clock)
    this.threads = threads
    this.bells = mesh.bells.map((b) => new Doorbell(b))
    // tick 0 is now: reminders map ticks to wall time from here, and the real clock counts from here
    this.startedAt = performance.now()
    this.view.setTimeBase(Date.now(), tickMs)
  }

  /** The current tick (0 when the host started). */
  get now (): number {
    return this.tick
  }

  start (): void {
    if (this.kind === CLOCK_MANUAL || this.stopped) return
    this.interval = setInterval(this.onInterval, this.tickMs)
  }

  /** No more ticks; pending and later advances fail with HostClosedError. */
  stop (): void {
    this.stopped = true
    if (this.interval !== null) clearInterval(this.interval)
    this.interval = null
  }

  /** Manual clock: move `ticks` ticks on; resolves when every thread has processed them. */
  advance (ticks: number): Promise<void> {
    if (this.kind !== CLOCK_MANUAL) {
      return Promise.reject(new InvalidArgumentError('host.advance() needs createHost({ clock: \'manual\' }); this host follows the real clock'))
    }
    if (typeof ticks !== 'number' || !Number.isInteger(ticks) || ticks < 0 || ticks > MAX_TIMER_TICKS) {
      return Promise.reject(new InvalidArgumentError(`host.advance(ticks): ticks must be an integer from 0 to 2^40, got ${typeof ticks === 'number' ? ticks : typeof ticks}`))
    }
    if (this.stopped) return Promise.reject(new HostClosedError())
    const run = this.queue.then(() => this.step(ticks))
    this.queue = run.catch(() => {})
    return run
  }

  private readonly onInterval = (): void => {
    const target = Math.floor((performance.now() - this.startedAt) / this.tickMs)
    if (target > this.tick) this.moveTo(target)
  }

  /** Publish tick `t` and ring every parked thread that has timer work due by then. */
  private moveTo (t: number): void {
    this.tick = t
    this.view.setNow(t)
    for (const thread of this.threads.agentThreads) {
      const due = this.view.nextDue(thread)
      if (due >= 0 && due <= t) this.bells[thread]!.ring()
    }
  }

  private async step (ticks: number): Promise<void> {
    if (this.stopped) throw new HostClosedError()
    const target = this.tick + ticks
    this.moveTo(target)
    for (;;) {
      if (this.stopped) throw new HostClosedError('the host closed during host.advance()')
      if (!this.threads.mainQuiet()) {
        // replies or overflow on the main thread: its own loop runs them in a later task
        await new Promise<void>((resolve) => setImmediate(resolve))
        continue
      }
      const before = this.view.progress()
      if (this.settled(target) && this.view.progress() === before) return
      await this.view.waitProgress(before, kSafetyNetMs)
    }
  }

  /** Every live agent thread is parked with nothing to do through `t`, and every ring is empty. */
  private settled (t: number): boolean {
    for (const thread of this.threads.agentThreads) {
      if (!this.threads.alive(thread)) continue
      const at = this.view.parkedAt(thread)
      if (at >= t) continue
      if (at < 0) return false
      // parked since before t: still idle through t unless a timer falls due by then
      const due = this.view.nextDue(thread)
      if (due >= 0 && due <= t) return false
    }
    for (const row of this.mesh.rings) for (const ring of row) if (ring != null && ringDepth(ring) !== 0) return false
    return true
  }
}
