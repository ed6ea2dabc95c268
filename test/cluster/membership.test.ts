/**
 * EtcdMembership against a real etcd (test/helpers/etcd.ts), several memberships in one
 * process, lease TTL 2 s. Each scenario uses its own key prefix; the fencing scenario
 * kills etcd, so it runs last.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Etcd3 } from 'etcd3'
import { ClusterIdInUseError, ClusterUnavailableError, DecodeError, InvalidArgumentError } from '../../native-free-core/errors.ts'
import { SHARDS } from '../../native-free-core/placement/hash.ts'
import { HashRing } from '../../native-free-core/placement/hash-ring.ts'
import { NONE, decodeShardMap, loadsOf, ownerOf, plannedMoves, sameShardMap, shardsOf, targetOf } from '../../native-free-core/placement/shard-map.ts'
import type { PlannedMove, ShardMap } from '../../native-free-core/placement/shard-map.ts'
import { ClusterKeys, rangeEnd, key, writeMap } from '../../plugins/cluster/membership/cluster-keys.ts'
import { createEtcdClient } from '../../plugins/cluster/membership/etcd-client.ts'
import { EtcdMembership } from '../../plugins/cluster/membership/etcd-membership.ts'
import { freePort, startEtcd } from '../helpers/etcd.ts'
import type { EtcdProcess } from '../helpers/etcd.ts'

const TTL_S = 2
let etcd: EtcdProcess
let raw: Etcd3
const open: EtcdMembership[] = []

before(async () => {
  etcd = await startEtcd()
  raw = createEtcdClient({ hosts: [etcd.endpoint], callTimeoutMs: 2_000, watchBackoffMaxMs: 500 })
})

after(async () => {
  await Promise.all(open.map(async (m) => await m.close()))
  raw?.close()
  await etcd?.stop()
})

function member (prefix: string, id: string, extra: { maxMovesPerHost?: number, minMembers?: number } = {}): EtcdMembership {
  const m = new EtcdMembership({ id, address: `127.0.0.1:${7400 + open.length}`, hosts: [etcd.endpoint], prefix, leaseTtlS: TTL_S, maxMovesPerHost: Infinity, ...extra })
  open.push(m)
  return m
}

async function until (what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const leaderOf = (ms: readonly EtcdMembership[]): EtcdMembership[] => ms.filter((m) => m.isLeader)

async function keysUnder (prefix: string): Promise<string[]> {
  const res = await raw.kv.range({ key: key(prefix), range_end: rangeEnd(prefix), keys_only: true })
  return res.kvs.map((kv) => kv.key.toString())
}

/** What the old owners do after streaming: report each planned move, grouped by (from, to). */
async function handOver (ms: readonly EtcdMembership[], map: ShardMap, moves: readonly PlannedMove[]): Promise<void> {
  const groups = new Map<string, number[]>()
  for (const m of moves) {
    const k = `${m.from}\u0000${m.to}`
    groups.set(k, [...(groups.get(k) ?? []), m.shard])
  }
  await Promise.all([...groups].map(async ([k, shards]) => {
    const [from, to] = k.split('\u0000') as [string, string]
    const reporter = ms.find((m) => m.self.id === from)!
    await reporter.reportHandover(shards, from, to, map.epoch)
  }))
}

test('three hosts: one leader, every shard owned, balanced, the same map everywhere; joins, handovers, leaves, leader failover', async () => {
  const P = '/s1'
  // started together: the first map waits for all three (minMembers), whoever leads
  const [a, b, c] = ['a', 'b', 'c'].map((id) => member(P, id, { minMembers: 3 }))
  const three = [a!, b!, c!]
  await Promise.all(three.map(async (m) => await m.start()))
  await until('all three see a map and one leader', () => three.every((m) => m.map() !== undefined && m.leader() !== undefined) && leaderOf(three).length === 1)
  const leaderId = leaderOf(three)[0]!.self.id
  assert.ok(three.every((m) => m.leader() === leaderId))
  const map1 = a!.map()!
  assert.ok(three.every((m) => sameShardMap(m.map()!, map1)))
  assert.ok(map1.owner.every((o) => o !== NONE))
  for (const n of loadsOf(map1).values()) assert.ok(Math.abs(n - SHARDS / 3) <= 0.1 * SHARDS / 3, `load ${n}`)
  assert.deepEqual(a!.members().map((m) => m.id), ['a', 'b', 'c'])

  // a fourth joins: targets for ≈ 1/4 of the shards, nearly all onto it, owners unchanged
  const d = member(P, 'd')
  await d.start()
  const all4 = [...three, d]
  await until('the join is planned', () => all4.every((m) => (m.map()?.epoch ?? 0) > map1.epoch && plannedMoves(m.map()!).length > 0))
  const map2 = d.map()!
  const moves = plannedMoves(map2)
  const ontoD = moves.filter((m) => m.to === 'd').length
  assert.ok(moves.length >= 0.9 * SHARDS / 4 && moves.length <= 1.5 * SHARDS / 4, `${moves.length} moves`)
  assert.ok(ontoD >= 0.9 * moves.length, `${ontoD} of ${moves.length} onto d (the rest: bounded-load cascade between a, b, c)`)
  for (let s = 0; s < SHARDS; s++) assert.equal(ownerOf(map2, s), ownerOf(map1, s))

  // the old owners hand over and report: owners move, epochs bump, the reports are deleted
  await handOver(all4, map2, moves)
  await until('every move is folded', () => all4.every((m) => plannedMoves(m.map()!).length === 0 && m.map()!.epoch > map2.epoch))
  const map3 = a!.map()!
  const ring4 = new HashRing(['a', 'b', 'c', 'd']).assign()
  for (let s = 0; s < SHARDS; s++) assert.equal(ownerOf(map3, s), ring4[s])
  for (const m of moves) assert.ok(map3.shardEpoch[m.shard]! > map2.epoch)
  assert.deepEqual(await keysUnder(`${P}/handover/`), [])

  // c leaves gracefully: its shards get targets on the others, it hands them over, then closes
  const cShards = shardsOf(map3, 'c')
  await c!.setState('leaving')
  await until('c\'s shards are planned away', () => {
    const map = a!.map()!
    return cShards.every((s) => targetOf(map, s) !== undefined)
  })
  const map4 = a!.map()!
  assert.ok(plannedMoves(map4).every((m) => m.to !== 'c'))
  await handOver(all4, map4, plannedMoves(map4))
  await until('c owns nothing', () => shardsOf(a!.map()!, 'c').length === 0 && plannedMoves(a!.map()!).length === 0)
  await c!.close()
  await until('c is gone from the members', () => a!.members().every((m) => m.id !== 'c'))
  const ring3 = new HashRing(['a', 'b', 'd']).assign()
  for (let s = 0; s < SHARDS; s++) assert.equal(ownerOf(a!.map()!, s), ring3[s])

  // the leader closes (no leave): another becomes leader at once and carries on
  const remaining = [a!, b!, d]
  // (if c led, the leadership has already moved once)
  await until('one leader among a, b, d', () => leaderOf(remaining).length === 1, 3_000)
  const oldLeader = leaderOf(remaining)[0]!
  const oldTerm = oldLeader.leaderRevision
  const oldMapRevision = oldLeader.mapRevision
  const oldShards = shardsOf(oldLeader.map()!, oldLeader.self.id)
  await oldLeader.close()
  const rest = remaining.filter((m) => m !== oldLeader)
  await until('a new leader', () => leaderOf(rest).length === 1 && rest.every((m) => m.leader() === leaderOf(rest)[0]!.self.id), 3_000)
  const newLeader = leaderOf(rest)[0]!
  // the closed leader's shards wait for it (failover is part 2): no targets
  const mapAfter = newLeader.map()!
  for (const s of oldShards) {
    assert.equal(ownerOf(mapAfter, s), oldLeader.self.id)
    assert.equal(targetOf(mapAfter, s), undefined)
  }
  // ... and the new leader plans the next join
  const e = member(P, 'e')
  await e.start()
  await until('the new leader plans e\'s join', () => plannedMoves(newLeader.map()!).some((m) => m.to === 'e'))
  assert.ok(plannedMoves(newLeader.map()!).every((m) => m.from !== oldLeader.self.id))

  // a deposed leader's write fails: its term is over, and its map revision is stale
  const keys = new ClusterKeys(P)
  const stale = await writeMap(raw, keys, { map: mapAfter, mapRevision: newLeader.mapRevision, leaderRevision: oldTerm, folded: [] })
  assert.equal(stale.ok, false, 'old term')
  const staleRev = await writeMap(raw, keys, { map: mapAfter, mapRevision: oldMapRevision, leaderRevision: newLeader.leaderRevision, folded: [] })
  assert.equal(staleRev.ok, false, 'old map revision')
  const stored = decodeShardMap((await raw.kv.range({ key: key(keys.map) })).kvs[0]!.value)
  assert.ok(stored.epoch > mapAfter.epoch, 'the stored map is the new leader\'s')
  await until('e sees the new leader\'s map', () => e.map()?.epoch === newLeader.map()!.epoch)
})

test('a host with the id of a live host is refused; it gets in once the holder is gone', async () => {
  const P = '/s2'
  const first = member(P, 'x')
  await first.start()
  const dup = member(P, 'x')
  const t0 = Date.now()
  await assert.rejects(dup.start(), (err: unknown) => err instanceof ClusterIdInUseError && (err.data as { id: string }).id === 'x')
  // it waited for the holder's lease TTL (+ 1 s) before giving up
  assert.ok(Date.now() - t0 >= TTL_S * 1000, `${Date.now() - t0} ms`)
  // a restart after the holder left: waits for its key to go, then registers
  const again = member(P, 'x')
  const starting = again.start()
  await new Promise((resolve) => setTimeout(resolve, 300))
  await first.close()
  await starting
  assert.deepEqual(again.members().map((m) => m.id), ['x'])
})

test('etcd unreachable at start: ClusterUnavailableError within the lease TTL', async () => {
  const port = await freePort()
  const m = new EtcdMembership({ id: 'n', address: '127.0.0.1:7499', hosts: [`http://127.0.0.1:${port}`], leaseTtlS: TTL_S })
  const t0 = Date.now()
  await assert.rejects(m.start(), (err: unknown) => {
    assert.ok(err instanceof ClusterUnavailableError, String(err))
    assert.equal(err.code, 'SHOAL_ERR_CLUSTER_UNAVAILABLE')
    assert.deepEqual((err.data as { endpoints: string[] }).endpoints, [`http://127.0.0.1:${port}`])
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
    return true
  })
  const elapsed = Date.now() - t0
  assert.ok(elapsed < TTL_S * 1000, `rejected after ${elapsed} ms`)
  await m.close()
  await assert.rejects(m.setState('up'), /closed/)
})

test('bad calls are typed errors', async () => {
  const m = member('/s3', 'q')
  await assert.rejects(m.reportHandover([1], 'a', 'b', 1), ClusterUnavailableError) // not started
  await m.start()
  await assert.rejects(m.reportHandover([SHARDS], 'a', 'b', 1), InvalidArgumentError)
  await assert.rejects(m.reportHandover([1], 'a', 'a', 1), InvalidArgumentError)
  await assert.rejects(m.reportHandover([1], 'a', 'b', 0), InvalidArgumentError)
  await assert.rejects(m.setState('joining' as 'up'), InvalidArgumentError)
  await m.setState('up')
  await until('the member key says up', () => m.members().find((x) => x.id === 'q')?.state === 'up')
  await m.close()
})

test('a lease etcd drops is lost: the host fences, registers again with a new lease, and unfences', async () => {
  const P = '/s4'
  const [l1, l2] = [member(P, 'l1', { minMembers: 2 }), member(P, 'l2', { minMembers: 2 })]
  await Promise.all([l1!.start(), l2!.start()])
  await until('a map', () => l1!.map() !== undefined && l2!.map() !== undefined && leaderOf([l1!, l2!]).length === 1)
  const victim = leaderOf([l1!, l2!])[0]!
  const other = victim === l1 ? l2! : l1!
  const events: string[] = []
  victim.on('fenced', () => events.push('fenced'))
  victim.on('lost', () => events.push('lost'))
  victim.on('unfenced', () => events.push('unfenced'))
  const oldLease = victim.leaseId!
  await raw.leaseClient.leaseRevoke({ ID: oldLease })
  await until('registered again', () => events.includes('unfenced'), 3_000)
  assert.deepEqual(events, ['fenced', 'lost', 'unfenced'])
  assert.notEqual(victim.leaseId, oldLease)
  assert.equal(victim.fenced, false)
  await until('both members listed again, one leader', () => other.members().length === 2 && leaderOf([l1!, l2!]).length === 1)
  // its member key is under the new lease: setState works
  await victim.setState('up')
})

test('a corrupt map value: map-error on every host, the last good map stays, nobody plans over it', async () => {
  const P = '/s5'
  const ms = [member(P, 'm1', { minMembers: 2 }), member(P, 'm2', { minMembers: 2 })]
  await Promise.all(ms.map(async (m) => await m.start()))
  await until('a map', () => ms.every((m) => m.map() !== undefined))
  const good = ms[0]!.map()!
  const errors: Error[] = []
  for (const m of ms) m.on('map-error', (e) => errors.push(e))
  const keys = new ClusterKeys(P)
  await raw.kv.put({ key: key(keys.map), value: Buffer.from('SM\u0001garbage') })
  await until('both saw it', () => errors.length === 2)
  for (const e of errors) assert.ok(e instanceof DecodeError && /corrupt shard map/.test(e.message))
  // a join would need a new map: the leader does not write one over the corrupt value
  const m3 = member(P, 'm3')
  await m3.start()
  await new Promise((resolve) => setTimeout(resolve, 300))
  const stored = (await raw.kv.range({ key: key(keys.map) })).kvs[0]!.value.toString('latin1')
  assert.equal(stored, 'SM\u0001garbage')
  assert.ok(ms.every((m) => m.map() === good || sameShardMap(m.map()!, good)))
  assert.equal(m3.map(), undefined)
  // deleting the map is no reset either: the hosts keep the last good map
  await raw.kv.deleteRange({ key: key(keys.map) })
  await until('both saw the deletion', () => errors.length === 4)
  assert.match(errors[3]!.message, /was deleted/)
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal((await raw.kv.range({ key: key(keys.map) })).kvs.length, 0, 'no leader wrote a map from scratch')
  assert.ok(sameShardMap(ms[0]!.map()!, good))
})

test('etcd killed: every host fences itself within TTL/2; etcd back: unfenced (or lost and registered again)', async () => {
  const P = '/s9'
  const ms = [member(P, 'f1'), member(P, 'f2'), member(P, 'f3')]
  const fencedAt = new Map<string, number>()
  const back = new Map<string, string>()
  for (const m of ms) {
    m.on('fenced', () => fencedAt.set(m.self.id, Date.now()))
    m.on('unfenced', () => back.set(m.self.id, back.has(m.self.id) ? back.get(m.self.id)! : 'unfenced'))
    m.on('lost', () => back.set(m.self.id, 'lost'))
  }
  await Promise.all(ms.map(async (m) => await m.start()))
  await until('a map and a leader', () => ms.every((m) => m.map() !== undefined) && leaderOf(ms).length === 1)
  assert.ok(ms.every((m) => !m.fenced))

  const killedAt = Date.now()
  await etcd.kill()
  await until('all fenced', () => fencedAt.size === 3, TTL_S * 1000)
  for (const [id, at] of fencedAt) assert.ok(at - killedAt <= TTL_S * 1000 / 2 + 500, `${id} fenced ${at - killedAt} ms after the kill`)
  assert.ok(ms.every((m) => m.fenced && !m.isLeader))

  await etcd.restart()
  await until('all serving again', () => ms.every((m) => !m.fenced), TTL_S * 1000 * 3)
  for (const m of ms) assert.ok(['unfenced', 'lost'].includes(back.get(m.self.id)!), `${m.self.id}: ${back.get(m.self.id)}`)
  await until('members and a leader again', () => ms.every((m) => m.members().length === 3) && leaderOf(ms).length === 1, TTL_S * 1000 * 2)
  assert.deepEqual((await keysUnder(`${P}/members/`)).sort(), [`${P}/members/f1`, `${P}/members/f2`, `${P}/members/f3`])
})
