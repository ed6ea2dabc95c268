/**
 * The raw baselines of a `shoal bench` run, built on the shared primitives in
 * src/baselines/raw-baselines.ts (the engine benchmark in bench/ uses the same ones), sized for the
 * run and spread like its scenarios:
 *
 *   ring           msgpackr pack → SAB ring → copy out → unpack → Map dispatch, main →
 *                  one worker; ids picked at random (seeded) among min(agents, 1M), as the
 *                  fanout scenario picks them. The engine's cast rate is held to ≥ 50%.
 *   ring RTT       sequential round trips, both sides parking on doorbells (waitAsync)
 *   postMessage    one-way, one structured-clone message each
 *   LMDB           batched puts of state-sized values under random bench ids, fsync on
 *   LMDB, hot keys the hot agent's own writes without the engine: its `ctx.storage` keys
 *                  (storage format 2, lmdb-keys.ts) "1", "2", … with its value's bytes
 *
 * Each runs for about `ms` on a fresh worker, with no host running. The shared ring and
 * postMessage primitives take a message count, derived here from the budget and the
 * rate they reach on the reference machine (2 cores), so a noisy run takes longer rather
 * than measuring less.
 */
import { lmdbPuts, msgpackRingDispatch, postMessageOneWay, ringPingPong } from '../baselines/raw-baselines.ts'
import type { Rate } from '../baselines/raw-baselines.ts'
import { benchId } from './bench-ids.ts'
import { KeyScratch } from '../storage/lmdb-keys.ts'
import { Rng } from './rng.ts'

/** Largest Map the ring consumer prefills (memory and setup time stay bounded at 10M agents). */
export const kMaxBaselineKeys = 1_000_000
const kRoundTrips = 2000

export interface ThroughputBaseline {
  readonly messages: number
  readonly elapsedMs: number
  readonly msgsPerSec: number
  /** Distinct ids the messages were spread over (0: not applicable). */
  readonly keys: number
}

export interface RoundTripBaseline {
  readonly count: number
  readonly p50Us: number
  readonly p99Us: number
  readonly p999Us: number
}

export interface LmdbBaseline {
  readonly puts: number
  readonly elapsedMs: number
  readonly putsPerSec: number
  readonly valueBytes: number
  /** Waited for the flush to disk, not only the commit. */
  readonly fsync: true
  /** CPU time of the process (every thread: lmdb-js's writer, V8's helpers) per put, µs. */
  readonly cpuUsPerPut: number
}

export interface Baselines {
  readonly ring: ThroughputBaseline
  readonly ringRoundTrip: RoundTripBaseline
  readonly postMessage: ThroughputBaseline
  readonly lmdb: LmdbBaseline
  /** Raw puts of the hot agent's storage keys and value bytes (scenarios/hot.ts). */
  readonly lmdbHotKeys: LmdbBaseline
}

export interface BaselineOptions {
  /** Ids are spread over this many agents (capped at kMaxBaselineKeys). */
  readonly agents: number
  /** Time budget per throughput baseline. */
  readonly ms: number
  readonly seed: number
  /** Value size of an LMDB put: the engine's encoded state size. */
  readonly valueBytes: number
  /** The hot agent: its id and the encoded value it puts under each new key. */
  readonly hotId: string
  readonly hotValue: Uint8Array
  /** Where the LMDB baseline makes its scratch environment. */
  readonly scratchDir: string
  /** Called as each baseline starts, for progress display. */
  readonly onPhase?: (name: string) => void
}

function throughput (r: Rate, keys: number): ThroughputBaseline {
  return { messages: r.messages, elapsedMs: r.seconds * 1000, msgsPerSec: r.perSecond, keys }
}

function lmdbBaseline (r: Rate, valueBytes: number): LmdbBaseline {
  return { puts: r.messages, elapsedMs: r.seconds * 1000, putsPerSec: r.perSecond, valueBytes, fsync: true, cpuUsPerPut: r.cpuUsPerMessage ?? 0 }
}

export async function measureBaselines (o: BaselineOptions): Promise<Baselines> {
  const keys = Math.max(1, Math.min(o.agents, kMaxBaselineKeys))
  const seconds = o.ms / 1000
  o.onPhase?.('ring')
  const rng = new Rng(o.seed)
  // unpack + Map lookups of freshly decoded strings: ~1.5M/s over a few thousand ids, ~0.5M/s over a million
  const ringRate = keys >= 100_000 ? 500_000 : 1_500_000
  const ring = throughput(await msgpackRingDispatch(Math.max(10_000, Math.round(seconds * ringRate)), keys, 4 << 20,
    (_i, n) => rng.below(n)), keys)
  o.onPhase?.('ring round trip')
  const rtt = await ringPingPong(kRoundTrips, false)
  o.onPhase?.('postMessage')
  const post = throughput(await postMessageOneWay(Math.max(10_000, Math.round(seconds * 500_000))), 0)
  o.onPhase?.('lmdb')
  const lmdbRng = new Rng(o.seed + 1)
  const lmdb = await lmdbPuts(o.ms, () => benchId(lmdbRng.below(keys)), o.valueBytes, o.scratchDir)
  o.onPhase?.('lmdb, hot agent keys')
  // keys built as the store builds them: the id's prefix once, each name after it in one reused buffer (lmdb-js copies a key at put)
  const hotKeys = new KeyScratch()
  const hotBase = hotKeys.prefix(o.hotId)
  const hot = await lmdbPuts(o.ms, (i) => hotKeys.with(hotBase, String(i + 1)), o.hotValue, o.scratchDir)
  return {
    ring,
    ringRoundTrip: { count: rtt.rounds - Math.floor(rtt.rounds / 10), p50Us: rtt.p50us, p99Us: rtt.p99us, p999Us: rtt.p999us },
    postMessage: post,
    lmdb: lmdbBaseline(lmdb, o.valueBytes),
    lmdbHotKeys: lmdbBaseline(hot, o.hotValue.length)
  }
}
