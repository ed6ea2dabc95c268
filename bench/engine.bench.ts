/**
 * The single-host engine against its raw building blocks, measured in one run:
 * casts to 1,000,000 distinct agents and to one hot agent, call round trips, workers: 0
 * against 2 workers, and memory per resident agent. Each figure is printed beside the
 * baseline it is held against (see src/baselines/raw-baselines.ts) with the target from docs/architecture.md §10.
 *
 * Run: node --expose-gc dist/bench/engine.bench.js [--agents N]
 */
import { createHost } from '../src/index.ts'
import type { Host } from '../src/index.ts'
import { latencyOf, msgpackRingDispatch, postMessageOneWay, ringOneWay, ringPingPong } from '../src/baselines/raw-baselines.ts'
import { printRows } from './report.ts'
import type { Row } from './report.ts'
import { hashId, shardOf } from '../native-free-core/placement/hash.ts'
import { idString } from '../native-free-core/agent/agent-id.ts'

const agentsUrl = new URL('./agents.js', import.meta.url)
const argAgents = process.argv.indexOf('--agents')
const N = argAgents > 0 ? Number(process.argv[argAgents + 1]) : 1_000_000
const HOT = 2_000_000
const ROUNDS = 20_000
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

/** One call per worker, to an agent it owns: FIFO per ring means everything cast before is processed. */
async function barrier (host: Host, type: string, workers: number): Promise<void> {
  const owners = new Set<number>()
  const calls: Array<Promise<unknown>> = []
  for (let i = 0; owners.size < Math.max(1, workers); i++) {
    const key = `barrier-${i}`
    const owner = workers === 0 ? 0 : 1 + (shardOf(hashId(idString('default', type, key))) % workers)
    if (owners.has(owner)) continue
    owners.add(owner)
    calls.push(host.ref(type, key).call('get'))
  }
  await Promise.all(calls)
}

async function castRate (host: Host, type: string, keys: readonly string[], workers: number): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < keys.length; i++) host.ref(type, keys[i]!).cast('add', 1)
  await barrier(host, type, workers)
  return keys.length / ((performance.now() - t0) / 1000)
}

async function hotRate (host: Host, type: string, casts: number): Promise<number> {
  const ref = host.ref(type, 'hot')
  const t0 = performance.now()
  for (let i = 0; i < casts; i++) ref.cast('add', 1)
  const n = await ref.call('get')
  const s = (performance.now() - t0) / 1000
  if (n !== casts) throw new Error(`hot agent counted ${String(n)}, expected ${casts}`)
  return casts / s
}

async function callLatency (host: Host, rounds: number): Promise<{ p50us: number, p99us: number, p999us: number }> {
  const ref = host.ref('counter', 'latency')
  await ref.call('add', 1)
  const samples: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    await ref.call('get')
    samples.push(performance.now() - t0)
  }
  return latencyOf(samples.slice(Math.floor(rounds / 10)))
}

async function workerHeaps (host: Host, workers: number): Promise<number> {
  let total = 0
  const seen = new Set<number>()
  for (let i = 0; seen.size < Math.max(1, workers); i++) {
    const key = `probe-${i}`
    const owner = workers === 0 ? 0 : 1 + (shardOf(hashId(idString('default', 'heap-probe', key))) % workers)
    if (seen.has(owner)) continue
    seen.add(owner)
    total += await host.ref('heap-probe', key).call('heap') as number
  }
  return total
}

/** Heap bytes of N states as `initial` makes them, to subtract: "beyond its state". */
function stateBytes (n: number): number {
  gc()
  const before = process.memoryUsage().heapUsed
  const keep: Array<{ n: number }> = new Array(n)
  for (let i = 0; i < n; i++) keep[i] = { n: 0 }
  gc()
  const bytes = (process.memoryUsage().heapUsed - before) / n
  keep.length = 0
  return bytes
}

async function main (): Promise<void> {
  const rows: Row[] = []
  const keys = Array.from({ length: N }, (_, i) => `k${i}`)

  // baselines (main + 1 worker)
  const ring = await ringOneWay(4_000_000, 48)
  const post = await postMessageOneWay(300_000)
  const disp1M = await msgpackRingDispatch(2_000_000, N)
  const disp10k = await msgpackRingDispatch(2_000_000, 10_000)
  const pingParked = await ringPingPong(ROUNDS, false)
  const pingSpin = await ringPingPong(ROUNDS, true)
  rows.push({ name: 'raw ring one-way, 48-byte frames', value: ring.perSecond, unit: 'msgs/s', baseline: { name: 'postMessage one per message', value: post.perSecond } })
  rows.push({ name: 'raw msgpackr+ring+Map dispatch, 1M agents', value: disp1M.perSecond, unit: 'msgs/s', note: 'baseline for engine casts (1M agents)' })
  rows.push({ name: 'raw msgpackr+ring+Map dispatch, 10k agents', value: disp10k.perSecond, unit: 'msgs/s', note: 'baseline for the hot agent' })
  rows.push({ name: 'raw ring ping-pong p50, spinning', value: pingSpin.p50us, unit: 'µs', note: 'reference: both threads burn a core' })

  // engine, 2 workers (main + 2 workers on 2 cores: over-subscribed by one)
  let host = await createHost({ agents: agentsUrl, workers: 2 })
  gc()
  const heap0 = await workerHeaps(host, 2)
  const rss0 = process.memoryUsage().rss
  const activate = await castRate(host, 'volatile', keys, 2)
  gc()
  const heap1 = await workerHeaps(host, 2)
  const rss1 = process.memoryUsage().rss
  const resident = await castRate(host, 'volatile', keys, 2)
  const hot = await hotRate(host, 'volatile', HOT)
  const storedActivate = await castRate(host, 'counter', keys, 2)
  const storedResident = await castRate(host, 'counter', keys, 2)
  const storedHot = await hotRate(host, 'counter', HOT)
  const call = await callLatency(host, ROUNDS)
  await host.close()
  const perAgentHeap = (heap1 - heap0) / N
  const perState = stateBytes(Math.min(N, 1_000_000))

  rows.push({ name: 'engine casts, 1M distinct agents, activating', value: activate, unit: 'msgs/s', baseline: { name: 'msgpackr+ring dispatch 1M', value: disp1M.perSecond }, target: { op: '>=', value: 0.5 }, note: 'durable: false' })
  rows.push({ name: 'engine casts, 1M resident agents', value: resident, unit: 'msgs/s', baseline: { name: 'msgpackr+ring dispatch 1M', value: disp1M.perSecond }, target: { op: '>=', value: 0.5 }, note: 'durable: false' })
  rows.push({ name: 'engine casts, one hot agent', value: hot, unit: 'msgs/s', baseline: { name: 'msgpackr+ring dispatch 10k', value: disp10k.perSecond }, target: { op: '>=', value: 0.5 }, note: 'durable: false' })
  rows.push({ name: 'engine casts, 1M resident agents, vs postMessage', value: resident, unit: 'msgs/s', baseline: { name: 'postMessage one per message', value: post.perSecond }, target: { op: '>=', value: 10 } })
  rows.push({ name: 'engine casts, one hot agent, vs postMessage', value: hot, unit: 'msgs/s', baseline: { name: 'postMessage one per message', value: post.perSecond }, target: { op: '>=', value: 10 } })
  rows.push({ name: 'engine casts, 1M agents, memory store, activating', value: storedActivate, unit: 'msgs/s', baseline: { name: 'msgpackr+ring dispatch 1M', value: disp1M.perSecond }, note: 'every command committed to the in-memory store' })
  rows.push({ name: 'engine casts, 1M agents, memory store, resident', value: storedResident, unit: 'msgs/s', baseline: { name: 'msgpackr+ring dispatch 1M', value: disp1M.perSecond } })
  rows.push({ name: 'engine casts, hot agent, memory store', value: storedHot, unit: 'msgs/s', baseline: { name: 'msgpackr+ring dispatch 10k', value: disp10k.perSecond } })
  rows.push({ name: 'engine call round trip p50', value: call.p50us, unit: 'µs', baseline: { name: 'raw ring ping-pong, parked', value: pingParked.p50us }, target: { op: '<=', value: 2 } })
  rows.push({ name: 'engine call round trip p99', value: call.p99us, unit: 'µs', baseline: { name: 'raw ring ping-pong, parked', value: pingParked.p99us } })
  rows.push({ name: 'engine memory per resident agent (heap, beyond state)', value: perAgentHeap - perState, unit: 'B', target: { op: '<=', value: 200 }, note: `${perAgentHeap.toFixed(0)} B with its { n: 0 } state (${perState.toFixed(0)} B); RSS delta ${((rss1 - rss0) / N).toFixed(0)} B/agent` })

  // workers: 0 — everything on the main thread
  host = await createHost({ agents: agentsUrl, workers: 0 })
  const zeroActivate = await castRate(host, 'volatile', keys, 0)
  const zeroResident = await castRate(host, 'volatile', keys, 0)
  const zeroHot = await hotRate(host, 'volatile', HOT)
  await host.close()
  rows.push({ name: 'workers: 0 casts, 1M agents, activating', value: zeroActivate, unit: 'msgs/s', baseline: { name: '2 workers', value: activate } })
  rows.push({ name: 'workers: 0 casts, 1M resident agents', value: zeroResident, unit: 'msgs/s', baseline: { name: '2 workers', value: resident } })
  rows.push({ name: 'workers: 0 casts, one hot agent', value: zeroHot, unit: 'msgs/s', baseline: { name: '2 workers', value: hot } })

  printRows('engine', rows, 'baselines: main + 1 worker; engine: main (producer) + 2 workers, or main only for workers: 0')
}

await main()
