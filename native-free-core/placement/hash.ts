/**
 * Placement hash: FNV-1a 32-bit over the UTF-8 bytes of the id string
 * (`quota \x1f type \x1f key`, see agent-id.ts), then murmur3's `fmix32` finalizer;
 * and the shard it selects (the top 12 bits).
 *
 * Changing this implementation changes agent-to-shard assignment: every agent moves,
 * every cluster member disagrees with the others. It is fixed forever; the test
 * `hash.test.ts` pins known values.
 *
 * Why the finalizer: plain FNV-1a lets the last byte reach the top bits only through
 * the prime's 2^24 term, so keys that differ in their last character (`user-1`,
 * `user-2`, ...) landed 16 shards apart — always on the same worker for 2, 4, 8 or 16
 * workers. fmix32 makes every input bit flip each output bit with probability ~1/2.
 *
 * Speed: ~36M short keys/s on this machine. ASCII is the fast path; other code points
 * are encoded to UTF-8 inline so that no bytes are allocated.
 */

export const SHARDS = 4096
const kShardShift = 20 // 32 - log2(SHARDS)
const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

export function hashId (id: string): number {
  return finish(fnv(FNV_OFFSET, id))
}

/**
 * The hash state after a prefix, to continue with `hashAfter`: ids of one type share
 * their `quota \x1f type \x1f` prefix, so a host hashes only the key per new ref.
 * `hashAfter(prefixState(p), k) === hashId(p + k)`.
 */
export function prefixState (prefix: string): number {
  return fnv(FNV_OFFSET, prefix)
}

export function hashAfter (state: number, rest: string): number {
  return finish(fnv(state, rest))
}

/** FNV-1a over the UTF-8 bytes of `s`, from state `h`. */
function fnv (h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME)
      continue
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME)
    } else {
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const lo = s.charCodeAt(i + 1)
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          i++
          c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00)
          h = Math.imul(h ^ (0xf0 | (c >> 18)), FNV_PRIME)
          h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), FNV_PRIME)
          h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME)
          h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
          continue
        }
      }
      h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME)
    }
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
  }
  return h
}

/** fmix32, murmur3's avalanche (also the simulator's state hash). */
export function finish (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

export function shardOf (hash: number): number {
  return hash >>> kShardShift
}
