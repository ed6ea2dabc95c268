/**
 * The open-loop rows of the bench's summary say whether a phase carried the rate it
 * offered: a phase whose calls queued (achieved well below offered) measures a backlog,
 * and its note must say so instead of presenting the figure as a latency at that load.
 */
import { strict as assert } from 'node:assert'
import { test } from 'node:test'
import { machineInfo, summaryRows } from '../../src/cli/results.ts'
import type { RunConfig } from '../../src/cli/results.ts'
import type { LatencySummary } from '../../src/cli/latency.ts'
import type { OpenLoopSeries, RatePoint } from '../../src/cli/scenarios/latency.ts'

const lat = (p99Us: number): LatencySummary => ({ count: 1000, meanUs: p99Us / 4, p50Us: p99Us / 5, p90Us: p99Us / 2, p99Us, p999Us: p99Us * 1.1, maxUs: p99Us * 1.2 })

function point (share: number, offeredPerSec: number, achievedPerSec: number, p99Us: number): RatePoint {
  return {
    share, offeredPerSec, durationMs: 2000, sent: offeredPerSec * 2, completed: achievedPerSec * 2, errors: 0, achievedPerSec,
    latency: lat(p99Us), sendLag: lat(p99Us / 2), threads: null,
    tail: { calls: 10, mainGc: 0, workerGc: 0, neither: 10, mainGcShare: 0, workerGcShare: 0 }
  }
}

function series (kind: 'query' | 'command', maxPerSec: number, points: RatePoint[]): OpenLoopSeries {
  return { kind, method: kind === 'query' ? 'get' : 'add', maxPerSec, maxConcurrency: 256, points }
}

const config: RunConfig = {
  agents: 1000, hosts: 1, membership: null, workers: 2, threadLayout: 'test', store: 'durable', storeRequested: 'durable',
  storeNote: null, dataDir: null, dataDirKept: false, durationMs: 1000, scenarios: ['latency'], hotCasts: 0, concurrency: 256, seed: 1
}

test('an open-loop phase that did not carry its offered rate is marked as a backlog; one that did is not', () => {
  const rows = summaryRows({
    schema: 'shoal-bench/1', startedAt: '', finishedAt: '', elapsedMs: 0, machine: machineInfo(), config,
    baselines: null, activate: null, fanout: null, hot: null, mixed: null, memory: null, cluster: null, gc: {},
    final: { rssBytes: 0, peakRssBytes: 0, activeAgents: 0 }, timeline: [], phases: [],
    latency: {
      shares: [0.25, 0.5],
      queries: series('query', 800_000, [point(0.25, 200_000, 199_000, 20_000), point(0.5, 400_000, 180_000, 5_000_000)]),
      commands: series('command', 8_000, [point(0.25, 2_000, 1_990, 9_000), point(0.5, 4_000, 3_000, 200_000)]),
      fsync: lat(2_000),
      rawCommit: null
    }
  })
  const note = (name: RegExp): string => {
    const row = rows.find((r) => name.test(r.name))
    assert.ok(row !== undefined, `a row ${name}`)
    return row.note ?? ''
  }
  assert.match(note(/^query p99 at 25%/), /achieved 199,000\/s; sender lag/)
  assert.doesNotMatch(note(/^query p99 at 25%/), /NOT CARRIED/)
  assert.match(note(/^query p99 at 50%/), /achieved 180,000\/s — NOT CARRIED/)
  assert.doesNotMatch(note(/^command p99 at 25%/), /NOT CARRIED/)
  assert.match(note(/^command p99 at 50%/), /achieved 3,000\/s — NOT CARRIED/)
})
