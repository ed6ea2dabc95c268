/**
 * Time on real worker threads: ctx.timeout, idle passivation and the host clock. Every
 * test but the last two runs the manual clock (`host.advance` resolves once each thread
 * has processed the ticks), so nothing here waits on wall time to check timer logic.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { agentsUrl, keyOn, startHost } from './helpers.ts'
import type { Host, WorkerRestartEvent } from '../../src/index.ts'

const fired = (host: Host, key: string): Promise<number[]> => host.ref('timed', key).call('fired') as Promise<number[]>

for (const workers of [2, 0]) {
  test(`workers: ${workers} — ctx.timeout fires exactly at its tick; one advance catches up a periodic timer`, async () => {
    const host = await startHost({ workers, clock: 'manual' })
    try {
      const a = workers === 0 ? 'a' : keyOn(1, 'timed', 'a')
      const b = workers === 0 ? 'b' : keyOn(2, 'timed', 'b')
      assert.equal(await host.ref('timed', a).call('arm', { ticks: 5 }), 0)
      await host.ref('timed', b).call('arm', { ticks: 3, period: 4, left: 5 })
      await host.advance(4)
      assert.equal(host.tick, 4)
      assert.deepEqual(await fired(host, a), [])
      assert.deepEqual(await fired(host, b), [3])
      await host.advance(1)
      assert.deepEqual(await fired(host, a), [5])
      await host.advance(100)
      assert.deepEqual(await fired(host, a), [5], 'once')
      assert.deepEqual(await fired(host, b), [3, 7, 11, 15, 19, 23], 'every 4 ticks, each at its own tick, 5 re-arms')
      assert.equal(host.stats().workers.reduce((n, w) => n + w.timers, 0), 0)
    } finally {
      await host.close()
    }
  })
}

test('a timeout\'s ctx.send, across workers, has been delivered when advance resolves', async () => {
  const host = await startHost({ workers: 2, clock: 'manual' })
  try {
    const report = { type: 'recorder', key: keyOn(2, 'recorder', 'r') }
    const due = new Map<string, number>()
    for (let i = 0; i < 20; i++) {
      const key = keyOn(1, 'timed', 't', 2, i)
      due.set(key, 1 + (i % 3))
      await host.ref('timed', key).call('arm', { ticks: due.get(key)!, report })
    }
    await host.advance(3)
    const seen = await host.ref('recorder', report.key).call('seen') as Array<[string, number]>
    assert.equal(seen.length, 20)
    for (const [key, tick] of seen) assert.equal(tick, due.get(key), key)
    assert.deepEqual(seen.map(([, t]) => t), seen.map(([, t]) => t).sort((x, y) => x - y), 'in tick order')
  } finally {
    await host.close()
  }
})

test('idleTicks passivates agents that got no message; durable state comes back, memory-only state does not', async () => {
  const host = await startHost({ workers: 2, clock: 'manual' })
  try {
    for (let i = 0; i < 1_000; i++) host.ref('sleepy', `s${i}`).cast('add', i)
    for (let i = 0; i < 10; i++) host.ref('sleepyScratch', `m${i}`).cast('add', 5)
    // every cast has run on both workers before the clock moves: a cast still queued on the
    // slower worker would run at a later tick and keep its agent past tick 3
    const all = await Promise.all([
      ...Array.from({ length: 1_000 }, (_, i) => host.ref('sleepy', `s${i}`).call('get')),
      ...Array.from({ length: 10 }, (_, i) => host.ref('sleepyScratch', `m${i}`).call('get'))])
    assert.equal(all[999], 999)
    await host.advance(2)
    assert.equal(host.stats().activeAgents, 1_010)
    await host.ref('sleepy', 's7').call('add', 0) // a message at tick 2: s7 stays until tick 5
    await host.advance(1)
    const stats = host.stats()
    assert.equal(stats.activeAgents, 1, 'only s7 is left')
    assert.equal(stats.workers.reduce((n, w) => n + w.timers, 0), 1)
    await host.advance(2)
    assert.equal(host.stats().activeAgents, 0)
    assert.equal(await host.ref('sleepy', 's500').call('get'), 500, 'committed before passivation, reloaded')
    assert.equal(await host.ref('sleepyScratch', 'm3').call('get'), 0, 'durable: false keeps nothing')
  } finally {
    await host.close()
  }
})

test('ctx.idleAfter passivates an agent of a type without idleTicks; a pending timer defers it', async () => {
  const host = await startHost({ workers: 2, clock: 'manual' })
  try {
    await host.ref('timed', 'x').call('idle', 2)
    await host.ref('timed', 'y').call('idle', 2)
    await host.ref('timed', 'y').call('arm', { ticks: 6 })
    await host.advance(2)
    assert.equal(host.stats().activeAgents, 1, 'x passivated, y waits for its timer')
    await host.advance(4)
    assert.deepEqual(await fired(host, 'y'), [6])
    // the fired query above was a message at tick 6: y goes at 6 + 2
    await host.advance(2)
    assert.equal(host.stats().activeAgents, 0)
  } finally {
    await host.close()
  }
})

test('a parked worker wakes for a tick only when it has timers due', async () => {
  const host = await startHost({ workers: 2, clock: 'manual' })
  try {
    const due = keyOn(2, 'timed', 'due')
    await host.ref('timed', due).call('arm', { ticks: 60 })
    await host.ref('counter', keyOn(1, 'counter')).call('add', 1)
    await host.advance(0) // a barrier: both workers parked, their last pass counted
    const before = host.stats().workers.map((w) => w.passes)
    for (let i = 0; i < 100; i++) await host.advance(1)
    const after = host.stats().workers.map((w) => w.passes)
    assert.equal(after[0]! - before[0]!, 0, 'worker 1 has no timers: never woken')
    // worker 2: a cascade at tick 32 (level 1 → 0), the firing at 60
    assert.ok(after[1]! - before[1]! <= 4, `worker 2 ran ${after[1]! - before[1]!} passes for 100 ticks`)
    assert.deepEqual(await fired(host, due), [60])
  } finally {
    await host.close()
  }
})

test('after a worker restart, the timers of its agents are gone with their cells; the other worker\'s fire', async () => {
  const host = await startHost({ workers: 2, clock: 'manual' })
  try {
    const lost = keyOn(1, 'timed', 'lost')
    const kept = keyOn(2, 'timed', 'kept')
    await host.ref('timed', lost).call('arm', { ticks: 10 })
    await host.ref('timed', kept).call('arm', { ticks: 10 })
    const restarted = once(host, 'worker-restart') as Promise<[WorkerRestartEvent]>
    await assert.rejects(host.ref('crasher', keyOn(1, 'crasher')).call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    await restarted
    assert.equal(await host.ref('crasher', keyOn(1, 'crasher')).call('ping'), 'pong', 'the new worker serves')
    await host.advance(10)
    assert.deepEqual(await fired(host, kept), [10])
    assert.deepEqual(await fired(host, lost), [], 'a fresh activation: no timer, no state')
  } finally {
    await host.close()
  }
})

test('bad clock input: InvalidOptionError names the option; host.advance refuses bad ticks, the real clock and a closed host', async () => {
  for (const clock of ['fast', 1, null, 'MANUAL']) {
    await assert.rejects(startHost({ workers: 0, clock: clock as 'manual' }), (err: unknown) => {
      const e = err as { code: string, message: string, data: { option: string } }
      assert.equal(e.code, 'SHOAL_ERR_INVALID_OPTION')
      assert.equal(e.data.option, 'clock')
      assert.match(e.message, /options\.clock must be 'real' .* or 'manual'/)
      return true
    })
  }
  const real = await startHost({ workers: 0 })
  try {
    await assert.rejects(real.advance(1), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /clock: 'manual'/ })
  } finally {
    await real.close()
  }
  const manual = await startHost({ workers: 0, clock: 'manual' })
  for (const bad of [-1, 1.5, Number.NaN, '2', 2 ** 41]) {
    await assert.rejects(manual.advance(bad as number), { code: 'SHOAL_ERR_INVALID_ARGUMENT' }, String(bad))
  }
  await manual.advance(0)
  assert.equal(manual.tick, 0)
  await manual.close()
  await assert.rejects(manual.advance(1), { code: 'SHOAL_ERR_HOST_CLOSED' })
})

test('the real clock ticks every tickMs and wakes a parked worker for its timer (no timing asserted)', async () => {
  const host = await startHost({ workers: 1, tickMs: 2 })
  try {
    const startTick = await host.ref('timed', 'r').call('arm', { ticks: 3 }) as number
    // wait for the event itself, however long the shared machine takes
    let got: number[] = []
    while (got.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 5))
      got = await fired(host, 'r')
    }
    assert.deepEqual(got, [startTick + 3], 'fired at its deadline tick')
    assert.ok(host.tick >= startTick + 3)
  } finally {
    await host.close()
  }
})

test('the clock does not keep the process alive past close()', () => {
  const script = `
    import { createHost } from ${JSON.stringify(new URL('../../src/index.js', import.meta.url).href)}
    for (const workers of [0, 1]) {
      const host = await createHost({ agents: ${JSON.stringify(agentsUrl.href)}, workers, tickMs: 1 })
      await host.ref('timed', 'k').call('arm', { ticks: 1000000 })
      await host.close()
    }
    console.log('closed')`
  const dir = mkdtempSync(join(tmpdir(), 'shoal-clock-'))
  const file = join(dir, 'close.mjs')
  writeFileSync(file, script)
  // if a tick interval (or anything else) were left running, the child would never exit
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 })
  rmSync(dir, { recursive: true, force: true })
  assert.equal(r.error, undefined, String(r.error))
  assert.equal(r.stderr, '')
  assert.equal(r.stdout.trim(), 'closed')
  assert.equal(r.status, 0)
})
