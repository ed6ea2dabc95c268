import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingConsumer, RingProducer, createRing, forEachFrame, ringCapacity, ringDepth } from '../../native-free-core/ring/ring-queue.ts'
import { patternByte } from '../fixtures/prng.ts'
import type { RingProducerData } from '../fixtures/ring-producer.ts'

const producerUrl = new URL('../fixtures/ring-producer.js', import.meta.url)

/**
 * Consume from a real producer thread, parking on the doorbell when the ring is empty,
 * and verify every frame: sequence, length range and every byte.
 */
async function consumeFrom (options: { seed: number, count: number, capacity: number, maxBytes: number, flood: boolean }): Promise<{ wraps: number, overflowed: number }> {
  const ring = createRing(options.capacity)
  const consumerBell = Doorbell.create()
  const producerBell = Doorbell.create()
  const consumer = new RingConsumer(ring, producerBell)
  const cap = ringCapacity(ring)
  const dst = new Uint8Array(cap)
  const dst32 = new Int32Array(dst.buffer)
  const data: RingProducerData = { ring, consumerBell: consumerBell.words.buffer as SharedArrayBuffer, producerBell: producerBell.words.buffer as SharedArrayBuffer, ...options }
  const worker = new Worker(producerUrl, { workerData: data })
  const done = new Promise<{ overflowed: number }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  let expected = 0
  let consumedBytes = 0
  const rand = (() => { let x = options.seed; return () => (x = (x * 1103515245 + 12345) >>> 0) })()
  while (expected < options.count) {
    // random read budgets exercise partial copies that stop between frames
    const n = consumer.copyOut(dst, 64 + (rand() % cap))
    if (n === 0) {
      const seq = consumerBell.announceSleep()
      if (consumer.hasData()) { consumerBell.cancelSleep(); continue }
      const w = consumerBell.wait(seq)
      if (w !== null) await w
      consumerBell.cancelSleep()
      continue
    }
    consumedBytes += n
    forEachFrame(dst32, n, (o, len) => {
      assert.ok(len >= 4 && len <= options.maxBytes, `frame length ${len}`)
      assert.equal(dst32[o >> 2], expected, 'sequence')
      for (let i = 4; i < len; i++) {
        if (dst[o + i] !== patternByte(expected, i)) assert.fail(`frame ${expected} byte ${i}: ${dst[o + i]} != ${patternByte(expected, i)}`)
      }
      expected++
    })
  }
  const { overflowed } = await done
  await worker.terminate()
  assert.equal(ringDepth(ring), 0, 'everything consumed')
  return { wraps: Math.floor(consumedBytes / cap), overflowed }
}

test('frames from a real producer thread arrive whole and in order across many wrap-arounds', async () => {
  const { wraps } = await consumeFrom({ seed: 1, count: 60_000, capacity: 4096, maxBytes: 300, flood: false })
  assert.ok(wraps > 500, `wrapped ${wraps} times`)
})

test('a producer that floods a small ring spills to overflow, in order, without blocking', async () => {
  const { overflowed, wraps } = await consumeFrom({ seed: 7, count: 40_000, capacity: 4096, maxBytes: 1000, flood: true })
  assert.ok(overflowed > 0, 'the overflow path was used')
  assert.ok(wraps > 100)
})

test('frames up to half the capacity fit, with a skip marker at the wrap', () => {
  const ring = createRing(4096)
  const producer = new RingProducer(ring, Doorbell.create())
  const consumer = new RingConsumer(ring, Doorbell.create())
  const dst = new Uint8Array(4096)
  const dst32 = new Int32Array(dst.buffer)
  const sizes = [3000, 2000, 2040, 100, 2040, 8, 2040]
  let next = 0
  for (const size of sizes) {
    const o = producer.begin(size)
    producer.target.i32[o >> 2] = size
    producer.target.u8[o + size - 1] = 0xab // canary on the last byte
    producer.end(size)
    producer.publish()
    const got: number[] = []
    const n = consumer.copyOut(dst, 4096)
    forEachFrame(dst32, n, (o, len) => {
      assert.equal(dst[o + len - 1], 0xab, 'canary')
      got.push(dst32[o >> 2]!)
    })
    assert.deepEqual(got, [sizes[next++]])
  }
})

test('copyOut with a small budget returns whole frames and leaves the rest', () => {
  const ring = createRing(4096)
  const producer = new RingProducer(ring, Doorbell.create())
  const consumer = new RingConsumer(ring, Doorbell.create())
  for (let i = 0; i < 10; i++) {
    const o = producer.begin(60)
    producer.target.i32[o >> 2] = i
    producer.end(60)
  }
  producer.publish()
  const dst = new Uint8Array(4096)
  const dst32 = new Int32Array(dst.buffer)
  const seen: number[] = []
  let n
  while ((n = consumer.copyOut(dst, 130)) > 0) {
    assert.ok(n <= 130)
    forEachFrame(dst32, n, (o) => seen.push(dst32[o >> 2]!))
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
})

test('the doorbell wakes a parked consumer once per sleep, and not at all when awake', async () => {
  const bell = Doorbell.create()
  assert.equal(bell.sleeping, false)
  bell.ring() // awake: no effect, no pending wake-up
  const seq = bell.announceSleep()
  const waiting = bell.wait(seq)
  assert.ok(waiting !== null, 'parks')
  bell.ring()
  assert.equal(await waiting, 'ok')
  // a ring between announceSleep and wait makes wait return at once
  const seq2 = bell.announceSleep()
  bell.ring()
  assert.equal(bell.wait(seq2), null)
})
