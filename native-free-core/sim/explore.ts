/**
 * `explore`: check an invariant after every step of every run of a scenario.
 *
 * Phase 1, random warm-up: WARM_UP_RUNS seeded runs (at most a tenth of `maxRuns`).
 * Most bugs show up in the first few, long before a search of every state reaches them.
 *
 * Phase 2, exhaustive: a breadth-first search over steps with state hashing. Each
 * visited world state (committed states and storage, the outbox, messages in flight with
 * their channel order, replies, clock, fault budget left: `SimWorld.stateHash`) is
 * expanded once, by every combination of the choices of one step — which message or
 * the clock, then the faults the step's messages and commit may meet (up to
 * `faults.max` per run, 1 unless set). A state reached again by another ordering is not
 * expanded again: deliveries to different agents commute, so the k! orderings of k
 * independent deliveries reach only 2^k states (the subsets delivered so far).
 * Breadth-first, so the first failure found has the fewest steps of any.
 *
 * Partial-order reduction on top: sleep sets (Godefroid). After a state has explored
 * the delivery to agent A, its later children that deliver to other agents "sleep" on
 * it — delivering it there reaches a state the first branch reaches too — and pass it
 * on to their children while they do not touch A. A sleeping delivery is not run at all
 * when the state has no fault left to choose; otherwise it still runs for its faulty
 * variants (a fault, the clock, a delivery to the same agent wake everything). With
 * state caching, a state reached again with a smaller sleep set re-explores exactly
 * the deliveries it had slept on (`arrive`). test/sim/state-reduction.test.ts checks on
 * random scenarios that the states visited are those of the plain search.
 *
 * A world is restored from a snapshot of its store and network when the scenario
 * allows it (`Scenario.restorable`); otherwise its path is replayed from the start. A
 * "run" of this phase is one expansion either way.
 *
 * Phase 3, random: if the search did not finish within three quarters of `maxRuns`, or
 * faults are enabled without a `max` (the search covered one fault per run, random runs
 * cover more), seeded random runs take the rest.
 *
 * On failure: the failing choices are replayed once (if the failure does not come back,
 * the agents are not deterministic: SimulationError), shrunk (shrink.ts), and replayed
 * with a trace. The result holds the seed that found it (null for the exhaustive
 * phase), a `replay` string for `simulate({ replay })`, the trace and a printout.
 *
 * The invariant must be a pure, synchronous function of the world view it gets: state
 * hashing assumes two equal states pass or fail alike. Two states that differ only in
 * the order of an object's keys are equal here (state-hash.ts, `valueHash`).
 */
import { InvalidOptionError, SimulationError, messageOf } from '../errors.ts'
import { RandomChooser, RecordingChooser, ReplayChooser, encodeReplay } from './choices.ts'
import type { Chooser } from './choices.ts'
import { checkKeys, checkSeed, EXPLORE_KEYS, prepareScenario } from './scenario.ts'
import type { ExploreOptions, Scenario } from './scenario.ts'
import { SimWorld } from './scheduler.ts'
import type { WorldSnapshot } from './scheduler.ts'
import { shrink } from './shrink.ts'
import type { Attempt } from './shrink.ts'
import { runWorld } from './simulate.ts'
import { formatTrace } from './trace.ts'
import type { TraceEntry } from './trace.ts'
import type { WorldView } from './world-view.ts'

const SHRINK_ATTEMPTS = 2_000
/** Random runs before the exhaustive search (at most a tenth of maxRuns). */
const WARM_UP_RUNS = 200

interface ExploreStats {
  /** Runs spent (an exhaustive-search expansion counts as one). */
  readonly runs: number
  /** Distinct states the exhaustive phase visited. */
  readonly states: number
  /** The exhaustive phase visited every reachable state (with up to `faultsPerRun` faults per run). */
  readonly exhaustive: boolean
  readonly faultsPerRun: number
  /** Random runs that stopped at maxSteps with work left. */
  readonly truncated: number
  /** A summary (ok) or the failure, its replay string and its trace (failed). */
  readonly printout: string
}

export type ExploreResult = ExploreStats & ({ readonly ok: true } | {
  readonly ok: false
  /** The invariant's message. */
  readonly error: string
  /** The seed of the random run that first failed; null when the exhaustive phase found it. */
  readonly seed: number | null
  /** `simulate({ ...sameOptions, replay })` reruns the shrunk failing trace. */
  readonly replay: string
  /** The shrunk failing run, up to and including the step after which the invariant failed. */
  readonly trace: readonly TraceEntry[]
  readonly steps: number
  /** Steps of the failure as first found, before shrinking. */
  readonly foundSteps: number
})

type Invariant = (world: WorldView) => unknown

const kNoPath: readonly number[] = []

/**
 * A state of the exhaustive search: the choices that reach it, a snapshot when the
 * scenario allows one, and its sleep set — deliveries (message key → target agent)
 * already explored from an ordering that reaches the same states.
 */
interface Node {
  path: readonly number[]
  snapshot: WorldSnapshot | null
  readonly sleep: Map<number, string>
  /** A re-expansion: explore only these deliveries. */
  readonly only: Set<number> | null
  expanded: boolean
  readonly terminal: boolean
}

export async function explore (options: ExploreOptions): Promise<ExploreResult> {
  checkKeys('explore', options, EXPLORE_KEYS)
  if (typeof options.invariant !== 'function') {
    throw new InvalidOptionError('invariant', options.invariant, 'must be a function (world) => boolean | void that throws or returns false when the world is wrong')
  }
  const maxRuns = options.maxRuns ?? 10_000
  if (!(Number.isInteger(maxRuns) && maxRuns >= 1)) throw new InvalidOptionError('maxRuns', options.maxRuns, 'must be a positive integer')
  const seed0 = checkSeed(options.seed)
  const scenario = prepareScenario(options)
  const explorer = new Explorer(scenario, options.invariant, maxRuns)
  return explorer.run(seed0)
}

export class Explorer {
  private readonly scenario: Scenario
  private readonly invariant: Invariant
  private readonly maxRuns: number
  /** Sleep sets on (off only to test that they change nothing but the cost). */
  private readonly reduction: boolean
  private runs = 0
  private states = 0
  private truncated = 0
  private violation = ''

  constructor (scenario: Scenario, invariant: Invariant, maxRuns: number, reduction = true) {
    this.scenario = scenario
    this.invariant = invariant
    this.maxRuns = maxRuns
    // sleep sets need deliveries to different agents to commute; with agent timers they
    // need not (the order timers were armed in decides which fires first at one tick)
    this.reduction = reduction && scenario.mergeable && !scenario.timers
  }

  async run (seed0: number): Promise<ExploreResult> {
    const faults = this.scenario.faults
    const exhaustiveBudget = faults.budget(true)
    const randomBudget = faults.budget(false)
    let seedIndex = 0
    const random = async (until: number): Promise<ExploreResult | null> => {
      while (this.runs < until) {
        const seed = (seed0 + seedIndex++) >>> 0
        this.runs++
        const attempt = await this.attempt(new RandomChooser(seed), randomBudget, seed)
        if (attempt.complete === false) this.truncated++
        if (attempt.failed) return this.failed(attempt, seed, randomBudget, false, exhaustiveBudget)
      }
      return null
    }
    // a few random runs first: most bugs show up in them at once, long before a search
    // of every state would reach them
    const early = await random(Math.min(WARM_UP_RUNS, Math.floor(this.maxRuns / 10)))
    if (early !== null) return early
    const warmUp = seedIndex
    const found = await this.exhaustive(exhaustiveBudget, Math.max(this.runs + 1, Math.floor(this.maxRuns * 3 / 4)))
    if (found !== 'complete' && found !== 'incomplete') return this.failed(found, null, exhaustiveBudget, false, exhaustiveBudget)
    const complete = found === 'complete'
    const randomTail = !complete || (faults.any && randomBudget > exhaustiveBudget)
    if (randomTail) {
      const late = await random(this.maxRuns)
      if (late !== null) return late
    }
    const what = complete
      ? `every reachable state (${this.states}) with up to ${exhaustiveBudget} fault${exhaustiveBudget === 1 ? '' : 's'} per run`
      : `${this.states} states exhaustively (not all: raise maxRuns to search them all)`
    return {
      ok: true,
      runs: this.runs,
      states: this.states,
      exhaustive: complete,
      faultsPerRun: exhaustiveBudget,
      truncated: this.truncated,
      printout: `explore: the invariant held in ${this.runs} runs: ${warmUp} random, then ${what}${randomTail ? `, then ${seedIndex - warmUp} random` : ''}` +
        (this.truncated > 0 ? `; ${this.truncated} random runs stopped at maxSteps` : '')
    }
  }

  /** Breadth-first over steps. Returns a failing attempt, or whether the search finished. */
  private async exhaustive (budget: number, maxRuns: number): Promise<Attempt | 'complete' | 'incomplete'> {
    const visited = new Map<number, Node>()
    const restorable = this.scenario.restorable
    const root = this.world(new ReplayChooser([]), budget, false, null, true)
    this.runs++
    if (!this.check(root)) return { failed: true, steps: 0, faults: 0, made: [] }
    const rootNode: Node = { path: [], snapshot: null, sleep: new Map(), only: null, expanded: false, terminal: root.idle }
    visited.set(root.stateHash(), rootNode)
    this.states++
    if (restorable && root.canSnapshot()) rootNode.snapshot = root.snapshot([])
    let frontier: Node[] = root.idle ? [] : [rootNode]
    for (let level = 0; frontier.length > 0; level++) {
      const next: Node[] = []
      for (const node of frontier) {
        node.expanded = true
        const only = node.only
        const sleep = node.sleep
        let base: SimWorld | null = await this.open(node, level, budget)
        const events = base.events()
        // with no fault left to choose, a delivery is one transition: a sleeping one needs no run
        const plain = !this.scenario.faults.any || budget - base.faultsUsed <= 0
        const explored = new Map<number, string>()
        for (let i = 0; i < events.length; i++) {
          const event = events[i]!
          if (only !== null && !only.has(event.key)) continue
          const asleep = this.reduction && event.target !== null && sleep.has(event.key)
          if (asleep && plain) continue
          let internal: readonly number[] = []
          for (;;) {
            if (this.runs >= maxRuns) return 'incomplete'
            this.runs++
            const world = base ?? await this.open(node, level, budget)
            base = null
            const chooser = world.chooser as ReplayChooser
            const offset = chooser.made.length
            chooser.append(events.length > 1 ? [i, ...internal] : internal)
            let more = world.step()
            if (typeof more !== 'boolean') more = await more
            const made = chooser.made.slice(offset)
            const faultFree = world.stepFaults === 0
            if (more && !(asleep && faultFree)) {
              if (!this.check(world)) return { failed: true, steps: world.steps, faults: world.faultsUsed, made: [...node.path, ...made] }
              // the child sleeps on what was explored before it and does not touch its agent
              const childSleep = new Map<number, string>()
              if (this.reduction && faultFree && event.target !== null) {
                for (const [k, target] of sleep) if (target !== event.target) childSleep.set(k, target)
                for (const [k, target] of explored) if (target !== event.target) childSleep.set(k, target)
              }
              this.arrive(visited, next, world, [...node.path, ...made], childSleep)
            }
            if (faultFree && event.target !== null && !asleep) explored.set(event.key, event.target)
            // the next combination of this event's own choices (an odometer, last choice fastest)
            const first = events.length > 1 ? 1 : 0
            let k = made.length - 1
            while (k >= first && made[k]! + 1 >= chooser.options[offset + k]!) k--
            if (k < first) break
            internal = [...made.slice(first, k), made[k]! + 1]
          }
        }
        // the visited set keeps only what later arrivals compare with: a re-expansion
        // brings its own snapshot and path
        node.snapshot = null
        node.path = kNoPath
      }
      frontier = next
    }
    return 'complete'
  }

  /**
   * A step reached a state. New: queue it. Seen, with a sleep set that does not cover
   * the one it was (or will be) expanded with: the transitions it slept on must be
   * explored after all (sleep sets with state caching, Godefroid 1996, §5).
   */
  private arrive (visited: Map<number, Node>, next: Node[], world: SimWorld, path: readonly number[], sleep: Map<number, string>): void {
    const h = world.stateHash()
    const seen = visited.get(h)
    const terminal = world.idle || world.steps >= this.scenario.maxSteps
    if (seen === undefined) {
      const node: Node = { path, snapshot: null, sleep, only: null, expanded: false, terminal }
      visited.set(h, node)
      this.states++
      if (!terminal) {
        if (this.scenario.restorable && world.canSnapshot()) node.snapshot = world.snapshot(path)
        next.push(node)
      }
      return
    }
    if (seen.terminal) return
    const missing = new Set<number>()
    for (const k of seen.sleep.keys()) if (!sleep.has(k)) missing.add(k)
    if (missing.size === 0) return
    for (const k of missing) seen.sleep.delete(k)
    if (!seen.expanded) {
      if (seen.only !== null) for (const k of missing) seen.only.add(k)
      return
    }
    const again: Node = { path, snapshot: null, sleep: seen.sleep, only: missing, expanded: false, terminal: false }
    if (this.scenario.restorable && world.canSnapshot()) again.snapshot = world.snapshot(path)
    visited.set(h, again)
    next.push(again)
  }

  /** A world at `node`, ready for its next step: restored from its snapshot, or replayed. */
  private async open (node: Node, level: number, budget: number): Promise<SimWorld> {
    if (node.snapshot !== null) {
      return new SimWorld(this.scenario, new ReplayChooser([]), { budget, record: false, seed: null, hashing: true, from: node.snapshot })
    }
    const world = this.world(new ReplayChooser(node.path), budget, false, null, true)
    for (let s = 0; s < level; s++) {
      const r = world.step()
      if (typeof r !== 'boolean') await r
    }
    return world
  }

  /** One run with checks after every step, recorded as a schedule for the shrinker. */
  private async attempt (inner: Chooser, budget: number, seed: number | null): Promise<Attempt> {
    const chooser = new RecordingChooser(inner)
    const world = this.world(chooser, budget, false, seed)
    let failed = !this.check(world)
    if (!failed) {
      failed = !await runWorld(world, () => this.check(world))
    }
    return { failed, steps: world.steps, faults: world.faultsUsed, made: [...chooser.made], records: chooser.records, complete: world.complete }
  }

  private async failed (found: Attempt, seed: number | null, budget: number, exhaustive: boolean, faultsPerRun: number): Promise<ExploreResult> {
    const again = await this.attempt(new ReplayChooser(found.made), budget, null)
    if (!again.failed || again.steps !== found.steps) {
      throw new SimulationError('a failing run did not fail again when replayed: the agents are not deterministic (Math.random, Date.now, or state kept outside `state` — pass `agents` as a function to get fresh definitions per run)')
    }
    const best = await shrink(again, (chooser) => this.attempt(chooser, budget, null), SHRINK_ATTEMPTS)
    const chooser = new ReplayChooser(best.made)
    const world = this.world(chooser, budget, true)
    const checkFinal = (): boolean => this.check(world)
    let ok = checkFinal()
    if (ok) ok = await runWorld(world, checkFinal)
    if (ok) throw new SimulationError('the shrunk failing run did not fail when replayed with a trace: the agents are not deterministic')
    const error = this.violation
    const replay = encodeReplay({ faultBudget: budget, choices: best.made })
    const how = seed === null ? 'found by exhaustive search' : `found by seed ${seed}`
    const when = world.steps === 0 ? 'on the initial world, before any step' : `after ${world.steps} step${world.steps === 1 ? '' : 's'}`
    const printout = [
      `explore: the invariant failed ${when} (${how} after ${found.steps} steps, ${this.runs} runs)`,
      `  ${error}`,
      `reproduce: simulate({ ...sameOptions, replay: '${replay}' })`,
      '',
      formatTrace(world.trace),
      `  ↳ the invariant failed here: ${error}`
    ].join('\n')
    return {
      ok: false,
      runs: this.runs,
      states: this.states,
      exhaustive,
      faultsPerRun,
      truncated: this.truncated,
      error,
      seed,
      replay,
      trace: world.trace,
      steps: world.steps,
      foundSteps: found.steps,
      printout
    }
  }

  private world (chooser: Chooser, budget: number, record: boolean, seed: number | null = null, hashing = false): SimWorld {
    return new SimWorld(this.scenario, chooser, { budget, record, seed, hashing })
  }

  /** Run the invariant; false (and `violation` set) when it throws or returns false. */
  private check (world: SimWorld): boolean {
    let result: unknown
    try {
      result = this.invariant(world)
    } catch (err) {
      this.violation = err instanceof Error ? `${err.name}: ${messageOf(err)}` : messageOf(err)
      return false
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      throw new InvalidOptionError('invariant', 'an async function', 'must be synchronous: it runs after every step of every run')
    }
    if (result === false) {
      this.violation = 'the invariant returned false'
      return false
    }
    return true
  }
}
