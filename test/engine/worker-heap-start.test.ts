/**
 * The engine's workers start with the heap of a mass activation
 * (src/host/worker-young-generation.ts engineWorkerHeap): the young generation at its
 * largest size — V8 pretenures the new cells only after a scavenge at that size — and an
 * old generation not marked below 256 MiB; the process-wide V8 flags that do it are set
 * only while the workers' isolates are created, so a Worker the application creates
 * afterwards starts as V8's default. Real child processes, real workers; the figures are
 * taken inside each thread (`v8.getHeapSpaceStatistics()`, a 'gc' PerformanceObserver).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runJsonChild } from '../helpers/json-child.ts'
import { engineWorkerHeap, initialOldSpaceFlag } from '../../src/host/worker-young-generation.ts'

interface Thread { newSpace: number, majors: number }
interface Report { workers: Thread[], appWorker: Thread }

const child = new URL('../fixtures/heap-start-child.js', import.meta.url)

function run (flags: readonly string[], args: readonly string[] = []): Promise<Report> {
  return runJsonChild<Report>(child, flags, args)
}

test('engine workers start with a full-size young generation and make no mark-compact below 256 MiB; the application\'s later Worker starts as V8\'s default', async () => {
  const r = await run([])
  for (const w of r.workers) {
    // committed at its largest from the start: V8 reports 16 MiB here (main's workers 8, after their first scavenges
    // grew it from V8's default start, which a fresh isolate reports as 2)
    assert.ok(w.newSpace >= 16, `an engine worker started with a ${w.newSpace} MiB new space`)
    assert.equal(w.majors, 0, 'an engine worker made a mark-compact while 40 MiB were allocated and kept')
  }
  // the flags were set back: V8's defaults, a small new space and a mark-compact for the same 40 MiB
  assert.ok(r.appWorker.newSpace < 8, `the application's worker started with a ${r.appWorker.newSpace} MiB new space`)
  assert.ok(r.appWorker.majors >= 1, 'the application\'s worker made no mark-compact: the initial old-space flag reached it')
})

test('with workerYoungGenerationMb the start is capped at the workers\' own maximum', async () => {
  // 12 MiB of young generation: 4 MiB semi-spaces
  const r = await run([], ['12'])
  for (const w of r.workers) assert.ok(w.newSpace <= 8, `an engine worker started with a ${w.newSpace} MiB new space, above its 12 MiB limit`)
})

test('the process\'s own flags come back for the application: a command-line --initial-old-space-size and --min-semi-space-size', async () => {
  const r = await run(['--initial-old-space-size=1024', '--min-semi-space-size=8'])
  for (const w of r.workers) assert.ok(w.newSpace >= 16 && w.majors === 0, JSON.stringify(w))
  // the application's worker: the command line's 8 MiB semi-spaces and 1 GiB initial limit, not the engine's or V8's
  assert.ok(r.appWorker.newSpace >= 8 && r.appWorker.newSpace < 16, `the application's worker started with a ${r.appWorker.newSpace} MiB new space`)
  assert.equal(r.appWorker.majors, 0)
})

test('engineWorkerHeap and initialOldSpaceFlag', () => {
  assert.deepEqual(engineWorkerHeap(null), { semiSpaceMb: 16, initialOldMb: 256 })
  assert.deepEqual(engineWorkerHeap(12), { semiSpaceMb: 4, initialOldMb: 256 })
  assert.deepEqual(engineWorkerHeap(3), { semiSpaceMb: 1, initialOldMb: 256 })
  assert.equal(initialOldSpaceFlag([], undefined), null)
  assert.equal(initialOldSpaceFlag(['--initial-old-space-size=64'], '--initial_old_space_size=8'), 64)
  assert.equal(initialOldSpaceFlag([], ' --initial_old_space_size=8 '), 8)
  assert.equal(initialOldSpaceFlag(['--initial-old-space-size=64', '--initial-old-space-size=0'], undefined), null)
  assert.equal(initialOldSpaceFlag(['--max-old-space-size=64', '--initial-heap-size=9'], undefined), null)
})
