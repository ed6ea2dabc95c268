import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHost, ownerOf } from './helpers.ts'

for (const durable of [false, true]) {
test(`a chain of ctx.send hops crosses workers directly and arrives whole${durable ? ' (durable: each hop stored in the outbox, its object payload carried as encoded there)' : ''}`, async () => {
  const dataDir = durable ? mkdtempSync(join(tmpdir(), 'shoal-test-')) : null
  const host = await startHost({ workers: 2, ...(dataDir !== null ? { dataDir } : {}) })
  try {
    const HOPS = 40
    await host.ref('hop', 'h0').call('pass', { path: [], left: HOPS, report: { type: 'sink', key: 'chain' } })
    let paths: string[][] = []
    for (let i = 0; paths.length === 0; i++) {
      assert.ok(i < 10_000, 'the chain never reached the sink')
      paths = await host.ref('sink', 'chain').call('paths') as string[][]
    }
    const expected = Array.from({ length: HOPS + 1 }, (_, i) => `h${i}`)
    assert.deepEqual(paths, [expected])
    const owners = expected.map((k) => ownerOf('hop', k))
    const crossings = owners.filter((o, i) => i > 0 && o !== owners[i - 1]).length
    assert.ok(crossings >= 5, `the chain crossed between workers ${crossings} times`)
    // every hop ran exactly once
    for (const k of expected) assert.equal(await host.ref('hop', k).call('visits'), 1, k)
    // the hops went worker → worker: with workers > 0 the main thread owns no shard and has
    // no ring into a worker from anyone but itself, so a hop routed through it would be lost
    assert.equal(host.stats().workers.reduce((n, w) => n + w.overflowBytes, 0), 0)
  } finally {
    await host.close()
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true })
  }
})
}
