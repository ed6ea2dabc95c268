/**
 * Durable reminders in the shard runtime, one thread, time moved by hand: firing at
 * wall-clock times mapped onto ticks, after passivation, coalescing missed periods,
 * rollback, ctx.delete, and a "restart" — a new runtime reading the same store.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import { Envelope, MSG_CALL, MSG_CAST } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { decodeReminder, nextDue } from '../../native-free-core/time/agent-reminders.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { ephemeralReminded, reminded, unreminded } from '../fixtures/reminder-agents.ts'

const EPOCH = 1_700_000_000_000
const TICK_MS = 1000

interface Harness {
  rt: ShardRuntime
  store: MemoryStore
  errors: Array<{ id: string, method: string, code: string }>
  msg: (type: string, key: string, method: string, payload?: unknown) => void
  call: (type: string, key: string, method: string, payload?: unknown) => unknown
  advance: (to: number, budget?: number) => void
  resident: (key: string) => boolean
  /** The store's reminder records, as `key/name → [due, every]`. */
  stored: () => Record<string, [number, number]>
}

function setup (store = new MemoryStore(), epoch = EPOCH, owns: (hash: number) => boolean = () => true): Harness {
  const registry = new AgentRegistry([reminded, unreminded, ephemeralReminded])
  const replies: Array<{ callId: number, ok: boolean, value: unknown }> = []
  let callIds = 0
  const h: Harness = {
    rt: new ShardRuntime({
      registry,
      store,
      codec: simCodec,
      output: {
        reply: (_to, callId, ok, value) => replies.push({ callId, ok, value: ok ? value : (value as WireError).code }),
        send: () => {},
        wake: () => {},
        agentError: (id, method, e) => h.errors.push({ id, method, code: e.code })
      }
    }),
    store,
    errors: [],
    msg: (type, key, method, payload) => { h.rt.deliver(env(MSG_CAST, type, key, method, payload, 0)); h.rt.commit() },
    call: (type, key, method, payload) => {
      const id = ++callIds
      h.rt.deliver(env(MSG_CALL, type, key, method, payload, id))
      h.rt.commit()
      const r = replies.find((x) => x.callId === id)!
      if (!r.ok) throw Object.assign(new Error(String(r.value)), { code: r.value })
      return r.value
    },
    advance: (to, budget = Infinity) => {
      for (;;) {
        const done = h.rt.advanceTo(to, budget)
        h.rt.commit()
        if (done) return
      }
    },
    resident: (key) => {
      const id = idString('default', 'reminded', key)
      return h.rt.table.get(id, hashId(id)) !== undefined
    },
    stored: () => {
      const out: Record<string, [number, number]> = {}
      for (const [id, name, bytes] of store.reminders()) {
        const r = decodeReminder(bytes)!
        out[`${id.split('\u001f')[2]}/${name}`] = [r.due - EPOCH, r.every]
      }
      return out
    }
  }
  const env = (kind: number, type: string, key: string, method: string, payload: unknown, callId: number): Envelope => {
    const info = registry.require(type)
    const e = new Envelope()
    e.kind = kind; e.id = idString('default', type, key); e.hash = hashId(e.id)
    e.typeIdx = info.index; e.methodIdx = registry.method(info, method).index; e.payload = payload; e.callId = callId
    return e
  }
  h.rt.startReminders(epoch, TICK_MS, owns)
  return h
}

const fired = (h: Harness, key: string): Array<[string, number]> => h.call('reminded', key, 'fired') as Array<[string, number]>

test('nextDue: the first period boundary after now; missed periods coalesce; one-shot is -1', () => {
  assert.equal(nextDue(1_000, 0, 5_000), -1)
  assert.equal(nextDue(1_000, 100, 1_000), 1_100)
  assert.equal(nextDue(1_000, 100, 1_050), 1_100)
  assert.equal(nextDue(1_000, 100, 1_100), 1_200, 'a boundary equal to now has been served')
  assert.equal(nextDue(1_000, 100, 987_654), 987_700, 'nine thousand missed periods: one firing')
  assert.equal(nextDue(5_000, 100, 1_000), 5_100, 'fired early (not the case in practice): next period')
})

test('ctx.remind fires at the first tick whose wall time reaches it, as a committed command turn', () => {
  const h = setup()
  h.msg('reminded', 'a', 'remind', { name: 'r', ms: 2_500 }) // due at EPOCH + 2,500: tick 3
  assert.deepEqual(h.stored(), { 'a/r': [2_500, 0] })
  h.advance(2)
  assert.deepEqual(fired(h, 'a'), [])
  h.advance(3)
  assert.deepEqual(fired(h, 'a'), [['r', 3]])
  assert.deepEqual(h.stored(), {}, 'a one-shot reminder is removed when it fires')
  h.advance(100)
  assert.equal(fired(h, 'a').length, 1)
  assert.equal(h.rt.reminders.size, 0)
})

test('a reminder fires after passivation: it activates the agent from its committed state', () => {
  const h = setup()
  h.msg('reminded', 'p', 'remind', { name: 'wake', ms: 10_000 })
  h.advance(2)
  assert.ok(!h.resident('p'), 'idleTicks 2: passivated')
  h.advance(10)
  assert.ok(h.resident('p'), 'activated by its reminder')
  assert.deepEqual(fired(h, 'p'), [['wake', 10]])
  h.advance(14)
  assert.ok(!h.resident('p'), 'a reminder turn is not a message: idle again two ticks after the last one (the query at 10)')
})

test('a periodic reminder fires once per due tick; periods shorter than a tick coalesce', () => {
  const h = setup()
  h.msg('reminded', 'a', 'remind', { name: 'beat', ms: 1_500, every: 1_500 })
  h.msg('reminded', 'b', 'remind', { name: 'fast', ms: 100, every: 100 })
  h.advance(6)
  // due 1.5 s, 3 s, 4.5 s, 6 s → ticks 2, 3, 5, 6
  assert.deepEqual(fired(h, 'a').map(([, t]) => t), [2, 3, 5, 6])
  // ten periods per tick: once per tick, never a backlog
  assert.deepEqual(fired(h, 'b').map(([, t]) => t), [1, 2, 3, 4, 5, 6])
  const [due, every] = h.stored()['b/fast']!
  assert.equal(every, 100)
  assert.equal(due, 6_100, 'next due: the first period boundary after tick 6')
})

test('cancelReminder and replacing a name; several names per agent', () => {
  const h = setup()
  h.msg('reminded', 'a', 'remind', { name: 'x', ms: 1_000 })
  h.msg('reminded', 'a', 'remind', { name: 'y', ms: 2_000 })
  h.msg('reminded', 'a', 'remind', { name: 'z', ms: 3_000 })
  h.msg('reminded', 'a', 'cancel', 'y')
  h.msg('reminded', 'a', 'remind', { name: 'z', ms: 5_000 }) // replaces z
  h.msg('reminded', 'a', 'cancel', 'never-set')
  assert.deepEqual(h.stored(), { 'a/x': [1_000, 0], 'a/z': [5_000, 0] })
  h.advance(10)
  assert.deepEqual(fired(h, 'a'), [['x', 1], ['z', 5]])
})

test('a reminder set by a turn that throws is not stored; a reminder whose handler throws is rolled back and not retried', () => {
  const h = setup()
  h.msg('reminded', 'a', 'remindThenThrow', 'nope')
  assert.deepEqual(h.stored(), {})
  // 'odd…' reminders throw on odd ticks, after recording the firing
  h.msg('reminded', 'a', 'remind', { name: 'odd-once', ms: 1_000 })
  h.msg('reminded', 'b', 'remind', { name: 'odd-every', ms: 1_000, every: 1_000 })
  h.advance(1)
  assert.deepEqual(h.errors.map((e) => [e.method, e.code]), [['remindThenThrow', 'SHOAL_ERR_AGENT'], ['reminder', 'SHOAL_ERR_AGENT'], ['reminder', 'SHOAL_ERR_AGENT']])
  assert.deepEqual(fired(h, 'a'), [], 'the failed turn\'s state change is rolled back')
  h.advance(5)
  assert.deepEqual(fired(h, 'a'), [], 'a one-shot reminder that threw is gone')
  assert.deepEqual(fired(h, 'b').map(([, t]) => t), [2, 4], 'a periodic one goes on: its odd ticks threw and were rolled back')
})

test('ctx.delete removes the agent\'s reminders with it', () => {
  const h = setup()
  h.msg('reminded', 'a', 'remind', { name: 'x', ms: 1_000 })
  h.msg('reminded', 'a', 'remind', { name: 'y', ms: 1_000, every: 1_000 })
  h.msg('reminded', 'b', 'remind', { name: 'x', ms: 1_000 })
  h.msg('reminded', 'a', 'remove')
  assert.deepEqual(h.stored(), { 'b/x': [1_000, 0] })
  h.advance(5)
  assert.deepEqual(fired(h, 'a'), [])
  assert.deepEqual(fired(h, 'b'), [['x', 1]])
})

test('a new runtime on the same store (a restart) fires what is due once, coalesced, and keeps the rest', () => {
  const store = new MemoryStore()
  const before = setup(store)
  before.msg('reminded', 'a', 'remind', { name: 'every', ms: 100, every: 100 })
  before.msg('reminded', 'a', 'remind', { name: 'once', ms: 300 })
  before.msg('reminded', 'a', 'remind', { name: 'later', ms: 60_000 })
  before.rt.clear() // the process is gone; the store stays
  // the new process starts 30 s later: its tick 0 is EPOCH + 30 s
  const after = setup(store, EPOCH + 30_000)
  assert.equal(after.rt.reminders.size, 3)
  after.advance(1)
  assert.deepEqual(fired(after, 'a').map(([n]) => n).sort(), ['every', 'once'], 'each once, ~300 missed periods coalesced')
  after.advance(30)
  assert.equal(fired(after, 'a').filter(([n]) => n === 'every').length, 30, 'then once per tick')
  assert.deepEqual(fired(after, 'a').filter(([n]) => n === 'later'), [['later', 30]], 'due at EPOCH + 60 s: the new tick 30')
  assert.equal(fired(after, 'a').filter(([n]) => n === 'once').length, 1)
})

test('a thread loads only the reminders of the agents it owns', () => {
  const store = new MemoryStore()
  const a = setup(store)
  for (let i = 0; i < 50; i++) a.msg('reminded', `k${i}`, 'remind', { name: 'r', ms: 1_000 })
  const mine = (hash: number): boolean => (hash & 1) === 0
  const b = setup(store, EPOCH, mine)
  let expected = 0
  for (let i = 0; i < 50; i++) if (mine(hashId(idString('default', 'reminded', `k${i}`)))) expected++
  assert.ok(expected > 10 && expected < 40)
  assert.equal(b.rt.reminders.size, expected)
})

test('bad ctx.remind input is InvalidArgumentError inside the handler', () => {
  const h = setup()
  const bad: unknown[] = [
    { name: '', ms: 10 }, { name: 'x\ud800', ms: 10 }, { name: 'y'.repeat(513), ms: 10 }, { name: 7, ms: 10 },
    { name: 'n', ms: -1 }, { name: 'n', ms: Number.NaN }, { name: 'n', ms: 2 ** 41 }, { name: 'n', ms: '5' },
    { name: 'n', ms: 10, every: 0 }, { name: 'n', ms: 10, every: Infinity }
  ]
  for (const p of bad) h.msg('reminded', 'a', 'remind', p)
  h.msg('unreminded', 'u', 'remind', 'x')
  h.msg('ephemeralReminded', 'e', 'remind', 'x')
  assert.deepEqual(h.errors.map((e) => e.code), Array(bad.length + 2).fill('SHOAL_ERR_AGENT'))
  assert.deepEqual(h.stored(), {})
  assert.equal(h.rt.reminders.size, 0)
})
