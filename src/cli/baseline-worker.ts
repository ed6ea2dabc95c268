/**
 * The other thread of the raw baselines (see baselines.ts): the consumer of a bare SAB
 * ring or of postMessage, doing what the engine's worker does minus the engine —
 * unpack with msgpackr, look the id up in a `Map`, bump a counter.
 *
 * Ring modes park on their doorbell with `Atomics.waitAsync` when the ring is empty,
 * as the engine's thread loop does; the `parentPort` listener keeps this thread alive
 * meanwhile (a pending waitAsync alone does not, Node 20).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Unpackr, Packr } from 'msgpackr'
import { Doorbell } from '../../native-free-core/doorbell.ts'
import { RingConsumer, RingProducer, forEachFrame } from '../../native-free-core/ring-queue.ts'
import { benchId } from './bench-ids.ts'

export type BaselineWorkerData =
  | { readonly mode: 'ring', readonly ring: SharedArrayBuffer, readonly bell: SharedArrayBuffer, readonly producerBell: SharedArrayBuffer, readonly keys: number }
  | { readonly mode: 'ring-echo', readonly ring: SharedArrayBuffer, readonly back: SharedArrayBuffer, readonly bell: SharedArrayBuffer, readonly mainBell: SharedArrayBuffer }
  | { readonly mode: 'post', readonly keys: number }

export type BaselineWorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'done', readonly count: number }
  | { readonly type: 'ack', readonly count: number }

/** Bytes copied out of a ring per pass, as the engine's RING_BUDGET_BYTES. */
const kBudget = 256 * 1024

const data = workerData as BaselineWorkerData
const port = parentPort!
const unpackr = new Unpackr({ useRecords: false, moreTypes: true })
const packr = new Packr({ useRecords: false, moreTypes: true })

interface Entry { n: number }

/** The Map the engine's agent table stands in for, prefilled: the agents are resident. */
function table (keys: number): Map<string, Entry> {
  const map = new Map<string, Entry>()
  for (let i = 0; i < keys; i++) map.set(benchId(i), { n: 0 })
  return map
}

/** [id, method, payload] → Map dispatch; returns the entry's counter. */
function dispatch (map: Map<string, Entry>, msg: [string, string, number | null]): number {
  let e = map.get(msg[0])
  if (e === undefined) map.set(msg[0], e = { n: 0 })
  if (msg[1] === 'add') e.n += msg[2]!
  return e.n
}

async function ring (d: Extract<BaselineWorkerData, { mode: 'ring' }>): Promise<void> {
  const map = table(d.keys)
  const bell = new Doorbell(d.bell)
  const consumer = new RingConsumer(d.ring, new Doorbell(d.producerBell))
  const scratch = Buffer.alloc(d.ring.byteLength)
  const i32 = new Int32Array(scratch.buffer, scratch.byteOffset, scratch.length >> 2)
  let count = 0
  let end = false
  const onFrame = (o: number, len: number): void => {
    if (len === 0) { end = true; return }
    dispatch(map, unpackr.unpack(scratch, { start: o, end: o + len }) as [string, string, number])
    count++
  }
  port.postMessage({ type: 'ready' } satisfies BaselineWorkerMessage)
  while (!end) {
    const bytes = consumer.copyOut(scratch, kBudget)
    if (bytes !== 0) {
      forEachFrame(i32, bytes, onFrame)
      continue
    }
    const seq = bell.announceSleep()
    if (consumer.hasData()) { bell.cancelSleep(); continue }
    const waiting = bell.wait(seq)
    if (waiting !== null) await waiting
    bell.cancelSleep()
  }
  port.postMessage({ type: 'done', count } satisfies BaselineWorkerMessage)
}

async function ringEcho (d: Extract<BaselineWorkerData, { mode: 'ring-echo' }>): Promise<void> {
  const map = new Map<string, Entry>()
  const bell = new Doorbell(d.bell)
  const mainBell = new Doorbell(d.mainBell)
  const consumer = new RingConsumer(d.ring, mainBell)
  const producer = new RingProducer(d.back, mainBell, (b, o, l) => Buffer.from(b as ArrayBuffer, o, l))
  const scratch = Buffer.alloc(d.ring.byteLength)
  const i32 = new Int32Array(scratch.buffer, scratch.byteOffset, scratch.length >> 2)
  let count = 0
  let end = false
  const onFrame = (o: number, len: number): void => {
    if (len === 0) { end = true; return }
    const n = dispatch(map, unpackr.unpack(scratch, { start: o, end: o + len }) as [string, string, null])
    const reply = packr.pack(n)
    const at = producer.begin(reply.length)
    producer.target.u8.set(reply, at)
    producer.end(reply.length)
    count++
  }
  port.postMessage({ type: 'ready' } satisfies BaselineWorkerMessage)
  while (!end) {
    const bytes = consumer.copyOut(scratch, kBudget)
    if (bytes !== 0) {
      forEachFrame(i32, bytes, onFrame)
      producer.publish()
      continue
    }
    const seq = bell.announceSleep()
    if (consumer.hasData()) { bell.cancelSleep(); continue }
    const waiting = bell.wait(seq)
    if (waiting !== null) await waiting
    bell.cancelSleep()
  }
  port.postMessage({ type: 'done', count } satisfies BaselineWorkerMessage)
}

function post (d: Extract<BaselineWorkerData, { mode: 'post' }>): void {
  const map = table(d.keys)
  let count = 0
  port.on('message', (m: [string, string, number | null] | 'sync' | 'end') => {
    if (m === 'sync') port.postMessage({ type: 'ack', count } satisfies BaselineWorkerMessage)
    else if (m === 'end') port.postMessage({ type: 'done', count } satisfies BaselineWorkerMessage)
    else {
      const n = dispatch(map, m)
      count++
      if (m[1] === 'get') port.postMessage(n)
    }
  })
  port.postMessage({ type: 'ready' } satisfies BaselineWorkerMessage)
}

// a listener keeps the thread alive while it parks on waitAsync; the parent terminates it
port.on('message', () => {})
if (data.mode === 'ring') await ring(data)
else if (data.mode === 'ring-echo') await ringEcho(data)
else post(data)
