/**
 * Replication and failover with every host in a process of its own, on a real etcd
 * (test/helpers/cluster-procs.ts), `replicas: 2` (the default with etcd):
 *
 *   - three hosts under load; kill -9 of one: its agents answer again from their in-sync
 *     replicas within the lease TTL + 2 s, every counter holds at least the adds
 *     acknowledged to its callers (none lost) and at most the adds attempted (none applied
 *     twice); the killed host restarted on its data directory rejoins, catches up, and
 *     takes shards back only through planned moves — and the counters still hold;
 *   - a host paused past its lease (SIGSTOP, then SIGCONT) never answers from the state it
 *     had: its agents, served elsewhere meanwhile, read through it are the new values or
 *     a retriable error.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startEtcd } from '../helpers/etcd.ts'
import { clusterProcs } from '../helpers/cluster-procs.ts'
import type { Agents, LoadReport } from '../helpers/cluster-procs.ts'
import { replicasInSync } from './replica-helpers.ts'

const AGENTS = 600
const counters: Agents = { type: 'counter', keys: { prefix: 'c', count: AGENTS } }
const TTL_S = 2

function check (values: readonly unknown[], acked: Float64Array, attempts: number, who: string): void {
  const lost: string[] = []
  let sum = 0
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i] ?? 0)
    sum += v
    if (v < acked[i]!) lost.push(`c${i}: ${v} < ${acked[i]} acknowledged`)
  }
  assert.deepEqual(lost.slice(0, 10), [], `${who}: ${lost.length} counters lost acknowledged adds`)
  assert.ok(sum <= attempts, `${who}: ${sum} adds applied, only ${attempts} attempted (some applied twice)`)
}

function add (into: Float64Array, r: LoadReport): number {
  for (let i = 0; i < into.length; i++) into[i]! += r.acked[i]!
  return r.calls + r.errors // the calls that failed may have run
}

test('kill -9 of a host under load: its agents answer again from their replicas within TTL + 2 s, no acknowledged add lost, none applied twice; restarted, it rejoins through planned moves', { timeout: 180_000 }, async () => {
  const etcd = await startEtcd()
  const c = await clusterProcs({
    membership: { etcd: { hosts: [etcd.endpoint], leaseTtlS: TTL_S, minMembers: 3 } },
    // the load's calls in flight to b when it dies are never answered: loadStop waits this
    // long for them (10 s made it most of the test's time); the failover is due within
    // TTL + 2 s, well inside it
    host: { callTimeoutMs: 5_000, durability: 'os' }
  })
  try {
    await c.start(['a', 'b', 'c'])
    await c.settled()
    await replicasInSync(c, ['a', 'b', 'c'])
    const owners = (await c.host('a').owners(counters)).map(String)
    const ofB = owners.flatMap((o, i) => o === 'b' ? [i] : [])
    assert.ok(ofB.length > 100, `b serves its part of the counters (${ofB.length})`)

    const acked = new Float64Array(AGENTS)
    let attempts = 0
    for (const id of ['a', 'c']) await c.host(id).loadStart('adds', counters, 'add', 1, 16)
    await new Promise((resolve) => setTimeout(resolve, 800))
    const killedAt = Date.now()
    await c.kill('b')
    // the first answer from the new owner of one of b's agents, read through a
    let firstAnswerMs = -1
    for (;;) {
      try {
        await c.host('a').call('counter', `c${ofB[0]!}`, 'get', undefined, { timeoutMs: 1000 })
        firstAnswerMs = Date.now() - killedAt
        break
      } catch {
        if (Date.now() - killedAt > 30_000) break
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    console.log(`# failover: first answer from b's agent ${firstAnswerMs} ms after kill -9 (lease TTL ${TTL_S} s)`)
    assert.ok(firstAnswerMs >= 0 && firstAnswerMs <= TTL_S * 1000 + 2000, `b's agents answer again ${firstAnswerMs} ms after the kill (TTL ${TTL_S} s + 2 s)`)
    await new Promise((resolve) => setTimeout(resolve, 500))
    for (const id of ['a', 'c']) attempts += add(acked, await c.host(id).loadStop('adds'))
    const after = await c.host('c').callEach(counters, 'get', undefined, 64)
    assert.equal(after.errors, 0, JSON.stringify(after.errorSamples))
    check(after.values, acked, attempts, 'after the failover')

    // b comes back on its data: it catches up and takes shards back by planned moves
    await c.start(['b'])
    await c.host('a').loadStart('more', counters, 'add', 1, 8)
    await c.settled()
    await replicasInSync(c, ['a', 'b', 'c'])
    attempts += add(acked, await c.host('a').loadStop('more'))
    const b = await c.host('b').stats<{ cluster: { shardsServed: number, movedIn: number } }>()
    assert.ok(b.cluster.shardsServed > 700 && b.cluster.movedIn === b.cluster.shardsServed, `b serves shards again, each moved in (${b.cluster.shardsServed} served, ${b.cluster.movedIn} moved in)`)
    const final = await c.host('b').callEach(counters, 'get', undefined, 64)
    assert.equal(final.errors, 0, JSON.stringify(final.errorSamples))
    check(final.values, acked, attempts, 'after b rejoined')
  } finally {
    await c.close()
    await etcd.stop()
  }
})

test('a host paused past its lease (SIGSTOP, then SIGCONT) never answers from the state it had: new values or a retriable error', { timeout: 120_000 }, async () => {
  const etcd = await startEtcd()
  const c = await clusterProcs({
    membership: { etcd: { hosts: [etcd.endpoint], leaseTtlS: TTL_S, minMembers: 3 } },
    host: { callTimeoutMs: 5_000, durability: 'os' }
  })
  try {
    await c.start(['a', 'b', 'c'])
    await c.settled()
    await replicasInSync(c, ['a', 'b', 'c'])
    const owners = (await c.host('a').owners(counters)).map(String)
    const keys = owners.flatMap((o, i) => o === 'b' ? [`c${i}`] : []).slice(0, 20)
    for (const k of keys) await c.host('b').call('counter', k, 'add', 1) // resident on b, value 1
    await c.kill('b', 'SIGSTOP')
    await new Promise((resolve) => setTimeout(resolve, TTL_S * 1000 + 1500))
    // served by their replicas now: each goes to 11 (how soon is the kill -9 test's to
    // measure; here a loaded machine may take longer, so the bound is generous)
    const deadline = performance.now() + 30_000
    for (const k of keys) {
      for (;;) {
        try {
          await c.host('a').call('counter', k, 'add', 10, { timeoutMs: 1000 })
          break
        } catch (err) {
          if ((err as { retriable?: boolean }).retriable !== true || performance.now() > deadline) throw err
          await new Promise((resolve) => setTimeout(resolve, 25))
        }
      }
    }
    await c.kill('b', 'SIGCONT')
    const seen: string[] = []
    for (const k of keys) {
      try {
        const v = await c.host('b').call('counter', k, 'get', undefined, { timeoutMs: 3000 })
        if (v !== 11) seen.push(`${k}: ${String(v)}`)
      } catch (err) {
        const retriable = (err as { retriable?: boolean }).retriable === true
        if (!retriable) seen.push(`${k}: ${String(err)}`)
      }
    }
    assert.deepEqual(seen, [], 'no stale value (1) and no non-retriable error from the paused host')
    await c.settled()
    // settled maps, but b's links may still be coming back from the pause: a retriable error
    // is the contract here too (ShardUnavailableError while a link reconnects); values must be 11
    for (const k of keys) {
      for (let tries = 0; ; tries++) {
        try {
          assert.equal(await c.host('b').call('counter', k, 'get'), 11)
          break
        } catch (err) {
          if ((err as { retriable?: boolean }).retriable !== true || tries > 100) throw err
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
    }
  } finally {
    await c.close()
    await etcd.stop()
  }
})
