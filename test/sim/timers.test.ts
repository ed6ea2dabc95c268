/**
 * Time in a simulation: ctx.timeout, idle passivation and reminders fire on the virtual
 * clock, as steps of their own that interleave with the messages.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import type { AgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import { explore, simulate } from '../../native-free-core/index.ts'
import type { TraceEntry } from '../../native-free-core/index.ts'

const lease = defineAgent({
  type: 'lease',
  initial: () => ({ held: false, expired: 0 }),
  commands: {
    grant (s, ticks: number, ctx) { s.held = true; ctx.timeout(ticks) },
    use (s) { return s.held }
  },
  timeout (s) { s.held = false; s.expired++ }
})
const at = { type: 'lease', key: 'l' }
const kinds = (trace: readonly TraceEntry[]): string[] => trace.map((e) => e.kind)

test('ctx.timeout fires its turn on the tick it is due, and the turn commits', async () => {
  for (let seed = 1; seed <= 8; seed++) {
    const world = await simulate({ agents: [lease], messages: [{ to: at, method: 'grant', payload: 2 }], ticks: 4, seed })
    const granted = world.trace.find((e) => e.kind === 'deliver')!
    const timer = world.trace.find((e) => e.kind === 'timer')
    if (granted.tick + 2 > 4) { assert.equal(timer, undefined); continue }
    assert.ok(timer !== undefined && timer.kind === 'timer', world.print())
    assert.equal(timer.tick, granted.tick + 2)
    assert.equal(timer.agent, 'lease/l')
    assert.equal(timer.reminder, null)
    assert.deepEqual(world.state(at), { held: false, expired: 1 })
    assert.deepEqual(kinds(world.trace.filter((e) => e.step === timer.step)), ['timer', 'commit'])
    const again = await simulate({ agents: [lease], messages: [{ to: at, method: 'grant', payload: 2 }], ticks: 4, seed })
    assert.deepEqual(again.trace, world.trace)
  }
})

test('a timer firing interleaves with messages: explore finds the run where the lease expires before use', async () => {
  const messages = [{ to: at, method: 'grant', payload: 1, client: 'c' }, { to: at, method: 'use', client: 'c' }]
  const result = await explore({
    agents: [lease],
    messages,
    ticks: 2,
    invariant: (w) => w.replies[1] === undefined || (w.replies[1].ok && w.replies[1].value === true)
  })
  assert.equal(result.ok, false)
  if (result.ok) return
  const order = result.trace.filter((e) => e.kind === 'timer' || e.kind === 'deliver').map((e) => e.kind === 'deliver' ? e.method : 'timer')
  assert.deepEqual(order, ['grant', 'timer', 'use'], result.printout)
  assert.match(result.printout, /timer {5}lease\/l: timeout/)
})

test('idleTicks passivates: a durable agent keeps its committed state, a durable: false one loses it', async () => {
  const make = (durable: boolean): AgentDefinition => defineAgent({ type: 'idle', durable, idleTicks: 1, initial: () => ({ n: 0 }), commands: { add (s: { n: number }) { s.n++ } } })
  for (const durable of [true, false]) {
    const world = await simulate({ agents: [make(durable)], messages: [{ to: { type: 'idle', key: 'i' }, method: 'add' }], ticks: 2 })
    assert.ok(world.trace.some((e) => e.kind === 'passivate' && e.agent === 'idle/i'), world.print())
    assert.deepEqual(world.state({ type: 'idle', key: 'i' }), { n: durable ? 1 : 0 })
  }
})

test('reminders fire at their virtual wall time (tick × tickMs), periodic ones every period', async () => {
  const alarm = defineAgent({
    type: 'alarm',
    initial: () => ({ rang: [] as Array<[string, number]> }),
    commands: { set (_s, _p, ctx) { ctx.remind('once', 1500); ctx.remind('tick', 1000, { every: 1000 }) } },
    reminder (s, name: string, ctx) { s.rang.push([name, ctx.tick]) }
  })
  for (let seed = 1; seed <= 4; seed++) {
    const world = await simulate({ agents: [alarm], messages: [{ to: { type: 'alarm', key: 'a' }, method: 'set' }], ticks: 4, tickMs: 1000, seed })
    const set = world.trace.find((e) => e.kind === 'deliver')!.tick // set at t: 'once' due t × 1000 + 1500, 'tick' every 1000 from (t + 1) × 1000
    const expected: Array<[string, number]> = []
    if (set + 2 <= 4) expected.push(['once', set + 2])
    for (let t = set + 1; t <= 4; t++) expected.push(['tick', t])
    const rang = world.state<{ rang: Array<[string, number]> }>({ type: 'alarm', key: 'a' }).rang
    assert.deepEqual([...rang].sort(), expected.sort(), world.print())
  }
  // and explore covers them, every ordering of the firings with a message
  const result = await explore({
    agents: [alarm],
    messages: [{ to: { type: 'alarm', key: 'a' }, method: 'set' }],
    ticks: 3,
    invariant: (w) => w.state<{ rang: unknown[] }>({ type: 'alarm', key: 'a' }).rang.length <= 4
  })
  assert.equal(result.ok, true, result.printout)
  assert.equal(result.exhaustive, true)
})

test('turns of types with timers are not crashed (what they arm would outlive the rollback)', async () => {
  const world = await simulate({ agents: [lease], messages: [{ to: at, method: 'grant', payload: 1 }], ticks: 2, faults: { crash: 1 } })
  assert.ok(!world.trace.some((e) => e.kind === 'crash'))
  assert.deepEqual(world.state(at), { held: false, expired: 1 })
})
