/**
 * `shoal bench --hosts 3 --etcd URL` end to end, small: the built CLI in a child process
 * spawns three host processes on a private etcd (test/helpers/etcd.ts), measures every
 * phase (a join included), runs the link bench, and writes the cluster's figures — each
 * beside its baseline — to the JSON and the table. Its refusals of options that do not go
 * together. No figure is held to a speed here: only that each was measured.
 */
import { strict as assert } from 'node:assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startEtcd } from '../helpers/etcd.ts'
import type { EtcdProcess } from '../helpers/etcd.ts'
import { runCli, tempDir } from './run-cli.ts'
import type { CliRun } from './run-cli.ts'

const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v)

describe('shoal bench --hosts 3 --etcd, small', () => {
  let etcd: EtcdProcess
  let run: CliRun
  let results: Record<string, any>
  let cleanup: () => void

  before(async () => {
    etcd = await startEtcd()
    let dir: string
    [dir, cleanup] = tempDir()
    run = await runCli(['bench', '--hosts', '3', '--etcd', etcd.endpoint, '--agents', '3000', '--duration', '0.3', '--rounds', '100',
      '--no-latest', '--plain', '--json', join(dir, 'r.json')], { TMPDIR: dir }, 180_000)
    assert.equal(run.code, 0, `exit code; stdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
    results = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'))
  })
  after(async () => {
    cleanup?.()
    await etcd?.stop()
  })

  it('says what ran where: hosts, membership, processes on cores', () => {
    assert.equal(results.schema, 'shoal-bench/1')
    assert.equal(results.config.hosts, 3)
    assert.equal(results.config.membership, 'etcd')
    assert.equal(results.config.agents, 3000)
    assert.equal(results.config.workers, 1, 'one worker per host unless asked')
    assert.match(results.config.threadLayout, /3 host processes × \(main \+ 1 worker\)/)
    for (const s of ['activate', 'fanout', 'hot', 'mixed', 'memory']) assert.equal(results[s], null, `${s}: not a cluster scenario`)
  })

  it('measures casts both ways, every cast counted', () => {
    const c = results.cluster
    for (const phase of [c.sameHost, c.crossHost]) {
      assert.ok(phase.casts > 0 && isNum(phase.castsPerSec) && phase.castsPerSec > 0)
      assert.ok(isNum(phase.castsPerCpuSec) && phase.castsPerCpuSec > 0)
      assert.deepEqual(phase.perHost.map((h: { id: string }) => h.id), ['h0', 'h1', 'h2'])
      for (const h of phase.cpuPerHost) assert.ok(isNum(h.cores) && h.cores >= 0)
    }
    assert.equal(c.castsLost, 0)
  })

  it('measures the remote call beside the raw ws round trip, and the link beside the raw batched link', () => {
    const c = results.cluster
    for (const l of [c.remoteCall, c.sameHostCall, c.rawWsRoundTrip]) {
      assert.equal(l.count, 100)
      assert.ok(isNum(l.p50Us) && l.p50Us > 0 && l.p50Us <= l.p99Us)
    }
    assert.equal(c.linkNote, null)
    for (const k of ['msgsPerSec', 'preEncodedMsgsPerSec', 'rawMsgsPerSec', 'recvPerCpuSec', 'rawRecvPerCpuSec']) assert.ok(isNum(c.link[k]) && c.link[k] > 0, k)
  })

  it('measures a join: the fourth host takes shards and agents', () => {
    const j = results.cluster.join
    assert.equal(j.joined, 'h3')
    assert.ok(j.shardsMoved > 700 && j.shardsMoved < 1400, `${j.shardsMoved} shards moved`)
    assert.ok(j.agentsMoved > 0 && isNum(j.shardsPerSec) && j.movingMs <= j.elapsedMs)
    const hosts = results.cluster.perHost
    assert.deepEqual(hosts.map((h: { id: string }) => h.id), ['h0', 'h1', 'h2', 'h3'])
    assert.equal(hosts.reduce((n: number, h: { shardsServed: number }) => n + h.shardsServed, 0), 4096)
    assert.equal(hosts.reduce((n: number, h: { agentsOwned: number }) => n + h.agentsOwned, 0), 3000)
  })

  it('prints each cluster figure beside its baseline, and the summary has them', () => {
    for (const name of ['cross-host casts/s', 'remote call p50', 'link alone: envelopes decoded/s', 'shards moved/s during a join']) {
      assert.ok(results.rows.some((r: { name: string }) => r.name.startsWith(name)), name)
      assert.match(run.stdout, new RegExp(name.replace(/[/.()]/g, '\\$&')))
    }
    const cross = results.rows.find((r: { name: string }) => r.name.startsWith('cross-host casts/s'))
    assert.equal(cross.baseline.name, 'same-host casts')
    assert.deepEqual(cross.target, { op: '>=', value: 0.5 })
    const s = results.summary
    for (const k of ['crossHostCastsPerSec', 'sameHostCastsPerSec', 'remoteCallP50Us', 'remoteCallP99Us', 'rawWsRoundTripP50Us', 'linkMsgsPerSec', 'rawLinkMsgsPerSec', 'shardsMovedPerSec']) {
      assert.ok(isNum(s[k]), `summary.${k}`)
    }
  })
})

describe('shoal bench --hosts: options that do not go together', () => {
  it('refuses --memory with --hosts, and --etcd or --profile without it', async () => {
    const memory = await runCli(['bench', '--hosts', '2', '--memory', '--no-latest'])
    assert.equal(memory.code, 1)
    assert.match(memory.stderr, /--hosts needs a durable store/)
    const etcd = await runCli(['bench', '--etcd', 'http://127.0.0.1:1', '--no-latest'])
    assert.equal(etcd.code, 1)
    assert.match(etcd.stderr, /--etcd and --profile go with --hosts/)
    const url = await runCli(['bench', '--hosts', '2', '--etcd', 'nope', '--no-latest'])
    assert.equal(url.code, 1)
    assert.match(url.stderr, /etcd client URL/)
  })
})
