/**
 * Code that reads and writes ring frames, and the table's home-slot hint, stay optimized
 * through the rare cases they meet long after TurboFan compiled them: the ring's wrap
 * (a skip marker, once per lap) and a home slot that holds the agent looked for. An
 * operation that never ran before its function was optimized has no type feedback, and
 * its first run deoptimizes the function (`--trace-deopt`: "Insufficient type feedback";
 * in the 1M activation bench, every ring's first wrap threw away the workers' optimized
 * `dispatch` and `touchAhead` and the main thread's frame writer, which were compiled
 * again — ring-queue.ts `frameSpan`, bench/RESULTS.md).
 *
 * V8's own test intrinsics (`%OptimizeFunctionOnNextCall`, `%GetOptimizationStatus`) force
 * the optimization and read whether the code is still optimized; the status bits are
 * V8's (kOptimized = 1 << 4), stable across the Node versions the engine supports.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { Doorbell } from '../../native-free-core/ring/doorbell.ts'
import { RingConsumer, RingProducer, createRing, forEachFrame, frameSpan } from '../../native-free-core/ring/ring-queue.ts'
import { AgentTable } from '../../native-free-core/runtime/agent-table.ts'

setFlagsFromString('--allow-natives-syntax')
// eslint-disable-next-line @typescript-eslint/no-implied-eval, no-new-func
const prepare = new Function('f', '%PrepareFunctionForOptimization(f)') as (f: unknown) => void
// eslint-disable-next-line @typescript-eslint/no-implied-eval, no-new-func
const optimizeNext = new Function('f', '%OptimizeFunctionOnNextCall(f)') as (f: unknown) => void
// eslint-disable-next-line @typescript-eslint/no-implied-eval, no-new-func
const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number
const kOptimized = 1 << 4

test('frameSpan: a frame takes its length word and its payload padded to 4; a skip marker what it covers', () => {
  assert.equal(frameSpan(0), 4)
  assert.equal(frameSpan(1), 8)
  assert.equal(frameSpan(4), 8)
  assert.equal(frameSpan(5), 12)
  assert.equal(frameSpan(4093), 4100)
  assert.equal(frameSpan(-4), 4)
  assert.equal(frameSpan(-64), 64)
  assert.equal(frameSpan(-(1 << 30)), 1 << 30)
})

test('a frame walk optimized before any skip marker stays optimized at one', () => {
  // frames of 4 bytes (their index), then the same with a skip marker of 16 bytes after two frames
  const plain = new Int32Array([4, 0, 4, 1, 4, 2, 4, 3])
  const marked = new Int32Array([4, 0, 4, 1, -16, 0, 0, 0, 4, 2, 4, 3])
  let got: number[] = []
  const onFrame = (o: number): void => { got.push(o) }
  const walk = (buf: Int32Array): number[] => {
    got = []
    forEachFrame(buf, buf.byteLength, onFrame)
    return got
  }
  prepare(forEachFrame)
  for (let i = 0; i < 10; i++) walk(plain)
  optimizeNext(forEachFrame)
  assert.deepEqual(walk(plain), [4, 12, 20, 28])
  assert.ok((status(forEachFrame) & kOptimized) !== 0, 'optimized')
  assert.deepEqual(walk(marked), [4, 12, 36, 44], 'the frames around the marker, the marker skipped')
  assert.ok((status(forEachFrame) & kOptimized) !== 0, `still optimized after the marker (status ${status(forEachFrame).toString(2)})`)
})

test('a frame writer optimized before the ring wrapped stays optimized through the wrap', () => {
  const ring = createRing(4096)
  const producer = new RingProducer(ring, Doorbell.create())
  const consumer = new RingConsumer(ring, Doorbell.create())
  const dst = new Uint8Array(4096)
  const dst32 = new Int32Array(dst.buffer)
  let seq = 0
  let expect = 0
  const write = (): void => {
    const o = producer.begin(100)
    producer.target.i32[o >> 2] = seq++
    producer.end(100)
  }
  const read = (): void => {
    producer.publish()
    const n = consumer.copyOut(dst, 4096)
    forEachFrame(dst32, n, (o, len) => {
      assert.equal(len, 100)
      assert.equal(dst32[o >> 2], expect++)
    })
  }
  const begin = RingProducer.prototype.begin
  prepare(begin)
  for (let i = 0; i < 20; i++) { write(); read() } // 20 × 104 B: no wrap yet (capacity 4096)
  optimizeNext(begin)
  write()
  read()
  assert.ok((status(begin) & kOptimized) !== 0, 'optimized')
  for (let i = 0; i < 100; i++) { write(); read() } // two more laps: the ring wraps twice
  assert.equal(expect, 121)
  assert.ok((status(begin) & kOptimized) !== 0, `still optimized after the wraps (status ${status(begin).toString(2)})`)
})

test('the home-slot hint optimized on misses stays optimized when the slot holds the agent', () => {
  const table = new AgentTable<{ idRef: number, hash: number }>(1024)
  const cells = []
  for (let h = 1; h <= 500; h++) {
    const cell = { idRef: h, hash: h }
    table.add(h, cell)
    cells.push(cell)
  }
  // a miss on an occupied home slot: a hash that is not in the table
  const misses: number[] = []
  for (let h = 1000; misses.length < 50; h++) if (table.homeCell(h) === undefined) misses.push(h)
  const homeCell = AgentTable.prototype.homeCell
  prepare(homeCell)
  for (let i = 0; i < 10; i++) for (const h of misses) assert.equal(table.homeCell(h), undefined)
  optimizeNext(homeCell)
  assert.equal(table.homeCell(misses[0]!), undefined)
  assert.ok((status(homeCell) & kOptimized) !== 0, 'optimized')
  const hit = cells.find((c) => table.homeCell(c.hash) === c)
  assert.ok(hit !== undefined, 'some cell sits in its home slot')
  assert.ok((status(homeCell) & kOptimized) !== 0, `still optimized after a hit (status ${status(homeCell).toString(2)})`)
})
