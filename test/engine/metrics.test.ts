/**
 * host.stats() commit figures and host.metrics() (Prometheus text from prom-client),
 * aggregated from both workers. Batches are made deterministic by what shares a ring
 * publish: sequential awaited calls commit one state each; casts written in one tick are
 * taken out of the ring together and commit as one batch.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import promClient from 'prom-client'
import { keyOn, startHost } from './helpers.ts'
import { metricsContentType } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'

/** `name{labels} value` lines of a Prometheus exposition. */
function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

function worker (host: Host, thread: number) {
  return host.stats().workers.find((w) => w.thread === thread)!
}

test('stats and metrics count commit batches and latencies on every worker, and metrics add them up', async () => {
  const host = await startHost({ workers: 2 })
  try {
    for (let i = 0; i < 3; i++) await host.ref('counter', keyOn(1, 'counter', 'a', 2, i)).call('add', 1)
    const w1 = worker(host, 1)
    assert.equal(w1.commits, 3)
    assert.equal(w1.lastCommitBatch, 1)
    assert.equal(w1.meanCommitBatch, 1)
    assert.ok(w1.meanCommitLatencyMs > 0 && w1.maxCommitLatencyMs >= w1.lastCommitLatencyMs)

    // 49 casts and a call in one tick: one ring publish (the producer also publishes
    // every 64 frames, so stay under that), one pass, one batch of 50 states
    for (let i = 0; i < 49; i++) host.ref('counter', keyOn(2, 'counter', 'b', 2, i)).cast('add', 1)
    await host.ref('counter', keyOn(2, 'counter', 'b', 2, 49)).call('add', 1)
    const w2 = worker(host, 2)
    assert.equal(w2.commits, 1)
    assert.equal(w2.lastCommitBatch, 50)
    assert.equal(w2.committedStates, 50)

    const text = await host.metrics()
    assert.match(text, /^# HELP shoal_messages_total /m)
    assert.match(text, /^# TYPE shoal_commit_latency_seconds histogram$/m)
    const m = samples(text)
    assert.equal(m.get('shoal_messages_total'), 53, 'summed over both workers')
    assert.equal(m.get('shoal_commits_total'), 4)
    assert.equal(m.get('shoal_committed_states_total'), 53)
    assert.equal(m.get('shoal_active_agents'), 53)
    assert.equal(m.get('shoal_commit_batch_states_bucket{le="1"}'), 3)
    assert.equal(m.get('shoal_commit_batch_states_bucket{le="16"}'), 3)
    assert.equal(m.get('shoal_commit_batch_states_bucket{le="64"}'), 4, 'the batch of 50')
    assert.equal(m.get('shoal_commit_batch_states_bucket{le="+Inf"}'), 4)
    assert.equal(m.get('shoal_commit_batch_states_sum'), 53)
    assert.equal(m.get('shoal_commit_batch_states_count'), 4)
    assert.equal(m.get('shoal_commit_latency_seconds_count'), 4)
    const latencySum = m.get('shoal_commit_latency_seconds_sum')!
    const statsSum = (w1.meanCommitLatencyMs * w1.commits + w2.meanCommitLatencyMs * w2.commits) / 1000
    assert.ok(Math.abs(latencySum - statsSum) < 1e-9, `${latencySum} vs ${statsSum}`)
    assert.equal(m.get('shoal_worker_up{thread="1"}'), 1)
    assert.equal(m.get('shoal_worker_up{thread="2"}'), 1)
    assert.equal(m.get('shoal_worker_restarts_total{thread="2"}'), 0)
    assert.equal(m.get('shoal_pending_calls'), 0)
    assert.equal(m.get('shoal_rate_limited_total'), 0)
    assert.equal(m.has('shoal_offload_threads'), false, 'no pool, no pool metrics')
    assert.equal(metricsContentType, promClient.Registry.PROMETHEUS_CONTENT_TYPE)
  } finally {
    await host.close()
  }
})
