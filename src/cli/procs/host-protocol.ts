/**
 * What a parent and a host process say to each other (host-process.ts ↔ host-child.ts),
 * over Node's IPC channel with the 'advanced' serialization (structured clone: typed
 * arrays and `undefined` cross as they are).
 *
 * The child is a plain host: `createHost` from a JSON config, with plugins named by
 * module specifier (`{ module: 'shoal/cluster', export: 'cluster', options }`), so
 * that this layer never imports a plugin — the config names it, the child loads it.
 *
 *   parent → child   { t: 'cmd', seq, cmd }           one command (below)
 *   child → parent   { t: 'ready', ... }              createHost resolved
 *                    { t: 'failed', error, elapsedMs } createHost threw; the child exits 1
 *                    { t: 'res', seq, ok, value | error }
 *
 * Commands that drive load (`load`, `casts`, `latency`) run inside the child, so the
 * figures are the host's and not the IPC channel's.
 */
import { ShoalError } from '../../../native-free-core/errors.ts'

/** A plugin the child makes with `(await import(module))[export](options)`. */
export interface PluginSpec {
  /** A module specifier the child can import: a package export (`shoal/cluster`) or a file URL. */
  readonly module: string
  /** The factory's export name. Default `'default'`. */
  readonly export?: string
  /** JSON-able options passed to the factory. */
  readonly options?: unknown
}

export interface HostProcessConfig {
  /** The agents module: a file URL (href) or a path. */
  readonly agents: string
  readonly workers: number
  readonly dataDir: string
  /** Other createHost options (callTimeoutMs, durability, ...), passed as they are. */
  readonly host?: Readonly<Record<string, unknown>>
  readonly plugins?: readonly PluginSpec[]
}

/** Keys `${prefix}${from}` … `${prefix}${from + count - 1}`. */
export interface KeyRange {
  readonly prefix: string
  readonly from?: number
  readonly count: number
}

/** Some agents of one type: a key range or a list of keys. */
export interface Agents {
  readonly type: string
  readonly quota?: string
  readonly keys: KeyRange | readonly string[]
}

export function keysOf (keys: KeyRange | readonly string[]): string[] {
  if (Array.isArray(keys)) return [...keys as readonly string[]]
  const r = keys as KeyRange
  const from = r.from ?? 0
  return Array.from({ length: r.count }, (_, i) => `${r.prefix}${from + i}`)
}

/** An error as it crosses the channel: a ShoalError's wire form, or a plain error's name and message. */
export interface ErrorInfo {
  readonly name: string
  readonly message: string
  readonly code?: string
  readonly data?: unknown
  readonly retriable?: boolean
}

/** Any thrown value in the form that crosses the channel. */
export function errorInfo (err: unknown): ErrorInfo {
  if (err instanceof ShoalError) {
    return { name: err.name, message: err.message, code: err.code, data: err.data, retriable: err.retriable }
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) }
  }
  return { name: 'Error', message: String(err) }
}

export interface ClusterInfo {
  readonly id: string
  readonly address: string
  readonly epoch: number
  readonly members: ReadonlyArray<{ readonly id: string, readonly address: string, readonly state: string }>
}

/** What a `load` run did: acknowledged calls per key (index in the key list), and failures. */
export interface LoadReport {
  readonly calls: number
  /** Calls acknowledged per key, in the order of `keysOf(agents.keys)`. */
  readonly acked: Uint32Array
  readonly errors: number
  /** The first few errors, for the test's message. */
  readonly errorSamples: readonly ErrorInfo[]
  readonly elapsedMs: number
  /** With `latency`: the acknowledged calls' round trips, ns, an HdrHistogram as `encodeIntoCompressedBase64` writes it. */
  readonly latencyHdr?: string
}

/** What a `casts` run did: casts issued, then paced by barrier calls to `probes`. */
export interface CastsReport {
  readonly casts: number
  readonly elapsedMs: number
  readonly castsPerSec: number
}

export type Command =
  | { readonly op: 'call', readonly type: string, readonly key: string, readonly method: string, readonly payload?: unknown, readonly quota?: string, readonly timeoutMs?: number }
  | { readonly op: 'cast', readonly type: string, readonly key: string, readonly method: string, readonly payload?: unknown, readonly quota?: string }
  /** One call per key, `concurrency` in flight: the values in key order; errors counted (a failed key's value is undefined). */
  | { readonly op: 'callEach', readonly agents: Agents, readonly method: string, readonly payload?: unknown, readonly concurrency?: number }
  /** Start calling `method` on the keys in turn, `concurrency` in flight, until `loadStop` with the same id; `latency`: time each call. */
  | { readonly op: 'loadStart', readonly id: string, readonly agents: Agents, readonly method: string, readonly payload?: unknown, readonly concurrency?: number, readonly latency?: boolean }
  | { readonly op: 'loadStop', readonly id: string }
  /** Casts to keys picked by a seeded PRNG for `durationMs`, paced by barrier calls to `probes` every `chunk` casts (default 4096), at most `depth` chunks (default 2) ahead. */
  | { readonly op: 'casts', readonly agents: Agents, readonly method: string, readonly payload?: unknown, readonly probes: Agents, readonly probeMethod: string, readonly durationMs: number, readonly chunk?: number, readonly depth?: number, readonly seed?: number }
  /** One call at a time for `rounds`: latencies in µs. */
  | { readonly op: 'latency', readonly type: string, readonly key: string, readonly method: string, readonly payload?: unknown, readonly rounds: number }
  /** A bare uWebSockets.js echo server on 127.0.0.1 in this process (the raw baseline): its port. */
  | { readonly op: 'rawEchoListen' }
  /** A bare `ws` client's round trips to an echo server, one message in flight: latencies in µs. */
  | { readonly op: 'rawRoundTrips', readonly port: number, readonly rounds: number, readonly bytes?: number }
  | { readonly op: 'cluster' }
  /** ownerOf for each key (null when no host serves it). */
  | { readonly op: 'owners', readonly agents: Agents }
  | { readonly op: 'settled', readonly timeoutMs?: number }
  | { readonly op: 'stats' }
  /** This process: resident memory and CPU time so far (all its threads). */
  | { readonly op: 'process' }
  | { readonly op: 'metrics' }
  /** Durable sends this host still holds a record of (the cluster plugin's `durableBacklog()`; zeros without one). */
  | { readonly op: 'durableBacklog' }
  /** What a plugin says keeps the cluster from settling, as this host sees it (the cluster plugin's `describe()`); null without one. */
  | { readonly op: 'describe' }
  /** host.close() (a cluster host leaves: hands its shards over), answer, then exit 0. */
  | { readonly op: 'close' }

/** Outbox records not acknowledged yet (sent from here), applied records not forgotten yet (received here). */
export interface DurableBacklog {
  readonly outbox: number
  readonly applied: number
  /** Where outbox records lie (a few), when a plugin says: for a checker's report. */
  readonly outboxWhere?: readonly string[]
}

export interface ProcessInfo {
  readonly rssBytes: number
  /** CPU time of the process, every thread, µs. */
  readonly cpuUs: number
}

export type ToChild = { readonly t: 'cmd', readonly seq: number, readonly cmd: Command }

export interface ReadyInfo {
  readonly pid: number
  /** createHost's time, ms (the plugins' modules loaded before). */
  readonly startMs: number
  /** `host.cluster` when the host has a cluster plugin, else null. */
  readonly cluster: ClusterInfo | null
}

export type FromChild =
  | { readonly t: 'ready', readonly info: ReadyInfo }
  /** `elapsedMs`: from the createHost call (after the plugins' modules loaded) to its rejection. */
  | { readonly t: 'failed', readonly error: ErrorInfo, readonly elapsedMs: number }
  | { readonly t: 'res', readonly seq: number, readonly ok: true, readonly value: unknown }
  | { readonly t: 'res', readonly seq: number, readonly ok: false, readonly error: ErrorInfo }

/** The environment variable that carries the config (JSON) to the child. */
export const CONFIG_ENV = 'SHOAL_HOST_PROCESS_CONFIG'
