/**
 * `shoal bench` end to end: the built CLI in a child process with a small `--agents`,
 * its JSON checked field by field (names and types are a contract, see results.ts),
 * its printed table, the store bookkeeping (a temporary data dir never outlives the
 * run) and its refusals of bad arguments.
 */
import { strict as assert } from 'node:assert'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { runCli, smallRun, tempDir } from './run-cli.ts'
import type { CliRun } from './run-cli.ts'

const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v)

function assertNumbers (obj: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of keys) assert.ok(isNum(obj[k]), `${where}.${k} should be a finite number, got ${JSON.stringify(obj[k])}`)
}

function assertLatency (l: Record<string, unknown>, where: string): void {
  assertNumbers(l, ['count', 'meanUs', 'p50Us', 'p90Us', 'p99Us', 'p999Us', 'maxUs'], where)
  assert.ok((l.p50Us as number) <= (l.p99Us as number) && (l.p99Us as number) <= (l.p999Us as number), `${where}: percentiles in order`)
}

describe('shoal bench --memory, every scenario, small', () => {
  let run: CliRun
  let results: Record<string, any>
  let dir: string
  let cleanup: () => void

  before(async () => {
    [dir, cleanup] = tempDir()
    // TMPDIR: the baselines' LMDB scratch directory must be gone afterwards
    run = await runCli([...smallRun, '--memory', '--json', join(dir, 'out', 'r.json')], { TMPDIR: dir })
    assert.equal(run.code, 0, `exit code; stderr:\n${run.stderr}`)
    results = JSON.parse(readFileSync(join(dir, 'out', 'r.json'), 'utf8'))
  })
  after(() => cleanup())

  it('writes the JSON with its schema, machine and config', () => {
    assert.equal(results.schema, 'shoal-bench/1')
    assert.ok(!Number.isNaN(Date.parse(results.startedAt)))
    assert.ok(!Number.isNaN(Date.parse(results.finishedAt)))
    assertNumbers(results.machine, ['cores', 'totalMemoryBytes'], 'machine')
    assert.equal(results.machine.node, process.version)
    const c = results.config
    assert.equal(c.agents, 2000)
    assert.equal(typeof c.workers, 'number')
    assert.equal(c.store, 'memory')
    assert.equal(c.storeRequested, 'memory')
    assert.equal(c.storeNote, null)
    assert.equal(c.dataDir, null)
    assert.deepEqual(c.scenarios, ['activate', 'fanout', 'hot', 'mixed', 'latency'])
    assert.equal(c.durationMs, 400)
    assert.equal(c.hotCasts, 20000)
    assert.equal(typeof c.threadLayout, 'string')
  })

  it('measures every scenario', () => {
    assert.equal(results.activate.agents, 2000)
    assert.equal(results.activate.residentAgents, 2000)
    assertNumbers(results.activate, ['elapsedMs', 'activationsPerSec', 'cpuUsPerActivation'], 'activate')
    assert.ok(results.activate.activationsPerSec > 0)

    assertNumbers(results.fanout, ['casts', 'elapsedMs', 'castsPerSec', 'commits', 'committedStates', 'commitsPerSec', 'committedStatesPerSec', 'meanBatchSize', 'cpuUsPerCast'], 'fanout')
    assert.ok(results.fanout.casts > 0 && results.fanout.commits > 0)
    assert.ok(results.fanout.committedStates <= results.fanout.casts)

    assert.equal(results.hot.variant, 'storage')
    assert.equal(results.hot.casts, 20000)
    assertNumbers(results.hot, ['elapsedMs', 'commandsPerSec', 'commits', 'commandsPerCommit', 'cpuUsPerCommand'], 'hot')

    const m = results.mixed
    assertNumbers(m, ['concurrency', 'calls', 'queries', 'commands', 'elapsedMs', 'callsPerSec', 'commits', 'commitsPerSec', 'meanBatchSize'], 'mixed')
    assert.equal(m.queries + m.commands, m.calls)
    assert.ok(m.commands > 0 && m.queries > m.commands, '90% queries / 10% commands')
    assertLatency(m.latency, 'mixed.latency')
    assertLatency(m.queryLatency, 'mixed.queryLatency')
    assertLatency(m.commandLatency, 'mixed.commandLatency')
    assertLatency(m.roundTrip, 'mixed.roundTrip')
    assert.equal(m.roundTrip.count, 2000)
  })

  it('measures latency at a fixed offered load, open loop, for queries and commands, beside a raw fsync', () => {
    const l = results.latency
    assert.deepEqual(l.shares, [0.25, 0.5, 0.75])
    assertLatency(l.fsync, 'latency.fsync')
    assert.ok(l.fsync.count > 0)
    for (const [s, kind, method] of [[l.queries, 'query', 'get'], [l.commands, 'command', 'add']] as const) {
      assert.equal(s.kind, kind)
      assert.equal(s.method, method)
      assert.equal(s.maxConcurrency, 32)
      assert.ok(s.maxPerSec > 0)
      assert.deepEqual(s.points.map((p: { share: number }) => p.share), [0.25, 0.5, 0.75])
      for (const p of s.points) {
        const where = `latency.${kind}s@${p.share}`
        assertNumbers(p, ['offeredPerSec', 'durationMs', 'sent', 'completed', 'errors', 'achievedPerSec'], where)
        // the offered rate is the share of the measured maximum, and every call sent was answered
        assert.equal(p.offeredPerSec, Math.max(1, Math.round(s.maxPerSec * p.share)))
        assert.equal(p.sent, Math.max(1, Math.round(p.offeredPerSec * p.durationMs / 1000)))
        assert.equal(p.completed + p.errors, p.sent)
        assert.equal(p.errors, 0)
        assertLatency(p.latency, `${where}.latency`)
        assert.equal(p.latency.count, p.completed)
        assertLatency(p.sendLag, `${where}.sendLag`)
        assert.equal(p.sendLag.count, p.sent)
        assert.ok(p.latency.maxUs >= p.latency.p999Us)
        // where the phase's time went, per thread (Linux: /proc is there)
        if (process.platform === 'linux') {
          const t = p.threads
          assert.equal(t.workers.length, results.config.workers, `${where}.threads.workers`)
          for (const x of [t.main, ...t.workers, t.other]) assertNumbers(x, ['cpuMs', 'runQueueMs'], `${where}.threads`)
          for (const x of [t.main, ...t.workers]) {
            assertNumbers(x, ['gcPauses', 'gcMs'], `${where}.threads`)
            assert.ok(x.gcPauses >= 0 && x.gcMs >= 0)
          }
          assertNumbers(t, ['commits', 'committedStates'], `${where}.threads`)
          for (const q of [t.commitP50Ms, t.commitP99Ms]) assert.ok(q === null || isNum(q), `${where}: a commit-latency bound or null (beyond 1 s)`)
          if (kind === 'command') assert.ok(t.commits > 0 && t.committedStates >= t.commits, `${where}: the commands committed`)
        }
        // the calls at or above the p99, split by the GC pauses they were in flight through
        assertNumbers(p.tail, ['calls', 'mainGc', 'workerGc', 'neither', 'mainGcShare', 'workerGcShare'], `${where}.tail`)
        assert.equal(p.tail.mainGc + p.tail.workerGc + p.tail.neither, p.tail.calls)
        assert.ok(p.tail.calls >= 1 && p.tail.calls <= p.completed, `${where}: some calls are at or above the p99`)
        assert.ok(p.tail.mainGcShare >= 0 && p.tail.mainGcShare <= 1 && p.tail.workerGcShare >= 0 && p.tail.workerGcShare <= 1)
      }
    }
  })

  it('measures raw lmdb-js put + flush open loop at the 50% command rate, beside the command p99', () => {
    const raw = results.latency.rawCommit
    const at50 = results.latency.commands.points.find((p: { share: number }) => p.share === 0.5)
    assert.equal(raw.share, 0.5)
    assertNumbers(raw, ['offeredPerSec', 'durationMs', 'sent', 'completed', 'errors', 'achievedPerSec', 'transactions', 'writesPerTransaction', 'syncMs', 'pagesWritten'], 'latency.rawCommit')
    // the same offered rate as the engine's 50% phase, every write answered, on its own schedule
    assert.equal(raw.offeredPerSec, at50.offeredPerSec)
    assert.equal(raw.sent, Math.max(1, Math.round(raw.offeredPerSec * raw.durationMs / 1000)))
    assert.equal(raw.errors, 0)
    assert.equal(raw.completed, raw.sent)
    assertLatency(raw.latency, 'latency.rawCommit.latency')
    assert.equal(raw.latency.count, raw.completed)
    assertLatency(raw.sendLag, 'latency.rawCommit.sendLag')
    assert.equal(raw.sendLag.count, raw.sent)
    // lmdb-js groups the writes queued together into one transaction: at most one per write; each flushed (LMDB's own counters)
    assert.ok(raw.transactions >= 1 && raw.transactions <= raw.sent)
    assert.ok(raw.syncMs > 0 && raw.pagesWritten >= raw.transactions)
    assert.ok(Math.abs(raw.writesPerTransaction - raw.sent / raw.transactions) < 1e-9)
    if (process.platform === 'linux') assertNumbers(raw.threads, ['mainCpuMs', 'otherCpuMs', 'otherRunQueueMs'], 'latency.rawCommit.threads')
    assert.equal(results.summary.rawCommitP99At50Us, raw.latency.p99Us)
    // a second row: the command p99 over raw lmdb-js's at the same rate; the target stays on the fsync row
    const row = results.rows.find((r: { name: string }) => r.name === 'command p99 at 50% vs raw lmdb-js at that rate')
    assert.equal(row.value, at50.latency.p99Us)
    assert.deepEqual(row.baseline, { name: 'raw lmdb-js put+flush p99', value: raw.latency.p99Us, unit: 'µs' })
    assert.equal(row.target, null)
    assert.match(run.stdout, /raw lmdb-js at 50% \([\d,]+\/s offered, put \+ its flush, open loop\): p50 /)
  })

  it('records the GC pauses of every thread per scenario', () => {
    for (const name of ['activate', 'fanout', 'hot', 'mixed', 'latency']) {
      const threads = results.gc[name]
      assert.equal(threads.length, results.config.workers + 1, `${name}: main + each worker`)
      assert.equal(threads[0].threadId, 0)
      assert.equal(new Set(threads.map((t: { threadId: number }) => t.threadId)).size, threads.length)
      for (const t of threads) {
        assertNumbers(t, ['pauses', 'totalMs', 'maxMs', 'maxMinorMs', 'maxMajorMs'], `gc.${name}`)
        assert.ok(t.maxMs <= t.totalMs + 1e-9 && (t.pauses === 0) === (t.totalMs === 0), `gc.${name}: longest ≤ total`)
      }
    }
    assertNumbers(results.summary, ['gcActivateMaxMs', 'gcFanoutMaxMs', 'queryP99At50Us', 'commandP99At50Us', 'fsyncP99Us', 'rawCommitP99At50Us'], 'summary')
    assert.ok(results.rows.some((r: { name: string }) => r.name === 'longest GC pause during activation'))
    const command = results.rows.find((r: { name: string }) => r.name.startsWith('command p99 at 50%'))
    assert.equal(command.baseline.name, 'raw fsync p99')
    assert.deepEqual(command.target, { op: '<=', value: 2000, on: 'over' })
    assert.equal(command.met, command.value - command.baseline.value <= 2000)
  })

  it('measures memory per agent, with the state size apart', () => {
    const mem = results.memory
    assert.equal(mem.agents, 2000)
    assert.equal(typeof mem.method, 'string')
    assertNumbers(mem, ['rssBytesPerAgent', 'heapBytesPerAgent', 'stateHeapBytes', 'stateEncodedBytes', 'rssBytesPerAgentBeyondState', 'heapBytesPerAgentBeyondState'], 'memory')
    assert.ok(mem.stateHeapBytes > 0 && mem.stateEncodedBytes > 0)
    for (const s of [mem.before, mem.after]) {
      assertNumbers(s, ['rssBytes', 'heapUsedBytes', 'mainHeapUsedBytes', 'externalBytes', 'arrayBuffersBytes', 'idArenaBytes'], 'memory snapshot')
      assert.equal(s.workerHeapUsedBytes.length, results.config.workers)
    }
    // the agents' ids (SharedArrayBuffer chunks) are in the heap figure: memoryUsage() does not see them
    assert.ok(mem.after.idArenaBytes > 0 && mem.after.idArenaBytes >= mem.before.idArenaBytes, 'the id arenas counted')
    assert.ok(mem.after.heapUsedBytes >= mem.after.idArenaBytes)
    assertNumbers(results.final, ['rssBytes', 'peakRssBytes', 'activeAgents'], 'final')
  })

  it('measures the raw baselines in the same run', () => {
    const b = results.baselines
    assertNumbers(b.ring, ['messages', 'elapsedMs', 'msgsPerSec', 'keys'], 'baselines.ring')
    assertNumbers(b.postMessage, ['messages', 'elapsedMs', 'msgsPerSec', 'keys'], 'baselines.postMessage')
    assertNumbers(b.lmdb, ['puts', 'elapsedMs', 'putsPerSec', 'valueBytes', 'cpuUsPerPut'], 'baselines.lmdb')
    assert.equal(b.lmdb.fsync, true)
    assertNumbers(b.lmdbHotKeys, ['puts', 'elapsedMs', 'putsPerSec', 'valueBytes', 'cpuUsPerPut'], 'baselines.lmdbHotKeys')
    assert.equal(b.lmdbHotKeys.valueBytes, 5, 'msgpack of "test"')
    assertNumbers(b.ringRoundTrip, ['count', 'p50Us', 'p99Us', 'p999Us'], 'baselines.ringRoundTrip')
    assert.ok(b.ringRoundTrip.p50Us <= b.ringRoundTrip.p99Us)
    assert.equal(b.ring.keys, 2000)
  })

  it('summarizes the headline figures with ratios to the baselines', () => {
    const s = results.summary
    assertNumbers(s, [
      'agents', 'workers', 'residentAgents', 'activationsPerSec', 'castsPerSec', 'callsPerSec', 'callP50Us', 'callP99Us',
      'callP999Us', 'callRoundTripP50Us', 'commitsPerSec', 'committedStatesPerSec', 'meanBatchSize', 'hotCommandsPerSec',
      'rssBytes', 'peakRssBytes', 'bytesPerAgent', 'heapBytesPerAgent', 'stateBytes', 'bytesPerAgentBeyondState',
      'ringMsgsPerSec', 'ringRoundTripP50Us', 'postMessageMsgsPerSec', 'lmdbPutsPerSec', 'castsVsRing', 'callRoundTripVsRing',
      'committedStatesVsLmdb', 'hotVsLmdb'
    ], 'summary')
    assert.equal(s.store, 'memory')
    assert.ok(Math.abs(s.castsVsRing - s.castsPerSec / s.ringMsgsPerSec) < 1e-9)
    assert.ok(results.rows.length >= 10)
    for (const r of results.rows) {
      assert.equal(typeof r.name, 'string')
      assert.ok(isNum(r.value))
      if (r.baseline !== null) assert.ok(isNum(r.ratio))
      if (r.target !== null) assert.equal(typeof r.met, 'boolean')
    }
  })

  it('records a timeline of throughput and memory, and the phases', () => {
    assert.ok(results.timeline.length >= 3)
    for (const t of results.timeline) {
      assertNumbers(t, ['t', 'rssBytes', 'mainHeapUsedBytes', 'messages', 'messagesPerSec', 'activeAgents', 'commits', 'committedStates'], 'timeline')
      assert.equal(typeof t.phase, 'string')
    }
    const names = results.phases.map((p: { name: string }) => p.name)
    for (const n of ['baselines', 'activate', 'fanout', 'hot', 'mixed', 'latency']) assert.ok(names.includes(n), `phase ${n}`)
  })

  it('prints plain progress lines (stdout is a pipe) and the summary table', () => {
    assert.match(run.stdout, /activate: done/)
    assert.match(run.stdout, /│ figure\s+│\s+value │ baseline \(same run\)/)
    assert.match(run.stdout, /activations\/s/)
    assert.match(run.stdout, /bytes per agent beyond state/)
    assert.match(run.stdout, /raw ring/)
    assert.doesNotMatch(run.stdout, /\u001b\[/, 'no terminal escapes in a pipe')
  })

  it('leaves no scratch directory behind', () => {
    assert.deepEqual(readdirSync(dir).sort(), ['out'])
  })
})

describe('shoal bench store selection', () => {
  it('durable by default: a temporary data dir, removed afterwards; says which store ran', async () => {
    const [dir, cleanup] = tempDir()
    try {
      const run = await runCli(['bench', '--agents', '500', '--scenario', 'activate', '--no-baselines', '--no-latest', '--json', join(dir, 'r.json')], { TMPDIR: dir })
      assert.equal(run.code, 0, run.stderr)
      const r = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'))
      assert.equal(r.config.storeRequested, 'durable')
      if (r.config.store === 'durable') {
        // the engine has its LMDB store: the run used a temp dir under TMPDIR, now gone
        assert.equal(r.config.storeNote, null)
        assert.equal(r.config.durability, 'disk')
        assert.ok(r.config.dataDir.startsWith(dir))
        assert.equal(r.config.dataDirKept, false)
        assert.equal(existsSync(r.config.dataDir), false)
      } else {
        // this engine build refuses dataDir: the run says so and ran in memory
        assert.equal(r.config.store, 'memory')
        assert.match(r.config.storeNote, /durable store unavailable/)
        assert.equal(r.config.dataDir, null)
        assert.match(run.stdout, /NOTE: durable store unavailable/)
      }
      assert.deepEqual(readdirSync(dir), ['r.json'])
    } finally {
      cleanup()
    }
  })

  it('--data-dir is durable on the given directory and keeps it', async () => {
    const [dir, cleanup] = tempDir()
    try {
      const data = join(dir, 'data')
      const run = await runCli(['bench', '--agents', '500', '--scenario', 'activate', '--no-baselines', '--no-latest', '--data-dir', data, '--json', join(dir, 'r.json')], { TMPDIR: dir })
      assert.ok(existsSync(data), 'the data dir is kept')
      if (run.code === 0) {
        const r = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'))
        assert.equal(r.config.store, 'durable')
        assert.equal(r.config.dataDir, data)
        assert.equal(r.config.dataDirKept, true)
      } else {
        // asked for durable explicitly: no silent fallback when the engine cannot
        assert.equal(run.code, 1)
        assert.match(run.stderr, /SHOAL_ERR_INVALID_OPTION/)
        assert.equal(existsSync(join(dir, 'r.json')), false)
      }
    } finally {
      cleanup()
    }
  })

  it('--durability os runs the host with durability os and says so; disk is the default', async () => {
    const [dir, cleanup] = tempDir()
    try {
      const run = await runCli(['bench', '--agents', '500', '--scenario', 'activate', '--no-baselines', '--no-latest', '--durability', 'os', '--json', join(dir, 'r.json')], { TMPDIR: dir })
      assert.equal(run.code, 0, run.stderr)
      const r = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'))
      assert.equal(r.config.store, 'durable')
      assert.equal(r.config.durability, 'os')
      assert.match(run.stdout, /durability os\)/)
      for (const [args, pattern] of [
        [['--durability', 'os', '--memory'], /--durability needs a durable store/],
        [['--durability', 'fast'], /--durability.*disk, os/]
      ] as const) {
        const refused = await runCli(['bench', ...args, '--no-latest'])
        assert.equal(refused.code, 1, `${args.join(' ')}: ${refused.stderr}`)
        assert.match(refused.stderr, pattern)
      }
    } finally {
      cleanup()
    }
  })

  it('refuses --memory with --durable or --data-dir', async () => {
    for (const extra of [['--durable'], ['--data-dir', '/tmp/x']]) {
      const run = await runCli(['bench', '--memory', ...extra, '--no-latest'])
      assert.equal(run.code, 1)
      assert.match(run.stderr, /cannot be used with/)
    }
  })
})

describe('shoal bench argument checks', () => {
  it('refuses bad counts, durations and scenarios before running anything', async () => {
    for (const [args, pattern] of [
      [['--agents', '0'], /--agents.*whole number ≥ 1/],
      [['--agents', 'lots'], /--agents.*whole number/],
      [['--duration', '-1'], /--duration.*seconds/],
      [['--scenario', 'activate,warp'], /unknown scenario "warp"/],
      [['--agnets', '5'], /unknown option '--agnets'/]
    ] as const) {
      const run = await runCli(['bench', ...args, '--no-latest'])
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`)
      assert.match(run.stderr, pattern)
      assert.doesNotMatch(run.stdout, /Shoal bench:/, 'nothing ran')
    }
  })

  it('accepts 10M, 1e6 and 1_000_000 style counts', async () => {
    const { parseCount } = await import('../../src/cli/args.ts')
    assert.equal(parseCount('10M'), 10_000_000)
    assert.equal(parseCount('1e6'), 1_000_000)
    assert.equal(parseCount('1_000_000'), 1_000_000)
    assert.equal(parseCount('250k'), 250_000)
    assert.equal(parseCount('0', 0), 0)
    assert.throws(() => parseCount('1.5'), { code: 'commander.invalidArgument' })
  })
})
