/**
 * Agent timers and idle passivation through the engine (docs/architecture.md §7, §10), each
 * figure beside a baseline measured in this run. The timing wheel's own figures
 * (10,000,000 timers held, schedule+cancel vs setTimeout, one tick expiring 100,000)
 * are in timing-wheel.bench.ts; this suite measures what the engine adds on top:
 *
 *   1. one tick expiring 100,000 `ctx.timeout` timers in a shard runtime (timer
 *      turns: the handler runs, the state is committed to the memory store) — vs
 *      100,000 messages to the same agents (cast turns), and vs the bare wheel tick;
 *   2. passivation of 1,000,000 idle agents through the host (2 workers, manual clock:
 *      `host.advance(idleTicks)` until none is resident) — vs activating them, and vs
 *      passivating them by a `ctx.deactivate` cast to each;
 *   3. memory: bytes per resident agent with `idleTicks` (one wheel node each) vs the
 *      same agent without (workers: 0, heap + array buffers after a full GC).
 *
 * Run: `node --expose-gc dist/bench/agent-timers.bench.js` (≈ 20 s, ≈ 1 GB peak RSS).
 */
import { createHost } from '../src/index.ts'
import type { Host } from '../src/index.ts'
import { defineAgent } from '../native-free-core/agent/define-agent.ts'
import { AgentRegistry } from '../native-free-core/agent/registry.ts'
import { ShardRuntime } from '../native-free-core/runtime/shard-runtime.ts'
import { MemoryStore } from '../native-free-core/storage/memory-store.ts'
import { Envelope, MSG_CAST } from '../native-free-core/agent/envelope.ts'
import { idString } from '../native-free-core/agent/agent-id.ts'
import { hashId, shardOf } from '../native-free-core/placement/hash.ts'
import { TimingWheel } from '../native-free-core/time/timing-wheel.ts'
import { stateCodec } from '../src/thread/codec.ts'
import { memoryStoreOptions } from '../src/storage/memory-store-options.ts'
import { median, printRows } from './report.ts'
import type { Row } from './report.ts'

const maybeGc = (globalThis as { gc?: () => void }).gc
if (maybeGc === undefined) {
  console.error('run with node --expose-gc')
  process.exit(1)
}
const gc: () => void = maybeGc

const agentsUrl = new URL('./agents.js', import.meta.url)
const EXPIRE = 100_000
const EXPIRE_ROUNDS = 7
const IDLE_AGENTS = 1_000_000
const IDLE_TICKS = 10
const MEMORY_AGENTS = 1_000_000

// ---- 1. one tick expiring 100,000 agent timers, in a shard runtime ----------------------

const ticking = defineAgent({
  type: 'ticking',
  initial: () => ({ n: 0 }),
  commands: {
    arm (_s, ticks: number, ctx) { ctx.timeout(ticks) },
    add (s, by: number) { s.n += by }
  },
  timeout (s) { s.n++ }
})

function runtimeExpiry (): { timerMs: number, castMs: number, wheelMs: number } {
  const registry = new AgentRegistry([ticking])
  const rt = new ShardRuntime({
    registry,
    store: new MemoryStore(memoryStoreOptions),
    codec: stateCodec,
    output: { reply () {}, send () {}, wake () {} }
  })
  const info = registry.require('ticking')
  const arm = registry.method(info, 'arm').index
  const add = registry.method(info, 'add').index
  const envs: Envelope[] = []
  for (let i = 0; i < EXPIRE; i++) {
    const e = new Envelope()
    e.kind = MSG_CAST
    e.id = idString('default', 'ticking', `t${i}`)
    e.hash = hashId(e.id)
    e.typeIdx = info.index
    envs.push(e)
  }
  const timerMs: number[] = []
  const castMs: number[] = []
  for (let round = 0; round < EXPIRE_ROUNDS; round++) {
    // arm every agent for the same tick, ~300 ticks ahead (level 1: cascaded, then fired)
    const due = Math.ceil((rt.tick + 300) / 32) * 32
    for (const e of envs) { e.methodIdx = arm; e.payload = due - rt.tick; rt.deliver(e) }
    rt.commit()
    rt.advanceTo(due - 1, Infinity)
    let t0 = performance.now()
    rt.advanceTo(due, Infinity)
    rt.commit()
    timerMs.push(performance.now() - t0)
    // the same agents, one message each: a cast turn and its commit
    t0 = performance.now()
    for (const e of envs) { e.methodIdx = add; e.payload = 1; rt.deliver(e) }
    rt.commit()
    castMs.push(performance.now() - t0)
  }
  if (rt.timers.size !== 0 || rt.activeAgents !== EXPIRE) throw new Error('every timer fired once')

  // the bare wheel: 100,000 timers on one level-1 slot, one tick
  const wheelMs: number[] = []
  const wheel = new TimingWheel<object>({ initialCapacity: EXPIRE })
  const payload = {}
  let sink = 0
  for (let round = 0; round < EXPIRE_ROUNDS; round++) {
    const due = Math.ceil((wheel.now + 300) / 32) * 32
    for (let i = 0; i < EXPIRE; i++) wheel.schedule(due, payload)
    wheel.advance(due - 1, () => {})
    const t0 = performance.now()
    sink += wheel.advance(due, () => {})
    wheelMs.push(performance.now() - t0)
  }
  if (sink !== EXPIRE * EXPIRE_ROUNDS) throw new Error('wheel fired each timer once')
  return { timerMs: median(timerMs), castMs: median(castMs), wheelMs: median(wheelMs) }
}

// ---- 2. 1,000,000 idle agents passivated through the host --------------------------------

/** One call per worker to an agent it owns: FIFO rings mean everything cast before has run. */
async function barrier (host: Host, workers: number): Promise<void> {
  const owners = new Set<number>()
  const calls: Array<Promise<unknown>> = []
  for (let i = 0; owners.size < workers; i++) {
    const key = `barrier-${i}`
    const owner = 1 + (shardOf(hashId(idString('default', 'counter', key))) % workers)
    if (owners.has(owner)) continue
    owners.add(owner)
    calls.push(host.ref('counter', key).call('get'))
  }
  await Promise.all(calls)
}

async function idlePassivation (): Promise<{ activateMs: number, passivateMs: number, deactivateMs: number }> {
  const workers = 2
  const host = await createHost({ agents: agentsUrl, workers, clock: 'manual' })
  try {
    const keys = Array.from({ length: IDLE_AGENTS }, (_, i) => `i${i}`)
    await barrier(host, workers) // the barrier agents (counters, no idleTicks) exist from here on
    await host.advance(0) // stats are written at the end of a pass: read them with every thread parked
    const baseAgents = host.stats().activeAgents
    let t0 = performance.now()
    for (const k of keys) host.ref('idler', k).cast('get')
    await barrier(host, workers)
    const activateMs = performance.now() - t0
    await host.advance(0)
    if (host.stats().activeAgents !== baseAgents + IDLE_AGENTS) throw new Error('all activated')
    await host.advance(IDLE_TICKS - 1)
    if (host.stats().activeAgents !== baseAgents + IDLE_AGENTS) throw new Error('none passivated early')
    t0 = performance.now()
    await host.advance(1)
    const passivateMs = performance.now() - t0
    if (host.stats().activeAgents !== baseAgents) throw new Error(`all passivated: ${host.stats().activeAgents - baseAgents} left`)

    // baseline: the same agents passivated by a message each (ctx.deactivate)
    for (const k of keys) host.ref('idler', k).cast('get')
    await barrier(host, workers)
    t0 = performance.now()
    for (const k of keys) host.ref('idler', k).cast('bye')
    await barrier(host, workers)
    const deactivateMs = performance.now() - t0
    await host.advance(0)
    if (host.stats().activeAgents !== baseAgents) throw new Error('all deactivated')
    return { activateMs, passivateMs, deactivateMs }
  } finally {
    await host.close()
  }
}

// ---- 3. memory per agent with and without idleTicks ------------------------------------

function bytesInUse (): number {
  gc()
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

async function memoryPerAgent (type: string): Promise<number> {
  const host = await createHost({ agents: agentsUrl, workers: 0, clock: 'manual' })
  try {
    await host.ref(type, 'warm').call('get')
    const before = bytesInUse()
    for (let i = 0; i < MEMORY_AGENTS; i++) host.ref(type, `m${i}`).cast('get')
    await host.ref(type, 'warm').call('get')
    const bytes = (bytesInUse() - before) / MEMORY_AGENTS
    if (host.stats().activeAgents !== MEMORY_AGENTS + 1) throw new Error('all resident')
    return bytes
  } finally {
    await host.close()
  }
}

async function main (): Promise<void> {
  const expiry = runtimeExpiry()
  const idle = await idlePassivation()
  const plainBytes = await memoryPerAgent('counter')
  const idleBytes = await memoryPerAgent('idler')
  const perAgent = (ms: number, n: number): string => `${(ms * 1e6 / n).toFixed(0)} ns/agent`

  const rows: Row[] = [
    {
      name: 'one tick expiring 100,000 ctx.timeout timers (shard runtime)',
      value: expiry.timerMs,
      unit: 'ms',
      baseline: { name: '100,000 cast turns to the same agents + commit', value: expiry.castMs },
      target: { op: '<=', value: 1.5 },
      note: `${perAgent(expiry.timerMs, EXPIRE)}: cascade + fire + timer turn (state += 1) + commit to the memory store; median of ${EXPIRE_ROUNDS}`
    },
    {
      name: 'one tick expiring 100,000 ctx.timeout timers vs the bare wheel',
      value: expiry.timerMs,
      unit: 'ms',
      baseline: { name: 'TimingWheel tick expiring 100,000, no-op callback', value: expiry.wheelMs },
      note: 'the difference is the turns: dispatch, handler, commit (encode + store write) per agent'
    },
    {
      name: 'passivating 1,000,000 idle agents (host.advance, 2 workers)',
      value: idle.passivateMs,
      unit: 'ms',
      baseline: { name: 'activating them (1,000,000 casts)', value: idle.activateMs },
      target: { op: '<=', value: 1 },
      note: `${perAgent(idle.passivateMs, IDLE_AGENTS)} wall, both workers in parallel; idleTicks ${IDLE_TICKS}, all due on one tick`
    },
    {
      name: 'passivating 1,000,000 idle agents vs a ctx.deactivate cast each',
      value: idle.passivateMs,
      unit: 'ms',
      baseline: { name: '1,000,000 casts of a command calling ctx.deactivate', value: idle.deactivateMs },
      target: { op: '<=', value: 1 }
    },
    {
      name: 'bytes per resident agent with idleTicks (workers: 0)',
      value: idleBytes,
      unit: 'B',
      baseline: { name: 'the same agent without idleTicks', value: plainBytes },
      note: `+${(idleBytes - plainBytes).toFixed(1)} B/agent: one timing-wheel node (28 B at capacity; capacity doubles); heap + arrayBuffers after gc, state included`
    }
  ]
  printRows('agent-timers', rows, '1: one thread (main); 2: main + 2 workers, manual clock; 3: main only (workers: 0)')
}

await main()
