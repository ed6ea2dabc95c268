import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Gateway } from '../../src/host/gateway.ts'
import { PendingCalls } from '../../src/host/pending-calls.ts'
import { createMesh } from '../../src/thread/mesh.ts'
import { ThreadLoop } from '../../src/thread/thread-loop.ts'
import type { ControlOp } from '../../src/thread/shard-handover.ts'

// The main thread answers a worker's commit journal ('replicate', numbered by the worker)
// once its replicas have it. A worker that dies meanwhile is replaced by one that numbers
// its journals from 1 again: the late answer must not reach it, where it would settle the
// replacement's own commit of the same number before that commit's replicas have it.
test('a replicated answer for a worker that restarted meanwhile is not delivered to its replacement', async () => {
  const mesh = createMesh(1, 4096, true)
  const loop = new ThreadLoop({ index: 0, mesh, maxMessageBytes: 1024 })
  const sent: Array<[number, number, ControlOp]> = []
  const sendControl = loop.sendControl.bind(loop)
  loop.sendControl = (to: number, token: number, msg: ControlOp): void => {
    sent.push([to, token, msg])
    sendControl(to, token, msg)
  }
  let epoch = 0
  const gateway = new Gateway({ mesh, loop, pending: new PendingCalls(1000), follows: () => { throw new Error('unused') }, epochOf: () => epoch, maxMessageBytes: 1024 })
  const replicas: Array<() => void> = []
  gateway.attach({ route: () => {}, replicate: () => new Promise<void>((resolve) => { replicas.push(resolve) }) } as never)

  gateway.replicate(1, 7, new Uint8Array(0)) // the first incarnation's journal 7
  epoch++ // it dies; its replacement starts
  gateway.replicate(1, 1, new Uint8Array(0)) // the replacement's journal 1
  replicas[0]!() // the dead one's replicas answer late
  replicas[1]!()
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(sent.map(([to, token, msg]) => [to, token, msg.op]), [[1, 1, 'replicated']],
    'only the replacement\'s own journal is answered')

})
