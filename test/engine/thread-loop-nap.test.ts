/**
 * A worker's loop naps instead of parking for a while after frames came (thread-loop.ts
 * `nap`): a producer that publishes meanwhile finds it awake and does not ring its
 * doorbell (no wake-up to pay), the frames are still taken, and once the linger is over
 * the worker parks as before — and is rung again. The main thread never naps.
 *
 * The loops run on the test's thread, fed by a producer standing in for the other side.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as turn } from 'node:timers/promises'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingProducer } from '../../native-free-core/ring/ring-queue.ts'
import { readWorkerStats } from '../../src/observe/host-stats.ts'
import { FRAME_REPLY } from '../../src/thread/frame-codec.ts'
import { createMesh } from '../../src/thread/mesh.ts'
import type { Mesh } from '../../src/thread/mesh.ts'
import { ThreadLoop } from '../../src/thread/thread-loop.ts'

/** A loop as thread `index` of a one-worker mesh, and a producer writing reply frames to it from the other thread. */
function rig (index: number, lingerMs?: number): { mesh: Mesh, loop: ThreadLoop, bell: Doorbell, replies: number[], send: (value: number) => void } {
  const mesh = createMesh(1, 4096)
  const replies: number[] = []
  const loop = new ThreadLoop({ index, mesh, maxMessageBytes: 1024, onReply: (_id, _ok, value) => replies.push(value as number), ...(lingerMs === undefined ? {} : { lingerMs }) })
  const from = 1 - index
  const bell = new Doorbell(mesh.bells[index]!)
  const producer = new RingProducer(mesh.rings[from]![index]!, bell, (b, o, l) => Buffer.from(b as ArrayBuffer, o, l))
  const send = (value: number): void => {
    const o = producer.begin(24)
    const t = producer.target
    t.u8[o] = FRAME_REPLY
    t.u8[o + 1] = 4 // an inline integer
    t.i32[(o + 4) >> 2] = 1
    t.i32[(o + 8) >> 2] = 1
    t.i32[(o + 20) >> 2] = value
    producer.end(24)
    producer.publish()
  }
  return { mesh, loop, bell, replies, send }
}

/** The doorbell's sequence word: bumped by each producer that had to wake the owner. */
const rings = (bell: Doorbell): number => Atomics.load(bell.words, 0)

async function until (what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await turn()
  }
}

test('a worker that just had frames naps: frames published meanwhile need no ring, and are taken', async () => {
  const { loop, bell, replies, send } = rig(1, 60_000)
  try {
    loop.start()
    await until('the idle worker to park', () => bell.sleeping)
    send(1)
    assert.equal(rings(bell), 1, 'the parked worker was rung')
    await until('the first frame', () => replies.length === 1)
    for (let i = 0; i < 5; i++) await turn()
    assert.equal(bell.sleeping, false, 'napping, not parked')
    send(2)
    send(3)
    await until('the frames sent during the nap', () => replies.length === 3)
    assert.deepEqual(replies, [1, 2, 3])
    assert.equal(rings(bell), 1, 'no ring while it napped')
  } finally {
    loop.stop()
  }
})

test('after the linger a worker parks, runs no passes while parked, and is rung again', async () => {
  const { mesh, loop, bell, replies, send } = rig(1, 2)
  try {
    loop.start()
    await until('the idle worker to park', () => bell.sleeping)
    send(1)
    await until('the first frame', () => replies.length === 1)
    await until('the worker to park after its linger', () => bell.sleeping)
    loop.publishStats()
    const passes = readWorkerStats(mesh, 1, 0).passes
    await new Promise((resolve) => setTimeout(resolve, 20))
    loop.publishStats()
    assert.equal(readWorkerStats(mesh, 1, 0).passes, passes, 'parked: no passes')
    const before = rings(bell)
    send(2)
    assert.equal(rings(bell), before + 1, 'rung, being parked')
    await until('the frame after parking', () => replies.length === 2)
  } finally {
    loop.stop()
  }
})

test('naps run no passes: a napping worker with nothing inbound only looks', async () => {
  const { mesh, loop, bell, replies, send } = rig(1, 60_000)
  try {
    loop.start()
    await until('the idle worker to park', () => bell.sleeping)
    send(1)
    await until('the first frame', () => replies.length === 1)
    loop.publishStats()
    const passes = readWorkerStats(mesh, 1, 0).passes
    for (let i = 0; i < 50; i++) await turn()
    loop.publishStats()
    assert.equal(readWorkerStats(mesh, 1, 0).passes, passes)
    assert.equal(bell.sleeping, false)
  } finally {
    loop.stop()
  }
})

test('the main thread never naps: after frames its loop parks at once', async () => {
  const { loop, bell, replies, send } = rig(0, 60_000)
  try {
    loop.start()
    await until('the idle loop to park', () => bell.sleeping)
    send(1)
    await until('the frame', () => replies.length === 1)
    await until('the main thread to park again', () => bell.sleeping, 1000)
    send(2)
    assert.equal(rings(bell), 2, 'rung for each frame: parked both times')
    await until('the second frame', () => replies.length === 2)
  } finally {
    loop.stop()
  }
})
