/**
 * Raw baselines, measured in the same run as the engine so that every engine figure
 * is printed beside the building block it is held against (DESIGN §8), as a ratio:
 *
 *   ring           msgpackr pack → SAB ring → copy out → unpack → Map dispatch, main →
 *                  one worker, one-way messages/s (the engine's cast rate is held to
 *                  ≥ 50% of this). Same ids, same random spread as the fanout scenario,
 *                  over min(agents, 1,000,000) entries prefilled in the worker's Map.
 *   ring RTT       one frame there, one back, each side parking on its doorbell with
 *                  Atomics.waitAsync as the engine does; sequential, latency per trip
 *   postMessage    one-way messages/s to a worker doing the same Map dispatch, and RTT
 *   LMDB           lmdb-js `put` in a loop (values the size of an encoded counter
 *                  state, under the engine's id strings), await the last put and the
 *                  flush to disk (fsync on, lmdb-js defaults), puts/s
 *
 * Each baseline runs for `ms` (about a second by default) on its own fresh worker and
 * with no host running, so they compete with nothing but each other's leftovers.
 * Flow control: the ring producer stops when its ring overflows and parks until the
 * consumer frees space (the ring's own kProducerWaiting protocol); postMessage keeps
 * two acknowledged batches in flight; neither lets a queue grow without bound.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { open } from 'lmdb'
import { Packr } from 'msgpackr'
import { Doorbell } from '../../native-free-core/doorbell.ts'
import { RingConsumer, RingProducer, createRing, forEachFrame } from '../../native-free-core/ring-queue.ts'
import { Unpackr } from 'msgpackr'
import { benchId } from './bench-ids.ts'
import type { BaselineWorkerData, BaselineWorkerMessage } from './baseline-worker.ts'
import { summarizeUs } from './latency.ts'
import type { LatencySummary } from './latency.ts'
import { Rng } from './rng.ts'

const workerUrl = new URL('./baseline-worker.js', import.meta.url)
const kRingBytes = 4 * 1024 * 1024
/** Largest Map the ring/postMessage consumers prefill (memory and setup time stay bounded at 10M agents). */
export const kMaxBaselineKeys = 1_000_000
const kRoundTrips = 2000
const kWarmupTrips = 200

export interface ThroughputBaseline {
  readonly messages: number
  readonly elapsedMs: number
  readonly msgsPerSec: number
  /** Distinct ids the messages were spread over. */
  readonly keys: number
}

export interface LmdbBaseline {
  readonly puts: number
  readonly elapsedMs: number
  readonly putsPerSec: number
  readonly valueBytes: number
  /** Waited for the flush to disk, not only the commit. */
  readonly fsync: true
}

export interface Baselines {
  readonly ring: ThroughputBaseline
  readonly ringRoundTrip: LatencySummary
  readonly postMessage: ThroughputBaseline
  readonly postMessageRoundTrip: LatencySummary
  readonly lmdb: LmdbBaseline
}

export interface BaselineOptions {
  /** Ids are spread over this many agents (capped at kMaxBaselineKeys). */
  readonly agents: number
  /** Time per throughput baseline. */
  readonly ms: number
  readonly seed: number
  /** Value size of an LMDB put: the engine's encoded state size. */
  readonly valueBytes: number
  /** Called as each baseline starts, for progress display. */
  readonly onPhase?: (name: string) => void
}

export async function measureBaselines (o: BaselineOptions): Promise<Baselines> {
  const keys = Math.max(1, Math.min(o.agents, kMaxBaselineKeys))
  o.onPhase?.('ring')
  const ring = await ringThroughput(keys, o.ms, o.seed)
  o.onPhase?.('ring round trip')
  const ringRoundTrip = await ringRtt()
  o.onPhase?.('postMessage')
  const [postMessage, postMessageRoundTrip] = await postMessageBaseline(keys, o.ms, o.seed)
  o.onPhase?.('lmdb')
  const lmdb = await lmdbPuts(keys, o.ms, o.seed, o.valueBytes)
  return { ring, ringRoundTrip, postMessage, postMessageRoundTrip, lmdb }
}

function spawn (data: BaselineWorkerData): Promise<Worker> {
  const worker = new Worker(workerUrl, { workerData: data })
  return new Promise((resolve, reject) => {
    worker.once('error', reject)
    worker.once('message', (m: BaselineWorkerMessage) => {
      if (m.type === 'ready') resolve(worker)
      else reject(new Error(`baseline worker sent ${m.type} before ready`))
    })
  })
}

function next<T extends BaselineWorkerMessage['type']> (worker: Worker, type: T): Promise<Extract<BaselineWorkerMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: BaselineWorkerMessage): void => {
      if (m.type !== type) return
      worker.off('message', onMessage)
      worker.off('error', reject)
      resolve(m as Extract<BaselineWorkerMessage, { type: T }>)
    }
    worker.on('message', onMessage)
    worker.once('error', reject)
  })
}

async function ringThroughput (keys: number, ms: number, seed: number): Promise<ThroughputBaseline> {
  const sab = createRing(kRingBytes)
  const workerBell = Doorbell.create()
  const mainBell = Doorbell.create()
  const worker = await spawn({ mode: 'ring', ring: sab, bell: workerBell.words.buffer as SharedArrayBuffer, producerBell: mainBell.words.buffer as SharedArrayBuffer, keys })
  try {
    const producer = new RingProducer(sab, workerBell, (b, o, l) => Buffer.from(b as ArrayBuffer, o, l))
    const packr = new Packr({ useRecords: false, moreTypes: true })
    const rng = new Rng(seed)
    const done = next(worker, 'done')
    let sent = 0
    const start = performance.now()
    const deadline = start + ms
    while (performance.now() < deadline) {
      for (let j = 0; j < 1024; j++) {
        const bytes = packr.pack([benchId(rng.below(keys)), 'add', 1])
        const at = producer.begin(bytes.length)
        producer.target.u8.set(bytes, at)
        producer.end(bytes.length)
      }
      sent += 1024
      // full ring: stop producing until the consumer frees space and rings us
      while (producer.publish()) {
        const seq = mainBell.announceSleep()
        if (producer.drainable()) { mainBell.cancelSleep(); continue }
        const waiting = mainBell.wait(seq)
        if (waiting !== null) await waiting
        mainBell.cancelSleep()
      }
    }
    producer.begin(0)
    producer.end(0) // end marker
    while (producer.publish()) await new Promise((resolve) => setImmediate(resolve))
    const { count } = await done
    const elapsedMs = performance.now() - start
    if (count !== sent) throw new Error(`ring baseline lost messages: sent ${sent}, consumed ${count}`)
    return { messages: count, elapsedMs, msgsPerSec: count / (elapsedMs / 1000), keys }
  } finally {
    await worker.terminate()
  }
}

async function ringRtt (): Promise<LatencySummary> {
  const there = createRing(64 * 1024)
  const back = createRing(64 * 1024)
  const workerBell = Doorbell.create()
  const mainBell = Doorbell.create()
  const worker = await spawn({
    mode: 'ring-echo',
    ring: there,
    back,
    bell: workerBell.words.buffer as SharedArrayBuffer,
    mainBell: mainBell.words.buffer as SharedArrayBuffer
  })
  try {
    const producer = new RingProducer(there, workerBell, (b, o, l) => Buffer.from(b as ArrayBuffer, o, l))
    const consumer = new RingConsumer(back, workerBell)
    const scratch = Buffer.alloc(back.byteLength)
    const i32 = new Int32Array(scratch.buffer, scratch.byteOffset, scratch.length >> 2)
    const packr = new Packr({ useRecords: false, moreTypes: true })
    const unpackr = new Unpackr({ useRecords: false, moreTypes: true })
    const request = packr.pack([benchId(0), 'get', null])
    const samples: number[] = []
    let reply: unknown
    for (let i = 0; i < kWarmupTrips + kRoundTrips; i++) {
      const t0 = performance.now()
      const at = producer.begin(request.length)
      producer.target.u8.set(request, at)
      producer.end(request.length)
      producer.publish()
      for (;;) {
        const bytes = consumer.copyOut(scratch, scratch.length)
        if (bytes !== 0) {
          forEachFrame(i32, bytes, (o, len) => { reply = unpackr.unpack(scratch, { start: o, end: o + len }) })
          break
        }
        const seq = mainBell.announceSleep()
        if (consumer.hasData()) { mainBell.cancelSleep(); continue }
        const waiting = mainBell.wait(seq)
        if (waiting !== null) await waiting
        mainBell.cancelSleep()
      }
      if (i >= kWarmupTrips) samples.push((performance.now() - t0) * 1000)
    }
    if (reply !== 0) throw new Error(`ring echo replied ${String(reply)}`)
    producer.begin(0)
    producer.end(0)
    producer.publish()
    return summarizeUs(samples)
  } finally {
    await worker.terminate()
  }
}

async function postMessageBaseline (keys: number, ms: number, seed: number): Promise<[ThroughputBaseline, LatencySummary]> {
  const worker = await spawn({ mode: 'post', keys })
  try {
    const rng = new Rng(seed)
    const batch = 4096
    const acks: Array<Promise<unknown>> = []
    let sent = 0
    const start = performance.now()
    const deadline = start + ms
    while (performance.now() < deadline) {
      for (let j = 0; j < batch; j++) worker.postMessage([benchId(rng.below(keys)), 'add', 1])
      sent += batch
      acks.push(next(worker, 'ack'))
      worker.postMessage('sync')
      if (acks.length > 2) await acks.shift()
    }
    const done = next(worker, 'done')
    worker.postMessage('end')
    const { count } = await done
    const elapsedMs = performance.now() - start
    if (count !== sent) throw new Error(`postMessage baseline lost messages: sent ${sent}, consumed ${count}`)
    await Promise.all(acks)

    const samples: number[] = []
    for (let i = 0; i < kWarmupTrips + kRoundTrips; i++) {
      const t0 = performance.now()
      const reply = new Promise((resolve) => worker.once('message', resolve))
      worker.postMessage([benchId(0), 'get', null])
      await reply
      if (i >= kWarmupTrips) samples.push((performance.now() - t0) * 1000)
    }
    return [{ messages: count, elapsedMs, msgsPerSec: count / (elapsedMs / 1000), keys }, summarizeUs(samples)]
  } finally {
    await worker.terminate()
  }
}

async function lmdbPuts (keys: number, ms: number, seed: number, valueBytes: number): Promise<LmdbBaseline> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-lmdb-'))
  try {
    const db = open<Buffer, string>({ path: dir, encoding: 'binary', compression: false })
    const rng = new Rng(seed)
    const value = Buffer.alloc(valueBytes, 7)
    let puts = 0
    let last: Promise<boolean> = Promise.resolve(true)
    const start = performance.now()
    const deadline = start + ms
    while (performance.now() < deadline) {
      for (let j = 0; j < 4096; j++) last = db.put(benchId(rng.below(keys)), value)
      puts += 4096
      // let lmdb-js' write thread take the queued batch, as an engine commit loop would
      await new Promise((resolve) => setImmediate(resolve))
    }
    await last
    await db.flushed
    const elapsedMs = performance.now() - start
    await db.close()
    return { puts, elapsedMs, putsPerSec: puts / (elapsedMs / 1000), valueBytes, fsync: true }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
