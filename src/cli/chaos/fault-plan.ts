/**
 * The faults of a chaos run, drawn up front from the seed (so `--seed N` replays the same
 * faults on the same targets with the same holds; only the machine's timing differs).
 * A fault: inject, hold, heal, then a quiet gap with the load still running. With one
 * track (the default) faults come one at a time; with more, fault n runs on track
 * n mod tracks, the tracks side by side, two faults never on one target at once
 * (fault-injector.ts).
 *
 *   kill    SIGKILL a host; after `holdMs` start it again with the same id and data
 *           (the restart waits out its old lease: up to the lease TTL + 1 s)
 *   stop    SIGSTOP a host past its lease TTL, then SIGCONT (it finds its lease lost,
 *           fences itself, registers again)
 *   cut     drop every link dialed to the host (its proxy) and refuse new ones, then heal
 *   pause   the host's proxy forwards nothing and closes nothing (a silent link: the
 *           heartbeats must notice), then heal
 *   delay   the host's proxy holds every chunk `delayMs`, then heal
 *   etcd    SIGKILL etcd; after `holdMs` start it again on the same port and data
 *   leave   close a host gracefully (it leaves: the leader moves its shards away under
 *           load), then after `holdMs` start it again (it joins: shards move back) —
 *           planned moves, which the other faults may hit
 *
 * Links are dialed by the lower id (the link layer's rule), so the first host's proxy
 * carries no link: link faults pick among the others.
 */
import { Rng } from '../rng.ts'

export const faultKinds = ['kill', 'stop', 'cut', 'pause', 'delay', 'etcd', 'leave'] as const
export type FaultKind = typeof faultKinds[number]

export interface Fault {
  /** 1-based, in order. */
  readonly n: number
  readonly kind: FaultKind
  /** A host id, or 'etcd'. */
  readonly target: string
  /** How long the fault lasts before it is healed, ms. */
  readonly holdMs: number
  /** delay: ms each chunk is held. */
  readonly delayMs?: number
  /** The quiet time after the heal, before the next fault, ms. */
  readonly gapMs: number
}

export interface PlanOptions {
  /** Host ids, sorted as the link layer sorts them. */
  readonly hosts: readonly string[]
  readonly rounds: number
  readonly leaseTtlS: number
  readonly heartbeatMs: number
  /** Fault kinds to draw from. Default: all. */
  readonly kinds?: readonly FaultKind[]
}

const between = (rng: Rng, lo: number, hi: number): number => lo + rng.below(hi - lo + 1)

export function planFaults (seed: number, o: PlanOptions): Fault[] {
  const rng = new Rng(seed)
  const kinds = o.kinds ?? faultKinds
  const ttlMs = o.leaseTtlS * 1000
  const linked = o.hosts.slice(1)
  const faults: Fault[] = []
  for (let n = 1; n <= o.rounds; n++) {
    const kind = kinds[rng.below(kinds.length)]!
    const anyHost = o.hosts[rng.below(o.hosts.length)]!
    const linkedHost = linked[rng.below(linked.length)]!
    const gapMs = between(rng, 300, 1500)
    switch (kind) {
      case 'kill':
        faults.push({ n, kind, target: anyHost, holdMs: between(rng, 0, 2000), gapMs })
        break
      case 'stop':
        faults.push({ n, kind, target: anyHost, holdMs: between(rng, Math.round(ttlMs * 1.2), ttlMs * 2), gapMs })
        break
      case 'cut':
        faults.push({ n, kind, target: linkedHost, holdMs: between(rng, 200, 3000), gapMs })
        break
      case 'pause':
        faults.push({ n, kind, target: linkedHost, holdMs: between(rng, 500, 4 * o.heartbeatMs + 1000), gapMs })
        break
      case 'delay':
        faults.push({ n, kind, target: linkedHost, holdMs: between(rng, 1000, 3000), delayMs: between(rng, 20, 200), gapMs })
        break
      case 'etcd':
        faults.push({ n, kind, target: 'etcd', holdMs: between(rng, 0, Math.round(ttlMs * 1.5)), gapMs })
        break
      case 'leave':
        faults.push({ n, kind, target: anyHost, holdMs: between(rng, 0, 2000), gapMs })
        break
    }
  }
  return faults
}

export function describeFault (f: Fault): string {
  const what = f.kind === 'delay' ? `delay ${f.delayMs} ms` : f.kind
  return `#${f.n} ${what} ${f.target} for ${f.holdMs} ms, then ${f.gapMs} ms quiet`
}
