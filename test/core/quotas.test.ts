/**
 * Quotas in the shard runtime: unknown quotas are refused, a new agent over the limit is
 * refused before its handler runs, existing agents never are, and the count follows
 * creations and deletions as they commit — through the persistence seam too: a runtime
 * started again on the same store (a restart) starts from the stored counts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { WriteBatch } from '../../native-free-core/storage/store.ts'
import { Envelope, MSG_CALL } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { QuotaCounters } from '../../native-free-core/tenancy/quota-counters.ts'
import { QuotaDirectory, QuotaGate } from '../../native-free-core/tenancy/quota-gate.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { kDefaultQuota } from '../../native-free-core/runtime/cell.ts'
import { DelegatingStore } from '../fixtures/manual-store.ts'

let runs = 0
const item = defineAgent({
  type: 'item',
  initial: () => ({ n: 0 }),
  commands: {
    add (s, by: number) { runs++; s.n += by; return s.n },
    fail () { runs++; throw new Error('no') },
    remove (_s, _p, ctx) { runs++; ctx.delete() },
    bye (_s, _p, ctx) { ctx.deactivate() },
    tell (_s, quota: string, ctx) { ctx.send({ type: 'item', key: 'x', quota }, 'add', 1) }
  },
  queries: { get (s) { return s.n } }
})
const temp = defineAgent({ type: 'temp', durable: false, initial: () => ({}), commands: { touch () {}, bye (_s, _p, ctx) { ctx.deactivate() } } })

/** A store whose commits fail on demand. */
class FlakyStore extends DelegatingStore {
  failNext = false
  commit (batch: WriteBatch): Promise<void> {
    if (this.failNext) {
      this.failNext = false
      return Promise.reject(new Error('disk full'))
    }
    this.inner.commit(batch)
    return Promise.resolve()
  }
}

function setup (inner = new MemoryStore(), limits: Array<[string, number]> = [['t', 2]]) {
  const registry = new AgentRegistry([item, temp])
  const replies = new Map<number, { ok: boolean, value: unknown }>()
  const output: RuntimeOutput = { reply: (_to, id, ok, value) => replies.set(id, { ok, value: ok ? value : (value as WireError).code }), send: () => {}, wake: () => {} }
  const directory = new QuotaDirectory()
  const counters = new QuotaCounters(1)
  limits.forEach(([q, limit], i) => directory.set(q, i + 1, limit))
  // a restart: the committed counts come back from the store
  for (const [q, n] of inner.quotaCounts()) counters.setBase(directory.slotOf(q)!, n)
  const store = new FlakyStore(inner)
  const rt = new ShardRuntime({ registry, store, codec: simCodec, output, quotas: new QuotaGate(directory, counters, 0) })
  let next = 0
  const call = async (quota: string, type: string, key: string, method: string, payload?: unknown): Promise<{ ok: boolean, value: unknown }> => {
    const info = registry.require(type)
    const e = new Envelope()
    e.kind = MSG_CALL; e.id = idString(quota, type, key); e.hash = hashId(e.id)
    e.typeIdx = info.index; e.methodIdx = registry.method(info, method).index; e.payload = payload; e.callId = ++next
    const id = next
    rt.deliver(e)
    rt.commit()
    await rt.whenCommitted()
    return replies.get(id)!
  }
  const count = (quota: string): number => counters.total(directory.slotOf(quota)!)
  return { rt, call, count, store, inner, directory, counters }
}

test('a quota that does not exist refuses activation and ctx.send', async () => {
  const { call } = setup()
  assert.deepEqual(await call('nobody', 'item', 'a', 'get'), { ok: false, value: 'SHOAL_ERR_UNKNOWN_QUOTA' })
  const told = await call('t', 'item', 'sender', 'tell', 'nobody')
  assert.equal(told.ok, false)
  assert.equal(told.value, 'SHOAL_ERR_AGENT', 'ctx.send threw inside the handler')
})

test('new agents over the limit are refused unrun; existing ones never are', async () => {
  const { call, count, directory } = setup()
  runs = 0
  assert.equal((await call('t', 'item', 'a', 'add', 1)).ok, true)
  assert.equal((await call('t', 'item', 'b', 'add', 1)).ok, true)
  assert.equal(count('t'), 2)
  assert.deepEqual(await call('t', 'item', 'c', 'add', 1), { ok: false, value: 'SHOAL_ERR_QUOTA_EXCEEDED' })
  assert.deepEqual(await call('t', 'item', 'c', 'get'), { ok: false, value: 'SHOAL_ERR_QUOTA_EXCEEDED' }, 'a query cannot bring it to life either')
  assert.equal(runs, 2)
  // the limit lowered under the count: existing agents go on, passivated or not
  directory.set('t', 1, 1)
  await call('t', 'item', 'a', 'bye')
  assert.deepEqual(await call('t', 'item', 'a', 'add', 1), { ok: true, value: 2 })
  assert.deepEqual(await call('t', 'item', 'b', 'add', 1), { ok: true, value: 2 })
  // other quotas are not affected
  assert.equal((await call('default', 'item', 'c', 'add', 1)).ok, true)
})

test('counts follow committed creations and deletions; rollbacks and failed commits give the unit back', async () => {
  const { call, count, store, directory } = setup()
  directory.set('t', 1, 10)
  await call('t', 'item', 'a', 'get') // a query creates nothing
  assert.equal(count('t'), 0)
  await call('t', 'item', 'a', 'fail') // the first command threw: never created
  assert.equal(count('t'), 0)
  await call('t', 'item', 'a', 'add', 1)
  await call('t', 'item', 'b', 'add', 1)
  assert.equal(count('t'), 2)
  await call('t', 'item', 'a', 'remove')
  assert.equal(count('t'), 1, 'a committed delete')
  store.failNext = true
  assert.deepEqual(await call('t', 'item', 'c', 'add', 1), { ok: false, value: 'SHOAL_ERR_STORAGE' })
  assert.equal(count('t'), 1, 'a creation whose commit failed')
  assert.equal((await call('t', 'item', 'c', 'add', 1)).ok, true)
  assert.equal(count('t'), 2)
})

test('memory-only agents count while resident and give their unit back when dropped', async () => {
  const { call, count } = setup(new MemoryStore(), [['t', 1]])
  assert.equal((await call('t', 'temp', 'a', 'touch')).ok, true)
  assert.equal(count('t'), 1)
  assert.deepEqual(await call('t', 'temp', 'b', 'touch'), { ok: false, value: 'SHOAL_ERR_QUOTA_EXCEEDED' })
  await call('t', 'temp', 'a', 'bye')
  assert.equal(count('t'), 0)
  assert.equal((await call('t', 'temp', 'b', 'touch')).ok, true)
})

test('counts survive a restart through the store (the QuotaRecords seam)', async () => {
  const disk = new MemoryStore()
  const first = setup(disk, [['t', 3]])
  for (const k of ['a', 'b', 'c']) await first.call('t', 'item', k, 'add', 1)
  await first.call('t', 'item', 'b', 'remove')
  await first.call('default', 'item', 'z', 'add', 1)
  // the default quota's creations and deletes are counted from the ids' bytes (no string)
  await first.call('default', 'item', 'y', 'add', 1)
  assert.equal(first.count('default'), 2)
  await first.call('default', 'item', 'y', 'remove')
  assert.equal(first.count('default'), 1)
  assert.deepEqual([...disk.quotaCounts()].sort(), [['default', 1], ['t', 2]])
  // a new runtime with fresh counters on the same store: the host restarted
  const second = setup(disk, [['t', 3]])
  assert.equal(second.count('t'), 2)
  assert.equal(second.count('default'), 1)
  assert.equal((await second.call('t', 'item', 'd', 'add', 1)).ok, true)
  assert.deepEqual(await second.call('t', 'item', 'e', 'add', 1), { ok: false, value: 'SHOAL_ERR_QUOTA_EXCEEDED' })
  assert.deepEqual(await second.call('t', 'item', 'a', 'add', 1), { ok: true, value: 2 }, 'a stored agent is an existing one')
})

test('admitBytes answers as admit does, from the id\'s bytes; an agent of the default quota is admitted without its id string', () => {
  const directory = new QuotaDirectory()
  directory.set('t', 1, 0) // a limit of 0: every new agent over it
  const gate = new QuotaGate(directory, new QuotaCounters(1), 0)
  for (const quota of ['default', 't', 'nope', 'defaul', 'defaultx']) {
    for (const key of ['k', 'ü\u001fü']) {
      for (const isNew of [false, true]) {
        const id = idString(quota, 'item', key)
        const frame = Buffer.from(`..${id}`)
        let decoded = 0
        const viaBytes = gate.admitBytes(frame, 2, frame.length - 2, isNew, () => { decoded++; return id })
        assert.equal(viaBytes?.code, gate.admit(id, isNew)?.code, `${quota} ${isNew}`)
        if (quota === 'default') assert.equal(decoded, 0, 'the default quota: by the prefix alone')
      }
    }
  }
})

test('an agent\'s quota is told once, at activation (kDefaultQuota): from the frame\'s bytes or the id string, the default quota and one whose name only starts like it count apart', async () => {
  const { rt, count, directory } = setup()
  directory.set('defaultx', 2, 1) // a prefix of 'default', but not its id prefix
  let next = 0
  const send = async (quota: string, key: string, method: string, asBytes: boolean): Promise<void> => {
    const id = idString(quota, 'item', key)
    const e = new Envelope()
    e.kind = MSG_CALL; e.hash = hashId(id); e.callId = ++next
    e.typeIdx = 0; e.methodIdx = new AgentRegistry([item, temp]).method(new AgentRegistry([item, temp]).require('item'), method).index; e.payload = 1
    if (asBytes) {
      const frame = Buffer.from(`..${id}`)
      e.setIdBytes(frame, 2, frame.length - 2, (bytes, at, end) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', at, end))
    } else {
      e.id = id
    }
    rt.deliver(e)
    rt.commit()
    await rt.whenCommitted()
  }
  const flagOf = (quota: string, key: string): boolean => {
    const id = idString(quota, 'item', key)
    return (rt.table.get(id, hashId(id))!.flags & kDefaultQuota) !== 0
  }
  await send('default', 'a', 'add', true)
  await send('default', 'b', 'add', false)
  await send('defaultx', 'a', 'add', true)
  assert.equal(flagOf('default', 'a'), true)
  assert.equal(flagOf('default', 'b'), true)
  assert.equal(flagOf('defaultx', 'a'), false)
  assert.equal(count('default'), 2)
  assert.equal(count('defaultx'), 1)
  await send('defaultx', 'b', 'add', false) // over its limit of 1: refused, nothing counted
  assert.equal(rt.table.get(idString('defaultx', 'item', 'b'), hashId(idString('defaultx', 'item', 'b'))), undefined)
  assert.equal(count('defaultx'), 1)
  await send('default', 'a', 'remove', true) // a committed delete of the default quota
  await send('defaultx', 'a', 'remove', false)
  assert.equal(count('default'), 1)
  assert.equal(count('defaultx'), 0)
})
