/**
 * The shard map's replicas and failover (native-free-core/placement/shard-map.ts):
 * the replica rule, a join's churn, failover to an in-sync member only, the encoding
 * (and the maps written before replicas), determinism; and random histories with
 * deaths, where owners report their replicas in sync.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DecodeError, InvalidArgumentError } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { HashRing } from '../../../native-free-core/placement/hash-ring.ts'
import { inSyncLookup, markInSync, newInSyncRecord, setShardEpoch } from '../../../native-free-core/placement/in-sync.ts'
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'
import {
  NONE, completeMoves, decodeShardMap, encodeShardMap, nextMap, ownerOf, plan, plannedMoves, replicaShardsOf, replicasOf,
  sameShardMap, shardsOf, staticShardMap, targetOf
} from '../../../native-free-core/placement/shard-map.ts'
import type { InSyncLookup, MemberState, PlanMember, ShardMap } from '../../../native-free-core/placement/shard-map.ts'

const SEED = 0x5eed_0012
const up = (...ids: string[]): PlanMember[] => ids.map((id) => ({ id, state: 'up' }))

function mustPlan (map: ShardMap | null, members: readonly PlanMember[], options: Parameters<typeof plan>[2] = {}): ShardMap {
  const next = plan(map, members, { maxMovesPerHost: Infinity, ...options })
  assert.ok(next !== null, 'plan changed nothing')
  return next
}

/**
 * Every shard's replicas follow the rule for these members (and the map decodes to
 * itself); `planned` false: a completeMoves write, which only swaps owner and target.
 */
function checkReplicas (map: ShardMap, members: readonly PlanMember[], r: number, planned = true): void {
  assert.equal(map.replicaCount, r)
  assert.equal(map.replicas.length, SHARDS * (r - 1))
  const ringIds = members.filter((m) => m.state !== 'leaving').map((m) => m.id)
  const ring = ringIds.length > 0 ? new HashRing(ringIds) : null
  const ringSet = new Set(ringIds)
  for (let s = 0; s < SHARDS; s++) {
    const owner = ownerOf(map, s)
    const reps = replicasOf(map, s)
    assert.equal(new Set(reps).size, reps.length, `shard ${s}: replicas repeat`)
    assert.ok(!reps.includes(owner!), `shard ${s}: its owner is a replica`)
    if (!planned) continue
    for (const h of reps) assert.ok(ringSet.has(h), `shard ${s}: replica ${h} is not a member in the ring`)
    const others = ringIds.filter((h) => h !== owner).length
    if (reps.length < r - 1) assert.equal(reps.length, others, `shard ${s}: a replica is missing with ${others} other hosts`)
    // NONE only trailing
    const k = r - 1
    for (let i = 1; i < k; i++) if (map.replicas[s * k + i - 1] === NONE) assert.equal(map.replicas[s * k + i], NONE)
    // the rule itself: the first R − 1 of the preference list other than the owner
    if (ring !== null) assert.deepEqual(reps, ring.successors(s, r).filter((h) => h !== owner).slice(0, r - 1), `shard ${s}`)
  }
  assert.ok(sameShardMap(decodeShardMap(encodeShardMap(map)), map))
}

/** An in-sync oracle: owner → record, built from what a map names. */
function recordsOf (map: ShardMap, which: (shard: number, replicas: string[], owner: string) => readonly string[]): Map<string, InSyncRecord> {
  const records = new Map<string, InSyncRecord>()
  for (let s = 0; s < SHARDS; s++) {
    const owner = ownerOf(map, s)
    if (owner === undefined) continue
    let rec = records.get(owner)
    if (rec === undefined) records.set(owner, rec = newInSyncRecord(owner))
    setShardEpoch(rec, s, map.shardEpoch[s]!)
    for (const h of which(s, replicasOf(map, s), owner)) markInSync(rec, s, h, true)
  }
  return records
}

test('replicas: the next R − 1 hosts of the ring preference list other than the owner; distinct, never the owner, missing only when the cluster is too small', () => {
  for (const r of [2, 3, 5]) {
    const members = up('a', 'b', 'c', 'd', 'e')
    const map = mustPlan(null, members, { replicas: r })
    checkReplicas(map, members, r)
    assert.ok(map.replicas.every((h) => h !== NONE))
    assert.deepEqual(replicasOf(map, 7).length, r - 1)
    // the same members again: nothing to write
    assert.equal(plan(map, members, { replicas: r }), null)
    // replicaShardsOf is the inverse of replicasOf
    for (const id of ['a', 'c']) {
      const mine = replicaShardsOf(map, id)
      assert.deepEqual(mine, Array.from({ length: SHARDS }, (_, s) => s).filter((s) => replicasOf(map, s).includes(id)))
    }
  }
  // too few hosts: R = 3 with 2 hosts leaves one replica per shard, R = 2 with one host none
  const two = mustPlan(null, up('a', 'b'), { replicas: 3 })
  checkReplicas(two, up('a', 'b'), 3)
  for (let s = 0; s < SHARDS; s++) assert.deepEqual(replicasOf(two, s), [ownerOf(two, s) === 'a' ? 'b' : 'a'])
  const one = mustPlan(null, up('a'), { replicas: 2 })
  assert.ok(one.replicas.every((h) => h === NONE))
  // a third host fills them in, at the next epoch
  const three = mustPlan(two, up('a', 'b', 'c'))
  assert.equal(three.replicaCount, 3, 'R defaults to the map\'s own')
  checkReplicas(three, up('a', 'b', 'c'), 3)
  // a leaving host is no replica; a gone owner keeps its shards but not its replica roles
  const leaving = mustPlan(three, [...up('a', 'b'), { id: 'c', state: 'leaving' }])
  checkReplicas(leaving, [...up('a', 'b'), { id: 'c', state: 'leaving' }], 3)
  assert.equal(replicaShardsOf(leaving, 'c').length, 0)
  // R = 1: no replicas, the map as before
  const single = mustPlan(null, up('a', 'b', 'c'))
  assert.equal(single.replicaCount, 1)
  assert.equal(single.replicas.length, 0)
  assert.deepEqual(replicasOf(single, 0), [])
  assert.equal(staticShardMap(['a', 'b']).replicaCount, 1)
})

test('a change of replicas alone is a map change; R up and down', () => {
  const members = up('a', 'b', 'c')
  const m1 = mustPlan(null, members)
  const m2 = mustPlan(m1, members, { replicas: 2 })
  assert.equal(m2.epoch, 2)
  for (let s = 0; s < SHARDS; s++) {
    assert.equal(ownerOf(m2, s), ownerOf(m1, s))
    assert.equal(m2.shardEpoch[s], m1.shardEpoch[s], 'replicas do not touch shard epochs')
  }
  checkReplicas(m2, members, 2)
  const m3 = mustPlan(m2, members, { replicas: 3 })
  checkReplicas(m3, members, 3)
  const m4 = mustPlan(m3, members, { replicas: 1 })
  assert.equal(m4.replicaCount, 1)
  assert.equal(m4.replicas.length, 0)
  assert.equal(encodeShardMap(m4)[2], 1, 'R = 1 is written in the format before replicas')
})

test('same inputs, same map', () => {
  const members = [...up('h1', 'h2', 'h3', 'h4'), { id: 'h5', state: 'joining' as const }]
  const base = mustPlan(null, up('h1', 'h2', 'h3', 'h4'), { replicas: 3 })
  const a = mustPlan(base, members)
  const b = mustPlan(decodeShardMap(encodeShardMap(base)), [...members].reverse())
  assert.ok(sameShardMap(a, b))
  assert.deepEqual(encodeShardMap(a), encodeShardMap(b))
  // failover too
  const gone = up('h1', 'h2', 'h3')
  const lookup = inSyncLookup(recordsOf(base, (_s, reps) => reps))
  const f1 = nextMap(base, gone, [], { inSync: lookup })!
  const f2 = nextMap(decodeShardMap(encodeShardMap(base)), [...gone].reverse(), [], { inSync: lookup })!
  assert.deepEqual(encodeShardMap(f1), encodeShardMap(f2))
})

test('a join changes few replica sets: the new host takes about R/(n + 1) of the copies', () => {
  for (const r of [2, 3]) {
    for (const n of [3, 6]) {
      const ids = Array.from({ length: n }, (_, i) => `host-${i}`)
      const map = mustPlan(null, up(...ids), { replicas: r })
      const joinedMembers = [...up(...ids), { id: 'new', state: 'joining' as const }]
      const joined = mustPlan(map, joinedMembers)
      checkReplicas(joined, joinedMembers, r)
      const done = nextMap(joined, joinedMembers, plannedMoves(joined))!
      checkReplicas(done, joinedMembers, r)
      const copies = (m: ShardMap, s: number): string => [ownerOf(m, s)!, ...replicasOf(m, s)].sort().join()
      let replicaSets = 0
      let copySets = 0
      for (let s = 0; s < SHARDS; s++) {
        if ([...replicasOf(map, s)].sort().join() !== [...replicasOf(joined, s)].sort().join()) replicaSets++
        if (copies(map, s) !== copies(done, s)) copySets++
      }
      // ideal: the new host holds r/(n + 1) of all copies, each one a changed copy set
      const ideal = r * SHARDS / (n + 1)
      assert.ok(replicaSets <= 1.5 * ideal, `R=${r} n=${n}: ${replicaSets} replica sets changed at the join, ideal ${ideal}`)
      assert.ok(copySets <= 1.5 * ideal, `R=${r} n=${n}: ${copySets} copy sets changed once settled, ideal ${ideal}`)
      assert.ok(copySets >= 0.8 * ideal, `R=${r} n=${n}: the new host took only ${copySets} copies`)
    }
  }
})

test('a planned move: the target is a replica already; once done the old owner stands in until the next plan', () => {
  const members4 = up('a', 'b', 'c', 'd')
  const map = mustPlan(null, up('a', 'b', 'c'), { replicas: 2 })
  const joined = mustPlan(map, members4)
  const moves = plannedMoves(joined)
  assert.ok(moves.length > 0)
  for (const m of moves) assert.deepEqual(replicasOf(joined, m.shard), [m.to], `shard ${m.shard}`)
  const done = completeMoves(joined, moves)!
  for (const m of moves) {
    assert.equal(ownerOf(done, m.shard), m.to)
    assert.deepEqual(replicasOf(done, m.shard), [m.from], 'the old owner holds the whole shard')
  }
  // the next plan puts every shard's replicas back on the rule
  checkReplicas(mustPlan(done, members4), members4, 2)
})

test('failover: a gone owner\'s shard goes to an in-sync member at the new epoch — never to a host not in sync, never to a non-member', () => {
  const members = up('a', 'b', 'c', 'd')
  const map = mustPlan(null, members, { replicas: 3 })
  const dShards = shardsOf(map, 'd')
  assert.ok(dShards.length > 900)
  // d's record: by shard mod 6 — its first replica / its second only / both / nobody /
  // a host that is not a member / a member that is not its replica
  const kind = (s: number): number => s % 6
  const records = recordsOf(map, (s, reps, owner) => {
    switch (kind(s)) {
      case 0: return [reps[0]!]
      case 1: return [reps[1]!]
      case 2: return [reps[1]!, reps[0]!]
      case 3: return []
      case 4: return ['zz']
      default: return ['a', 'b', 'c'].filter((h) => !reps.includes(h) && h !== owner).slice(0, 1)
    }
  })
  const asked: [string, number, number][] = []
  const lookup = inSyncLookup(records)
  const spy: InSyncLookup = (owner, shard, epoch) => {
    asked.push([owner, shard, epoch])
    return lookup(owner, shard, epoch)
  }
  const live = up('a', 'b', 'c')
  const next = nextMap(map, live, [], { inSync: spy })!
  assert.equal(next.epoch, map.epoch + 1)
  assert.deepEqual(asked.map(([o]) => o).filter((o) => o !== 'd'), [], 'only the gone owner is asked about')
  assert.deepEqual(asked.map(([, s]) => s), dShards)
  for (const [, s, e] of asked) assert.equal(e, map.shardEpoch[s])
  for (const s of dShards) {
    const reps = replicasOf(map, s)
    const owner = ownerOf(next, s)
    switch (kind(s)) {
      case 0: case 2: assert.equal(owner, reps[0], `shard ${s}: the first replica in sync`); break
      case 1: assert.equal(owner, reps[1], `shard ${s}`); break
      case 3: case 4: assert.equal(owner, 'd', `shard ${s}: nobody in sync is a member: it waits for d`); break
      default: assert.ok(owner !== 'd' && !reps.includes(owner!), `shard ${s}: the in-sync member (not a replica) takes it`)
    }
    if (owner === 'd') {
      assert.equal(next.shardEpoch[s], map.shardEpoch[s])
    } else {
      assert.equal(next.shardEpoch[s], next.epoch)
      assert.equal(targetOf(next, s), undefined)
    }
  }
  for (let s = 0; s < SHARDS; s++) {
    if (ownerOf(map, s) !== 'd') {
      assert.equal(ownerOf(next, s), ownerOf(map, s))
      assert.equal(next.shardEpoch[s], map.shardEpoch[s])
    }
  }
  checkReplicas(next, live, 3)
  // a later plan moves the promoted shards to their ring owners (planned moves)
  const later = mustPlan(next, live, { inSync: lookup })
  for (const s of dShards) {
    if (ownerOf(next, s) !== 'd' && ownerOf(next, s) !== new HashRing(['a', 'b', 'c']).ownerOf(s)) assert.ok(targetOf(later, s) !== undefined)
  }
})

test('failover needs R ≥ 2, an inSync lookup, and a record of the shard\'s current epoch', () => {
  const members = up('a', 'b', 'c')
  const map = mustPlan(null, members, { replicas: 2 })
  const everyone = inSyncLookup(recordsOf(map, (_s, reps) => reps))
  const cShards = shardsOf(map, 'c')
  const stays = (next: ShardMap | null): void => {
    const after = next ?? map
    for (const s of cShards) {
      assert.equal(ownerOf(after, s), 'c')
      assert.equal(after.shardEpoch[s], map.shardEpoch[s])
    }
  }
  stays(plan(map, up('a', 'b')))
  stays(plan(map, up('a', 'b'), { replicas: 1, inSync: everyone }))
  // the record is for another epoch of the shard: it says nothing
  const stale = recordsOf(map, (_s, reps) => reps)
  for (const s of cShards) setShardEpoch(stale.get('c')!, s, map.shardEpoch[s]! + 1)
  stays(plan(map, up('a', 'b'), { inSync: inSyncLookup(stale) }))
  // the in-sync host is leaving: still a member, so it may take over
  const next = plan(map, [{ id: 'a', state: 'leaving' }, ...up('b')], { inSync: everyone })!
  for (const s of cShards) assert.equal(ownerOf(next, s), replicasOf(map, s)[0])
  // when no member is in the ring, failover still happens
  const onlyLeaving = plan(map, [{ id: 'a', state: 'leaving' }, { id: 'b', state: 'leaving' }], { inSync: everyone })!
  for (const s of cShards) assert.equal(ownerOf(onlyLeaving, s), replicasOf(map, s)[0])
  assert.throws(() => plan(map, members, { replicas: 6 }), /replicas must be an integer from 1 to 5 \(got 6\)/)
  assert.throws(() => plan(map, members, { replicas: 0 }), InvalidArgumentError)
})

test('encode/decode: round trips with replicas; a map written before replicas decodes as R = 1 and gains them at the next plan', () => {
  const settled = mustPlan(null, up('host-a', 'host-b', 'host-c', 'host-d'), { replicas: 3 })
  const bytes = encodeShardMap(settled)
  assert.equal(bytes[2], 2)
  assert.ok(sameShardMap(decodeShardMap(bytes), settled))
  assert.ok(bytes.length < 40_000, `${bytes.length} bytes`)
  const moving = mustPlan(settled, up('host-a', 'host-b', 'host-c', 'host-d', 'ключ-🦈'))
  assert.ok(sameShardMap(decodeShardMap(encodeShardMap(moving)), moving))
  const small = mustPlan(null, up('a'), { replicas: 2 })
  assert.ok(sameShardMap(decodeShardMap(encodeShardMap(small)), small))
  // the format before replicas, byte for byte: an R = 1 map's encoding is version 1
  const old = mustPlan(null, up('a', 'b', 'c'))
  const oldBytes = encodeShardMap(old)
  assert.deepEqual([...oldBytes.subarray(0, 3)], [0x53, 0x4D, 1])
  const decoded = decodeShardMap(oldBytes)
  assert.equal(decoded.replicaCount, 1)
  assert.equal(decoded.replicas.length, 0)
  const upgraded = mustPlan(decoded, up('a', 'b', 'c'), { replicas: 2 })
  assert.equal(upgraded.epoch, old.epoch + 1)
  checkReplicas(upgraded, up('a', 'b', 'c'), 2)
  // a version-1 map with a replica section is not one
  assert.throws(() => decodeShardMap(new Uint8Array([...oldBytes, 5, 2])), /unknown section 5/)
})

test('a corrupt map with replicas is a DecodeError, never a crash or a wrong map', () => {
  const good = encodeShardMap(mustPlan(mustPlan(null, up('a', 'b', 'c'), { replicas: 3 }), up('a', 'b', 'c', 'd'), { maxMovesPerHost: 5 }))
  for (let n = 0; n < good.length; n++) assert.throws(() => decodeShardMap(good.subarray(0, n)), DecodeError, `prefix of ${n}`)
  assert.throws(() => decodeShardMap(new Uint8Array([...good, 1])), /unknown section 1/)
  // the owner as its own replica, a replica twice, a hole: hand-made from a 2-host map
  const two = mustPlan(null, up('a', 'b'), { replicas: 3 })
  const tamper = (edit: (m: { owner: Uint16Array, replicas: Uint16Array }) => void): Uint8Array => {
    const m = { ...two, owner: two.owner.slice(), replicas: two.replicas.slice() }
    edit(m)
    return encodeShardMap(m)
  }
  assert.throws(() => decodeShardMap(tamper((m) => { m.replicas[0] = m.owner[0]! })), /its owner is also its replica/)
  assert.throws(() => decodeShardMap(tamper((m) => { m.replicas[1] = m.replicas[0]! })), /a replica named twice/)
  assert.throws(() => decodeShardMap(tamper((m) => { m.replicas[1] = m.replicas[0]!; m.replicas[0] = NONE })), /a replica after a missing one/)
  assert.throws(() => decodeShardMap(tamper((m) => { m.replicas[0] = 7 })), /out of range/)
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
    const bad = good.slice()
    for (const [at, x] of flips) bad[at]! ^= x
    let map: ShardMap
    try { map = decodeShardMap(bad) } catch (e) {
      assert.ok(e instanceof DecodeError, String(e))
      return
    }
    assert.ok(sameShardMap(decodeShardMap(encodeShardMap(map)), map))
    const k = map.replicaCount - 1
    for (let s = 0; s < SHARDS; s++) {
      for (let i = 0; i < k; i++) {
        const h = map.replicas[s * k + i]!
        assert.ok(h === NONE || (h < map.hosts.length && h !== map.owner[s]))
      }
    }
  }), { seed: SEED, numRuns: 1_000 })
})

// ---------------------------------------------------------------------------------
// random histories with deaths: owners keep their replicas in sync (or not)

type Op =
  | { kind: 'join', id: number }
  | { kind: 'leave', id: number }
  | { kind: 'die', id: number }
  | { kind: 'handover', fraction: number }
  | { kind: 'sync', fraction: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('join' as const), id: fc.nat(6) }), weight: 3 },
  fc.record({ kind: fc.constant('leave' as const), id: fc.nat(6) }),
  { arbitrary: fc.record({ kind: fc.constant('die' as const), id: fc.nat(6) }), weight: 2 },
  // percentages: fc.double leans hard on its edge values (0), which would sync nothing
  { arbitrary: fc.record({ kind: fc.constant('handover' as const), fraction: fc.integer({ min: 0, max: 100 }).map((p) => p / 100) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('sync' as const), fraction: fc.integer({ min: 0, max: 100 }).map((p) => p / 100) }), weight: 2 }
)

test('random histories with deaths: an owner changes only by assignment, a finished move, or failover to a member its owner said was in sync', () => {
  const seen = { failovers: 0, waits: 0 }
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 20 }), fc.integer({ min: 2, max: 4 }), (ops, r) => {
    const members = new Map<string, MemberState>()
    const records = new Map<string, InSyncRecord>()
    const lookup = inSyncLookup(records)
    let map: ShardMap | null = null
    const step = (next: ShardMap | null, planned = true): void => {
      if (next === null) return
      const before = map
      assert.equal(next.epoch, (before?.epoch ?? 0) + 1)
      const list = [...members].map(([id, state]) => ({ id, state }))
      checkReplicas(next, list, r, planned)
      if (before !== null) {
        for (let s = 0; s < SHARDS; s++) {
          const was = ownerOf(before, s)
          const is = ownerOf(next, s)
          if (was === is) {
            assert.equal(next.shardEpoch[s], before.shardEpoch[s])
            if (was !== undefined && !members.has(was)) seen.waits++
            continue
          }
          assert.equal(next.shardEpoch[s], next.epoch)
          if (was === undefined) continue
          if (members.has(was)) {
            assert.equal(targetOf(before, s), is, `shard ${s}: ${was} is a member, yet lost the shard to ${String(is)} without a move`)
            continue
          }
          // failover (the reports of a gone owner are never folded here): the new owner
          // is a member the old one named in sync at this epoch
          assert.ok(members.has(is!), `shard ${s}: ${String(is)} is no member`)
          assert.ok(lookup(was, s, before.shardEpoch[s]!).includes(is!), `shard ${s}: ${String(is)} was not in sync`)
          assert.equal(targetOf(next, s), undefined)
          seen.failovers++
        }
      }
      map = next
    }
    for (const o of ops) {
      if (o.kind === 'join') members.set(`h${o.id}`, 'joining')
      else if (o.kind === 'leave' && members.has(`h${o.id}`)) members.set(`h${o.id}`, 'leaving')
      else if (o.kind === 'die') members.delete(`h${o.id}`)
      else if (o.kind === 'handover' && map !== null) {
        const all = plannedMoves(map).filter((m) => members.has(m.from))
        step(completeMoves(map, all.slice(0, Math.ceil(all.length * o.fraction))), false)
      } else if (o.kind === 'sync' && map !== null) {
        // live owners publish: a fraction of their shards with every replica in sync, the rest with none
        const current: ShardMap = map
        const cut = Math.floor(SHARDS * o.fraction)
        for (let s = 0; s < SHARDS; s++) {
          const owner = ownerOf(current, s)
          if (owner === undefined || !members.has(owner)) continue
          let rec = records.get(owner)
          if (rec === undefined) records.set(owner, rec = newInSyncRecord(owner))
          setShardEpoch(rec, s, current.shardEpoch[s]!)
          for (const h of [...rec.hosts.keys()]) markInSync(rec, s, h, false)
          if (s < cut) for (const h of replicasOf(current, s)) markInSync(rec, s, h, true)
        }
      }
      step(plan(map, [...members].map(([id, state]) => ({ id, state })), { maxMovesPerHost: Infinity, replicas: r, inSync: lookup }))
    }
  }), { seed: SEED, numRuns: 40 })
  assert.ok(seen.failovers > 1_000 && seen.waits > 1_000, JSON.stringify(seen))
})
