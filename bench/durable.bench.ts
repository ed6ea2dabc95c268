/**
 * The durable store (issue 3), beside raw lmdb-js measured in the same run:
 *
 *   - DNA's seed benchmark through the public API: 1,000,000 casts of put(key, "test") to
 *     ONE durable agent keeping its keys in ctx.storage, then one call whose reply waits
 *     for their commit. Seed: 337,868 puts/s; target ≥ 1,000,000 commands/s committed.
 *   - commands to 1,000,000 distinct durable agents (activation + group commit), against
 *     raw batched lmdb-js puts of state-sized values under the same ids (target ≥ 0.5×).
 *   - restart of a host over N persisted agents (10,000,000 by default): time to the
 *     first reply and memory, against a host on an empty dataDir — lazy activation means
 *     a restart must not load them.
 *
 * Every host runs on a fresh LMDB directory in the OS temp dir, fsync on (the default
 * durability, 'disk'). Run: node --expose-gc dist/bench/durable.bench.js [--agents N] [--persisted N]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../src/index.ts'
import type { Host } from '../src/index.ts'
import { lmdbPuts } from '../src/baselines/raw-baselines.ts'
import { LmdbStore } from '../src/storage/lmdb-store.ts'
import { idString } from '../native-free-core/agent/agent-id.ts'
import { stateCodec } from '../src/thread/codec.ts'
import { printRows } from './report.ts'
import type { Row } from './report.ts'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const AGENTS = arg('--agents', 1_000_000)
const PERSISTED = arg('--persisted', 10_000_000)
const HOT = 1_000_000
const WORKERS = 2
const agentsUrl = new URL('./agents.js', import.meta.url)
const scratch = mkdtempSync(join(tmpdir(), 'shoal-durable-bench-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))
let dirs = 0
const freshDir = (): string => join(scratch, `data-${++dirs}`)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

/** Casts with bounded flow control: a query per chunk, waited for two chunks later. */
async function paced (count: number, send: (i: number) => void, barrier: () => Promise<unknown>): Promise<void> {
  const inflight: Array<Promise<unknown>> = []
  for (let i = 0; i < count;) {
    const end = Math.min(count, i + 8192)
    for (; i < end; i++) send(i)
    inflight.push(barrier())
    if (inflight.length > 2) await inflight.shift()
  }
  await Promise.all(inflight)
}

async function dna (): Promise<number> {
  const host = await createHost({ agents: agentsUrl, workers: WORKERS, dataDir: freshDir() })
  const ref = host.ref('dna', 'actor')
  await ref.call('sync')
  const t0 = performance.now()
  await paced(HOT, (i) => ref.cast('put', [String(i), 'test']), () => ref.call('puts'))
  const n = await ref.call('sync')
  const rate = HOT / ((performance.now() - t0) / 1000)
  if (n !== HOT) throw new Error(`the DNA agent committed ${n} of ${HOT} puts`)
  await host.close()
  return rate
}

async function distinct (): Promise<number> {
  const host = await createHost({ agents: agentsUrl, workers: WORKERS, dataDir: freshDir() })
  const keys = Array.from({ length: AGENTS }, (_, i) => `user-${i}`)
  const flush = async (): Promise<void> => {
    // a command per worker: its reply leaves after every earlier batch of that worker committed
    await Promise.all([0, 1, 2, 3].map((i) => host.ref('counter', `flush-${i}`).call('add', 0)))
  }
  const t0 = performance.now()
  await paced(AGENTS, (i) => host.ref('counter', keys[i]!).cast('add', 1), () => host.ref('counter', 'barrier').call('get'))
  await flush()
  const rate = AGENTS / ((performance.now() - t0) / 1000)
  await host.close()
  return rate
}

/** Write `count` counter states straight into a data dir, as a host would have left them (the store's own format). */
async function populate (dir: string, count: number): Promise<void> {
  const store = new LmdbStore({ path: dir, durability: 'os' })
  const bytes = stateCodec.encode({ n: 1 })
  for (let i = 0; i < count;) {
    const states: Array<[string, Uint8Array]> = []
    const end = Math.min(count, i + 100_000)
    for (; i < end; i++) states.push([idString('default', 'counter', `user-${i}`), bytes])
    await store.commit({ states })
  }
  await store.close()
}

async function restart (dir: string): Promise<{ ms: number, rssBytes: number }> {
  gc()
  const rss0 = process.memoryUsage().rss
  const t0 = performance.now()
  const host: Host = await createHost({ agents: agentsUrl, workers: WORKERS, dataDir: dir })
  const n = await host.ref('counter', 'user-7').call('get')
  const ms = performance.now() - t0
  gc()
  const rssBytes = process.memoryUsage().rss - rss0
  await host.close()
  if (n !== 1 && n !== 0) throw new Error(`unexpected state ${n}`)
  return { ms, rssBytes }
}

const rows: Row[] = []
const dnaRate = await dna()
const rawStorage = await lmdbPuts(2000, (i) => `\u0000\u0019default\u001fdna\u001factor${i}`, 5, scratch)
rows.push({ name: 'DNA: 1M put(key, "test") to one durable agent, committed', value: dnaRate, unit: 'cmd/s', baseline: { name: 'raw lmdb-js puts, 5-byte values', value: rawStorage.perSecond }, note: `seed 337,868/s; target ≥ 1,000,000/s: ${dnaRate >= 1_000_000 ? 'met' : 'MISSED'}` })
const distinctRate = await distinct()
const rawStates = await lmdbPuts(3000, (i) => idString('default', 'counter', `user-${i}`), 6, scratch)
rows.push({ name: `commands to ${AGENTS.toLocaleString('en-US')} distinct durable agents, committed`, value: distinctRate, unit: 'cmd/s', baseline: { name: 'raw lmdb-js puts, state-sized', value: rawStates.perSecond }, target: { op: '>=', value: 0.5 } })
const populated = freshDir()
const t0 = performance.now()
await populate(populated, PERSISTED)
const populateMs = performance.now() - t0
const empty = await restart(freshDir())
const full = await restart(populated)
rows.push({ name: `restart over ${PERSISTED.toLocaleString('en-US')} persisted agents: createHost → first reply`, value: full.ms, unit: 'ms', baseline: { name: 'empty dataDir', value: empty.ms }, note: `populated in ${(populateMs / 1000).toFixed(1)} s` })
rows.push({ name: 'restart: RSS growth to the first reply', value: full.rssBytes / 2 ** 20, unit: 'MiB', baseline: { name: 'empty dataDir', value: Math.max(empty.rssBytes / 2 ** 20, 0.1) } })
printRows('durable', rows, `${WORKERS} workers + main thread`)
