/**
 * The shard runtime on one thread, with a store whose commits the test completes by
 * hand: every ordering below is decided by the test, not by timing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import { copyInto, flatCopy } from '../../native-free-core/runtime/commit-pipeline.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/shard-runtime.ts'
import { stateHashOf, stateOwnId } from '../../native-free-core/storage/store.ts'
import { PackedStates } from '../../native-free-core/storage/packed-states.ts'
import type { Store, WriteBatch } from '../../native-free-core/storage/store.ts'
import { Envelope, MSG_CALL, MSG_CAST, MSG_SEND } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { ManualStore } from '../fixtures/manual-store.ts'

type Out = { replies: Array<{ callId: number, ok: boolean, value: unknown }>, sends: Array<{ id: string, method: number, payload: unknown, from?: string }>, errors: Array<{ id: string, code: string }> }

let gate: { promise: Promise<void>, open: () => void } | null = null
const counter = defineAgent({
  type: 'counter',
  initial: () => ({ n: 0, log: [] as string[] }),
  commands: {
    add (s, by: number) { s.n += by; return s.n },
    fail (s, by: number) { s.n += by; throw new RangeError('no') },
    poison (s) { (s as Record<string, unknown>).bad = Symbol('x') },
    forward (s, to: string, ctx) { s.n++; ctx.send({ type: 'counter', key: to }, 'add', 10) },
    async slow (s, tag: string) { s.log.push(`start ${tag}`); await gate!.promise; s.log.push(`end ${tag}`); return tag },
    note (s, tag: string) { s.log.push(tag) },
    bye (_s, _p, ctx) { ctx.deactivate() },
    remove (_s, _p, ctx) { ctx.delete() }
  },
  queries: { get (s) { return s.n }, log (s) { return s.log }, throws () { throw new Error('q') }, whoami (_s, _p, ctx) { return ctx.id } }
})
const scratch = defineAgent({ type: 'scratch', durable: false, initial: () => ({ n: 0 }), commands: { add (s, by: number) { s.n += by; return s.n }, fail (s) { s.n = 99; throw new Error('x') } }, queries: { get (s) { return s.n } } })

// a flat state (primitive fields only): its rollback snapshots are copies, not bytes
const wallet = defineAgent({
  type: 'wallet',
  initial: () => ({ cents: 0, owner: 'nobody', frozen: false, note: null as string | null }),
  commands: {
    pay (s, cents: number) { s.cents += cents; s.note = `paid ${cents}`; return s.cents },
    fail (s) { s.cents = -1; s.owner = 'thief'; s.frozen = true; s.note = null; throw new Error('refused') },
    nest (s) { (s as Record<string, unknown>).history = [s.cents] }, // no longer flat
    nestFail (s) { ((s as Record<string, unknown>).history as number[]).push(-1); s.cents = -5; throw new Error('no') },
    poison (s) { (s as Record<string, unknown>).bad = Symbol('x') },
    tag (s, t: string) { (s as Record<string, unknown>).tag = t; return { ...s } },
    untag (s) { delete (s as Record<string, unknown>).tag }
  },
  queries: { get (s) { return s } }
})

function setup (store: Store | null = new ManualStore()): { rt: ShardRuntime, out: Out, store: Store | null, call: (type: string, key: string, method: string, payload?: unknown) => number, cast: (type: string, key: string, method: string, payload?: unknown) => void } {
  const registry = new AgentRegistry([counter, scratch, wallet])
  const out: Out = { replies: [], sends: [], errors: [] }
  let rt!: ShardRuntime
  const output: RuntimeOutput = {
    reply: (_to, callId, ok, value) => out.replies.push({ callId, ok, value: ok ? value : (value as WireError).code }),
    send: (id, hash, typeIdx, methodIdx, payload, _sendId, from) => {
      out.sends.push({ id, method: methodIdx, payload, from })
      const env = new Envelope()
      Object.assign(env, { kind: MSG_SEND, id, hash, typeIdx, methodIdx, payload })
      rt.deliver(env)
    },
    wake: () => {},
    agentError: (id, _m, e) => out.errors.push({ id, code: e.code })
  }
  rt = new ShardRuntime({ registry, store, codec: simCodec, output })
  let callId = 0
  const env = (kind: number, type: string, key: string, method: string, payload: unknown): Envelope => {
    const info = registry.require(type)
    const e = new Envelope()
    e.kind = kind; e.id = idString('default', type, key); e.hash = hashId(e.id)
    e.typeIdx = info.index; e.methodIdx = registry.method(info, method).index; e.payload = payload
    return e
  }
  return {
    rt, out, store,
    call: (type, key, method, payload) => { const e = env(MSG_CALL, type, key, method, payload); e.callId = ++callId; rt.deliver(e); return callId },
    cast: (type, key, method, payload) => rt.deliver(env(MSG_CAST, type, key, method, payload))
  }
}

test('a command reply waits for its commit; a query reply does not', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'a', 'add', 5)
  call('counter', 'a', 'get')
  assert.deepEqual(out.replies, [{ callId: 2, ok: true, value: 5 }], 'query answered at once')
  rt.commit()
  assert.equal(out.replies.length, 1, 'command still gated while the commit is in flight')
  await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies[1], { callId: 1, ok: true, value: 5 })
})

test('a throwing command rolls back to the last committed state and the agent stays usable', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'a', 'add', 1)
  rt.commit(); await (store as ManualStore).completeAll()
  call('counter', 'a', 'fail', 100)
  assert.equal(rt.activeAgents, 0, 'the cell was dropped')
  call('counter', 'a', 'get')
  assert.deepEqual(out.replies.slice(-1), [{ callId: 3, ok: true, value: 1 }])
  rt.commit(); await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies.find((r) => r.callId === 2), { callId: 2, ok: false, value: 'SHOAL_ERR_AGENT' })
  assert.deepEqual(out.errors.map((e) => e.code), ['SHOAL_ERR_AGENT'])
})

test('inside one batch, a throw keeps the uncommitted turns before it', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'a', 'add', 1)
  call('counter', 'a', 'add', 2)
  call('counter', 'a', 'fail', 100)
  call('counter', 'a', 'add', 4)
  rt.commit()
  await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies.map((r) => [r.callId, r.ok, r.value]), [[1, true, 1], [2, true, 3], [3, false, 'SHOAL_ERR_AGENT'], [4, true, 7]])
  assert.deepEqual(simCodec.decode((store as ManualStore).getState(idString('default', 'counter', 'a'))!), { n: 7, log: [] })
})

test('a flat state rolls back from a copy: every throw in a batch restores the last good fields, and the batch commits what the good turns left', async () => {
  const { rt, out, store, call } = setup()
  const id = idString('default', 'wallet', 'w')
  call('wallet', 'w', 'pay', 5)
  call('wallet', 'w', 'pay', 7) // snapshot of { cents: 5, ... } (a copy)
  call('wallet', 'w', 'fail') // back to 12
  call('wallet', 'w', 'fail') // the restored copy is the live state: copied again before this one
  call('wallet', 'w', 'pay', 1)
  call('wallet', 'w', 'get')
  assert.deepEqual(out.replies.at(-1)!.value, { cents: 13, owner: 'nobody', frozen: false, note: 'paid 1' }, 'the live state after two rollbacks')
  rt.commit()
  await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies.filter((r) => r.callId <= 5).map((r) => [r.callId, r.ok, r.value]),
    [[1, true, 5], [2, true, 12], [3, false, 'SHOAL_ERR_AGENT'], [4, false, 'SHOAL_ERR_AGENT'], [5, true, 13]])
  assert.deepEqual(simCodec.decode((store as ManualStore).getState(id)!), { cents: 13, owner: 'nobody', frozen: false, note: 'paid 1' })
  // a state that stops being flat inside the batch is kept as bytes from then on, and restores as deeply
  call('wallet', 'w', 'pay', 1)
  call('wallet', 'w', 'nest') // copied before (flat); after it, { ..., history: [14] }
  call('wallet', 'w', 'nestFail') // kept as bytes before it: the array is restored too
  call('wallet', 'w', 'get')
  assert.deepEqual(out.replies.at(-1)!.value, { cents: 14, owner: 'nobody', frozen: false, note: 'paid 1', history: [14] })
  rt.commit()
  await (store as ManualStore).completeAll()
  assert.deepEqual(simCodec.decode((store as ManualStore).getState(id)!), { cents: 14, owner: 'nobody', frozen: false, note: 'paid 1', history: [14] })
})

test('a flat state made unencodable after a copy snapshot fails that agent only, at the commit or the next command', async () => {
  const { rt, out, store, call } = setup()
  call('wallet', 'good', 'pay', 1)
  call('wallet', 'bad', 'pay', 1)
  call('wallet', 'bad', 'poison') // copied before it (flat); the symbol fails the commit's encode
  rt.commit()
  await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies.map((r) => [r.callId, r.ok, r.value]), [[1, true, 1], [2, false, 'SHOAL_ERR_ENCODE'], [3, false, 'SHOAL_ERR_ENCODE']])
  assert.equal((store as ManualStore).getState(idString('default', 'wallet', 'bad')), undefined)
  call('wallet', 'bad', 'pay', 2)
  call('wallet', 'bad', 'poison')
  call('wallet', 'bad', 'pay', 3) // the snapshot before it cannot copy (a symbol) nor encode: poisoned now
  rt.commit()
  await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies.slice(3).map((r) => [r.callId, r.ok, r.value]).sort((a, b) => (a[0] as number) - (b[0] as number)),
    [[4, false, 'SHOAL_ERR_ENCODE'], [5, false, 'SHOAL_ERR_ENCODE'], [6, true, 3]])
  assert.deepEqual(simCodec.decode((store as ManualStore).getState(idString('default', 'wallet', 'bad'))!), { cents: 3, owner: 'nobody', frozen: false, note: 'paid 3' }, 'call 6 ran on its initial state again')
})

test('flatCopy copies plain objects of primitive fields only', () => {
  const flat = { a: 1, b: 'x', c: true, d: null }
  const copy = flatCopy(flat)
  assert.deepEqual(copy, flat)
  assert.notEqual(copy, flat)
  const bare = Object.assign(Object.create(null) as object, { n: 1 })
  assert.equal(Object.getPrototypeOf(flatCopy(bare)), null)
  for (const v of [1, 'x', null, undefined, [1], { a: [] }, { a: {} }, { a: undefined }, { a: 1n }, { a: Symbol('s') }, { a: () => 1 }, new Date(0), new Map(), new (class Point { x = 1 })()]) {
    assert.equal(flatCopy(v), undefined, inspect(v))
  }
})

test('an unencodable state fails that agent only; the rest of the batch commits', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'good', 'add', 1)
  call('counter', 'bad', 'add', 1)
  call('counter', 'bad', 'poison')
  rt.commit()
  await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies.map((r) => [r.callId, r.ok, r.value]), [[1, true, 1], [2, false, 'SHOAL_ERR_ENCODE'], [3, false, 'SHOAL_ERR_ENCODE']])
  assert.ok((store as ManualStore).getState(idString('default', 'counter', 'good')))
  assert.equal((store as ManualStore).getState(idString('default', 'counter', 'bad')), undefined)
  call('counter', 'bad', 'get')
  assert.deepEqual(out.replies.at(-1), { callId: 4, ok: true, value: 0 }, 'back to its last committed state (none: initial)')
})

test('sends leave after the commit and reach their target', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'a', 'forward', 'b')
  rt.commit()
  assert.equal(out.sends.length, 0)
  await (store as ManualStore).completeAll()
  assert.equal(out.sends.length, 1)
  call('counter', 'b', 'get')
  assert.equal(out.replies.at(-1)!.value, 10)
})

test('an async handler keeps its agent busy; its messages wait, other agents run', async () => {
  const { rt, out, store, call, cast } = setup()
  let open!: () => void
  gate = { promise: new Promise((resolve) => { open = resolve }), open: () => open() }
  call('counter', 'a', 'slow', 'one')
  cast('counter', 'a', 'note', 'queued')
  call('counter', 'b', 'add', 1)
  rt.commit(); await (store as ManualStore).completeAll()
  assert.deepEqual(out.replies.map((r) => r.callId), [2], 'b answered while a is busy')
  assert.equal(rt.busy, 1)
  gate.open()
  await gate.promise
  await new Promise((resolve) => setImmediate(resolve))
  rt.commit(); await (store as ManualStore).completeAll()
  call('counter', 'a', 'log')
  assert.deepEqual(out.replies.at(-1)!.value, ['start one', 'end one', 'queued'])
  assert.equal(rt.busy, 0)
})

test('a passivated agent reactivates from a commit still in flight', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'a', 'add', 3)
  call('counter', 'a', 'bye')
  rt.commit()
  assert.equal(rt.activeAgents, 0, 'passivated once its batch was built')
  call('counter', 'a', 'get')
  assert.equal(out.replies.at(-1)!.value, 3, 'read through the in-flight overlay')
  await (store as ManualStore).completeAll()
  call('counter', 'a', 'remove')
  rt.commit(); await (store as ManualStore).completeAll()
  assert.equal((store as ManualStore).getState(idString('default', 'counter', 'a')), undefined)
  call('counter', 'a', 'get')
  assert.equal(out.replies.at(-1)!.value, 0)
})

test('an agent rolled back while its last commit is in flight reloads that commit, not the store', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'a', 'add', 3)
  rt.commit() // in flight: the store does not have 3 yet
  call('counter', 'a', 'fail', 1) // throws on a clean cell: dropped, to reload on the next message
  assert.equal(rt.activeAgents, 0)
  call('counter', 'a', 'get')
  assert.equal(out.replies.at(-1)!.value, 3, 'the in-flight state, not the stored (none)')
  call('counter', 'b', 'get') // a never-seen agent activates from the store as ever
  assert.equal(out.replies.at(-1)!.value, 0)
  await (store as ManualStore).completeAll()
  call('counter', 'a', 'fail', 1)
  call('counter', 'a', 'get')
  assert.equal(out.replies.at(-1)!.value, 3, 'and from the store once committed')
})

test('durable: false agents are never stored and restart from initial after a throw', () => {
  const store = new ManualStore()
  const { rt, out, call } = setup(store)
  call('scratch', 'x', 'add', 5)
  assert.deepEqual(out.replies.at(-1), { callId: 1, ok: true, value: 5 }, 'not gated')
  rt.commit()
  assert.equal(store.waiting.length, 0, 'nothing to commit')
  call('scratch', 'x', 'fail')
  call('scratch', 'x', 'get')
  assert.equal(out.replies.at(-1)!.value, 0)
})

test('a throwing query does not roll back', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'a', 'add', 2)
  rt.commit(); await (store as ManualStore).completeAll()
  call('counter', 'a', 'throws')
  call('counter', 'a', 'get')
  assert.deepEqual(out.replies.slice(-2).map((r) => r.value), ['SHOAL_ERR_AGENT', 2])
  assert.equal(rt.activeAgents, 1)
})

test('with no store, every agent lives in memory only', () => {
  const { out, call } = setup(null)
  call('counter', 'a', 'add', 2)
  assert.equal(out.replies.at(-1)!.value, 2, 'not gated')
})

test('a flat snapshot written over the one before: a state that gains, loses or changes a field between commands still rolls back exactly', async () => {
  const { rt, out, store, call } = setup()
  const id = idString('default', 'wallet', 'v')
  call('wallet', 'v', 'pay', 5)
  call('wallet', 'v', 'pay', 1) // snapshot 1 (a copy)
  call('wallet', 'v', 'pay', 2) // written over it
  call('wallet', 'v', 'fail') // back to { cents: 8 }
  call('wallet', 'v', 'pay', 3) // the restored copy is live: a new copy before this one
  call('wallet', 'v', 'tag', 'x') // a field more: { ..., tag: 'x' }
  call('wallet', 'v', 'fail') // restored with the tag
  call('wallet', 'v', 'untag') // a field less
  call('wallet', 'v', 'fail') // restored without it
  call('wallet', 'v', 'get')
  assert.deepEqual(out.replies.at(-1)!.value, { cents: 11, owner: 'nobody', frozen: false, note: 'paid 3' })
  rt.commit()
  await (store as ManualStore).completeAll()
  const tagged = out.replies.find((r) => r.callId === 6)
  assert.deepEqual(tagged, { callId: 6, ok: true, value: { cents: 11, owner: 'nobody', frozen: false, note: 'paid 3', tag: 'x' } })
  assert.deepEqual(out.replies.filter((r) => !r.ok).map((r) => r.callId), [4, 7, 9])
  assert.deepEqual(simCodec.decode((store as ManualStore).getState(id)!), { cents: 11, owner: 'nobody', frozen: false, note: 'paid 3' })
})

test('copyInto: only onto a copy of the same prototype and fields, from a flat state', () => {
  const to = { a: 1, b: 'x' }
  assert.equal(copyInto(to, { a: 2, b: 'y' }), true)
  assert.deepEqual(to, { a: 2, b: 'y' })
  assert.equal(copyInto({ a: 1 }, { a: 1, b: 2 }), false, 'a field more')
  const twice = { a: 1, b: 2 }
  assert.equal(copyInto(twice, { a: 3, b: 4 }), true)
  assert.equal(copyInto(twice, { a: 5, b: 6 }), true)
  assert.deepEqual(twice, { a: 5, b: 6 })
  assert.equal(copyInto({ a: 1, b: 2 }, { a: 1 }), false, 'a field less')
  assert.equal(copyInto({ a: 1 }, { b: 1 }), false, 'another field')
  assert.equal(copyInto({ a: 1 }, { a: [] }), false, 'not flat')
  assert.equal(copyInto({ a: 1 }, Object.assign(Object.create(null) as object, { a: 1 })), false, 'another prototype')
  assert.equal(copyInto({ a: 1 }, null), false)
  assert.equal(copyInto({ a: 1 }, 1), false)
})

test('resident ids are bytes in the arena: a passivated agent gives its record back, the next id of its size takes it', async () => {
  const { rt, out, store, call } = setup()
  const ids = rt.ids
  call('counter', 'k1', 'add', 1)
  call('counter', 'é日本', 'add', 2) // non-ASCII key
  rt.commit(); await (store as ManualStore).completeAll()
  assert.equal(ids.size, 2)
  const a = rt.table.get(idString('default', 'counter', 'k1'), hashId(idString('default', 'counter', 'k1')))!
  assert.equal(typeof a.idRef, 'number', 'a resident cell holds a ref, not a string')
  assert.equal(rt.idOf(a), idString('default', 'counter', 'k1'))
  const ref = a.idRef as number
  const allocated = ids.allocatedBytes
  call('counter', 'k1', 'bye')
  rt.commit(); await (store as ManualStore).completeAll()
  assert.equal(rt.activeAgents, 1)
  assert.equal(ids.size, 1, 'the passivated agent released its record')
  assert.equal(a.idRef, idString('default', 'counter', 'k1'), 'the dropped cell keeps its id, as a string')
  call('counter', 'k2', 'add', 3) // the same length as k1: its record
  const b = rt.table.get(idString('default', 'counter', 'k2'), hashId(idString('default', 'counter', 'k2')))!
  assert.equal(b.idRef, ref)
  assert.equal(ids.allocatedBytes, allocated)
  assert.equal(rt.idOf(a), idString('default', 'counter', 'k1'), 'the old cell still says its own id')
  rt.commit(); await (store as ManualStore).completeAll()
  // k1 comes back from the store under its own id
  call('counter', 'k1', 'get')
  assert.equal(out.replies.at(-1)!.value, 1)
  // a message whose id is still the frame's bytes finds the resident agent without decoding it
  for (const [key, n] of [['k2', 3], ['é日本', 2]] as const) {
    const id = idString('default', 'counter', key)
    const frame = Buffer.from(`hdr${id}tail`)
    const e = new Envelope()
    let decoded = 0
    e.kind = MSG_CALL; e.hash = hashId(id); e.callId = 1000 + n
    e.typeIdx = 0; e.methodIdx = new AgentRegistry([counter, scratch, wallet]).method(new AgentRegistry([counter, scratch, wallet]).require('counter'), 'get').index
    e.setIdBytes(frame, 3, Buffer.byteLength(id), (bytes, at, end) => { decoded++; return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', at, end) })
    rt.deliver(e)
    assert.deepEqual(out.replies.at(-1), { callId: 1000 + n, ok: true, value: n }, key)
    assert.equal(decoded, 0, `${key}: no id string made for a resident agent's query`)
  }
})

test('ctx.id and the ids in errors and sends are the agent\'s own, made from its bytes', async () => {
  const { rt, out, store, call } = setup()
  call('counter', 'ü-1', 'fail', 1)
  assert.deepEqual(out.errors.at(-1), { id: idString('default', 'counter', 'ü-1'), code: 'SHOAL_ERR_AGENT' })
  call('counter', 'ü-1', 'forward', 'ü-2')
  call('counter', 'ü-1', 'bye') // dropped once the batch is built: its send leaves after the commit, from a dropped cell
  rt.commit(); await (store as ManualStore).completeAll()
  assert.deepEqual(out.sends.at(-1), { id: idString('default', 'counter', 'ü-2'), method: out.sends.at(-1)!.method, payload: 10, from: idString('default', 'counter', 'ü-1') })
  rt.commit(); await (store as ManualStore).completeAll()
  call('counter', 'ü-2', 'get')
  assert.equal(out.replies.at(-1)!.value, 10)
  call('counter', 'ü-2', 'whoami')
  assert.deepEqual(out.replies.at(-1)!.value, { quota: 'default', type: 'counter', key: 'ü-2' })
})

test('a commit keys resident agents\' states by their id bytes: no id string is made, and the states land under their ids', async () => {
  const batches: WriteBatch[] = []
  class Capturing extends ManualStore {
    override commit (batch: WriteBatch): Promise<void> { batches.push(batch); return super.commit(batch) }
  }
  const store = new Capturing()
  const { rt, call } = setup(store)
  const keys = ['k1', 'é日本', 'x'.repeat(200)]
  const ids = keys.map((k) => idString('default', 'counter', k))
  for (const k of keys) call('counter', k, 'add', 1)
  rt.commit(); await store.completeAll()
  let made = 0
  const string = rt.ids.string.bind(rt.ids)
  rt.ids.string = (ref: number) => { made++; return string(ref) }
  for (const k of keys) call('counter', k, 'add', 10) // resident now: commands on existing agents
  rt.commit()
  assert.equal(made, 0, 'no id string made for the turns or the commit of resident agents')
  const batch = batches.at(-1)!
  assert.deepEqual([0, 1, 2].map((k) => stateOwnId(batch.states, k)), [null, null, null], 'the ids are left to stateIds')
  const into = Buffer.alloc(300)
  for (let k = 0; k < 3; k++) {
    assert.equal(batch.stateIds!.id(k), ids[k])
    assert.equal(into.toString('utf8', 0, batch.stateIds!.writeId(k, into, 0)), ids[k])
  }
  // while the batch is in flight its ids stay right, though the cells are dropped and their records reused
  for (const k of keys) call('counter', k, 'bye')
  rt.commit() // the drops: the records go back
  for (const k of ['k2', 'é日x', 'y'.repeat(200)]) call('counter', k, 'add', 1) // ids of the same sizes: the freed records
  for (let k = 0; k < 3; k++) {
    assert.equal(batch.stateIds!.id(k), ids[k])
    assert.equal(into.toString('utf8', 0, batch.stateIds!.writeId(k, into, 0)), ids[k])
  }
  await store.completeAll() // the memory store reads the ids now: after the records were reused
  for (const [k, id] of ids.entries()) assert.deepEqual(simCodec.decode(store.inner.getState(id)!), { n: 11, log: [] }, keys[k])
})

test('the commit loop reads no id record (the ids were copied as the cells were staged), and a batch\'s ids buffer is reused only once its commit has settled', async () => {
  const batches: WriteBatch[] = []
  class Capturing extends ManualStore {
    override commit (batch: WriteBatch): Promise<void> { batches.push(batch); return super.commit(batch) }
  }
  const store = new Capturing()
  const { rt, call, cast } = setup(store)
  let reads = 0
  let counting = false
  const arena = rt.ids as unknown as Record<string, (...a: unknown[]) => unknown>
  for (const name of ['byteLength', 'copyTo', 'startsWith', 'touch', 'string', 'equalsBytes', 'equalsString']) {
    const f = arena[name]!.bind(rt.ids)
    arena[name] = (...a: unknown[]) => { if (counting) reads++; return f(...a) }
  }
  const commit = (): void => { counting = true; rt.commit(); counting = false }
  // new agents' first commands (the durable fanout's casts): quota counted, states created
  for (let i = 0; i < 40; i++) cast('counter', `n${i}`, 'add', 1)
  call('counter', 'q', 'fail', 1) // not staged: nothing of it in the batch
  call('counter', 'p', 'add', 1)
  call('counter', 'p', 'poison')
  call('counter', 'p', 'add', 1) // its snapshot does not encode: p is poisoned (its entry left out), and this add runs on p anew
  commit()
  assert.equal(reads, 0, 'no arena read in the commit of new agents')
  const first = batches.at(-1)!
  assert.equal(first.states.length, 41)
  for (let i = 0; i < 40; i++) assert.equal(first.stateIds!.id(i), idString('default', 'counter', `n${i}`))
  assert.equal(first.stateIds!.id(40), idString('default', 'counter', 'p'), 'the entry after the poisoned one moved up')
  // commands on resident agents, while the first batch is in flight: a batch of their own
  for (let i = 0; i < 40; i += 2) cast('counter', `n${i}`, 'add', 1)
  commit()
  assert.equal(reads, 0, 'no arena read in the commit of resident agents')
  const second = batches.at(-1)!
  assert.notEqual(second.stateIds, first.stateIds, 'a batch in flight keeps its own ids')
  for (let i = 0; i < 20; i++) assert.equal(second.stateIds!.id(i), idString('default', 'counter', `n${2 * i}`))
  await store.completeAll()
  for (let i = 0; i < 40; i++) assert.deepEqual(simCodec.decode(store.inner.getState(idString('default', 'counter', `n${i}`))!), { n: i % 2 === 0 ? 2 : 1, log: [] })
  assert.deepEqual(simCodec.decode(store.inner.getState(idString('default', 'counter', 'p'))!), { n: 1, log: [] })
  // both settled: the batch opened next takes one of their buffers (the one open now was
  // taken when the second closed), never one still in flight
  const used = [first.stateIds, second.stateIds]
  cast('counter', 'n1', 'add', 1)
  commit()
  const third = batches.at(-1)!
  assert.ok(!used.includes(third.stateIds))
  cast('counter', 'n3', 'add', 1)
  commit()
  const fourth = batches.at(-1)!
  assert.ok(used.includes(fourth.stateIds), 'a settled batch\'s ids are reused')
  assert.notEqual(fourth.stateIds, third.stateIds)
  assert.equal(third.stateIds!.id(0), idString('default', 'counter', 'n1'))
  assert.equal(fourth.stateIds!.id(0), idString('default', 'counter', 'n3'))
  await store.completeAll()
  assert.deepEqual(simCodec.decode(store.inner.getState(idString('default', 'counter', 'n1'))!), { n: 2, log: [] })
  assert.deepEqual(simCodec.decode(store.inner.getState(idString('default', 'counter', 'n3'))!), { n: 2, log: [] })
})

test('a batch\'s states are packed (no tuple or view per state), keep their bytes while the commit is in flight, and their buffer is reused only once it has settled', async () => {
  const batches: WriteBatch[] = []
  class Capturing extends ManualStore {
    override commit (batch: WriteBatch): Promise<void> { batches.push(batch); return super.commit(batch) }
  }
  const store = new Capturing()
  const { rt, cast } = setup(store)
  const id = (k: string): string => idString('default', 'counter', k)
  const decoded = (b: WriteBatch): unknown[] => {
    const states = b.states as PackedStates
    return Array.from({ length: states.length }, (_, k) => simCodec.decode(states.view(k)!))
  }
  const long = 'x'.repeat(300) // past the byte-by-byte copy: copied with set
  cast('counter', 'a0', 'add', 1)
  cast('counter', 'a1', 'add', 1)
  cast('counter', 'a2', 'note', long)
  rt.commit()
  const first = batches.at(-1)!
  assert.ok(first.states instanceof PackedStates)
  assert.deepEqual(decoded(first), [{ n: 1, log: [] }, { n: 1, log: [] }, { n: 0, log: [long] }])
  assert.deepEqual([0, 1, 2].map((k) => stateHashOf(first.states, k)! >>> 0), [hashId(id('a0')), hashId(id('a1')), hashId(id('a2'))])
  cast('counter', 'a0', 'add', 10)
  cast('counter', 'a2', 'remove')
  rt.commit()
  const second = batches.at(-1)!
  assert.notEqual(second.states, first.states, 'a batch in flight keeps its own states')
  assert.deepEqual(decoded(first), [{ n: 1, log: [] }, { n: 1, log: [] }, { n: 0, log: [long] }], 'the first batch\'s bytes, untouched by the second')
  assert.equal((second.states as PackedStates).deleted(1), true, 'a delete')
  store.waiting.shift()!() // the first commit settles, the second stays in flight
  for (let i = 0; i < 5; i++) await Promise.resolve()
  cast('counter', 'a1', 'add', 100)
  rt.commit()
  const third = batches.at(-1)!
  assert.equal(third.states, first.states, 'the settled batch\'s states are reused')
  assert.deepEqual(decoded(third), [{ n: 101, log: [] }])
  assert.deepEqual(simCodec.decode((second.states as PackedStates).view(0)!), { n: 11, log: [] }, 'the batch in flight still holds its bytes')
  await store.completeAll()
  assert.deepEqual(simCodec.decode(store.inner.getState(id('a0'))!), { n: 11, log: [] })
  assert.deepEqual(simCodec.decode(store.inner.getState(id('a1'))!), { n: 101, log: [] })
  assert.equal(store.inner.getState(id('a2')), undefined)
})
