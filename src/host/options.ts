/**
 * `createHost` options: one object, validated once, resolved with defaults into a
 * frozen `ResolvedHostOptions`. Every refusal is an InvalidOptionError that names the
 * option, the rule and the value — including options that do not exist, since a typo
 * (`worker: 4`) silently ignored is a misconfigured production host.
 */
import { statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { InvalidOptionError } from '../../native-free-core/errors.ts'
import { didYouMean } from '../../native-free-core/did-you-mean.ts'
import { maxFrameBytes } from '../../native-free-core/ring/ring-queue.ts'
import { CLOCK_MANUAL, CLOCK_REAL } from '../time/thread-clock.ts'
import type { ClockKind } from '../time/thread-clock.ts'
import { TestClock, kTestClock } from '../time/test-clock.ts'
import type { TestHooks } from '../time/test-clock.ts'
import type { Durability } from '../storage/lmdb-store.ts'
import { defaultFlushIntervalMs, kMaxFlushIntervalMs } from '../storage/durability.ts'
import { kOutboxMode } from '../storage/local-acks.ts'
import type { OutboxMode } from '../../native-free-core/runtime/ports.ts'
import type { HostPlugin } from './plugin.ts'

/** @internal Test hook (not in HostOptions' type): durable sends in dedup mode, acknowledged on this host (src/storage/local-acks.ts). */
export interface OutboxHook {
  readonly [kOutboxMode]?: OutboxMode
}
import type { OffloadOptions, ResolvedOffloadOptions } from '../offload/offload-options.ts'

export type { OffloadOptions, ResolvedOffloadOptions } from '../offload/offload-options.ts'

export interface HostOptions {
  /** The module that exports the agent definitions; every worker imports it. A file URL or a path. */
  readonly agents: URL | string
  /** Worker threads owning the agents. `0` runs them on the calling thread. Default: `os.availableParallelism()`. */
  readonly workers?: number
  /** LMDB environment directory for durable state. Omitted: an in-memory store. */
  readonly dataDir?: string
  /**
   * When a command is acknowledged (with `dataDir`): `'disk'` (default) once LMDB has
   * flushed it to disk — it survives kill -9 and power loss. `'os'` once it is committed
   * to the OS's page cache, LMDB flushing in the background every `flushIntervalMs` — it
   * survives the process dying (kill -9, OOM); power loss or an OS crash may lose the
   * last ~`flushIntervalMs` of acknowledged commands and may corrupt the environment
   * (LMDB without per-commit flushes relies on the filesystem keeping write order; see
   * README, "Durability modes").
   */
  readonly durability?: Durability
  /**
   * With durability `'os'`: how often each thread flushes what it wrote to disk, in ms
   * (1 to 3,600,000). Default 1000. Bounds what power loss can take, not the corruption
   * risk.
   */
  readonly flushIntervalMs?: number
  /** Milliseconds per tick of the host clock. Default 1000. */
  readonly tickMs?: number
  /**
   * `'real'` (default): a tick every `tickMs`. `'manual'`: time moves only by
   * `host.advance(ticks)`, for tests that check timer logic without waiting.
   */
  readonly clock?: ClockKind
  /** Largest encoded message (header + id + payload), in bytes. Default 256 KiB. */
  readonly maxMessageBytes?: number
  /**
   * Bytes per ring between two threads: a power of two from 4 KiB to 1 GiB, at least
   * 2 × maxMessageBytes + 16. Default 4 MiB, or 4 × maxMessageBytes rounded up to a power
   * of two if that is more.
   */
  readonly ringBytes?: number
  /** Calls without `timeoutMs` fail with TimeoutError after this many ms; 0 = never. Default 30,000. */
  readonly callTimeoutMs?: number
  /** How long `close()` waits for in-flight work before stopping the workers. Default 10,000 ms. */
  readonly closeTimeoutMs?: number
  /**
   * Size limit of each worker thread's young generation (V8's `maxYoungGenerationSizeMb`
   * resource limit of the Worker), in MiB; it applies to the engine's own workers only,
   * never to the host application's thread. A scavenge copies what survived since the
   * last one, so a smaller young generation makes each GC pause of a worker shorter and
   * the pauses more frequent. Omitted: V8's default (48 MiB: 16 MiB semi-spaces).
   * Measured at 10M agents on 2 cores (bench/RESULTS.md, issue 13): 12 MiB halved a
   * worker's median and p90 pause, for 3.5× the pauses, up to twice the total GC time
   * and more CPU per activation; it did not bound the longest pause on busy cores.
   * The process's `--min-semi-space-size`/`--max-semi-space-size` (node flags or
   * NODE_OPTIONS, which would otherwise override this) do not reach the engine's workers:
   * they size the application's thread only (host/worker-young-generation.ts).
   */
  readonly workerYoungGenerationMb?: number
  /** A piscina pool for `ctx.offload(name, input)`: blocking or CPU-heavy work off the agents' threads. */
  readonly offload?: OffloadOptions
  /** Add-ons, set up in order: `cluster({...})` from `shoal/cluster`, `dashboard({...})` from `shoal/dashboard`. */
  readonly plugins?: readonly HostPlugin[]
}

export interface ResolvedHostOptions {
  readonly agents: string
  readonly workers: number
  readonly dataDir: string | undefined
  readonly durability: Durability
  /** Durability 'os': the background flush's period, ms (unused with 'disk'). */
  readonly flushIntervalMs: number
  readonly tickMs: number
  readonly clock: ClockKind
  readonly maxMessageBytes: number
  readonly ringBytes: number
  readonly callTimeoutMs: number
  readonly closeTimeoutMs: number
  /** Worker threads' young generation limit, MiB; null: V8's default. */
  readonly workerYoungGenerationMb: number | null
  readonly offload: ResolvedOffloadOptions | null
  readonly plugins: readonly HostPlugin[]
  /** The test clock's buffer, or null for each thread's `performance.now()`. */
  readonly testClock: SharedArrayBuffer | null
  /** How durable sends are applied once (a test hook; 'claim' on one host). */
  readonly outbox: OutboxMode
}

export const defaults = {
  workers: availableParallelism(),
  tickMs: 1000,
  maxMessageBytes: 256 * 1024,
  ringBytes: 4 * 1024 * 1024,
  callTimeoutMs: 30_000,
  closeTimeoutMs: 10_000
} as const

const known = new Set(['agents', 'workers', 'dataDir', 'durability', 'flushIntervalMs', 'tickMs', 'clock', 'maxMessageBytes', 'ringBytes', 'callTimeoutMs', 'closeTimeoutMs', 'workerYoungGenerationMb', 'offload', 'plugins'])
const knownOffload = new Set(['filename', 'maxThreads', 'minThreads', 'workerData'])

export function resolveOptions (options: HostOptions): ResolvedHostOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('(root)', options, 'must be an object { agents, workers?, dataDir?, ... }')
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw new InvalidOptionError(key, (options as unknown as Record<string, unknown>)[key], `is not an option${didYouMean(key, known)}`)
    }
  }
  const workers = integer('workers', options.workers ?? defaults.workers, 0, 254)
  const maxMessageBytes = integer('maxMessageBytes', options.maxMessageBytes ?? defaults.maxMessageBytes, 64, 64 * 1024 * 1024)
  const ringBytes = integer('ringBytes', options.ringBytes ?? Math.max(defaults.ringBytes, pow2AtLeast(4 * maxMessageBytes)), 4096, 1024 * 1024 * 1024)
  if ((ringBytes & (ringBytes - 1)) !== 0) throw new InvalidOptionError('ringBytes', ringBytes, 'must be a power of two')
  if (maxFrameBytes(ringBytes) < maxMessageBytes) {
    throw new InvalidOptionError('maxMessageBytes', maxMessageBytes, `must be at most ringBytes / 2 - 8 (${maxFrameBytes(ringBytes)} with ringBytes ${ringBytes})`)
  }
  // a test hook, read besides the options (not part of HostOptions)
  const testClock = (options as HostOptions & TestHooks)[kTestClock]
  if (testClock !== undefined && !(testClock instanceof TestClock)) {
    throw new InvalidOptionError('[kTestClock]', testClock, 'must be a TestClock')
  }
  const plugins = pluginList(options.plugins)
  // a cluster applies durable sends by receiver-side dedup: a sender's record may be on another host
  const outbox = (options as HostOptions & OutboxHook)[kOutboxMode] ?? (plugins.some((p) => p.routes === true) ? 'dedup' : 'claim')
  if (outbox !== 'claim' && outbox !== 'dedup') throw new InvalidOptionError('[kOutboxMode]', outbox, "must be 'claim' or 'dedup'")
  let dataDir: string | undefined
  if (options.dataDir !== undefined) {
    if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) {
      throw new InvalidOptionError('dataDir', options.dataDir, 'must be a non-empty directory path')
    }
    dataDir = resolve(options.dataDir)
  }
  const durability = options.durability ?? 'disk'
  if (durability !== 'disk' && durability !== 'os') {
    throw new InvalidOptionError('durability', durability, "must be 'disk' (acknowledged once flushed to disk) or 'os' (acknowledged once committed to the OS)")
  }
  if (options.durability !== undefined && dataDir === undefined) {
    throw new InvalidOptionError('durability', durability, 'needs dataDir: without it agents are kept in memory only')
  }
  if (options.flushIntervalMs !== undefined && durability !== 'os') {
    throw new InvalidOptionError('flushIntervalMs', options.flushIntervalMs, "applies to durability 'os' only (with 'disk' every command is flushed before it is acknowledged)")
  }
  const flushIntervalMs = integer('flushIntervalMs', options.flushIntervalMs ?? defaultFlushIntervalMs, 1, kMaxFlushIntervalMs)
  return Object.freeze({
    agents: agentsUrl(options.agents),
    workers,
    dataDir,
    durability,
    flushIntervalMs,
    tickMs: number('tickMs', options.tickMs ?? defaults.tickMs, 1, 86_400_000),
    clock: clockKind(options.clock),
    maxMessageBytes,
    ringBytes,
    callTimeoutMs: integer('callTimeoutMs', options.callTimeoutMs ?? defaults.callTimeoutMs, 0, 2 ** 31 - 1),
    closeTimeoutMs: integer('closeTimeoutMs', options.closeTimeoutMs ?? defaults.closeTimeoutMs, 0, 2 ** 31 - 1),
    workerYoungGenerationMb: options.workerYoungGenerationMb === undefined ? null : integer('workerYoungGenerationMb', options.workerYoungGenerationMb, 3, 1024),
    offload: options.offload === undefined ? null : offloadOptions(options.offload),
    plugins,
    testClock: testClock?.buffer ?? null,
    outbox
  })
}

function agentsUrl (agents: unknown): string {
  return moduleUrl('agents', agents, 'is required: the URL or path of the module exporting your defineAgent() definitions')
}

function moduleUrl (option: string, value: unknown, required: string): string {
  if (value instanceof URL) {
    if (value.protocol !== 'file:' && value.protocol !== 'data:') {
      throw new InvalidOptionError(option, value, `must be a file: URL (or a data: URL) of the module`)
    }
    return value.href
  }
  if (typeof value === 'string' && value.length > 0) {
    if (value.startsWith('file:') || value.startsWith('data:')) return value
    return pathToFileURL(isAbsolute(value) ? value : resolve(value)).href
  }
  throw new InvalidOptionError(option, value, required)
}

function offloadOptions (offload: OffloadOptions): ResolvedOffloadOptions {
  if (offload === null || typeof offload !== 'object') {
    throw new InvalidOptionError('offload', offload, 'must be an object { filename, maxThreads?, minThreads?, workerData? }')
  }
  for (const key of Object.keys(offload)) {
    if (!knownOffload.has(key)) throw new InvalidOptionError(`offload.${key}`, (offload as unknown as Record<string, unknown>)[key], `is not an option${didYouMean(key, knownOffload)}`)
  }
  const filename = moduleUrl('offload.filename', offload.filename, 'is required: the URL or path of the module exporting your tasks')
  if (!filename.startsWith('file:')) throw new InvalidOptionError('offload.filename', offload.filename, 'must be a file: URL or a path (pool threads import it from disk)')
  {
    let isFile = false
    try { isFile = statSync(fileURLToPath(filename)).isFile() } catch {}
    if (!isFile) throw new InvalidOptionError('offload.filename', offload.filename, 'must name an existing file')
  }
  const maxThreads = integer('offload.maxThreads', offload.maxThreads ?? availableParallelism(), 1, 1024)
  const minThreads = integer('offload.minThreads', offload.minThreads ?? 1, 0, maxThreads)
  return Object.freeze({ filename, maxThreads, minThreads, workerData: offload.workerData })
}

function pluginList (plugins: unknown): readonly HostPlugin[] {
  if (plugins === undefined) return []
  if (!Array.isArray(plugins)) throw new InvalidOptionError('plugins', plugins, 'must be an array of plugins, e.g. [cluster({...})]')
  const names = new Set<string>()
  let routers = 0
  plugins.forEach((p: unknown, i) => {
    const name = (p as HostPlugin | null)?.name
    if (p === null || typeof p !== 'object' || typeof name !== 'string' || name.length === 0) {
      throw new InvalidOptionError(`plugins[${i}]`, p, 'must be a plugin object with a name (made by e.g. cluster({...}))')
    }
    if (names.has(name)) throw new InvalidOptionError(`plugins[${i}]`, name, 'names a plugin that is already in the list')
    names.add(name)
    if ((p as HostPlugin).routes === true && ++routers > 1) throw new InvalidOptionError(`plugins[${i}]`, name, 'routes frames, and only one plugin of a host may')
  })
  return Object.freeze([...plugins as HostPlugin[]])
}

function clockKind (clock: unknown): ClockKind {
  if (clock === undefined) return CLOCK_REAL
  if (clock === CLOCK_REAL || clock === CLOCK_MANUAL) return clock
  throw new InvalidOptionError('clock', clock, `must be '${CLOCK_REAL}' (a tick every tickMs) or '${CLOCK_MANUAL}' (ticks only from host.advance)`)
}

function integer (name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `must be an integer from ${min} to ${max}`)
  }
  return value
}

function number (name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `must be a number from ${min} to ${max}`)
  }
  return value
}

function pow2AtLeast (n: number): number {
  let p = 4096
  while (p < n) p *= 2
  return p
}
