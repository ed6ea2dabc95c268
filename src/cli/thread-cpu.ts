/**
 * CPU time per thread of this process, from `/proc/self/task/<tid>/stat` (Linux; empty
 * elsewhere): which thread a phase's CPU went to — the main thread, each worker, or
 * the rest (V8's platform threads doing parallel and concurrent GC and compilation,
 * libuv's pool, lmdb-js's writer). Clock ticks (10 ms), so only for phases of seconds.
 *
 * A worker learns its own tid from `/proc/thread-self` (bench-agents.ts `probe.tid`).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

const kTickMs = 10

/** This thread's Linux tid, or 0 where /proc is not there. */
export function ownTid (): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop())
  } catch {
    return 0
  }
}

/**
 * `read(tid)` of every thread of the process, by tid, from its /proc/self/task entry:
 * empty without /proc; a thread that ended meanwhile (or lacks the file) is left out.
 */
function perThread (read: (tid: string) => number): Map<number, number> {
  const out = new Map<number, number>()
  let tids: string[]
  try {
    tids = readdirSync('/proc/self/task')
  } catch {
    return out
  }
  for (const tid of tids) {
    try {
      out.set(Number(tid), read(tid))
    } catch {
      // the thread ended meanwhile, or the file is not there
    }
  }
  return out
}

/** CPU time (user + system, ms) of every thread of the process, by tid. */
export function threadCpuMs (): Map<number, number> {
  return perThread((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1')
    // fields after the command name in parentheses (which may hold spaces): utime is the 14th field, stime the 15th
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * kTickMs
  })
}

export interface CpuSplit {
  /** CPU time of the whole process over the phase, ms. */
  readonly totalMs: number
  readonly mainMs: number
  /** One per worker thread that owns agents, in probe order. */
  readonly workersMs: readonly number[]
  /** Every other thread: V8's GC and compiler helpers, libuv, lmdb-js's writer. */
  readonly otherMs: number
  /** The busiest of those, [tid, ms], busiest first (tids in creation order tell V8's platform threads, made at startup, from later ones). */
  readonly others: ReadonlyArray<readonly [number, number]>
}

/** Split the CPU between two `threadCpuMs()` readings by thread. */
export function cpuSplit (before: Map<number, number>, after: Map<number, number>, mainTid: number, workerTids: readonly number[]): CpuSplit | null {
  if (after.size === 0) return null
  const delta = (tid: number): number => (after.get(tid) ?? 0) - (before.get(tid) ?? 0)
  let total = 0
  for (const tid of after.keys()) total += delta(tid)
  const mainMs = delta(mainTid)
  const workersMs = workerTids.map(delta)
  const others = [...after.keys()].filter((t) => t !== mainTid && !workerTids.includes(t)).map((t) => [t, delta(t)] as const)
    .filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]).slice(0, 8)
  return { totalMs: total, mainMs, workersMs, otherMs: total - mainMs - workersMs.reduce((a, b) => a + b, 0), others }
}

/**
 * Run-queue wait per thread (ns), from `/proc/self/task/<tid>/schedstat`: its second
 * field is the time the thread was runnable but waiting for a CPU. With CPU time beside
 * it, this says whether a thread that stood still was descheduled (over-subscription) or
 * busy. Empty where the file is not there (kernels without schedstats, other systems).
 */
export function threadRunQueueNs (): Map<number, number> {
  return perThread((tid) => Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[1]))
}
