/**
 * ctx.storage inside the shard runtime, with a store whose commits the test completes by
 * hand: a batch carries only the keys its turns changed, and reads while a commit is in
 * flight (after passivation, after a delete) see what was written, not what is on disk.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../../native-free-core/storage/memory-store.ts'
import type { StorageChanges, Store, WriteBatch } from '../../native-free-core/storage/store.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { checkStorageKey } from '../../native-free-core/storage/agent-storage.ts'
import { compareKeys } from '../../native-free-core/storage/store.ts'
import { callEnvelope } from '../fixtures/call-envelope.ts'

class HeldStore extends MemoryStore implements Store {
  readonly batches: WriteBatch[] = []
  private readonly held: Array<() => void> = []
  override commit (batch: WriteBatch): undefined {
    this.batches.push(batch)
    return super.commit(batch)
  }

  // a promise-returning commit, completed by `release()`
  commitLater (batch: WriteBatch): Promise<void> {
    this.batches.push(batch)
    return new Promise((resolve) => this.held.push(() => { super.commit(batch); resolve() }))
  }

  async release (): Promise<void> {
    while (this.held.length > 0) this.held.shift()!()
    for (let i = 0; i < 5; i++) await Promise.resolve()
  }
}

/** Holds the async handlers below at their await until `open()`. */
let gate = deferred()
function deferred (): { promise: Promise<void>, open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

const bag = defineAgent({
  type: 'bag',
  initial: () => ({}),
  commands: {
    fill (_s, n: number, ctx) { for (let i = 0; i < n; i++) ctx.storage.put(`k${i}`, i) },
    set (_s, [k, v]: [string, number], ctx) { ctx.storage.put(k, v) },
    bye (_s, _p, ctx) { ctx.deactivate() },
    boom (_s, k: string, ctx) { ctx.storage.put(k, 1); throw new Error('boom') },
    async slowPut (_s, _p, ctx) { ctx.storage.put('a', 1); await gate.promise; ctx.storage.put('b', 2) },
    async slowFail (_s, _p, ctx) { ctx.storage.put('x', 1); await gate.promise; ctx.storage.put('y', 1); throw new Error('late') },
    remove (_s, _p, ctx) { ctx.delete() }
  },
  queries: {
    get (_s, k: string, ctx) { return ctx.storage.get(k) },
    count (_s, _p, ctx) { return ctx.storage.list().length }
  }
})

function setup (held: boolean): {
  rt: ShardRuntime
  store: HeldStore
  call: (method: string, payload?: unknown) => Promise<unknown>
  /** Deliver to the bag `key` ('b' by default) without closing the batch. */
  deliver: (method: string, payload?: unknown, key?: string) => Promise<unknown>
} {
  const store = new HeldStore()
  const durableView: Store = held
    ? Object.assign(Object.create(store) as HeldStore, { durable: true, commit: (b: WriteBatch) => store.commitLater(b) })
    : store
  const registry = new AgentRegistry([bag])
  const waiting = new Map<number, (v: unknown) => void>()
  const rt = new ShardRuntime({
    registry,
    store: durableView,
    codec: simCodec,
    output: { reply: (_to, callId, _ok, value) => waiting.get(callId)?.(value), send () {}, wake () {} }
  })
  let nextCall = 0
  const id = idString('default', 'bag', 'b')
  const info = registry.require('bag')
  const deliver = (method: string, payload?: unknown, key = 'b'): Promise<unknown> => {
    const env = callEnvelope(registry, info, key === 'b' ? id : idString('default', 'bag', key), method, payload, ++nextCall)
    const reply = new Promise<unknown>((resolve) => waiting.set(env.callId, resolve))
    rt.deliver(env)
    return reply
  }
  const call = (method: string, payload?: unknown): Promise<unknown> => {
    const reply = deliver(method, payload)
    rt.commit()
    return reply
  }
  return { rt, store, call, deliver }
}

/** The storage keys a batch writes for the bag, in order. */
function batchKeys (batch: WriteBatch | undefined): string[] {
  const keys: string[] = []
  for (const changes of batch?.storage?.values() ?? []) changes.entries.forEach((_bytes, key) => keys.push(key))
  return keys
}

test('a batch carries only the storage keys its turns changed', async () => {
  const { store, call } = setup(false)
  await call('fill', 1000)
  const keysOf = (changes: StorageChanges): string[] => {
    const keys: string[] = []
    changes.entries.forEach((_bytes, key) => keys.push(key))
    return keys
  }
  assert.equal(new Set(keysOf([...store.batches.at(-1)!.storage!.values()][0]!)).size, 1000)
  await call('set', ['k5', 50])
  assert.deepEqual(keysOf([...store.batches.at(-1)!.storage!.values()][0]!), ['k5'])
  assert.equal(await call('count'), 1000)
})

test('a value put again under other keys is stored the same, and the next different value is its own', async () => {
  const { call } = setup(false)
  await call('fill', 3) // k0..k2 = 0, 1, 2
  await call('set', ['d', 2])
  await call('set', ['e', 2])
  await call('set', ['f', 2.5])
  await call('set', ['g', 0])
  assert.deepEqual(await Promise.all(['k0', 'k1', 'k2', 'd', 'e', 'f', 'g'].map((k) => call('get', k))), [0, 1, 2, 2, 2, 2.5, 0])
})

test('a throwing turn undoes its own writes, not those of earlier turns in the same batch', async () => {
  const { rt, store, call, deliver } = setup(false)
  void deliver('set', ['k1', 1])
  void deliver('boom', 'k2')
  void deliver('set', ['k3', 3])
  rt.commit()
  assert.deepEqual(batchKeys(store.batches.at(-1)), ['k1', 'k3'])
  assert.deepEqual([await call('get', 'k1'), await call('get', 'k2'), await call('get', 'k3')], [1, undefined, 3])
  void deliver('boom', 'k4') // alone in its batch: nothing to commit for it
  const before = store.batches.length
  rt.commit()
  assert.equal(store.batches.length, before)
})

test('an async turn\'s writes join the batch of its end, all or nothing, whatever commits meanwhile', async () => {
  const { rt, store, call, deliver } = setup(false)
  gate = deferred()
  const before = store.batches.length
  const slow = deliver('slowPut')
  await Promise.all([deliver('set', ['other', 1], 'c'), Promise.resolve().then(() => rt.commit())]) // another agent's batch commits while slowPut waits
  assert.deepEqual(store.batches.slice(before).map(batchKeys), [['other']], 'not the waiting turn\'s first write')
  gate.open()
  await new Promise((resolve) => setImmediate(resolve))
  rt.commit()
  await slow
  assert.deepEqual(batchKeys(store.batches.at(-1)), ['a', 'b'])
  gate = deferred()
  const failing = deliver('slowFail')
  rt.commit()
  gate.open()
  await new Promise((resolve) => setImmediate(resolve))
  rt.commit()
  await failing
  assert.deepEqual(await Promise.all(['a', 'b', 'x', 'y'].map((k) => call('get', k))), [1, 2, undefined, undefined])
})

test('while a commit is in flight, a passivated agent reads its writes back from the pending batch', async () => {
  const { store, call } = setup(true)
  const filled = call('fill', 3)
  const bye = call('bye')
  // nothing committed yet: the agent was dropped, its next activation must not read the store alone
  assert.equal(store.getStorage(idString('default', 'bag', 'b'), 'k1'), undefined)
  const read = call('get', 'k1')
  const count = call('count')
  assert.equal(await read, 1)
  assert.equal(await count, 3)
  await store.release()
  await filled
  await bye
  assert.equal(await call('get', 'k2'), 2)
})

test('a delete in flight hides the stored keys from the next activation', async () => {
  const { store, call } = setup(true)
  void call('fill', 3)
  await store.release()
  void call('remove')
  assert.notEqual(store.getStorage(idString('default', 'bag', 'b'), 'k0'), undefined, 'still on disk')
  assert.equal(await call('get', 'k0'), undefined)
  assert.equal(await call('count'), 0)
  void call('set', ['z', 1])
  assert.equal(await call('count'), 1)
  await store.release()
  assert.equal(await call('count'), 1)
  assert.equal(store.getStorage(idString('default', 'bag', 'b'), 'k0'), undefined)
})

test('storage keys: well-formed strings of at most 512 UTF-8 bytes, ordered as UTF-8 bytes', () => {
  assert.throws(() => checkStorageKey('bad\uD800'), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
  assert.throws(() => checkStorageKey('\u00e9'.repeat(257)), { code: 'SHOAL_ERR_INVALID_ARGUMENT' }) // 514 bytes
  checkStorageKey('\u00e9'.repeat(256))
  const keys = ['\u{1F600}', '\uE000', 'b', 'a', '', 'ab', '\u00e9']
  const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  assert.deepEqual([...keys].sort(compareKeys), byBytes)
})
