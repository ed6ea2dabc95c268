/**
 * The link's parts on their own: the batch writer keeps the ring's frame layout and
 * never rewrites bytes a socket may still hold, batch framing checks, the handshake's
 * proofs bind everything they should, and the reconnect backoff is exact under an
 * injected random source.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BatchWriter, type BatchOutput } from '../../plugins/cluster/link/batch-writer.ts'
import { batchFrameCount } from '../../plugins/cluster/link/wire.ts'
import { newNonce, proof, proofMatches, sameHello, secretBytes } from '../../plugins/cluster/link/handshake.ts'
import { Backoff } from '../../plugins/cluster/link/backoff.ts'
import { forEachFrame } from '../../native-free-core/ring/ring-queue.ts'
import { LinkUnavailableError, MessageTooLargeError, InvalidOptionError } from '../../native-free-core/errors.ts'
import { prng } from '../fixtures/prng.ts'
import { writeFrames } from './link-helpers.ts'
import { patternByte } from '../fixtures/prng.ts'

/** A socket stand-in that records what it was given, as a copying (uWS) or a zero-copy (ws) socket. */
class Sink implements BatchOutput {
  readonly batches: Array<{ bytes: Buffer, frames: number, copy: Buffer }> = []
  writable = true
  readonly copiesOnSend: boolean
  constructor (copies: boolean) { this.copiesOnSend = copies }
  sendBatch (bytes: Buffer, frames: number): void {
    this.batches.push({ bytes, frames, copy: Buffer.from(bytes) })
  }
}

function writer (o: Partial<ConstructorParameters<typeof BatchWriter>[0]> = {}): { w: BatchWriter, calls: { pending: number, full: number } } {
  const calls = { pending: 0, full: 0 }
  const w = new BatchWriter({
    peer: 'p', flushBytes: 4096, sendBytes: 4096, maxBatchBytes: 64 * 1024, maxQueueBytes: 1024 * 1024,
    onPending: () => { calls.pending++ }, onFull: () => { calls.full++ }, ...o
  })
  return { w, calls }
}

function walk (batches: Array<{ bytes: Buffer }>): number[] {
  const seqs: number[] = []
  for (const { bytes } of batches) {
    const i32 = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2)
    assert.equal(batchFrameCount(i32, bytes.length) >= 1, true)
    forEachFrame(i32, bytes.length, (off, len) => {
      const seq = i32[off >> 2]!
      for (let i = 4; i < len; i++) assert.equal(bytes[off + i], patternByte(seq, i))
      seqs.push(seq)
    })
  }
  return seqs
}

test('batches keep the ring frame layout, seal at flushBytes, and ask for one flush per turn', () => {
  const { w, calls } = writer()
  writeFrames(w, 0, 10)
  assert.equal(calls.pending, 1, 'one flush request for many frames')
  assert.equal(calls.full, 0)
  writeFrames(w, 10, 200) // ~11 KiB: two batches reach 4 KiB on the way
  assert.equal(calls.pending, 1)
  assert.equal(calls.full, 2)
  const out = new Sink(true)
  assert.equal(w.drain(out), true)
  assert.equal(out.batches.length, 3)
  assert.ok(out.batches.slice(0, 2).every((b) => b.bytes.length >= 4096 && b.bytes.length < 4096 + 128))
  assert.deepEqual(walk(out.batches), Array.from({ length: 210 }, (_, i) => i))
  assert.equal(out.batches.reduce((n, b) => n + b.frames, 0), 210)
  assert.equal(w.queuedBytes, 0)
  writeFrames(w, 210, 1)
  assert.equal(calls.pending, 2, 'the next turn asks again')
  // sealed batches wait for the end of the turn until sendBytes of them are sealed
  const out2 = new Sink(false)
  let sends = 0
  const coalescing: BatchWriter = new BatchWriter({
    peer: 'p', flushBytes: 1024, sendBytes: 8 * 1024, maxBatchBytes: 64 * 1024, maxQueueBytes: 1024 * 1024,
    onPending: () => {}, onFull: () => { sends++; coalescing.drain(out2) }
  })
  writeFrames(coalescing, 0, 1_000, 100) // 10 frames (1,040 bytes) a batch: 8 batches a send
  assert.equal(sends, 12)
  assert.equal(out2.batches.length, 96)
  coalescing.drain(out2)
  assert.deepEqual(walk(out2.batches), Array.from({ length: 1_000 }, (_, i) => i))
})

test('a zero-copy socket never sees its bytes rewritten; a copying one lets the chunk be reused', () => {
  for (const copies of [false, true]) {
    const { w } = writer({ flushBytes: 1024, sendBytes: 1024 })
    const out = new Sink(copies)
    let seq = 0
    for (let turn = 0; turn < 50; turn++) {
      writeFrames(w, seq, 37, 100)
      seq += 37
      w.drain(out)
    }
    // what the socket was given at each send (a copying socket's bytes are rewritten later: that is the point)
    assert.deepEqual(walk(out.batches.map((b) => ({ bytes: b.copy }))), Array.from({ length: seq }, (_, i) => i))
    if (!copies) {
      for (const b of out.batches) assert.ok(b.bytes.equals(b.copy), 'a sent batch still holds what was sent')
    } else {
      const buffers = new Set(out.batches.map((b) => b.bytes.buffer))
      assert.equal(buffers.size, 1, 'one chunk, rewound after every drain')
    }
  }
})

test('backpressure keeps batches queued in order; the queue limit and the frame limit throw before writing', () => {
  const { w } = writer({ flushBytes: 1024, sendBytes: 1024, maxQueueBytes: 16 * 1024, maxBatchBytes: 8 * 1024 })
  const out = new Sink(false)
  out.writable = false
  writeFrames(w, 0, 100, 100)
  assert.equal(w.drain(out), false)
  assert.equal(out.batches.length, 0)
  assert.equal(w.queuedFrames, 100)
  let n = 100
  assert.throws(() => { for (;;) { writeFrames(w, n, 1, 100); n++ } }, (err: unknown) =>
    err instanceof LinkUnavailableError && err.retriable && (err.data as { reason: string }).reason === 'backlog')
  assert.equal(w.queuedBytes, n * 104)
  assert.ok(w.queuedBytes <= 16 * 1024)
  assert.throws(() => w.begin(8 * 1024), MessageTooLargeError)
  out.writable = true
  assert.equal(w.drain(out), true)
  assert.deepEqual(walk(out.batches), Array.from({ length: n }, (_, i) => i))
  writeFrames(w, n, 5, 100)
  assert.deepEqual(w.drop(), { frames: 5, bytes: 5 * 104 })
  assert.equal(w.queuedFrames, 0)
  w.close('disconnected')
  assert.throws(() => w.begin(4), LinkUnavailableError)
})

test('batch framing: frame counts, and every way lengths can fail to tile the message', () => {
  const ok = new Int32Array([5, 0x01020304, 0x05, 0, 8, 1, 2])
  assert.equal(batchFrameCount(ok, 28), 3)
  assert.equal(batchFrameCount(new Int32Array([0]), 4), 1)
  assert.equal(batchFrameCount(ok, 27), -1, 'not a multiple of 4')
  assert.equal(batchFrameCount(new Int32Array([9, 0, 0]), 12), -1, 'past the end')
  assert.equal(batchFrameCount(new Int32Array([4, 0, -8, 0]), 16), -1, 'negative')
  assert.equal(batchFrameCount(new Int32Array([0x7fffffff, 0]), 8), -1, 'huge')
})

test('a proof binds the role, both ids and both nonces; proofs compare only as 32 bytes', () => {
  const key = secretBytes('k'.repeat(32))
  const n1 = newNonce()
  const n2 = newNonce()
  const base = proof(key, 'dialer', 'a', 'b', n1, n2)
  assert.ok(proofMatches(base, proof(key, 'dialer', 'a', 'b', n1, n2)))
  for (const other of [
    proof(key, 'acceptor', 'a', 'b', n1, n2),
    proof(key, 'dialer', 'b', 'a', n1, n2),
    proof(key, 'dialer', 'a', 'c', n1, n2),
    proof(key, 'dialer', 'ab', '', n1, n2), // length prefixes: no shifting bytes between fields
    proof(key, 'dialer', 'a', 'b', n2, n1),
    proof(secretBytes('j'.repeat(32)), 'dialer', 'a', 'b', n1, n2)
  ]) assert.equal(proofMatches(base, other), false)
  assert.equal(proofMatches(base, base.subarray(0, 16)), false)
  assert.equal(proofMatches(base, 'x'.repeat(32)), false)
  assert.equal(proofMatches(base, undefined), false)
  assert.throws(() => secretBytes('short'), InvalidOptionError)
  assert.throws(() => secretBytes(undefined), InvalidOptionError)
  const check = sameHello({ cluster: 'c', registry: [1, 2] })
  assert.equal(check({ id: 'x', hello: { cluster: 'c', registry: [1, 2], newer: true } }), undefined)
  assert.match(check({ id: 'x', hello: { cluster: 'c', registry: [1, 3] } }) ?? '', /hello.registry differs/)
})

test('backoff doubles to its cap with equal jitter, exactly as the injected random says', () => {
  const low = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2, random: () => 0 })
  assert.deepEqual(Array.from({ length: 7 }, () => low.next()), [50, 100, 200, 400, 500, 500, 500])
  low.reset()
  assert.equal(low.next(), 50)
  const high = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2, random: () => 0.999999 })
  assert.deepEqual(Array.from({ length: 6 }, () => high.next()), [100, 200, 400, 800, 1_000, 1_000])
  const a = new Backoff({ initialMs: 10, maxMs: 5_000, factor: 2, random: prng(3) })
  const b = new Backoff({ initialMs: 10, maxMs: 5_000, factor: 2, random: prng(3) })
  const seqA = Array.from({ length: 12 }, () => a.next())
  assert.deepEqual(seqA, Array.from({ length: 12 }, () => b.next()), 'same seed, same delays')
  seqA.forEach((d, i) => { const ceiling = Math.min(5_000, 10 * 2 ** i); assert.ok(d >= ceiling / 2 && d <= ceiling, `${d} in [${ceiling / 2}, ${ceiling}]`) })
})
