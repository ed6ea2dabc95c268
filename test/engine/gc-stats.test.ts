/**
 * host.stats() reports each thread's garbage-collection pauses (a PerformanceObserver
 * for 'gc' per thread, observe/gc-pauses.ts): a worker whose agent allocates millions of
 * short-lived objects pauses for scavenges, and only that worker's figures move;
 * host.metrics() exports the same figures per thread.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { keyOn, startHost } from './helpers.ts'
import type { Host } from '../../src/index.ts'

function worker (host: Host, thread: number) {
  return host.stats().workers.find((w) => w.thread === thread)!
}

/** Poll until `ready` holds: the observer reports a pause as its own task, after the pass that paused. */
async function until (ready: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!ready()) {
    assert.ok(Date.now() < deadline, 'the figure never moved')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('stats report each thread\'s GC pauses: count, total and longest', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const before = worker(host, 2)
    await host.ref('churn', keyOn(1, 'churn')).call('churn', 3_000_000)
    // 3M objects with their strings fill the young generation many times over; the observer
    // reports them a few at a time, so wait for more than the first (an idle worker may
    // itself pause once meanwhile — a CI run read worker 1 at 1 pause, worker 2 also at 1)
    await until(() => worker(host, 1).gcPauses >= 3)
    const w1 = worker(host, 1)
    assert.ok(w1.gcPauseMaxMs > 0, 'a pause has a duration')
    assert.ok(w1.gcPauseTotalMs >= w1.gcPauseMaxMs, 'the total holds the longest')

    // the other worker allocated nothing of the sort
    const w2 = worker(host, 2)
    assert.ok(w2.gcPauses - before.gcPauses < w1.gcPauses, `worker 2 paused ${w2.gcPauses} times, worker 1 ${w1.gcPauses}`)

    // the main thread has its own observer
    const main0 = host.stats().mainGc.gcPauses
    let live: unknown[] = []
    for (let i = 0; i < 3_000_000; i++) {
      live.push({ i })
      if (live.length === 4096) live = []
    }
    await until(() => host.stats().mainGc.gcPauses > main0)
    const main = host.stats().mainGc
    assert.ok(main.gcPauseTotalMs >= main.gcPauseMaxMs && main.gcPauseMaxMs > 0)

    // and host.metrics() exports them per thread, the main thread as thread 0
    const text = await host.metrics()
    const count = (thread: number): number => Number(new RegExp(`^shoal_gc_pauses_total\\{thread="${thread}"\\} (\\S+)$`, 'm').exec(text)?.[1])
    assert.ok(count(1) >= w1.gcPauses, text)
    assert.ok(count(0) >= main.gcPauses)
    assert.match(text, /^shoal_gc_pause_max_seconds\{thread="1"\} [0-9.e-]+$/m)
  } finally {
    await host.close()
  }
})

test('workerYoungGenerationMb sets the young generation limit of every worker, and only theirs', async () => {
  type Limits = { maxYoungGenerationSizeMb?: number }
  const plain = await startHost({ workers: 2 })
  let v8Default: number | undefined
  try {
    v8Default = (await plain.ref('probe', keyOn(1, 'probe')).call('limits') as Limits).maxYoungGenerationSizeMb
    assert.ok(typeof v8Default === 'number' && v8Default > 0, `a worker reports its limit (${String(v8Default)})`)
  } finally {
    await plain.close()
  }
  const mb = v8Default === 12 ? 24 : 12
  const host = await startHost({ workers: 2, workerYoungGenerationMb: mb })
  try {
    for (const t of [1, 2]) {
      const limits = await host.ref('probe', keyOn(t, 'probe')).call('limits') as Limits
      assert.equal(limits.maxYoungGenerationSizeMb, mb, `worker ${t}`)
    }
  } finally {
    await host.close()
  }
})
