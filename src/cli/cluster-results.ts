/**
 * What `shoal bench --hosts N` measures (cluster-bench.ts), as it goes into the JSON
 * (`cluster`, beside the single-host scenarios, which are null in such a run) and the
 * summary table. Same rules as results.ts: stable field names, rates per second,
 * latencies in µs, null for what the run did not measure.
 *
 * Every figure has its baseline from the same run:
 *   cross-host casts/s      ← same-host casts/s (every host casting to its own agents)
 *   remote call p50/p99     ← a bare `ws` client → bare uWebSockets.js echo, between the same two processes
 *   link envelopes/s        ← a bare ws → uWS socket carrying msgpackr arrays of the same envelopes (bench/link.bench.ts)
 *   shards moved/s (join)   no baseline: the time from the new host's start to a settled cluster
 */
import type { LatencySummary } from './latency.ts'

export interface CastPhase {
  readonly casts: number
  /** Casts that ran per second, summed over the hosts that cast. */
  readonly castsPerSec: number
  /** Casts per CPU-second of all the host processes together (every thread): what the machine's cores bought, whatever the load. */
  readonly castsPerCpuSec: number
  readonly perHost: ReadonlyArray<{ readonly id: string, readonly casts: number, readonly castsPerSec: number }>
  /** CPU time each host process spent in the phase, per second of wall time (1.0 = one core busy). */
  readonly cpuPerHost: ReadonlyArray<{ readonly id: string, readonly cores: number }>
}

export interface LinkFigures {
  /** Envelopes decoded per second over one LinkHub link, 1,024 per message, encoded by the sender. */
  readonly msgsPerSec: number
  /** The same with frames encoded before the clock started. */
  readonly preEncodedMsgsPerSec: number
  /** The raw batched link: bare ws → uWS, msgpackr arrays of the same envelopes. */
  readonly rawMsgsPerSec: number
  /** Envelopes decoded per CPU-second of the receiving process: what one core could do. */
  readonly recvPerCpuSec: number
  readonly rawRecvPerCpuSec: number
}

export interface JoinFigures {
  readonly joined: string
  /** Shards the new host took in. */
  readonly shardsMoved: number
  /** Agents (of the run's `--agents`) whose owner is now the new host. */
  readonly agentsMoved: number
  /** From the new host's process start to every host settled. */
  readonly elapsedMs: number
  /** From the new host ready (createHost resolved) to every host settled. */
  readonly movingMs: number
  readonly shardsPerSec: number
  readonly agentsPerSec: number
}

export interface HostFigures {
  readonly id: string
  readonly shardsServed: number
  readonly agentsOwned: number
  readonly linkFramesIn: number
  readonly linkFramesOut: number
  readonly linkBytesIn: number
  readonly linkBytesOut: number
  readonly forwarded: number
  readonly rssBytes: number
}

export interface ClusterSample {
  /** Milliseconds since the bench started. */
  readonly t: number
  readonly phase: string
  /** Per host: messages delivered to its agents per second, link frames received per second. */
  readonly hosts: ReadonlyArray<{ readonly id: string, readonly messagesPerSec: number, readonly linkFramesInPerSec: number }>
}

export interface ClusterResults {
  readonly hosts: number
  readonly workersPerHost: number
  readonly membership: 'static' | 'etcd'
  /** Processes and threads on the machine's cores, in words. */
  readonly layout: string
  readonly agents: number
  /** From forking the host processes to every one settled. */
  readonly startMs: number
  readonly sameHost: CastPhase
  readonly crossHost: CastPhase
  /** Casts issued in both phases that no counter shows (casts are at most once; a settled cluster should lose none). */
  readonly castsLost: number
  readonly remoteCall: LatencySummary
  readonly sameHostCall: LatencySummary
  readonly rawWsRoundTrip: LatencySummary
  readonly link: LinkFigures | null
  /** Why `link` is null, or null. */
  readonly linkNote: string | null
  readonly join: JoinFigures | null
  readonly perHost: readonly HostFigures[]
  readonly timeline: readonly ClusterSample[]
}

export type AddRow = (section: string, name: string, value: number, unit: string, extra?: {
  baseline?: { readonly name: string, readonly value: number, readonly unit: string }
  target?: { readonly op: '>=' | '<=', readonly value: number }
  note?: string
}) => void

export function clusterRows (c: ClusterResults, add: AddRow): void {
  const s = 'cluster'
  const cores = (p: CastPhase): string => p.cpuPerHost.map((h) => `${h.id} ${h.cores.toFixed(2)}`).join(', ')
  add(s, `cross-host casts/s (${c.hosts} hosts casting)`, c.crossHost.castsPerSec, '/s', {
    baseline: { name: 'same-host casts', value: c.sameHost.castsPerSec, unit: '/s' },
    target: { op: '>=', value: 0.5 },
    note: `every host casts add(1) to agents the others own, paced by barrier calls, in slices alternating with the same-host ones; ` +
      `per CPU-second of the hosts: ${Math.round(c.crossHost.castsPerCpuSec).toLocaleString('en-US')} cross-host, ${Math.round(c.sameHost.castsPerCpuSec).toLocaleString('en-US')} same-host; ` +
      `cores used per host: ${cores(c.crossHost)} (same-host: ${cores(c.sameHost)})` +
      (c.castsLost !== 0 ? `; ${c.castsLost} casts LOST` : '; every cast counted')
  })
  add(s, 'remote call p50 (one in flight)', c.remoteCall.p50Us, 'µs', {
    baseline: { name: 'raw ws→uWS round trip p50', value: c.rawWsRoundTrip.p50Us, unit: 'µs' },
    target: { op: '<=', value: 2 },
    note: `a query to an agent on another host; same-host call p50 ${c.sameHostCall.p50Us.toFixed(1)} µs`
  })
  add(s, 'remote call p99 (one in flight)', c.remoteCall.p99Us, 'µs', {
    baseline: { name: 'raw ws→uWS round trip p99', value: c.rawWsRoundTrip.p99Us, unit: 'µs' }
  })
  if (c.link !== null) {
    add(s, 'link alone: envelopes decoded/s (1,024 per message)', c.link.msgsPerSec, '/s', {
      target: { op: '>=', value: 5_000_000 },
      note: `LinkHub → LinkHub, two processes, frames encoded by the sender; pre-encoded ${Math.round(c.link.preEncodedMsgsPerSec).toLocaleString('en-US')}/s; ` +
        `receiver decodes ${Math.round(c.link.recvPerCpuSec).toLocaleString('en-US')} per CPU-second (raw: ${Math.round(c.link.rawRecvPerCpuSec).toLocaleString('en-US')})`
    })
    add(s, 'link alone vs the raw batched link', c.link.msgsPerSec, '/s', {
      baseline: { name: 'raw ws→uWS, msgpackr arrays of 1,024', value: c.link.rawMsgsPerSec, unit: '/s' }
    })
  }
  if (c.join !== null) {
    add(s, `shards moved/s during a join (${c.join.joined})`, c.join.shardsPerSec, '/s', {
      note: `${c.join.shardsMoved} shards, ${c.join.agentsMoved.toLocaleString('en-US')} agents (${Math.round(c.join.agentsPerSec).toLocaleString('en-US')}/s), ` +
        `${(c.join.movingMs / 1000).toFixed(1)} s from the new host ready to a settled cluster (${(c.join.elapsedMs / 1000).toFixed(1)} s with its start); no baseline`
    })
  }
}

export const clusterLegend = [
  'same-host casts: the same hosts in the same run, each casting to the agents it owns itself',
  'raw ws→uWS round trip: a bare `ws` client in the calling host\'s process and a bare uWebSockets.js echo server in the called host\'s, 64-byte messages, interleaved with the remote calls',
  'raw batched link: bench/link.bench.ts in two processes of its own — a bare ws → uWS socket, msgpackr-packed arrays of the same 1,024 envelopes per message, unpacked on arrival'
]
