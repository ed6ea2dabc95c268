/**
 * The soft limit's bound, checked by replaying interleavings step by step.
 *
 * A reservation (QuotaGate.reserve) is: load the base, load each thread's count (one
 * Atomics.load each), compare with the limit, add 1 to its own count. Threads run those
 * steps in parallel, so the model below executes them one step at a time, in an order
 * drawn from a seeded PRNG, on a real QuotaCounters — with releases (an agent dropped
 * before it committed) mixed in. Claim (quota-counters.ts): with W writing threads the
 * total never exceeds limit + W − 1.
 *
 * Why: a thread's second reservation loads every column after its first one's add, so
 * it sees every add that preceded that one; hence each thread overshoots at most once,
 * and the thread whose add reached the limit cannot overshoot at all.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QuotaCounters } from '../../native-free-core/tenancy/quota-counters.ts'
import { prng } from '../fixtures/prng.ts'

const SLOT = 5

interface Writer {
  readonly thread: number
  /** Columns loaded so far in the current attempt (-1: idle). */
  step: number
  seen: number
  /** Own reservations it may release. */
  held: number
}

/** One step of writer `w`: a load, the compare-and-add, or a release. Returns whether it reserved. */
function step (c: QuotaCounters, w: Writer, limit: number, release: boolean): boolean {
  if (w.step < 0) {
    if (release && w.held > 0) {
      c.add(SLOT, w.thread, -1, -1)
      w.held--
      return false
    }
    w.step = 0
    w.seen = 0
  }
  if (w.step <= c.threads) {
    w.seen += c.load(SLOT, w.step) // column 0 is the base, 1 + t thread t's count
    w.step++
    return false
  }
  w.step = -1
  if (w.seen >= limit) return false
  c.add(SLOT, w.thread, 1, 1)
  w.held++
  return true
}

function run (seed: number, writers: number, limit: number, steps: number): number {
  const c = new QuotaCounters(writers + 1) // + the main thread's column, never written
  const ws: Writer[] = Array.from({ length: writers }, (_, i) => ({ thread: i + 1, step: -1, seen: 0, held: 0 }))
  const rand = prng(seed)
  let max = 0
  for (let i = 0; i < steps; i++) {
    const w = ws[Math.floor(rand() * writers)]!
    step(c, w, limit, rand() < 0.05)
    const total = c.total(SLOT)
    if (total > max) max = total
    assert.ok(total <= limit + writers - 1, `seed ${seed}: total ${total} over ${limit} + ${writers - 1} at step ${i}`)
  }
  return max
}

test('racing reservations overshoot by at most threads − 1, in every replayed interleaving', () => {
  let reachedBound = 0
  for (const writers of [1, 2, 3, 4]) {
    for (let seed = 1; seed <= 300; seed++) {
      const limit = 1 + (seed % 7)
      const max = run(seed * 7919 + writers, writers, limit, 600)
      if (max === limit + writers - 1) reachedBound++
    }
  }
  assert.ok(reachedBound > 0, 'some interleaving reaches the bound')
})

test('the bound is tight: W threads that all load before any adds reach limit + W − 1', () => {
  for (const writers of [2, 3, 4]) {
    const limit = 10
    const c = new QuotaCounters(writers + 1)
    c.add(SLOT, 1, limit - 1, 0) // one short of the limit
    const ws: Writer[] = Array.from({ length: writers }, (_, i) => ({ thread: i + 1, step: -1, seen: 0, held: 0 }))
    for (let col = 0; col <= c.threads; col++) for (const w of ws) step(c, w, limit, false)
    for (const w of ws) assert.equal(step(c, w, limit, false), true)
    assert.equal(c.total(SLOT), limit + writers - 1)
    // and nobody gets further: every next attempt sees the total
    for (const w of ws) for (let i = 0; i <= c.threads + 1; i++) assert.equal(step(c, w, limit, false), false)
    assert.equal(c.total(SLOT), limit + writers - 1)
  }
})

test('one thread alone never overshoots', () => {
  for (let seed = 1; seed <= 50; seed++) assert.ok(run(seed, 1, 3, 400) <= 3)
})
