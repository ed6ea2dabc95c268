/**
 * Multi-tenant controls and side effects, each against a baseline measured in this run:
 *
 *   1. rate limits: casts through the shard runtime to 1,000 resident agents of a type
 *      with a rate limit (never reached) vs the same type without one — the bucket's cost
 *      per message (tinybench, one thread, no rings).
 *   2. memory: heap per resident agent of a limited type vs a plain one (200,000 each,
 *      after full GCs) — what the LimitedCell subclass costs, and proof plain cells pay 0.
 *   3. offload: call round trip whose handler awaits a no-op ctx.offload, on 2 workers and
 *      the host's pool on the main thread, vs `pool.run` of the same task straight from
 *      the main thread on a pool of its own, and vs the same call without offload. The
 *      difference (offload call − plain call) is what the worker → main → worker hop and
 *      piscina add; piscina alone is the floor.
 *   4. follow: a hot agent's commands committed per second with one follower reading
 *      every state vs none (the follower gets one frame per committed batch).
 *
 * Run: node --expose-gc dist/bench/tenancy.bench.js  (≈ 20 s)
 */
import { Bench } from 'tinybench'
import { Piscina } from 'piscina'
import { createHost } from '../src/index.ts'
import type { Host } from '../src/index.ts'
import { AgentRegistry } from '../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../native-free-core/runtime/shard-runtime.ts'
import type { RuntimeOutput } from '../native-free-core/runtime/shard-runtime.ts'
import { Envelope, MSG_CAST } from '../native-free-core/agent/envelope.ts'
import { idString } from '../native-free-core/agent/agent-id.ts'
import { hashId } from '../native-free-core/placement/hash.ts'
import { stateCodec } from '../src/thread/codec.ts'
import { counter, limitedCounter, volatileCounter } from './agents.ts'
import { median, printRows } from './report.ts'
import type { Row } from './report.ts'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error('run with node --expose-gc')
  process.exit(1)
}
const agentsUrl = new URL('./agents.js', import.meta.url)
const tasksUrl = new URL('./tasks.js', import.meta.url)
const rows: Row[] = []

// ---- 1 and 2: the shard runtime on this thread ----------------------------------------

const output: RuntimeOutput = { reply: () => {}, send: () => {}, wake: () => {} }
function runtime (): ShardRuntime {
  return new ShardRuntime({ registry: new AgentRegistry([counter, volatileCounter, limitedCounter]), store: null, codec: stateCodec, output })
}
function envelopes (rt: ShardRuntime, type: string, n: number, prefix: string): Envelope[] {
  const info = rt.registry.require(type)
  return Array.from({ length: n }, (_, i) => {
    const e = new Envelope()
    e.kind = MSG_CAST; e.id = idString('default', type, `${prefix}${i}`); e.hash = hashId(e.id)
    e.typeIdx = info.index; e.methodIdx = rt.registry.method(info, 'add').index; e.payload = 1
    return e
  })
}

{
  const rt = runtime()
  const plain = envelopes(rt, 'volatile', 1_000, 'k')
  const limited = envelopes(rt, 'limited', 1_000, 'k')
  for (const e of [...plain, ...limited]) rt.deliver(e)
  let i = 0
  const bench = new Bench({ name: 'rate-limit', time: 1_500 })
  // one commit per 1,024 messages, as the host loop closes a batch per pass (it also
  // makes the limited type read the clock once per batch, as it does there)
  bench.add('cast, plain type', () => { for (let j = 0; j < 1_024; j++) rt.deliver(plain[(i++) % 1_000]!); rt.commit() })
    .add('cast, rate-limited type', () => { for (let j = 0; j < 1_024; j++) rt.deliver(limited[(i++) % 1_000]!); rt.commit() })
  await bench.run()
  const [p, l] = bench.tasks.map((t) => 1_024 * (t.result as { throughput: { mean: number } }).throughput.mean)
  console.assert(rt.rateLimited === 0, 'the limit was never reached')
  rows.push({ name: 'casts/s through the runtime, rate-limited type', value: l!, unit: 'msgs/s', baseline: { name: 'same type without rateLimit', value: p! }, note: 'one thread, 1,000 resident agents, no rings' })
}

{
  const N = 200_000
  const perAgent = (type: string): number => {
    const rt = runtime()
    const envs = envelopes(rt, type, N, 'm')
    gc(); gc()
    const before = process.memoryUsage().heapUsed
    for (const e of envs) rt.deliver(e)
    gc(); gc()
    const bytes = (process.memoryUsage().heapUsed - before) / N
    // both stay reachable until here: collecting the envelopes would hide the cells' bytes
    if (rt.activeAgents !== N || envs.length !== N) throw new Error('not all resident')
    return bytes
  }
  perAgent('volatile') // warm up the code paths
  const plain = median([perAgent('volatile'), perAgent('volatile'), perAgent('volatile')])
  const limited = median([perAgent('limited'), perAgent('limited'), perAgent('limited')])
  rows.push({ name: 'heap per resident agent, rate-limited type', value: limited, unit: 'B', baseline: { name: 'plain type (cell, state, table slot; ids excluded)', value: plain }, note: `+${(limited - plain).toFixed(1)} B per limited agent` })
}

// ---- 3: offload round trip -------------------------------------------------------------

async function p50 (rounds: number, once: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await once()
  const samples: number[] = []
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now()
    await once()
    samples.push((performance.now() - t0) * 1000)
  }
  return median(samples)
}

{
  const ROUNDS = 2_000
  const pool = new Piscina({ filename: tasksUrl.href, maxThreads: 1, minThreads: 1 })
  const direct = await p50(ROUNDS, () => pool.run(1, { name: 'echo' }))
  await pool.destroy()
  const host = await createHost({ agents: agentsUrl, workers: 2, offload: { filename: tasksUrl, maxThreads: 1, minThreads: 1 } })
  const viaEngine = await p50(ROUNDS, () => host.ref('offloader', 'o').call('run', 1))
  const plainCall = await p50(ROUNDS, () => host.ref('volatile', 'o').call('add', 1))
  await host.close()
  rows.push({ name: 'call whose handler awaits ctx.offload, p50', value: viaEngine, unit: 'µs', baseline: { name: 'the same call without offload', value: plainCall } })
  rows.push({ name: 'offload\'s share of that call (difference), p50', value: viaEngine - plainCall, unit: 'µs', baseline: { name: 'piscina pool.run from the main thread', value: direct }, note: 'worker → main → pool → main → worker' })
}

// ---- 4: follow -------------------------------------------------------------------------

let hotRuns = 0
async function hotCommitted (host: Host, follow: boolean): Promise<number> {
  const CASTS = 500_000
  const ref = host.ref('counter', `hot-${hotRuns++}`)
  let states = 0
  const it = follow ? ref.follow() : null
  const reading = it === null ? null : (async () => { for await (const _ of it) states++ })()
  await ref.call('add', 0)
  const t0 = performance.now()
  for (let i = 0; i < CASTS; i++) ref.cast('add', 1)
  const n = await ref.call('get')
  const rate = CASTS / ((performance.now() - t0) / 1000)
  if (n !== CASTS) throw new Error(`counted ${String(n)}`)
  await it?.return?.()
  await reading
  if (follow && states === 0) throw new Error('the follower saw nothing')
  return rate
}

{
  const host = await createHost({ agents: agentsUrl, workers: 2 })
  await hotCommitted(host, false)
  const without = median([await hotCommitted(host, false), await hotCommitted(host, false), await hotCommitted(host, false)])
  const withFollower = median([await hotCommitted(host, true), await hotCommitted(host, true), await hotCommitted(host, true)])
  await host.close()
  rows.push({ name: 'hot agent, commands committed/s, one follower', value: withFollower, unit: '/s', baseline: { name: 'no follower', value: without } })
}

printRows('tenancy', rows, '2 workers + main thread (+ 1 offload pool thread in 3)')
