/** Bad input to simulate and explore throws typed ShoalErrors at the call, naming what is wrong. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defineAgent } from '../../native-free-core/agent/define-agent.ts'
import type { AgentDefinition } from '../../native-free-core/agent/define-agent.ts'
import { explore, simulate } from '../../native-free-core/index.ts'
import type { SimulateOptions } from '../../native-free-core/index.ts'
import { account } from '../fixtures/bank.ts'

const to = { type: 'account', key: 'a' }
const good: SimulateOptions = { agents: [account], messages: [{ to, method: 'balance' }] }

function rejectsWith (code: string, option?: string): (err: unknown) => boolean {
  return (err: unknown) => {
    const e = err as { code?: string, data?: { option?: string } }
    assert.equal(e.code, code, String(err))
    if (option !== undefined) assert.equal(e.data?.option, option)
    return true
  }
}

test('bad options: an InvalidOptionError naming the option', async () => {
  const cases: Array<[unknown, string, string?]> = [
    [null, 'SHOAL_ERR_INVALID_ARGUMENT'],
    [{ ...good, seeds: 1 }, 'SHOAL_ERR_INVALID_OPTION', 'seeds'],
    [{ ...good, agents: [] }, 'SHOAL_ERR_INVALID_OPTION', 'agents'],
    [{ ...good, agents: [{ type: 'account' }] }, 'SHOAL_ERR_INVALID_OPTION', 'agents[0]'],
    [{ ...good, agents: 'account' }, 'SHOAL_ERR_INVALID_OPTION', 'agents'],
    [{ ...good, messages: { to } }, 'SHOAL_ERR_INVALID_OPTION', 'messages'],
    [{ ...good, messages: [{ to, method: 'balance', pay: 1 }] }, 'SHOAL_ERR_INVALID_OPTION', 'messages[0].pay'],
    [{ ...good, messages: [{ to, method: 'balance', client: '' }] }, 'SHOAL_ERR_INVALID_OPTION', 'messages[0].client'],
    [{ ...good, seed: -1 }, 'SHOAL_ERR_INVALID_OPTION', 'seed'],
    [{ ...good, seed: 1.5 }, 'SHOAL_ERR_INVALID_OPTION', 'seed'],
    [{ ...good, ticks: -1 }, 'SHOAL_ERR_INVALID_OPTION', 'ticks'],
    [{ ...good, maxSteps: 0 }, 'SHOAL_ERR_INVALID_OPTION', 'maxSteps'],
    [{ ...good, faults: { lose: 0.1 } }, 'SHOAL_ERR_INVALID_OPTION', 'faults.lose'],
    [{ ...good, faults: { drop: 2 } }, 'SHOAL_ERR_INVALID_OPTION', 'faults.drop'],
    [{ ...good, faults: { drop: 0.6, duplicate: 0.6 } }, 'SHOAL_ERR_INVALID_OPTION', 'faults'],
    [{ ...good, faults: { maxDelay: 0 } }, 'SHOAL_ERR_INVALID_OPTION', 'faults.maxDelay'],
    [{ ...good, faults: { max: -1 } }, 'SHOAL_ERR_INVALID_OPTION', 'faults.max'],
    [{ ...good, offload: { f: 1 } }, 'SHOAL_ERR_INVALID_OPTION', 'offload.f'],
    [{ ...good, replay: 'nonsense' }, 'SHOAL_ERR_INVALID_OPTION', 'replay'],
    [{ ...good, replay: 'shoal-sim/1;faults=1;0', seed: 2 }, 'SHOAL_ERR_INVALID_OPTION', 'replay']
  ]
  for (const [options, code, option] of cases) {
    await assert.rejects(simulate(options as SimulateOptions), rejectsWith(code, option), JSON.stringify(options))
  }
})

test('bad messages: the errors a host gives for the same mistakes', async () => {
  const run = (messages: unknown): Promise<unknown> => simulate({ agents: [account], messages: messages as SimulateOptions['messages'] })
  await assert.rejects(run([{ to: { type: 'acount', key: 'a' }, method: 'transfer' }]), rejectsWith('SHOAL_ERR_UNKNOWN_AGENT_TYPE'))
  await assert.rejects(run([{ to, method: 'withdraw' }]), rejectsWith('SHOAL_ERR_UNKNOWN_METHOD'))
  await assert.rejects(run([{ to: { type: 'account', key: 42 }, method: 'balance' }]), rejectsWith('SHOAL_ERR_INVALID_ARGUMENT'))
  await assert.rejects(run([{ to: { type: 'account', key: 'a', quota: 'bad quota' }, method: 'balance' }]), rejectsWith('SHOAL_ERR_INVALID_ARGUMENT'))
  await assert.rejects(run([{ to: null, method: 'balance' }]), rejectsWith('SHOAL_ERR_INVALID_ARGUMENT'))
  await assert.rejects(run(['transfer']), rejectsWith('SHOAL_ERR_INVALID_OPTION', 'messages[0]'))
  await assert.rejects(run([{ to, method: 'transfer', payload: Symbol('x') }]), rejectsWith('SHOAL_ERR_ENCODE'))
  await assert.rejects(run([{ to, method: 'transfer', payload: () => 1 }]), rejectsWith('SHOAL_ERR_ENCODE'))
})

test('bad explore options', async () => {
  const base = { agents: [account], messages: [{ to, method: 'balance' }] }
  await assert.rejects(explore({ ...base } as never), rejectsWith('SHOAL_ERR_INVALID_OPTION', 'invariant'))
  await assert.rejects(explore({ ...base, invariant: () => true, maxRuns: 0 }), rejectsWith('SHOAL_ERR_INVALID_OPTION', 'maxRuns'))
  await assert.rejects(explore({ ...base, invariant: () => true, replay: 'x' } as never), rejectsWith('SHOAL_ERR_INVALID_OPTION', 'replay'))
  await assert.rejects(explore({ ...base, invariant: async () => true }), rejectsWith('SHOAL_ERR_INVALID_OPTION', 'invariant'))
})

test('an agents factory that changes its definitions between runs is refused', async () => {
  let n = 0
  const agents = (): AgentDefinition[] => [n++ === 0
    ? defineAgent({ type: 'x', initial: () => 0, commands: { a () {} } })
    : defineAgent({ type: 'x', initial: () => 0, commands: { b () {} } })]
  await assert.rejects(explore({ agents, messages: [{ to: { type: 'x', key: 'k' }, method: 'a' }], invariant: () => true }), rejectsWith('SHOAL_ERR_INVALID_OPTION', 'agents'))
})

test('reading the world: bad addresses are refused; handler mistakes are in the trace, not thrown', async () => {
  const world = await simulate(good)
  assert.throws(() => world.state({ type: 'nope', key: 'a' }), rejectsWith('SHOAL_ERR_UNKNOWN_AGENT_TYPE'))
  assert.throws(() => world.state({ type: 'account', key: 1 as unknown as string }), rejectsWith('SHOAL_ERR_INVALID_ARGUMENT'))
  // a send to an unknown type throws inside the handler: an AgentError reply and an error entry
  const typo = defineAgent({ type: 'typo', initial: () => ({}), commands: { go (_s, _p, ctx) { ctx.send({ type: 'acount', key: 'b' }, 'deposit', 1) } } })
  const w = await simulate({ agents: [typo], messages: [{ to: { type: 'typo', key: 'a' }, method: 'go' }] })
  const reply = w.replies[0]
  assert.equal(reply?.ok === false && reply.error.code, 'SHOAL_ERR_AGENT')
  assert.ok(w.trace.some((e) => e.kind === 'error' && e.agent === 'typo/a' && e.code === 'SHOAL_ERR_AGENT'))
})

test('an async handler that waits on real time fails the run with SimulationError', async () => {
  const slow = defineAgent({
    type: 'slow',
    initial: () => ({}),
    commands: { async wait () { await new Promise((resolve) => setTimeout(resolve, 5)) } }
  })
  await assert.rejects(simulate({ agents: [slow], messages: [{ to: { type: 'slow', key: 'a' }, method: 'wait' }] }), rejectsWith('SHOAL_ERR_SIMULATION'))
})
