/**
 * The early minor GC of a worker's first mass activation (src/thread/pretenure-nudge.ts):
 * it runs a scavenge of this thread, and leaves no `gc` behind — neither in this
 * context nor in contexts created afterwards — when the process was not started with
 * --expose-gc.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PerformanceObserver } from 'node:perf_hooks'
import { runInNewContext } from 'node:vm'
import { minorGcNow, startedWithExposeGc } from '../../src/thread/pretenure-nudge.ts'

test('minorGcNow makes one scavenge and exposes no gc', async () => {
  const exposed = process.execArgv.some((a) => /^--expose[-_]gc$/.test(a))
  let minors = 0
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) minors++
  })
  obs.observe({ entryTypes: ['gc'] })
  assert.equal(minorGcNow(), true)
  assert.equal(minorGcNow(), true)
  await new Promise((resolve) => setTimeout(resolve, 20))
  obs.disconnect()
  assert.ok(minors >= 2, `scavenges seen: ${minors}`)
  if (!exposed) {
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined')
    assert.equal(runInNewContext('typeof gc'), 'undefined')
  }
})

test('--expose-gc from NODE_OPTIONS stays on after the minor GC (a context made afterwards still has gc)', async () => {
  const { spawnSync } = await import('node:child_process')
  const moduleUrl = new URL('../../src/thread/pretenure-nudge.js', import.meta.url).href
  const script = `const m = await import(${JSON.stringify(moduleUrl)}); const vm = await import('node:vm');` +
    `if (!m.minorGcNow()) throw new Error('no minor gc'); console.log(vm.runInNewContext('typeof gc'))`
  const run = (nodeOptions: string): string => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    return r.stdout.trim()
  }
  assert.equal(run('--expose-gc'), 'function')
  assert.equal(run(''), 'undefined')
})

test('startedWithExposeGc reads the command line and NODE_OPTIONS, in either spelling', () => {
  assert.equal(startedWithExposeGc([], undefined), false)
  assert.equal(startedWithExposeGc(['--expose-gc'], undefined), true)
  assert.equal(startedWithExposeGc([], '--max-old-space-size=100 --expose_gc'), true)
  assert.equal(startedWithExposeGc(['--expose-gc-x'], '--no-expose-gc'), false)
})
