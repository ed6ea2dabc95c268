/**
 * A cluster frame from a peer that decodes, but not to the shape its kind has (a peer of
 * another build, or a bug), is counted as undecodable and logged once — never thrown into
 * the link's message handler, which would end the host. So are frames that do not decode
 * at all and frames of no known kind. Two real hosts on 127.0.0.1; the bad frames are
 * handed to the receiving router as a batch from its peer, as the link would.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Buffer } from 'node:buffer'
import { createHost } from '../../src/index.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { CL_DELETED, CL_SENT_ACK, ClusterWire } from '../../plugins/cluster/wire.ts'
import { FrameBuffer } from '../../src/thread/frame-buffer.ts'
import { durableAgentsUrl } from '../durable/helpers.ts'
import { freePort } from '../helpers/etcd.ts'

const secret = 'a test secret of at least thirty-two bytes!!'


interface RouterInside { batch (peer: string, bytes: Buffer, i32: Int32Array): void }
const routerOf = (plugin: unknown): RouterInside => (plugin as { router: RouterInside }).router
const refusedFrames = (host: { stats (): unknown }): number => (host.stats() as { cluster: { refusedFrames: number } }).cluster.refusedFrames

/** Hand the frames in `fb` to `router` as one link batch from `peer`. */
function replay (router: RouterInside, peer: string, fb: FrameBuffer): void {
  const bytes = fb.bytes
  router.batch(peer, bytes, new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2))
}

test('cluster frames of the wrong shape, undecodable or of no known kind are counted and logged once; the host goes on', async () => {
  const ports = await Promise.all([freePort(), freePort()])
  const list = ports.map((p, i) => `h${i}@127.0.0.1:${p}`)
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'shoal-bad-frames-')))
  const plugins = ports.map((port, i) => cluster({ id: `h${i}`, secret, listen: { port }, membership: { static: list } }))
  const hosts = await Promise.all(ports.map((_, i) => createHost({ agents: durableAgentsUrl, workers: 1, dataDir: dirs[i]!, plugins: [plugins[i]!] })))
  const warnings: string[] = []
  const warn = console.warn
  console.warn = (...args: unknown[]) => { warnings.push(args.join(' ')) }
  try {
    const keys = Array.from({ length: 64 }, (_, i) => `acct${i}`)
    const onH1 = keys.filter((k) => hosts[0]!.cluster.ownerOf({ type: 'account', key: k }) === 'h1')
    assert.equal(await hosts[0]!.ref('account', onH1[0]!).call('fund', 5), 5)
    const into = routerOf(plugins[1])
    const wire = new ClusterWire(64 * 1024)
    const before = refusedFrames(hosts[1]!)

    // acknowledgements that are numbers, not [senderShard, origin, key, receiver, hash] arrays
    const wrongShape = new FrameBuffer()
    wire.write(wrongShape, CL_SENT_ACK, 0, [5, 6])
    wire.write(wrongShape, CL_DELETED, 0, [7])
    replay(into, 'h0', wrongShape)
    assert.equal(refusedFrames(hosts[1]!), before + 2, 'both counted')
    const shapeWarnings = warnings.filter((w) => w.includes('wrong shape'))
    assert.equal(shapeWarnings.length, 1, warnings.join('\n'))
    assert.match(shapeWarnings[0]!, /kind 36 from h0 has the wrong shape/)

    // a cluster frame whose payload does not decode, and a frame of a kind nobody knows
    const garbage = new FrameBuffer()
    const good = new FrameBuffer()
    wire.write(good, CL_SENT_ACK, 0, 'x'.repeat(40))
    good.forEach((f) => {
      const bad = Buffer.from(f)
      bad[1] = 7 // payload tag: msgpack
      bad.fill(0xc1, 20) // 0xc1: never used by msgpack
      garbage.push(bad)
    })
    const unknown = Buffer.alloc(24)
    unknown[0] = 200
    garbage.push(unknown)
    replay(into, 'h0', garbage)
    assert.equal(refusedFrames(hosts[1]!), before + 4)
    assert.equal(warnings.filter((w) => w.includes('wrong shape')).length, 1, 'logged once')

    // the host and the link go on
    assert.equal(await hosts[0]!.ref('account', onH1[0]!).call('balance'), 5)
    assert.equal(await hosts[1]!.ref('account', onH1[0]!).call('fund', 1), 6)
  } finally {
    console.warn = warn
    await Promise.all(hosts.map((h) => h.close()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
})
