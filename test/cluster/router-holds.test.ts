/**
 * The router holds frames for a shard the map gives this host until the host adopts it.
 * When the map moves the shard on before that (the host was fenced, stopped past its
 * lease, the shard failed over elsewhere), nothing would ever adopt it here, and every
 * later frame for it was held behind the first: the chaos test once ended with one
 * host's durable sends to one agent never applied (seed 2002, two tracks: 9 transfers to
 * a6 "credited 0×", their records redelivered for 30 s into that hold). Now the new map
 * releases such a hold: its frames go to the new owner. Holds of a planned move into this
 * host are the handover's and stay. A real router, real frames, the links as buffers.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { MSG_CALL, MSG_CAST } from '../../native-free-core/agent/envelope.ts'
import { SHARDS, hashId } from '../../native-free-core/placement/hash.ts'
import { SHARD_ARRIVING, SHARD_FORWARD, SHARD_LOCAL } from '../../native-free-core/placement/shard-state.ts'
import type { Gateway } from '../../src/host/gateway.ts'
import { plan } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { ClusterRouter } from '../../plugins/cluster/router.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { FrameWriter, copyStamp } from '../../src/thread/frame-codec.ts'
import { idsInShard } from '../fixtures/shards.ts'

const up = (...ids: string[]): ShardMap => plan(null, ids.map((id) => ({ id, state: 'up' as const })))!

function setup (): { router: ClusterRouter, sinks: Map<string, FrameBuffer> } {
  const sinks = new Map<string, FrameBuffer>()
  const links = {
    writer (peer: string) {
      let sink = sinks.get(peer)
      if (sink === undefined) sinks.set(peer, sink = new FrameBuffer())
      return sink
    },
    isUp: () => true
  }
  const router = new ClusterRouter('h0', links, () => {}, 2_500)
  // no shard served here (a test below attaches one that serves some)
  router.attach({ states: new Uint8Array(SHARDS).fill(SHARD_FORWARD) } as unknown as Gateway)
  return { router, sinks }
}

/** One frame for `id`, as its ring bytes: a cast, or a durable send made `ageMs` ago. */
function frameFor (id: string, ageMs?: number): Buffer {
  const fb = new FrameBuffer()
  const w = new FrameWriter(4096)
  if (ageMs === undefined) w.message(fb, MSG_CAST, id, null, hashId(id), 0, 0, 7, 0, 0)
  else w.send(fb, id, hashId(id), 0, 0, 7, { senderShard: 1, origin: '0123456789abcdef', key: 2 ** 32 + 5, sentAt: copyStamp(Date.now() - ageMs) })
  let out: Buffer | undefined
  fb.forEach((f) => { out = Buffer.from(f) })
  return out!
}

/** A call to `id` with call id `callId`, as its ring bytes. */
function callFor (id: string, callId: number): Buffer {
  const fb = new FrameBuffer()
  new FrameWriter(4096).message(fb, MSG_CALL, id, null, hashId(id), 0, 0, 7, 0, callId)
  let out: Buffer | undefined
  fb.forEach((f) => { out = Buffer.from(f) })
  return out!
}

const framesTo = (sinks: Map<string, FrameBuffer>, peer: string): Buffer[] => {
  const out: Buffer[] = []
  sinks.get(peer)?.forEach((f) => out.push(Buffer.from(f)))
  return out
}

test('frames held for a shard this host never adopted go to its new owner when the map moves it on', () => {
  const { router, sinks } = setup()
  const mine = up('h0') // h0 owns every shard
  const shard = 99
  const [id] = idsInShard(shard, 'account', 1)
  router.setMap(mine)
  const cast = frameFor(id!)
  const send = frameFor(id!, 0)
  router.route(cast)
  router.route(send)
  assert.deepEqual(router.arrivingShards(), [shard], 'held for the adoption')
  assert.equal(router.held, 2)
  assert.equal(framesTo(sinks, 'h1').length, 0)

  // the map gives the shard to h1 before h0 adopted it
  router.setMap(up('h1'))
  assert.deepEqual(router.arrivingShards(), [], 'the hold is released')
  assert.equal(router.releasedArrivals, 1)
  assert.deepEqual(framesTo(sinks, 'h1'), [cast, send], 'in order, to the new owner')
  // and later frames for the shard are not held behind anything
  router.route(cast)
  assert.equal(framesTo(sinks, 'h1').length, 3)
})

test('a released hold drops a durable send copy grown too old meanwhile; a planned move\'s hold stays', () => {
  const { router, sinks } = setup()
  router.setMap(up('h0'))
  const [id] = idsInShard(5, 'account', 1)
  router.route(frameFor(id!, 3_000)) // made 3 s ago: older than the router's 2.5 s
  router.arrival(7, 'h2') // a move from h2 into this host: the handover's to adopt or drop
  router.setMap(up('h1'))
  assert.equal(framesTo(sinks, 'h1').length, 0, 'the old copy was dropped, not sent')
  assert.equal(router.staleCopies, 1)
  assert.deepEqual(router.arrivingShards(), [7])
})

/**
 * A home thread past the serving deadline forwards its frames to the router (thread-loop.ts
 * `lapsed`, and what its holds had: serving-deadline-holds.test.ts) although its shard is
 * served here. When the router sees them the deadline may have moved on (a renewal came
 * meanwhile): the shard is the host's in the map and LOCAL — the router held such a frame
 * "for the adoption", which never comes for a shard already served, and every later frame
 * routed for the shard waited behind it for ever. Now such a frame goes back to its home
 * thread, once, in order; past the deadline or fenced it fails (a call, retriable); and a
 * frame for a shard the router does hold as arriving (a move in) waits for the adoption,
 * behind what the old owner held.
 */
test('a frame a lapsed home thread forwarded for a shard served here goes back to its home thread (or fails past the deadline), never held for an adoption', () => {
  const { router, sinks } = setup()
  const states = new Uint8Array(SHARDS).fill(SHARD_FORWARD)
  const home: Buffer[] = []
  const failed: number[] = []
  router.attach({
    states,
    serveHere: (frame: Buffer) => { home.push(Buffer.from(frame)); return true },
    failCalls: (ids: Iterable<number>) => { failed.push(...ids) },
    renewFollows: () => {}
  } as unknown as Gateway)
  router.setMap(up('h0'))
  const shard = 99
  const [id] = idsInShard(shard, 'account', 1)
  states[shard] = SHARD_LOCAL // served here: adopted long ago
  const casts = [frameFor(id!), frameFor(id!, 0), frameFor(id!)]
  for (const f of casts) router.route(f)
  assert.deepEqual(router.arrivingShards(), [], 'not held for an adoption that never comes')
  assert.deepEqual(home, casts, 'back to the home thread, once each, in order')
  assert.equal(framesTo(sinks, 'h1').length, 0)

  // past the deadline (or fenced): a call fails at once, retriable; nothing runs here
  router.servingUntil = Date.now() - 1
  const call = callFor(id!, 41)
  router.route(call)
  assert.deepEqual(failed, [41])
  assert.equal(home.length, 3)
  router.servingUntil = 0

  // a shard held as arriving (a move from h2 in progress): a forwarded frame waits for the adoption, after the old owner's
  const other = 7
  const [id7] = idsInShard(other, 'account', 1)
  states[other] = SHARD_ARRIVING
  router.arrival(other, 'h2')
  const mine = frameFor(id7!)
  router.route(mine)
  assert.equal(home.length, 3, 'not sent home while it arrives')
  const taken = router.takeArrivals([other]).get(other)
  const out: Buffer[] = []
  taken?.forEach((f) => out.push(Buffer.from(f)))
  assert.deepEqual(out, [mine], 'handed to the adoption once')
  assert.deepEqual(router.takeArrivals([other]).get(other), undefined, 'and only once')
})
