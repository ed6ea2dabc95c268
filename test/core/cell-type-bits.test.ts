/**
 * A resident cell keeps its agent type as an index in the high bits of `flags`
 * (native-free-core/runtime/cell.ts, TYPE_SHIFT), not as a pointer: every write of `flags`
 * must keep those bits. Seeded random runs over several types — plain, memory-only,
 * rate-limited, with timeouts, idle passivation, async turns with queued messages,
 * rollbacks, deactivation and deletion — check after every step that each resident
 * cell's type index is its id's type, and every handler that runs is its own type's.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry, MAX_AGENT_TYPES } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/shard-runtime.ts'
import { TYPE_SHIFT, newCell, typeIndexOf, kBusy, kDirty, kSnapFresh, kDeactivate, kDelete, kDropped, kPersistent, kNew, kLimited, kCounted, kTimeoutArmed, kQueued, kDefaultQuota } from '../../native-free-core/runtime/cell.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import { Envelope, MSG_CALL } from '../../native-free-core/agent/envelope.ts'
import { idString, parseId } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { InvalidDefinitionError } from '../../native-free-core/errors.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { between, prng } from '../fixtures/prng.ts'

/** Handlers that ran for an agent of another type than their own: must stay empty. */
let wrong: string[] = []
let gate: { promise: Promise<void>, open: () => void } | null = null

interface S { n: number }

/** The same method names in every type (so the same method indexes): a wrong type would run a wrong handler, not fail to find one. */
function kind (type: string, extra: object = {}): any {
  const mine = (ctx: any, what: string): void => {
    if (ctx.id.type !== type) wrong.push(`${type}.${what} ran for a ${ctx.id.type as string}`)
  }
  return defineAgent({
    type,
    initial: (): S => ({ n: 0 }),
    commands: {
      who (s: S, _p: unknown, ctx: any) { mine(ctx, 'who'); s.n++; return type },
      arm (s: S, ticks: number, ctx: any) { mine(ctx, 'arm'); s.n++; ctx.timeout(ticks) },
      idle (s: S, ticks: number, ctx: any) { mine(ctx, 'idle'); s.n++; ctx.idleAfter(ticks) },
      bye (_s: S, _p: unknown, ctx: any) { mine(ctx, 'bye'); ctx.deactivate() },
      del (_s: S, _p: unknown, ctx: any) { mine(ctx, 'del'); ctx.delete() },
      fail (s: S, _p: unknown, ctx: any) { mine(ctx, 'fail'); s.n = -1; throw new Error('refused') },
      async slow (s: S, _p: unknown, ctx: any) { mine(ctx, 'slow'); await gate!.promise; s.n++ }
    },
    queries: { get (_s: S, _p: unknown, ctx: any) { mine(ctx, 'get'); return type } },
    timeout (s: S, ctx: any) { mine(ctx, 'timeout'); s.n += 1000 },
    ...extra
  })
}

const types = [
  kind('alpha'),
  kind('beta', { durable: false, idleTicks: 3 }),
  kind('gamma', { rateLimit: { perSecond: 2, burst: 4 } }),
  kind('delta', { idleTicks: 5 }),
  kind('epsilon', { durable: false, rateLimit: { perSecond: 1, burst: 2 }, idleTicks: 7 })
]
const METHODS = ['who', 'who', 'get', 'arm', 'idle', 'bye', 'del', 'fail', 'slow'] as const

test('the type index is kept in flags through turns, timers, rate limits, deactivation and deletion (seeded)', async () => {
  for (const seed of [1, 2, 3, 4]) {
    wrong = []
    const rand = prng(seed)
    const registry = new AgentRegistry(types)
    const replies = new Map<number, { ok: boolean, value: unknown }>()
    const output: RuntimeOutput = {
      reply: (_to, callId, ok, value) => replies.set(callId, { ok, value: ok ? value : (value as WireError).code }),
      send: () => {},
      wake: () => {},
      agentError: () => {}
    }
    let nowMs = 1_000
    const rt = new ShardRuntime({ registry, store: new MemoryStore(), codec: simCodec, output, clock: { now: () => nowMs } })
    let callIds = 0
    let tick = 0
    const deliver = (type: string, key: string, method: string, payload?: unknown): number => {
      const info = registry.require(type)
      const e = new Envelope()
      e.kind = MSG_CALL; e.id = idString('default', type, key); e.hash = hashId(e.id)
      e.typeIdx = info.index; e.methodIdx = registry.method(info, method).index; e.payload = payload
      e.replyTo = 0; e.callId = ++callIds
      rt.deliver(e)
      return e.callId
    }
    const check = (step: number): void => {
      assert.deepEqual(wrong, [], `seed ${seed} step ${step}`)
      for (const cell of rt.table.values()) {
        const type = parseId(rt.idOf(cell)).type
        assert.equal(typeIndexOf(cell), registry.require(type).index, `seed ${seed} step ${step}: ${rt.idOf(cell)}`)
        assert.equal(rt.infoOf(cell).type, type)
        assert.ok(cell.flags >= 0 && cell.flags < 2 ** 30, 'flags stay a small integer')
      }
    }
    let pending: number[] = []
    const settle = (): void => {
      for (const id of pending) {
        const r = replies.get(id)
        if (r === undefined) continue // a busy agent's queued message, or a slow turn
        if (r.ok && typeof r.value === 'string') assert.ok(registry.get(r.value) !== undefined)
      }
      pending = pending.filter((id) => !replies.has(id))
    }
    for (let step = 0; step < 1500; step++) {
      const t = types[between(rand, 0, types.length - 1)]!.type
      const key = `k${between(rand, 0, 5)}`
      const method = METHODS[between(rand, 0, METHODS.length - 1)]!
      if (method === 'slow') {
        let open!: () => void
        const promise = new Promise<void>((resolve) => { open = resolve })
        gate = { promise, open }
        pending.push(deliver(t, key, 'slow'))
        // while it is busy: messages wait in its mailbox (kQueued), timers fire at it
        for (let i = between(rand, 0, 3); i > 0; i--) pending.push(deliver(t, key, between(rand, 0, 1) === 0 ? 'who' : 'arm', 1))
        rt.commit()
        rt.advanceTo(++tick, Infinity)
        rt.commit()
        check(step)
        gate.open()
        await new Promise((resolve) => setImmediate(resolve))
        rt.commit()
      } else {
        const id = deliver(t, key, method, method === 'arm' || method === 'idle' ? between(rand, 0, 4) : undefined)
        pending.push(id)
        rt.commit()
        const r = replies.get(id)
        if (r !== undefined && r.ok && (method === 'who' || method === 'get')) assert.equal(r.value, t, `seed ${seed} step ${step}: ${t}.${method}`)
      }
      if (between(rand, 0, 2) === 0) {
        tick += between(rand, 1, 4)
        nowMs += between(rand, 0, 2000)
        while (!rt.advanceTo(tick, 16)) rt.commit()
        rt.commit()
      }
      settle()
      check(step)
    }
    assert.ok(rt.table.size > 0)
  }
})

test('every flag bit set and cleared leaves the type index; the last index a registry allows fits', () => {
  const all = kBusy | kDirty | kSnapFresh | kDeactivate | kDelete | kDropped | kPersistent | kNew | kLimited | kCounted | kTimeoutArmed | kQueued | kDefaultQuota
  assert.ok(all < 1 << TYPE_SHIFT, 'the flag bits stay below the type index')
  for (const typeIdx of [0, 1, 2, 1234, MAX_AGENT_TYPES - 1]) {
    const cell = newCell(0, hashId('x'), typeIdx, undefined, all, 0)
    assert.equal(typeIndexOf(cell), typeIdx)
    assert.ok(cell.flags < 2 ** 30)
    cell.flags &= ~all
    assert.equal(typeIndexOf(cell), typeIdx)
    cell.flags |= all
    assert.equal(typeIndexOf(cell), typeIdx)
    assert.equal(cell.flags & all, all)
  }
})

test('a registry of more than MAX_AGENT_TYPES types is refused with InvalidDefinitionError', () => {
  const many = Array.from({ length: MAX_AGENT_TYPES + 1 }, (_, i) => defineAgent({ type: `t${i}`, initial: () => 0, queries: { get: () => 0 } }))
  assert.throws(() => new AgentRegistry(many), (e: unknown) => e instanceof InvalidDefinitionError && e.code === 'SHOAL_ERR_INVALID_DEFINITION')
  assert.equal(new AgentRegistry(many.slice(0, MAX_AGENT_TYPES)).types.length, MAX_AGENT_TYPES)
})
