/**
 * TokenBucket with an injected clock (plain numbers): burst then exhaustion, refill
 * rate, the cap at burst, fractional rates, clock magnitudes (0, performance.now(),
 * Date.now()), the Float64Array record form, and bad arguments.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TokenBucket, kBucketStride } from '../../native-free-core/tenancy/token-bucket.ts'

/** Clock origins the engine may pass: zero, a process-relative clock, wall-clock ms. */
const origins = [0, 123_456.789, 1_767_225_600_123]

test('starts full: exactly burst takes at one instant, then none', () => {
  for (const t0 of origins) {
    for (const [perSecond, burst] of [[1_000, 200], [3_000, 200], [7, 3], [0.5, 1], [333_333, 50]] as const) {
      const b = new TokenBucket(perSecond, burst, t0)
      assert.equal(b.tokens(t0), burst)
      let granted = 0
      while (b.tryTake(t0) && granted <= burst) granted++
      assert.equal(granted, burst, `perSecond ${perSecond} burst ${burst} at ${t0}`)
      assert.equal(b.tryTake(t0), false)
      assert.ok(b.tokens(t0) < 1e-6)
    }
  }
})

test('exactly burst takes even when nowMs × perMs sits just below a power of two', () => {
  // Adding whole tokens there drops a low bit; without the 4-ulp slack about one in five
  // of these buckets granted 199.
  for (let e = 20; e < 50; e++) {
    for (const perSecond of [1_000, 3_000, 7, 333_333]) {
      for (let j = 1; j < 20; j++) {
        const now = (2 ** e - j * 3.37) / (perSecond / 1_000)
        const b = new TokenBucket(perSecond, 200, now)
        let granted = 0
        while (granted <= 200 && b.tryTake(now)) granted++
        assert.equal(granted, 200, `2^${e} - ${j * 3.37} tokens, ${perSecond}/s`)
      }
    }
  }
})

test('refills continuously at perSecond', () => {
  for (const t0 of origins) {
    const b = new TokenBucket(100, 10, t0) // one token per 10 ms
    for (let i = 0; i < 10; i++) assert.ok(b.tryTake(t0))
    assert.equal(b.tryTake(t0 + 9), false, 'less than one token after 9 ms')
    assert.ok(Math.abs(b.tokens(t0 + 5) - 0.5) < 1e-3)
    assert.equal(b.tryTake(t0 + 10), true, 'one token after 10 ms')
    assert.equal(b.tryTake(t0 + 10), false)
    assert.ok(Math.abs(b.tokens(t0 + 45) - 3.5) < 1e-3)
    assert.equal(b.tryTake(t0 + 45, 3), true)
    assert.equal(b.tryTake(t0 + 45, 1), false)
    // 0.5 left at +45 ms: one token exactly at +50 ms, then one every 10 ms. Each instant
    // is computed from t0 (not summed), so only the bucket's own rounding is at stake.
    for (let k = 0; k < 500; k++) {
      const t = t0 + 50 + 10 * k
      assert.equal(b.tryTake(t), true, `take ${k}`)
      assert.equal(b.tryTake(t), false)
    }
  }
})

test('caps at burst however long it idles', () => {
  const b = new TokenBucket(1_000, 5, 0)
  assert.ok(b.tryTake(0, 5))
  assert.equal(b.tokens(3_600_000), 5)
  let granted = 0
  while (b.tryTake(3_600_000)) granted++
  assert.equal(granted, 5)
})

test('fractional rates and fractional takes', () => {
  const b = new TokenBucket(0.25, 1, 1_000) // one token per 4 s
  assert.ok(b.tryTake(1_000))
  assert.equal(b.tryTake(4_999), false)
  assert.ok(b.tryTake(5_000))
  const c = new TokenBucket(10, 2.5, 0)
  assert.ok(c.tryTake(0, 1.5))
  assert.ok(c.tryTake(0, 1))
  assert.equal(c.tryTake(0, 0.1), false)
  assert.ok(Math.abs(c.tokens(50) - 0.5) < 1e-9)
  assert.ok(c.tryTake(50, 0.5))
})

test('over a long run, grants match rate × time + burst', () => {
  const perSecond = 1_234.5
  const burst = 17
  const b = new TokenBucket(perSecond, burst, 0)
  let granted = 0
  // hammer it every 0.1 ms for 10 s
  for (let i = 0; i <= 100_000; i++) while (b.tryTake(i / 10)) granted++
  const ideal = burst + perSecond * 10
  assert.ok(Math.abs(granted - ideal) <= 1, `granted ${granted}, ideal ${ideal}`)
})

test('a take larger than burst never succeeds; a clock going back never adds tokens', () => {
  const b = new TokenBucket(1_000, 10, 1_000)
  assert.equal(b.tryTake(1_000, 11), false)
  assert.equal(b.tryTake(1e9, 11), false)
  assert.ok(b.tryTake(1e9, 10))
  assert.equal(b.tokens(1e9 - 5), 0)
  assert.equal(b.tryTake(1e9 - 5), false)
})

test('record form on a Float64Array matches the class', () => {
  const record = new Float64Array(kBucketStride * 4)
  const b = new TokenBucket(50, 4, 10)
  TokenBucket.init(record, kBucketStride * 2, 50, 4, 10)
  let x = 7
  for (let t = 10; t < 2_000; t += x % 37) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648
    const n = 1 + (x % 3)
    assert.equal(TokenBucket.tryTakeAt(record, kBucketStride * 2, t, n), b.tryTake(t, n))
    assert.equal(TokenBucket.tokensAt(record, kBucketStride * 2, t), b.tokens(t))
  }
  assert.deepEqual([...record.subarray(0, kBucketStride * 2)], new Array(kBucketStride * 2).fill(0), 'neighbours untouched')
  assert.throws(() => TokenBucket.init(record, kBucketStride * 4 - 2, 1, 1, 0), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /offset/ })
  assert.throws(() => TokenBucket.init(record, -1, 1, 1, 0), { code: 'SHOAL_ERR_INVALID_ARGUMENT', message: /offset/ })
})

test('bad arguments throw InvalidArgumentError naming the argument, the value and the rule', () => {
  const cases: Array<[() => unknown, RegExp]> = [
    [() => new TokenBucket(0, 1, 0), /^perSecond must be a positive finite number, got 0$/],
    [() => new TokenBucket(-1, 1, 0), /^perSecond .* got -1$/],
    [() => new TokenBucket(Infinity, 1, 0), /^perSecond .* got Infinity$/],
    [() => new TokenBucket(NaN, 1, 0), /^perSecond .* got NaN$/],
    [() => new TokenBucket('5' as unknown as number, 1, 0), /^perSecond .* got 5$/],
    [() => new TokenBucket(1, 0, 0), /^burst must be a positive finite number, got 0$/],
    [() => new TokenBucket(1, -Infinity, 0), /^burst .* got -Infinity$/],
    [() => new TokenBucket(1, 1, NaN), /^nowMs must be a finite number, got NaN$/],
    [() => new TokenBucket(1, 1, 0).tryTake(Infinity), /^nowMs .* got Infinity$/],
    [() => new TokenBucket(1, 1, 0).tryTake(1, 0), /^n must be a positive finite number, got 0$/],
    [() => new TokenBucket(1, 1, 0).tryTake(1, -2), /^n .* got -2$/],
    [() => new TokenBucket(1, 1, 0).tryTake(1, NaN), /^n .* got NaN$/],
    [() => new TokenBucket(1, 1, 0).tryTake(1, '1' as unknown as number), /^n .* got string$/],
    [() => new TokenBucket(1, 1, 0).tokens(NaN), /^nowMs .* got NaN$/]
  ]
  for (const [fn, message] of cases) assert.throws(fn, { code: 'SHOAL_ERR_INVALID_ARGUMENT', message })
})
