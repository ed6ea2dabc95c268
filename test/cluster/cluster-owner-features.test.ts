/**
 * Single-host features run where the agent lives, whoever calls: in a static cluster of
 * two hosts (in this process, real links and LMDB), a rate limit is enforced by the
 * owner's bucket for calls through either host (the caller gets RateLimitedError over the
 * link), and idle passivation follows the owner's clock; `host.stats().cluster` and
 * `host.metrics()` carry the cluster's figures.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RateLimitedError } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import { TestClock, kTestClock } from '../../src/time/test-clock.ts'
import { staticCluster } from './tenancy-helpers.ts'

function keyOwnedBy (host: Host, type: string, owner: string, prefix: string): string {
  for (let i = 0; ; i++) if (host.cluster.ownerOf({ type, key: `${prefix}${i}` }) === owner) return `${prefix}${i}`
}

test('rate limits and idle passivation work on the owner; stats and metrics carry the cluster', async () => {
  const clock = new TestClock(5_000)
  const { hosts, close } = await staticCluster(2, { clock: 'manual', [kTestClock]: clock })
  const [h0, h1] = hosts as [Host, Host]
  try {
    await Promise.all(hosts.map((h) => h.cluster.settled({ timeoutMs: 10_000 })))

    // one bucket per agent, on its owner: two tokens, whichever host the calls go through
    const key = keyOwnedBy(h0, 'limited', 'h1', 'l')
    assert.equal(await h0.ref('limited', key).call('hit'), 1)
    assert.equal(await h1.ref('limited', key).call('hit'), 2)
    const refused = await h0.ref('limited', key).call('hit').then(() => null, (err: unknown) => err)
    assert.ok(refused instanceof RateLimitedError, String(refused))
    assert.equal((refused.data as { retryAfterMs: number }).retryAfterMs, 1000)
    await assert.rejects(h1.ref('limited', key).call('hit'), RateLimitedError)
    clock.advance(1000)
    assert.equal(await h0.ref('limited', key).call('hit'), 3, 'a token came back on the owner\'s clock')
    const rateLimited = (h: Host): number => h.stats().workers.reduce((n, w) => n + w.rateLimited, 0)
    assert.equal(rateLimited(h1), 2, 'refused by the owner')
    assert.equal(rateLimited(h0), 0)

    // idle passivation: the agents live on h1, called through h0, passivated by h1's clock
    const sleepy = Array.from({ length: 40 }, (_, i) => keyOwnedBy(h0, 'sleepy', 'h1', `s${i}-`))
    await Promise.all(sleepy.map((k, i) => h0.ref('sleepy', k).call('add', i)))
    assert.equal(h1.stats().activeAgents, 40 + 1, 'resident on the owner (and the limited agent)')
    assert.equal(h0.stats().activeAgents, 0, 'never on the caller')
    await h0.advance(5)
    assert.equal(h1.stats().activeAgents, 41, 'the caller\'s clock passivates nothing there')
    await h1.advance(5)
    assert.equal(h1.stats().activeAgents, 1, 'idle for idleTicks on the owner: passivated (the limited agent has no idleTicks)')
    assert.equal(await h0.ref('sleepy', sleepy[7]!).call('get'), 7, 'state came back from the owner\'s store')

    // the cluster's figures
    const stats = h0.stats() as unknown as { cluster: Record<string, unknown> & { links: Record<string, number> } }
    assert.equal(stats.cluster.members, 2)
    assert.ok((stats.cluster.shardsServed as number) > 1800 && (stats.cluster.shardsServed as number) < 2300)
    assert.ok((stats.cluster.forwarded as number) >= 44, `frames forwarded to h1 (${String(stats.cluster.forwarded)})`)
    assert.ok(stats.cluster.links.framesOut! > 0 && stats.cluster.links.bytesIn! > 0)
    for (const k of ['movedIn', 'movedOut', 'shardsMoving', 'quotaPeers', 'listingsServed']) assert.equal(typeof stats.cluster[k], 'number', k)
    const metrics = await h0.metrics()
    for (const line of [
      /^shoal_cluster_members 2$/m, /^shoal_cluster_shards_served \d+$/m, /^shoal_cluster_forwarded \d+$/m,
      /^shoal_cluster_link_frames_out [1-9]\d*$/m, /^shoal_cluster_link_bytes_in [1-9]\d*$/m, /^shoal_cluster_link_queued_bytes 0$/m,
      /^shoal_cluster_moved_in 0$/m, /^shoal_cluster_refused_peers 0$/m, /^shoal_cluster_peer_up\{peer="h1"\} 1$/m,
      /^shoal_cluster_quota_peers 1$/m, /^shoal_cluster_fenced 0$/m
    ]) assert.match(metrics, line)
  } finally {
    await close()
  }
})
