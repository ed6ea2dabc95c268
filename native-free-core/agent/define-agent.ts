/**
 * `defineAgent`: the user's description of one agent type — its initial state, the
 * commands that may change state (persisted before their reply) and the queries that
 * only read it (never persisted, never delayed).
 *
 * A definition is plain data plus functions; it never crosses threads. Every thread
 * imports the same agents module by URL and finds the definitions among its exports
 * (the brand below marks them), so each thread holds its own copy of the functions.
 */
import type { AgentAddress, AgentId } from './agent-id.ts'
import { isValidName } from './agent-id.ts'
import { InvalidDefinitionError } from '../errors.ts'
import { didYouMean } from '../did-you-mean.ts'

export const kAgentDefinition = Symbol.for('shoal.agent-definition')

/** Per-agent durable key/value storage (DNA's KV module, the Durable Objects storage API). */
export interface AgentStorage {
  get<V = unknown> (key: string): V | undefined
  put (key: string, value: unknown): void
  delete (key: string): boolean
  list<V = unknown> (options?: { prefix?: string, limit?: number, start?: string }): Array<[string, V]>
}

/** What a handler can do besides changing its own state. */
export interface AgentContext {
  /** This agent's address; plain data, so it can travel inside payloads. */
  readonly id: AgentId
  /** The host clock's current tick. */
  readonly tick: number
  /**
   * Send `method(payload)` to another agent after this turn commits (the outbox).
   * `target` is a plain address `{ type, key, quota? }` or a ref.
   */
  send (target: AgentAddress, method: string, payload?: unknown): void
  /** Passivate this agent once the current turn has committed. */
  deactivate (): void
  /** Delete this agent's state (and storage) once the current turn commits; the next message starts fresh. */
  delete (): void
  /** Run the export `name` of the host's `offload.filename` module on the piscina pool. */
  offload<R = unknown> (name: string, input?: unknown): Promise<R>
  /**
   * Call `timeout(state, ctx)` (a command turn) `ticks` ticks from now; replaces any
   * earlier timer of this agent; `0` cancels it. Commands only; applied when the turn
   * succeeds. In memory: it ends with the activation (passivation, worker restart).
   */
  timeout (ticks: number): void
  /**
   * Passivate after `ticks` ticks without a message, for this activation (overrides
   * `idleTicks`); `0` = never. Commands only; applied when the turn succeeds.
   */
  idleAfter (ticks: number): void
  /**
   * Durable reminder: `reminder(state, name, ctx)` runs `ms` from now (then every
   * `options.every` ms), even after passivation or a restart; stored with this turn's
   * commit, so a turn that throws sets nothing. One per name: a new one replaces it.
   * Missed firings (downtime) coalesce into one. Commands of persistent types only.
   */
  remind (name: string, ms: number, options?: { every?: number }): void
  /** Remove the reminder `name` (with this turn's commit); nothing if there is none. */
  cancelReminder (name: string): void
  readonly storage: AgentStorage
}

// Handlers take the state first. `payload` is `any` so that users can annotate it;
// the ref's call() types read it back from the handler's declared parameter.
export type Handler<S> = (state: S, payload: any, ctx: AgentContext) => unknown
export type Handlers<S> = Record<string, Handler<S>>

export interface RateLimit {
  readonly perSecond: number
  readonly burst: number
}

export interface AgentSpec<S, C extends Handlers<S>, Q extends Handlers<S>> {
  /** The type name: part of every agent's identity, so renaming it orphans stored agents. */
  readonly type: string
  /** State of a brand-new agent. */
  readonly initial: (key: string) => S
  readonly commands?: C
  readonly queries?: Q
  /** Persist this type's state (the default when the host has a `dataDir`). `false`: memory only. */
  readonly durable?: boolean
  /** Passivate after this many ticks without a message. */
  readonly idleTicks?: number
  /** Token bucket per agent: excess messages get RateLimitedError without running the handler. */
  readonly rateLimit?: RateLimit
  readonly timeout?: (state: S, ctx: AgentContext) => unknown
  readonly reminder?: (state: S, name: string, ctx: AgentContext) => unknown
}

export interface AgentDefinition<S = any, C extends Handlers<S> = Handlers<S>, Q extends Handlers<S> = Handlers<S>>
  extends AgentSpec<S, C, Q> {
  readonly [kAgentDefinition]: true
}

export type StateOf<D> = D extends AgentDefinition<infer S, any, any> ? S : never
// An omitted `commands` or `queries` infers as the constraint `Handlers<S>` (an index
// signature): it contributes no method names. A plain `AgentDefinition` (an untyped ref)
// has only index signatures, so any method name and payload type-check.
type KnownHandlers<T> = string extends keyof T ? {} : T
export type MethodsOf<D> = D extends AgentDefinition<any, infer C, infer Q> ? KnownHandlers<C> & KnownHandlers<Q> : never
export type MethodName<D> = [keyof MethodsOf<D>] extends [never] ? string : keyof MethodsOf<D> & string
export type PayloadOf<D, M extends string> = M extends keyof MethodsOf<D>
  ? (MethodsOf<D>[M] extends (s: any, p: infer P, ...rest: any[]) => any ? P : never)
  : any
export type ReplyOf<D, M extends string> = M extends keyof MethodsOf<D>
  ? (MethodsOf<D>[M] extends (...args: any[]) => infer R ? Awaited<R> : never)
  : any

export function isAgentDefinition (value: unknown): value is AgentDefinition {
  return typeof value === 'object' && value !== null && (value as { [kAgentDefinition]?: unknown })[kAgentDefinition] === true
}

// no defaults on C and Q: a default stops TypeScript from typing handlers' `state` from `initial`
export function defineAgent<S, C extends Handlers<S>, Q extends Handlers<S>> (spec: AgentSpec<S, C, Q>): AgentDefinition<S, C, Q> {
  validateSpec(spec)
  return Object.freeze({ ...spec, [kAgentDefinition]: true as const })
}

/** The keys of an AgentSpec: anything else is a typo that would be silently ignored. */
const kSpecKeys: ReadonlySet<string> = new Set([
  'type', 'initial', 'commands', 'queries', 'durable', 'idleTicks', 'rateLimit', 'timeout', 'reminder'
] satisfies Array<keyof AgentSpec<unknown, Handlers<unknown>, Handlers<unknown>>>)
const kRateLimitKeys: ReadonlySet<string> = new Set(['perSecond', 'burst'] satisfies Array<keyof RateLimit>)

function validateSpec (spec: AgentSpec<any, Handlers<any>, Handlers<any>>): void {
  const fail = (rule: string): never => {
    throw new InvalidDefinitionError(`defineAgent(${JSON.stringify(spec?.type)}): ${rule}`, { type: String(spec?.type) })
  }
  if (spec === null || typeof spec !== 'object') fail('the specification must be an object')
  for (const key of Object.keys(spec)) {
    if (!kSpecKeys.has(key)) fail(`${JSON.stringify(key)} is not a key of an agent specification${didYouMean(key, kSpecKeys)}`)
  }
  if (!isValidName(spec.type)) fail('type must be 1–128 characters of [A-Za-z0-9_.:/@-]')
  if (typeof spec.initial !== 'function') fail('initial must be a function (key) => state')
  const names = new Set<string>()
  for (const group of ['commands', 'queries'] as const) {
    const handlers = spec[group]
    if (handlers === undefined) continue
    if (handlers === null || typeof handlers !== 'object') fail(`${group} must be an object of functions`)
    for (const [name, fn] of Object.entries(handlers)) {
      if (typeof fn !== 'function') fail(`${group}.${name} must be a function`)
      if (names.has(name)) fail(`${JSON.stringify(name)} is both a command and a query`)
      names.add(name)
    }
  }
  if (names.size === 0) fail('define at least one command or query')
  if (spec.durable !== undefined && typeof spec.durable !== 'boolean') fail('durable must be a boolean')
  if (spec.idleTicks !== undefined && !(Number.isInteger(spec.idleTicks) && spec.idleTicks > 0 && spec.idleTicks <= 2 ** 40)) {
    fail('idleTicks must be an integer from 1 to 2^40')
  }
  if (spec.rateLimit !== undefined) {
    const { perSecond, burst } = spec.rateLimit ?? ({} as RateLimit)
    if (spec.rateLimit !== null && typeof spec.rateLimit === 'object') {
      for (const key of Object.keys(spec.rateLimit)) {
        if (!kRateLimitKeys.has(key)) fail(`rateLimit.${key} is not an option of a rate limit${didYouMean(key, kRateLimitKeys)} (perSecond, burst)`)
      }
    }
    if (!(Number.isFinite(perSecond) && perSecond > 0)) fail('rateLimit.perSecond must be a positive number')
    if (!(Number.isFinite(burst) && burst >= 1)) fail('rateLimit.burst must be a number ≥ 1')
  }
  if (spec.timeout !== undefined && typeof spec.timeout !== 'function') fail('timeout must be a function (state, ctx)')
  if (spec.reminder !== undefined && typeof spec.reminder !== 'function') fail('reminder must be a function (state, name, ctx)')
}
