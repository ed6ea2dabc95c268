/**
 * Every error Shoal raises is a `ShoalError` with a stable `code` (`SHOAL_ERR_*`).
 *
 * Errors cross threads and hosts as plain `{ code, message, data }` (structured clone
 * and msgpack drop prototypes) and are rebuilt here by code, so `err instanceof
 * TimeoutError` and `err.code === 'SHOAL_ERR_TIMEOUT'` hold on the caller's side
 * whichever thread raised it.
 *
 * `instanceof` is brand-based (`Symbol.for`), as in undici and piscina, so it keeps
 * working when two copies of the package are loaded. Each subclass checks its own
 * code on top of the brand: with only the base brand, every ShoalError would pass
 * `instanceof TimeoutError`.
 */

const kShoalError = Symbol.for('shoal.error')

/** The shape an error takes on a ring, a socket or in LMDB. */
export interface WireError {
  readonly code: string
  readonly message: string
  readonly data?: unknown
}

/**
 * The base of every Shoal error, for `instanceof` and `code` checks. Never thrown as
 * such: every error Shoal raises is one of the subclasses below. The one ShoalError
 * that is not a subclass is the rebuild of an error whose code this version does not
 * know (from a newer peer), and it keeps that code.
 */
export class ShoalError extends Error {
  /** Stable machine-readable code; match on it, never on the message. */
  static readonly code: string = 'SHOAL_ERR'
  readonly code: string
  /** Structured details (the option name, the agent id, ...). Plain data only. */
  readonly data: unknown
  /** True when the same request may succeed if retried (Orleans' transient errors). */
  get retriable (): boolean { return false }

  constructor (message: string, data?: unknown, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = (new.target as typeof ShoalError).code
    this.data = data
  }

  get [kShoalError] (): true { return true }

  static override [Symbol.hasInstance] (value: unknown): boolean {
    if ((value as { [kShoalError]?: unknown } | null)?.[kShoalError] !== true) return false
    return this === ShoalError || (value as ShoalError).code === this.code
  }

  toWire (): WireError {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data }
  }
}

/** `createHost` (or another constructor) got an option it cannot use. */
export class InvalidOptionError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_INVALID_OPTION'
  constructor (option: string, value: unknown, rule: string) {
    super(`options.${option} ${rule} (got ${describe(value)})`, { option, value: plain(value) })
  }
}

/** An argument of a public call is malformed (an agent key that is not a string, ...). */
export class InvalidArgumentError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_INVALID_ARGUMENT'
}

/** `defineAgent` got a specification it cannot run. */
export class InvalidDefinitionError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_INVALID_DEFINITION'
}

export class UnknownAgentTypeError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_UNKNOWN_AGENT_TYPE'
  constructor (type: string, known?: readonly string[]) {
    super(`unknown agent type ${JSON.stringify(type)}${known ? ` (known: ${known.map((t) => JSON.stringify(t)).join(', ') || 'none'})` : ''}`, { type })
  }
}

export class UnknownMethodError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_UNKNOWN_METHOD'
  constructor (type: string, method: string) {
    super(`agent type ${JSON.stringify(type)} has no command or query ${JSON.stringify(method)}`, { type, method })
  }
}

/**
 * A handler threw (or its promise rejected). The agent was rolled back to its last
 * committed state and stays usable; `message` is the handler's own message and
 * `data.name` the original error's name.
 */
export class AgentError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_AGENT'
}

export class TimeoutError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_TIMEOUT'
  override get retriable (): boolean { return true }
}

/** The caller's `AbortSignal` fired. Named `AbortError` as fetch and undici do. */
export class AbortedError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_ABORTED'
  constructor (message = 'the call was aborted', data?: unknown, options?: ErrorOptions) {
    super(message, data, options)
    this.name = 'AbortError'
  }
}

export class QuotaExceededError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_QUOTA_EXCEEDED'
}

export class UnknownQuotaError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_UNKNOWN_QUOTA'
}

export class RateLimitedError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_RATE_LIMITED'
  override get retriable (): boolean { return true }
}

export class MessageTooLargeError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_MESSAGE_TOO_LARGE'
}

/** A value could not be encoded (a payload, a reply, or a state a handler produced). */
export class EncodeError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_ENCODE'
}

/** Stored bytes no longer decode into a value (a corrupt or incompatible record). */
export class DecodeError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_DECODE'
}

/**
 * The worker thread that owned the agent died while the call was pending. The
 * worker has been restarted and durable agents come back from the store, so
 * retrying is safe for idempotent requests.
 */
export class WorkerCrashedError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_WORKER_CRASHED'
  override get retriable (): boolean { return true }
}

/**
 * A worker thread failed to start: the agents module threw when a worker imported it,
 * or the worker exited before it was ready (`data.thread`, `data.exitCode`; `cause` is
 * the worker's own error). A failure that is itself a ShoalError (a StorageError when
 * the worker cannot open the store, ...) is rethrown with its own code instead.
 */
export class WorkerStartError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_WORKER_START'
}

/**
 * A structure of bounded size is full: a thread's timing wheel holds MAX_TIMERS
 * (268,435,104) timers. `data.limit` is the bound.
 */
export class CapacityExceededError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_CAPACITY_EXCEEDED'
}

export class HostClosedError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_HOST_CLOSED'
  constructor (message = 'the host is closed') { super(message) }
}

/** The store (LMDB) failed to read or write. */
export class StorageError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_STORAGE'
}

/**
 * `ctx.offload(name, input)` failed: the task threw (`message` is the task's message,
 * `data.name` its error's name), the module has no such export, the pool is gone, or
 * the host has no `offload` option. `data.task` is the task name.
 */
export class OffloadError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_OFFLOAD'
}

/**
 * The simulator cannot go on deterministically: an async handler waits on something
 * outside the simulation (real I/O, real timers), or the agents behave differently
 * when a run is replayed (Math.random, Date.now, state kept outside `state`).
 */
export class SimulationError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_SIMULATION'
}

/**
 * Cluster: the agent's shard has no host serving it right now — its owner is unreachable
 * (the link dropped before the reply came: the call may or may not have run), or is
 * moving, or is down and has no replica to take over. Retriable: the same call succeeds
 * once the shard is served again. `data.shard` names the shard; `data.host` the host
 * that was last known to serve it, when there was one.
 */
export class ShardUnavailableError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_SHARD_UNAVAILABLE'
  override get retriable (): boolean { return true }
}

/**
 * The cluster's coordination service (etcd) cannot be reached: `createHost` with the
 * cluster plugin gave up within the lease TTL (`data.endpoints`, `data.cause`).
 * Retriable: nothing was registered, start again when etcd is back.
 */
export class ClusterUnavailableError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_CLUSTER_UNAVAILABLE'
  override get retriable (): boolean { return true }
}

/**
 * Another live host holds this host's cluster id (`data.id`): its member key is still
 * renewed after its lease TTL. Two hosts with one id would both serve its shards.
 */
export class ClusterIdInUseError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_CLUSTER_ID_IN_USE'
}

/**
 * This host's cluster lease is gone (expired or revoked) or its member key is held under
 * another lease, so it may no longer write what only a live member may write — its
 * in-sync record (`data.id`, `data.lease`). Other hosts may already have taken its
 * shards over. Not retriable as such: the membership registers again with a new lease,
 * and the host must rebuild what it writes from the map it gets then.
 */
export class ClusterFencedError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_CLUSTER_FENCED'
}

/**
 * A link to another host of the cluster cannot take the message now: its queue is over
 * the byte limit while it connects or drains (`data.reason: 'backlog'`), or the link was
 * disconnected or closed (`'closed'`). `data.peer` names the host. Retriable: the link
 * reconnects and drains by itself.
 */
export class LinkUnavailableError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_LINK_UNAVAILABLE'
  override get retriable (): boolean { return true }
}

/**
 * A native addon Shoal relies on for speed did not load and its package fell back to a
 * slow pure-JS build (`data.addon`); Shoal refuses to run on the fallback unless the
 * environment variable in `data.optIn` says so.
 */
export class NativeAddonError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_NATIVE_ADDON'
}

/**
 * Another host of the cluster refused a read-only ask (plugins/cluster/peer-asks.ts): no
 * plugin answers that topic there, or its handler failed. `data.peer`, `data.topic`.
 */
export class PeerAskError extends ShoalError {
  static override readonly code = 'SHOAL_ERR_PEER_ASK'
}

type ErrorClass = typeof ShoalError

const byCode = new Map<string, ErrorClass>()
for (const cls of [
  ShoalError, InvalidOptionError, InvalidArgumentError, InvalidDefinitionError, UnknownAgentTypeError,
  UnknownMethodError, AgentError, TimeoutError, AbortedError, QuotaExceededError, UnknownQuotaError,
  RateLimitedError, MessageTooLargeError, EncodeError, DecodeError, WorkerCrashedError,
  HostClosedError, StorageError, OffloadError, SimulationError, ShardUnavailableError, ClusterUnavailableError,
  ClusterIdInUseError, LinkUnavailableError, NativeAddonError
] as ErrorClass[]) byCode.set(cls.code, cls)
for (const cls of [ClusterFencedError] as ErrorClass[]) byCode.set(cls.code, cls)
for (const cls of [WorkerStartError, CapacityExceededError, PeerAskError] as ErrorClass[]) byCode.set(cls.code, cls)

/** Every code this build knows, for docs and tests. */
export const errorCodes: readonly string[] = [...byCode.keys()]

/**
 * Rebuild an error that crossed a thread or a host. Constructors of subclasses take
 * different arguments, so the instance is created without calling them and the wire
 * fields are assigned; unknown codes become a plain ShoalError that keeps its code.
 */
export function errorFromWire (wire: WireError): ShoalError {
  const cls = byCode.get(wire.code) ?? ShoalError
  const err = Object.create(cls.prototype) as ShoalError
  const stackHolder = new Error(wire.message)
  Object.defineProperties(err, {
    message: { value: wire.message, writable: true, configurable: true },
    name: { value: cls === AbortedError ? 'AbortError' : cls.name, writable: true, configurable: true },
    code: { value: wire.code, enumerable: true },
    data: { value: wire.data, enumerable: true },
    stack: { value: `${cls.name}: ${wire.message}\n${stackHolder.stack?.split('\n').slice(1).join('\n') ?? ''}`, writable: true, configurable: true }
  })
  return err
}

/** @internal Turn anything a handler may throw into wire form: ShoalErrors keep their code. */
export function toWire (error: unknown): WireError {
  if (error instanceof ShoalError) return error.toWire()
  return new AgentError(messageOf(error), { name: nameOf(error) }).toWire()
}

/** @internal The message of anything thrown. */
export function messageOf (error: unknown): string {
  if (error instanceof Error) return error.message
  if (typeof error === 'string') return error
  try { return `non-error thrown: ${JSON.stringify(error)}` } catch { return `non-error thrown: ${String(error)}` }
}

function nameOf (error: unknown): string {
  return error instanceof Error ? error.name : typeof error
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (value instanceof URL) return value.href
  try { return JSON.stringify(value) ?? String(value) } catch { return String(value) }
}

/** Keep error data plain (encodable): functions and symbols become their description. */
function plain (value: unknown): unknown {
  if (value === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof value)) return value
  return describe(value)
}
