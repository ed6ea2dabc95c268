/**
 * Rate limits in the shard runtime, on an injected clock the test moves by hand: excess
 * messages are refused with RateLimitedError before their handler runs (and before a
 * busy agent's mailbox), the bucket refills with time, and it survives the agent being
 * rolled back or passivated. Types without a limit never pay for one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import { Envelope, MSG_CALL, MSG_CAST } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { LimitedCell } from '../../native-free-core/tenancy/rate-limits.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'

let runs = 0
let release: (() => void) | null = null
const limited = defineAgent({
  type: 'limited',
  rateLimit: { perSecond: 10, burst: 3 },
  initial: () => ({ n: 0 }),
  commands: {
    hit (s) { runs++; s.n++; return s.n },
    boom () { runs++; throw new Error('boom') },
    bye (_s, _p, ctx) { runs++; ctx.deactivate() },
    async hold () { runs++; await new Promise<void>((resolve) => { release = resolve }) }
  },
  queries: { get (s) { runs++; return s.n } }
})
const free = defineAgent({ type: 'free', initial: () => ({ n: 0 }), commands: { hit (s) { s.n++; return s.n } } })

interface Reply { callId: number, ok: boolean, value: unknown }

function setup (types = [limited, free]): {
  rt: ShardRuntime, replies: Reply[], errors: WireError[], clock: { t: number },
  call: (type: string, key: string, method: string) => number, cast: (type: string, key: string, method: string) => void
} {
  const registry = new AgentRegistry(types)
  const replies: Reply[] = []
  const errors: WireError[] = []
  const output: RuntimeOutput = {
    reply: (_to, callId, ok, value) => replies.push({ callId, ok, value }),
    send: () => {},
    wake: () => {},
    agentError: (_id, _m, e) => errors.push(e)
  }
  const clock = { t: 1_000 }
  const rt = new ShardRuntime({ registry, store: new MemoryStore(), codec: simCodec, output, clock: { now: () => clock.t } })
  let callId = 0
  const env = (kind: number, type: string, key: string, method: string): Envelope => {
    const info = registry.require(type)
    const e = new Envelope()
    e.kind = kind; e.id = idString('default', type, key); e.hash = hashId(e.id)
    e.typeIdx = info.index; e.methodIdx = registry.method(info, method).index
    return e
  }
  return {
    rt, replies, errors, clock,
    call: (type, key, method) => { const e = env(MSG_CALL, type, key, method); e.callId = ++callId; rt.deliver(e); rt.commit(); return callId },
    cast: (type, key, method) => { rt.deliver(env(MSG_CAST, type, key, method)); rt.commit() }
  }
}

const last = (replies: Reply[]): Reply => replies.at(-1)!

test('burst messages pass; the next is refused with RateLimitedError before its handler runs', () => {
  const { replies, call, cast, errors, rt } = setup()
  runs = 0
  for (let i = 1; i <= 3; i++) {
    call('limited', 'a', 'hit')
    assert.deepEqual(last(replies), { callId: i, ok: true, value: i })
  }
  call('limited', 'a', 'hit')
  const refused = last(replies)
  assert.equal(refused.ok, false)
  const wire = refused.value as WireError & { data: { retryAfterMs: number } }
  assert.equal(wire.code, 'SHOAL_ERR_RATE_LIMITED')
  assert.equal(wire.data.retryAfterMs, 100, '10/s: one token every 100 ms')
  assert.equal(runs, 3, 'the handler did not run')
  // a refused cast has no caller: it is reported as an agent error
  cast('limited', 'a', 'hit')
  assert.deepEqual(errors.map((e) => e.code), ['SHOAL_ERR_RATE_LIMITED', 'SHOAL_ERR_RATE_LIMITED'])
  assert.equal(rt.rateLimited, 2)
  assert.equal(runs, 3)
})

test('tokens come back at perSecond, up to burst; each agent has its own bucket', () => {
  const { replies, call, clock } = setup()
  for (let i = 0; i < 3; i++) call('limited', 'a', 'hit')
  call('limited', 'a', 'hit')
  assert.equal(last(replies).ok, false)
  clock.t += 99
  call('limited', 'a', 'hit')
  assert.equal(last(replies).ok, false, '99 ms: not yet a token')
  assert.equal((last(replies).value as { data: { retryAfterMs: number } }).data.retryAfterMs, 1)
  clock.t += 1
  call('limited', 'a', 'hit')
  assert.deepEqual(last(replies), { callId: 6, ok: true, value: 4 })
  // another agent of the same type is not affected
  call('limited', 'b', 'hit')
  assert.equal(last(replies).ok, true)
  // a long pause refills to burst, never more
  clock.t += 60_000
  const before = replies.length
  for (let i = 0; i < 5; i++) call('limited', 'a', 'hit')
  assert.deepEqual(replies.slice(before).map((r) => r.ok), [true, true, true, false, false])
})

test('queries take tokens too', () => {
  const { replies, call } = setup()
  for (let i = 0; i < 3; i++) call('limited', 'a', 'get')
  call('limited', 'a', 'get')
  assert.equal((last(replies).value as WireError).code, 'SHOAL_ERR_RATE_LIMITED')
})

test('a busy agent\'s excess messages are refused at once, not queued behind it', async () => {
  const { rt, replies, call } = setup()
  runs = 0
  call('limited', 'a', 'hold') // token 1, busy
  call('limited', 'a', 'hit') // token 2, queued
  call('limited', 'a', 'hit') // token 3, queued
  call('limited', 'a', 'hit') // refused while the agent is still busy
  assert.deepEqual(replies.map((r) => [r.callId, r.ok]), [[4, false]])
  release!()
  await new Promise((resolve) => setImmediate(resolve))
  rt.commit()
  assert.deepEqual(replies.map((r) => [r.callId, r.ok]), [[4, false], [1, true], [2, true], [3, true]])
  assert.equal(runs, 3)
})

test('the bucket survives a rollback and a passivation (a throw does not refill it)', () => {
  const { rt, replies, call, clock } = setup()
  call('limited', 'a', 'hit')
  call('limited', 'a', 'boom') // rolled back: the cell is dropped
  assert.equal(rt.activeAgents, 0)
  call('limited', 'a', 'hit') // reactivated: third token
  assert.equal(last(replies).ok, true)
  call('limited', 'a', 'hit')
  assert.equal(last(replies).ok, false, 'still empty after the rollback')
  clock.t += 100
  call('limited', 'a', 'bye') // passivates with an empty bucket
  assert.equal(rt.activeAgents, 0)
  call('limited', 'a', 'hit')
  assert.equal(last(replies).ok, false, 'still empty after the passivation')
  assert.equal(rt.limits!.keptBuckets, 0, 'taken back by the new activation')
  // a full bucket is not kept: the agent comes back full anyway
  clock.t += 1_000
  call('limited', 'a', 'bye') // takes a token: kept
  assert.equal(rt.limits!.keptBuckets, 1)
  clock.t += 1_000
  const before = replies.length
  for (let i = 0; i < 4; i++) call('limited', 'a', 'hit')
  assert.deepEqual(replies.slice(before).map((r) => r.ok), [true, true, true, false], 'refilled to burst while passivated')
})

test('kept buckets are swept once they have refilled', () => {
  const { rt, call, clock } = setup()
  for (let i = 0; i < 1100; i++) call('limited', `k${i}`, 'bye') // each drops with 2 of 3 tokens
  assert.ok(rt.limits!.keptBuckets > 0)
  clock.t += 1_000 // every bucket is full again
  for (let i = 0; i < 1000; i++) call('limited', `m${i}`, 'bye') // the table passes 2048: swept
  assert.equal(rt.limits!.keptBuckets, 1000, 'only the buckets that have not refilled')
})

test('only limited types get limited cells; a registry without limits has no limiter at all', () => {
  const { rt, call } = setup()
  call('limited', 'a', 'hit')
  call('free', 'a', 'hit')
  const cells = [...rt.table.values()]
  assert.deepEqual(cells.map((c) => [rt.infoOf(c).type, c instanceof LimitedCell]).sort(), [['free', false], ['limited', true]])
  // a plain cell carries no rate-limit fields: only the cell's own (cell.ts newCell)
  assert.deepEqual(Object.keys(cells.find((c) => rt.infoOf(c).type === 'free')!).sort(),
    ['flags', 'hash', 'idRef', 'lastTick', 'state', 'timer'])
  assert.equal(setup([free]).rt.limits, null)
  const { replies, call: callFree } = setup([free])
  for (let i = 0; i < 1000; i++) callFree('free', 'a', 'hit')
  assert.ok(replies.every((r) => r.ok))
})
