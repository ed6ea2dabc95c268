/**
 * The latency scenario's second baseline for commands: lmdb-js alone, open loop, at the
 * rate the engine's 50% command phase was offered — what the engine adds over its
 * storage library at the same load (issue 13; the fsync baseline says what the disk
 * costs, this one what an LMDB commit with its flush costs at that rate).
 *
 * A fresh environment in a temp directory on the data directory's filesystem, opened
 * with the durable store's own options (`lmdbEnvOptions`, `lmdbStateDbOptions`: the
 * engine's `open`, lmdb-js's defaults besides — overlappingSync, fsync on), written from
 * the main thread while the host stands idle. Write i is *intended* at start + i / rate,
 * on the same schedule as the engine's open loop (the same pacer, pacer.ts); each is one
 * `put` of a counter state under a uniformly random bench agent's state key (the store's
 * key bytes, lmdb-keys.ts), and its latency runs from the intended time until the put
 * has committed AND its transaction is flushed — as durable as a command's reply
 * (durability 'disk'). The flush is taken as the write is queued
 * (`env.flushed` then names the newest transaction, the one holding this write), so
 * each write waits for its own transaction's flush, not a later one's.
 *
 * The environment starts empty: the tree is shallower than the engine's after a full
 * run (1M states), as it is in a `--scenario latency` run (the states its own commands
 * wrote). The environment also has `trackMetrics` on — LMDB's own counters of its
 * transactions, sync time and pages written (a clock read per transaction, nothing else).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { open } from 'lmdb'
import { HdrLatency } from '../hdr.ts'
import { KeyScratch } from '../../storage/lmdb-keys.ts'
import { lmdbEnvOptions, lmdbStateDbOptions } from '../../storage/lmdb-store.ts'
import { ownTid, threadCpuMs, threadRunQueueNs } from '../thread-cpu.ts'
import { perSec } from './context.ts'
import { openLoopStart, pace } from './pacer.ts'
import type { OpenLoopFigures } from './pacer.ts'

/** The raw phase; `share` is the command phase's it stands beside, `latency` runs from a write's intended time until committed and flushed. */
export interface RawCommitResult extends OpenLoopFigures {
  /** LMDB transactions the writes went into, writes per transaction, time in LMDB's syncs (ms; one at a time), pages written. */
  readonly transactions: number
  readonly writesPerTransaction: number
  readonly syncMs: number
  readonly pagesWritten: number
  /** The main thread (the generator and lmdb-js's JS side) and every other thread but `skipTids` (lmdb-js's write thread, V8's helpers); null without /proc. */
  readonly threads: { readonly mainCpuMs: number, readonly otherCpuMs: number, readonly otherRunQueueMs: number } | null
}

export interface RawCommitOptions {
  /** Parent directory of the environment (the data directory's filesystem). */
  readonly dir: string
  readonly share: number
  readonly rate: number
  readonly ms: number
  /** The id of the agent whose state the next write is (the store keys it by shard and id). */
  readonly id: () => string
  readonly value: Uint8Array
  /** Threads not to count as "other" (the host's workers, idle meanwhile). */
  readonly skipTids: readonly number[]
}

export interface LmdbMetrics { readonly txns: number, readonly timeSync: number, readonly pagesWritten: number }

/** LMDB's counters of an environment opened with `trackMetrics` (lmdb-js's `getStats`; not in its types). */
export function lmdbMetrics (env: unknown): LmdbMetrics {
  const s = (env as { getStats (): Partial<LmdbMetrics> }).getStats()
  return { txns: s.txns ?? 0, timeSync: s.timeSync ?? 0, pagesWritten: s.pagesWritten ?? 0 }
}

export async function rawCommitLoop (o: RawCommitOptions): Promise<RawCommitResult> {
  const dir = mkdtempSync(join(o.dir, 'shoal-raw-commit-'))
  // trackMetrics: LMDB's own counters (transactions, sync time, pages written); nothing else changes
  const env = open({ path: dir, ...lmdbEnvOptions, ...{ trackMetrics: true } as object }) // not in lmdb-js's option types
  try {
    const db = env.openDB<Buffer, Buffer>(lmdbStateDbOptions)
    const keys = new KeyScratch()
    const value = Buffer.from(o.value)
    const latency = new HdrLatency()
    const lag = new HdrLatency()
    const total = Math.max(1, Math.round(o.rate * o.ms / 1000))
    const interval = 1000 / o.rate
    let completed = 0
    let errors = 0
    let lastReply = 0
    let allDone!: () => void
    const finished = new Promise<void>((resolve) => { allDone = resolve })
    const settle = (ok: boolean): void => {
      lastReply = performance.now()
      if (ok) completed++
      else errors++
      if (completed + errors === total) allDone()
    }
    const m0 = lmdbMetrics(env)
    const cpu0 = threadCpuMs()
    const rq0 = threadRunQueueNs()
    const start = openLoopStart()
    await pace(start, interval, total, (_k, at, now) => {
      lag.recordMs(now - at)
      const written = db.put(keys.state(o.id()), value)
      // the flush of the newest transaction, taken now: the one this write is in
      const flushed = new Promise<void>((resolve, reject) => { env.flushed.then(() => resolve(), reject) })
      Promise.all([written, flushed]).then(() => {
        latency.recordMs(performance.now() - at)
        settle(true)
      }, () => settle(false))
    })
    await finished
    const m1 = lmdbMetrics(env)
    const metrics = { txns: m1.txns - m0.txns, timeSync: m1.timeSync - m0.timeSync, pagesWritten: m1.pagesWritten - m0.pagesWritten }
    const cpu1 = threadCpuMs()
    const rq1 = threadRunQueueNs()
    let threads: RawCommitResult['threads'] = null
    if (cpu1.size !== 0) {
      const main = ownTid()
      const skip = new Set([main, ...o.skipTids])
      let otherCpuMs = 0
      let otherRq = 0
      for (const [t, ms] of cpu1) {
        if (skip.has(t)) continue
        otherCpuMs += ms - (cpu0.get(t) ?? 0)
        otherRq += (rq1.get(t) ?? 0) - (rq0.get(t) ?? 0)
      }
      threads = { mainCpuMs: (cpu1.get(main) ?? 0) - (cpu0.get(main) ?? 0), otherCpuMs, otherRunQueueMs: otherRq / 1e6 }
    }
    return {
      share: o.share,
      offeredPerSec: o.rate,
      durationMs: o.ms,
      sent: total,
      completed,
      errors,
      achievedPerSec: perSec(completed, lastReply - start),
      latency: latency.summary(),
      sendLag: lag.summary(),
      transactions: metrics.txns,
      writesPerTransaction: total / Math.max(1, metrics.txns),
      syncMs: metrics.timeSync * 1000,
      pagesWritten: metrics.pagesWritten,
      threads
    }
  } finally {
    await env.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
