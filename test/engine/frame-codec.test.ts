/**
 * Message frames through a real SharedArrayBuffer ring: a durable send and a MSG_FORGET
 * carry the send's identity (key, origin store id, sender's shard) in the identity header;
 * other messages keep the short header, and a reader decoding one kind after the other
 * resets what the previous frame set.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Doorbell, DOORBELL_BYTES } from '../../native-free-core/ring/doorbell.ts'
import { RingConsumer, RingProducer, createRing, forEachFrame } from '../../native-free-core/ring/ring-queue.ts'
import { Envelope, MSG_CALL, MSG_FORGET, MSG_SEND } from '../../native-free-core/agent/envelope.ts'
import { hashId } from '../../native-free-core/placement/hash.ts'
import { FrameReader, FrameWriter, idPrefixBytes } from '../../src/thread/frame-codec.ts'

/** A 64 KiB ring with its producer (Buffer views) and consumer, on one thread. */
function ring (): { producer: RingProducer, consumer: RingConsumer } {
  const sab = createRing(1 << 16)
  const bell = new Doorbell(new SharedArrayBuffer(DOORBELL_BYTES))
  return { producer: new RingProducer(sab, bell, (b, o, l) => Buffer.from(b as ArrayBuffer, o, l)), consumer: new RingConsumer(sab, bell) }
}

test('durable sends and forgets carry their identity; calls and plain sends do not', () => {
  const { producer, consumer } = ring()
  const writer = new FrameWriter(1 << 14)
  const id = 'default\u001fwallet\u001fbob-é'
  const hash = hashId(id)
  const key = 777 * 2 ** 32 + 0xfffffffe
  writer.message(producer, MSG_SEND, id, null, hash, 3, 4, { amount: 5 }, 0, 0, { senderShard: 4095, origin: 'fedcba9876543210', key })
  writer.message(producer, MSG_SEND, id, null, hash, 3, 4, 'plain', 0, 0)
  writer.message(producer, MSG_FORGET, id, null, hash, 0, 0, undefined, 0, 0, { senderShard: 0, origin: '0000000100000002', key: 2 ** 32 + 1 })
  writer.message(producer, MSG_CALL, id, Buffer.from(id), hash, 3, 5, 42, 2, 99)
  writer.message(producer, MSG_SEND, id, null, hash, 3, 4, 7, 0, 0, { senderShard: 12, origin: 'fedcba9876543210', key: 2 ** 32 + 5 })
  producer.publish()

  const reader = new FrameReader(1 << 16)
  const bytes = consumer.copyOut(reader.scratch, 1 << 16)
  const seen: Array<Partial<Envelope>> = []
  forEachFrame(reader.i32, bytes, (o, len) => {
    const e = reader.message(o, len)
    seen.push({ kind: e.kind, id: e.id, hash: e.hash, typeIdx: e.typeIdx, methodIdx: e.methodIdx, payload: e.payload, replyTo: e.replyTo, callId: e.callId, outboxKey: e.outboxKey, origin: e.origin, senderShard: e.senderShard })
  })
  const base = { id, hash, typeIdx: 3, methodIdx: 4, replyTo: 0, callId: 0 }
  assert.deepEqual(seen, [
    { ...base, kind: MSG_SEND, payload: { amount: 5 }, outboxKey: key, origin: 'fedcba9876543210', senderShard: 4095 },
    { ...base, kind: MSG_SEND, payload: 'plain', outboxKey: 0, origin: '', senderShard: 0 },
    { ...base, kind: MSG_FORGET, typeIdx: 0, methodIdx: 0, payload: undefined, outboxKey: 2 ** 32 + 1, origin: '0000000100000002', senderShard: 0 },
    { ...base, kind: MSG_CALL, methodIdx: 5, payload: 42, replyTo: 2, callId: 99, outboxKey: 0, origin: '', senderShard: 0 },
    { ...base, kind: MSG_SEND, payload: 7, outboxKey: 2 ** 32 + 5, origin: 'fedcba9876543210', senderShard: 12 }
  ])
})

test('a message written from an id prefix\'s bytes and a key reads back as the same id as one written from the id string', () => {
  // a 16-byte prefix (the key starts 4-aligned: written four characters per word) and a 17-byte one (byte by byte)
  for (const prefix of ['default\u001fcounter\u001f', 'tenant-a\u001fcounter\u001f']) {
    const { producer, consumer } = ring()
    const writer = new FrameWriter(1 << 14)
    const prefixBytes = idPrefixBytes(new Uint8Array(Buffer.from(prefix)))
    // ASCII (the loops) of every length mod 4, non-ASCII at the start, the end, in each place of a word
    // (Latin-1 and above: both must fall back) and past the loops' 32 characters (Buffer's encoder), empty
    const keys = ['k42', 'k', 'k1', 'k123', 'k1234', 'k123456', 'k1234567', 'é-first', 'last-é', 'abcé', 'abcdeĀ', 'ab\u0080d',
      'x'.repeat(31) + '€', 'x'.repeat(32), 'y'.repeat(40), '😀', 'a😀', '']
    for (const [i, key] of keys.entries()) writer.messageTo(producer, MSG_CALL, prefixBytes, key, hashId(prefix + key), 300 + i, 2 + i, i, 3, 100 + i)
    producer.publish()
    const reader = new FrameReader(1 << 16)
    const bytes = consumer.copyOut(reader.scratch, 1 << 16)
    const seen: Array<[string, number, unknown, number, number, number, number, number]> = []
    forEachFrame(reader.i32, bytes, (o, len) => {
      const e = reader.message(o, len)
      seen.push([e.id, e.hash, e.payload, e.callId, e.kind, e.typeIdx, e.methodIdx, e.replyTo])
    })
    assert.deepEqual(seen, keys.map((key, i) => [prefix + key, hashId(prefix + key), i, 100 + i, MSG_CALL, 300 + i, 2 + i, 3]))
    // the size check counts the prefix and the key's UTF-8 bytes: over the limit writes nothing
    const small = new FrameWriter(64)
    assert.throws(() => small.messageTo(producer, MSG_CALL, prefixBytes, 'é'.repeat(20), 0, 1, 2, undefined, 0, 0), { name: 'MessageTooLargeError' })
    assert.doesNotThrow(() => small.messageTo(producer, MSG_CALL, prefixBytes, 'é'.repeat(5), 0, 1, 2, undefined, 0, 0))
  }
})

test('ids stay bytes until read, and come back as decoded (never a string whose char codes only look like the bytes)', () => {
  const { producer, consumer } = ring()
  const writer = new FrameWriter(1 << 14)
  // the same hash on purpose (a collision): "é" is the bytes C3 A9, the char codes of "Ã©"
  const ids = ['Ã©', 'é', 'default\u001fcounter\u001fk7', 'default\u001fcounter\u001fk7']
  for (const id of ids) writer.message(producer, MSG_CALL, id, null, 99, 1, 2, 0, 3, 1)
  producer.publish()
  const reader = new FrameReader(1 << 16)
  const bytes = consumer.copyOut(reader.scratch, 1 << 16)
  const seen: string[] = []
  const raw: string[] = []
  forEachFrame(reader.i32, bytes, (o, len) => {
    const env = reader.message(o, len)
    // the frame's bytes, not yet a string: what the runtime's table looks a resident agent up by
    assert.ok(env.idBytes !== null)
    raw.push(Buffer.from(env.idBytes.subarray(env.idAt, env.idAt + env.idLen)).toString('utf8'))
    seen.push(env.id)
    assert.ok(env.idBytes !== null, 'reading the id keeps the bytes for the lookup')
    assert.equal(env.clone().idBytes, null, 'a clone (a mailbox) holds the string: it outlives the frame')
    assert.equal(env.clone().id, env.id)
  })
  assert.deepEqual(seen, ids)
  assert.deepEqual(raw, ids)
})
