/**
 * `initial(key)`: a definition whose `initial` cannot read an argument gets no key, and
 * an activation from a frame's id bytes then decodes nothing; every other `initial` gets
 * the key, whatever its `length` says (a default or rest parameter counts as none).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry, takesNoArgument } from '../../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../../native-free-core/runtime/shard-runtime.ts'
import { Envelope, MSG_CALL } from '../../native-free-core/agent/envelope.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { simCodec } from '../../native-free-core/sim/codec.ts'

test('takesNoArgument: only an empty parameter list that reads no arguments', () => {
  const o = { initial () { return 1 }, withKey (k: string) { return k } }
  function readsArguments (): unknown { return arguments[0] } // eslint-disable-line prefer-rest-params
  for (const f of [() => ({ n: 0 }), function () { return 1 }, o.initial, async () => 1]) assert.equal(takesNoArgument(f), true, String(f))
  const none: Array<(...a: never[]) => unknown> = [
    (k: string) => k, (k = 'x') => k, (...a: string[]) => a[0], readsArguments, o.withKey,
    readsArguments.bind(null), (/* key */) => 1, Math.random
  ]
  for (const f of none) assert.equal(takesNoArgument(f), false, String(f))
})

const seen: unknown[] = []
const plain = defineAgent({ type: 'plain', initial: () => ({ n: 0 }), queries: { get (s) { return s } } })
const keyed = defineAgent({ type: 'keyed', initial: (key) => ({ key }), queries: { get (s) { return s } } })
const defaulted = defineAgent({ type: 'defaulted', initial: (key = 'none') => ({ key }), queries: { get (s) { return s } } })
const rest = defineAgent({
  type: 'rest',
  initial: (...args: string[]) => { seen.push(args.length); return { key: args[0] } },
  queries: { get (s) { return s } }
})

test('an activation from a frame passes the key to every initial that can read it, and decodes none for one that cannot', () => {
  const registry = new AgentRegistry([plain, keyed, defaulted, rest])
  const replies: unknown[] = []
  const output: RuntimeOutput = {
    reply: (_to, _callId, ok, value) => replies.push(ok ? value : value),
    send: () => {},
    wake: () => {},
    agentError: () => {}
  }
  const rt = new ShardRuntime({ registry, store: null, codec: simCodec, output })
  let decoded = 0
  const ask = (type: string, key: string): unknown => {
    const info = registry.require(type)
    const id = idString('default', type, key)
    const frame = Buffer.from(`hdr${id}tail`)
    const e = new Envelope()
    e.kind = MSG_CALL; e.hash = hashId(id); e.callId = 1
    e.typeIdx = info.index; e.methodIdx = registry.method(info, 'get').index
    e.setIdBytes(frame, 3, Buffer.byteLength(id), (bytes, at, end) => { decoded++; return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', at, end) })
    rt.deliver(e)
    return replies.at(-1)
  }
  assert.deepEqual(ask('plain', 'p-é1'), { n: 0 })
  assert.equal(decoded, 0, 'no key decoded for () => …')
  assert.deepEqual(ask('keyed', 'k-é1'), { key: 'k-é1' })
  assert.deepEqual(ask('defaulted', 'd-é1'), { key: 'd-é1' }, 'a default parameter still gets the key')
  assert.deepEqual(ask('rest', 'r-é1'), { key: 'r-é1' }, 'a rest parameter still gets the key')
  assert.deepEqual(seen, [1])
})
