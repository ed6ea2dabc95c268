/**
 * host.quotas on real worker threads: the API and its bad input, unknown quotas,
 * QuotaExceededError for new agents only, counts that follow creations and deletions on
 * both workers, the soft limit's bound under concurrent creations on two workers, and
 * counts after a worker restart.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { QuotaExceededError } from '../../src/index.ts'
import { keyOn, startHost } from './helpers.ts'

/** The first key `${prefix}${i}` of a `followed` agent of quota `quota` that lands on worker `thread` (2 workers). */
function keyIn (quota: string, thread: number, prefix: string, skip = 0): string {
  return keyOn(thread, 'followed', prefix, 2, skip, quota)
}

test('quotas: set, get, list, delete, and their bad input', async () => {
  const host = await startHost({ workers: 2 })
  try {
    assert.deepEqual(host.quotas.list(), [{ quota: 'default', limit: Infinity, count: 0 }])
    assert.equal(host.quotas.get('tenant-a'), undefined)
    await host.quotas.set('tenant-a', 2)
    await host.quotas.set('tenant-b', 0)
    await host.quotas.set('tenant-a', 3) // a change
    assert.deepEqual(host.quotas.get('tenant-a'), { quota: 'tenant-a', limit: 3, count: 0 })
    assert.deepEqual(host.quotas.list().map((q) => [q.quota, q.limit]), [['default', Infinity], ['tenant-a', 3], ['tenant-b', 0]])
    assert.equal(await host.quotas.delete('tenant-b'), true)
    assert.equal(await host.quotas.delete('tenant-b'), false)
    assert.equal(host.quotas.get('tenant-b'), undefined)

    await assert.rejects(host.quotas.set('tenant-a', -1), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await assert.rejects(host.quotas.set('tenant-a', 1.5), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await assert.rejects(host.quotas.set('tenant-a', Number.NaN), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await assert.rejects(host.quotas.delete('default'), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await assert.rejects(host.quotas.set('bad name!', 1), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await assert.rejects(host.quotas.delete(42 as unknown as string), { code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    assert.equal(host.quotas.get('tenant-a')!.limit, 3, 'refused changes changed nothing')
  } finally {
    await host.close()
  }
})

test('agents in a missing quota get UnknownQuotaError; in a full one, new agents get QuotaExceededError', async () => {
  const host = await startHost({ workers: 2 })
  try {
    assert.throws(() => host.ref('followed', 'k', { quota: 'tenant-a' }), { code: 'SHOAL_ERR_UNKNOWN_QUOTA' })
    await host.quotas.set('tenant-a', 3)
    const refs = [keyIn('tenant-a', 1, 'a'), keyIn('tenant-a', 2, 'b'), keyIn('tenant-a', 1, 'c')].map((k) => host.ref('followed', k, { quota: 'tenant-a' }))
    for (const r of refs) assert.equal(await r.call('add', 1), 1)
    assert.equal(host.quotas.get('tenant-a')!.count, 3)
    const fourth = host.ref('followed', keyIn('tenant-a', 2, 'd'), { quota: 'tenant-a' })
    const err = await fourth.call('add', 1).then(() => null, (e: unknown) => e)
    assert.ok(err instanceof QuotaExceededError, String(err))
    assert.equal(err.retriable, false)
    assert.deepEqual(err.data, { quota: 'tenant-a', limit: 3, count: 3 })
    // existing agents are never blocked, even under a lower limit
    await host.quotas.set('tenant-a', 1)
    for (const r of refs) assert.equal(await r.call('add', 1), 2)
    // a deletion frees a unit: with the limit back at 3 the new agent fits
    await refs[0]!.call('remove')
    assert.equal(host.quotas.get('tenant-a')!.count, 2)
    await host.quotas.set('tenant-a', 3)
    assert.equal(await fourth.call('add', 5), 5)
    assert.equal(host.quotas.get('tenant-a')!.count, 3)
    // the default quota is not involved
    assert.equal(await host.ref('followed', 'free').call('add', 1), 1)
    // a deleted quota: refs made before fail too
    await host.quotas.delete('tenant-a')
    await assert.rejects(refs[1]!.call('get'), { code: 'SHOAL_ERR_UNKNOWN_QUOTA' })
    assert.throws(() => refs[1]!.cast('add', 1), { code: 'SHOAL_ERR_UNKNOWN_QUOTA' })
    assert.throws(() => refs[1]!.follow(), { code: 'SHOAL_ERR_UNKNOWN_QUOTA' })
    // recreated under the same name, it starts from the agents it still has
    await host.quotas.set('tenant-a', 10)
    assert.equal(host.quotas.get('tenant-a')!.count, 3)
    const text = await host.metrics()
    assert.match(text, /^shoal_quota_agents\{quota="tenant-a"\} 3$/m)
    assert.match(text, /^shoal_quota_limit\{quota="tenant-a"\} 10$/m)
  } finally {
    await host.close()
  }
})

test('concurrent creations on two workers overshoot the limit by at most one (workers − 1)', async () => {
  const host = await startHost({ workers: 2 })
  try {
    const limit = 40
    await host.quotas.set('race', limit)
    // 400 creations in flight at once, half on each worker
    const calls = Array.from({ length: 400 }, (_, i) => host.ref('followed', keyIn('race', 1 + (i % 2), 'r', i >> 1), { quota: 'race' }).call('add', 1))
    const results = await Promise.allSettled(calls)
    const created = results.filter((r) => r.status === 'fulfilled').length
    const refused = results.filter((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'SHOAL_ERR_QUOTA_EXCEEDED').length
    assert.equal(created + refused, 400)
    assert.ok(created >= limit && created <= limit + 1, `${created} created`)
    assert.equal(host.quotas.get('race')!.count, created, 'the count is exact once creations settle')
  } finally {
    await host.close()
  }
})

test('after a worker restart, the agents it held in memory no longer count', async () => {
  const host = await startHost({ workers: 2 })
  try {
    await host.quotas.set('t', 5)
    for (const [thread, prefix] of [[1, 'x'], [1, 'y'], [2, 'z']] as const) await host.ref('followed', keyIn('t', thread, prefix), { quota: 't' }).call('add', 1)
    assert.equal(host.quotas.get('t')!.count, 3)
    const restarted = once(host, 'worker-restart')
    await assert.rejects(host.ref('crasher', keyOn(1, 'crasher')).call('exit'), { code: 'SHOAL_ERR_WORKER_CRASHED' })
    await restarted
    assert.equal(host.quotas.get('t')!.count, 1, 'worker 1 lost its two in-memory agents')
    // the new worker knows the quota
    assert.equal(await host.ref('followed', keyIn('t', 1, 'w'), { quota: 't' }).call('add', 1), 1)
    assert.equal(host.quotas.get('t')!.count, 2)
  } finally {
    await host.close()
  }
})
