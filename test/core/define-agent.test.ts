import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent, isAgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'

const ok = { type: 'thing', initial: () => ({}), commands: { a () {} }, queries: { b () {} } }

test('defineAgent brands and freezes a valid specification', () => {
  const d = defineAgent(ok)
  assert.ok(isAgentDefinition(d))
  assert.ok(Object.isFrozen(d))
})

test('defineAgent refuses bad specifications with SHOAL_ERR_INVALID_DEFINITION', () => {
  const bad: Array<[string, unknown]> = [
    ['no type', { ...ok, type: '' }],
    ['type with separator', { ...ok, type: 'a\u001fb' }],
    ['initial not a function', { ...ok, initial: 3 }],
    ['no handlers', { type: 'x', initial: () => 0 }],
    ['handler not a function', { ...ok, commands: { a: 1 } }],
    ['name both command and query', { ...ok, queries: { a () {} } }],
    ['idleTicks not positive', { ...ok, idleTicks: 0 }],
    ['rateLimit without burst', { ...ok, rateLimit: { perSecond: 10 } }],
    ['durable not boolean', { ...ok, durable: 'yes' }]
  ]
  for (const [why, spec] of bad) {
    assert.throws(() => defineAgent(spec as never), { code: 'SHOAL_ERR_INVALID_DEFINITION' }, why)
  }
})

test('defineAgent refuses a key it does not know, and names the one that was meant', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...ok, intial: () => ({}) }, /"intial" is not a key of an agent specification \(did you mean initial\?\)/],
    [{ ...ok, query: { c () {} } }, /"query" is not a key .*\(did you mean queries\?\)/],
    [{ ...ok, command: { c () {} } }, /\(did you mean commands\?\)/],
    [{ ...ok, idleTick: 5 }, /\(did you mean idleTicks\?\)/],
    [{ ...ok, ratelimit: { perSecond: 1, burst: 1 } }, /\(did you mean rateLimit\?\)/],
    [{ ...ok, onTimeout () {} }, /\(did you mean timeout\?\)/],
    [{ ...ok, persistent: false }, /"persistent" is not a key of an agent specification$/],
    [{ ...ok, rateLimit: { perSecond: 1, brust: 5 } }, /rateLimit\.brust is not an option of a rate limit \(did you mean burst\?\) \(perSecond, burst\)$/],
    [{ ...ok, rateLimit: { perSecond: 1, burst: 1, perMinute: 5 } }, /rateLimit\.perMinute is not an option of a rate limit \(perSecond, burst\)$/]
  ]
  for (const [spec, message] of cases) {
    assert.throws(() => defineAgent(spec as never), (err: unknown) => {
      const e = err as { code: string, message: string }
      assert.equal(e.code, 'SHOAL_ERR_INVALID_DEFINITION')
      assert.match(e.message, message)
      return true
    })
  }
  // a definition spread into a new one keeps only known keys (its brand is a symbol)
  assert.ok(isAgentDefinition(defineAgent({ ...defineAgent(ok), type: 'copy' })))
})

test('the registry numbers types and methods by sorted name, the same on every thread', () => {
  const b = defineAgent({ type: 'b', initial: () => 0, commands: { z () {}, a () {} }, queries: { m () {} } })
  const a = defineAgent({ type: 'a', initial: () => 0, queries: { q () {} } })
  const r1 = AgentRegistry.fromModule({ b, a, again: a })
  const r2 = AgentRegistry.fromModule({ list: [a, b] })
  assert.deepEqual(r1.types.map((t) => t.type), ['a', 'b'])
  assert.deepEqual(r1.require('b').methods.map((m) => m.name), ['a', 'm', 'z'])
  assert.equal(r1.fingerprint(), r2.fingerprint())
  assert.throws(() => r1.require('nope'), { code: 'SHOAL_ERR_UNKNOWN_AGENT_TYPE' })
  assert.throws(() => r1.method(r1.require('a'), 'nope'), { code: 'SHOAL_ERR_UNKNOWN_METHOD' })
  const clash = defineAgent({ type: 'a', initial: () => 1, queries: { q () {} } })
  assert.throws(() => AgentRegistry.fromModule({ a, clash }), { code: 'SHOAL_ERR_INVALID_DEFINITION' })
})
