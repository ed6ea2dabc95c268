/**
 * What a durable command's acknowledgement could cost on this disk (issue 13, target 3:
 * command p99 at 50 % of the max rate ≤ raw fsync p99 + 2 ms): lmdb-js configurations and
 * a group-commit write-ahead log, each driven open loop at ONE offered rate — the latency
 * scenario's 50 % command phase offers 8,000–22,000/s on this machine — with latency from
 * each write's intended time (no coordinated omission) in HDR histograms, beside the raw
 * fsync baseline measured the way the latency scenario measures it (fsyncLatency).
 *
 * Each write is one `put` of a counter state (the engine's state codec) under a random
 * bench agent's state key (the store's key bytes), from the main thread, on the open
 * loop's own pacer (src/cli/scenarios/pacer.ts). Every variant gets a fresh environment on
 * the data directory's filesystem, prefilled with `--prefill` random states first (not
 * measured), and `trackMetrics` on (LMDB's transactions, sync time, pages written).
 *
 * Variants (`--variants`, comma-separated; all by default):
 *   lmdb            the store's configuration (lmdbEnvOptions: overlappingSync, fsync on);
 *                   acknowledged when the put has committed and the flush taken at the put
 *                   (its own transaction's) has settled — the store's 'disk' durability
 *   lmdb-commit     the store's configuration, acknowledged when the put's promise settles
 *                   (its commit, without asking for the flush) — durability 'os' before
 *                   branch osdur
 *   os              durability 'os' as the store has it since branch osdur
 *                   (lmdbEnvOptionsFor('os'): noSync), acknowledged when the put's promise
 *                   settles, the environment synced every defaultFlushIntervalMs
 *   no-overlap      overlappingSync off: the commit itself syncs; acknowledged at commit
 *   no-meta-sync    overlappingSync + noMetaSync (NOT power-loss safe: the meta page of an
 *                   acknowledged transaction is not flushed; the reference for what the
 *                   second flush costs)
 *   no-turn-batch   eventTurnBatching off, txnStartThreshold 1 (a transaction may start
 *                   before the event turn ends)
 *   wal             a log alone: each event turn's writes appended as one record (CRC'd)
 *                   to a preallocated file with writeSync, then fdatasync (async, libuv's
 *                   pool) — group commit: one fdatasync in flight, the records appended
 *                   meanwhile go with the next; acknowledged after the fdatasync that
 *                   covers the record
 *   wal+lmdb        the log as above, and the same puts into LMDB as configured now
 *                   (overlapping syncs running back to back beside the log's, on the same
 *                   disk); acknowledged after the log's fdatasync (`latency`) and, as a
 *                   second figure, after the log's fdatasync and LMDB's commit (visible)
 *   wal-inline, wal-inline+lmdb  as wal and wal+lmdb, but the record's fdatasync runs on
 *                   the appending thread at the end of its turn (fdatasyncSync: the thread
 *                   blocks for one flush per turn, no hop to libuv's pool) — what the raw
 *                   fsync baseline itself measures
 *   wal+lmdb-nosync the log, and LMDB opened with noSync (no flush per commit), checkpointed
 *                   every `--checkpoint-ms` (env sync; the log could then be truncated to the
 *                   checkpoint). NOT power-loss safe as such: see bench/RESULTS.md
 *
 * A recovery figure for the log: the records of the wal+lmdb run are read back, checked,
 * and put into a fresh environment (one transaction), timed.
 *
 * Run (under the CPU lock): node dist/bench/commit-latency.bench.js [--rate 15000]
 *   [--ms 2000] [--prefill 100000] [--agents 1000000] [--variants a,b] [--dir DIR]
 */
import { closeSync, fdatasync, fdatasyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 as zlibCrc32 } from 'node:zlib'
import { open } from 'lmdb'
import type { Database, RootDatabase } from 'lmdb'
import { fsyncLatency } from '../src/baselines/raw-baselines.ts'
import { HdrLatency, summarizeUs } from '../src/cli/hdr.ts'
import type { LatencySummary } from '../src/cli/latency.ts'
import { benchId } from '../src/cli/bench-ids.ts'
import { Rng } from '../src/cli/rng.ts'
import { openLoopStart, pace } from '../src/cli/scenarios/pacer.ts'
import { lmdbMetrics } from '../src/cli/scenarios/raw-commit.ts'
import type { LmdbMetrics } from '../src/cli/scenarios/raw-commit.ts'
import { KeyScratch } from '../src/storage/lmdb-keys.ts'
import { defaultFlushIntervalMs } from '../src/storage/durability.ts'
import { lmdbEnvOptions, lmdbEnvOptionsFor, lmdbStateDbOptions } from '../src/storage/lmdb-store.ts'
import { stateCodec } from '../src/thread/codec.ts'

const argv = process.argv
const arg = (name: string, fallback: string): string => {
  const i = argv.indexOf(name)
  return i > 0 ? argv[i + 1]! : fallback
}
const rate = Number(arg('--rate', '15000'))
const ms = Number(arg('--ms', '2000'))
const prefill = Number(arg('--prefill', '100000'))
const agents = Number(arg('--agents', '1000000'))
const checkpointMs = Number(arg('--checkpoint-ms', '100'))
const parent = arg('--dir', tmpdir())
const kAll = ['lmdb', 'lmdb-commit', 'os', 'no-overlap', 'no-meta-sync', 'no-turn-batch', 'wal', 'wal+lmdb', 'wal+lmdb-nosync', 'wal-inline', 'wal-inline+lmdb']
const variants = arg('--variants', kAll.join(',')).split(',')
const kLogBytes = 64 << 20

function metrics (env: RootDatabase | null): LmdbMetrics {
  return env === null ? { txns: 0, timeSync: 0, pagesWritten: 0 } : lmdbMetrics(env)
}

// CRC-32 (IEEE, zlib's), for the log's records: a torn tail is found at recovery by its CRC
function crc32 (b: Uint8Array, from: number, to: number): number {
  return zlibCrc32(b.subarray(from, to))
}

/**
 * A group-commit log: `append` queues a write into the current event turn's record;
 * at the end of the turn the record ([u32 length][u32 crc][f64 seq][n × (u16 klen, key,
 * u16 vlen, value)]) is written at the log's end with writeSync (the page cache); one
 * fdatasync at a time covers every record written before it started, and resolves their
 * waiters.
 */
class GroupLog {
  readonly fd: number
  private offset = 0
  private seq = 0
  private covered = 0
  private flushing = false
  private turn: Array<{ key: Uint8Array, value: Uint8Array }> = []
  private turnWaiters: Array<() => void> = []
  private scheduled = false
  private readonly waiting: Array<{ seq: number, done: Array<() => void> }> = []
  readonly syncs = new HdrLatency()
  records = 0
  bytes = 0

  readonly path: string
  /** fdatasync on the appending thread, in the turn (blocks it ≈ one flush), instead of libuv's pool. */
  readonly inline: boolean

  constructor (path: string, inline: boolean) {
    this.path = path
    this.inline = inline
    this.fd = openSync(path, 'w+')
    // preallocated and zero-filled, then synced once: overwriting written blocks does not
    // change the file's size or extents, so an fdatasync flushes the data only (no
    // filesystem journal commit)
    const zeros = Buffer.alloc(1 << 20)
    for (let at = 0; at < kLogBytes; at += zeros.length) writeSync(this.fd, zeros, 0, zeros.length, at)
    fdatasyncSync(this.fd)
  }

  append (key: Uint8Array, value: Uint8Array): Promise<void> {
    this.turn.push({ key: Buffer.from(key), value })
    const p = new Promise<void>((resolve) => { this.turnWaiters.push(resolve) })
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(() => { this.writeTurn() })
    }
    return p
  }

  private writeTurn (): void {
    this.scheduled = false
    let size = 16
    for (const w of this.turn) size += 4 + w.key.length + w.value.length
    const rec = Buffer.allocUnsafe(size)
    let at = 16
    for (const w of this.turn) {
      rec.writeUInt16LE(w.key.length, at); at += 2
      rec.set(w.key, at); at += w.key.length
      rec.writeUInt16LE(w.value.length, at); at += 2
      rec.set(w.value, at); at += w.value.length
    }
    const seq = ++this.seq
    rec.writeUInt32LE(size, 0)
    rec.writeDoubleLE(seq, 8)
    rec.writeUInt32LE(crc32(rec, 8, size), 4)
    writeSync(this.fd, rec, 0, size, this.offset)
    this.offset += size
    this.records++
    this.bytes += size
    this.waiting.push({ seq, done: this.turnWaiters })
    this.turn = []
    this.turnWaiters = []
    if (this.inline) {
      const t0 = performance.now()
      fdatasyncSync(this.fd)
      this.syncs.recordMs(performance.now() - t0)
      this.covered = seq
      for (const done of this.waiting.shift()!.done) done()
    } else if (!this.flushing) this.flush()
  }

  private flush (): void {
    this.flushing = true
    const upTo = this.seq
    const t0 = performance.now()
    fdatasync(this.fd, (err) => {
      if (err !== null) throw err
      this.syncs.recordMs(performance.now() - t0)
      this.covered = upTo
      while (this.waiting.length !== 0 && this.waiting[0]!.seq <= this.covered) {
        for (const done of this.waiting.shift()!.done) done()
      }
      this.flushing = false
      if (this.seq > this.covered) this.flush()
    })
  }

  close (): void {
    closeSync(this.fd)
  }
}

/** Read the log back: records until the first bad length, CRC or sequence (a torn or stale tail). */
function replay (path: string, put: (key: Buffer, value: Buffer) => void): { records: number, writes: number } {
  const fd = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(kLogBytes)
  const n = readSync(fd, buf, 0, kLogBytes, 0)
  closeSync(fd)
  let at = 0
  let records = 0
  let writes = 0
  for (let seq = 1; at + 16 <= n; seq++) {
    const size = buf.readUInt32LE(at)
    if (size < 16 || at + size > n) break
    if (buf.readDoubleLE(at + 8) !== seq || crc32(buf, at + 8, at + size) !== buf.readUInt32LE(at + 4)) break
    let p = at + 16
    while (p < at + size) {
      const kl = buf.readUInt16LE(p); p += 2
      const key = buf.subarray(p, p + kl); p += kl
      const vl = buf.readUInt16LE(p); p += 2
      put(key, buf.subarray(p, p + vl)); p += vl
      writes++
    }
    at += size
    records++
  }
  return { records, writes }
}

interface Row {
  readonly variant: string
  readonly latency: LatencySummary
  readonly second: LatencySummary | null
  readonly sendLagP99Us: number
  readonly completed: number
  readonly achievedPerSec: number
  readonly txns: number
  readonly pagesPerTxn: number
  readonly syncBusyMs: number
  readonly logSyncs: LatencySummary | null
  readonly logRecords: number
  readonly checkpoints: number
}

const rng = new Rng(1)
const keys = new KeyScratch()
const value = Buffer.from(stateCodec.encode({ n: 1 }))

function envOptions (variant: string): Record<string, unknown> {
  const base = { ...lmdbEnvOptions, trackMetrics: true }
  switch (variant) {
    case 'no-overlap': return { ...base, overlappingSync: false }
    case 'no-meta-sync': return { ...base, noMetaSync: true }
    case 'no-turn-batch': return { ...base, eventTurnBatching: false, txnStartThreshold: 1 }
    case 'wal+lmdb-nosync': return { ...base, noSync: true }
    case 'os': return { ...lmdbEnvOptionsFor('os'), trackMetrics: true }
    default: return base
  }
}

async function run (variant: string): Promise<Row> {
  const dir = mkdtempSync(join(parent, 'shoal-commit-latency-'))
  const usesLmdb = variant !== 'wal' && variant !== 'wal-inline'
  const usesLog = variant.startsWith('wal')
  let env: RootDatabase | null = null
  let db: Database<Buffer, Buffer> | null = null
  let log: GroupLog | null = null
  try {
    if (usesLmdb) {
      env = open({ path: join(dir, 'db'), ...envOptions(variant) } as never) as RootDatabase
      db = env.openDB<Buffer, Buffer>(lmdbStateDbOptions)
      // prefill: a tree of the engine's keys, committed and flushed before the clock starts
      for (let i = 0; i < prefill; i++) void db.put(keys.state(benchId(rng.below(agents))), value)
      await db.put(keys.state(benchId(0)), value)
      if (variant === 'wal+lmdb-nosync' || variant === 'os') await new Promise<void>((resolve) => { (env as unknown as { sync (cb: () => void): void }).sync(resolve) })
      else await env.flushed
    }
    if (usesLog) log = new GroupLog(join(dir, 'log'), variant.startsWith('wal-inline'))
    const latency = new HdrLatency()
    const second = new HdrLatency()
    const lag = new HdrLatency()
    const total = Math.max(1, Math.round(rate * ms / 1000))
    let completed = 0
    let lastReply = 0
    let allDone!: () => void
    const finished = new Promise<void>((resolve) => { allDone = resolve })
    let checkpoints = 0
    let checkpointing = false
    let timer: ReturnType<typeof setInterval> | null = null
    if (variant === 'wal+lmdb-nosync' || variant === 'os') {
      timer = setInterval(() => {
        if (checkpointing) return
        checkpointing = true
        ;(env as unknown as { sync (cb: () => void): void }).sync(() => { checkpointing = false; checkpoints++ })
      }, variant === 'os' ? defaultFlushIntervalMs : checkpointMs)
    }
    const m0 = metrics(env)
    const start = openLoopStart()
    await pace(start, 1000 / rate, total, (_k, at, now) => {
      lag.recordMs(now - at)
      const key = keys.state(benchId(rng.below(agents)))
      let acked: Promise<unknown>
      let visible: Promise<unknown> | null = null
      if (variant === 'wal' || variant === 'wal-inline') {
        acked = log!.append(key, value)
      } else if (usesLog) {
        visible = db!.put(key, value)
        acked = log!.append(key, value)
      } else {
        const written = db!.put(key, value)
        if (variant === 'no-overlap' || variant === 'lmdb-commit' || variant === 'os') acked = written
        else {
          const flushed = new Promise<void>((resolve, reject) => { env!.flushed.then(() => resolve(), reject) })
          acked = Promise.all([written, flushed])
        }
      }
      acked.then(() => {
        latency.recordMs(performance.now() - at)
        const done = (): void => {
          lastReply = performance.now()
          if (++completed === total) allDone()
        }
        if (visible === null) done()
        else {
          visible.then(() => {
            second.recordMs(performance.now() - at)
            done()
          }, done)
        }
      }, (err) => { throw err })
    })
    await finished
    if (timer !== null) clearInterval(timer)
    const m1 = metrics(env)
    const txns = m1.txns - m0.txns
    return {
      variant,
      latency: latency.summary(),
      second: orNull(second),
      sendLagP99Us: lag.summary().p99Us,
      completed,
      achievedPerSec: Math.round(completed / ((lastReply - start) / 1000)),
      txns,
      pagesPerTxn: (m1.pagesWritten - m0.pagesWritten) / Math.max(1, txns),
      syncBusyMs: (m1.timeSync - m0.timeSync) * 1000,
      logSyncs: log === null ? null : log.syncs.summary(),
      logRecords: log === null ? 0 : log.records,
      checkpoints
    }
  } finally {
    log?.close()
    if (env !== null) await env.close()
    if (variant === 'wal+lmdb' && log !== null) recovery(log.path, dir)
    rmSync(dir, { recursive: true, force: true })
  }
}

function orNull (h: HdrLatency): LatencySummary | null {
  return h.count === 0 ? null : h.summary()
}

function recovery (path: string, dir: string): void {
  const env = open({ path: join(dir, 'recovered'), ...lmdbEnvOptions })
  const db = env.openDB<Buffer, Buffer>(lmdbStateDbOptions)
  const t0 = performance.now()
  let r = { records: 0, writes: 0 }
  env.transactionSync(() => { r = replay(path, (k, v) => { db.putSync(k, v) }) })
  const t1 = performance.now()
  console.log(`recovery: ${r.records} log records, ${r.writes} writes replayed and committed (synced) in ${(t1 - t0).toFixed(1)} ms`)
  void env.close()
}

const f = (us: number): string => (us / 1000).toFixed(2)
const sum = (l: LatencySummary): string => `${f(l.p50Us)} / ${f(l.p99Us)} / ${f(l.p999Us)} / ${f(l.maxUs)}`

console.log(`commit latency at ${rate}/s offered, ${ms} ms per variant, prefill ${prefill}, dir ${parent}`)
const fsyncBefore = summarizeUs(fsyncLatency(parent, 400))
console.log(`raw fsync (4 KiB + fdatasync, closed loop) before: p50 ${f(fsyncBefore.p50Us)} ms, p99 ${f(fsyncBefore.p99Us)} ms over ${fsyncBefore.count}`)
console.log('variant | ack p50 / p99 / p99.9 / max (ms) | +LMDB commit p50 / p99 / p99.9 / max | achieved/s | sender lag p99 | LMDB txns | pages/txn | LMDB sync busy ms | log records | log fdatasync p50 / p99 / p99.9 / max | checkpoints')
for (const v of variants) {
  if (!kAll.includes(v)) throw new Error(`unknown variant ${v}`)
  const r = await run(v)
  console.log(`${r.variant} | ${sum(r.latency)} | ${r.second === null ? '–' : sum(r.second)} | ${r.achievedPerSec} | ${f(r.sendLagP99Us)} | ${r.txns} | ${r.pagesPerTxn.toFixed(1)} | ${r.syncBusyMs.toFixed(0)} | ${r.logRecords} | ${r.logSyncs === null ? '–' : sum(r.logSyncs)} | ${r.checkpoints}`)
}
const fsyncAfter = summarizeUs(fsyncLatency(parent, 400))
console.log(`raw fsync after: p50 ${f(fsyncAfter.p50Us)} ms, p99 ${f(fsyncAfter.p99Us)} ms over ${fsyncAfter.count}`)
