import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startHost } from './helpers.ts'

test('workers: 0 runs every agent on the calling thread with the same semantics', async () => {
  const host = await startHost({ workers: 0 })
  try {
    assert.equal(host.stats().workers.length, 1)
    assert.equal(host.stats().workers[0]!.thread, 0)
    const c = host.ref('counter', 'a')
    assert.equal(await c.call('add', 2), 2)
    for (let i = 0; i < 1000; i++) host.ref('counter', `k${i}`).cast('add', i)
    assert.equal(await host.ref('counter', 'k999').call('get'), 999)
    await host.ref('hop', 'h0').call('pass', { path: [], left: 10, report: { type: 'sink', key: 's' } })
    let paths: string[][] = []
    while (paths.length === 0) paths = await host.ref('sink', 's').call('paths') as string[][]
    assert.equal(paths[0]!.length, 11)
    await assert.rejects(host.ref('fragile', 'f').call('addThenThrow', 1), { code: 'SHOAL_ERR_AGENT' })
    assert.deepEqual(await host.ref('fragile', 'f').call('get'), { n: 0, items: [] })
    // payloads are copied, never shared with the caller
    const payload = { list: [1] }
    const echoed = await host.ref('fragile', 'f').call('echo', payload) as { list: number[] }
    assert.deepEqual(echoed, payload)
    assert.notEqual(echoed, payload)
    assert.equal(host.stats().activeAgents, 1000 + 1 + 11 + 1 + 1)
  } finally {
    await host.close()
  }
})
