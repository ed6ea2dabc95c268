/**
 * Faults the simulator injects, by seed or by enumeration:
 *
 *   drop       a send between agents is lost
 *   duplicate  a send is delivered twice (a network or a retry that delivers twice)
 *   reorder    a send leaves its channel's FIFO order: later sends may overtake it
 *   delay      a send waits 1..maxDelay ticks before it can be delivered (and may be
 *              overtaken meanwhile)
 *   crash      the host dies after a command's turn and before its commit: the agent
 *              goes back to its last committed state, the turn's reply and sends never
 *              leave (see world.ts for what happens to the message that was handled)
 *
 * Send faults apply to `ctx.send`s only, never to the scenario's own messages (those
 * come from clients outside the host) nor to replies. A crash applies to turns that
 * have something to commit: a command on a durable type (`durable: false` types have no
 * commit and are never crashed here; a real thread death would also reset them).
 *
 * Rates are the odds, in random runs, that a send (or a commit) suffers the fault.
 * Exhaustive exploration ignores the rates and tries every enabled fault at every
 * point, up to `max` faults per run (1 unless set), the usual bound of model checkers:
 * most bugs need one or two faults, and each allowed fault multiplies the states.
 */
import { InvalidOptionError } from '../errors.ts'
import type { Chooser } from './choices.ts'

export interface FaultOptions {
  /** Probability that a send between agents is lost. */
  readonly drop?: number
  /** Probability that a send is delivered twice. */
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
