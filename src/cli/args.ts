/**
 * Value parsers for the `shoal` command line, in commander's convention: throw
 * commander's InvalidArgumentError, which it prints with the option's name and exits 1
 * — before minutes of benchmarking, not after.
 */
import { InvalidArgumentError } from 'commander'
import { scenarioNames } from './results.ts'
import type { ScenarioName } from './results.ts'
import { faultKinds } from './chaos/fault-plan.ts'
import type { FaultKind } from './chaos/fault-plan.ts'

/** "1000000", "1_000_000", "1,000,000", "1e6", "10M", "250k" → integer ≥ min. */
export function parseCount (text: string, min = 1): number {
  const m = /^(\d[\d_,]*(?:\.\d+)?(?:e\d+)?)([kKmM]?)$/.exec(text.trim())
  if (m === null) throw new InvalidArgumentError(`expected a whole number such as 1000000, 1e6 or 10M, got "${text}"`)
  const scale = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6 }[m[2] as '' | 'k' | 'K' | 'm' | 'M']
  const n = Number(m[1]!.replace(/[_,]/g, '')) * scale
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}, got "${text}"`)
  return n
}

export function parseSeconds (text: string): number {
  const s = Number(text)
  if (!Number.isFinite(s) || s <= 0 || s > 3600) throw new InvalidArgumentError(`expected seconds between 0 and 3600, got "${text}"`)
  return s
}

export function parseScenarios (text: string): ScenarioName[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (names.length === 1 && names[0] === 'all') return [...scenarioNames]
  for (const n of names) {
    if (!(scenarioNames as readonly string[]).includes(n)) {
      throw new InvalidArgumentError(`unknown scenario "${n}" (choose from ${scenarioNames.join(', ')}, or all)`)
    }
  }
  if (names.length === 0) throw new InvalidArgumentError('name at least one scenario')
  return names as ScenarioName[]
}

/** `--dashboard [port]`: no value → 0 (any free port), else a port number. */
export function parsePort (text: string | true): number {
  if (text === true) return 0
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port from 0 to 65535, got "${text}"`)
  return n
}

/** `--faults kill,stop,...` → fault kinds (chaos/fault-plan.ts), or all. */
export function parseFaultKinds (text: string): FaultKind[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (names.length === 1 && names[0] === 'all') return [...faultKinds]
  for (const n of names) {
    if (!(faultKinds as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown fault "${n}" (choose from ${faultKinds.join(', ')}, or all)`)
  }
  if (names.length === 0) throw new InvalidArgumentError('name at least one fault')
  return names as FaultKind[]
}
