/**
 * Time, as the core sees it: a monotonic millisecond clock behind an interface
 * (docs/architecture.md §1: host capabilities reach the core as interfaces it declares).
 * The runtime reads milliseconds only through it — `systemClock` below unless whoever
 * runs it injects another — so the simulator and tests decide what time it is.
 *
 * Used for rate limits (token buckets refill with this time) and for the commit latency
 * in stats. Precision is the source's: `performance.now()` in a host thread (µs), a
 * manual clock in tests.
 *
 * Gotcha: each thread's `performance.now()` counts from that thread's own start, so
 * values are only comparable within one thread — which is all the core needs (an agent's
 * bucket lives on the one thread that owns the agent; a restarted worker starts with
 * fresh buckets).
 */

export interface Clock {
  /** Milliseconds on a monotonic scale (never going backwards). */
  now (): number
}

/** `performance.now()`: a web-platform global in Node, browsers and Deno — no `node:` import. */
export const systemClock: Clock = { now: () => performance.now() }
