import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DecodeError, InvalidArgumentError } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { HashRing } from '../../../native-free-core/placement/hash-ring.ts'
import {
  NONE, completeMoves, decodeShardMap, encodeShardMap, isSettled, loadsOf, movePlanned, nextMap, ownerOf, plan, plannedMoves,
  sameShardMap, shardsOf, staticShardMap, targetOf
} from '../../../native-free-core/placement/shard-map.ts'
import type { CompletedMove, MemberState, PlanMember, ShardMap } from '../../../native-free-core/placement/shard-map.ts'

const SEED = 0x5eed_0022
const up = (...ids: string[]): PlanMember[] => ids.map((id) => ({ id, state: 'up' }))
const owners = (map: ShardMap): (string | undefined)[] => Array.from({ length: SHARDS }, (_, s) => ownerOf(map, s))

function mustPlan (map: ShardMap | null, members: readonly PlanMember[], maxMovesPerHost = Infinity): ShardMap {
  const next = plan(map, members, { maxMovesPerHost })
  assert.ok(next !== null, 'plan changed nothing')
  return next
}

/** Hand every planned move over, as the old owners would. */
function doAll (map: ShardMap): ShardMap {
  const done = plannedMoves(map)
  if (done.length === 0) return map
  const next = completeMoves(map, done)
  assert.ok(next !== null)
  return next
}

test('a new cluster: every shard gets its ring owner at once, at epoch 1', () => {
  const map = mustPlan(null, up('c', 'a', 'b'))
  assert.equal(map.epoch, 1)
  assert.deepEqual(map.hosts, ['a', 'b', 'c'])
  assert.deepEqual(owners(map), new HashRing(['a', 'b', 'c']).assign())
  assert.ok(map.shardEpoch.every((e) => e === 1))
  assert.ok(map.target.every((t) => t === NONE))
  assert.ok(isSettled(map))
  for (const n of loadsOf(map).values()) assert.ok(Math.abs(n - SHARDS / 3) <= 0.1 * SHARDS / 3)
  // nothing to do for the same members, whatever their order or state
  assert.equal(plan(map, up('b', 'c', 'a')), null)
  assert.equal(plan(map, [{ id: 'a', state: 'joining' }, ...up('b', 'c')]), null)
  assert.deepEqual(staticShardMap(['b', 'a', 'c']), map)
})

test('a join plans moves of about 1/4 of the shards, mostly onto the new host; owners stay until handed over', () => {
  const map = mustPlan(null, up('a', 'b', 'c'))
  const joined = mustPlan(map, [...up('a', 'b', 'c'), { id: 'd', state: 'joining' }])
  assert.equal(joined.epoch, 2)
  assert.deepEqual(owners(joined), owners(map))
  assert.deepEqual(joined.shardEpoch, map.shardEpoch)
  const ring = new HashRing(['a', 'b', 'c', 'd']).assign()
  const moves = plannedMoves(joined)
  for (const m of moves) {
    assert.equal(m.to, ring[m.shard])
    assert.equal(m.epoch, 2)
    assert.equal(targetOf(joined, m.shard), m.to)
  }
  for (let s = 0; s < SHARDS; s++) if (ownerOf(map, s) !== ring[s]) assert.ok(targetOf(joined, s) !== undefined, `shard ${s} not planned`)
  const ontoD = moves.filter((m) => m.to === 'd').length
  assert.ok(moves.length <= 1.5 * SHARDS / 4 && ontoD >= 0.9 * SHARDS / 4, `${moves.length} moves, ${ontoD} onto d`)
  // the moves done: d owns its share at epoch 3, everything settles on the ring
  const done = doAll(joined)
  assert.equal(done.epoch, 3)
  assert.deepEqual(owners(done), ring)
  for (const m of moves) assert.equal(done.shardEpoch[m.shard], 3)
  assert.ok(isSettled(done))
  assert.equal(plan(done, up('a', 'b', 'c', 'd')), null)
})

test('moves in flight per source host are capped; later plans move the rest until the ring is reached', () => {
  let map = mustPlan(null, up('a', 'b', 'c'))
  const members = up('a', 'b', 'c', 'd')
  const cap = 50
  let rounds = 0
  for (;;) {
    const next = plan(map, members, { maxMovesPerHost: cap })
    if (next === null) break
    map = next
    const perSource = new Map<string, number>()
    for (const m of plannedMoves(map)) perSource.set(m.from, (perSource.get(m.from) ?? 0) + 1)
    for (const n of perSource.values()) assert.ok(n <= cap)
    map = doAll(map)
    assert.ok(++rounds < 100)
  }
  assert.deepEqual(owners(map), new HashRing(['a', 'b', 'c', 'd']).assign())
  // ≈ 1,100 moves from 3 sources, 50 each per round
  assert.ok(rounds >= 6 && rounds <= 12, `${rounds} rounds`)
})

test('completeMoves applies only the move the map still plans', () => {
  const map = mustPlan(mustPlan(null, up('a', 'b', 'c')), up('a', 'b', 'c', 'd'))
  const [m1, m2, m3] = plannedMoves(map)
  assert.ok(m1 && m2 && m3)
  const bogus: CompletedMove[] = [
    { shard: m1.shard, from: m1.to, to: m1.from }, // reversed
    { shard: m2.shard, from: m2.from, to: 'zz' }, // unknown host
    { shard: m3.shard, from: m3.from, to: m3.to, epoch: m3.epoch - 1 } // a report of an older plan
  ]
  assert.equal(completeMoves(map, bogus), null)
  const next = completeMoves(map, [...bogus, { shard: m1.shard, from: m1.from, to: m1.to, epoch: m1.epoch }, { shard: m2.shard, from: m2.from, to: m2.to }])
  assert.ok(next)
  assert.equal(next.epoch, map.epoch + 1)
  assert.equal(ownerOf(next, m1.shard), m1.to)
  assert.equal(ownerOf(next, m2.shard), m2.to)
  assert.equal(next.shardEpoch[m1.shard], next.epoch)
  assert.equal(targetOf(next, m1.shard), undefined)
  assert.equal(ownerOf(next, m3.shard), m3.from)
  assert.equal(targetOf(next, m3.shard), m3.to)
  assert.equal(plannedMoves(next).length, plannedMoves(map).length - 2)
  // reported twice: the second is a no-op
  assert.equal(completeMoves(next, [{ shard: m1.shard, from: m1.from, to: m1.to }]), null)
})

test('a late report of an aborted move does not complete the move planned again later', () => {
  let map = mustPlan(mustPlan(null, up('a', 'b', 'c')), up('a', 'b', 'c', 'd'))
  const m = plannedMoves(map)[0]!
  map = mustPlan(map, up('a', 'b', 'c')) // d leaves: the move aborts
  assert.equal(targetOf(map, m.shard), undefined)
  map = mustPlan(map, up('a', 'b', 'c', 'd')) // d is back: planned again, later
  assert.equal(targetOf(map, m.shard), m.to)
  assert.ok(map.targetEpoch[m.shard]! > m.epoch)
  assert.equal(completeMoves(map, [m]), null, 'the stale report must not complete it')
  assert.ok(completeMoves(map, [{ ...m, epoch: map.targetEpoch[m.shard]! }]))
  // what the old owner asks before it keeps holding the shard for its report: no longer planned
  assert.equal(movePlanned(map, m.shard, m.from, m.to, m.epoch), false, 'the old plan is dead: serve the shard again')
  assert.equal(movePlanned(map, m.shard, m.from, m.to, map.targetEpoch[m.shard]!), true)
})

test('movePlanned says exactly whether the leader would complete a report now', () => {
  let map = mustPlan(mustPlan(null, up('a', 'b', 'c')), up('a', 'b', 'c', 'd'))
  const moves = plannedMoves(map)
  const m = moves[0]!
  const reports: CompletedMove[] = [
    m,
    { ...m, epoch: m.epoch + 1 }, // a plan the map never had
    { ...m, to: m.from, from: m.to }, // reversed
    { ...m, to: 'zz' },
    { ...moves[1]!, epoch: moves[1]!.epoch }
  ]
  const agree = (at: ShardMap): void => {
    for (const r of reports) assert.equal(movePlanned(at, r.shard, r.from, r.to, r.epoch!), completeMoves(at, [r]) !== null, JSON.stringify(r))
  }
  agree(map)
  map = mustPlan(map, up('a', 'b', 'c')) // d leaves
  agree(map)
  map = mustPlan(map, up('a', 'b', 'c', 'd')) // and comes back: planned again
  agree(map)
  map = doAll(map)
  agree(map)
})

test('a target that leaves, goes away or becomes the owner is cleared', () => {
  const base = mustPlan(null, up('a', 'b', 'c'))
  const joined = mustPlan(base, up('a', 'b', 'c', 'd'))
  const ontoD = plannedMoves(joined).filter((m) => m.to === 'd')
  assert.ok(ontoD.length > 0)
  // d's member key is gone: its moves abort
  const gone = mustPlan(joined, up('a', 'b', 'c'))
  for (const m of ontoD) assert.equal(targetOf(gone, m.shard), undefined)
  // d is leaving: the same
  const leaving = mustPlan(joined, [...up('a', 'b', 'c'), { id: 'd', state: 'leaving' }])
  for (const m of ontoD) assert.equal(targetOf(leaving, m.shard), undefined)
  assert.ok(plannedMoves(leaving).every((m) => m.to !== 'd'))
})

test('a leaving host\'s shards get targets on the others; once handed over it drops out of the map', () => {
  let map = mustPlan(null, up('a', 'b', 'c', 'd'))
  const dShards = shardsOf(map, 'd')
  const members: PlanMember[] = [...up('a', 'b', 'c'), { id: 'd', state: 'leaving' }]
  map = mustPlan(map, members)
  const ring = new HashRing(['a', 'b', 'c']).assign()
  for (const s of dShards) assert.equal(targetOf(map, s), ring[s])
  map = doAll(map)
  assert.equal(shardsOf(map, 'd').length, 0)
  assert.deepEqual(owners(map), ring)
  assert.equal(plan(map, up('a', 'b', 'c')), null, 'nothing left to move')
  // the next write no longer lists d
  assert.deepEqual(mustPlan(map, up('a', 'b', 'c', 'e')).hosts, ['a', 'b', 'c', 'e'])
})

test('shards of a host that is gone stay put: no target, same owner (failover is part 2)', () => {
  const map = mustPlan(null, up('a', 'b', 'c', 'd'))
  const dShards = shardsOf(map, 'd')
  const next = plan(map, up('a', 'b', 'c'))
  // the others may rebalance a little (bounded loads), but d's shards wait for d
  const after = next ?? map
  for (const s of dShards) {
    assert.equal(ownerOf(after, s), 'd')
    assert.equal(targetOf(after, s), undefined)
  }
  assert.ok(after.hosts.includes('d'))
})

test('nextMap folds handovers and plans in one epoch', () => {
  const map = mustPlan(mustPlan(null, up('a', 'b', 'c')), up('a', 'b', 'c', 'd'), 10)
  const moves = plannedMoves(map)
  const next = nextMap(map, up('a', 'b', 'c', 'd'), moves, { maxMovesPerHost: 10 })
  assert.ok(next)
  assert.equal(next.epoch, map.epoch + 1)
  for (const m of moves) assert.equal(ownerOf(next, m.shard), m.to)
  // the freed slots are filled with the next moves at the same epoch
  assert.equal(plannedMoves(next).length, moves.length)
  assert.ok(plannedMoves(next).every((m) => m.epoch === next.epoch))
})

test('encode/decode round-trips, compactly', () => {
  const settled = mustPlan(null, up('host-a', 'host-b', 'host-c'))
  const bytes = encodeShardMap(settled)
  assert.ok(sameShardMap(decodeShardMap(bytes), settled))
  assert.ok(bytes.length < 12_000, `${bytes.length} bytes`)
  const moving = mustPlan(settled, up('host-a', 'host-b', 'host-c', 'ключ-🦈'))
  assert.ok(sameShardMap(decodeShardMap(encodeShardMap(moving)), moving))
  assert.deepEqual(decodeShardMap(encodeShardMap(moving)).hosts, moving.hosts)
})

test('a corrupt value is a DecodeError, never a crash or a wrong map', () => {
  const good = encodeShardMap(mustPlan(mustPlan(null, up('a', 'b', 'c')), up('a', 'b', 'c', 'd'), 5))
  // every truncation
  for (let n = 0; n < good.length; n++) assert.throws(() => decodeShardMap(good.subarray(0, n)), DecodeError, `prefix of ${n}`)
  assert.throws(() => decodeShardMap(new Uint8Array([...good, 1])), /unknown section 1/)
  assert.throws(() => decodeShardMap(new Uint8Array([0x53, 0x4D, 3, 1])), /format version 3 is not supported/)
  assert.throws(() => decodeShardMap(new TextEncoder().encode('{"epoch":1}')), /bad magic/)
  assert.throws(() => decodeShardMap('SM' as unknown as Uint8Array), DecodeError)
  // random bytes flipped: either still a valid map (checked by re-encoding) or a DecodeError
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
    const bad = good.slice()
    for (const [at, x] of flips) bad[at]! ^= x
    let map: ShardMap
    try { map = decodeShardMap(bad) } catch (e) {
      assert.ok(e instanceof DecodeError, String(e))
      assert.equal(e.code, 'SHOAL_ERR_DECODE')
      return
    }
    assert.ok(sameShardMap(decodeShardMap(encodeShardMap(map)), map))
    for (let s = 0; s < SHARDS; s++) {
      assert.ok(map.owner[s] === NONE || map.owner[s]! < map.hosts.length)
      assert.ok(map.shardEpoch[s]! <= map.epoch)
    }
  }), { seed: SEED, numRuns: 2_000 })
})

test('bad arguments are typed errors', () => {
  assert.throws(() => plan(null, up('a', 'a')), InvalidArgumentError)
  assert.throws(() => plan(null, up('')), InvalidArgumentError)
  assert.throws(() => plan(null, up('a'), { maxMovesPerHost: 0 }), /maxMovesPerHost must be an integer ≥ 1 or Infinity \(got 0\)/)
  const map = mustPlan(null, up('a'))
  assert.throws(() => completeMoves(map, [{ shard: SHARDS, from: 'a', to: 'b' }]), InvalidArgumentError)
  assert.equal(plan(null, []), null)
})

// ---------------------------------------------------------------------------------
// random histories

type Op =
  | { kind: 'join', id: number }
  | { kind: 'leave', id: number }
  | { kind: 'vanish', id: number }
  | { kind: 'handover', fraction: number }
  | { kind: 'stale' }

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('join' as const), id: fc.nat(7) }), weight: 3 },
  fc.record({ kind: fc.constant('leave' as const), id: fc.nat(7) }),
  fc.record({ kind: fc.constant('vanish' as const), id: fc.nat(7) }),
  { arbitrary: fc.record({ kind: fc.constant('handover' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }), weight: 3 },
  fc.record({ kind: fc.constant('stale' as const) })
)

test('random histories keep the map\'s invariants and converge to the ring once membership is still', () => {
  const seen = { writes: 0, handedOver: 0, aborted: 0 }
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), fc.integer({ min: 16, max: 400 }), (ops, cap) => {
    const members = new Map<string, MemberState>()
    let map: ShardMap | null = null
    let stale: CompletedMove[] = []
    const step = (next: ShardMap | null, before: ShardMap | null): void => {
      if (next === null) return
      assert.equal(next.epoch, (before?.epoch ?? 0) + 1)
      check(next, before, members, cap)
      map = next
      seen.writes++
      if (before !== null) {
        for (let s = 0; s < SHARDS; s++) {
          if (before.owner[s] !== NONE && ownerOf(before, s) !== ownerOf(next, s)) seen.handedOver++
          else if (before.target[s] !== NONE && next.target[s] === NONE) seen.aborted++
        }
      }
    }
    for (const o of ops) {
      const list = (): PlanMember[] => [...members].map(([id, state]) => ({ id, state }))
      if (o.kind === 'join') members.set(`h${o.id}`, 'joining')
      else if (o.kind === 'leave' && members.has(`h${o.id}`)) members.set(`h${o.id}`, 'leaving')
      else if (o.kind === 'vanish') members.delete(`h${o.id}`)
      else if (o.kind === 'handover' && map !== null) {
        const all = plannedMoves(map).filter((m) => members.has(m.from))
        const some = all.slice(0, Math.ceil(all.length * o.fraction))
        stale = some.map((m) => ({ ...m, epoch: m.epoch - 1 }))
        step(completeMoves(map, some), map)
      } else if (o.kind === 'stale' && map !== null) {
        assert.equal(completeMoves(map, stale), null)
      }
      const before: ShardMap | null = map
      step(plan(before, list(), { maxMovesPerHost: cap }), before)
    }
    // still membership, every live owner hands over: the ring is reached
    const live = [...members].filter(([, s]) => s !== 'leaving').map(([id]) => id)
    const settledMembers = [...members].map(([id, state]) => ({ id, state }))
    if (map === null || live.length === 0) return
    const gone = new Set((map as ShardMap).hosts.filter((h) => !members.has(h)))
    for (let i = 0; i < 400; i++) {
      const current: ShardMap = map
      const next: ShardMap | null = nextMap(current, settledMembers, plannedMoves(current).filter((m) => !gone.has(m.from)), { maxMovesPerHost: cap })
      if (next === null) break
      step(next, current)
    }
    const ring = new HashRing(live).assign()
    const final: ShardMap = map
    for (let s = 0; s < SHARDS; s++) {
      const o = ownerOf(final, s)!
      if (gone.has(o)) continue // waits for its host (part 2: failover)
      assert.equal(o, ring[s], `shard ${s}`)
      assert.equal(targetOf(final, s), undefined)
    }
  }), { seed: SEED, numRuns: 100 })
  // the histories did exercise moves and aborts
  assert.ok(seen.writes > 1_000 && seen.handedOver > 20_000 && seen.aborted > 200, JSON.stringify(seen))
})

function check (map: ShardMap, before: ShardMap | null, members: ReadonlyMap<string, MemberState>, cap: number): void {
  const perSource = new Map<number, number>()
  const anyMember = members.size > 0
  for (let s = 0; s < SHARDS; s++) {
    const o = map.owner[s]!
    const t = map.target[s]!
    if (anyMember && [...members.values()].some((st) => st !== 'leaving')) assert.notEqual(o, NONE, `shard ${s} unassigned`)
    assert.ok(map.shardEpoch[s]! <= map.epoch)
    if (t !== NONE) {
      assert.notEqual(t, o)
      const state = members.get(map.hosts[t]!)
      assert.ok(state !== undefined && state !== 'leaving', `target ${map.hosts[t]!} is ${String(state)}`)
      perSource.set(o, (perSource.get(o) ?? 0) + 1)
    }
    if (before !== null) {
      const prevOwner = ownerOf(before, s)
      const owner = ownerOf(map, s)
      if (prevOwner !== owner) {
        assert.equal(map.shardEpoch[s], map.epoch, 'an owner change stamps the new epoch')
        // owners change only by assignment of a new shard or a completed planned move
        assert.ok(prevOwner === undefined || targetOf(before, s) === owner)
      } else {
        assert.equal(map.shardEpoch[s], before.shardEpoch[s])
      }
      // a gone owner's shard is left exactly as it was
      if (prevOwner !== undefined && !members.has(prevOwner)) {
        assert.equal(owner, prevOwner)
        if (targetOf(map, s) !== undefined) assert.equal(targetOf(map, s), targetOf(before, s))
      }
    }
  }
  for (const n of perSource.values()) assert.ok(n <= cap, `${n} moves in flight from one host, cap ${cap}`)
  assert.ok(sameShardMap(decodeShardMap(encodeShardMap(map)), map))
}
