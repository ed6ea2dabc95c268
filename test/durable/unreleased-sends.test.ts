/**
 * A durable send leaves only once its turn's commit has settled — with replicas, once the
 * shard's replicas have the batch. Redelivery must keep to that too: the local LMDB
 * transaction commits first, so the record is in the store, where redelivery scans, while
 * the batch still waits for the replicas. Were it redelivered then and the replicas never
 * got the batch (its owner stood still past its lease, the shard failed over), the turn
 * would be lost with it, the caller would retry it on the new owner, which sends again
 * under a new identity: two credits for one debit. The chaos test found this once (seed
 * 2002, "o62 a11 → a6 (9): credited 2×"). Real LMDB whose replication the test holds
 * (`replicateWith`, as the cluster's replication does), real runtimes and redelivery.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { OutboxRedelivery } from '../../src/storage/outbox-redelivery.ts'
import { UnreleasedSends } from '../../src/thread/unreleased-sends.ts'
import { tempDataDir } from './helpers.ts'
import { callEnvelope } from '../fixtures/call-envelope.ts'

const account = defineAgent({
  type: 'acct',
  initial: () => ({ balance: 100, credits: 0 }),
  commands: {
    pay (s, [to, amount]: [string, number], ctx) { s.balance -= amount; ctx.send({ type: 'acct', key: to }, 'credit', amount) },
    credit (s, amount: number) { s.balance += amount; s.credits++ }
  },
  queries: { get (s) { return s } }
})

const registry = new AgentRegistry([account])
const idOf = (key: string): string => idString('default', 'acct', key)

/** An LMDB store whose replication waits until the test lets it go (or fails it). */
function heldStore (): { store: LmdbStore, replicate: () => void, fail: () => void } {
  const store = new LmdbStore({ path: tempDataDir(), durability: 'os' })
  const held: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  store.replicateWith(() => new Promise<void>((resolve, reject) => { held.push({ resolve, reject }) }), () => {})
  return {
    store,
    replicate: () => { for (const h of held.splice(0)) h.resolve() },
    fail: () => { for (const h of held.splice(0)) h.reject(new Error('the replicas refused the batch (deposed)')) }
  }
}

interface Thread {
  rt: ShardRuntime
  sent: string[]
  told: Array<[number, number]>
  call: (key: string, method: string, payload?: unknown) => void
}

/** A runtime as a thread runs it, in dedup mode (the cluster's), telling its unreleased sends to `shared` as thread `index`. */
function thread (store: LmdbStore, index: number, shared: UnreleasedSends | null): Thread {
  const sent: string[] = []
  const told: Array<[number, number]> = []
  let callId = 0
  const rt = new ShardRuntime({
    registry,
    store,
    codec: simCodec,
    outbox: 'dedup',
    output: {
      reply () {},
      send: (id) => { sent.push(id) },
      applied () {},
      wake () {},
      unreleased: (lowest, upper) => {
        told.push([lowest, upper])
        shared?.set(index, lowest, upper)
      }
    }
  })
  const info = registry.require('acct')
  const call = (key: string, method: string, payload?: unknown): void => {
    rt.deliver(callEnvelope(registry, info, idOf(key), method, payload, ++callId))
    rt.commit()
  }
  return { rt, sent, told, call }
}

const state = (store: LmdbStore, key: string): { balance: number, credits: number } | undefined => {
  const bytes = store.getState(idOf(key))
  return bytes === undefined ? undefined : simCodec.decode(bytes) as { balance: number, credits: number }
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

test('a send whose commit waits for the replicas is stored but not redelivered; once the commit settles it is', async () => {
  const { store, replicate } = heldStore()
  const t = thread(store, 1, null)
  t.call('alice', 'pay', ['bob', 30])
  await store.localCommits()
  assert.equal([...store.outbox()].length, 1, 'the record is in LMDB: the local transaction committed')
  assert.equal(state(store, 'alice')?.balance, 70)
  assert.deepEqual(t.sent, [], 'not released: the replicas do not have the batch')
  const [[lowest, upper]] = t.told as [[number, number]]
  const key = [...store.outbox()][0]!.key
  assert.equal(lowest, key)
  assert.ok(upper > key && upper % 2 ** 32 === 0, 'to the end of the incarnation')

  assert.equal(t.rt.redeliver(store.outbox(), () => true), 0, 'not redelivered before its commit settled')
  t.rt.commit()
  await store.localCommits()
  assert.equal(state(store, 'bob'), undefined, 'bob was not credited')

  replicate()
  await t.rt.whenCommitted()
  assert.deepEqual(t.sent, [idOf('bob')], 'released')
  assert.deepEqual(t.told.at(-1), [0, 0])
  assert.equal(t.rt.redeliver(store.outbox(), () => true), 1, 'released: redelivered while unacknowledged')
  t.rt.commit()
  replicate()
  await t.rt.whenCommitted()
  assert.deepEqual(state(store, 'bob'), { balance: 130, credits: 1 })
  await store.close()
})

test('a send whose replicated commit failed stays in the store; this host may redeliver it then (the store answers for it)', async () => {
  const { store, fail } = heldStore()
  const t = thread(store, 1, null)
  t.call('alice', 'pay', ['bob', 30])
  await store.localCommits()
  fail()
  await t.rt.whenCommitted()
  assert.deepEqual(t.sent, [], 'a failed commit releases nothing')
  assert.deepEqual(t.told.at(-1), [0, 0], 'settled')
  assert.equal([...store.outbox()].length, 1)
  await store.close()
})

test('another thread of the host does not redeliver a send whose commit has not settled (UnreleasedSends), before and after', async () => {
  const { store, replicate } = heldStore()
  const shared = new UnreleasedSends(UnreleasedSends.create(3))
  const sender = thread(store, 1, shared)
  const receiver = thread(store, 2, shared)
  const bob = hashId(idOf('bob'))
  // the receiver's thread scans for the agents it owns (bob), as worker-entry.ts has it
  const redelivery = new OutboxRedelivery(receiver.rt, store, (hash) => hash === bob, () => receiver.rt.commit(), () => true,
    { unreleased: shared, pastServingDeadline: () => false })
  sender.call('alice', 'pay', ['bob', 30])
  await store.localCommits()
  assert.equal([...store.outbox()].length, 1)
  assert.ok(shared.holds([...store.outbox()][0]!.key))
  redelivery.start(10)
  try {
    await sleep(120) // many scans: the record is seen stored at each
    receiver.rt.commit()
    await store.localCommits()
    assert.equal(state(store, 'bob'), undefined, 'bob was not credited while the sender\'s commit waited for its replicas')

    replicate()
    await sender.rt.whenCommitted()
    assert.equal(shared.holds([...store.outbox()][0]!.key), false)
    // released and still unacknowledged: redelivered now
    for (let i = 0; i < 100 && state(store, 'bob') === undefined; i++) {
      await sleep(10)
      replicate()
    }
    assert.deepEqual(state(store, 'bob'), { balance: 130, credits: 1 })
  } finally {
    redelivery.stop()
    replicate()
    await receiver.rt.whenCommitted()
    await store.close()
  }
})

test('past the serving deadline a thread redelivers nothing (the sender\'s shard may be served elsewhere by now)', async () => {
  const { store, replicate } = heldStore()
  const shared = new UnreleasedSends(UnreleasedSends.create(2))
  const t = thread(store, 1, shared)
  t.call('alice', 'pay', ['bob', 30])
  replicate()
  await t.rt.whenCommitted()
  assert.equal([...store.outbox()].length, 1, 'released, not acknowledged')
  let past = true
  const redelivery = new OutboxRedelivery(t.rt, store, () => true, () => t.rt.commit(), () => true,
    { unreleased: shared, pastServingDeadline: () => past })
  redelivery.start(10)
  try {
    await sleep(80)
    replicate()
    await t.rt.whenCommitted()
    assert.equal(state(store, 'bob'), undefined, 'nothing redelivered past the deadline')
    past = false
    for (let i = 0; i < 100 && state(store, 'bob') === undefined; i++) {
      await sleep(10)
      replicate()
      await t.rt.whenCommitted()
    }
    assert.deepEqual(state(store, 'bob'), { balance: 130, credits: 1 }, 'redelivered once the host serves again')
  } finally {
    redelivery.stop()
    replicate()
    await t.rt.whenCommitted()
    await store.close()
  }
})
