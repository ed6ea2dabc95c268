/**
 * What a host gives a handler works in simulation the same way: async handlers with
 * ctx.offload, ctx.storage (committed with the turn, rolled back by a crash), queries
 * (never committed), a throwing handler (rolled back, AgentError), msgpack values.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { explore, simulate } from '../../native-free-core/index.ts'

const shop = defineAgent({
  type: 'shop',
  initial: () => ({ orders: 0, tags: new Map<string, number>() }),
  commands: {
    async price (s, item: string, ctx) {
      const p = await ctx.offload<number>('price', item)
      s.orders++
      ctx.storage.put(`order/${s.orders}`, { item, p })
      return p
    },
    tag (s, t: string) { s.tags.set(t, 1) },
    broken (s) { s.orders = 999; throw new RangeError('out of stock') }
  },
  queries: { orders (s) { return s.orders } }
})
const at = { type: 'shop', key: 's' }
const offload = { price: (item: unknown) => String(item).length * 10 }

test('an async handler awaiting ctx.offload runs to completion inside the step, deterministically', async () => {
  const messages = [{ to: at, method: 'price', payload: 'apple' }, { to: at, method: 'price', payload: 'fig' }]
  const a = await simulate({ agents: [shop], messages, offload, seed: 4 })
  const b = await simulate({ agents: [shop], messages, offload, seed: 4 })
  assert.deepEqual(b.trace, a.trace)
  assert.deepEqual(a.replies.map((r) => r?.ok === true && r.value).sort(), [30, 50])
  assert.equal(a.state<{ orders: number }>(at).orders, 2)
  assert.equal(a.steps, 2)
})

test('ctx.storage is committed with the turn and rolled back by a crash', async () => {
  const messages = [{ to: at, method: 'price', payload: 'apple' }]
  const ok = await simulate({ agents: [shop], messages, offload })
  assert.deepEqual(ok.storage(at), [['order/1', { item: 'apple', p: 50 }]])
  const crashed = await simulate({ agents: [shop], messages, offload, faults: { crash: 0.5 }, replay: 'shoal-sim/1;faults=inf;1' })
  assert.ok(crashed.trace.some((e) => e.kind === 'crash'))
  assert.deepEqual(crashed.storage(at), [])
  assert.equal(crashed.state<{ orders: number }>(at).orders, 0)
})

test('states go through msgpack as on a host: a Map comes back as a plain object', async () => {
  const world = await simulate({ agents: [shop], messages: [{ to: at, method: 'tag', payload: 'red' }] })
  const tags = world.state<{ tags: unknown }>(at).tags
  assert.ok(!(tags instanceof Map))
  assert.deepEqual(tags, { red: 1 })
})

test('a throwing handler is rolled back and answered with AgentError; a query commits nothing', async () => {
  const world = await simulate({
    agents: [shop],
    messages: [{ to: at, method: 'broken', client: 'c' }, { to: at, method: 'orders', client: 'c' }]
  })
  const [broken, orders] = world.replies
  assert.equal(broken?.ok === false && broken.error.code, 'SHOAL_ERR_AGENT')
  assert.equal(broken?.ok === false && broken.error.message, 'out of stock')
  assert.deepEqual(orders, { ok: true, value: 0 })
  assert.equal(world.trace.filter((e) => e.kind === 'commit').length, 0)
  assert.deepEqual(world.agents(), [])
})

test('a durable: false agent has no commit: its state is read from its cell', async () => {
  const scratch = defineAgent({ type: 'scratch', durable: false, initial: () => ({ n: 0 }), commands: { add (s, by: number) { s.n += by } } })
  const world = await simulate({ agents: [scratch], messages: [{ to: { type: 'scratch', key: 'x' }, method: 'add', payload: 2 }], faults: { crash: 1 } })
  assert.deepEqual(world.state({ type: 'scratch', key: 'x' }), { n: 2 })
  assert.ok(!world.trace.some((e) => e.kind === 'crash' || e.kind === 'commit'), 'nothing to commit, so nothing to crash')
  assert.deepEqual(world.agents(), [{ quota: 'default', type: 'scratch', key: 'x' }])
})

test('the agents module a host loads can be given as it is (its namespace)', async () => {
  const agents = await import('../fixtures/agents.ts')
  const world = await simulate({ agents, messages: [{ to: { type: 'counter', key: 'c' }, method: 'add', payload: 5 }] })
  assert.deepEqual(world.replies[0], { ok: true, value: 5 })
  assert.deepEqual(world.state({ type: 'counter', key: 'c' }), { n: 5 })
})

test('rate limits run on virtual time: a tick refills the bucket, wall time never does', async () => {
  const api = defineAgent({ type: 'api', rateLimit: { perSecond: 1, burst: 2 }, initial: () => ({ n: 0 }), commands: { hit (s) { return ++s.n } } })
  const hits = [1, 2, 3].map(() => ({ to: { type: 'api', key: 'k' }, method: 'hit', client: 'c' }))
  const codes = (w: { replies: ReadonlyArray<{ ok: boolean, error?: { code: string } } | undefined> }): string[] => w.replies.map((r) => (r?.ok === true ? 'ok' : r?.error?.code ?? 'none'))
  const sameTick = await simulate({ agents: [api], messages: hits })
  assert.deepEqual(codes(sameTick), ['ok', 'ok', 'SHOAL_ERR_RATE_LIMITED'])
  // the clock may move between the hits: some ordering refills the bucket in time
  const result = await explore({
    agents: [api],
    messages: hits,
    ticks: 1,
    invariant: (w) => !w.idle || w.replies.some((r) => r?.ok === false)
  })
  assert.equal(result.ok, false, 'a run where all three get through')
  assert.equal(result.ok === false && result.trace.filter((e) => e.kind === 'tick').length, 1)
})

test('quotas: a scenario names the quotas that exist and their limits', async () => {
  const item = defineAgent({ type: 'item', initial: () => ({}), commands: { make () { return true } } })
  const make = (quota: string, key: string): { to: { type: string, key: string, quota: string }, method: string, client: string } => ({ to: { type: 'item', key, quota }, method: 'make', client: 'c' })
  for (let seed = 1; seed <= 4; seed++) {
    const world = await simulate({ agents: [item], messages: [make('tenant-a', 'x'), make('tenant-a', 'y'), make('nope', 'z')], quotas: { 'tenant-a': 1 }, seed })
    const codes = world.replies.map((r) => (r?.ok === true ? 'ok' : r?.error.code))
    assert.deepEqual(codes.slice(0, 2).sort(), ['SHOAL_ERR_QUOTA_EXCEEDED', 'ok'], 'one of the two new agents fits')
    assert.equal(codes[2], 'SHOAL_ERR_UNKNOWN_QUOTA')
  }
  await assert.rejects(simulate({ agents: [item], messages: [], quotas: { 'tenant-a': -1 } }), { code: 'SHOAL_ERR_INVALID_OPTION' })
  await assert.rejects(simulate({ agents: [item], messages: [], tickMs: 0 }), { code: 'SHOAL_ERR_INVALID_OPTION' })
})
