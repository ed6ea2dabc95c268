/**
 * What the dashboard costs a busy host: `shoal bench`'s fanout (src/cli/scenarios/fanout.ts:
 * `add(1)` casts to random agents among N, group commit) on a host without the dashboard
 * ("off") and on a host with it and headless Chromium showing its page ("on",
 * test/helpers/browser.ts), measured in the same run.
 *
 * Both hosts live in this process for the whole run, each with its own N agents activated
 * (and its own LMDB directory); only one is driven at a time — the other's workers park.
 * The run alternates short slices, off/on then on/off, so the machine's drift falls on
 * both; the page is opened before each "on" slice (untimed, until it has drawn) and
 * closed after it, so the browser draws only while the dashboard host is measured.
 *
 * Figures: casts/s over all slices of each side (the target: on ≥ 0.95 × off), the
 * per-slice ratios, and CPU per cast — this process's CPU time (every thread) plus, for
 * "on", the browser's processes (/proc) — which other load on the cores disturbs less
 * than the rate does.
 *
 *   node dist/bench/dashboard.bench.js [--agents 200000] [--seconds 3] [--rounds 8] [--memory]
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createHost } from '../src/index.ts'
import type { Host } from '../src/index.ts'
import { dashboard } from '../plugins/dashboard/index.ts'
import type { DashboardPlugin } from '../plugins/dashboard/index.ts'
import { fanout } from '../src/cli/scenarios/fanout.ts'
import { Progress, fmt } from '../src/cli/progress.ts'
import { Rng } from '../src/cli/rng.ts'
import { ThreadProbes, Pacer } from '../src/cli/thread-probes.ts'
import { counter } from '../src/cli/bench-agents.ts'
import { agentKey } from '../src/cli/bench-ids.ts'
import { launchBrowser } from '../test/helpers/browser.ts'

function arg (name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : Number(process.argv[i + 1])
}
const agents = arg('agents', 200_000)
const seconds = arg('seconds', 3)
const rounds = arg('rounds', 8)
const memory = process.argv.includes('--memory')
const workers = 2
const agentsUrl = new URL('../src/cli/bench-agents.js', import.meta.url)
const quiet = new Writable({ write (_chunk, _enc, done) { done() } }) as unknown as NodeJS.WriteStream

/** CPU ms of this process's descendants (the browser's processes), from /proc. */
function childrenCpuMs (): number {
  const parent = new Map<number, number>()
  const cpu = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      parent.set(Number(name), Number(f[1]))
      cpu.set(Number(name), (Number(f[11]) + Number(f[12])) * 10) // utime + stime, 100 ticks/s
    } catch {}
  }
  let total = 0
  for (const [pid, ms] of cpu) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === process.pid) { total += ms; break }
    }
  }
  return total
}

function cpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

interface Side {
  readonly on: boolean
  readonly host: Host
  readonly probes: ThreadProbes
  readonly plugin: DashboardPlugin | null
  readonly dir: string
  casts: number
  elapsedMs: number
  cpuMs: number
  browserCpuMs: number
  readonly rates: number[]
}

async function side (on: boolean): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-dashboard-bench-'))
  const plugin = on ? dashboard() : null
  const host = await createHost({ agents: agentsUrl, workers, ...(memory ? {} : { dataDir: dir }), plugins: plugin === null ? [] : [plugin] })
  const probes = await ThreadProbes.find(host, workers)
  const pacer = new Pacer(probes)
  for (let i = 0; i < agents; i += 8192) {
    for (let k = i; k < Math.min(agents, i + 8192); k++) host.ref(counter, agentKey(k)).cast('add', 0)
    await pacer.step()
  }
  await pacer.drain()
  await probes.flush()
  return { on, host, probes, plugin, dir, casts: 0, elapsedMs: 0, cpuMs: 0, browserCpuMs: 0, rates: [] }
}

const started = Date.now()
const load = loadavg()[0]!.toFixed(1)
console.log(`dashboard cost: fanout over ${fmt(agents)} agents, ${workers} workers + main on ${availableParallelism()} cores, ${memory ? 'memory' : 'durable (LMDB, fsync)'}, ` +
  `${rounds} rounds of one ${seconds} s slice each side; Node ${process.version}; load average ${load}`)
const off = await side(false)
const on = await side(true)
const browser = await launchBrowser()
let seed = 1
try {
  for (let round = 0; round < rounds; round++) {
    for (const s of round % 2 === 0 ? [off, on] : [on, off]) {
      const page = s.plugin === null ? null : await browser.context.newPage()
      if (page !== null) {
        await page.setViewportSize({ width: 1400, height: 1000 })
        await page.goto(s.plugin!.url!)
        while (await page.evaluate<number>('window.shoalDashboard && window.shoalDashboard.charts === 6 ? window.shoalDashboard.samples.length : 0') < 2) {
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
      const [cpu0, browser0] = [cpuMs(), page === null ? 0 : childrenCpuMs()]
      const msgs0 = page === null ? 0 : await page.evaluate<number>('window.shoalDashboard.messages')
      const r = await fanout({
        host: s.host, probes: s.probes, progress: new Progress({ out: quiet, tty: false }), agents, durationMs: seconds * 1000,
        hotCasts: 0, concurrency: 0, rng: new Rng(seed++), scratchDir: tmpdir()
      })
      s.cpuMs += cpuMs() - cpu0
      let note = ''
      if (page !== null) {
        s.browserCpuMs += childrenCpuMs() - browser0
        note = ` (the page got ${await page.evaluate<number>('window.shoalDashboard.messages') - msgs0} messages)`
        await page.close()
      }
      s.casts += r.casts
      s.elapsedMs += r.elapsedMs
      s.rates.push(r.castsPerSec)
      console.log(`round ${round + 1} dashboard ${s.on ? 'on ' : 'off'}: ${fmt(r.castsPerSec)} casts/s${note}`)
    }
  }
} finally {
  await browser.close()
  for (const s of [off, on]) {
    await s.host.close()
    rmSync(s.dir, { recursive: true, force: true })
  }
}
const rate = (s: Side): number => s.casts / (s.elapsedMs / 1000)
const median = (xs: number[]): number => xs.length % 2 === 1 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2
const ratios = on.rates.map((r, i) => r / off.rates[i]!).sort((x, y) => x - y)
const ratio = rate(on) / rate(off)
const cpuPerK = (s: Side, withBrowser: boolean): number => (s.cpuMs + (withBrowser ? s.browserCpuMs : 0)) / (s.casts / 1000)
console.log('\n| figure | dashboard on + browser | off, same run | ratio | target |')
console.log('|---|---|---|---|---|')
console.log(`| fanout casts/s, all slices | ${fmt(rate(on))} | ${fmt(rate(off))} | ${ratio.toFixed(3)}× | ≥ 0.95× ${ratio >= 0.95 ? '✔' : '✘'} |`)
console.log(`| per-slice ratios | | | ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(3)}) | |`)
console.log(`| CPU ms per 1,000 casts, this process | ${cpuPerK(on, false).toFixed(2)} | ${cpuPerK(off, false).toFixed(2)} | ${(cpuPerK(on, false) / cpuPerK(off, false)).toFixed(3)}× | |`)
console.log(`| CPU ms per 1,000 casts, with the browser's processes | ${cpuPerK(on, true).toFixed(2)} | ${cpuPerK(off, false).toFixed(2)} | ${(cpuPerK(on, true) / cpuPerK(off, false)).toFixed(3)}× | |`)
console.log(`\nbrowser CPU while measured: ${(on.browserCpuMs / (on.elapsedMs / 1000)).toFixed(1)} ms per second`)
console.log(`${((Date.now() - started) / 1000).toFixed(0)} s; load average at the start ${load}, at the end ${loadavg()[0]!.toFixed(1)}`)
