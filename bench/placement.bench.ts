/**
 * Placement quality of the cluster's hash ring (native-free-core/placement/hash-ring.ts),
 * each figure beside plain consistent hashing (the first host clockwise, no load cap)
 * over the same rings in the same run:
 *
 *   1. balance: the worst host's distance from the mean share, over ID_SETS random id
 *      sets of 3..10 hosts (target: ≤ 10%, issue 11);
 *   2. a join: shards moved / the ideal 4096 / (n + 1), mean and worst;
 *   3. a leave: shards moved / the ideal (the leaver's own shards), mean and worst — the
 *      excess over 1× is shards of hosts that stay;
 *   4. build + assign time of a 10-host ring (the leader does this on every change).
 *
 * Run: `node dist/bench/placement.bench.js` (a few seconds). Seeded: the same figures on
 * every run except the timing.
 */
import { SHARDS } from '../native-free-core/placement/hash.ts'
import { DEFAULT_VNODES, HashRing } from '../native-free-core/placement/hash-ring.ts'
import { printRows, type Row } from './report.ts'

const ID_SETS_PER_SIZE = 60
const vnodes = Number(process.env.VNODES ?? DEFAULT_VNODES)

let seed = 0x9E3779B9
function rand (): number {
  seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0
  return seed
}
const randomId = (): string => `host-${rand().toString(36)}-${(rand() & 0xffff).toString(16)}`

interface Placement { owners: string[], loads: Map<string, number> }

function bounded (ring: HashRing): Placement {
  const owners = ring.assign()
  return { owners, loads: count(owners) }
}

function plain (ring: HashRing): Placement {
  const owners = Array.from({ length: SHARDS }, (_, s) => ring.preferredOf(s))
  return { owners, loads: count(owners) }
}

function count (owners: readonly string[]): Map<string, number> {
  const loads = new Map<string, number>()
  for (const o of owners) loads.set(o, (loads.get(o) ?? 0) + 1)
  return loads
}

interface Figures { worstDev: number, joinMean: number, joinWorst: number, leaveMean: number, leaveWorst: number }

function measure (place: (ring: HashRing) => Placement): Figures {
  seed = 0x9E3779B9
  const f: Figures = { worstDev: 0, joinMean: 0, joinWorst: 0, leaveMean: 0, leaveWorst: 0 }
  let sets = 0
  for (let n = 3; n <= 10; n++) {
    for (let t = 0; t < ID_SETS_PER_SIZE; t++) {
      const ids = Array.from({ length: n }, randomId)
      const before = place(new HashRing(ids, { vnodes }))
      const mean = SHARDS / n
      for (const id of ids) f.worstDev = Math.max(f.worstDev, Math.abs((before.loads.get(id) ?? 0) - mean) / mean)
      const joined = place(new HashRing([...ids, randomId()], { vnodes }))
      let moved = 0
      for (let s = 0; s < SHARDS; s++) if (joined.owners[s] !== before.owners[s]) moved++
      const join = moved / (SHARDS / (n + 1))
      const leaver = ids[0]!
      const left = place(new HashRing(ids.slice(1), { vnodes }))
      let movedOnLeave = 0
      for (let s = 0; s < SHARDS; s++) if (left.owners[s] !== before.owners[s]) movedOnLeave++
      const leave = movedOnLeave / (before.loads.get(leaver) ?? 1)
      f.joinMean += join
      f.leaveMean += leave
      f.joinWorst = Math.max(f.joinWorst, join)
      f.leaveWorst = Math.max(f.leaveWorst, leave)
      sets++
    }
  }
  f.joinMean /= sets
  f.leaveMean /= sets
  return f
}

function timeBuild (place: (ring: HashRing) => Placement): number {
  const ids = Array.from({ length: 10 }, (_, i) => `host-${i}`)
  for (let i = 0; i < 20; i++) place(new HashRing(ids, { vnodes }))
  const rounds = 200
  const t0 = performance.now()
  for (let i = 0; i < rounds; i++) place(new HashRing(ids, { vnodes }))
  return (performance.now() - t0) / rounds
}

const b = measure(bounded)
const p = measure(plain)
const base = (value: number): { name: string, value: number } => ({ name: 'plain vnodes', value })
const rows: Row[] = [
  { name: 'worst host vs mean share, 3–10 hosts', value: b.worstDev * 100, unit: '%', baseline: base(p.worstDev * 100), note: 'issue 11: ≤ 10%' },
  { name: 'join: moved / ideal 4096/(n+1), mean', value: b.joinMean, unit: '×', baseline: base(p.joinMean) },
  { name: 'join: moved / ideal, worst', value: b.joinWorst, unit: '×', baseline: base(p.joinWorst), note: 'test bound 1.5×' },
  { name: 'leave: moved / the leaver\'s shards, mean', value: b.leaveMean, unit: '×', baseline: base(p.leaveMean) },
  { name: 'leave: moved / the leaver\'s shards, worst', value: b.leaveWorst, unit: '×', baseline: base(p.leaveWorst), note: 'test bound 1.4×' },
  { name: 'build + assign, 10 hosts', value: timeBuild(bounded), unit: 'ms', baseline: base(timeBuild(plain)) }
]
printRows('placement', rows, `main thread only, ${vnodes} vnodes per host, ${ID_SETS_PER_SIZE * 8} id sets`)
