/**
 * `takesNoContext`: a handler that surely cannot read its third argument (the turn's
 * context) shares one untouched context in its sync turns (shard-runtime.ts `turn`);
 * anything the source text leaves in doubt gets its own, as before.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import { AgentRegistry, takesNoContext } from '../../native-free-core/agent/registry.ts'

test('takesNoContext: at most two plain parameters, a plain name before them, no arguments', () => {
  const o = {
    get (s: { n: number }) { return s.n },
    inc (s: { n: number }, by: number) { s.n += by },
    async later (s: unknown) { return s },
    none () { return 1 },
    withCtx (_s: unknown, _p: unknown, ctx: unknown) { return ctx },
    withDefault (_s: unknown, p = 1, ...rest: unknown[]) { return rest[0] ?? p },
    destructured ({ n }: { n: number }) { return n },
    rest (...a: unknown[]) { return a[2] },
    ['com' + 'puted'] (s: unknown) { return s }
  }
  function readsArguments (_s: unknown): unknown { return arguments[2] } // eslint-disable-line prefer-rest-params
  const yes: Array<(...a: never[]) => unknown> = [o.get, o.inc, o.later, o.none, (s: { n: number }) => s.n, async (s: unknown, p: unknown) => [s, p], function (s: unknown) { return s }]
  for (const f of yes) assert.equal(takesNoContext(f), true, String(f))
  const no: Array<(...a: never[]) => unknown> = [
    o.withCtx, o.withDefault, o.destructured, o.rest, (o as Record<string, (...a: never[]) => unknown>).computed!, readsArguments,
    o.get.bind(o), (s: unknown, /* p */ p: unknown) => [s, p], Math.max
  ]
  for (const f of no) assert.equal(takesNoContext(f), false, String(f))
})

test('the registry marks each method once', () => {
  const a = defineAgent({
    type: 'a',
    initial: () => ({ n: 0 }),
    commands: { inc (s) { s.n++ }, later (_s, _p, ctx) { ctx.timeout(10) } },
    queries: { get (s) { return s.n } }
  })
  const [info] = new AgentRegistry([a]).types
  assert.deepEqual(info!.methods.map((m) => [m.name, m.takesCtx]), [['get', false], ['inc', false], ['later', true]])
})
