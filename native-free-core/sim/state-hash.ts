/**
 * Hashes for explore's visited-state set: two independent 32-bit lanes, combined into
 * one 53-bit number (a JavaScript safe integer, so a `Set<number>` holds it without
 * allocating).
 *
 * Precision: two different world states share a hash with probability about
 * n² / 2^54 over n states — below 10^-5 for a million states. A collision would make
 * explore skip a state it has not seen; it can never report a failure that is not real
 * (every failure is replayed from its choices).
 *
 * Unordered collections (the agents' states, the set of channels) are combined by
 * adding per-element hashes modulo 2^32, so their order does not matter and a change
 * costs one subtraction and one addition; ordered ones (a channel's FIFO) are chained.
 */
import { finish } from '../placement/hash.ts'

const LANE_A = 0x9747b28c
const LANE_B = 0x2f8a6c1d
// different multipliers (both odd) so that the lanes do not move together
const PRIME_A = 0x01000193
const PRIME_B = 0x2127599b

/** murmur3's fmix32, the placement hash's finisher. */
export const fmix = finish

/** One lane of a string hash (char codes, so any string: latin1 state bytes, ids, names). */
export function hashString (s: string, seed: number, prime = PRIME_A): number {
  let h = seed
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), prime)
  }
  return fmix(h ^ s.length)
}

/** Fold an integer (or another hash) into a lane. */
export function chain (h: number, v: number): number {
  return fmix(Math.imul(h ^ (v >>> 0), 0x01000193) + 0x6b43a9b5)
}

/** A two-lane hash being accumulated. */
export class Hash2 {
  a: number
  b: number

  constructor (a = LANE_A, b = LANE_B) {
    this.a = a >>> 0
    this.b = b >>> 0
  }

  static ofString (s: string): Hash2 {
    return new Hash2(hashString(s, LANE_A, PRIME_A), hashString(s, LANE_B, PRIME_B))
  }

  /** Ordered: this, then `v`. */
  chain (v: number): this {
    this.a = chain(this.a, v)
    this.b = chain(this.b, v ^ 0x5bd1e995)
    return this
  }

  chainHash (h: Hash2): this {
    this.a = chain(this.a, h.a)
    this.b = chain(this.b, h.b)
    return this
  }

  chainString (s: string): this {
    return this.chainHash(Hash2.ofString(s))
  }

  chainBytes (bytes: Uint8Array): this {
    let a = this.a
    let b = this.b
    for (let i = 0; i < bytes.length; i++) {
      a = Math.imul(a ^ bytes[i]!, PRIME_A)
      b = Math.imul(b ^ bytes[i]!, PRIME_B)
    }
    this.a = fmix(a ^ bytes.length)
    this.b = fmix(b ^ bytes.length ^ 0x5bd1e995)
    return this
  }

  /** Unordered: add `h` to a multiset sum. */
  add (h: Hash2): this {
    this.a = (this.a + h.a) >>> 0
    this.b = (this.b + h.b) >>> 0
    return this
  }

  subtract (h: Hash2): this {
    this.a = (this.a - h.a) >>> 0
    this.b = (this.b - h.b) >>> 0
    return this
  }

  /** 53 bits: all of lane a and 21 of lane b. */
  value (): number {
    return this.a * 0x200000 + (fmix(this.b) & 0x1fffff)
  }
}

/**
 * A structural hash of a decoded value in which the order of an object's keys (and of
 * a Set's members) does not count: `{ a: 1, b: 2 }` and `{ b: 2, a: 1 }` hash alike.
 * States built by different orderings routinely differ only there (a map of applied
 * ids filled in delivery order), and counting them apart would defeat state hashing.
 * The cost: a handler whose behaviour depends on key order (`Object.keys(s.m)[0]`) is
 * explored as if it did not. Arrays, strings and everything else are ordered.
 */
export function valueHash (value: unknown): Hash2 {
  const h = new Hash2()
  feed(h, value, 0)
  return h
}

const kMaxDepth = 64

function feed (h: Hash2, v: unknown, depth: number): void {
  if (depth > kMaxDepth) { h.chain(0xdeeb); return }
  switch (typeof v) {
    case 'undefined': h.chain(1); return
    case 'boolean': h.chain(v ? 2 : 3); return
    case 'number':
      if (Number.isInteger(v) && Math.abs(v) <= 0x7fffffff) h.chain(4).chain(v)
      else h.chain(5).chainString(String(v))
      return
    case 'bigint': h.chain(6).chainString(v.toString()); return
    case 'string': h.chain(7).chainString(v); return
    case 'symbol': h.chain(15).chainString(String(v)); return
    case 'function': h.chain(16); return
    default: break
  }
  if (v === null) { h.chain(8); return }
  if (Array.isArray(v)) {
    h.chain(9).chain(v.length)
    for (const x of v) feed(h, x, depth + 1)
    return
  }
  if (ArrayBuffer.isView(v)) {
    h.chain(10).chainString(Object.prototype.toString.call(v)).chainBytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
    return
  }
  if (v instanceof Date) { h.chain(11).chainString(String(v.getTime())); return }
  if (v instanceof Set) {
    const sum = new Hash2(0, 0)
    for (const x of v) sum.add(valueHash(x))
    h.chain(12).chainHash(sum)
    return
  }
  if (v instanceof Map) {
    const sum = new Hash2(0, 0)
    for (const [k, x] of v) sum.add(valueHash(k).chainHash(valueHash(x)))
    h.chain(13).chainHash(sum)
    return
  }
  // plain objects (and anything else decoded as one, such as an Error's fields)
  const sum = new Hash2(0, 0)
  for (const k of Object.keys(v as object)) {
    const e = Hash2.ofString(k)
    feed(e, (v as Record<string, unknown>)[k], depth + 1)
    sum.add(e)
  }
  h.chain(14).chainString(v instanceof Error ? v.name : '').chainHash(sum)
}
