/**
 * The chaos run (src/cli/chaos/, `npm run chaos` for long ones), short and seeded: three
 * host processes on a real etcd, each behind a TCP proxy; counters and cross-host
 * transfers driven through every host, retried with their op ids; five faults from the
 * seed's plan — a host killed with SIGKILL and restarted on its data, links cut, a host
 * stopped past its lease TTL, a host leaving gracefully under load and joining again,
 * etcd killed and restarted — then the
 * checker: the cluster settles, durable sends drain, no acknowledged op is lost, none
 * applied more often than attempted, money conserved. A failure prints the seed and the
 * fault schedule with times (the report says how to replay it).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatReport, runChaos } from '../../src/cli/chaos/chaos-run.ts'
import { faultKinds, planFaults } from '../../src/cli/chaos/fault-plan.ts'
import { clusterModule } from '../helpers/cluster-procs.ts'
import { runCli } from '../cli/run-cli.ts'

test('a fault plan is the seed\'s: the same seed, the same faults; link faults never target the host no one dials', () => {
  const o = { hosts: ['h0', 'h1', 'h2', 'h3'], rounds: 40, leaseTtlS: 2, heartbeatMs: 250 }
  assert.deepEqual(planFaults(9, o), planFaults(9, o))
  assert.notDeepEqual(planFaults(9, o), planFaults(10, o))
  const plan = planFaults(9, o)
  assert.deepEqual(new Set(plan.map((f) => f.kind)), new Set(faultKinds))
  for (const f of plan) {
    if (f.kind === 'cut' || f.kind === 'pause' || f.kind === 'delay') assert.ok(['h1', 'h2', 'h3'].includes(f.target), `${f.kind} ${f.target}`)
    else if (f.kind === 'etcd') assert.equal(f.target, 'etcd')
    else assert.ok(o.hosts.includes(f.target))
    if (f.kind === 'stop') assert.ok(f.holdMs > 2000, 'a stop outlasts the lease TTL')
  }
})

test('chaos, seed 461: kill -9 and restart, links cut, SIGSTOP past the lease, a graceful leave and rejoin (planned moves both ways), etcd restarted: no acknowledged op lost or applied twice, money conserved, the cluster settles', { timeout: 120_000 }, async () => {
  // settle and drain bounded below the test's timeout, so that a failing run reports (with
  // its schedule) instead of timing out; progress goes to stderr for the same reason
  const report = await runChaos({ seed: 461, rounds: 5, hosts: 3, replicas: 2, clusterModule, settleTimeoutMs: 20_000, drainTimeoutMs: 20_000, log: (line) => console.error(`# ${line}`) })
  const text = formatReport(report)
  assert.deepEqual(report.violations, [], text)
  assert.deepEqual(report.events.map((e) => e.fault.kind), ['kill', 'cut', 'stop', 'leave', 'etcd'], text)
  assert.ok(report.acked > 100, `the load ran: ${report.acked} ops acknowledged\n${text}`)
  assert.ok(report.transfers > 20 && report.adds > 20, text)
  // the faults were felt: callers saw retriable errors and retried
  assert.ok(report.attempts > report.ops, text)
  // the leave and the rejoin moved shards both ways
  assert.ok(report.check.hosts.some((h) => h.movedIn > 0) && report.check.hosts.some((h) => h.movedOut > 0), text)
})

test('shoal chaos: a bad --faults or --hosts is named before anything starts', async () => {
  const faults = await runCli(['chaos', '--faults', 'kill,flood'])
  assert.equal(faults.code, 1)
  assert.match(faults.stderr, /--faults.*unknown fault "flood" \(choose from kill, stop, cut, pause, delay, etcd, leave, or all\)/)
  const hosts = await runCli(['chaos', '--hosts', '1'])
  assert.equal(hosts.code, 1)
  assert.match(hosts.stderr, /--hosts.*≥ 2/)
})
