/**
 * The writer thread of a durable host: one worker thread (not an agent worker) that
 * commits the agent workers' batches, so that the agent workers keep no per-put record
 * of lmdb-js. Those records (lmdb-js's write "resolution", one per queued put, held until
 * its write thread has written the put, ≈ 100 ms behind under load) were 87 % of what
 * survived a worker's scavenge during a fanout, and the workers' longest pauses at 10M
 * agents were 57–110 ms (bench/RESULTS.md: the worker-gc, gcsync and wthread subsections).
 *
 * Each agent worker's LmdbStore (`writeThrough`) hands every commit here as one message:
 * its writes as a commit journal (commit-journal.ts: database, key, value or remove) in
 * one transferred buffer, plus its quota counter records. This thread takes every batch
 * queued at the moment into ONE `transactionSync` of `put`s (inside a write transaction
 * lmdb-js writes each put at once, no record kept) — a group commit: each batch stays
 * atomic, the whole transaction commits or none of it — then acknowledges each batch to
 * its worker, in the order it came. If a group fails, each of its batches is tried again
 * in a transaction of its own, so that one bad batch fails alone.
 *
 * Durability. 'disk' (overlappingSync): the transaction is committed with MDB_NOSYNC,
 * which in lmdb-js's LMDB fork makes the commit flush inline, in this thread, after the
 * write lock is released (mdb.c `mdb_txn_commit`; unless another thread's flush already
 * covered it) — `transactionSync` returns once the transaction is on disk, and only then
 * is it acknowledged; a failed flush fails the call. The flush blocks this thread only:
 * batches arriving meanwhile join the next group. 'os' (noSync): acknowledged at commit;
 * each worker's store flushes in the background as before (its `flush` waits for its
 * acknowledged commits, then syncs the environment) and refuses commits after a failed
 * flush.
 *
 * Messages: parent → { type: 'attach', port } (one port per agent worker) | { type: 'stop' }
 * (commit what is queued, close the ports and the environment, exit).
 * port → { journal: Uint8Array | null, quotas: Array<[key, total]> | null }.
 * this → port: { n, errors: Array<string | null> | null } — the port's next n batches, in
 * order; errors[i] non-null: batch i failed (nothing of it committed).
 *
 * SHOAL_WRITER_GC_LOG=1 (diagnostics, used for bench/RESULTS.md): a line a second on
 * stderr with this thread's GC pauses and its transactions.
 */
import { readFileSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import { open } from 'lmdb'
import type { Database } from 'lmdb'
import { JOURNAL_RECORD_HEADER, JOURNAL_REMOVE, recordValueLength } from '../../native-free-core/storage/commit-journal.ts'
import { RANGE_APPLIED, RANGE_OUTBOX, RANGE_REMINDERS, RANGE_STATES, RANGE_STORAGE } from '../../native-free-core/storage/shard-range.ts'
import { lmdbEnvOptionsFor, lmdbStateDbOptions } from './lmdb-store.ts'
import type { Durability } from './lmdb-store.ts'
import { KeyScratch } from './lmdb-keys.ts'
import { threadGcPauses } from '../observe/gc-pauses.ts'

export interface WriterData {
  readonly path: string
  readonly durability: Durability
}

interface Batch {
  readonly journal: Uint8Array | null
  readonly quotas: ReadonlyArray<readonly [string, number]> | null
}

interface Queued { readonly port: MessagePort, readonly batch: Batch }

const data = workerData as WriterData
const env = open({ path: data.path, ...lmdbEnvOptionsFor(data.durability) })
const overlapping = (env as unknown as { overlappingSync?: boolean }).overlappingSync === true
const binary = { encoding: 'binary', keyEncoding: 'binary' } as const
const dbs: Array<Database<Buffer, Buffer>> = []
dbs[RANGE_STATES] = env.openDB<Buffer, Buffer>(lmdbStateDbOptions)
dbs[RANGE_STORAGE] = env.openDB<Buffer, Buffer>({ name: 'storage', ...binary })
dbs[RANGE_OUTBOX] = env.openDB<Buffer, Buffer>({ name: 'outbox', ...binary })
dbs[RANGE_APPLIED] = env.openDB<Buffer, Buffer>({ name: 'applied', ...binary })
dbs[RANGE_REMINDERS] = env.openDB<Buffer, Buffer>({ name: 'reminders', ...binary })
const quotas = env.openDB<number, string>({ name: 'quotas' })
const keys = new KeyScratch()
// what lmdb-js's putSync uses: non-abortable, synchronous commit; NOSYNC (0x10000) with
// overlappingSync makes LMDB flush inline after the write lock is released
const kTxnFlags = overlapping ? 0x10002 : 2

const ports = new Set<MessagePort>()
let queue: Queued[] = []
let scheduled = false
let stopping = false

// the writer's own GC pauses, for the experiment's figures (SHOAL_WRITER_GC_LOG=1: one line a second)
const gcLog = process.env.SHOAL_WRITER_GC_LOG === '1'
if (gcLog) {
  threadGcPauses.start(null, 0)
  // this thread's CPU (utime + stime, clock ticks of 10 ms) from /proc/thread-self/stat
  const cpuMs = (): number => {
    try {
      const f = readFileSync('/proc/thread-self/stat', 'utf8')
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ')
      return (Number(rest[11]) + Number(rest[12])) * 10
    } catch {
      return 0
    }
  }
  let lastCpu = cpuMs()
  const t = setInterval(() => {
    const cpu = cpuMs()
    const w = threadGcPauses.takeWindow()
    if (w.pauses > 0 || stat.groups > 0) {
      process.stderr.write(`[writer gc] t=${process.uptime().toFixed(1)}s ${w.pauses} pauses, total ${w.totalMs.toFixed(1)} ms, longest ${w.maxMs.toFixed(1)} ms; ` +
        `${stat.groups} txns of ${stat.batches} batches, ${(stat.bytes / 1048576).toFixed(1)} MiB, ${stat.txnMs.toFixed(0)} ms in transactionSync, cpu ${cpu - lastCpu} ms (total ${cpu})\n`)
    }
    stat.groups = stat.batches = stat.bytes = stat.txnMs = 0
    lastCpu = cpu
  }, 1000)
  t.unref()
}

function apply (batch: Batch): void {
  const b = batch.journal
  if (b !== null) {
    // values written from the journal's own ArrayBuffer (lmdb-js's buffers-with-positions
    // mode: the Buffer's `start`/`end`, from the ArrayBuffer's address)
    const values = Buffer.from(b.buffer, 0, b.byteOffset + b.length) as Buffer & { start: number, end: number }
    const base = b.byteOffset
    let at = 0
    while (at < b.length) {
      const db = dbs[b[at]!]!
      const keyLength = (b[at + 2]! << 8) | b[at + 3]!
      const k = at + JOURNAL_RECORD_HEADER
      const end = k + keyLength + recordValueLength(b, at)
      const key = keys.copy(b, k, keyLength)
      if (b[at + 1] === JOURNAL_REMOVE) {
        db.remove(key)
      } else {
        values.start = base + k + keyLength
        values.end = base + end
        db.put(key, values)
      }
      at = end
    }
  }
  const q = batch.quotas
  if (q !== null) for (let i = 0; i < q.length; i++) quotas.put(q[i]![0], q[i]![1])
}

const stat = { groups: 0, batches: 0, bytes: 0, txnMs: 0 }

function commit (group: readonly Queued[]): void {
  const t0 = performance.now()
  stat.groups++
  stat.batches += group.length
  for (let i = 0; i < group.length; i++) stat.bytes += group[i]!.batch.journal?.length ?? 0
  try {
    transact(group)
  } finally {
    stat.txnMs += performance.now() - t0
  }
}

function transact (group: readonly Queued[]): void {
  env.transactionSync(() => {
    for (let i = 0; i < group.length; i++) apply(group[i]!.batch)
  }, kTxnFlags as never)
}

function drain (): void {
  scheduled = false
  const group = queue
  if (group.length === 0) return
  queue = []
  const errors: Array<string | null> = new Array(group.length).fill(null)
  let failed = false
  try {
    commit(group)
  } catch (err) {
    failed = true
    if (group.length === 1) {
      errors[0] = messageOf(err)
    } else {
      // one bad batch must not fail the others: each in a transaction of its own
      for (let i = 0; i < group.length; i++) {
        try {
          commit([group[i]!])
        } catch (e) {
          errors[i] = messageOf(e)
        }
      }
    }
  }
  // one acknowledgement per port: its batches in the order they came
  const acks = new Map<MessagePort, { n: number, errors: Array<string | null> | null }>()
  for (let i = 0; i < group.length; i++) {
    const port = group[i]!.port
    let a = acks.get(port)
    if (a === undefined) acks.set(port, a = { n: 0, errors: failed ? [] : null })
    a.n++
    if (a.errors !== null) a.errors.push(errors[i]!)
  }
  for (const [port, a] of acks) port.postMessage(a)
  if (stopping && queue.length === 0) finish()
}

function schedule (): void {
  if (scheduled) return
  scheduled = true
  setImmediate(drain)
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

let finished = false
function finish (): void {
  if (finished) return
  finished = true
  for (const p of ports) p.close()
  env.close().then(() => parentPort!.close(), () => parentPort!.close())
}

parentPort!.on('message', (m: { type: 'attach', port: MessagePort } | { type: 'stop' }) => {
  if (m.type === 'attach') {
    const port = m.port
    ports.add(port)
    port.on('message', (batch: Batch) => {
      queue.push({ port, batch })
      schedule()
    })
    port.on('close', () => ports.delete(port))
  } else {
    stopping = true
    if (!scheduled && queue.length === 0) finish()
  }
})
