/**
 * `simulate`: one deterministic run of a scenario — the agents a host runs, on this
 * thread, with a virtual clock and a seeded scheduler. It delivers the scenario's
 * messages and everything they cause, in an order (and with faults) chosen by the
 * seed, and returns the world: committed states, replies, and the full trace.
 *
 * Same seed, same options → same trace, always: the only sources of choice are the
 * seed's PRNG (choices.ts); no wall time, no threads, no I/O. Agents must play along —
 * a handler that reads `Math.random()` or `Date.now()`, or keeps state in module
 * scope, makes runs differ (explore detects this when a failure does not replay).
 *
 * `replay` (from a failure of `explore`) reruns a recorded sequence of choices instead
 * of a seed: the shrunk failing trace, step for step.
 */
import { InvalidOptionError } from '../errors.ts'
import { RandomChooser, ReplayChooser, decodeReplay } from './choices.ts'
import type { Chooser } from './choices.ts'
import { checkKeys, checkSeed, prepareScenario, SIMULATE_KEYS } from './scenario.ts'
import type { SimulateOptions } from './scenario.ts'
import { SimWorld } from './scheduler.ts'
import type { World } from './world-view.ts'

export async function simulate (options: SimulateOptions): Promise<World> {
  checkKeys('simulate', options, SIMULATE_KEYS)
  const scenario = prepareScenario(options)
  let chooser: Chooser
  let budget: number
  let seed: number | null
  if (options.replay !== undefined) {
    if (options.seed !== undefined) throw new InvalidOptionError('replay', options.replay, 'replays recorded choices: do not also give a seed')
    const replay = decodeReplay(options.replay)
    chooser = new ReplayChooser(replay.choices)
    budget = replay.faultBudget
    seed = null
  } else {
    seed = checkSeed(options.seed)
    chooser = new RandomChooser(seed)
    budget = scenario.faults.budget(false)
  }
  const world = new SimWorld(scenario, chooser, { budget, record: true, seed })
  await runWorld(world, null)
  return world
}

/**
 * Step `world` until its run is over, calling `check` after every step; stops early
 * (returning false) when `check` returns false.
 */
export async function runWorld (world: SimWorld, check: (() => boolean) | null): Promise<boolean> {
  for (;;) {
    let more = world.step()
    if (typeof more !== 'boolean') more = await more
    if (!more) return true
    if (check !== null && !check()) return false
  }
}
