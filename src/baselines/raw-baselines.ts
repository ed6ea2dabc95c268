/**
 * Raw baselines, measured in the same run as the engine so that every engine figure
 * can be printed as a ratio on a noisy, shared machine (docs/architecture.md §2, §10):
 *
 * - `ringOneWay`      — frames of a fixed size through one SAB ring, main → worker
 * - `postMessageOneWay` — the same message as an object, one `postMessage` each
 * - `msgpackRingDispatch` — the engine's job without the engine: msgpackr-packed
 *   envelopes `[kind, id, method, payload]` through a ring, unpacked in a worker and
 *   dispatched to a Map of agents
 * - `ringPingPong`    — round trips main → worker → main, both parking on doorbells
 *   (`waitAsync`, as the engine does) or both spinning
 * - `lmdbPuts`        — lmdb-js `put` in a loop for a while, then await the last put
 *   and the flush to disk (fsync on, lmdb-js defaults): what a group commit can reach
 * - `fsyncLatency`    — one 4 KiB write + `fdatasync` at a time: the floor of a durable
 *   commit's latency on this disk (a command's reply waits for at least one)
 *
 * Thread layout: main thread + one worker. On a 2-core machine that is one core each.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { open } from 'lmdb'
import { Packr } from 'msgpackr'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingConsumer, RingProducer, createRing, forEachFrame } from '../../native-free-core/ring/ring-queue.ts'
import { workerWithOwnYoungGeneration } from '../host/worker-young-generation.ts'
import type { BaselineWorkerData } from './baseline-worker.ts'

const workerUrl = new URL('./baseline-worker.js', import.meta.url)

interface Started { readonly worker: Worker, readonly done: Promise<Record<string, number>> }

async function startWorker (data: BaselineWorkerData): Promise<Started> {
  // sized as the engine's workers are (V8's default young generation), whatever
  // semi-space flags the process runs with: the baseline is the same thread's job
  const worker = workerWithOwnYoungGeneration(workerUrl, { workerData: data })
  let ready!: () => void
  const readyP = new Promise<void>((resolve) => { ready = resolve })
  const done = new Promise<Record<string, number>>((resolve, reject) => {
    worker.on('message', (m: { ready?: boolean, done?: boolean }) => {
      if (m.ready === true) ready()
      if (m.done === true) resolve(m as Record<string, number>)
    })
    worker.once('error', reject)
  })
  await readyP
  return { worker, done }
}

/** Write frames while the ring has room; park on our own doorbell when it is full. */
async function produce (producer: RingProducer, own: Doorbell, count: number, write: (i: number) => void): Promise<void> {
  for (let i = 0; i < count; i++) {
    write(i)
    if (producer.overflowing) {
      // ring full: let the consumer drain (it rings us), instead of growing overflow without bound
      while (producer.publish()) {
        const seq = own.announceSleep()
        if (producer.drainable()) { own.cancelSleep(); continue }
        const w = own.wait(seq)
        if (w !== null) await w
        own.cancelSleep()
      }
    }
  }
  while (producer.publish()) await new Promise((resolve) => setImmediate(resolve))
}

export interface Rate {
  readonly messages: number
  readonly seconds: number
  readonly perSecond: number
  /** CPU time of the whole process per message, µs (every thread: lmdb-js's writer included), where measured. */
  readonly cpuUsPerMessage?: number
}

function rate (messages: number, ms: number): Rate {
  return { messages, seconds: ms / 1000, perSecond: messages / (ms / 1000) }
}

export async function ringOneWay (messages: number, frameBytes = 48, ringBytes = 4 << 20): Promise<Rate> {
  const ring = createRing(ringBytes)
  const bell = Doorbell.create()
  const own = Doorbell.create()
  const w = await startWorker({ mode: 'ring-count', ring, bell: bell.words.buffer as SharedArrayBuffer, peerBell: own.words.buffer as SharedArrayBuffer, expect: messages })
  const producer = new RingProducer(ring, bell)
  const payload = new Uint8Array(frameBytes).fill(7)
  const t0 = performance.now()
  await produce(producer, own, messages, () => {
    const o = producer.begin(frameBytes)
    producer.target.u8.set(payload, o)
    producer.end(frameBytes)
  })
  await w.done
  const ms = performance.now() - t0
  await w.worker.terminate()
  return rate(messages, ms)
}

export async function postMessageOneWay (messages: number): Promise<Rate> {
  const w = await startWorker({ mode: 'post-count', expect: messages })
  const t0 = performance.now()
  for (let i = 0; i < messages; i++) w.worker.postMessage({ to: ['default', 'counter', `k${i % 10_000}`], m: 'add', p: 1 })
  await w.done
  const ms = performance.now() - t0
  await w.worker.terminate()
  return rate(messages, ms)
}

/**
 * `pick(i, n)` chooses the agent (< n) of the i-th message: in turn by default; the CLI
 * passes a seeded random pick, the spread of its fanout scenario (cache misses included).
 */
export async function msgpackRingDispatch (messages: number, agents: number, ringBytes = 4 << 20,
  pick: (i: number, n: number) => number = (i, n) => i % n): Promise<Rate> {
  const ring = createRing(ringBytes)
  const bell = Doorbell.create()
  const own = Doorbell.create()
  const w = await startWorker({ mode: 'msgpack-dispatch', ring, bell: bell.words.buffer as SharedArrayBuffer, peerBell: own.words.buffer as SharedArrayBuffer, expect: messages, agents })
  const ids = Array.from({ length: Math.min(agents, messages) }, (_, i) => `default\u001fcounter\u001fk${i}`)
  const packr = new Packr({ useRecords: false })
  const producer = new RingProducer(ring, bell)
  const t0 = performance.now()
  await produce(producer, own, messages, (i) => {
    const bytes = packr.pack([1, ids[pick(i, ids.length)]!, 'add', 1])
    const o = producer.begin(bytes.length)
    producer.target.u8.set(bytes, o)
    producer.end(bytes.length)
  })
  await w.done
  const ms = performance.now() - t0
  await w.worker.terminate()
  return rate(messages, ms)
}

export interface Latency { readonly rounds: number, readonly p50us: number, readonly p99us: number, readonly p999us: number }

export function latencyOf (samplesMs: number[]): { p50us: number, p99us: number, p999us: number } {
  const s = samplesMs.slice().sort((a, b) => a - b)
  const at = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 1000
  return { p50us: at(0.5), p99us: at(0.99), p999us: at(0.999) }
}

export async function ringPingPong (rounds: number, spin: boolean): Promise<Latency> {
  const there = createRing(1 << 16)
  const back = createRing(1 << 16)
  const workerBell = Doorbell.create()
  const own = Doorbell.create()
  const w = await startWorker({ mode: 'echo', ring: there, back, bell: workerBell.words.buffer as SharedArrayBuffer, peerBell: own.words.buffer as SharedArrayBuffer, rounds, spin })
  const producer = new RingProducer(there, workerBell)
  const consumer = new RingConsumer(back, workerBell)
  const dst = new Uint8Array(consumer.capacity)
  const dst32 = new Int32Array(dst.buffer)
  const samples: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    const o = producer.begin(8)
    producer.target.i32[o >> 2] = r
    producer.end(8)
    producer.publish()
    let got = 0
    while ((got = consumer.copyOut(dst, dst.length)) === 0) {
      if (spin) continue
      const seq = own.announceSleep()
      if (consumer.hasData()) { own.cancelSleep(); continue }
      const wait = own.wait(seq)
      if (wait !== null) await wait
      own.cancelSleep()
    }
    forEachFrame(dst32, got, (at) => { if (dst32[at >> 2] !== r) throw new Error('ping-pong out of order') })
    samples.push(performance.now() - t0)
  }
  await w.done
  await w.worker.terminate()
  return { rounds, ...latencyOf(samples.slice(Math.floor(rounds / 10))) }
}

/**
 * Batched LMDB puts, as the engine's durable store does them: `put` in a loop for
 * `ms`, yielding between chunks so lmdb-js' write thread commits what is queued, then
 * await the last put and `flushed` (the fsync). Values of `value` bytes (or those
 * bytes) under the keys `key(i)` (strings, or Buffers stored as they are); a fresh
 * environment in a temp dir under `parentDir`, removed afterwards.
 */
export async function lmdbPuts (ms: number, key: (i: number) => string | Buffer, value: number | Uint8Array, parentDir = tmpdir()): Promise<Rate> {
  const dir = mkdtempSync(join(parentDir, 'shoal-lmdb-baseline-'))
  try {
    // Buffer keys are stored as they are (the engine's binary keys); strings in lmdb-js's ordered-binary
    const binaryKeys = typeof key(0) !== 'string'
    const db = open<Buffer, string | Buffer>({ path: dir, encoding: 'binary', compression: false, ...(binaryKeys ? { keyEncoding: 'binary' } : {}) })
    const bytes = typeof value === 'number' ? Buffer.alloc(value, 7) : Buffer.from(value)
    let puts = 0
    let last: Promise<boolean> = Promise.resolve(true)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const deadline = t0 + ms
    while (performance.now() < deadline) {
      for (let j = 0; j < 4096; j++) last = db.put(key(puts + j), bytes)
      puts += 4096
      await new Promise((resolve) => setImmediate(resolve))
    }
    await last
    await db.flushed
    const elapsed = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    await db.close()
    return { ...rate(puts, elapsed), cpuUsPerMessage: (cpu.user + cpu.system) / puts }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Latency of the disk's sync: write 4 KiB and `fdatasync` (what LMDB calls to flush a
 * commit on Linux), one at a time, for `ms` or `maxOps`, in a scratch file under `dir`
 * (put it on the data directory's filesystem). Each op's time in microseconds. Blocks
 * the calling thread meanwhile: run it while nothing else should be measured.
 */
export function fsyncLatency (dir: string, ms: number, maxOps = 2000): number[] {
  const scratch = mkdtempSync(join(dir, 'shoal-fsync-'))
  const fd = openSync(join(scratch, 'sync'), 'w')
  const page = Buffer.alloc(4096, 7)
  const samples: number[] = []
  try {
    const deadline = performance.now() + ms
    for (let i = 0; i < maxOps && performance.now() < deadline; i++) {
      const t0 = performance.now()
      writeSync(fd, page, 0, page.length, (i % 64) * page.length)
      fdatasyncSync(fd)
      samples.push((performance.now() - t0) * 1000)
    }
  } finally {
    closeSync(fd)
    rmSync(scratch, { recursive: true, force: true })
  }
  return samples
}
