/**
 * Faults the simulator injects, by seed or by enumeration, as a host would suffer them:
 *
 *   drop       a message is lost. A client's message is gone (a call never gets its
 *              reply: a timeout); a send of a `durable: false` agent is gone. A durable
 *              agent's send is lost only with a ring: its record stays in the outbox,
 *              and the host's outbox scan delivers it again (here: from the next tick).
 *   duplicate  a message arrives twice: a client that retried (after a timeout or a
 *              WorkerCrashedError), or a send delivered again. The runtime drops the copy
 *              of a durable send that was applied (effectively-once); everything else
 *              is applied twice unless the agent is idempotent.
 *   reorder    a send leaves its channel's FIFO order: later sends may overtake it (as a
 *              redelivered durable send does on a host)
 *   delay      a send waits 1..maxDelay ticks before it can be delivered (and may be
 *              overtaken meanwhile)
 *   crash      the host dies after a command's turn and before its commit: the agent
 *              goes back to its last committed state, the turn's reply and sends never
 *              leave; the message it handled is delivered again if it was a durable send
 *              (its outbox record is still there), lost otherwise (scheduler.ts)
 *
 * drop and duplicate apply to every message; reorder and delay to agents' sends (the
 * scenario's messages are concurrent already, unless they share a `client`). A crash
 * applies to message turns that have something to commit: a command on a durable type
 * (`durable: false` types have no commit and are never crashed here; a real thread
 * death would also reset them), and not of types with `timeout` or `reminder` handlers
 * (scheduler.ts, `crashNow`).
 *
 * Rates are the odds, in random runs, that a send (or a commit) suffers the fault.
 * Exhaustive exploration ignores the rates and tries every enabled fault at every
 * point, up to `max` faults per run (1 unless set), the usual bound of model checkers:
 * most bugs need one or two faults, and each allowed fault multiplies the states.
 */
import { InvalidOptionError } from '../errors.ts'
import type { Chooser } from './choices.ts'

export interface FaultOptions {
  /** Probability that a message is lost (a durable send is then delivered again by the outbox). */
  readonly drop?: number
  /** Probability that a message arrives twice (a client's retry, a send delivered again). */
  readonly duplicate?: number
  /** Probability that a send may be overtaken by later sends on the same channel. */
  readonly reorder?: number
  /** Probability that a send is held back 1..maxDelay ticks. */
  readonly delay?: number
  /** Longest delay, in ticks. Default 3. */
  readonly maxDelay?: number
  /** Probability that a commit crashes (the turn is rolled back). */
  readonly crash?: number
  /** At most this many faults per run. Default: no limit in random runs, 1 in exhaustive search. */
  readonly max?: number
}

export type SendFault = 'none' | 'drop' | 'duplicate' | 'reorder' | 'delay'

const SEND_FAULTS = ['drop', 'duplicate', 'reorder', 'delay'] as const
const KNOWN = new Set<string>([...SEND_FAULTS, 'crash', 'maxDelay', 'max'])

export class Faults {
  readonly maxDelay: number
  readonly crashRate: number
  /** The enabled send faults and their rates, in a fixed order. */
  readonly sendKinds: readonly SendFault[]
  private readonly sendWeights: readonly number[]
  private readonly clientKinds: readonly SendFault[]
  private readonly clientWeights: readonly number[]
  /** The `max` option as given (undefined: mode-dependent default). */
  readonly max: number | undefined

  constructor (options: FaultOptions | undefined) {
    const o = validate(options)
    this.maxDelay = o.maxDelay ?? 3
    this.crashRate = o.crash ?? 0
    this.max = o.max
    const kinds: SendFault[] = ['none']
    const weights: number[] = [0]
    let total = 0
    for (const kind of SEND_FAULTS) {
      const rate = o[kind] ?? 0
      if (rate > 0) {
        kinds.push(kind)
        weights.push(rate)
        total += rate
      }
    }
    weights[0] = 1 - total
    this.sendKinds = kinds
    this.sendWeights = weights
    const drop = o.drop ?? 0
    const duplicate = o.duplicate ?? 0
    this.clientKinds = (['none', 'drop', 'duplicate'] as const).filter((k, i) => i === 0 || (k === 'drop' ? drop : duplicate) > 0)
    this.clientWeights = this.clientKinds.map((k) => (k === 'none' ? 1 - drop - duplicate : k === 'drop' ? drop : duplicate))
  }

  /** True when some fault can happen at all. */
  get any (): boolean {
    return this.sendKinds.length > 1 || this.crashRate > 0
  }

  /** The fault budget of a run in the given mode. */
  budget (exhaustive: boolean): number {
    return this.max ?? (exhaustive ? 1 : Infinity)
  }

  /** What happens to one send. `left` is the run's remaining fault budget. */
  sendFault (chooser: Chooser, left: number): SendFault {
    if (left <= 0 || this.sendKinds.length === 1) return 'none'
    return this.sendKinds[chooser.pick(this.sendKinds.length, this.sendWeights)]!
  }

  /** What happens to a client's message as it arrives: only drop and duplicate apply. */
  clientFault (chooser: Chooser, left: number): SendFault {
    if (left <= 0 || this.clientKinds.length === 1) return 'none'
    return this.clientKinds[chooser.pick(this.clientKinds.length, this.clientWeights)]!
  }

  /** How many ticks a delayed send waits. */
  delayTicks (chooser: Chooser): number {
    return this.maxDelay === 1 ? 1 : 1 + chooser.pick(this.maxDelay)
  }

  /** Whether this commit crashes. */
  crash (chooser: Chooser, left: number): boolean {
    if (left <= 0 || this.crashRate === 0) return false
    return chooser.pick(2, [1 - this.crashRate, this.crashRate]) === 1
  }
}

function validate (options: FaultOptions | undefined): FaultOptions {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError('faults', options, 'must be an object such as { drop: 0.1, crash: 0.05 }')
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new InvalidOptionError(`faults.${key}`, (options as Record<string, unknown>)[key], `is not a known fault (known: ${[...KNOWN].join(', ')})`)
    }
  }
  let total = 0
  for (const kind of [...SEND_FAULTS, 'crash'] as const) {
    const rate = options[kind]
    if (rate === undefined) continue
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
      throw new InvalidOptionError(`faults.${kind}`, rate, 'must be a probability from 0 to 1')
    }
    if (kind !== 'crash') total += rate
  }
  if (total > 1) {
    throw new InvalidOptionError('faults', options, 'drop + duplicate + reorder + delay must not exceed 1 (they are the odds of one send)')
  }
  if (options.maxDelay !== undefined && !(Number.isInteger(options.maxDelay) && options.maxDelay >= 1 && options.maxDelay <= 1000)) {
    throw new InvalidOptionError('faults.maxDelay', options.maxDelay, 'must be an integer from 1 to 1000 (ticks)')
  }
  if (options.max !== undefined && !(Number.isInteger(options.max) && options.max >= 0)) {
    throw new InvalidOptionError('faults.max', options.max, 'must be a non-negative integer')
  }
  return options
}
