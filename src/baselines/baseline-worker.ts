/**
 * The far side of the raw baselines (see raw-baselines.ts): a worker that consumes a ring,
 * a postMessage stream, or msgpackr envelopes dispatched to a Map of agents, or
 * echoes frames for a ping-pong. Nothing of the engine runs here — that is the point.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Unpackr } from 'msgpackr'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingConsumer, RingProducer, forEachFrame } from '../../native-free-core/ring/ring-queue.ts'

export type BaselineWorkerData =
  | { readonly mode: 'ring-count', readonly ring: SharedArrayBuffer, readonly bell: SharedArrayBuffer, readonly peerBell: SharedArrayBuffer, readonly expect: number }
  | { readonly mode: 'msgpack-dispatch', readonly ring: SharedArrayBuffer, readonly bell: SharedArrayBuffer, readonly peerBell: SharedArrayBuffer, readonly expect: number, readonly agents: number }
  | { readonly mode: 'post-count', readonly expect: number }
  | { readonly mode: 'echo', readonly ring: SharedArrayBuffer, readonly back: SharedArrayBuffer, readonly bell: SharedArrayBuffer, readonly peerBell: SharedArrayBuffer, readonly rounds: number, readonly spin: boolean }

const d = workerData as BaselineWorkerData
const port = parentPort!
port.on('message', () => {}) // keeps the worker alive while it parks on waitAsync

function done (extra: Record<string, number> = {}): void {
  port.postMessage({ done: true, ...extra })
}

/** Park on the doorbell until `ready()` holds. */
async function park (bell: Doorbell, ready: () => boolean): Promise<void> {
  const seq = bell.announceSleep()
  if (ready()) { bell.cancelSleep(); return }
  const w = bell.wait(seq)
  if (w !== null) await w
  bell.cancelSleep()
}

async function run (): Promise<void> {
  switch (d.mode) {
    case 'post-count': {
      let n = 0
      port.on('message', () => { if (++n === d.expect) done() })
      port.postMessage({ ready: true })
      return
    }
    case 'ring-count': {
      const bell = new Doorbell(d.bell)
      const consumer = new RingConsumer(d.ring, new Doorbell(d.peerBell))
      const dst = new Uint8Array(consumer.capacity)
      const dst32 = new Int32Array(dst.buffer)
      let n = 0
      let bytes = 0
      port.postMessage({ ready: true })
      while (n < d.expect) {
        const got = consumer.copyOut(dst, dst.length)
        if (got === 0) { await park(bell, () => consumer.hasData()); continue }
        forEachFrame(dst32, got, (_o, len) => { n++; bytes += len })
      }
      done({ bytes })
      return
    }
    case 'msgpack-dispatch': {
      const bell = new Doorbell(d.bell)
      const consumer = new RingConsumer(d.ring, new Doorbell(d.peerBell))
      const unpackr = new Unpackr({ useRecords: false })
      const dst = Buffer.from(new ArrayBuffer(consumer.capacity))
      const dst32 = new Int32Array(dst.buffer)
      const agents = new Map<string, { n: number }>()
      for (let i = 0; i < d.agents; i++) agents.set(`default\u001fcounter\u001fk${i}`, { n: 0 })
      let n = 0
      port.postMessage({ ready: true })
      while (n < d.expect) {
        const got = consumer.copyOut(dst, dst.length)
        if (got === 0) { await park(bell, () => consumer.hasData()); continue }
        forEachFrame(dst32, got, (o, len) => {
          const env = unpackr.unpack(dst, { start: o, end: o + len }) as [number, string, string, number]
          agents.get(env[1])!.n += env[3]
          n++
        })
      }
      done()
      return
    }
    case 'echo': {
      const bell = new Doorbell(d.bell)
      const consumer = new RingConsumer(d.ring, new Doorbell(d.peerBell))
      const producer = new RingProducer(d.back, new Doorbell(d.peerBell))
      const dst = new Uint8Array(consumer.capacity)
      const dst32 = new Int32Array(dst.buffer)
      port.postMessage({ ready: true })
      for (let r = 0; r < d.rounds; r++) {
        let got = 0
        while ((got = consumer.copyOut(dst, dst.length)) === 0) {
          if (!d.spin) await park(bell, () => consumer.hasData())
        }
        forEachFrame(dst32, got, (o) => {
          const at = producer.begin(8)
          producer.target.i32[at >> 2] = dst32[o >> 2]!
          producer.end(8)
        })
        producer.publish()
      }
      done()
    }
  }
}
void run()
