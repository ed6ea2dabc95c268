/**
 * A worker's loop that just had frames naps on its doorbell instead of parking
 * (thread-loop.ts `nap`, Doorbell.nap): a blocking `Atomics.wait` with the sleeping flag
 * set, which a producer's ring must cut short. Real worker threads: the loop runs in one
 * (test/fixtures/napping-loop.ts), the test's thread is the producer. The naps here are
 * 30 s long, so a frame that is not taken at once was not woken for — a lost wake-up,
 * or a nap the ring does not reach — and the test times out on it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingProducer } from '../../native-free-core/ring/ring-queue.ts'
import { FRAME_REPLY } from '../../src/thread/frame-codec.ts'
import { createMesh } from '../../src/thread/mesh.ts'
import type { NappingLoopData } from '../fixtures/napping-loop.ts'
import { between, prng } from '../fixtures/prng.ts'

const loopUrl = new URL('../fixtures/napping-loop.js', import.meta.url)
const kLongNapMs = 30_000

interface Rig {
  readonly bell: Doorbell
  readonly words: Int32Array
  /** Write a reply frame carrying `value` to the loop's thread; publish (and ring) when `publish`. */
  send (value: number, publish?: boolean): void
  publish (): void
  stop (): Promise<void>
}

async function rig (index: number, lingerMs: number, napMs: number, holdNaps = false): Promise<Rig> {
  const mesh = createMesh(1, 1 << 20)
  const words = new Int32Array(new SharedArrayBuffer(16))
  const data: NappingLoopData = { mesh, index, lingerMs, napMs, words: words.buffer as SharedArrayBuffer, holdNaps }
  const worker = new Worker(loopUrl, { workerData: data })
  await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject) })
  const bell = new Doorbell(mesh.bells[index]!)
  const producer = new RingProducer(mesh.rings[1 - index]![index]!, bell, (b, o, l) => Buffer.from(b as ArrayBuffer, o, l))
  return {
    bell,
    words,
    send (value, publish = true) {
      const o = producer.begin(24)
      const t = producer.target
      t.u8[o] = FRAME_REPLY
      t.u8[o + 1] = 4 // an inline integer
      t.i32[(o + 4) >> 2] = 1
      t.i32[(o + 8) >> 2] = 1
      t.i32[(o + 20) >> 2] = value
      producer.end(24)
      if (publish) producer.publish()
    },
    publish () { producer.publish() },
    async stop () {
      worker.postMessage('stop')
      bell.ring() // a napping worker reads its messages once the nap ends
      await new Promise((resolve) => worker.once('exit', resolve))
    }
  }
}

/** Frames taken by the loop. */
const taken = (r: Rig): number => Atomics.load(r.words, 0)
const ticks = (r: Rig): number => Atomics.load(r.words, 2)

async function until (what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`)
    await turn()
  }
}

test('a worker napping after frames is woken by the producer\'s ring, not by its nap\'s end', async () => {
  const r = await rig(1, 60_000, kLongNapMs)
  try {
    r.send(1)
    await until('the first frame (the idle worker was parked)', () => taken(r) === 1)
    for (let i = 2; i <= 50; i++) {
      await until('the worker to nap', () => r.bell.sleeping)
      if (i === 2) {
        // a blocking nap: the worker's event loop (its 1 ms interval) stands still
        const t = ticks(r)
        await sleep(30)
        assert.equal(ticks(r), t, 'the worker is blocked in a nap, not parked with its event loop running')
        assert.equal(r.bell.sleeping, true)
      }
      r.send(i)
      await until(`frame ${i}`, () => taken(r) === i)
    }
    assert.equal(Atomics.load(r.words, 1), 50 * 51 / 2)
  } finally {
    await r.stop()
  }
})

test('a frame published just before the worker\'s sleeping flag goes up is not rung for, and still taken', async () => {
  // the Dekker window, held open: the worker stands at its nap's door, the producer
  // publishes then (it sees no sleeping flag, so it does not ring), then the worker naps
  const r = await rig(1, 60_000, kLongNapMs, true)
  const door = new Int32Array(r.words.buffer, 12, 1)
  try {
    r.send(1)
    await until('the first frame', () => taken(r) === 1)
    for (let i = 2; i <= 20; i++) {
      await until('the worker at its nap\'s door', () => Atomics.load(door, 0) === 1)
      const seq = Atomics.load(r.bell.words, 0)
      r.send(i)
      assert.equal(Atomics.load(r.bell.words, 0), seq, 'not rung: the flag was not up')
      Atomics.store(door, 0, 2)
      Atomics.notify(door, 0)
      await until(`frame ${i}, published at the door`, () => taken(r) === i)
    }
  } finally {
    Atomics.store(door, 0, 2)
    Atomics.notify(door, 0)
    await r.stop()
  }
})

test('bursts at random moments against a napping worker: no frame waits for a nap to end', async () => {
  const r = await rig(1, 60_000, kLongNapMs)
  const rand = prng(13)
  const total = 20_000
  let sent = 0
  let sum = 0
  try {
    while (sent < total) {
      const burst = Math.min(total - sent, between(rand, 1, 40))
      for (let b = 0; b < burst; b++) {
        sent++
        sum += sent
        r.send(sent, false)
      }
      r.publish()
      // sometimes at once, sometimes after a few turns, sometimes once the worker sleeps
      const gap = between(rand, 0, 3)
      if (gap === 1) await turn()
      else if (gap === 2) for (let i = between(rand, 1, 20); i > 0; i--) await turn()
      else if (gap === 3) await until(`the worker to sleep after ${sent} frames (taken ${taken(r)})`, () => r.bell.sleeping)
      // keep the ring far from full (no overflow path here)
      if (sent - taken(r) > 4000) await until('the worker to catch up', () => sent - taken(r) <= 1000)
    }
    await until(`all ${total} frames (taken ${taken(r)})`, () => taken(r) === total)
    assert.equal(Atomics.load(r.words, 1), sum)
  } finally {
    await r.stop()
  }
})

test('after the linger the worker parks with its event loop running, and a ring wakes it', async () => {
  const r = await rig(1, 5, 1)
  try {
    r.send(1)
    await until('the first frame', () => taken(r) === 1)
    await sleep(20)
    await until('the worker to park', () => r.bell.sleeping)
    const t = ticks(r)
    await until('its event loop to run while parked', () => ticks(r) >= t + 3)
    r.send(2)
    await until('the frame sent to the parked worker', () => taken(r) === 2)
  } finally {
    await r.stop()
  }
})

test('the main thread never naps: after frames its loop parks with its event loop running', async () => {
  const r = await rig(0, 60_000, kLongNapMs)
  try {
    r.send(1)
    await until('the first frame', () => taken(r) === 1)
    await until('the loop to park', () => r.bell.sleeping)
    const t = ticks(r)
    await until('its event loop to run', () => ticks(r) >= t + 3)
    r.send(2)
    await until('the second frame', () => taken(r) === 2)
  } finally {
    await r.stop()
  }
})
