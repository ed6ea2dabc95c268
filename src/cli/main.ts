#!/usr/bin/env node
/**
 * The `shoal` command (package.json `bin`):
 *
 *   shoal bench [--agents 1000000] [--workers N] [--durable | --memory] [--data-dir DIR]
 *               [--duration S] [--scenario activate,fanout,hot,mixed] [--json FILE] [--html FILE]
 *               [--dashboard [PORT]]
 *   shoal bench --hosts 3 [--etcd URL] [--agents 100000] [--workers 1] [--profile DIR] ...
 *               a cluster of host processes on 127.0.0.1 (cluster-bench.ts)
 *   shoal bench --replication [--hosts 3] [--etcd URL] [--failovers 3] [--lease-ttl 5] [--catchup-mb 48] ...
 *               replicas: 2 against replicas: 1, failover time, a replica's catch-up (replication-bench.ts)
 *
 *   shoal chaos [--seed N] [--rounds 12] [--hosts 3] [--replicas 2] [--tracks 1] [--faults kill,stop,...]
 *               host processes on a real etcd, faults from a seeded plan, then a checker
 *               (chaos/chaos-run.ts); exits 1 when an invariant broke
 *
 * `npm start` builds and runs `shoal bench` with the defaults; `npm run chaos` builds and
 * runs `shoal chaos`. Option parsing is
 * commander's; values are checked here (a count must be a positive integer, `10M` and
 * `1_000_000` accepted) so that a typo fails before minutes of benchmarking.
 */
import { readFileSync } from 'node:fs'
import { Command, InvalidArgumentError, Option } from 'commander'
import { defaults } from '../host/options.ts'
import { parseCount, parseFaultKinds, parsePort, parseScenarios, parseSeconds } from './args.ts'
import { runChaosCommand } from './chaos/chaos-command.ts'
import type { ChaosFlags } from './chaos/chaos-command.ts'
import { faultKinds } from './chaos/fault-plan.ts'
import { latestJson, runBench } from './bench-command.ts'
import { runClusterBench } from './cluster-bench.ts'
import { runReplicationBench } from './replication-bench.ts'
import { scenarioNames } from './results.ts'
import type { ScenarioName } from './results.ts'

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }

interface BenchFlags {
  agents: number
  workers: number
  durable?: boolean
  memory?: boolean
  dataDir?: string
  duration: number
  scenario: ScenarioName[]
  hotCasts: number
  concurrency: number
  seed: number
  baselines: boolean
  json?: string
  html?: string
  plain?: boolean
  latest: boolean
  dashboard?: number
  hosts: number
  etcd?: string
  profile?: string
  rounds: number
  replication?: boolean
  failovers: number
  leaseTtl: number
  catchupMb: number
  durability?: 'disk' | 'os'
  workerYoungMb?: number
}

/** `--hosts`: fewer agents and one worker per host unless asked (N processes share the cores). */
const kClusterAgents = 100_000
const kClusterWorkers = 1
/** `--replication`: hosts, counters and calls in flight per host unless asked. */
const kReplicationHosts = 3
const kReplicationAgents = 10_000
const kReplicationConcurrency = 32

function etcdUrl (text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidArgumentError(`expected an etcd client URL such as http://127.0.0.1:2379, got "${text}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`expected an http(s) etcd client URL, got "${text}"`)
  return text
}

function program (): Command {
  const cli = new Command('shoal')
    .description('Shoal: millions of small stateful agents per Node.js host')
    .version(pkg.version)
    .showHelpAfterError()

  cli.command('bench')
    .description('benchmark this host: activate millions of agents, drive casts, calls and commits, report rates, latency and memory per agent')
    .option('--agents <n>', 'agents to activate and spread traffic over (1e6, 10M, ...)', (v) => parseCount(v), 1_000_000)
    .option('--workers <n>', 'worker threads owning the agents (0 = the main thread)', (v) => parseCount(v, 0), defaults.workers)
    .addOption(new Option('--durable', 'durable state in LMDB (default): a temp directory removed afterwards, or --data-dir').conflicts('memory'))
    .addOption(new Option('--memory', 'in-memory store, nothing written to disk').conflicts(['durable', 'dataDir']))
    .option('--data-dir <dir>', 'LMDB directory to use and keep (implies --durable)')
    .option('--duration <seconds>', 'length of each timed phase (fanout, mixed); baselines take up to half of it', parseSeconds, 5)
    .addOption(new Option('--scenario <list>', `comma-separated, from ${scenarioNames.join(', ')}; or all`)
      .argParser(parseScenarios).default([...scenarioNames], 'all'))
    .option('--hot-casts <n>', 'casts to the one hot agent (DNA\'s benchmark)', (v) => parseCount(v), 1_000_000)
    .option('--worker-young-mb <n>', 'the host option workerYoungGenerationMb: each worker\'s young generation, MiB (default: V8\'s)', (v) => parseCount(v, 3))
    .option('--concurrency <n>', 'calls in flight in the mixed scenario', (v) => parseCount(v), 256)
    .option('--seed <n>', 'seed of the agent picks (same seed, same traffic)', (v) => parseCount(v), 1)
    .option('--no-baselines', 'skip the raw ring / postMessage / LMDB baselines')
    .option('--json <file>', `also write the results JSON here (always written to ${latestJson})`)
    .option('--html <file>', 'write a self-contained HTML report with charts')
    .option('--plain', 'plain progress lines even on a terminal')
    .addOption(new Option('--dashboard [port]', 'serve the live dashboard (shoal/dashboard) on 127.0.0.1 during the run and print its URL; no port: any free one')
      .argParser(parsePort).preset(0))
    .option('--hosts <n>', `a cluster of n host processes on 127.0.0.1 (cross-host casts, remote calls, the link, a join with --etcd); default --agents ${kClusterAgents}, --workers ${kClusterWorkers} per host`, (v) => parseCount(v), 1)
    .option('--etcd <url>', 'with --hosts: membership on this etcd (a join is measured) instead of a static list', etcdUrl)
    .option('--profile <dir>', 'with --hosts: write a CPU profile of every host process here (node --cpu-prof)')
    .option('--rounds <n>', 'with --hosts: round trips of each kind in the latency phase', (v) => parseCount(v), 2000)
    .option('--replication', `replication (issue 12): commands with replicas: 2 against replicas: 1, kill -9 → failover time against the lease TTL, a new replica's catch-up against a raw LMDB range copy; default --hosts ${kReplicationHosts}, --agents ${kReplicationAgents}, --concurrency ${kReplicationConcurrency} per host, an etcd started for the run unless --etcd`)
    .option('--failovers <n>', 'with --replication: kill -9 repetitions (0: none)', (v) => parseCount(v, 0), 3)
    .option('--lease-ttl <s>', 'with --replication: the etcd lease TTL, seconds', (v) => parseCount(v), 5)
    .option('--catchup-mb <n>', 'with --replication: MiB of agent state before a host joins and catches up (0: skip)', (v) => parseCount(v, 0), 48)
    .addOption(new Option('--durability <mode>', 'the host option durability: disk (default; a command acknowledged once flushed) or os (acknowledged once committed to the OS, flushed in the background); with --replication: the hosts\' durability').choices(['disk', 'os']))
    // tests run the CLI without overwriting a person's last results
    .addOption(new Option('--no-latest', `do not write ${latestJson}`).hideHelp())
    .action(async (flags: BenchFlags, command: Command) => {
      const given = (name: string): boolean => command.getOptionValueSource(name) !== 'default'
      if (flags.replication === true) {
        if (flags.memory === true) throw new InvalidArgumentError('--replication needs a durable store: replicas copy LMDB ranges (drop --memory)')
        await runReplicationBench({
          hosts: given('hosts') ? Math.max(2, flags.hosts) : kReplicationHosts,
          etcd: flags.etcd ?? null,
          agents: given('agents') ? flags.agents : kReplicationAgents,
          workers: given('workers') ? Math.max(1, flags.workers) : kClusterWorkers,
          durationMs: flags.duration * 1000,
          concurrency: given('concurrency') ? flags.concurrency : kReplicationConcurrency,
          failovers: flags.failovers,
          leaseTtlS: flags.leaseTtl,
          catchUpMiB: flags.catchupMb,
          durability: flags.durability ?? null,
          profileDir: flags.profile ?? null,
          json: flags.json ?? null,
          plain: flags.plain === true
        })
        return
      }
      if (flags.hosts > 1) {
        if (flags.memory === true) throw new InvalidArgumentError('--hosts needs a durable store: shards move between hosts with their LMDB records (drop --memory)')
        if (flags.durability !== undefined) throw new InvalidArgumentError('--durability goes with one host or --replication, not --hosts')
        await runClusterBench({
          hosts: flags.hosts,
          etcd: flags.etcd ?? null,
          agents: command.getOptionValueSource('agents') === 'default' ? kClusterAgents : flags.agents,
          workers: command.getOptionValueSource('workers') === 'default' ? kClusterWorkers : Math.max(1, flags.workers),
          durationMs: flags.duration * 1000,
          seed: flags.seed,
          baselines: flags.baselines,
          dataDir: flags.dataDir ?? null,
          profileDir: flags.profile ?? null,
          rounds: flags.rounds,
          json: flags.json ?? null,
          html: flags.html ?? null,
          latest: flags.latest ? latestJson : null,
          plain: flags.plain === true
        })
        return
      }
      if (flags.etcd !== undefined || flags.profile !== undefined) throw new InvalidArgumentError('--etcd and --profile go with --hosts n (n ≥ 2)')
      if (flags.durability !== undefined && flags.memory === true) throw new InvalidArgumentError('--durability needs a durable store (drop --memory)')
      const store = flags.memory === true ? 'memory' : 'durable'
      await runBench({
        agents: flags.agents,
        workers: flags.workers,
        store,
        dataDir: flags.dataDir ?? null,
        durationMs: flags.duration * 1000,
        scenarios: flags.scenario,
        hotCasts: flags.hotCasts,
        concurrency: flags.concurrency,
        seed: flags.seed,
        baselines: flags.baselines,
        json: flags.json ?? null,
        html: flags.html ?? null,
        latest: flags.latest ? latestJson : null,
        plain: flags.plain === true,
        dashboard: flags.dashboard ?? null,
        workerYoungMb: flags.workerYoungMb ?? null,
        ...(flags.durability === undefined ? {} : { durability: flags.durability })
      })
    })

  cli.command('chaos')
    .description('a cluster of host processes on a real etcd under seeded faults (kill -9, SIGSTOP, dropped and slow links, etcd restarts) with counters and transfers running; then checks that no acknowledged write was lost or applied twice and that money is conserved')
    .option('--seed <n>', 'seed of the fault plan and the workload (default: a random one, printed)', (v) => parseCount(v))
    .option('--rounds <n>', 'faults', (v) => parseCount(v), 12)
    .option('--tracks <n>', 'faults at once, at most (never two on one target)', (v) => parseCount(v), 1)
    .option('--hosts <n>', 'host processes', (v) => parseCount(v, 2), 3)
    .option('--replicas <n>', 'the cluster plugin\'s replicas option (2, its default with etcd: failover to in-sync replicas)', (v) => parseCount(v), 2)
    .option('--workers <n>', 'worker threads per host', (v) => parseCount(v), 1)
    .option('--lanes <n>', 'ops in flight', (v) => parseCount(v), 8)
    .option('--lease-ttl <seconds>', 'etcd lease TTL of each host', (v) => parseCount(v), 2)
    .addOption(new Option('--faults <list>', `comma-separated, from ${faultKinds.join(', ')}; or all`).argParser(parseFaultKinds).default([...faultKinds], 'all'))
    .action(async (flags: ChaosFlags) => {
      process.exitCode = await runChaosCommand(flags)
    })
  return cli
}

/** Exit once stdout has flushed (a pipe may be asynchronous), so the table is never cut short. */
function exit (code: number): void {
  process.stdout.write('', () => process.exit(code))
}

try {
  await program().parseAsync(process.argv)
  // the host's workers are gone after close(); exit explicitly so no stray handle keeps a finished run alive
  exit(typeof process.exitCode === 'number' ? process.exitCode : 0)
} catch (err) {
  const e = err as { code?: unknown, message?: unknown }
  process.stderr.write(`shoal: ${typeof e?.code === 'string' ? `${e.code}: ` : ''}${String(e?.message ?? err)}\n`)
  exit(1)
}
