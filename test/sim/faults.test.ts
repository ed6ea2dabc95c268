/**
 * Each fault does what faults.ts says, and nothing else: FIFO channels by default, a
 * reorder or a delay lets a send be overtaken, a dropped durable send comes back from
 * the outbox, a dropped volatile one is gone, the clock interleaves with messages.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { explore, simulate } from '../../native-free-core/index.ts'
import type { TraceEntry, WorldView } from '../../native-free-core/index.ts'

function producerOf (durable: boolean): ReturnType<typeof defineAgent<Record<string, never>, { emit (s: Record<string, never>, n: number, ctx: any): void }, {}>> {
  return defineAgent({
    type: 'producer',
    durable,
    initial: () => ({}),
    commands: { emit (_s, n: number, ctx) { for (let i = 1; i <= n; i++) ctx.send({ type: 'log', key: 'l' }, 'record', i) } }
  })
}
const producer = producerOf(true)
const log = defineAgent({
  type: 'log',
  initial: () => ({ seen: [] as number[], ticks: [] as number[] }),
  commands: { record (s, n: number, ctx) { s.seen.push(n); s.ticks.push(ctx.tick) } }
})
const seen = (w: WorldView): number[] => w.state<{ seen: number[] }>({ type: 'log', key: 'l' }).seen
const inOrder = (w: WorldView): void => {
  const s = seen(w)
  for (let i = 1; i < s.length; i++) if (s[i]! < s[i - 1]!) throw new Error(`out of order: ${s.join(',')}`)
}
const emit = (n: number, client?: string): { to: { type: string, key: string }, method: string, payload: number, client?: string } =>
  ({ to: { type: 'producer', key: 'p' }, method: 'emit', payload: n, ...(client === undefined ? {} : { client }) })
const entries = <K extends TraceEntry['kind']>(trace: readonly TraceEntry[], kind: K): Array<Extract<TraceEntry, { kind: K }>> =>
  trace.filter((e): e is Extract<TraceEntry, { kind: K }> => e.kind === kind)

test('sends from one agent to another arrive in order: every ordering keeps them FIFO', async () => {
  const result = await explore({ agents: [producer, log], messages: [emit(4)], invariant: inOrder })
  assert.equal(result.ok, true, result.printout)
  assert.equal(result.exhaustive, true)
})

test('reorder lets a later send overtake an earlier one, and explore finds it', async () => {
  const result = await explore({ agents: [producer, log], messages: [emit(3)], invariant: inOrder, faults: { reorder: 0.2 } })
  assert.equal(result.ok, false)
  if (result.ok) return
  assert.ok(entries(result.trace, 'reorder').length >= 1, result.printout)
  assert.match(result.error, /out of order/)
})

test('the scenario messages of one client stay in order; of different clients, not', async () => {
  // emit(1) records 1; emit(2) records 1, 2: in client order the log reads 1, 1, 2
  const prefix = (w: WorldView): boolean => seen(w).every((v, i) => v === [1, 1, 2][i])
  const ordered = await explore({ agents: [producer, log], messages: [emit(1, 'c'), emit(2, 'c')], invariant: prefix })
  assert.equal(ordered.ok, true, ordered.printout)
  assert.equal(ordered.exhaustive, true)
  const concurrent = await explore({ agents: [producer, log], messages: [emit(1), emit(2)], invariant: prefix })
  assert.equal(concurrent.ok, false)
})

test('delay holds a send back for 1..maxDelay ticks: it is delivered at or after its tick, overtaken meanwhile', async () => {
  let delays = 0
  for (let seed = 1; seed <= 10; seed++) {
    const world = await simulate({ agents: [producer, log], messages: [emit(3)], seed, faults: { delay: 0.5, maxDelay: 2 } })
    for (const d of entries(world.trace, 'delay')) {
      delays++
      assert.ok(d.until >= d.tick + 1 && d.until <= d.tick + 2)
      const delivered = entries(world.trace, 'deliver').find((e) => e.msg === d.msg)
      assert.ok(delivered !== undefined && delivered.tick >= d.until, `seed ${seed}: #${d.msg} delivered at ${delivered?.tick}, delayed until ${d.until}`)
    }
    assert.equal(seen(world).length, 3, 'nothing lost')
  }
  assert.ok(delays > 5)
})

test('a dropped durable send comes back from the outbox; a dropped send of a durable: false agent is gone', async () => {
  let durableDrops = 0
  let volatileDrops = 0
  for (let seed = 1; seed <= 30; seed++) {
    for (const durable of [true, false]) {
      const world = await simulate({ agents: [producerOf(durable), log], messages: [emit(3)], seed, faults: { drop: 0.5 } })
      const clientMsgs = new Set(entries(world.trace, 'deliver').filter((e) => e.from.startsWith('client')).map((e) => e.msg))
      if (entries(world.trace, 'drop').some((d) => d.msg === 1)) continue // the client's emit itself was lost
      const sendDrops = entries(world.trace, 'drop').filter((d) => !clientMsgs.has(d.msg))
      for (const d of sendDrops) {
        const deliveries = entries(world.trace, 'deliver').filter((e) => e.msg === d.msg)
        if (durable) {
          durableDrops++
          assert.equal(d.until, d.tick + 1)
          assert.equal(deliveries.length, 1, `seed ${seed}: #${d.msg} delivered again, once`)
          assert.ok(deliveries[0]!.tick >= d.until!)
        } else {
          volatileDrops++
          assert.equal(d.until, null)
          assert.equal(deliveries.length, 0)
        }
      }
      assert.equal(seen(world).length, durable ? 3 : 3 - sendDrops.length)
    }
  }
  assert.ok(durableDrops > 5 && volatileDrops > 5, `${durableDrops} durable, ${volatileDrops} volatile drops`)
})

test("a client's message can be lost: its call never gets a reply", async () => {
  const world = await simulate({ agents: [producer, log], messages: [emit(1)], faults: { drop: 1 } })
  assert.deepEqual(world.trace.map((e) => e.kind), ['drop'])
  assert.equal(world.replies[0], undefined)
  assert.equal(world.idle, true)
})

test('faults.max caps the faults of a run', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const none = await simulate({ agents: [producer, log], messages: [emit(3), emit(2)], seed, faults: { drop: 0.5, duplicate: 0.5, max: 0 } })
    assert.equal(entries(none.trace, 'drop').length + entries(none.trace, 'duplicate').length, 0)
    const one = await simulate({ agents: [producer, log], messages: [emit(3), emit(2)], seed, faults: { drop: 0.5, duplicate: 0.5, max: 1 } })
    assert.ok(entries(one.trace, 'drop').length + entries(one.trace, 'duplicate').length <= 1)
  }
})

test('the clock runs to `ticks`, interleaved with messages: ctx.tick sees it move', async () => {
  const world = await simulate({ agents: [producer, log], messages: [emit(3)], seed: 3, ticks: 3 })
  assert.equal(world.tick, 3)
  assert.equal(entries(world.trace, 'tick').length, 3)
  // some ordering delivers a record after the clock moved: explore finds it
  const result = await explore({
    agents: [producer, log],
    messages: [emit(2)],
    ticks: 2,
    invariant: (w) => w.state<{ ticks: number[] }>({ type: 'log', key: 'l' }).ticks.every((t) => t === 0)
  })
  assert.equal(result.ok, false)
  if (result.ok) return
  assert.ok(entries(result.trace, 'tick').length >= 1)
})
