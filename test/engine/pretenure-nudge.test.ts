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
import { minorGcNow } from '../../src/thread/pretenure-nudge.ts'

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
