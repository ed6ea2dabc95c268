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
 * V8's defaults too.
 */
import { setFlagsFromString } from 'node:v8'
import { Worker } from 'node:worker_threads'
import type { WorkerOptions } from 'node:worker_threads'

/** The semi-space sizes (MiB) a process asked V8 for; null: not set (V8's default). */
export interface SemiSpaceFlags {
  readonly min: number | null
  readonly max: number | null
}

const kFlag = /^--?(min|max)[-_]semi[-_]space[-_]size=(\d+)$/

/**
 * The semi-space flags in `NODE_OPTIONS` and on the command line (`execArgv`), the last
 * occurrence winning and the command line after `NODE_OPTIONS`. V8 takes `-` and `_`
 * alike in a flag's name, and a size only as `--flag=N` (`--flag N` is refused by Node).
 */
export function semiSpaceFlags (execArgv: readonly string[], nodeOptions: string | undefined): SemiSpaceFlags {
  let min: number | null = null
  let max: number | null = null
  const args = [...(nodeOptions ?? '').split(/\s+/), ...execArgv]
  for (const arg of args) {
    const m = kFlag.exec(arg)
    if (m === null) continue
    const mb = Number(m[2])
    // 0 is V8's "unset"
    if (m[1] === 'min') min = mb === 0 ? null : mb
    else max = mb === 0 ? null : mb
  }
  return { min, max }
}

let holds = 0
let held: SemiSpaceFlags | null = null

/**
 * Clear the process's semi-space flags for the isolate of an engine worker about to be
 * created; returns the release (idempotent), to call once the worker is online or has
 * exited. Holds nest: the process's values come back when the last one is released.
 */
function holdWorkerYoungGeneration (): () => void {
  if (holds++ === 0) {
    const flags = held = semiSpaceFlags(process.execArgv, process.env.NODE_OPTIONS)
    if (flags.min !== null) setFlagsFromString('--min-semi-space-size=0')
    if (flags.max !== null) setFlagsFromString('--max-semi-space-size=0')
  }
  let released = false
  return () => {
    if (released) return
    released = true
    if (--holds > 0) return
    const restore = held!
    held = null
    if (restore.min !== null) setFlagsFromString(`--min-semi-space-size=${restore.min}`)
    if (restore.max !== null) setFlagsFromString(`--max-semi-space-size=${restore.max}`)
  }
}

/**
 * `new Worker(url, options)` with the process's semi-space flags held off until the
 * worker is online (or has exited): its isolate is sized by `options.resourceLimits` or
 * V8's default. Every thread the engine starts for agents, or measures as their
 * baseline, is made here.
 */
export function workerWithOwnYoungGeneration (url: URL, options: WorkerOptions): Worker {
  const release = holdWorkerYoungGeneration()
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
