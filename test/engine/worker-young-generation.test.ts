/**
 * The engine's workers keep their own young generation whatever the process's V8 flags
 * say (src/host/worker-young-generation.ts): a host process started with
 * `--min-semi-space-size=64 --max-semi-space-size=64` gives its main thread a 64 MiB
 * semi-space, while every engine worker — a replacement of one that died too — gets V8's
 * default (or `workerYoungGenerationMb`), and the isolates the application creates after
 * the host started get the process's flags again. Real child processes, real workers;
 * sizes are V8's new space (two semi-spaces) as `v8.getHeapSpaceStatistics()` reports it
 * inside each thread.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runJsonChild } from '../helpers/json-child.ts'
import { semiSpaceFlags } from '../../src/host/worker-young-generation.ts'

interface Sizes { now: number, max: number }
interface Report { main: number, mainAfter: number, workers: Sizes[], replaced: Sizes, appWorker: Sizes }

const child = new URL('../fixtures/young-gen-child.js', import.meta.url)

function run (flags: readonly string[], args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Report> {
  return runJsonChild<Report>(child, flags, args, env)
}

// V8 on a 64-bit build: a semi-space grows from 1 MiB by survival up to 16 MiB unless
// the isolate's limits or the flags say otherwise; the new space is two of them
const kDefaultMaxNewSpaceMb = 32

test('with --min/max-semi-space-size=64 the main thread has 64 MiB semi-spaces, every engine worker V8\'s default', async () => {
  const r = await run(['--min-semi-space-size=64', '--max-semi-space-size=64'])
  assert.ok(r.main >= 64 && r.mainAfter >= 64, `main thread: ${r.main} / ${r.mainAfter} MiB`)
  for (const w of [...r.workers, r.replaced]) {
    assert.ok(w.now < 64, `a worker started with a ${w.now} MiB new space: the process's minimum reached it`)
    assert.ok(w.max <= kDefaultMaxNewSpaceMb, `a worker's new space grew to ${w.max} MiB: the process's maximum reached it`)
  }
  // the application's own worker, created after the host started, has the process's flags
  assert.ok(r.appWorker.now >= 64, `the application's worker: ${r.appWorker.now} MiB`)
})

test('workerYoungGenerationMb sizes the workers even when the process sets the semi-space flags', async () => {
  // 12 MiB of young generation: 4 MiB semi-spaces (V8 counts three of them)
  const r = await run(['--min-semi-space-size=64', '--max-semi-space-size=64'], ['12'])
  assert.ok(r.main >= 64)
  for (const w of [...r.workers, r.replaced]) assert.ok(w.max <= 8, `a worker's new space grew to ${w.max} MiB, above its 12 MiB limit`)
  assert.ok(r.appWorker.now >= 64)
})

test('a maximum given in NODE_OPTIONS does not reach the workers, and is set back for the application\'s isolates', async () => {
  const r = await run([], [], { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=64`.trim() })
  for (const w of [...r.workers, r.replaced]) assert.ok(w.max <= kDefaultMaxNewSpaceMb, `a worker's new space grew to ${w.max} MiB`)
  assert.ok(r.appWorker.max > kDefaultMaxNewSpaceMb, `the application's worker grew to ${r.appWorker.max} MiB only`)
})

test('semiSpaceFlags reads the process\'s semi-space flags as V8 does: last wins, the command line after NODE_OPTIONS', () => {
  assert.deepEqual(semiSpaceFlags([], undefined), { min: null, max: null })
  assert.deepEqual(semiSpaceFlags(['--max-semi-space-size=64', '--min_semi_space_size=32'], undefined), { min: 32, max: 64 })
  assert.deepEqual(semiSpaceFlags(['--max-semi-space-size=64'], '--max-semi-space-size=8 --trace-gc'), { min: null, max: 64 })
  assert.deepEqual(semiSpaceFlags([], '  --max_semi_space_size=8  '), { min: null, max: 8 })
  assert.deepEqual(semiSpaceFlags(['--max-semi-space-size=64', '--max-semi-space-size=0'], undefined), { min: null, max: null })
  // not the flag: other sizes, a value apart, the old generation's
  assert.deepEqual(semiSpaceFlags(['--max-old-space-size=64', '--semi-space-growth-factor=4', '--max-semi-space-size'], '--max-semi-space-sizes=3'), { min: null, max: null })
})
