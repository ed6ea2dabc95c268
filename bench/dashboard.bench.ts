/**
 * What the dashboard costs a busy host: `shoal bench`'s fanout (src/cli/scenarios/fanout.ts:
 * `add(1)` casts to random agents among N, durable, group commit) on a host without the
 * dashboard, and on a host with it and headless Chromium showing its page (test/helpers/
 * browser.ts) — in the same run, alternating off/on and on/off round by round so the
 * machine's drift falls on both. Each phase starts a fresh host (fresh LMDB directory),
 * activates the N agents, then runs the timed fanout.
 *
 * The browser runs on the same cores as the host, so its drawing is part of the cost.
 * Target (issue 14): on ≥ 0.95 × off, as the ratio of the casts/s summed over the rounds.
 *
 *   node dist/bench/dashboard.bench.js [--agents 200000] [--seconds 4] [--rounds 3] [--memory]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createHost } from '../src/index.ts'
import type { Host } from '../src/index.ts'
import { dashboard } from '../plugins/dashboard/index.ts'
import { fanout } from '../src/cli/scenarios/fanout.ts'
import { Progress, fmt } from '../src/cli/progress.ts'
import { Rng } from '../src/cli/rng.ts'
import { ThreadProbes, Pacer } from '../src/cli/thread-probes.ts'
import { counter } from '../src/cli/bench-agents.ts'
import { agentKey } from '../src/cli/bench-ids.ts'
import { launchBrowser } from '../test/helpers/browser.ts'
import type { LaunchedBrowser } from '../test/helpers/browser.ts'

function arg (name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : Number(process.argv[i + 1])
}
const agents = arg('agents', 200_000)
const seconds = arg('seconds', 4)
const rounds = arg('rounds', 3)
const memory = process.argv.includes('--memory')
const workers = 2
const agentsUrl = new URL('../src/cli/bench-agents.js', import.meta.url)
const quiet = new Writable({ write (_chunk, _enc, done) { done() } }) as unknown as NodeJS.WriteStream

interface Phase { readonly on: boolean, readonly casts: number, readonly elapsedMs: number, readonly castsPerSec: number, readonly samplesSeen: number }

async function activateAll (host: Host, probes: ThreadProbes): Promise<void> {
  const pacer = new Pacer(probes)
  for (let i = 0; i < agents; i += 8192) {
    for (let k = i; k < Math.min(agents, i + 8192); k++) host.ref(counter, agentKey(k)).cast('add', 0)
    await pacer.step()
  }
  await pacer.drain()
  await probes.barrier()
}

async function phase (on: boolean, browser: LaunchedBrowser, seed: number): Promise<Phase> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-dashboard-bench-'))
  const plugin = dashboard()
  const host = await createHost({ agents: agentsUrl, workers, ...(memory ? {} : { dataDir: dir }), plugins: on ? [plugin] : [] })
  const page = on ? await browser.context.newPage() : null
  try {
    const probes = await ThreadProbes.find(host, workers)
    await activateAll(host, probes)
    if (page !== null) {
      await page.setViewportSize({ width: 1400, height: 1000 })
      await page.goto(plugin.url!)
      // drawing before the timed phase starts
      while (await page.evaluate<number>('window.shoalDashboard ? window.shoalDashboard.samples.length : 0') < 2) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const before = page === null ? 0 : await page.evaluate<number>('window.shoalDashboard.messages')
    const r = await fanout({
      host, probes, progress: new Progress({ out: quiet, tty: false }), agents, durationMs: seconds * 1000,
      hotCasts: 0, concurrency: 0, rng: new Rng(seed)
    })
    const samplesSeen = page === null ? 0 : await page.evaluate<number>('window.shoalDashboard.messages') - before
    return { on, casts: r.casts, elapsedMs: r.elapsedMs, castsPerSec: r.castsPerSec, samplesSeen }
  } finally {
    await page?.close()
    await host.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const started = Date.now()
const load = loadavg()[0]!.toFixed(1)
console.log(`dashboard cost: fanout over ${fmt(agents)} agents, ${workers} workers + main on ${availableParallelism()} cores, ${memory ? 'memory' : 'durable (LMDB, fsync)'}, ` +
  `${seconds} s per phase, ${rounds} rounds; Node ${process.version}; load average ${load}`)
const browser = await launchBrowser()
const phases: Phase[] = []
try {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false]
    for (const on of order) {
      const p = await phase(on, browser, round + 1)
      phases.push(p)
      console.log(`round ${round + 1} dashboard ${on ? 'on ' : 'off'}: ${fmt(p.castsPerSec)} casts/s${on ? ` (page got ${p.samplesSeen} messages during the phase)` : ''}`)
    }
  }
} finally {
  await browser.close()
}
const rate = (on: boolean): number => {
  const ps = phases.filter((p) => p.on === on)
  return ps.reduce((n, p) => n + p.casts, 0) / (ps.reduce((n, p) => n + p.elapsedMs, 0) / 1000)
}
const perRound = Array.from({ length: rounds }, (_, i) => {
  const [a, b] = [phases[2 * i]!, phases[2 * i + 1]!]
  const on = a.on ? a : b
  const off = a.on ? b : a
  return on.castsPerSec / off.castsPerSec
}).sort((x, y) => x - y)
const median = (xs: number[]): number => xs.length % 2 === 1 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2
const ratio = rate(true) / rate(false)
console.log(`\n| figure | dashboard on + browser | off, same run | ratio | target |`)
console.log(`|---|---|---|---|---|`)
console.log(`| fanout casts/s (all rounds) | ${fmt(rate(true))} | ${fmt(rate(false))} | ${ratio.toFixed(3)}× | ≥ 0.95× ${ratio >= 0.95 ? '✔' : '✘'} |`)
console.log(`| per-round ratios (sorted) | | | ${perRound.map((r) => r.toFixed(3)).join(', ')} (median ${median(perRound).toFixed(3)}) | |`)
console.log(`\n${((Date.now() - started) / 1000).toFixed(0)} s; load average at the start ${load}, at the end ${loadavg()[0]!.toFixed(1)}`)
