/**
 * Effectively-once sends in the shard runtime, on a durable store: a durable agent's
 * send is stored in its turn's batch with its identity (origin store, key, sender's
 * shard). Claim mode: applied by the receiver only while its record exists, the record
 * removed in the applying turn's batch — so copies are dropped, and a new runtime on the
 * same store (a restart) delivers what was never applied. Dedup mode: the receiver
 * records what it applied in its batch, reports it once committed (the sender then drops
 * its record), drops copies — acknowledging them again — until told to forget.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { SendId, Store, WriteBatch } from '../../native-free-core/storage/store.ts'
import { Envelope, MSG_FORGET, MSG_SEND } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId, shardOf } from '../../native-free-core/placement/hash.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { ManualStore } from '../fixtures/manual-store.ts'
import type { ValueCodec } from '../../native-free-core/runtime/ports.ts'
import { callEnvelope } from '../fixtures/call-envelope.ts'

/** Resolved by the test: `hold` keeps its agent busy until then. */
let release: () => void = () => {}

/** The memory store, claiming durability: the runtime then keeps an outbox in it. */
class DurableMemory extends MemoryStore {
  override readonly durable: boolean = true
  readonly batches: WriteBatch[] = []
  /** Each batch's state count when committed (a batch's states are reused once its commit has settled). */
  readonly stateCounts: number[] = []
  override commit (batch: WriteBatch): undefined {
    this.batches.push(batch)
    this.stateCounts.push(batch.states.length)
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
    async hold () { await new Promise<void>((resolve) => { release = resolve }) },
    /** An object payload, passed on as it is. */
    forward (_s, [to, note]: [string, unknown], ctx) { ctx.send({ type: 'wallet', key: to }, 'note', note) },
    note (s, note: unknown) { (s as { notes?: unknown[] }).notes = [...((s as { notes?: unknown[] }).notes ?? []), note] }
  },
  queries: { balance (s) { return s.balance }, notes (s) { return (s as { notes?: unknown[] }).notes ?? [] } }
})

interface Sent { id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown, durable: SendId | null, outboxKey: number, payloadBytes: Uint8Array | null }
interface Applied { id: string, send: SendId }

function runtimeOn (store: Store, mode: 'claim' | 'dedup' = 'claim', codec: ValueCodec = simCodec): { rt: ShardRuntime, sent: Sent[], applied: Applied[], replies: Map<number, [boolean, unknown]>, errors: WireError[], call: (key: string, method: string, payload?: unknown) => number, deliverSent: (s: Sent) => void } {
  const registry = new AgentRegistry([wallet])
  const sent: Sent[] = []
  const replies = new Map<number, [boolean, unknown]>()
  const errors: WireError[] = []
  const applied: Applied[] = []
  const rt = new ShardRuntime({
    registry,
    store,
    codec,
    outbox: mode,
    output: {
      reply: (_to, callId, ok, value) => { replies.set(callId, [ok, value]) },
      send: (id, hash, typeIdx, methodIdx, payload, durable, _from, payloadBytes) => {
        // the runtime hands over its own object: copy the identity, as a frame would
        const copy = durable === null ? null : { senderShard: durable.senderShard, origin: durable.origin, key: durable.key }
        sent.push({ id, hash, typeIdx, methodIdx, payload, durable: copy, outboxKey: copy?.key ?? 0, payloadBytes: payloadBytes ?? null })
      },
      applied: (id, _hash, send) => { applied.push({ id, send }) },
      wake () {},
      agentError: (_id, _m, e) => { errors.push(e) }
    }
  })
  const info = registry.require('wallet')
  let callId = 0
  const call = (key: string, method: string, payload?: unknown): number => {
    rt.deliver(callEnvelope(registry, info, idString('default', 'wallet', key), method, payload, ++callId))
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
    env.origin = s.durable?.origin ?? ''
    env.senderShard = s.durable?.senderShard ?? 0
    rt.deliver(env)
  }
  return { rt, sent, applied, replies, errors, call, deliverSent }
}

test('a durable send is stored with its sender, applied once, and its record removed with the applying turn', () => {
  const store = new DurableMemory()
  const { rt, sent, call, replies, deliverSent } = runtimeOn(store)
  call('alice', 'pay', ['bob', 30])
  const stored = store.batches.at(-1)!
  assert.equal(stored.outboxPuts!.length, 1)
  assert.equal(store.stateCounts.at(-1), 1, 'in the same batch as the sender\'s state')
  assert.equal(sent.length, 1)
  const key = sent[0]!.outboxKey
  const id = sent[0]!.durable!
  assert.ok(key > 0x100000000, 'incarnation × 2^32 + sequence')
  assert.deepEqual(id, { senderShard: shardOf(hashId(idString('default', 'wallet', 'alice'))), origin: store.storeId, key })
  assert.deepEqual({ ...stored.outboxPuts![0]!, bytes: null }, { ...id, bytes: null })
  assert.equal(store.hasOutbox(id), true)

  deliverSent(sent[0]!)
  deliverSent(sent[0]!) // a copy in the same batch
  rt.commit()
  assert.deepEqual(store.batches.at(-1)!.outboxDeletes, [id])
  assert.equal(store.hasOutbox(id), false)
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
      return simCodec.encode(value)
    },
    decode: simCodec.decode
  }
  const first = runtimeOn(store, 'claim', counting)
  first.call('alice', 'forward', ['bob', note])
  assert.equal(encodes, 1, 'the payload, once')
  const s = first.sent[0]!
  assert.deepEqual(simCodec.decode(s.payloadBytes!), note, 'the frame\'s bytes are the payload')
  const { key, bytes: record } = [...store.outbox()][0]!
  assert.equal(key, s.outboxKey)
  assert.deepEqual(simCodec.decode(record), [idString('default', 'wallet', 'alice'), idString('default', 'wallet', 'bob'), 'wallet', 'note', note])
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

// ---- dedup mode ----------------------------------------------------------------------

const walletShard = (key: string): number => shardOf(hashId(idString('default', 'wallet', key)))

test('dedup: the applying turn records the send in its batch, reports it once committed, and drops copies — acknowledging each again', () => {
  const store = new DurableMemory()
  const { rt, sent, applied, call, replies, deliverSent } = runtimeOn(store, 'dedup')
  call('alice', 'pay', ['bob', 30])
  const send = sent[0]!.durable!
  deliverSent(sent[0]!)
  deliverSent(sent[0]!) // a copy in the same batch: dropped, acknowledged with the original
  assert.equal(applied.length, 0, 'nothing reported before the commit')
  rt.commit()
  const batch = store.batches.at(-1)!
  assert.equal(batch.outboxDeletes ?? null, null, 'the sender\'s record is not the receiver\'s to remove')
  assert.deepEqual(batch.appliedPuts!.map((a) => [a.shard, a.origin, a.key, a.senderShard]), [[walletShard('bob'), send.origin, send.key, send.senderShard]])
  assert.equal(store.isApplied(walletShard('bob'), send.origin, send.key), true)
  assert.equal(store.hasOutbox(send), true, 'still stored: the sender drops it on the acknowledgement')
  assert.deepEqual(applied, [{ id: idString('default', 'wallet', 'bob'), send }])

  deliverSent(sent[0]!) // a copy after the commit (the sender has not dropped its record yet)
  rt.commit()
  assert.equal(rt.duplicateSends, 2)
  assert.equal(applied.length, 2, 'acknowledged again')
  store.deleteOutbox([applied[1]!.send])
  assert.equal(store.hasOutbox(send), false)
  assert.equal([...store.applied()].length, 1)

  rt.forget(idString('default', 'wallet', 'bob'), hashId(idString('default', 'wallet', 'bob')), send.origin, send.key)
  rt.commit()
  assert.deepEqual(store.batches.at(-1)!.appliedDeletes, [{ shard: walletShard('bob'), origin: send.origin, key: send.key }])
  assert.equal([...store.applied()].length, 0, 'no applied record left behind')
  replies.clear()
  assert.deepEqual(replies.get(call('bob', 'balance')), [true, 130], 'applied exactly once')
})

test('dedup: a copy arriving while the applying commit is in flight is dropped; a failed commit reports nothing and the next copy applies', async () => {
  const store = new ManualStore()
  const { rt, sent, applied, call, replies, deliverSent } = runtimeOn(store, 'dedup')
  call('alice', 'pay', ['bob', 30])
  await store.completeAll()
  deliverSent(sent[0]!)
  rt.commit() // in flight
  deliverSent(sent[0]!)
  rt.commit()
  assert.equal(rt.duplicateSends, 1)
  await store.failAll()
  assert.equal(applied.length, 0, 'the apply did not commit: nothing to acknowledge')
  deliverSent(sent[0]!) // redelivered: applied now
  rt.commit()
  await store.completeAll()
  assert.equal(applied.length, 1)
  assert.equal(rt.duplicateSends, 1)
  replies.clear()
  const q = call('bob', 'balance')
  await store.completeAll()
  assert.deepEqual(replies.get(q), [true, 130])
})

test('dedup: MSG_FORGET waits behind a busy agent\'s mailbox, after the copies queued before it', async () => {
  const store = new DurableMemory()
  const { rt, sent, applied, call, replies, deliverSent } = runtimeOn(store, 'dedup')
  call('alice', 'pay', ['bob', 30])
  deliverSent(sent[0]!)
  rt.commit()
  assert.equal(applied.length, 1)
  call('bob', 'hold') // bob is busy
  deliverSent(sent[0]!) // a late copy, queued in bob's mailbox
  const forget = new Envelope()
  forget.kind = MSG_FORGET
  forget.id = sent[0]!.id
  forget.hash = sent[0]!.hash
  forget.origin = sent[0]!.durable!.origin
  forget.outboxKey = sent[0]!.durable!.key
  rt.deliver(forget) // queued behind the copy
  rt.commit()
  assert.equal([...store.applied()].length, 1, 'not yet')
  release()
  for (let i = 0; i < 5; i++) await Promise.resolve()
  rt.commit()
  assert.equal(rt.duplicateSends, 1, 'the copy met the applied record')
  assert.equal([...store.applied()].length, 0, 'then it was forgotten')
  replies.clear()
  assert.deepEqual(replies.get(call('bob', 'balance')), [true, 130])
})

test('dedup: a restarted runtime redelivers stored sends; those already applied are dropped and acknowledged, the rest applied', () => {
  const store = new DurableMemory()
  const first = runtimeOn(store, 'dedup')
  first.call('alice', 'pay', ['bob', 10])
  first.call('alice', 'pay', ['carol', 20])
  first.deliverSent(first.sent[0]!) // bob's applied, but the "crash" comes before its acknowledgement
  first.rt.commit()
  assert.equal([...store.outbox()].length, 2)

  const second = runtimeOn(store, 'dedup')
  assert.equal(second.rt.redeliver(store.outbox(), () => true), 2)
  second.rt.commit()
  assert.equal(second.rt.duplicateSends, 1)
  assert.deepEqual(second.applied.map((a) => a.id).sort(), [idString('default', 'wallet', 'bob'), idString('default', 'wallet', 'carol')])
  store.deleteOutbox(second.applied.map((a) => a.send))
  assert.equal([...store.outbox()].length, 0)
  const ids = ['alice', 'bob', 'carol'].map((k) => second.call(k, 'balance'))
  assert.deepEqual(ids.map((id) => second.replies.get(id)![1]), [70, 110, 120])
})
