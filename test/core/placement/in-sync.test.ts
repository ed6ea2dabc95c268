import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DecodeError, InvalidArgumentError } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import {
  IN_SYNC_BITSET_BYTES, decodeInSync, encodeInSync, inSyncHosts, inSyncLookup, isMarkedInSync, markInSync, newInSyncRecord, setShardEpoch
} from '../../../native-free-core/placement/in-sync.ts'
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'

const SEED = 0x5eed_1512

function sample (): InSyncRecord {
  const rec = newInSyncRecord('owner-a')
  for (let s = 0; s < SHARDS; s += 3) setShardEpoch(rec, s, 7 + (s % 2))
  for (let s = 0; s < SHARDS; s += 3) {
    markInSync(rec, s, 'b', true)
    if (s % 9 === 0) markInSync(rec, s, 'c-🦈', true)
  }
  return rec
}

test('bits count only at the shard epoch they were set for', () => {
  const rec = newInSyncRecord('a')
  assert.deepEqual(inSyncHosts(rec, 5, 0), [])
  assert.throws(() => markInSync(rec, 5, 'b', true), /setShardEpoch first/)
  assert.equal(setShardEpoch(rec, 5, 3), true)
  assert.equal(setShardEpoch(rec, 5, 3), false)
  assert.equal(markInSync(rec, 5, 'c', true), true)
  assert.equal(markInSync(rec, 5, 'b', true), true)
  assert.equal(markInSync(rec, 5, 'b', true), false)
  assert.deepEqual(inSyncHosts(rec, 5, 3), ['b', 'c'])
  assert.deepEqual(inSyncHosts(rec, 5, 2), [], 'another epoch says nothing')
  assert.deepEqual(inSyncHosts(rec, 5, 4), [])
  assert.deepEqual(inSyncHosts(rec, 6, 3), [])
  assert.ok(isMarkedInSync(rec, 5, 'b'))
  assert.equal(markInSync(rec, 5, 'b', false), true)
  assert.deepEqual(inSyncHosts(rec, 5, 3), ['c'])
  assert.equal(rec.hosts.has('b'), false, 'a host with no bit left is dropped')
  // a new epoch of the shard clears its bits
  setShardEpoch(rec, 5, 9)
  assert.deepEqual(inSyncHosts(rec, 5, 9), [])
  assert.equal(rec.hosts.size, 0)
  assert.throws(() => markInSync(rec, 5, 'a', true), /not its own replica/)
  assert.throws(() => markInSync(rec, SHARDS, 'b', true), InvalidArgumentError)
  assert.throws(() => setShardEpoch(rec, 1, -1), InvalidArgumentError)
  assert.throws(() => newInSyncRecord(''), InvalidArgumentError)
  // the lookup nextMap takes
  const lookup = inSyncLookup(new Map([['a', rec]]))
  markInSync(rec, 5, 'z', true)
  assert.deepEqual(lookup('a', 5, 9), ['z'])
  assert.deepEqual(lookup('a', 5, 8), [])
  assert.deepEqual(lookup('nobody', 5, 9), [])
})

test('encode/decode round trips', () => {
  const rec = sample()
  const bytes = encodeInSync(rec)
  const back = decodeInSync(bytes)
  assert.equal(back.owner, 'owner-a')
  assert.deepEqual(back.shardEpoch, rec.shardEpoch)
  assert.deepEqual([...back.hosts.keys()], ['b', 'c-🦈'])
  for (const [h, bits] of rec.hosts) assert.deepEqual(back.hosts.get(h), bits)
  for (let s = 0; s < 30; s++) assert.deepEqual(inSyncHosts(back, s, rec.shardEpoch[s]!), inSyncHosts(rec, s, rec.shardEpoch[s]!))
  assert.deepEqual(encodeInSync(back), bytes)
  // empty
  const empty = decodeInSync(encodeInSync(newInSyncRecord('x')))
  assert.equal(empty.hosts.size, 0)
  assert.ok(empty.shardEpoch.every((e) => e === 0))
  // a record made by hand with a bit but no epoch is refused
  const bad = newInSyncRecord('x')
  const bits = new Uint8Array(IN_SYNC_BITSET_BYTES)
  bits[0] = 1
  bad.hosts.set('y', bits)
  assert.throws(() => encodeInSync(bad), /no shard epoch/)
})

test('bad bytes are a DecodeError, never a crash or a wrong record', () => {
  const good = encodeInSync(sample())
  for (let n = 0; n < good.length; n += n < 40 ? 1 : 97) assert.throws(() => decodeInSync(good.subarray(0, n)), DecodeError, `prefix of ${n}`)
  assert.throws(() => decodeInSync(new Uint8Array([...good, 0])), /bytes after the record/)
  assert.throws(() => decodeInSync(new Uint8Array([0x49, 0x53, 2])), /version 2 is not supported/)
  assert.throws(() => decodeInSync(new TextEncoder().encode('{"owner":"a"}')), /bad magic/)
  assert.throws(() => decodeInSync('IS' as unknown as Uint8Array), DecodeError)
  assert.throws(() => decodeInSync(new Uint8Array([0x49, 0x53, 1, 0])), /owner id of 0 bytes/)
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
    const bad = good.slice()
    for (const [at, x] of flips) bad[at]! ^= x
    let rec: InSyncRecord
    try { rec = decodeInSync(bad) } catch (e) {
      assert.ok(e instanceof DecodeError, String(e))
      assert.equal(e.code, 'SHOAL_ERR_DECODE')
      return
    }
    // still a valid record: it re-encodes to the same bytes, and every bit has an epoch
    assert.deepEqual(encodeInSync(rec), bad)
    for (const [h, bits] of rec.hosts) {
      assert.notEqual(h, rec.owner)
      for (let s = 0; s < SHARDS; s++) if ((bits[s >> 3]! & (1 << (s & 7))) !== 0) assert.notEqual(rec.shardEpoch[s], 0)
    }
  }), { seed: SEED, numRuns: 1_000 })
})
