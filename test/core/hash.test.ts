import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SHARDS, hashAfter, hashId, prefixState, shardOf } from '../../native-free-core/placement/hash.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'

/** FNV-1a 32 over the UTF-8 bytes, the slow obvious way. */
function fnv1a (s: string): number {
  let h = 0x811c9dc5
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0
  return h >>> 0
}

function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const reference = (s: string): number => fmix32(fnv1a(s))

test('hash vectors are pinned: changing the hash moves every agent', () => {
  // FNV-1a's published vectors (0x811c9dc5, 0xe40c292c, 0xbf9cf968) through fmix32
  assert.equal(fnv1a('a'), 0xe40c292c)
  assert.equal(fnv1a('foobar'), 0xbf9cf968)
  assert.equal(hashId(''), fmix32(0x811c9dc5))
  assert.equal(hashId('a'), fmix32(0xe40c292c))
  assert.equal(hashId('foobar'), fmix32(0xbf9cf968))
  assert.equal(hashId('default\u001fcounter\u001fuser-42'), 0x34debf32)
  // and ids as the engine builds them
  assert.equal(hashId(idString('default', 'counter', 'user-42')), reference('default\u001fcounter\u001fuser-42'))
  assert.equal(shardOf(hashId(idString('default', 'counter', 'user-42'))), reference('default\u001fcounter\u001fuser-42') >>> 20)
})

test('non-ASCII keys hash over their UTF-8 bytes', () => {
  for (const key of ['é', 'ключ', '键', '🦈 shark', 'a\u0800b', '\uffff', 'x\u{10ffff}y']) {
    assert.equal(hashId(key), reference(key), key)
  }
})

test('shards cover 0..4095 and spread evenly over many keys', () => {
  const counts = new Uint32Array(SHARDS)
  const n = 409_600
  for (let i = 0; i < n; i++) {
    const s = shardOf(hashId(idString('default', 'counter', `user-${i}`)))
    assert.ok(s >= 0 && s < SHARDS)
    counts[s]!++
  }
  const expected = n / SHARDS
  let worst = 0
  for (const c of counts) worst = Math.max(worst, Math.abs(c - expected) / expected)
  assert.ok(worst < 0.5, `worst shard deviates ${(worst * 100).toFixed(1)}% from the mean`)
})

test('keys that differ only in their last characters spread over shard residues', () => {
  // a host spreads shards over its workers by residue (placeShard, src/thread/mesh.ts);
  // plain FNV-1a, without the finalizer, put h0..h19 all on one worker
  for (const workers of [2, 3, 4, 8, 16]) {
    const perWorker = new Array<number>(workers).fill(0)
    let runs = 0
    let prev = -1
    for (let i = 0; i < 1000; i++) {
      const w = shardOf(hashId(idString('default', 'hop', `h${i}`))) % workers
      perWorker[w]!++
      if (w !== prev) runs++
      prev = w
    }
    for (const n of perWorker) assert.ok(Math.abs(n - 1000 / workers) < 0.3 * 1000 / workers, `${workers} workers: ${perWorker}`)
    assert.ok(runs > 1000 * (1 - 1 / workers) * 0.8, `${workers} workers: consecutive keys change worker (${runs} runs)`)
  }
})

test('hashing a prefix once and continuing with the key gives the same hash', () => {
  for (const prefix of ['', 'default\u001fcounter\u001f', 'tenant-é\u001ft\u001f']) {
    const state = prefixState(prefix)
    for (const key of ['', 'user-1', '🦈', 'ключ']) assert.equal(hashAfter(state, key), hashId(prefix + key))
  }
})
