/**
 * The cluster with every host in a process of its own (test/helpers/cluster-procs.ts):
 * real processes on 127.0.0.1, a real etcd, an LMDB data directory per host.
 *
 *   - three hosts serve 10,000 agents, each reached through every host; a fourth joins
 *     under load, then a host leaves gracefully under load: every counter equals the
 *     adds acknowledged to its callers (a lost update would mean two activations, a
 *     surplus a duplicate), and no caller sees an error;
 *   - etcd unreachable at start: createHost in the process fails with
 *     ClusterUnavailableError within the lease TTL (beyond the host's own start-up,
 *     measured beside it), and the process exits cleanly.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClusterUnavailableError } from '../../native-free-core/errors.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { HostProcess, HostStartError, clusterModule, clusterProcs, freePort, testAgents, testSecret } from '../helpers/cluster-procs.ts'
import type { Agents, HostProcessConfig, LoadReport } from '../helpers/cluster-procs.ts'

const AGENTS = 10_000
const counters: Agents = { type: 'counter', keys: { prefix: 'c', count: AGENTS } }

function sum (into: Float64Array, report: LoadReport, who: string): void {
  assert.equal(report.errors, 0, `${who}: ${report.errors} caller errors, e.g. ${JSON.stringify(report.errorSamples)}`)
  for (let i = 0; i < into.length; i++) into[i]! += report.acked[i]!
}

test('three host processes on etcd serve 10,000 agents through every host; a fourth joins and one leaves under load: every counter equals its acknowledged adds, no caller error', { timeout: 240_000 }, async () => {
  const etcd = await startEtcd()
  // TTL 5 s (the default): four processes of two threads under load on two cores, every command replicated
  const c = await clusterProcs({ membership: { etcd: { hosts: [etcd.endpoint], leaseTtlS: 5, minMembers: 3 } }, host: { callTimeoutMs: 30_000 } })
  try {
    await c.start(['a', 'b', 'c'])
    await c.settled()
    const owners = await c.host('a').owners(counters)
    const byOwner = new Map<string, number>()
    for (const o of owners) byOwner.set(String(o), (byOwner.get(String(o)) ?? 0) + 1)
    assert.deepEqual([...byOwner.keys()].sort(), ['a', 'b', 'c'], 'the agents spread over the three hosts')

    // each host adds 1 to every counter: 10,000 agents reached through every host
    const expected = new Float64Array(AGENTS)
    for (const id of ['a', 'b', 'c']) {
      const r = await c.host(id).callEach(counters, 'add', 1, 128)
      assert.equal(r.errors, 0, `${id}: ${JSON.stringify(r.errorSamples)}`)
    }
    expected.fill(3)

    // load through every host while d joins, then while b leaves
    for (const id of ['a', 'b', 'c']) await c.host(id).loadStart('adds', counters, 'add', 1, 24)
    await new Promise((resolve) => setTimeout(resolve, 500))
    await c.start(['d'])
    await c.host('d').loadStart('adds', counters, 'add', 1, 24)
    await c.settled()
    const d = await c.host('d').stats<{ cluster: { shardsServed: number, movedIn: number } }>()
    assert.ok(d.cluster.shardsServed > 700, `the new host serves its part (${d.cluster.shardsServed} shards)`)

    sum(expected, await c.host('b').loadStop('adds'), 'b')
    await c.leave('b')
    await c.settled()
    for (const id of ['a', 'c', 'd']) sum(expected, await c.host(id).loadStop('adds'), id)
    const members = (await c.host('a').cluster()).members.map((m) => m.id).sort()
    assert.deepEqual(members, ['a', 'c', 'd'])

    for (const id of ['a', 'd']) {
      const r = await c.host(id).callEach(counters, 'get', undefined, 128)
      assert.equal(r.errors, 0, `${id}: ${JSON.stringify(r.errorSamples)}`)
      const wrong = r.values.flatMap((v, i) => v === expected[i] ? [] : [`c${i}: ${String(v)} ≠ ${expected[i]}`])
      assert.deepEqual(wrong.slice(0, 10), [], `read through ${id}: ${wrong.length} counters differ from their acknowledged adds`)
    }
  } finally {
    await c.close()
    await etcd.stop()
  }
})

test('etcd unreachable at start: createHost in a host process fails with ClusterUnavailableError within the lease TTL (beyond its own start-up), and the process exits 1', { timeout: 60_000 }, async () => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'shoal-noetcd-'))
  const leaseTtlS = 5 // the default
  const config = (options: Record<string, unknown>): HostProcessConfig => ({
    agents: testAgents,
    workers: 1,
    dataDir: dir,
    plugins: [{ module: clusterModule, export: 'cluster', options: { id: 'lonely', secret: testSecret, ...options } }]
  })
  try {
    // the same host on a static list of one: what createHost takes without etcd (workers, links), on this machine now
    const listen = await freePort()
    const alone = await HostProcess.start(config({ listen: { port: listen }, membership: { static: [`lonely@127.0.0.1:${listen}`] } }), { name: 'alone' })
    const startMs = alone.info.startMs
    await alone.close()
    const h = HostProcess.spawn(config({ membership: { etcd: { hosts: [`http://127.0.0.1:${port}`] } } }), { name: 'lonely' })
    await assert.rejects(h.ready, (err: unknown) => {
      assert.ok(err instanceof HostStartError, String(err))
      assert.ok(err.cause instanceof ClusterUnavailableError, `${String(err.cause)}\n${err.log}`)
      assert.equal(err.cause.code, 'SHOAL_ERR_CLUSTER_UNAVAILABLE')
      assert.ok(err.cause.retriable)
      assert.deepEqual((err.cause.data as { endpoints: string[] }).endpoints, [`http://127.0.0.1:${port}`])
      assert.match(err.cause.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
      // the membership gives up after 80% of the TTL, counted from when the plugin starts (after the workers)
      assert.ok(err.elapsedMs < leaseTtlS * 1000 + startMs, `createHost failed after ${Math.round(err.elapsedMs)} ms (a host starts in ${Math.round(startMs)} ms)`)
      return true
    })
    assert.deepEqual(await h.exited, { code: 1, signal: null })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
