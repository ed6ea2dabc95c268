/**
 * TimingWheel against a naive reference model (a Map of live timers scanned on every
 * step), with fast-check generating seeded sequences of schedule / cancel / advance —
 * including re-entrant schedule and cancel from inside onExpire, big jumps and deadlines
 * up to 2^31 ticks ahead on every level — plus focused tests for each level boundary,
 * re-entrancy, growth, a million timers and bad input.
 *
 * The model does not replay the wheel's tie order (same-tick order is unspecified);
 * instead every firing is checked as it happens: the timer is live in the model, it
 * fires exactly at its deadline, and no live timer is due earlier.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import { MAX_TICK, TimingWheel } from '../../native-free-core/time/timing-wheel.ts'

const SEED = 42
const kMaxReactions = 24

type Reaction =
  | { readonly kind: 'none' }
  | { readonly kind: 'schedule', readonly delta: number, readonly count: number }
  | { readonly kind: 'cancel', readonly pick: number }

type Op =
  | { readonly kind: 'schedule', readonly delta: number }
  | { readonly kind: 'aligned', readonly level: number, readonly offset: number }
  | { readonly kind: 'cancel', readonly pick: number }
  | { readonly kind: 'garbage', readonly handle: number }
  | { readonly kind: 'advance', readonly delta: number, readonly reactions: readonly Reaction[] }

interface Entry { readonly id: number, readonly deadline: number, readonly scheduledAt: number }

/** Totals over every run, to prove the generators reach what they are meant to. */
const stats = { fired: 0, farFired: 0, reentrantScheduled: 0, reentrantCancelled: 0 }

/** The reference: live timers by handle, every handle ever issued, and the wheel under test. */
class Harness {
  readonly wheel: TimingWheel<number>
  readonly live = new Map<number, Entry>()
  readonly issued: number[] = []
  readonly everIssued = new Set<number>()
  now: number
  nextId = 0

  constructor (start: number, initialCapacity: number) {
    this.wheel = new TimingWheel<number>({ startTick: start, initialCapacity })
    this.now = start
  }

  schedule (deadline: number): void {
    if (deadline > MAX_TICK) return
    const id = this.nextId++
    const h = this.wheel.schedule(deadline, id)
    const expected = deadline > this.wheel.now ? deadline : this.wheel.now + 1
    assert.ok(!this.everIssued.has(h), `handle ${h} issued twice`)
    assert.equal(this.wheel.deadlineOf(h), expected)
    this.live.set(h, { id, deadline: expected, scheduledAt: this.wheel.now })
    this.issued.push(h)
    this.everIssued.add(h)
  }

  cancel (pick: number): void {
    if (this.issued.length === 0) return
    const h = this.issued[pick % this.issued.length]!
    assert.equal(this.wheel.cancel(h), this.live.delete(h))
    assert.equal(this.wheel.cancel(h), false, 'second cancel of the same handle')
  }

  minDeadline (): number {
    let min = Infinity
    for (const e of this.live.values()) if (e.deadline < min) min = e.deadline
    return min
  }

  advance (to: number, reactions: readonly Reaction[]): void {
    let fired = 0
    let lastTick = this.wheel.now
    const count = this.wheel.advance(to, (id, h) => {
      const e = this.live.get(h)
      assert.ok(e !== undefined, `fired a timer that is not live: ${h}`)
      assert.equal(e.id, id, 'payload')
      assert.equal(this.wheel.now, e.deadline, 'fires exactly at its deadline')
      assert.ok(this.wheel.now >= lastTick, 'time never goes back')
      assert.ok(this.wheel.now <= to)
      lastTick = this.wheel.now
      this.live.delete(h)
      stats.fired++
      if (e.deadline - e.scheduledAt >= 32 ** 4) stats.farFired++
      assert.ok(this.minDeadline() >= this.wheel.now, 'fired in deadline order')
      assert.equal(this.wheel.deadlineOf(h), -1, 'handle is dead inside its callback')
      assert.equal(this.wheel.cancel(h), false)
      // React to the first few firings only: a re-arming chain must not run 2^31 ticks.
      const r = fired < kMaxReactions && reactions.length > 0 ? reactions[fired % reactions.length] : undefined
      fired++
      if (r?.kind === 'schedule') {
        // more than one per firing can grow the wheel from inside onExpire
        for (let k = 0; k < r.count; k++) { stats.reentrantScheduled++; this.schedule(this.wheel.now + r.delta + k) }
      }
      else if (r?.kind === 'cancel') { stats.reentrantCancelled++; this.cancel(r.pick) }
    })
    assert.equal(count, fired)
    if (to > this.now) this.now = to
    assert.equal(this.wheel.now, this.now)
    assert.ok(this.minDeadline() > this.now, 'every timer due by toTick fired')
  }

  check (): void {
    assert.equal(this.wheel.size, this.live.size)
    const min = this.minDeadline()
    assert.equal(this.wheel.nextDeadline(), min === Infinity ? -1 : min)
    for (const h of this.issued) {
      const e = this.live.get(h)
      assert.equal(this.wheel.deadlineOf(h), e?.deadline ?? -1)
      // payload ids are unique, so a node names its timer only while that timer lives
      assert.equal(this.wheel.handleAt(TimingWheel.nodeOf(h), e?.id ?? -1), e === undefined ? -1 : h)
    }
    // the tick a thread may sleep until: after now, never after the earliest deadline
    const next = this.wheel.nextEventTick()
    if (min === Infinity) assert.equal(next, -1)
    else assert.ok(next > this.now && next <= min, `nextEventTick ${next} in (${this.now}, ${min}]`)
  }

  run (op: Op): void {
    switch (op.kind) {
      case 'schedule': this.schedule(this.now + op.delta); break
      case 'aligned': {
        // The first tick of a slot on `level`, plus a small offset: hits cascade boundaries.
        const span = 32 ** op.level
        this.schedule(Math.ceil((this.now + 1) / span) * span + op.offset)
        break
      }
      case 'cancel': this.cancel(op.pick); break
      case 'garbage':
        if (!this.everIssued.has(op.handle)) {
          assert.equal(this.wheel.cancel(op.handle), false)
          assert.equal(this.wheel.deadlineOf(op.handle), -1)
        }
        break
      case 'advance': this.advance(Math.max(0, this.now + op.delta), op.reactions); break
    }
    this.check()
  }
}

const delta = fc.oneof(
  { arbitrary: fc.integer({ min: -40, max: 70 }), weight: 4 },
  { arbitrary: fc.integer({ min: 0, max: 40_000 }), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 2 ** 31 }), weight: 2 }
)
const reaction: fc.Arbitrary<Reaction> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'none' as const }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('schedule' as const), delta: fc.integer({ min: -3, max: 100 }), count: fc.integer({ min: 1, max: 3 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }), weight: 1 }
)
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('schedule' as const), delta }), weight: 8 },
  { arbitrary: fc.record({ kind: fc.constant('aligned' as const), level: fc.integer({ min: 1, max: 6 }), offset: fc.integer({ min: -2, max: 2 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('garbage' as const), handle: fc.oneof(fc.integer(), fc.double(), fc.integer({ min: 0, max: 400 })) }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      // a negative delta asks for a tick in the past: a no-op
      delta: fc.oneof(fc.integer({ min: -3, max: 40 }), fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 2 ** 31 + 64 })),
      reactions: fc.array(reaction, { maxLength: 4 })
    }),
    weight: 4
  }
)
const start = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 0, max: 2 ** 20 }),
  // around the 2^32 boundary, where the wheel switches from 32-bit to split arithmetic
  fc.integer({ min: 2 ** 32 - 3_000, max: 2 ** 32 + 100 }),
  fc.integer({ min: 2 ** 40, max: 2 ** 52 })
)

test('matches the reference model on random schedule / cancel / advance sequences', () => {
  fc.assert(
    fc.property(start, fc.integer({ min: 1, max: 64 }), fc.array(op, { maxLength: 80, size: 'max' }), (s, capacity, ops) => {
      const h = new Harness(s, capacity)
      for (const o of ops) h.run(o)
      // drain: everything left fires exactly once, in order
      h.advance(Math.min(h.now + 2 ** 33, MAX_TICK), [])
      h.check()
    }),
    { seed: SEED, numRuns: 3_000 }
  )
  assert.ok(stats.fired > 5_000 && stats.farFired > 200 && stats.reentrantScheduled > 500 && stats.reentrantCancelled > 200, JSON.stringify(stats))
})

test('fires exactly at the tick on both sides of every level boundary', () => {
  for (let k = 1; k <= 10; k++) {
    const b = 32 ** k
    const wanted = [...new Set([b - 2, b - 1, b, b + 1, b + 31, b + 32, b + 33, 2 * b - 1, 2 * b, 2 * b + 1, 31 * b, 32 * b - 1, 32 * b, 32 * b + 1])]
      .filter((d) => d <= MAX_TICK)
      .sort((x, y) => x - y)
    for (const stepwise of [false, true]) {
      const wheel = new TimingWheel<number>({ startTick: b - 3 })
      for (const d of wanted) wheel.schedule(d, d)
      const log: number[] = []
      const onExpire = (d: number): void => { assert.equal(wheel.now, d); log.push(d) }
      if (stepwise) {
        // stop on the tick before, at and after each deadline
        for (const d of wanted) for (const t of [d - 1, d, d + 1]) wheel.advance(Math.min(t, MAX_TICK), onExpire)
      } else {
        wheel.advance(Math.min(32 * b + 1, MAX_TICK), onExpire)
      }
      assert.deepEqual(log, wanted, `level ${k}${stepwise ? ' stepwise' : ''}`)
      assert.equal(wheel.size, 0)
    }
  }
})

test('crosses the 2^32 boundary and reaches MAX_TICK in a few steps', () => {
  const wheel = new TimingWheel<number>({ startTick: 2 ** 32 - 5 })
  const wanted = [2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 33 + 7, 2 ** 45 + 3, 2 ** 52, MAX_TICK - 1, MAX_TICK]
  for (const d of wanted) wheel.schedule(d, d)
  const log: number[] = []
  assert.equal(wheel.nextDeadline(), 2 ** 32 - 1)
  assert.equal(wheel.advance(MAX_TICK, (d) => { assert.equal(wheel.now, d); log.push(d) }), wanted.length)
  assert.deepEqual(log, wanted)
  assert.equal(wheel.now, MAX_TICK)
  assert.equal(wheel.nextDeadline(), -1)
})

test('nextDeadline finds the earliest timer inside a higher-level slot', () => {
  const wheel = new TimingWheel<string>()
  assert.equal(wheel.nextDeadline(), -1)
  wheel.schedule(5_000, 'a')
  const b = wheel.schedule(4_100, 'b')
  wheel.schedule(4_200, 'c')
  assert.equal(wheel.nextDeadline(), 4_100)
  wheel.cancel(b)
  assert.equal(wheel.nextDeadline(), 4_200)
  wheel.schedule(7, 'd')
  assert.equal(wheel.nextDeadline(), 7)
})

test('nextEventTick: sleeping until it and advancing there, repeatedly, fires every timer on time', () => {
  const wheel = new TimingWheel<number>({ startTick: 7 })
  const deadlines = [8, 40, 1_000, 33_000, 2 ** 25 + 3, 2 ** 31 + 11]
  for (const d of deadlines) wheel.schedule(d, d)
  const fired: number[] = []
  let wakes = 0
  for (let next = wheel.nextEventTick(); next !== -1; next = wheel.nextEventTick()) {
    wakes++
    wheel.advance(next, (d) => { assert.equal(wheel.now, d); fired.push(d) })
  }
  assert.deepEqual(fired, deadlines)
  // one wake per deadline plus at most one per level a timer cascades through
  assert.ok(wakes <= deadlines.length * 7, `${wakes} wakes`)
})

test('handleAt: a node names its timer only while it carries that payload', () => {
  const wheel = new TimingWheel<object>({ initialCapacity: 1 })
  const a = {}
  const b = {}
  const ha = wheel.schedule(10, a)
  const node = TimingWheel.nodeOf(ha)
  assert.equal(wheel.handleAt(node, a), ha)
  assert.equal(wheel.handleAt(node, b), -1)
  assert.ok(wheel.cancel(ha))
  assert.equal(wheel.handleAt(node, a), -1)
  // the freed node is reused for b (LIFO free list): still not a's
  const hb = wheel.schedule(10, b)
  assert.equal(TimingWheel.nodeOf(hb), node)
  assert.equal(wheel.handleAt(node, a), -1)
  assert.equal(wheel.handleAt(node, b), hb)
  for (const bad of [-1, 0, 351, 1.5, 2 ** 28, Number.NaN]) assert.equal(wheel.handleAt(bad, b), -1)
  // nodeOf stays exact when the handle itself is past 2^31 (the node reused many times)
  let h = hb
  for (let i = 0; i < 40; i++) { wheel.cancel(h); h = wheel.schedule(10, b) }
  assert.ok(h > 2 ** 31)
  assert.equal(TimingWheel.nodeOf(h), node)
  assert.equal(wheel.handleAt(node, b), h)
})

test('a deadline at or before now is due on the next tick', () => {
  const wheel = new TimingWheel<string>({ startTick: 100 })
  const a = wheel.schedule(100, 'a')
  const b = wheel.schedule(-5, 'b')
  assert.equal(wheel.deadlineOf(a), 101)
  assert.equal(wheel.deadlineOf(b), 101)
  assert.equal(wheel.advance(100, () => assert.fail('no tick passed')), 0)
  const fired: string[] = []
  assert.equal(wheel.advance(101, (p) => fired.push(p)), 2)
  assert.deepEqual(fired.sort(), ['a', 'b'])
})

test('re-entrant: a timer scheduled for now from onExpire fires next tick, inside the same advance if time remains', () => {
  const wheel = new TimingWheel<string>()
  const ticks: number[] = []
  wheel.schedule(10, 'first')
  wheel.advance(12, (p) => {
    ticks.push(wheel.now)
    if (p === 'first') wheel.schedule(wheel.now, 'again')
  })
  assert.deepEqual(ticks, [10, 11])

  // toTick == the firing tick: the follow-up waits for the next advance
  ticks.length = 0
  wheel.schedule(20, 'first')
  wheel.advance(20, (p) => {
    ticks.push(wheel.now)
    if (p === 'first') wheel.schedule(wheel.now - 3, 'again')
  })
  assert.deepEqual(ticks, [20])
  assert.equal(wheel.size, 1)
  wheel.advance(21, () => ticks.push(wheel.now))
  assert.deepEqual(ticks, [20, 21])
})

test('re-entrant: a timer that re-arms itself every tick fires once per tick, no livelock', () => {
  const wheel = new TimingWheel<number>()
  let fired = 0
  wheel.schedule(1, 0)
  const n = wheel.advance(1_000, () => { fired++; wheel.schedule(wheel.now, 0) })
  assert.equal(n, 1_000)
  assert.equal(fired, 1_000)
  assert.equal(wheel.size, 1)
  assert.equal(wheel.nextDeadline(), 1_001)
})

test('re-entrant: cancelling a sibling due on the same tick stops it; cancelling yourself is false', () => {
  const wheel = new TimingWheel<string>()
  const handles = new Map<string, number>()
  for (const p of ['a', 'b', 'c', 'd']) handles.set(p, wheel.schedule(50, p))
  const fired: string[] = []
  wheel.advance(60, (p, h) => {
    fired.push(p)
    assert.equal(h, handles.get(p))
    assert.equal(wheel.cancel(h), false)
    // whoever fires first cancels all the others but one
    if (fired.length === 1) {
      const others = [...handles].filter(([q]) => q !== p)
      for (const [, hq] of others.slice(0, -1)) assert.equal(wheel.cancel(hq), true)
    }
  })
  assert.equal(fired.length, 2, `fired ${fired.join()}`)
  assert.equal(wheel.size, 0)
})

test('re-entrant: advance inside onExpire throws; the wheel stays usable', () => {
  const wheel = new TimingWheel<number>()
  wheel.schedule(3, 1)
  assert.throws(() => wheel.advance(5, () => { wheel.advance(10, () => {}) }), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /inside onExpire/ })
  wheel.schedule(7, 2)
  const fired: number[] = []
  wheel.advance(10, (p) => fired.push(p))
  assert.deepEqual(fired, [2])
})

test('an onExpire that throws leaves the other timers of that tick for the next advance', () => {
  const wheel = new TimingWheel<number>()
  for (let i = 0; i < 5; i++) wheel.schedule(8, i)
  wheel.schedule(9, 99)
  let calls = 0
  assert.throws(() => wheel.advance(20, () => { calls++; throw new Error('boom') }), /boom/)
  assert.equal(calls, 1)
  assert.equal(wheel.now, 8)
  assert.equal(wheel.size, 5)
  const fired: number[] = []
  assert.equal(wheel.advance(8, (p) => fired.push(p)), 4, 'advance(now) fires what is left of tick 8')
  assert.equal(wheel.advance(20, (p) => fired.push(p)), 1)
  assert.deepEqual(fired.slice(-1), [99])
  assert.equal(wheel.size, 0)
})

test('grows past its initial capacity; old handles stay valid, dead ones stay stale', () => {
  const wheel = new TimingWheel<number>({ initialCapacity: 1 })
  const handles: number[] = []
  for (let i = 0; i < 5_000; i++) handles.push(wheel.schedule(1 + ((i * 7_919) % 100_000), i))
  assert.equal(wheel.size, 5_000)
  assert.ok(wheel.capacity >= 5_000)
  assert.equal(new Set(handles).size, 5_000)
  for (let i = 0; i < 5_000; i += 3) assert.equal(wheel.cancel(handles[i]!), true)
  // reuse the freed nodes: new handles differ from the cancelled ones
  for (let i = 0; i < 5_000; i += 3) {
    const h = wheel.schedule(200_000, -1)
    assert.ok(!handles.includes(h))
    assert.equal(wheel.cancel(h), true)
  }
  for (let i = 0; i < 5_000; i += 3) assert.equal(wheel.cancel(handles[i]!), false)
  const seen = new Uint8Array(5_000)
  wheel.advance(1_000_000, (i, h) => { assert.equal(h, handles[i]); seen[i]!++ })
  for (let i = 0; i < 5_000; i++) assert.equal(seen[i], i % 3 === 0 ? 0 : 1, `timer ${i}`)
})

test('one node reused many times never hands out the same handle twice', () => {
  const wheel = new TimingWheel<number>({ initialCapacity: 1 })
  const seen = new Set<number>()
  for (let i = 0; i < 10_000; i++) {
    const h = wheel.schedule(i + 5, i)
    assert.ok(!seen.has(h))
    seen.add(h)
    if (i % 2 === 0) assert.equal(wheel.cancel(h), true)
    else assert.equal(wheel.advance(wheel.deadlineOf(h), () => {}), 1)
  }
  for (const h of seen) assert.equal(wheel.cancel(h), false)
  assert.equal(wheel.capacity, 1)
})

test('1,000,000 timers all fire exactly once, each at its deadline', () => {
  const n = 1_000_000
  const wheel = new TimingWheel<number>()
  const deadline = new Float64Array(n)
  let x = 12_345
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0 // LCG: deterministic spread over 2^22 ticks
    deadline[i] = 1 + (x >>> 10)
    wheel.schedule(deadline[i]!, i)
  }
  assert.equal(wheel.size, n)
  const count = new Uint8Array(n)
  let last = 0
  let bad = 0
  const onExpire = (i: number): void => {
    count[i]!++
    if (wheel.now !== deadline[i] || wheel.now < last) bad++
    last = wheel.now
  }
  let fired = wheel.advance(2 ** 21, onExpire) // half, then the rest in one jump
  fired += wheel.advance(2 ** 23, onExpire)
  assert.equal(fired, n)
  assert.equal(bad, 0)
  assert.equal(wheel.size, 0)
  assert.ok(count.every((c) => c === 1))
})

test('jumping 2^50 ticks over an empty wheel is immediate', () => {
  const wheel = new TimingWheel<number>()
  wheel.schedule(2 ** 50 + 17, 1)
  wheel.schedule(2 ** 40 + 3, 2)
  const fired: number[] = []
  assert.equal(wheel.advance(2 ** 51, (p) => { fired.push(p) }), 2)
  assert.deepEqual(fired, [2, 1])
  assert.equal(wheel.advance(2 ** 52, () => {}), 0)
  assert.equal(wheel.now, 2 ** 52)
})

test('bad input: InvalidArgumentError naming the argument; garbage handles are not live', () => {
  assert.throws(() => new TimingWheel({ initialCapacity: 0 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /initialCapacity.*got 0/ })
  assert.throws(() => new TimingWheel({ initialCapacity: 1.5 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /initialCapacity/ })
  assert.throws(() => new TimingWheel({ startTick: -1 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /startTick.*got -1/ })
  assert.throws(() => new TimingWheel({ startTick: 2 ** 53 }), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /startTick/ })
  const wheel = new TimingWheel<number>()
  for (const bad of [NaN, 1.5, Infinity, -Infinity, '5' as unknown as number]) {
    assert.throws(() => wheel.schedule(bad, 1), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /deadlineTick must be a safe integer/ })
  }
  assert.throws(() => wheel.schedule(MAX_TICK + 1, 1), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /deadlineTick must be ≤ MAX_TICK/ })
  for (const bad of [-1, 1.5, NaN, 2 ** 53]) {
    assert.throws(() => wheel.advance(bad, () => {}), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /toTick/ })
  }
  const h = wheel.schedule(5, 1)
  // 0..351 are slot heads internally: never valid handles
  for (const bad of [-1, 0, 1, 351, h + 0.5, h + 2 ** 28, NaN, Infinity, 2 ** 60, undefined as unknown as number, String(h) as unknown as number]) {
    assert.equal(wheel.cancel(bad), false, `cancel(${String(bad)})`)
    assert.equal(wheel.deadlineOf(bad), -1)
  }
  assert.equal(wheel.size, 1)
  assert.equal(wheel.deadlineOf(h), 5)
})

test('drops payload references on fire and on cancel', async () => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const wheel = new TimingWheel<object>()
  const refs = ((): WeakRef<object>[] => {
    const a = { cell: 'a' }
    const b = { cell: 'b' }
    const ha = wheel.schedule(3, a)
    wheel.schedule(3, b)
    wheel.cancel(ha)
    wheel.advance(3, () => {})
    return [new WeakRef(a), new WeakRef(b)]
  })()
  // WeakRef targets stay alive until the current job ends
  await new Promise((resolve) => setImmediate(resolve))
  gc()
  assert.equal(refs[0]!.deref(), undefined, 'cancelled payload collected')
  assert.equal(refs[1]!.deref(), undefined, 'fired payload collected')
})

test('re-entrant: onExpire may grow the wheel while a slot is being fired', () => {
  const wheel = new TimingWheel<number>({ initialCapacity: 2 })
  for (let i = 0; i < 20; i++) wheel.schedule(10, i)
  const fired: number[] = []
  const n = wheel.advance(12, (p) => {
    fired.push(p)
    // each firing of the first batch adds 50 more timers: the arrays double many times
    if (p < 20) for (let k = 0; k < 50; k++) wheel.schedule(wheel.now + 1 + (k & 1), 1_000 + p * 50 + k)
  })
  assert.equal(n, 20 + 20 * 50)
  assert.deepEqual(fired.slice(0, 20), Array.from({ length: 20 }, (_, i) => i))
  assert.deepEqual(fired.slice(20).sort((a, b) => a - b), Array.from({ length: 1_000 }, (_, i) => 1_000 + i))
  assert.equal(wheel.size, 0)
})
