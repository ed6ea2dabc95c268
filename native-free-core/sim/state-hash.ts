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

const LANE_A = 0x9747b28c
const LANE_B = 0x2f8a6c1d
// different multipliers (both odd) so that the lanes do not move together
const PRIME_A = 0x01000193
const PRIME_B = 0x2127599b

/** murmur3's fmix32. */
export function fmix (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

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
