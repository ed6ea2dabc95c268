/**
 * Replication's binary frames on their own (plugins/cluster/replication/segment-frames.ts):
 * segments and acknowledgements round-trip, payloads are cut at the frame limit between
 * records, a segment read outlives the buffer it came in, and a malformed payload is
 * refused whole.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AckWriter, SegmentWriter, readAcks, readSegments, streamId } from '../../plugins/cluster/replication/segment-frames.ts'

const SHARDS = 4096

function payloads (w: { take (each: (p: Uint8Array) => void): void }): Buffer[] {
  const out: Buffer[] = []
  w.take((p) => out.push(Buffer.from(p)))
  return out
}

test('segments round-trip, cut between records at the payload limit', () => {
  const w = new SegmentWriter(100, 0xdeadbeef)
  w.add(5, 7, 1, new Uint8Array([1, 2, 3]))
  w.add(4095, 7, 2, new Uint8Array(60).fill(9))
  w.add(6, 8, 3, new Uint8Array(0), 65535)
  w.add(7, 8, 4, new Uint8Array(200).fill(4)) // larger than the limit: a payload of its own
  const out = payloads(w)
  assert.equal(out.length, 3)
  assert.ok(out[0]!.length <= 100 && out[1]!.length <= 100)
  const read = out.map((p) => readSegments(p, SHARDS)!)
  assert.ok(read.every((r) => r.nonce === 0xdeadbeef))
  assert.deepEqual(read.flatMap((r) => r.segments.map((s) => [s.shard, s.epoch, s.seq, s.segment.length, s.gen])), [
    [5, 7, 1, 3, 0], [4095, 7, 2, 60, 0], [6, 8, 3, 0, 65535], [7, 8, 4, 200, 0]
  ])
  assert.equal(streamId(0xdeadbeef, 7), `${(0xdeadbeef).toString(36)}.7`)
  assert.equal(streamId(0xdeadbeef, 7, 2), `${(0xdeadbeef).toString(36)}.7.2`, 'a stream started over has an id of its own')
  assert.ok(w.empty, 'take empties the writer')
})

test('addRange writes a range of a journal as add writes the same bytes, short or long', () => {
  const src = new Uint8Array(400)
  for (let i = 0; i < src.length; i++) src[i] = (i * 7) & 255
  const a = new SegmentWriter(1000, 9)
  const b = new SegmentWriter(1000, 9)
  for (const [start, end] of [[3, 40], [50, 50], [100, 380]] as const) { // copied by a loop, empty, by a view
    a.add(12, 4, start + 1, src.subarray(start, end), 2)
    b.addRange(12, 4, start + 1, src, start, end, 2)
  }
  const pa = payloads(a)
  const pb = payloads(b)
  assert.deepEqual(pb.map((p) => Buffer.from(p).toString('hex')), pa.map((p) => Buffer.from(p).toString('hex')))
  assert.deepEqual(readSegments(pb[0]!, SHARDS)!.segments.map((s) => [...s.segment]), [[...src.subarray(3, 40)], [], [...src.subarray(100, 380)]])
})

test('a segment read is a copy: the link may reuse its buffer at once', () => {
  const w = new SegmentWriter(1000, 1)
  w.add(3, 1, 1, new Uint8Array([10, 20, 30]))
  const [payload] = payloads(w)
  const read = readSegments(payload!, SHARDS)!
  payload!.fill(0)
  assert.deepEqual([...read.segments[0]!.segment], [10, 20, 30])
})

test('acknowledgements round-trip; malformed payloads are refused whole', () => {
  const a = new AckWriter(40)
  a.add(1, 0xffffffff, 3, 9)
  a.add(2, 5, 6, 7, 3)
  a.add(3, 1, 1, 1)
  const out = payloads(a)
  assert.equal(out.length, 2)
  const seen: number[][] = []
  for (const p of out) assert.equal(readAcks(p, SHARDS, (...e) => seen.push(e)), true)
  assert.deepEqual(seen, [[1, 0xffffffff, 3, 9, 0], [2, 5, 6, 7, 3], [3, 1, 1, 1, 0]])

  const none = (): void => assert.fail('nothing of a malformed payload is handed out')
  assert.equal(readAcks(out[0]!.subarray(0, 20), SHARDS, none), false, 'cut short')
  const badShard = Buffer.from(out[0]!)
  badShard.writeUInt16BE(SHARDS, 16)
  assert.equal(readAcks(badShard, SHARDS, none), false, 'a shard out of range')

  const w = new SegmentWriter(1000, 1)
  w.add(3, 1, 1, new Uint8Array(8))
  const [seg] = payloads(w)
  assert.equal(readSegments(seg!.subarray(0, seg!.length - 1), SHARDS), null, 'a segment cut short')
  assert.equal(readSegments(seg!.subarray(0, 2), SHARDS), null, 'no header')
  const bad = Buffer.from(seg!)
  bad.writeUInt32BE(0xffffffff, 4 + 12)
  assert.equal(readSegments(bad, SHARDS), null, 'a length past the end')
  assert.deepEqual(readSegments(seg!.subarray(0, 4), SHARDS)!.segments, [], 'a header alone is an empty frame')
})
