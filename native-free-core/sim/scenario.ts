/**
 * The options of `simulate` and `explore`, checked once and prepared into a `Scenario`
 * that every run of an exploration shares: the agent registry, the scenario messages
 * already resolved and encoded, the faults, the limits.
 *
 * Bad input throws at the call, never in the middle of a run: an unknown option or a
 * bad value is an InvalidOptionError naming it; a message to an unknown type or method
 * is UnknownAgentTypeError / UnknownMethodError; a malformed address is
 * InvalidArgumentError; a payload that cannot be encoded is EncodeError — the same
 * errors `host.ref(...).call(...)` gives for the same mistakes.
 */
import { DEFAULT_QUOTA, idOf, isValidName } from '../agent/agent-id.ts'
import type { AgentAddress } from '../agent/agent-id.ts'
import { isAgentDefinition } from '../agent/define-agent.ts'
import type { AgentDefinition } from '../agent/define-agent.ts'
import { InvalidArgumentError, InvalidOptionError, OffloadError } from '../errors.ts'
import { hashId } from '../placement/hash.ts'
import { QuotaCounters } from '../tenancy/quota-counters.ts'
import { QuotaDirectory, QuotaGate } from '../tenancy/quota-gate.ts'
import { AgentRegistry } from '../agent/registry.ts'
import { encodeSimValue } from './codec.ts'
import { Faults } from './faults.ts'
import type { FaultOptions } from './faults.ts'
import type { WorldView } from './world-view.ts'

/** A message the scenario starts with: a call from a client outside the host. */
export interface ScenarioMessage {
  readonly to: AgentAddress
  readonly method: string
  readonly payload?: unknown
  /** Messages of the same client to the same agent are delivered in order; by default each message is its own client. */
  readonly client?: string
}

/**
 * The agent definitions: an array of `defineAgent` results, a module namespace
 * (`await import('./agents.js')`, as a host loads it), or a function returning either —
 * called once per run, for agents that keep anything in module scope.
 */
export type AgentsInput =
  | readonly AgentDefinition[]
  | Readonly<Record<string, unknown>>
  | (() => readonly AgentDefinition[] | Readonly<Record<string, unknown>>)

export interface ScenarioOptions {
  readonly agents: AgentsInput
  readonly messages: readonly ScenarioMessage[]
  /** How far the virtual clock runs, in ticks. Default 0: the clock only moves for delayed sends. */
  readonly ticks?: number
  readonly faults?: FaultOptions
  /** Scheduler steps per run before it stops (a livelock guard). Default 10,000. */
  readonly maxSteps?: number
  /** Functions that `ctx.offload(name, input)` runs, in the simulation's thread. */
  readonly offload?: Readonly<Record<string, (input: unknown) => unknown>>
  /** Quotas that exist besides 'default', with their limits (null: unlimited); 'default' may get a limit too. */
  readonly quotas?: Readonly<Record<string, number | null>>
  /** Milliseconds of rate-limit time per tick (the host's `tickMs`). Default 1000. */
  readonly tickMs?: number
}

export interface SimulateOptions extends ScenarioOptions {
  /** Seeds the scheduler and the faults (a uint32). Default 1. */
  readonly seed?: number
  /** A failing run from `explore` (`failure.replay`), instead of a seed. */
  readonly replay?: string
}

export interface ExploreOptions extends ScenarioOptions {
  /** Checked on the initial world and after every step; a throw or `false` is a failure. */
  readonly invariant: (world: WorldView) => unknown
  /** Runs to spend (an exhaustive search step counts as one). Default 10,000. */
  readonly maxRuns?: number
  /** First seed of the random phase. Default 1. */
  readonly seed?: number
}

export interface PreparedMessage {
  readonly id: string
  readonly hash: number
  readonly typeIdx: number
  readonly methodIdx: number
  readonly method: string
  readonly bytes: Uint8Array
  readonly client: string
}

export interface Scenario {
  /** The registry of this run: the shared one, or a fresh one from the agents factory. */
  registry (): AgentRegistry
  readonly messages: readonly PreparedMessage[]
  readonly ticks: number
  readonly maxSteps: number
  readonly faults: Faults
  readonly offload: ((name: string, input: unknown) => Promise<unknown>) | undefined
  /**
   * A world between steps can be rebuilt from its store and network alone (explore's
   * snapshots): no `durable: false` type (their state lives only in cells) and no agents
   * factory (its module state would be reset). Otherwise explore replays paths.
   */
  readonly restorable: boolean
  /**
   * States that hash alike behave alike. Not so with rate limits: token buckets live in
   * the runtime's cells and side table, outside what the world hashes, so explore then
   * merges nothing (every path is its own state, no sleep sets, no snapshots) — exact,
   * and only for small scenarios.
   */
  readonly mergeable: boolean
  /** Some type has a `timeout` or `reminder` handler, `idleTicks`, or no commit (`durable: false`). */
  readonly timers: boolean
  /** Fresh quota state for one run's runtime. */
  quotaGate (): QuotaGate
  readonly tickMs: number
}

const COMMON = ['agents', 'messages', 'ticks', 'faults', 'maxSteps', 'offload', 'quotas', 'tickMs']
export const SIMULATE_KEYS = [...COMMON, 'seed', 'replay']
export const EXPLORE_KEYS = [...COMMON, 'invariant', 'maxRuns', 'seed']

export function checkKeys (fn: string, options: unknown, known: readonly string[]): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`${fn}() takes one options object { agents, messages, ... } (got ${options === null ? 'null' : typeof options})`)
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidOptionError(key, (options as Record<string, unknown>)[key], `is not a known option (known: ${known.join(', ')})`)
    }
  }
}

export function checkSeed (seed: unknown): number {
  if (seed === undefined) return 1
  if (!(Number.isInteger(seed) && (seed as number) >= 0 && (seed as number) <= 0xffffffff)) {
    throw new InvalidOptionError('seed', seed, 'must be an integer from 0 to 4294967295')
  }
  return seed as number
}

export function prepareScenario (options: ScenarioOptions): Scenario {
  const registry = registryOf(options.agents)
  const factory = typeof options.agents === 'function' ? options.agents : null
  const fingerprint = registry.fingerprint()
  const ticks = options.ticks ?? 0
  if (!(Number.isInteger(ticks) && ticks >= 0 && ticks <= 1_000_000)) {
    throw new InvalidOptionError('ticks', options.ticks, 'must be an integer from 0 to 1000000')
  }
  const maxSteps = options.maxSteps ?? 10_000
  if (!(Number.isInteger(maxSteps) && maxSteps >= 1)) {
    throw new InvalidOptionError('maxSteps', options.maxSteps, 'must be a positive integer')
  }
  const faults = new Faults(options.faults)
  const tickMs = options.tickMs ?? 1000
  if (!(typeof tickMs === 'number' && tickMs > 0 && Number.isFinite(tickMs))) {
    throw new InvalidOptionError('tickMs', options.tickMs, 'must be a positive number of milliseconds')
  }
  const quotas = quotaList(options.quotas)
  const mergeable = registry.types.every((t) => t.def.rateLimit === undefined)
  let shared: QuotaGate | null = null
  let first = true
  return {
    registry () {
      if (factory === null || first) {
        first = false
        return registry
      }
      const fresh = registryOf(factory)
      if (fresh.fingerprint() !== fingerprint) {
        throw new InvalidOptionError('agents', 'a function', 'must return the same types and methods on every call')
      }
      return fresh
    },
    messages: prepareMessages(options.messages, registry),
    ticks,
    maxSteps,
    faults,
    offload: offloader(options.offload),
    // a restored runtime starts with fresh quota counts: only right when no limit can bite
    restorable: mergeable && factory === null && registry.types.every((t) => t.def.durable !== false) && quotas.every(([, limit]) => limit === null),
    mergeable,
    timers: registry.types.some((t) => t.def.timeout !== undefined || t.def.reminder !== undefined || t.def.idleTicks !== undefined || t.def.durable === false),
    quotaGate () {
      // without a limit, counts are never read: one gate serves every run (its counters
      // are a SharedArrayBuffer, a large part of a small runtime)
      if (shared !== null) return shared
      const directory = new QuotaDirectory()
      let slot = 1
      for (const [quota, limit] of quotas) directory.set(quota, quota === DEFAULT_QUOTA ? 0 : slot++, limit)
      const gate = new QuotaGate(directory, new QuotaCounters(1), 0)
      if (quotas.every(([, limit]) => limit === null)) shared = gate
      return gate
    },
    tickMs
  }
}

function registryOf (agents: AgentsInput): AgentRegistry {
  let value: unknown = agents
  if (typeof value === 'function') value = (value as () => unknown)()
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionError('agents', agents, 'must be an array of defineAgent() results, a module namespace, or a function returning one')
  }
  let registry: AgentRegistry
  if (Array.isArray(value)) {
    const bad = value.findIndex((d) => !isAgentDefinition(d))
    if (bad >= 0) throw new InvalidOptionError(`agents[${bad}]`, value[bad], 'must be a defineAgent() result')
    registry = new AgentRegistry(value as AgentDefinition[])
  } else {
    registry = AgentRegistry.fromModule(value as Record<string, unknown>)
  }
  if (registry.types.length === 0) {
    throw new InvalidOptionError('agents', agents, 'must contain at least one defineAgent() result')
  }
  return registry
}

function prepareMessages (messages: unknown, registry: AgentRegistry): PreparedMessage[] {
  if (!Array.isArray(messages)) {
    throw new InvalidOptionError('messages', messages, 'must be an array of { to: { type, key, quota? }, method, payload? }')
  }
  return messages.map((msg: unknown, i): PreparedMessage => {
    const where = `messages[${i}]`
    if (msg === null || typeof msg !== 'object') {
      throw new InvalidOptionError(where, msg, 'must be an object { to: { type, key, quota? }, method, payload? }')
    }
    const { to, method, payload, client } = msg as ScenarioMessage
    for (const key of Object.keys(msg)) {
      if (!['to', 'method', 'payload', 'client'].includes(key)) {
        throw new InvalidOptionError(`${where}.${key}`, (msg as Record<string, unknown>)[key], 'is not a known field (to, method, payload, client)')
      }
    }
    let id: string
    try {
      id = idOf(to)
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`${where}.to: ${err.message}`, err.data)
      throw err
    }
    const info = registry.require(to.type)
    const m = registry.method(info, method)
    if (client !== undefined && (typeof client !== 'string' || client.length === 0)) {
      throw new InvalidOptionError(`${where}.client`, client, 'must be a non-empty string')
    }
    return {
      id,
      hash: hashId(id),
      typeIdx: info.index,
      methodIdx: m.index,
      method: m.name,
      bytes: encodeSimValue(payload, `${where}.payload`),
      client: client === undefined ? `client#${i}` : `client:${client}`
    }
  })
}

function quotaList (quotas: ScenarioOptions['quotas']): Array<[string, number | null]> {
  if (quotas === undefined) return []
  if (quotas === null || typeof quotas !== 'object' || Array.isArray(quotas)) {
    throw new InvalidOptionError('quotas', quotas, "must be an object { name: limit } (null: unlimited), such as { 'tenant-a': 100 }")
  }
  const list: Array<[string, number | null]> = []
  for (const [quota, limit] of Object.entries(quotas)) {
    if (!isValidName(quota)) throw new InvalidOptionError(`quotas.${quota}`, quota, 'must be a quota name of 1–128 characters of [A-Za-z0-9_.:/@-]')
    if (limit !== null && !(Number.isInteger(limit) && limit >= 0)) {
      throw new InvalidOptionError(`quotas.${quota}`, limit, 'must be a non-negative integer (agents), or null for no limit')
    }
    list.push([quota, limit])
  }
  if (list.length > 1000) throw new InvalidOptionError('quotas', `${list.length} quotas`, 'may name at most 1000 quotas')
  return list
}

function offloader (fns: ScenarioOptions['offload']): Scenario['offload'] {
  if (fns === undefined) return undefined
  if (fns === null || typeof fns !== 'object') {
    throw new InvalidOptionError('offload', fns, 'must be an object of functions { name: (input) => result }')
  }
  for (const [name, fn] of Object.entries(fns)) {
    if (typeof fn !== 'function') throw new InvalidOptionError(`offload.${name}`, fn, 'must be a function')
  }
  return (name, input) => {
    const fn = Object.hasOwn(fns, name) ? fns[name] : undefined
    if (fn === undefined) return Promise.reject(new OffloadError(`no offload function ${JSON.stringify(name)} in the simulation's offload option`, { task: name }))
    // a microtask later, as a pool's answer would be: never inside the handler's own call
    return Promise.resolve().then(() => fn(input))
  }
}
