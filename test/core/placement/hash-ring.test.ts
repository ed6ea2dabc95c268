import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvalidArgumentError } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { HashRing } from '../../../native-free-core/placement/hash-ring.ts'

const SEED = 0x5eed_0011
const hostId = fc.oneof(
  fc.string({ minLength: 1, maxLength: 24 }),
  fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme' }),
  fc.nat().map((n) => `10.0.${n % 256}.${n % 251}:7400`)
)
const hostIds = (min: number, max: number): fc.Arbitrary<string[]> => fc.uniqueArray(hostId, { minLength: min, maxLength: max })

// host-a, host-b, host-c at 512 vnodes (computed once by this implementation, then frozen)
const PINNED_FIRST = ['host-c', 'host-c', 'host-b', 'host-b', 'host-b', 'host-a', 'host-a', 'host-a']
const PINNED_DIGEST = 0x2ff831ca
const PINNED_LOADS = [1366, 1364, 1366]

function moved (a: readonly string[], b: readonly string[]): number {
  let n = 0
  for (let s = 0; s < SHARDS; s++) if (a[s] !== b[s]) n++
  return n
}

test('every host owns within ±10% of the mean share at 3–10 hosts (at most the capacity)', () => {
  fc.assert(fc.property(hostIds(3, 10), (ids) => {
    const ring = new HashRing(ids)
    const mean = SHARDS / ids.length
    const loads = ring.loads()
    assert.equal(loads.reduce((a, b) => a + b, 0), SHARDS)
    for (const load of loads) {
      assert.ok(Math.abs(load - mean) <= 0.1 * mean, `load ${load}, mean ${mean}`)
      assert.ok(load <= ring.capacity)
      // the tight cap: nobody is more than hosts − 1 shards below the mean
      assert.ok(load >= SHARDS - (ids.length - 1) * ring.capacity)
    }
  }), { seed: SEED, numRuns: 300 })
})

test('same ids in any order give the same ring; the ring depends only on the ids', () => {
  fc.assert(fc.property(hostIds(1, 12), fc.nat(), (ids, rot) => {
    const a = new HashRing(ids)
    const shuffled = [...ids.slice(rot % ids.length), ...ids.slice(0, rot % ids.length)].reverse()
    const b = new HashRing(shuffled)
    assert.deepEqual(b.hosts, a.hosts)
    assert.deepEqual(b.assign(), a.assign())
    for (const s of [0, 1, 2047, 4095]) assert.deepEqual(b.successors(s, 3), a.successors(s, 3))
  }), { seed: SEED, numRuns: 100 })
})

test('the ring is pinned: changing the point hash or the walk would move shards between versions', () => {
  const ring = new HashRing(['host-a', 'host-b', 'host-c'])
  const owners = ring.assign()
  // a digest of all 4096 owners and the first few, so a changed algorithm fails here first
  let h = 0
  for (const o of owners) h = (Math.imul(h, 31) + ring.indexOf(o)) >>> 0
  assert.deepEqual(owners.slice(0, 8), PINNED_FIRST)
  assert.equal(h, PINNED_DIGEST)
  assert.deepEqual([...ring.loads()], PINNED_LOADS)
})

test('a join moves about 1/(n+1) of the shards, nearly all onto the new host (bound: 1.5× the ideal)', () => {
  fc.assert(fc.property(hostIds(4, 11), (all) => {
    const ids = all.slice(0, -1)
    const joiner = all[all.length - 1]!
    const before = new HashRing(ids).assign()
    const after = new HashRing(all).assign()
    const ideal = SHARDS / all.length
    const total = moved(before, after)
    let ontoJoiner = 0
    for (let s = 0; s < SHARDS; s++) if (after[s] === joiner) ontoJoiner++
    assert.ok(total <= 1.5 * ideal, `moved ${total}, ideal ${ideal.toFixed(0)}`)
    assert.ok(ontoJoiner >= 0.9 * ideal, `onto the joiner ${ontoJoiner}`)
    // bounded loads cascade a little between the hosts that stay: at most half the ideal
    assert.ok(total - ontoJoiner <= 0.5 * ideal, `between old hosts ${total - ontoJoiner}`)
  }), { seed: SEED, numRuns: 200 })
})

test('a leave moves the leaver\'s shards and few others (bound: 1.4× the leaver\'s share)', () => {
  fc.assert(fc.property(hostIds(4, 11), fc.nat(), (ids, pick) => {
    const leaver = ids[pick % ids.length]!
    const ring = new HashRing(ids)
    const before = ring.assign()
    const after = new HashRing(ids.filter((id) => id !== leaver)).assign()
    const own = ring.loads()[ring.indexOf(leaver)]!
    for (let s = 0; s < SHARDS; s++) if (before[s] === leaver) assert.notEqual(after[s], leaver)
    assert.ok(moved(before, after) <= 1.4 * own, `moved ${moved(before, after)}, the leaver owned ${own}`)
  }), { seed: SEED, numRuns: 200 })
})

test('successors: the owner first, then distinct hosts, as many as asked or as exist', () => {
  fc.assert(fc.property(hostIds(1, 8), fc.integer({ min: 0, max: SHARDS - 1 }), fc.integer({ min: 0, max: 10 }), (ids, shard, n) => {
    const ring = new HashRing(ids)
    const succ = ring.successors(shard, n)
    assert.equal(succ.length, Math.min(n, ids.length))
    assert.equal(new Set(succ).size, succ.length)
    if (n > 0) assert.equal(succ[0], ring.ownerOf(shard))
    for (const h of succ) assert.ok(ids.includes(h))
  }), { seed: SEED, numRuns: 300 })
})

test('second replicas spread over the hosts like their arcs', () => {
  const ring = new HashRing(['a', 'b', 'c', 'd', 'e'])
  const seconds = new Map<string, number>()
  for (let s = 0; s < SHARDS; s++) {
    const [owner, second] = ring.successors(s, 2)
    assert.notEqual(owner, second)
    seconds.set(second!, (seconds.get(second!) ?? 0) + 1)
  }
  assert.equal(seconds.size, 5)
  for (const n of seconds.values()) assert.ok(n < 1.5 * SHARDS / 5 && n > 0.5 * SHARDS / 5, `second replica of ${n} shards`)
})

test('one host owns everything', () => {
  const ring = new HashRing(['solo'])
  assert.ok(ring.assign().every((o) => o === 'solo'))
  assert.deepEqual(ring.successors(7, 3), ['solo'])
})

test('bad input is a typed error', () => {
  assert.throws(() => new HashRing([]), InvalidArgumentError)
  assert.throws(() => new HashRing(['a', 'a']), (e: unknown) => e instanceof InvalidArgumentError && /"a" appears twice/.test(e.message))
  assert.throws(() => new HashRing(['']), InvalidArgumentError)
  assert.throws(() => new HashRing(['a'], { vnodes: 0 }), /vnodes must be an integer from 1 to 4096 \(got 0\)/)
  const ring = new HashRing(['a', 'b'])
  assert.throws(() => ring.ownerOf(SHARDS), InvalidArgumentError)
  assert.throws(() => ring.ownerOf(-1), InvalidArgumentError)
  assert.throws(() => ring.ownerOf(1.5), InvalidArgumentError)
  assert.throws(() => ring.successors(0, -1), InvalidArgumentError)
})
