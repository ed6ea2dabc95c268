/**
 * The engine's workers keep their own young generation whatever the process's V8 flags
 * say about it.
 *
 * V8's semi-space flags (`--min-semi-space-size`, `--max-semi-space-size`, in MiB) are per
 * process: every isolate created while they are set reads them, the engine's workers
 * included, and they override a Worker's `resourceLimits.maxYoungGenerationSizeMb` (V8's
 * Heap::ConfigureHeap reads the flags after the isolate's ResourceConstraints). An
 * application that gives its own thread a large young generation — fewer scavenges of
 * its short-lived garbage, the bench's main thread at 5–6 scavenges per 2 s phase instead
 * of ~25 — would also give it to every worker, where the agents' states are what
 * survives: a worker's scavenges then copy up to 64 MiB of them, 160–350 ms each
 * (bench/RESULTS.md, issue 13, branch qalloc).
 *
 * So while the engine creates its workers, the two flags are cleared (0: unset), and the
 * workers' isolates are sized by their own `resourceLimits` (the host option
 * `workerYoungGenerationMb`) or V8's default; once no engine worker is starting any more
 * (each one's 'online' event, or its exit) the process's values are set back, for the
 * isolates the application creates later. An isolate reads the flags only when it is
 * created: the main thread's heap, configured at the process's start, keeps its own.
 *
 * The process's values are read from its command line (`process.execArgv`) and
 * `NODE_OPTIONS` (Node allows `--max-semi-space-size` there), the command line last, as
 * Node passes them to V8. Values set at run time with `v8.setFlagsFromString` are not
 * visible to JavaScript: a process whose command line sets neither flag is left alone —
 * nothing is written, and flags it set at run time reach the workers as before — and
 * otherwise the restore sets the command line's values (or unset). An isolate the application
 * creates in the short window while an engine worker starts (until it is online) gets
 * V8's defaults too — or the engine worker's start below.
 *
 * The agents' workers also start with a heap shaped for their first mass activation
 * (engineWorkerHeap: the young generation at its largest size, a larger initial
 * old-generation limit), through two more process-wide flags set during the same window
 * (`--min-semi-space-size`, `--initial-old-space-size`) and set back afterwards to the
 * command line's values (or unset): an application that set either at run time with
 * `v8.setFlagsFromString` gets V8's default for its later isolates.
 */
import { setFlagsFromString } from 'node:v8'
import { Worker } from 'node:worker_threads'
import type { WorkerOptions } from 'node:worker_threads'
import { sizeFlag, startupFlags } from './node-flags.ts'

/** The semi-space sizes (MiB) a process asked V8 for; null: not set (V8's default). */
export interface SemiSpaceFlags {
  readonly min: number | null
  readonly max: number | null
}

/**
 * The semi-space flags in `NODE_OPTIONS` and on the command line (`execArgv`), the last
 * occurrence winning and the command line after `NODE_OPTIONS` (node-flags.ts).
 */
export function semiSpaceFlags (execArgv: readonly string[], nodeOptions: string | undefined): SemiSpaceFlags {
  const flags = startupFlags(execArgv, nodeOptions)
  return { min: sizeFlag(flags, 'min-semi-space-size'), max: sizeFlag(flags, 'max-semi-space-size') }
}

/** The process's `--initial-old-space-size` (MiB) from `NODE_OPTIONS` and the command line; null: not set. */
export function initialOldSpaceFlag (execArgv: readonly string[], nodeOptions: string | undefined): number | null {
  return sizeFlag(startupFlags(execArgv, nodeOptions), 'initial-old-space-size')
}

/**
 * How an engine worker's heap starts (engineWorkerHeap below). V8 has no per-isolate
 * option for either (a Worker's resourceLimits set maxima only), so both are process-wide
 * flags set while the worker's isolate is created.
 */
export interface WorkerHeapStart {
  /** The young generation's semi-spaces start at this size (MiB) instead of 1 MiB; V8 caps it at the isolate's maximum. */
  readonly semiSpaceMb: number
  /** The old generation's initial allocation limit (MiB): no mark-compact is started by allocation below it. */
  readonly initialOldMb: number
}

/** V8's largest semi-space on a 64-bit build (its default young generation, 48 MiB, counts three). */
const kDefaultSemiSpaceMb = 16

/**
 * The heap an engine worker starts with: its young generation at its largest size, and
 * an old generation that is not marked below 256 MiB.
 *
 * Why (bench/RESULTS.md, issue 13, branch heap): a worker's first mass activation makes
 * cells and states that all survive. V8 pretenures an allocation site — allocates its
 * objects in the old generation directly — only after a scavenge made with the young
 * generation at its maximum size; grown from 1 MiB one doubling per scavenge, the young
 * generation got there only after each worker had copied twice and promoted 18–25 MB of
 * them (parallel scavenges on V8's helper threads, pauses of 10–30 ms). Started at its
 * largest, the worker's first scavenge can decide, and the thread loop makes that one
 * early, after a few thousand activations (thread/pretenure-nudge.ts). With the new
 * cells then going straight to the old generation, it reaches V8's first limit — set
 * from the few MB a fresh worker holds — within the phase, and an incremental
 * mark-compact of a 30 MB heap ran on the helper threads (62–89 ms of CPU per worker);
 * a larger initial limit leaves 1M agents on 2 workers (~66 MB each) unmarked. 256 MiB,
 * not 128: with 128 the first cycle of a 10M activation came at a 100–107 MB heap, where
 * V8 on busy cores finalized it with the marking still to do (60–85 ms pauses); with 256
 * the longest activation pause of 5 runs at 10M was 31.5 ms. The cost: up to that much
 * garbage per worker before its first mark-compact.
 * `workerYoungGenerationMb` still sets the maximum: the start is capped at a third of it.
 */
export function engineWorkerHeap (workerYoungGenerationMb: number | null): WorkerHeapStart {
  const semiSpaceMb = workerYoungGenerationMb === null ? kDefaultSemiSpaceMb : Math.max(1, Math.floor(workerYoungGenerationMb / 3))
  return { semiSpaceMb, initialOldMb: 256 }
}

let holds = 0
let held: { semi: SemiSpaceFlags, old: number | null, started: boolean } | null = null

/**
 * Clear the process's semi-space flags for the isolate of an engine worker about to be
 * created — or set the ones `start` asks for — and returns the release (idempotent), to
 * call once the worker is online or has exited. Holds nest: the process's values come
 * back when the last one is released; workers starting at the same time get the flags
 * of the last hold taken.
 */
function holdWorkerHeap (start: WorkerHeapStart | null): () => void {
  if (holds++ === 0) held = { semi: semiSpaceFlags(process.execArgv, process.env.NODE_OPTIONS), old: initialOldSpaceFlag(process.execArgv, process.env.NODE_OPTIONS), started: false }
  const flags = held!
  if (start !== null) {
    flags.started = true
    setFlagsFromString(`--min-semi-space-size=${start.semiSpaceMb}`)
    setFlagsFromString(`--initial-old-space-size=${start.initialOldMb}`)
  } else {
    if (flags.semi.min !== null) setFlagsFromString('--min-semi-space-size=0')
    if (flags.old !== null) setFlagsFromString('--initial-old-space-size=0')
  }
  if (flags.semi.max !== null) setFlagsFromString('--max-semi-space-size=0')
  let released = false
  return () => {
    if (released) return
    released = true
    if (--holds > 0) return
    const restore = held!
    held = null
    // what the process's command line says, or V8's "unset"; flags nobody wrote are left as they are
    if (restore.started || restore.semi.min !== null) setFlagsFromString(`--min-semi-space-size=${restore.semi.min ?? 0}`)
    if (restore.started || restore.old !== null) setFlagsFromString(`--initial-old-space-size=${restore.old ?? 0}`)
    if (restore.semi.max !== null) setFlagsFromString(`--max-semi-space-size=${restore.semi.max}`)
  }
}

/**
 * `new Worker(url, options)` with the process's semi-space flags held off until the
 * worker is online (or has exited): its isolate is sized by `options.resourceLimits` or
 * V8's default, and starts as `start` says (engineWorkerHeap; null: V8's default start).
 * Every thread the engine starts for agents, or measures as their baseline, is made here.
 */
export function workerWithOwnYoungGeneration (url: URL, options: WorkerOptions, start: WorkerHeapStart | null = null): Worker {
  const release = holdWorkerHeap(start)
  let worker: Worker
  try {
    worker = new Worker(url, options)
  } catch (err) {
    release()
    throw err
  }
  worker.once('online', release)
  worker.once('exit', release)
  return worker
}
