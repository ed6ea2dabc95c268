/**
 * Follow in the shard runtime, with a store whose commits the test completes by hand:
 * a follower sees a state only once its batch has committed (the output gate), before
 * the command's reply; a follower that joins while a batch is in flight starts from the
 * last committed state and then gets the in-flight one — never a state that was not
 * committed, never one twice.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/shard-runtime.ts'
import { Envelope, MSG_CALL, MSG_FOLLOW, MSG_UNFOLLOW } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import type { WireError } from '../../native-free-core/errors.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'
import { ManualStore } from '../fixtures/manual-store.ts'

const counter = defineAgent({
  type: 'counter',
  initial: () => ({ n: 0 }),
  commands: { add (s, by: number) { s.n += by; return s.n }, bad (s) { (s as Record<string, unknown>).x = Symbol('no') } },
  queries: { get (s) { return s.n } }
})

type Event = ['state', number, unknown] | ['error', number, string] | ['reply', number, unknown]

function setup (): { rt: ShardRuntime, store: ManualStore, events: Event[], send: (kind: number, key: string, method?: string, payload?: unknown, callId?: number) => void } {
  const registry = new AgentRegistry([counter])
  const store = new ManualStore()
  const events: Event[] = []
  const output: RuntimeOutput = {
    reply: (_to, callId, ok, value) => events.push(['reply', callId, ok ? value : (value as WireError).code]),
    send: () => {},
    wake: () => {},
    followed: (_thread, followId, ok, value) => events.push(ok
      ? ['state', followId, simCodec.decode(value as Uint8Array)]
      : ['error', followId, (value as WireError).code])
  }
  const rt = new ShardRuntime({ registry, store, codec: simCodec, output })
  const info = registry.require('counter')
  const send = (kind: number, key: string, method = 'get', payload?: unknown, callId = 0): void => {
    const e = new Envelope()
    e.kind = kind; e.id = idString('default', 'counter', key); e.hash = hashId(e.id)
    e.typeIdx = info.index; e.methodIdx = registry.method(info, method).index; e.payload = payload; e.callId = callId
    rt.deliver(e)
  }
  return { rt, store, events, send }
}

test('a follower gets a state only after its batch commits, and before the reply', async () => {
  const { rt, store, events, send } = setup()
  send(MSG_FOLLOW, 'a', 'get', undefined, 1)
  assert.deepEqual(events, [['state', 1, { n: 0 }]])
  send(MSG_CALL, 'a', 'add', 2, 10)
  send(MSG_CALL, 'a', 'add', 3, 11)
  rt.commit()
  assert.equal(events.length, 1, 'nothing before the commit completes')
  await store.completeAll()
  assert.deepEqual(events.slice(1), [['state', 1, { n: 5 }], ['reply', 10, 2], ['reply', 11, 5]], 'one committed state for the batch, then the replies')
})

test('joining while a batch is in flight: the last committed state, then the in-flight one', async () => {
  const { rt, store, events, send } = setup()
  send(MSG_CALL, 'a', 'add', 1, 10)
  rt.commit()
  await store.completeAll() // committed: n = 1
  send(MSG_CALL, 'a', 'add', 1, 11)
  rt.commit() // in flight: n = 2
  send(MSG_FOLLOW, 'a', 'get', undefined, 7)
  send(MSG_CALL, 'a', 'add', 1, 12) // open batch: n = 3
  send(MSG_FOLLOW, 'a', 'get', undefined, 8)
  assert.deepEqual(events.filter((e) => e[0] === 'state'), [['state', 7, { n: 1 }], ['state', 8, { n: 1 }]], 'never an uncommitted state')
  rt.commit()
  await store.completeAll()
  assert.deepEqual(events.filter((e) => e[0] === 'state').slice(2), [['state', 7, { n: 2 }], ['state', 8, { n: 2 }], ['state', 7, { n: 3 }], ['state', 8, { n: 3 }]])
})

test('an unsubscribed follower gets nothing more; a poisoned batch publishes nothing', async () => {
  const { rt, store, events, send } = setup()
  send(MSG_FOLLOW, 'a', 'get', undefined, 1)
  send(MSG_FOLLOW, 'a', 'get', undefined, 2)
  send(MSG_UNFOLLOW, 'a', 'get', undefined, 1)
  assert.equal(rt.followers.size, 1)
  send(MSG_CALL, 'a', 'add', 1, 10)
  send(MSG_CALL, 'a', 'bad', undefined, 11)
  rt.commit()
  await store.completeAll()
  assert.deepEqual(events.filter((e) => e[0] === 'state'), [['state', 1, { n: 0 }], ['state', 2, { n: 0 }]], 'the unencodable state never left')
  send(MSG_CALL, 'a', 'add', 4, 12)
  rt.commit()
  await store.completeAll()
  assert.deepEqual(events.filter((e) => e[0] === 'state').slice(2), [['state', 2, { n: 4 }]])
  send(MSG_UNFOLLOW, 'a', 'get', undefined, 2)
  send(MSG_UNFOLLOW, 'nobody', 'get', undefined, 3) // unknown: ignored, activates nothing
  assert.equal(rt.followers.size, 0)
  assert.equal(rt.activeAgents, 1)
})
