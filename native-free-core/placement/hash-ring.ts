/**
 * The cluster's hash ring: which host owns each of the 4096 shards, as a pure function
 * of the member ids. Every host that sees the same ids computes the same ring, whatever
 * order the ids come in (they are sorted; ties on the ring break by id).
 *
 * The ring is the placement hash's own 32-bit space: shard `s` is the hash range
 * `[s << 20, (s + 1) << 20)` (hash.ts takes the top 12 bits), and it starts its walk
 * at `s << 20`. Each host puts `vnodes` points on the ring at
 * `hashId(id + '\x1f' + i)` (FNV-1a + fmix32, fixed forever like the placement hash).
 *
 * Owners are assigned with **bounded loads** (Mirrokni, Thorup, Zadimoghaddam,
 * "Consistent Hashing with Bounded Loads", SODA 2018): shards are taken in order
 * 0..4095, each walks clockwise from its point to the first host that holds fewer than
 * `capacity = ceil(4096 / hosts)` shards. The cap is tight (ε = 0), so every host owns
 * `capacity` or slightly fewer: the smallest share is at least
 * `4096 − (hosts − 1) · capacity`, i.e. within `hosts − 1` shards of the mean.
 *
 * Why not plain virtual nodes: with the shards at fixed points, a host's share carries
 * two noises — its arcs (relative spread ≈ 1/√vnodes) and, once vnodes outnumber the
 * shards, the shards' own draw (multinomial: ≈ 4.7% relative spread at 10 hosts). Their
 * sum never gets under ±10% reliably. Measured by `bench/placement.bench.ts` over 480
 * seeded random id sets (60 per host count, 3..10 hosts), the worst host against the
 * mean share: plain vnodes 19.4% (256 per host), 16.5% (512), 14.0% (1,024); bounded
 * loads 1.56% (the ceiling's rounding) at any vnode count.
 *
 * What bounded loads cost: a membership change also moves a few shards between hosts
 * that stay (the caps change, so some walks stop earlier or later). Same bench, 512
 * vnodes (the default): a join moves 1.08× the ideal `4096 / (n + 1)` on average,
 * 1.23× at worst (plain vnodes: 1.00×, 1.13×); a leave moves 1.07× the leaver's own
 * shards on average, 1.18× at worst (plain: exactly 1×). 256 vnodes: 1.11×/1.31× and
 * 1.09×/1.27×; 1,024: 1.06×/1.17× and 1.05×/1.16× at twice the build time (10 hosts:
 * 0.8 ms at 512). `test/core/placement/hash-ring.test.ts` holds the bounds 1.5× (join)
 * and 1.4× (leave).
 *
 * `successors(shard, n)` are the replicas of the cluster's part 2: the owner first,
 * then the next distinct hosts clockwise from the shard's point (plain ring order,
 * without load caps: replica load follows the hosts' arcs).
 */
import { InvalidArgumentError } from '../errors.ts'
import { SHARDS, hashAfter, prefixState } from './hash.ts'

export const DEFAULT_VNODES = 512
/** Host indices are 16-bit and 0xFFFF means "none" in the shard map. */
export const MAX_HOSTS = 0xFFFE
export const MAX_VNODES = 4096

const kShardBits = 20 // 32 - log2(SHARDS)

export interface HashRingOptions {
  /** Points per host on the ring (default 512). Every host must use the same value. */
  readonly vnodes?: number
}

export class HashRing {
  /** The member ids, sorted (code unit order): index `i` in `ownerIndices()` is `hosts[i]`. */
  readonly hosts: readonly string[]
  readonly vnodes: number
  /** The most shards one host owns: `ceil(SHARDS / hosts.length)`. */
  readonly capacity: number
  /** Ring points, sorted by position then host index. */
  readonly #pointPos: Uint32Array
  readonly #pointHost: Uint16Array
  /** For each shard, the index of the first point at or after `shard << 20` (wrapping). */
  readonly #shardStart: Uint32Array
  #owners: Uint16Array | undefined
  #index: Map<string, number> | undefined

  constructor (hostIds: Iterable<string>, options: HashRingOptions = {}) {
    const vnodes = options.vnodes ?? DEFAULT_VNODES
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > MAX_VNODES) {
      throw new InvalidArgumentError(`ring vnodes must be an integer from 1 to ${MAX_VNODES} (got ${String(vnodes)})`, { vnodes })
    }
    const hosts = [...hostIds]
    for (const id of hosts) {
      if (typeof id !== 'string' || id.length === 0) {
        throw new InvalidArgumentError(`a ring host id must be a non-empty string (got ${JSON.stringify(id)})`, { id: String(id) })
      }
    }
    hosts.sort(compareIds)
    for (let i = 1; i < hosts.length; i++) {
      if (hosts[i] === hosts[i - 1]) throw new InvalidArgumentError(`ring host id ${JSON.stringify(hosts[i])} appears twice`, { id: hosts[i] })
    }
    if (hosts.length === 0) throw new InvalidArgumentError('a ring needs at least one host')
    if (hosts.length > MAX_HOSTS) throw new InvalidArgumentError(`a ring holds at most ${MAX_HOSTS} hosts (got ${hosts.length})`)
    this.hosts = Object.freeze(hosts)
    this.vnodes = vnodes
    this.capacity = Math.ceil(SHARDS / hosts.length)

    // position * 2^16 + host index < 2^48: exact in a double, and one numeric sort orders
    // by position then by host (ids are sorted, so by id: the same on every host)
    const total = hosts.length * vnodes
    const keys = new Float64Array(total)
    let k = 0
    for (let h = 0; h < hosts.length; h++) {
      const seed = prefixState(`${hosts[h]!}\u001f`)
      for (let v = 0; v < vnodes; v++) keys[k++] = hashAfter(seed, String(v)) * 65536 + h
    }
    keys.sort()
    this.#pointPos = new Uint32Array(total)
    this.#pointHost = new Uint16Array(total)
    for (let i = 0; i < total; i++) {
      const key = keys[i]!
      const host = key % 65536
      this.#pointHost[i] = host
      this.#pointPos[i] = (key - host) / 65536
    }
    this.#shardStart = new Uint32Array(SHARDS)
    let p = 0
    for (let s = 0; s < SHARDS; s++) {
      const at = s * (1 << kShardBits)
      while (p < total && this.#pointPos[p]! < at) p++
      this.#shardStart[s] = p === total ? 0 : p
    }
  }

  /** The host that owns `shard`. */
  ownerOf (shard: number): string {
    return this.hosts[this.ownerIndices()[checkShard(shard)]!]!
  }

  /**
   * Up to `n` distinct hosts for `shard`: its owner, then the next hosts clockwise
   * from the shard's point. Fewer when the ring has fewer hosts.
   */
  successors (shard: number, n: number): string[] {
    return this.successorIndices(shard, n).map((h) => this.hosts[h]!)
  }

  /**
   * `successors` as indices into `hosts` (the shard map's planner computes the replicas
   * of all 4096 shards on every plan: no strings on that path).
   */
  successorIndices (shard: number, n: number): number[] {
    checkShard(shard)
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`successors: n must be a non-negative integer (got ${String(n)})`, { n })
    const want = Math.min(n, this.hosts.length)
    if (want === 0) return []
    const owner = this.ownerIndices()[shard]!
    const out = [owner]
    const points = this.#pointHost.length
    for (let i = 0, p = this.#shardStart[shard]!; i < points && out.length < want; i++, p = p + 1 === points ? 0 : p + 1) {
      const h = this.#pointHost[p]!
      // out holds at most a handful of hosts (replicas ≤ 5): a scan beats a bitmap
      if (!out.includes(h)) out.push(h)
    }
    return out
  }

  /**
   * The first host clockwise from `shard`'s point: the owner plain consistent hashing
   * would pick, before load caps (diagnostics, and the baseline of the placement bench).
   */
  preferredOf (shard: number): string {
    return this.hosts[this.#pointHost[this.#shardStart[checkShard(shard)]!]!]!
  }

  /** Every shard's owner, by shard: `assign()[s] === ownerOf(s)`. */
  assign (): string[] {
    const owners = this.ownerIndices()
    const out = new Array<string>(SHARDS)
    for (let s = 0; s < SHARDS; s++) out[s] = this.hosts[owners[s]!]!
    return out
  }

  /** Every shard's owner as an index into `hosts` (shared; do not modify). */
  ownerIndices (): Uint16Array {
    return this.#owners ??= this.#boundedAssign()
  }

  /** Index of `id` in `hosts`, or -1. */
  indexOf (id: string): number {
    this.#index ??= new Map(this.hosts.map((h, i) => [h, i]))
    return this.#index.get(id) ?? -1
  }

  /** Shards per host, by index into `hosts`. */
  loads (): Uint32Array {
    const out = new Uint32Array(this.hosts.length)
    for (const h of this.ownerIndices()) out[h]!++
    return out
  }

  #boundedAssign (): Uint16Array {
    const owners = new Uint16Array(SHARDS)
    const load = new Uint32Array(this.hosts.length)
    const cap = this.capacity
    const points = this.#pointHost.length
    for (let s = 0; s < SHARDS; s++) {
      // hosts · capacity ≥ SHARDS, so some host always has room and the walk ends
      let p = this.#shardStart[s]!
      while (load[this.#pointHost[p]!]! >= cap) p = p + 1 === points ? 0 : p + 1
      const h = this.#pointHost[p]!
      owners[s] = h
      load[h]!++
    }
    return owners
  }
}

/** Code unit order: the same on every host, independent of locale. */
export function compareIds (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function checkShard (shard: number): number {
  if (!Number.isInteger(shard) || shard < 0 || shard >= SHARDS) {
    throw new InvalidArgumentError(`a shard is an integer from 0 to ${SHARDS - 1} (got ${String(shard)})`, { shard })
  }
  return shard
}
