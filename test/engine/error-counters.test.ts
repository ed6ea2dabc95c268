/**
 * What goes wrong inside a host is counted in `host.stats()` and `host.metrics()`
 * whether or not anyone listens for 'agent-error': handlers that threw, sends of
 * committed turns that could not be written, frames that did not decode, and
 * agent-error reports dropped on their way to the listeners.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingProducer } from '../../native-free-core/ring/ring-queue.ts'
import { readWorkerStats } from '../../src/observe/host-stats.ts'
import { FRAME_REPLY } from '../../src/thread/frame-codec.ts'
import { createMesh } from '../../src/thread/mesh.ts'
import { ThreadLoop } from '../../src/thread/thread-loop.ts'
import type { AgentErrorEvent } from '../../src/index.ts'
import { keyOn, startHost } from './helpers.ts'

test('failed turns and sends that fail after their commit are counted with no agent-error listener', async () => {
  const host = await startHost({ workers: 2, maxMessageBytes: 4096 })
  try {
    assert.equal(host.listenerCount('agent-error'), 0)
    const fragile = host.ref('fragile', keyOn(1, 'fragile'))
    await assert.rejects(fragile.call('addThenThrow', 1), { code: 'SHOAL_ERR_AGENT' })
    await assert.rejects(fragile.call('addThenThrow', 2), { code: 'SHOAL_ERR_AGENT' })
    // the turn commits (its reply says so), then its send is too large for any ring
    const emitter = host.ref('emitter', keyOn(2, 'emitter'))
    assert.equal(await emitter.call('shout', 10_000), 1)
    assert.equal(await emitter.call('shout', 10), 2, 'the emitter serves on')

    const stats = host.stats()
    const [w1, w2] = stats.workers
    assert.equal(w1!.agentErrors, 2)
    assert.equal(w2!.failedSends, 1)
    assert.equal(w2!.agentErrors, 1, 'a failed send is an agent error too')
    assert.equal(stats.agentErrors, 3)
    assert.equal(stats.failedSends, 1)
    assert.equal(stats.badFrames, 0)
    assert.equal(stats.agentErrorsDropped, 0)
    const metrics = await host.metrics()
    assert.match(metrics, /^shoal_agent_errors_total 3$/m)
    assert.match(metrics, /^shoal_failed_sends_total 1$/m)
    assert.match(metrics, /^shoal_bad_frames_total 0$/m)
    assert.match(metrics, /^shoal_agent_error_reports_dropped_total 0$/m)
  } finally {
    await host.close()
  }
})

test('agent-error reports over a worker\'s batch limit are dropped, and counted', async () => {
  const host = await startHost({ workers: 1, clock: 'manual' })
  try {
    // 1,500 timers due on tick 1, each of whose turns throws: the worker fires them in one
    // pass, so their reports make one batch, of which it sends at most 1,000
    for (let i = 1; i < 1500; i++) host.ref('doomed', `d${i}`).cast('arm', 1)
    await host.ref('doomed', 'd0').call('arm', 1) // after the casts: same ring, in order
    const events: AgentErrorEvent[] = []
    host.on('agent-error', (e) => events.push(e))
    await host.advance(1)
    while (events.length < 1000) await once(host, 'agent-error')
    const stats = host.stats()
    assert.equal(stats.workers[0]!.agentErrors, 1500)
    assert.equal(stats.agentErrorsDropped, 500)
    assert.equal(events.length, 1000)
    assert.equal(events[0]!.error.message, 'this timer always fails')
    assert.match(await host.metrics(), /^shoal_agent_error_reports_dropped_total 500$/m)
  } finally {
    await host.close()
  }
})

test('a frame that does not decode is dropped and counted; the thread reads on', async () => {
  // the main thread of a one-worker mesh, fed by a producer standing in for worker 1
  const mesh = createMesh(1, 4096)
  const replies: unknown[] = []
  const errors: string[] = []
  const loop = new ThreadLoop({
    index: 0,
    mesh,
    maxMessageBytes: 1024,
    onReply: (_id, _ok, value) => replies.push(value),
    onAgentError: (_id, _method, error) => errors.push(error.code)
  })
  const producer = new RingProducer(mesh.rings[1]![0]!, new Doorbell(mesh.bells[0]!), (b, o, l) => Buffer.from(b as ArrayBuffer, o, l))
  const frame = (tag: number, value: number): void => {
    const o = producer.begin(24)
    const t = producer.target
    t.u8[o] = FRAME_REPLY
    t.u8[o + 1] = tag // 4: an inline integer; 200: no such payload tag
    t.i32[(o + 4) >> 2] = 1
    t.i32[(o + 8) >> 2] = 1
    t.i32[(o + 20) >> 2] = value
    producer.end(24)
  }
  frame(200, 0)
  frame(4, 42)
  producer.publish()
  loop.drainFrom(1)
  loop.publishStats()
  assert.deepEqual(replies, [42], 'the frame after the bad one was read')
  assert.deepEqual(errors, ['SHOAL_ERR_DECODE'])
  const stats = readWorkerStats(mesh, 0, 0)
  assert.equal(stats.badFrames, 1)
  assert.equal(stats.agentErrors, 1)
  loop.stop()
})
