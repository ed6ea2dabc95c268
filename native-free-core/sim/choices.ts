/**
 * Every decision of a simulated run is a *choice*: which in-flight message (or the
 * clock) goes next, whether a send is dropped, duplicated, reordered or delayed, and
 * whether a commit crashes. A run is a pure function of its sequence of choices, so
 *
 *   - `simulate({ seed })` draws them from a seeded PRNG (`RandomChooser`);
 *   - `explore` enumerates them (breadth-first over steps, see explore.ts) and replays
 *     prefixes (`ReplayChooser`);
 *   - shrinking edits the recorded sequence (delete, lower) and replays it: a failing
 *     run is reproduced from its choices alone, whatever seed first found it.
 *
 * Convention: choice 0 is always the *plain* option — the oldest enabled message, no
 * fault, commit normally. A replayed sequence that ran out reads 0; a value too large
 * for its choice point (the world changed under an edited prefix) is clamped. That is
 * what makes shrunk sequences fall back toward FIFO, fault-free runs.
 *
 * A choice point with a single option is not a choice: the scheduler does not ask,
 * and nothing is recorded, in every mode alike — otherwise replays would misalign.
 *
 * The PRNG is mulberry32: 32 bits of state, fast, statistically fine for scheduling,
 * not for anything secret. Seeds are uint32; the same seed gives the same sequence on
 * every platform (only Math.imul and 32-bit integer operations).
 */
import { InvalidOptionError } from '../errors.ts'

export interface Chooser {
  /**
   * An index in [0, n), n ≥ 2. `weights` (same length, summing to 1) are the odds a
   * random run gives each option; enumerating and replaying choosers ignore them.
   */
  pick (n: number, weights?: readonly number[]): number
  /** The choices made so far in this run, in order. */
  readonly made: readonly number[]
  /**
   * Called at the start of every step, even one with a single option, with a key per
   * option (a message's content hash; -1 for the clock). When there are several, the
   * next `pick` chooses among them. Only the shrinker's choosers need it.
   */
  event? (keys: readonly number[]): void
}

/** Draws choices from a seeded PRNG. */
export class RandomChooser implements Chooser {
  readonly made: number[] = []
  private state: number

  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1) (mulberry32). */
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  pick (n: number, weights?: readonly number[]): number {
    let choice = n - 1
    if (weights === undefined) {
      choice = Math.min(n - 1, Math.floor(this.next() * n))
    } else {
      let r = this.next()
      for (let i = 0; i < n; i++) {
        r -= weights[i]!
        if (r < 0) { choice = i; break }
      }
    }
    this.made.push(choice)
    return choice
  }
}

/**
 * Replays a recorded prefix, then answers 0 (the plain option) for every further
 * choice. The script can be extended while the run goes on (explore replays a path,
 * then decides the next step's choices).
 */
export class ReplayChooser implements Chooser {
  readonly made: number[] = []
  /** The number of options at each choice point met so far (explore's odometer reads it). */
  readonly options: number[] = []
  private readonly script: number[]

  constructor (script: readonly number[]) {
    this.script = script.slice()
  }

  /** Choices for the points after the current script. */
  append (choices: readonly number[]): void {
    this.script.push(...choices)
  }

  pick (n: number): number {
    const i = this.made.length
    const wanted = i < this.script.length ? this.script[i]! : 0
    const choice = wanted < n ? wanted : n - 1
    this.made.push(choice)
    this.options.push(n)
    return choice
  }
}

/** One step of a run as the shrinker edits it: which message (by content) or the clock, then the step's other choices. */
export interface StepRecord {
  readonly key: number
  readonly faults: readonly number[]
}

/**
 * Follows a list of steps by *message*, not by index: each step delivers the first
 * listed message that is deliverable (records whose message never shows up are
 * skipped), with that record's fault choices; once the list is used up, it answers 0.
 * Deleting a record thus removes one delivery and keeps the others, wherever they now
 * sit in the list of deliverable messages — the way to drop irrelevant deliveries
 * from a failing schedule (delta debugging of executions).
 */
export class ScheduleChooser implements Chooser {
  readonly made: number[] = []
  private readonly records: readonly StepRecord[]
  private next = 0
  private eventChoice = -1
  private faults: readonly number[] = []
  private faultIndex = 0

  constructor (records: readonly StepRecord[]) {
    this.records = records
  }

  event (keys: readonly number[]): void {
    this.faults = []
    this.faultIndex = 0
    let choice = 0
    while (this.next < this.records.length) {
      const r = this.records[this.next++]!
      const i = keys.indexOf(r.key)
      if (i >= 0) {
        choice = i
        this.faults = r.faults
        break
      }
    }
    this.eventChoice = keys.length > 1 ? choice : -1
  }

  pick (n: number): number {
    let choice: number
    if (this.eventChoice >= 0) {
      choice = this.eventChoice
      this.eventChoice = -1
    } else {
      const wanted = this.faultIndex < this.faults.length ? this.faults[this.faultIndex++]! : 0
      choice = wanted < n ? wanted : n - 1
    }
    this.made.push(choice)
    return choice
  }
}

/** Wraps a chooser and writes down the run as step records (for the shrinker). */
export class RecordingChooser implements Chooser {
  readonly records: Array<{ key: number, faults: number[] }> = []
  private readonly inner: Chooser
  private keys: readonly number[] = []
  private eventPending = false

  constructor (inner: Chooser) {
    this.inner = inner
  }

  get made (): readonly number[] {
    return this.inner.made
  }

  event (keys: readonly number[]): void {
    this.inner.event?.(keys)
    this.keys = keys
    this.eventPending = keys.length > 1
    this.records.push({ key: keys[0]!, faults: [] })
  }

  pick (n: number, weights?: readonly number[]): number {
    const choice = this.inner.pick(n, weights)
    const current = this.records[this.records.length - 1]!
    if (this.eventPending) {
      current.key = this.keys[choice]!
      this.eventPending = false
    } else {
      current.faults.push(choice)
    }
    return choice
  }
}

/**
 * A failing run, as a string the user can paste into `simulate({ replay })`. It holds
 * the fault budget too, because the budget decides where fault choice points exist:
 * the same numbers under another budget would be read at other points.
 */
export interface Replay {
  readonly faultBudget: number
  readonly choices: readonly number[]
}

const REPLAY_VERSION = 'shoal-sim/1'

export function encodeReplay (replay: Replay): string {
  const budget = replay.faultBudget === Infinity ? 'inf' : String(replay.faultBudget)
  return `${REPLAY_VERSION};faults=${budget};${replay.choices.join('.')}`
}

export function decodeReplay (token: unknown): Replay {
  const fail = (): never => {
    throw new InvalidOptionError('replay', token, `must be a string made by explore() (${REPLAY_VERSION};faults=N;choices)`)
  }
  if (typeof token !== 'string') return fail()
  const m = /^shoal-sim\/1;faults=(inf|\d+);((?:\d+(?:\.\d+)*)?)$/.exec(token)
  if (m === null) return fail()
  const faultBudget = m[1] === 'inf' ? Infinity : Number(m[1])
  const choices = m[2] === '' ? [] : m[2]!.split('.').map(Number)
  if (choices.some((c) => !Number.isSafeInteger(c))) return fail()
  return { faultBudget, choices }
}
