/**
 * Agent timers in the shard runtime, on one thread, with time moved by hand
 * (`rt.advanceTo`): ctx.timeout turns, idle passivation, rollback, busy agents, the
 * catch-up budget — and a seeded random model of all of it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import { Envelope, MSG_CALL, MSG_CAST } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { between, prng } from '../fixtures/prng.ts'
import { ManualStore } from '../fixtures/manual-store.ts'

/** Every timeout turn, as [key, ctx.tick]; handlers below push to it. */
let fired: Array<[string, number]> = []
let gate: { promise: Promise<void>, open: () => void } | null = null

interface TimedState { n: number, period: number, failOnTimeout: boolean, log: string[] | null }
const timed = {
  initial: (): TimedState => ({ n: 0, period: 0, failOnTimeout: false, log: null }),
  commands: {
    /** Apply timer settings, then bump n. */
    set (s: TimedState, p: { timeout?: number, idle?: number, period?: number, failOnTimeout?: boolean }, ctx: any) {
      if (p.period !== undefined) s.period = p.period
      if (p.failOnTimeout !== undefined) s.failOnTimeout = p.failOnTimeout
      if (p.timeout !== undefined) ctx.timeout(p.timeout)
      if (p.idle !== undefined) ctx.idleAfter(p.idle)
      s.n++
    },
    add (s: TimedState, by: number) { s.n += by; return s.n },
    setThenFail (_s: TimedState, ticks: number, ctx: any) { ctx.timeout(ticks); throw new Error('refused') },
    fail (s: TimedState) { s.n = -1; throw new RangeError('no') },
    /** Keeps a log (also of timeouts): the only handler that grows the state. */
    async slow (s: TimedState, tag: string) { (s.log ??= []).push(`start ${tag}`); await gate!.promise; s.log.push(`end ${tag}`) },
    notify (_s: TimedState, to: string, ctx: any) { ctx.send({ type: 'plain', key: to }, 'add', 100) }
  },
  queries: {
    get (s: TimedState) { return s.n },
    log (s: TimedState) { return s.log },
    badTimer (_s: TimedState, ticks: unknown, ctx: any) { ctx.timeout(ticks) }
  },
  timeout (s: TimedState, ctx: any) {
    fired.push([ctx.id.key, ctx.tick])
    s.log?.push(`timeout@${ctx.tick}`)
    if (s.failOnTimeout) { s.n = -100; throw new Error('timeout refused') }
    s.n += 1000
    if (s.period > 0) ctx.timeout(s.period)
  }
}
const plain = defineAgent({ type: 'plain', ...timed })
const idler = defineAgent({ type: 'idler', idleTicks: 5, ...timed })
const scratch = defineAgent({ type: 'scratch', durable: false, idleTicks: 3, ...timed })
/** One message per ~forever: a timer turn that counted as a message would be refused. */
const throttled = defineAgent({ type: 'throttled', rateLimit: { perSecond: 1e-9, burst: 1 }, ...timed })
const noTimeout = defineAgent({ type: 'noTimeout', initial: () => ({}), commands: { arm (_s, ticks: number, ctx) { ctx.timeout(ticks) }, idle (_s, ticks: unknown, ctx) { ctx.idleAfter(ticks as number) } } })

interface Harness {
  rt: ShardRuntime
  registry: AgentRegistry
  replies: Array<{ callId: number, ok: boolean, value: unknown }>
  sends: Array<{ id: string, payload: unknown }>
  errors: Array<{ id: string, method: string, code: string }>
  /** A command or query, as the loop would run it: deliver, then close the batch. */
  msg: (type: string, key: string, method: string, payload?: unknown) => void
  call: (type: string, key: string, method: string, payload?: unknown) => unknown
  /** Advance to `to` as the loop would: passes of at most `budget` expiries, each followed by a commit. */
  advance: (to: number, budget?: number) => number
  resident: (type: string, key: string) => boolean
}

function setup (store: Store | null = new MemoryStore()): Harness {
  const registry = new AgentRegistry([plain, idler, scratch, noTimeout, throttled])
  const h: Harness = {
    rt: null as unknown as ShardRuntime,
    registry,
    replies: [],
    sends: [],
    errors: [],
    msg: (type, key, method, payload) => { h.rt.deliver(env(MSG_CAST, type, key, method, payload)); h.rt.commit() },
    call: (type, key, method, payload) => {
      const id = ++callIds
      h.rt.deliver(env(MSG_CALL, type, key, method, payload, id))
      h.rt.commit()
      const r = h.replies.find((x) => x.callId === id)
      assert.ok(r !== undefined, `reply to ${method}`)
      if (!r.ok) throw Object.assign(new Error(String(r.value)), { code: r.value })
      return r.value
    },
    advance: (to, budget = Infinity) => {
      let passes = 0
      for (;;) {
        passes++
        const done = h.rt.advanceTo(to, budget)
        h.rt.commit()
        if (done) return passes
      }
    },
    resident: (type, key) => {
      const id = idString('default', type, key)
      return h.rt.table.get(id, hashId(id)) !== undefined
    }
  }
  let callIds = 0
  const output: RuntimeOutput = {
    reply: (_to, callId, ok, value) => h.replies.push({ callId, ok, value: ok ? value : (value as WireError).code }),
    send: (id, _hash, _t, _m, payload) => h.sends.push({ id, payload }),
    wake: () => {},
    agentError: (id, method, e) => h.errors.push({ id, method, code: e.code })
  }
  const env = (kind: number, type: string, key: string, method: string, payload: unknown, callId = 0): Envelope => {
    const info = registry.require(type)
    const e = new Envelope()
    e.kind = kind; e.id = idString('default', type, key); e.hash = hashId(e.id)
    e.typeIdx = info.index; e.methodIdx = registry.method(info, method).index; e.payload = payload
    e.replyTo = 0; e.callId = callId
    return e
  }
  h.rt = new ShardRuntime({ registry, store, codec: simCodec, output })
  fired = []
  return h
}

test('ctx.timeout runs timeout(state, ctx) as a command exactly at its tick; its state change is committed', () => {
  const h = setup()
  h.advance(10)
  h.msg('plain', 'a', 'set', { timeout: 7 })
  h.advance(16)
  assert.deepEqual(fired, [])
  h.advance(17)
  assert.deepEqual(fired, [['a', 17]])
  assert.equal(h.call('plain', 'a', 'get'), 1001)
  // committed: a rollback (drop + reload) keeps it
  h.msg('plain', 'a', 'fail')
  assert.equal(h.call('plain', 'a', 'get'), 1001)
  h.advance(1_000)
  assert.equal(fired.length, 1, 'a timer fires once')
  assert.equal(h.rt.timers.size, 0)
})

test('a new ctx.timeout replaces the old; ctx.timeout(0) cancels', () => {
  const h = setup()
  h.msg('plain', 'a', 'set', { timeout: 50 })
  h.msg('plain', 'a', 'set', { timeout: 5 })
  h.msg('plain', 'b', 'set', { timeout: 5 })
  h.msg('plain', 'b', 'set', { timeout: 30 })
  h.msg('plain', 'c', 'set', { timeout: 5 })
  h.msg('plain', 'c', 'set', { timeout: 0 })
  h.advance(100)
  assert.deepEqual(fired.sort(), [['a', 5], ['b', 30]])
})

test('one advance over many ticks fires each timer at its own deadline, re-armed ones every period', () => {
  const h = setup()
  h.msg('plain', 'p', 'set', { timeout: 10, period: 10 })
  h.msg('plain', 'q', 'set', { timeout: 2 ** 20 + 3 })
  h.advance(55)
  assert.deepEqual(fired, [['p', 10], ['p', 20], ['p', 30], ['p', 40], ['p', 50]])
  assert.equal(h.rt.tick, 55)
  fired = []
  h.advance(2 ** 21)
  // p at 60, 70, … up to 2^21, and q once
  assert.equal(fired.length, Math.floor((2 ** 21 - 60) / 10) + 1 + 1)
  assert.deepEqual(fired.find(([k]) => k === 'q'), ['q', 2 ** 20 + 3])
})

test('a timeout that throws is rolled back like any command; the agent keeps serving', () => {
  const h = setup()
  h.msg('plain', 'a', 'add', 5)
  h.msg('plain', 'a', 'set', { timeout: 3, failOnTimeout: true })
  h.advance(3)
  assert.deepEqual(fired, [['a', 3]])
  assert.deepEqual(h.errors.map((e) => [e.method, e.code]), [['timeout', 'SHOAL_ERR_AGENT']])
  assert.equal(h.call('plain', 'a', 'get'), 6, 'the -100 of the failed timeout is gone')
  h.advance(100)
  assert.equal(fired.length, 1)
})

test('a timer set by a turn that throws is not armed', () => {
  const h = setup()
  h.msg('plain', 'a', 'setThenFail', 4)
  h.advance(50)
  assert.deepEqual(fired, [])
  assert.equal(h.rt.timers.size, 0)
})

test('a timeout\'s ctx.send leaves through the outbox, after its commit', async () => {
  const store = new ManualStore()
  const h = setup(store)
  // arm a timer whose turn sends: the timeout handler of `plain` does not send, so use notify from a timer-set agent
  h.msg('plain', 'a', 'set', { timeout: 2 })
  await store.completeAll()
  h.advance(2)
  assert.deepEqual(fired, [['a', 2]])
  assert.equal(h.call('plain', 'a', 'get') === undefined, false)
  // a command's send waits for the commit; the timer turn above is dirty in the same way
  h.msg('plain', 'a', 'notify', 'b')
  assert.deepEqual(h.sends, [])
  await store.completeAll()
  assert.equal(h.sends.length, 1)
})

test('idleTicks passivates after that many ticks without a message; messages restart the count', () => {
  const h = setup()
  h.msg('idler', 'a', 'add', 1) // tick 0: idle check due at 5
  h.advance(3)
  h.msg('idler', 'a', 'add', 1) // tick 3: now due at 8
  h.advance(7)
  assert.ok(h.resident('idler', 'a'))
  h.advance(8)
  assert.ok(!h.resident('idler', 'a'))
  assert.equal(h.rt.timers.size, 0)
  // durable (the memory store here): the state is back on the next message
  assert.equal(h.call('idler', 'a', 'get'), 2)
  // a type without idleTicks stays
  h.msg('plain', 'b', 'add', 1)
  h.advance(10_000)
  assert.ok(h.resident('plain', 'b'))
})

test('idle passivation commits first: a dirty agent goes once its batch has committed', async () => {
  const store = new ManualStore()
  const h = setup(store)
  h.msg('idler', 'a', 'set', { timeout: 5 }) // the timer turn at 5 makes it dirty; idle from 5 + 1 on
  await store.completeAll()
  h.rt.advanceTo(5, Infinity)
  h.rt.advanceTo(6, Infinity) // idle check: lastTick 0 + 5 ≤ 6, but the timeout turn is not committed
  assert.ok(h.resident('idler', 'a'), 'stays until its state is committed')
  h.rt.commit()
  assert.ok(!h.resident('idler', 'a'))
  await store.completeAll()
  assert.equal(h.call('idler', 'a', 'get'), 1001)
})

test('a memory-only type (durable: false) loses its state on idle passivation', () => {
  const h = setup()
  h.msg('scratch', 's', 'add', 9)
  h.advance(3)
  assert.ok(!h.resident('scratch', 's'))
  assert.equal(h.call('scratch', 's', 'get'), 0)
})

test('ctx.idleAfter overrides idleTicks for the activation; 0 means never; it works on types without idleTicks', () => {
  const h = setup()
  h.msg('idler', 'long', 'set', { idle: 50 })
  h.msg('idler', 'never', 'set', { idle: 0 })
  h.msg('idler', 'short', 'set', { idle: 2 })
  h.msg('plain', 'p', 'set', { idle: 4 })
  h.advance(2)
  assert.deepEqual(['long', 'never', 'short'].map((k) => h.resident('idler', k)), [true, true, false])
  h.advance(4)
  assert.ok(!h.resident('plain', 'p'))
  h.advance(49)
  assert.ok(h.resident('idler', 'long'))
  h.advance(50)
  assert.ok(!h.resident('idler', 'long'))
  h.advance(1_000_000)
  assert.ok(h.resident('idler', 'never'))
  // a new activation is back to the type's idleTicks
  h.msg('idler', 'long', 'add', 1)
  h.advance(1_000_005)
  assert.ok(!h.resident('idler', 'long'))
})

test('a pending timeout defers idle passivation; timer turns do not count as messages', () => {
  const h = setup()
  h.msg('idler', 'a', 'set', { timeout: 20 }) // idleTicks 5, but a timer is pending
  h.advance(19)
  assert.ok(h.resident('idler', 'a'))
  h.advance(20)
  assert.deepEqual(fired, [['a', 20]])
  assert.ok(h.resident('idler', 'a'), 'not in the tick of its own timer turn')
  h.advance(21)
  assert.ok(!h.resident('idler', 'a'), 'idle since tick 0: passivated on the next tick')
  // a periodic timer keeps re-arming, so the agent stays; when it stops, the agent goes
  fired = []
  h.msg('idler', 'b', 'set', { timeout: 3, period: 3 })
  h.advance(40)
  assert.ok(h.resident('idler', 'b'))
  h.msg('idler', 'b', 'set', { period: 0 })
  const last = fired.at(-1)![1]
  h.advance(last + 3)
  assert.ok(h.resident('idler', 'b'), 'one more timer, then idleness resumes')
  h.advance(last + 3 + 5)
  assert.ok(!h.resident('idler', 'b'))
})

test('passivation and ctx.delete end the agent\'s timers', () => {
  const h = setup()
  h.msg('plain', 'a', 'set', { timeout: 10, idle: 3 })
  h.msg('idler', 'b', 'set', { timeout: 10 })
  h.advance(3)
  assert.ok(h.resident('plain', 'a'), 'the timeout defers idleness')
  // explicit passivation of a (bye isn't defined here: use idleAfter 1 with no timer) and deletion of b
  h.msg('plain', 'a', 'set', { timeout: 0, idle: 1 })
  h.advance(4)
  assert.ok(!h.resident('plain', 'a'))
  h.advance(100)
  assert.deepEqual(fired, [['b', 10]])
  assert.ok(!h.resident('idler', 'b'))
  assert.equal(h.rt.timers.size, 0)
})

test('a rollback does not lose the armed timeout: the next activation adopts it, or the timer activates the agent', () => {
  const h = setup()
  h.msg('plain', 'a', 'set', { timeout: 10, idle: 40 })
  h.msg('plain', 'b', 'set', { timeout: 10 })
  h.msg('plain', 'a', 'fail') // drops a: rolled back to its committed state
  h.msg('plain', 'b', 'fail')
  assert.ok(!h.resident('plain', 'a'))
  h.msg('plain', 'a', 'add', 1) // reactivates a: adopts the timer and the idle period
  h.advance(10)
  assert.deepEqual(fired.sort(), [['a', 10], ['b', 10]], 'each fires once')
  assert.ok(h.resident('plain', 'b'), 'the timer activated b')
  assert.equal(h.call('plain', 'b', 'get'), 1001)
  assert.equal(h.call('plain', 'a', 'get'), 1002) // a message at tick 10: idle until 10 + 40
  h.advance(49)
  assert.ok(h.resident('plain', 'a'))
  h.advance(50)
  assert.ok(!h.resident('plain', 'a'), 'the adopted idleAfter(40) still applies')
})

test('a busy agent\'s timeout waits in its mailbox; an idle check never passivates it mid-turn', async () => {
  const h = setup()
  let open!: () => void
  gate = { promise: new Promise<void>((resolve) => { open = resolve }), open: () => open() }
  h.msg('idler', 'a', 'set', { timeout: 2 })
  h.msg('idler', 'a', 'slow', 'x')
  h.advance(2)
  assert.deepEqual(fired, [], 'queued behind the async turn')
  h.advance(30)
  assert.ok(h.resident('idler', 'a'))
  gate.open()
  for (let i = 0; i < 5; i++) await Promise.resolve()
  h.rt.commit()
  assert.deepEqual(fired, [['a', 30]], 'ran after the turn, at the tick it got its chance')
  assert.deepEqual(h.call('idler', 'a', 'log'), ['start x', 'end x', 'timeout@30'])
  h.advance(36)
  assert.ok(!h.resident('idler', 'a'))
})

test('a big expiry is spread over passes by the budget; each timer fires once', () => {
  const h = setup()
  for (let i = 0; i < 1_000; i++) h.msg('plain', `k${i}`, 'set', { timeout: 7 })
  for (let i = 0; i < 500; i++) h.msg('plain', `m${i}`, 'set', { timeout: 8 })
  const passes = h.advance(20, 100)
  assert.ok(passes >= 15, `${passes} passes`)
  assert.equal(fired.length, 1_500)
  assert.equal(new Set(fired.map(([k]) => k)).size, 1_500)
  assert.ok(fired.every(([k, t]) => t === (k.startsWith('k') ? 7 : 8)))
  assert.ok(h.rt.timers.caughtUp)
})

test('timer turns are not messages: a rate limit does not refuse them', () => {
  const h = setup()
  h.msg('throttled', 't', 'set', { timeout: 2, period: 2 }) // takes the one token
  h.msg('throttled', 't', 'add', 1)
  assert.deepEqual(h.errors.map((e) => e.code), ['SHOAL_ERR_RATE_LIMITED'])
  h.advance(6)
  assert.deepEqual(fired, [['t', 2], ['t', 4], ['t', 6]])
})

test('bad ctx.timeout / ctx.idleAfter arguments are InvalidArgumentError inside the handler', () => {
  const h = setup()
  for (const bad of [-1, 1.5, '3', null, Number.NaN, 2 ** 41]) {
    h.msg('plain', 'a', 'set', { timeout: bad })
    h.msg('plain', 'a', 'set', { idle: bad })
  }
  assert.deepEqual(h.errors.map((e) => e.code), Array(12).fill('SHOAL_ERR_AGENT'))
  // the AgentError carries the original error's code
  h.errors.length = 0
  assert.throws(() => h.call('plain', 'a', 'badTimer', 3), { code: 'SHOAL_ERR_AGENT' })
  assert.throws(() => h.call('noTimeout', 'x', 'arm', 3), { code: 'SHOAL_ERR_AGENT' })
  assert.doesNotThrow(() => h.call('noTimeout', 'x', 'arm', 0), 'cancelling needs no handler')
  assert.equal(h.rt.timers.size, 0)
})

/** Seeded random model: agents, messages, timers, idle periods, rollbacks, jumps of time. */
test('matches a tick-by-tick model on seeded random schedules', () => {
  // totals over every seed, to prove the schedules reach what they are meant to
  const seen = { fired: 0, passivated: 0, timerActivations: 0, adoptions: 0, rollbacks: 0 }
  for (let seed = 1; seed <= 60; seed++) {
    const rand = prng(seed)
    const h = setup()
    // keys differ per type: `fired` records keys only
    const keysOf = { plain: ['a', 'b', 'c', 'd', 'e'], idler: ['A', 'B', 'C', 'D', 'E'] }
    const types = ['plain', 'idler'] as const
    const typeIdle = { plain: 0, idler: 5 }
    interface M { resident: boolean, lastTick: number, timeoutAt: number, idle: number | undefined, period: number, lastFire: number }
    const model = new Map<string, M>()
    const expected: Array<[string, number]> = []
    let now = 0
    const m = (type: string, key: string): M => {
      const id = `${type}/${key}`
      let x = model.get(id)
      if (x === undefined) model.set(id, x = { resident: false, lastTick: 0, timeoutAt: -1, idle: undefined, period: 0, lastFire: -1 })
      return x
    }
    const activate = (x: M, tick: number): void => {
      if (x.resident) return
      x.resident = true
      x.lastTick = tick
      x.lastFire = -1
    }
    for (let step = 0; step < 120; step++) {
      const type = types[between(rand, 0, 1)]!
      const key = keysOf[type][between(rand, 0, 4)]!
      const x = m(type, key)
      const r = rand()
      if (r < 0.45) {
        const p: { timeout?: number, idle?: number, period?: number } = {}
        if (rand() < 0.6) p.timeout = rand() < 0.15 ? 0 : between(rand, 1, rand() < 0.8 ? 12 : 3_000)
        if (rand() < 0.3) p.idle = between(rand, 0, 9)
        if (rand() < 0.3) p.period = rand() < 0.5 ? 0 : between(rand, 1, 6)
        h.msg(type, key, 'set', p)
        if (!x.resident && x.timeoutAt !== -1) seen.adoptions++
        activate(x, now)
        x.lastTick = now
        if (p.period !== undefined) x.period = p.period
        if (p.idle !== undefined) x.idle = p.idle
        if (p.timeout !== undefined) x.timeoutAt = p.timeout === 0 ? -1 : now + p.timeout
      } else if (r < 0.55) {
        h.msg(type, key, 'fail')
        seen.rollbacks++
        activate(x, now)
        x.resident = false // rolled back: dropped; an armed timeout and its idle period carry over
        if (x.timeoutAt === -1) x.idle = undefined
      } else {
        const to = now + (rand() < 0.85 ? between(rand, 0, 8) : between(rand, 0, 400))
        for (let t = now + 1; t <= to; t++) {
          for (const [id, y] of model) {
            const [ty, k] = id.split('/') as [keyof typeof typeIdle, string]
            if (y.timeoutAt === t) {
              if (!y.resident) seen.timerActivations++
              activate(y, t) // a rolled-back agent's timer activates it
              expected.push([k, t])
              seen.fired++
              y.timeoutAt = y.period > 0 ? t + y.period : -1
              y.lastFire = t
            }
            const idle = y.idle ?? typeIdle[ty]
            if (y.resident && y.timeoutAt === -1 && idle > 0 && t >= y.lastTick + idle && t > y.lastFire) {
              y.resident = false
              y.timeoutAt = -1
              y.idle = undefined
              seen.passivated++
            }
          }
        }
        h.advance(to, between(rand, 1, 4))
        now = to
        const sort = (a: Array<[string, number]>): string[] => a.map(([k, t]) => `${t}:${k}`).sort()
        assert.deepEqual(sort(fired), sort(expected), `seed ${seed} step ${step}: firings`)
        for (const [id, y] of model) {
          const [ty, k] = id.split('/') as [string, string]
          assert.equal(h.resident(ty, k), y.resident, `seed ${seed} step ${step}: ${id} resident`)
        }
      }
    }
  }
  assert.ok(seen.fired > 1_000 && seen.passivated > 300 && seen.timerActivations > 20 && seen.adoptions > 20, JSON.stringify(seen))
})
