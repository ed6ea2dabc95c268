/**
 * Simulator bench (issue 7: "a 4-agent, 8-message scenario finishes in seconds"):
 * explore's exhaustive search over every ordering of 8 transfers among 4 accounts, with
 * its reductions (state hashing, sleep sets, snapshots), beside the same search with
 * state hashing only (no sleep sets, every expansion replayed from the start) measured
 * in this run; then the same with one fault of any kind per run, and the rate of
 * `simulate` runs (traced) with every fault on.
 *
 * A plain search without state hashing is not a baseline here: it would enumerate the
 * interleavings (tens of millions of orderings for this scenario), not finish.
 *
 * Run: `node dist/bench/explore.bench.js` (≈ 20 s on 2 shared cores).
 */
import { defineAgent } from '../native-free-core/agent/define-agent.ts'
import { Explorer } from '../native-free-core/sim/explore.ts'
import { simulate } from '../native-free-core/sim/simulate.ts'
import { prepareScenario } from '../native-free-core/sim/scenario.ts'
import type { ScenarioMessage } from '../native-free-core/sim/scenario.ts'
import type { WorldView } from '../native-free-core/sim/world-view.ts'
import { median, printRows, type Row } from './report.ts'

const ACCOUNTS = ['a', 'b', 'c', 'd']
const ROUNDS = 3

const account = defineAgent({
  type: 'account',
  initial: () => ({ balance: 100, seen: {} as Record<string, true> }),
  commands: {
    transfer (s, t: { to: string, amount: number, tx: string }, ctx) {
      if (s.seen[t.tx] === true) return true
      if (s.balance < t.amount) return false
      s.seen[t.tx] = true
      s.balance -= t.amount
      ctx.send({ type: 'account', key: t.to }, 'deposit', { amount: t.amount, tx: t.tx })
      return true
    },
    deposit (s, d: { amount: number, tx: string }) {
      if (s.seen[d.tx] === true) return
      s.seen[d.tx] = true
      s.balance += d.amount
    }
  }
})

function transfers (n: number): ScenarioMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    to: { type: 'account', key: ACCOUNTS[i % 4]! },
    method: 'transfer',
    payload: { to: ACCOUNTS[(i + 1) % 4]!, amount: 30, tx: `t${i}` }
  }))
}

function conserved (world: WorldView): void {
  let total = 0
  for (const key of ACCOUNTS) total += world.state<{ balance: number }>({ type: 'account', key }).balance
  if (total > 400 || (world.idle && total !== 400)) throw new Error(`total ${total}`)
}

interface Search { ms: number, states: number, runs: number }

async function search (messages: ScenarioMessage[], faults: { max?: number, [k: string]: number | undefined }, reduced: boolean): Promise<Search> {
  const agents = reduced ? [account] : () => [account] // a factory forces replays instead of snapshots
  const explorer = new Explorer(prepareScenario({ agents, messages, faults }), conserved, 10_000_000, reduced)
  const start = performance.now()
  const r = await explorer.run(1)
  const ms = performance.now() - start
  console.assert(r.ok && r.exhaustive, 'the search completes and holds', r.printout)
  return { ms, states: r.states, runs: r.runs }
}

async function timed (messages: ScenarioMessage[], faults: Record<string, number>, reduced: boolean): Promise<Search> {
  const rounds: Search[] = []
  for (let i = 0; i < ROUNDS; i++) rounds.push(await search(messages, faults, reduced))
  console.assert(rounds.every((r) => r.states === rounds[0]!.states), 'the same states every round')
  return { ms: median(rounds.map((r) => r.ms)), states: rounds[0]!.states, runs: rounds[0]!.runs }
}

const eight = transfers(8)
const four = transfers(4)
const allFaults = { drop: 0.1, duplicate: 0.1, reorder: 0.1, delay: 0.1, crash: 0.1 }

const full = await timed(eight, {}, true)
const plain = await timed(eight, {}, false)
console.assert(full.states === plain.states, 'the reductions cover the same states', full, plain)
const faultyFull = await timed(four, { ...allFaults, max: 1 }, true)
const faultyPlain = await timed(four, { ...allFaults, max: 1 }, false)
console.assert(faultyFull.states === faultyPlain.states, 'the reductions cover the same states with faults')

const randomRuns = 1_000
let steps = 0
const start = performance.now()
for (let seed = 1; seed <= randomRuns; seed++) {
  const world = await simulate({ agents: [account], messages: eight, seed, faults: allFaults })
  steps += world.steps
}
const randomMs = performance.now() - start

const rows: Row[] = [
  {
    name: '4 agents, 8 transfers: exhaustive search, wall time',
    value: full.ms,
    unit: 'ms',
    baseline: { name: 'state hashing only, replayed', value: plain.ms },
    target: { op: '<=', value: 1 },
    note: `${full.states} states; ${full.runs} vs ${plain.runs} expansions`
  },
  { name: '4 agents, 8 transfers: exhaustive search, wall time (issue 7: seconds)', value: full.ms / 1000, unit: 's', target: { op: '<=', value: 5 } },
  {
    name: '4 agents, 4 transfers, ≤ 1 fault of any kind: exhaustive, wall time',
    value: faultyFull.ms,
    unit: 'ms',
    baseline: { name: 'state hashing only, replayed', value: faultyPlain.ms },
    target: { op: '<=', value: 1 },
    note: `${faultyFull.states} states; ${faultyFull.runs} vs ${faultyPlain.runs} expansions`
  },
  {
    name: '4 agents, 8 transfers, every fault: simulate() runs, traced',
    value: randomRuns / (randomMs / 1000),
    unit: 'runs/s',
    note: `${randomRuns} seeds, ${(steps / randomRuns).toFixed(1)} steps per run`
  }
]
printRows('explore', rows, 'one thread (the simulator)')
