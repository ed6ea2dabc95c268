/**
 * What the cluster plugin shares with the plugins beside it: read-only asks between hosts
 * over the links ('cluster-peers': topics answered, refused, timed out, failed when the
 * link drops) and its link server's uWS app ('uws': another plugin's route is served on
 * the cluster's port, the links' catch-all still refuses the rest). Two hosts in this
 * process, static membership, real links on 127.0.0.1.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import type { TemplatedApp } from 'uWebSockets.js'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import type { HostPlugin, PluginHost } from '../../src/host/plugin.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import type { ClusterPeers } from '../../plugins/cluster/index.ts'
import { agentsUrl } from '../engine/helpers.ts'

const secret = 'a test secret of at least thirty-two bytes!!'

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

/** A plugin that only looks at what the cluster shares. */
class Probe implements HostPlugin {
  readonly name = 'probe'
  host!: PluginHost
  setup (host: PluginHost): void { this.host = host }
  get peers (): ClusterPeers { return this.host.use<ClusterPeers>('cluster-peers')! }
  get uws (): { app: TemplatedApp, host: string, port: number } { return this.host.use('uws')! }
}

test('cluster-peers: asks answered, refused and timed out; uws: a route on the cluster\'s port', async () => {
  const ports = [await freePort(), await freePort()]
  const list = ports.map((p, i) => `h${i}@127.0.0.1:${p}`)
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'shoal-asks-')))
  const probes = [new Probe(), new Probe()]
  const hosts: Host[] = await Promise.all(ports.map((port, i) => createHost({
    agents: agentsUrl,
    workers: 1,
    dataDir: dirs[i]!,
    plugins: [cluster({ id: `h${i}`, secret, listen: { port }, membership: { static: list } }), probes[i]!]
  })))
  let closed = false
  try {
    await Promise.all(hosts.map((h) => h.cluster.settled({ timeoutMs: 10_000 })))
    const [a, b] = [probes[0]!.peers, probes[1]!.peers]
    assert.equal(a.self, 'h0')
    assert.equal(a.view.members().length, 2)
    assert.equal(a.lease(), null, 'a static list has no lease')
    const map = a.map()!
    assert.equal(map.owner.length, 4096)

    b.answer('echo', (value, peer) => ({ value, peer }))
    b.answer('later', async (value) => { await new Promise((resolve) => setTimeout(resolve, 20)); return (value as number) * 2 })
    b.answer('boom', () => { throw new Error('not today') })
    b.answer('never', () => new Promise(() => {}))
    assert.throws(() => b.answer('echo', () => 1), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /answered already/ })

    assert.deepEqual(await a.ask('h1', 'echo', { n: [1, 2] }), { value: { n: [1, 2] }, peer: 'h0' })
    assert.equal(await a.ask('h1', 'later', 21), 42)
    await assert.rejects(a.ask('h1', 'nothing-here'), { code: 'SHOAL_ERR_PEER_ASK', message: /no answer to "nothing-here"/ })
    await assert.rejects(a.ask('h1', 'boom'), { code: 'SHOAL_ERR_PEER_ASK', message: /h1: not today/ })
    await assert.rejects(a.ask('h1', 'never', null, { timeoutMs: 100 }), { code: 'SHOAL_ERR_TIMEOUT' })
    await assert.rejects(a.ask('nobody', 'echo'), /nobody/)

    // another plugin's route on the cluster's own server; everything else still refused by the links
    const { app, port } = probes[0]!.uws
    assert.equal(`127.0.0.1:${port}`, hosts[0]!.cluster.address)
    app.get('/probe', (res) => { res.end('probe here') })
    const ok = await fetch(`http://127.0.0.1:${port}/probe`)
    assert.equal(await ok.text(), 'probe here')
    assert.equal((await fetch(`http://127.0.0.1:${port}/elsewhere`)).status, 404)

    // the link drops while an ask waits: it fails at once, retriable
    const waiting = a.ask('h1', 'never', null, { timeoutMs: 30_000 })
    const failed = assert.rejects(waiting, (err: Error & { code?: string, retriable?: boolean }) => err.code === 'SHOAL_ERR_LINK_UNAVAILABLE' && err.retriable === true)
    await hosts[1]!.close()
    closed = true
    await failed
  } finally {
    await Promise.all(hosts.map((h, i) => i === 1 && closed ? undefined : h.close()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
})
