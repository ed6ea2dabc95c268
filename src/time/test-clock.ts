/**
 * A hand-driven clock for the host's rate limits — a test hook, not public API (it is
 * not exported from `shoal`; tests import it from this file).
 *
 *   const clock = new TestClock()
 *   const host = await createHost({ agents, [kTestClock]: clock })
 *   clock.advance(250)            // every thread's buckets see 250 ms more
 *
 * One float64 in a SharedArrayBuffer, written only by the thread that calls `advance`
 * and read by every thread's runtime at each rate-limited message. The write is an
 * `Atomics.store` on the BigInt view of the same bytes (Float64Array has no atomics),
 * and a message sent after `advance` returns is published to its ring after that store,
 * so the receiving thread reads the new time: deterministic without any sleep.
 *
 * The host's tick clock (ctx.tick, timers) is a separate thing; once the host has a
 * manual tick clock (`clock: 'manual'`), rate-limit time can be derived from it
 * (tick × tickMs) through the same Clock seam.
 */
import { InvalidArgumentError } from '../../native-free-core/errors.ts'
import type { Clock } from '../../native-free-core/time/clock.ts'

export const kTestClock = Symbol.for('shoal.test-clock')

/**
 * What `createHost` reads besides its options, for tests: not in `HostOptions`, so the
 * published types carry no test hook. `createHost({ agents, ...hooks } as HostOptions)`.
 */
export interface TestHooks {
  readonly [kTestClock]?: TestClock
}

export class TestClock implements Clock {
  readonly buffer: SharedArrayBuffer
  private readonly bits: BigInt64Array

  constructor (startMs = 0, buffer = new SharedArrayBuffer(8)) {
    this.buffer = buffer
    this.bits = new BigInt64Array(buffer)
    if (startMs !== 0) this.set(startMs)
  }

  /** The same clock on another thread, from its buffer. */
  static reader (buffer: SharedArrayBuffer): TestClock {
    return new TestClock(0, buffer)
  }

  now (): number {
    // read through the atomic view so the load is ordered after the ring's acquire
    scratchBits[0] = Atomics.load(this.bits, 0)
    return scratchF64[0]!
  }

  advance (ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new InvalidArgumentError(`advance(ms) takes a finite ms ≥ 0, got ${ms}`)
    this.set(this.now() + ms)
  }

  private set (ms: number): void {
    scratchF64[0] = ms
    Atomics.store(this.bits, 0, scratchBits[0]!)
  }
}

const scratchF64 = new Float64Array(1)
const scratchBits = new BigInt64Array(scratchF64.buffer)
