/**
 * One minor GC early in a worker's first mass activation, so that V8 decides to
 * pretenure the new cells' and states' allocation sites while few of them live.
 *
 * V8 decides "tenure" for a site at a scavenge made with the young generation at its
 * maximum size (engine workers start there: host/worker-young-generation.ts). Left to
 * itself, a worker's first scavenge comes once 16 MiB are allocated — ~85,000
 * activations, whose cells and states (7–8 MB) it copies in one pause and promotes at the
 * next (bench/RESULTS.md, issue 13, branches act and heap). A scavenge after the first
 * kNudgeAfter activations copies a few hundred KB, and the later ones of the phase keep
 * almost nothing young.
 *
 * The scavenge is V8's `gc({ type: 'minor' })`, which exists only with --expose-gc: the
 * flag is set, a fresh vm context made (V8 reads the flag when a context is created, and
 * only that context gets `gc`: no global of this thread's or the application's changes),
 * and the flag set back off unless the process was started with it. The flag is
 * process-wide for that moment: a context another thread creates in it gets `gc` too.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { hasFlag, startupFlags } from '../host/node-flags.ts'

/** Activations of a worker before its one early minor GC. */
export const kNudgeAfter = 2000

/** Passes of the thread loop that try the minor GC before giving up (minorGcNow). */
export const kNudgeTries = 64

type Gc = (options?: { type?: 'minor' | 'major' }) => void

let minorGc: Gc | null = null

/**
 * The process was started with --expose-gc — on its command line or in NODE_OPTIONS
 * (which `execArgv` does not list): then the flag is left on.
 */
export function startedWithExposeGc (execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return hasFlag(startupFlags(execArgv, nodeOptions), 'expose-gc')
}

function gcFunction (): Gc | null {
  const had = startedWithExposeGc(process.execArgv, process.env.NODE_OPTIONS)
  try {
    if (!had) setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    return typeof gc === 'function' ? gc as Gc : null
  } catch {
    return null
  } finally {
    if (!had) setFlagsFromString('--no-expose-gc')
  }
}

/**
 * Run one minor GC of this thread; false if V8 gave no `gc` this time. The flag is the
 * process's: two workers reaching their nudge together can turn it off between the other's
 * set and its context (one of the runs traced had a worker without its nudge, and its two
 * scavenges of the phase copied 8 MB in 32–40 ms pauses), so the caller tries again on a
 * later pass.
 */
export function minorGcNow (): boolean {
  if (minorGc === null) minorGc = gcFunction()
  if (minorGc === null) return false
  minorGc({ type: 'minor' })
  return true
}
