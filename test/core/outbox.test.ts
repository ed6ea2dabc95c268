/**
 * Effectively-once sends in the shard runtime, on a durable store: a durable agent's
 * send is stored in its turn's batch, applied by the receiver only while its record
 * exists, and the record is removed in the applying turn's batch — so copies are dropped,
 * and a new runtime on the same store (a restart) delivers what was never applied.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../../native-free-core/storage/store.ts'
import type { WriteBatch } from '../../native-free-core/storage/store.ts'
import { Envelope, MSG_CALL, MSG_SEND } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { stateCodec } from '../../src/thread/codec.ts'

/** The memory store, claiming durability: the runtime then keeps an outbox in it. */
class DurableMemory extends MemoryStore {
  override readonly durable: boolean = true
  readonly batches: WriteBatch[] = []
  override commit (batch: WriteBatch): undefined {
    this.batches.push(batch)
    return super.commit(batch)
  }
}

const wallet = defineAgent({
  type: 'wallet',
  initial: () => ({ balance: 100 }),
  commands: {
    pay (s, [to, amount]: [string, number], ctx) { s.balance -= amount; ctx.send({ type: 'wallet', key: to }, 'receive', amount) },
    payBadly (s, to: string, ctx) { s.balance -= 1; ctx.send({ type: 'wallet', key: to }, 'receive', Symbol('not data')) },
    receive (s, amount: number) { s.balance += amount },
    /** An object payload, passed on as it is. */
    forward (_s, [to, note]: [string, unknown], ctx) { ctx.send({ type: 'wallet', key: to }, 'note', note) },
    note (s, note: unknown) { (s as { notes?: unknown[] }).notes = [...((s as { notes?: unknown[] }).notes ?? []), note] }
  },
  queries: { balance (s) { return s.balance }, notes (s) { return (s as { notes?: unknown[] }).notes ?? [] } }
})

interface Sent { id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown, outboxKey: number, payloadBytes: Uint8Array | null }

function runtimeOn (store: DurableMemory, codec = stateCodec): { rt: ShardRuntime, sent: Sent[], replies: Map<number, [boolean, unknown]>, errors: WireError[], call: (key: string, method: string, payload?: unknown) => number, deliverSent: (s: Sent) => void } {
  const registry = new AgentRegistry([wallet])
  const sent: Sent[] = []
  const replies = new Map<number, [boolean, unknown]>()
  const errors: WireError[] = []
  const rt = new ShardRuntime({
    registry,
    store,
    codec,
    output: {
      reply: (_to, callId, ok, value) => { replies.set(callId, [ok, value]) },
      send: (id, hash, typeIdx, methodIdx, payload, outboxKey, _from, payloadBytes) => { sent.push({ id, hash, typeIdx, methodIdx, payload, outboxKey, payloadBytes: payloadBytes ?? null }) },
      wake () {},
      agentError: (_id, _m, e) => { errors.push(e) }
    }
  })
  const info = registry.require('wallet')
  let callId = 0
  const call = (key: string, method: string, payload?: unknown): number => {
    const env = new Envelope()
    env.kind = MSG_CALL
    env.id = idString('default', 'wallet', key)
    env.hash = hashId(env.id)
    env.typeIdx = info.index
    env.methodIdx = registry.method(info, method).index
    env.payload = payload
    env.callId = ++callId
    rt.deliver(env)
    rt.commit()
    return callId
  }
  const deliverSent = (s: Sent): void => {
    const env = new Envelope()
    env.kind = MSG_SEND
    env.id = s.id
    env.hash = s.hash
    env.typeIdx = s.typeIdx
    env.methodIdx = s.methodIdx
    env.payload = s.payload
    env.outboxKey = s.outboxKey
    rt.deliver(env)
  }
  return { rt, sent, replies, errors, call, deliverSent }
}

test('a durable send is stored with its sender, applied once, and its record removed with the applying turn', () => {
  const store = new DurableMemory()
  const { rt, sent, call, replies, deliverSent } = runtimeOn(store)
  call('alice', 'pay', ['bob', 30])
  const stored = store.batches.at(-1)!
  assert.equal(stored.outboxPuts!.length, 1)
  assert.equal(stored.states.length, 1, 'in the same batch as the sender\'s state')
  assert.equal(sent.length, 1)
  const key = sent[0]!.outboxKey
  assert.ok(key > 0x100000000, 'incarnation × 2^32 + sequence')
  assert.equal(stored.outboxPuts![0]!.key, key)
  assert.equal(store.hasOutbox(key), true)

  deliverSent(sent[0]!)
  deliverSent(sent[0]!) // a copy in the same batch
  rt.commit()
  assert.deepEqual(store.batches.at(-1)!.outboxDeletes, [key])
  assert.equal(store.hasOutbox(key), false)
  deliverSent(sent[0]!) // a copy after the commit
  rt.commit()
  assert.equal(rt.duplicateSends, 2)
  replies.clear()
  const q = call('bob', 'balance')
  assert.deepEqual(replies.get(q), [true, 130])
})

test('a new runtime on the same store (a restart) delivers the stored sends that were never applied, once', () => {
  const store = new DurableMemory()
  const first = runtimeOn(store)
  first.call('alice', 'pay', ['bob', 10])
  first.call('alice', 'pay', ['carol', 20])
  first.deliverSent(first.sent[0]!) // bob's applied; carol's is lost with the "crash"
  first.rt.commit()

  const second = runtimeOn(store)
  assert.equal(second.rt.redeliver(store.outbox(), () => true), 1)
  assert.equal(second.rt.redeliver(store.outbox(), () => true), 0, 'claimed, not yet committed: not twice')
  second.rt.commit()
  assert.equal([...store.outbox()].length, 0)
  const ids = ['alice', 'bob', 'carol'].map((k) => second.call(k, 'balance'))
  assert.deepEqual(ids.map((id) => second.replies.get(id)![1]), [70, 110, 120])
  // the restarted sender's sends take a new incarnation: no key is ever reused
  second.call('alice', 'pay', ['bob', 1])
  assert.ok(Math.floor(second.sent.at(-1)!.outboxKey / 0x100000000) > Math.floor(first.sent[0]!.outboxKey / 0x100000000))
})

test('a durable send\'s object payload is encoded once: the record ends with its bytes, and the frame carries them', () => {
  const store = new DurableMemory()
  const note = { text: 'hello', tags: ['a', 'b'], n: 3 }
  let encodes = 0
  const counting = {
    encode: (value: unknown): Uint8Array => {
      if (value === note || (Array.isArray(value) && value.includes(note))) encodes++
      return stateCodec.encode(value)
    },
    decode: stateCodec.decode
  }
  const first = runtimeOn(store, counting)
  first.call('alice', 'forward', ['bob', note])
  assert.equal(encodes, 1, 'the payload, once')
  const s = first.sent[0]!
  assert.deepEqual(stateCodec.decode(s.payloadBytes!), note, 'the frame\'s bytes are the payload')
  const [key, record] = [...store.outbox()][0]!
  assert.equal(key, s.outboxKey)
  assert.deepEqual(stateCodec.decode(record), [idString('default', 'wallet', 'alice'), idString('default', 'wallet', 'bob'), 'wallet', 'note', note])
  // after a crash, the stored record is what is delivered
  const second = runtimeOn(store)
  assert.equal(second.rt.redeliver(store.outbox(), () => true), 1)
  second.rt.commit()
  const q = second.call('bob', 'notes')
  assert.deepEqual(second.replies.get(q), [true, [note]])
})

test('a durable send that cannot be encoded fails its handler, which rolls back', () => {
  const store = new DurableMemory()
  const { call, replies, sent } = runtimeOn(store)
  const bad = call('dave', 'payBadly', 'erin')
  const [ok, err] = replies.get(bad)!
  assert.equal(ok, false)
  assert.equal((err as WireError).code, 'SHOAL_ERR_AGENT')
  assert.equal((err as { data?: { code?: string } }).data?.code, 'SHOAL_ERR_ENCODE')
  assert.equal(sent.length, 0)
  assert.deepEqual(replies.get(call('dave', 'balance')), [true, 100])
})
