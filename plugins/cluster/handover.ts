/**
 * Planned moves of shards between hosts, this host's half (docs/cluster.md, "A planned
 * move"). The leader puts a target in the map; the old owner and the new owner do the
 * rest, each from its own view of the map:
 *
 *   old owner                                   new owner
 *   hold the shards' frames (router)
 *   release them (gateway): turns end, commits
 *     land, agents passivate, timeouts come out
 *   stream the ranges: CL_MOVE_DATA…, CL_MOVE_END ──▶ import them, one transaction per shard;
 *                                                    hold the shards' frames from now on
 *                                             ◀── CL_MOVE_ACK
 *   report the handover (etcd) ──▶ leader: map owner = new owner, epoch + 1
 *   on that map: forward what it held, then
 *     CL_FLUSHED; drop the ranges             ──▶ on that map and CL_FLUSHED: arrive,
 *                                                    adopt (held frames first), serve
 *
 * `reconcile` compares the latest map with what this host serves and starts or finishes
 * whatever differs; it runs one at a time, again whenever the map changes. A move that
 * fails (a link drops, a peer refuses) is called off on this side: the shards are served
 * here again and the leader's target stays, so the move is tried again.
 */
import { Buffer } from 'node:buffer'
import { ShoalError, messageOf } from '../../native-free-core/errors.ts'
import { SHARDS, shardOf } from '../../native-free-core/placement/hash.ts'
import { NONE, movePlanned, replicasOf } from '../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../native-free-core/placement/shard-map.ts'
import type { ShardRanges } from '../../native-free-core/storage/shard-range.ts'
import type { MovedTimeout } from '../../native-free-core/time/agent-timers.ts'
import type { Gateway } from '../../src/host/gateway.ts'
import type { FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import type { Membership } from './membership/index.ts'
import type { ClusterRouter } from './router.ts'
import { CL_FLUSH_ASK, CL_FLUSHED, CL_MOVE_ACK, CL_MOVE_DATA, CL_MOVE_END } from './wire.ts'
import type { ClusterWire } from './wire.ts'
import { groupInto } from './group-into.ts'

/** How long a move's stream may wait for the new owner's answer, and a new owner for the old one's CL_FLUSHED. */
const MOVE_ACK_TIMEOUT_MS = 30_000
const FLUSH_WAIT_MS = 10_000
/** A move called off is tried again after this. */
const RETRY_MS = 500
/** A handover report whose outcome is unknown is sent again after this. */
const REPORT_RETRY_MS = 1000

export interface HandoverParts {
  readonly self: string
  readonly gateway: Gateway
  readonly router: ClusterRouter
  readonly store: ShardRanges
  readonly membership: Membership
  readonly wire: ClusterWire
  writer (peer: string): FrameSink
  /** The shards this host serves changed. */
  changed (gained: readonly number[], lost: readonly number[]): void
  /** Something went wrong that the user should hear about (a move called off). */
  warn (message: string): void
  /** A reconciliation ended: whoever waits for the cluster to settle may look again. */
  settledMaybe (): void
  /** Resolves once the outbox deletions in flight are durable: a shard's records leave only after them. */
  deletionsSettled (): Promise<void>
  /**
   * Replicas: shards the map gives this host that it kept replica copies of (a failover
   * made it their owner) become its own ranges — resolves once every segment it took is applied.
   */
  promote? (shards: readonly number[]): Promise<void>
  /** Replicas: a planned move brings this shard's range; a replica copy of it gives way. */
  beforeImport? (shard: number): Promise<void>
  /** Is the shard's range here a replica's copy? */
  isCopy? (shard: number): boolean
}

interface Outgoing {
  readonly to: string
  /** The map epoch the move was planned at (the leader checks the report against it). */
  readonly planned: number
  /** The new owner acknowledged the data: from here on the move is reported (again) until the map decides. */
  acked: boolean
  reported: boolean
  /** The token of the data stream's acknowledgement (0 until the stream starts). */
  token: number
}

/**
 * Where a move out stands, for an unsettled cluster's report: still releasing its shards
 * (the workers passivating and committing them; no frame sent yet), sent and waiting for the
 * target's answer, or answered and waiting for the report.
 */
function stepOf (out: Outgoing): string {
  if (out.reported) return 'reported'
  if (out.acked) return 'acknowledged, not reported yet'
  return out.token === 0 ? 'releasing its shards, nothing sent yet, not reported yet' : 'sent, no answer yet, not reported yet'
}

interface Incoming {
  readonly from: string
  readonly chunks: Map<number, Buffer[]>
}

interface Imported {
  readonly from: string
  readonly timeouts: MovedTimeout[]
  /** The map epoch the move was planned at: a map older than that cannot say the move was called off. */
  readonly planned: number
}

export class Handover {
  private readonly parts: HandoverParts
  /** Shards this host serves (adopted, LOCAL at the gateway). */
  readonly served = new Set<number>()
  /** Shards leaving this host, and where to. */
  private readonly outgoing = new Map<number, Outgoing>()
  /** Streams coming in, by peer and token. */
  private readonly incoming = new Map<string, Incoming>()
  /** Shards whose records came in (and the timeouts that came with them), waiting for the map to name this host. */
  private readonly imported = new Map<number, Imported>()
  /** Shards whose moved-in records are being written now: not adopted until they land. */
  private readonly importing = new Set<number>()
  /** Shards a called-off move is serving here again (`restore`): a reconcile meanwhile must not adopt them a second time. */
  private readonly restoring = new Set<number>()
  /** Answers to move streams this host sent, by token. */
  private readonly acks = new Map<number, { readonly to: string, readonly answer: (ok: boolean, error: string | null) => void }>()
  private nextToken = 0
  private running: Promise<void> = Promise.resolve()
  private again = false
  private busy = false
  private fenced = false
  private closed = false
  /** Figures for stats. */
  movedOut = 0
  movedIn = 0
  calledOff = 0
  staleDropped = 0
  /** CL_FLUSH_ASKs sent: a link to an old owner came up while shards from it waited for its CL_FLUSHED. */
  flushAsks = 0
  /** The map epoch stale ranges were last looked for at. */
  private sweptAt = -1
  private retryTimer: ReturnType<typeof setTimeout> | null = null

  constructor (parts: HandoverParts) {
    this.parts = parts
  }

  /** This host serves the shard and is not moving it away. */
  serves (shard: number): boolean {
    return this.served.has(shard) && !this.outgoing.has(shard)
  }

  /** No move in or out, nothing waiting to be adopted. */
  get idle (): boolean {
    return this.outgoing.size === 0 && this.imported.size === 0 && this.incoming.size === 0 && this.importing.size === 0 && this.restoring.size === 0 && !this.busy
  }

  /** This host has every committed record of `shard`: it serves it, or the shard is leaving and its range is not dropped yet. */
  holds (shard: number): boolean {
    return this.served.has(shard) || this.outgoing.has(shard)
  }

  /**
   * The shard's range here is this host's own — served, leaving, or a move bringing it here
   * (being written, or written and waiting for the map) — so no replica copy may take it
   * over, write into it or drop it. A move's range is not `holds` (the old owner may serve
   * the shard again if the move is called off), but it is the range the map will make this
   * host serve: chaos seed 2002 lost acknowledged writes when a replica copy of the shard,
   * started by a segment from the same owner while the move's range was being written, was
   * then dropped as a copy nobody kept — and the host adopted the empty range.
   */
  keepsRange (shard: number): boolean {
    return this.served.has(shard) || this.outgoing.has(shard) || this.importing.has(shard) || this.imported.has(shard)
  }

  /** Shards moving out of or into this host now. */
  get moving (): number {
    return this.outgoing.size + this.imported.size
  }

  /** Compare the map with what this host serves, and act; coalesces calls made while it runs. */
  reconcile (): Promise<void> {
    if (this.closed) return Promise.resolve() // the store may be closed: nothing to compare any more
    if (this.busy) {
      this.again = true
      return this.running
    }
    this.busy = true
    this.running = (async () => {
      try {
        do {
          this.again = false
          this.at('comparing the map')
          await this.step()
        } while (this.again && !this.closed)
      } finally {
        this.busy = false
      }
      this.parts.settledMaybe()
    })()
    return this.running
  }

  /** The lease could not be renewed in time: stop serving everything until it is. */
  async fence (): Promise<void> {
    this.fenced = true
    await this.reconcile()
  }

  unfence (): void {
    this.fenced = false
    void this.reconcile()
  }

  close (): void {
    this.closed = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    for (const { answer } of this.acks.values()) answer(false, 'closed')
    this.acks.clear()
  }

  private async step (): Promise<void> {
    const { self, membership, router, gateway } = this.parts
    const map = membership.map()
    if (map === undefined || this.closed) return
    router.setMap(map)
    const selfIndex = map.hosts.indexOf(self)
    const gained: number[] = []
    const lost: number[] = []
    const adopt: number[] = []
    const release: number[] = []
    const finished = new Map<string, number[]>()
    const moot: number[] = []
    const moves = new Map<string, number[]>()
    for (let s = 0; s < SHARDS; s++) {
      const mine = selfIndex >= 0 && map.owner[s] === selfIndex && !this.fenced
      const out = this.outgoing.get(s)
      if (mine) {
        const target = map.target[s]!
        if (out !== undefined) {
          // still ours: the move is under way, or was called off — no target any more, or
          // planned again since (its target left and came back: a report of the old plan is
          // one the leader ignores, so shards held for it would wait for ever)
          if (!movePlanned(map, s, self, out.to, out.planned)) this.callOff(s)
          continue
        }
        if (!this.served.has(s)) {
          // records of a move are being written: adopting now would serve the range they
          // are about to replace (importShards reconciles again once they land)
          // (or a called-off move is serving them again: restore() adopts them, then reconciles)
          if (!this.importing.has(s) && !this.restoring.has(s)) adopt.push(s)
          continue
        }
        if (target !== NONE && target !== selfIndex) {
          const key = `${map.hosts[target]!}\u0000${map.targetEpoch[s]!}`
          groupInto(moves, key, s)
        }
        continue
      }
      if (out !== undefined) {
        const owner = map.owner[s] === NONE ? undefined : map.hosts[map.owner[s]!]
        if (owner === out.to) {
          groupInto(finished, out.to, s)
        } else if (out.reported && owner !== undefined && map.owner[s] !== selfIndex) {
          // a third host owns it now (a failover while the report's outcome was unknown): the
          // move is moot, the held frames go to that owner and the range here is stale
          moot.push(s)
        }
        continue
      }
      if (this.served.has(s)) release.push(s) // not ours any more, and not by a move of ours (fenced, or the map changed under us)
      const imported = this.imported.get(s)
      // (owner here: the move finished and this host is fenced for now — the records are the shard's, adopted on unfence)
      // (a map older than the move's planning has not heard of it yet: that is no call-off)
      if (imported !== undefined && map.epoch >= imported.planned && map.owner[s] !== selfIndex && (map.target[s] === NONE || map.target[s] !== selfIndex)) {
        // a move to here was called off after the records came: they are stale
        this.imported.delete(s)
        this.dropStale(s)
      }
    }
    for (const s of moot) {
      const held = router.takeLeaving(s)
      this.outgoing.delete(s)
      lost.push(s)
      held?.forEach((frame) => router.route(frame))
      this.dropStale(s)
    }
    this.at('finishing moves out')
    for (const [to, shards] of finished) await this.finishOut(shards, to, lost)
    if (release.length !== 0) {
      this.at(`releasing ${release.length} shard(s)`)
      await gateway.release(release)
      for (const s of release) {
        this.served.delete(s)
        lost.push(s)
      }
    }
    if (adopt.length !== 0) await this.adopt(adopt, gained)
    // a shard adopted just now that the map plans to move on (this host serves its shards again
    // after it was fenced, or started with moves from it planned) was not served when `moves`
    // was made: compare again now. Nothing else would — steps run when the map changes, and
    // the leader writes no new map while a planned move waits for its old owner.
    if (gained.some((s) => map.target[s] !== NONE && map.target[s] !== selfIndex)) this.again = true
    this.at('planning moves out')
    for (const [key, shards] of moves) {
      const [to, planned] = key.split('\u0000') as [string, string]
      void this.moveOut(shards, to, Number(planned))
    }
    if (gained.length !== 0 || lost.length !== 0) this.parts.changed(gained, lost)
    if (!this.closed && !this.fenced && map.epoch !== this.sweptAt && this.outgoing.size === 0 && this.incoming.size === 0 && this.imported.size === 0 && this.importing.size === 0) {
      this.sweptAt = map.epoch
      try {
        this.sweepStale(map, selfIndex)
      } catch (err) {
        this.parts.warn(`looking for stale ranges failed (${messageOf(err)}); looked for again at the next map`)
        this.sweptAt = -1
      }
    }
  }

  /**
   * Drop the ranges this host keeps that no map names it for: a shard it owned that failed
   * over while it was away (killed, stopped past its lease), or that the map gave elsewhere
   * while it was fenced. The new owner's records are the shard's; these would stay on disk
   * for ever, their outbox records looking unsent. Only when no move is under way, and
   * only for shards the map names this host neither owner, nor target, nor replica of, and
   * whose range is not a replica's copy (ReplicaCopies drops those: an in-sync record may
   * still vouch for one). An import of the shard waits for the drop (`drops`).
   */
  private sweepStale (map: ShardMap, selfIndex: number): void {
    const { store, self } = this.parts
    for (let s = 0; s < SHARDS; s++) {
      if (map.owner[s] === NONE || map.owner[s] === selfIndex || map.target[s] === selfIndex) continue
      if (this.served.has(s) || this.drops.has(s) || this.importing.has(s) || this.parts.isCopy?.(s) === true) continue
      if (replicasOf(map, s).includes(self)) continue
      if (store.shardSize(s).records === 0) continue
      this.staleDropped++
      this.dropStale(s)
    }
  }

  // ---- out ---------------------------------------------------------------------

  private async moveOut (shards: number[], to: string, planned: number): Promise<void> {
    const { router, gateway, store, wire, membership, self } = this.parts
    for (const s of shards) this.outgoing.set(s, { to, planned, acked: false, reported: false, token: 0 })
    router.holdLeaving(shards)
    for (const s of shards) this.served.delete(s)
    const timeouts = await gateway.release(shards)
    await this.parts.deletionsSettled()
    const token = this.nextToken = (this.nextToken + 1) >>> 0
    let ok = false
    let why = ''
    try {
      const answered = new Promise<[boolean, string | null]>((resolve) => {
        if (this.closed) {
          resolve([false, 'closed'])
          return
        }
        const timer = setTimeout(() => resolve([false, `no answer within ${MOVE_ACK_TIMEOUT_MS} ms`]), MOVE_ACK_TIMEOUT_MS)
        timer.unref()
        this.acks.set(token, {
          to,
          answer: (yes, error) => {
            clearTimeout(timer)
            resolve([yes, error])
          }
        })
      })
      for (const s of shards) {
        const out = this.outgoing.get(s)
        if (out !== undefined) out.token = token
      }
      // the map may have planned the move again while the shards were released: don't start it
      const now = membership.map()
      if (now !== undefined && shards.some((s) => !movePlanned(now, s, self, to, planned))) {
        this.acks.get(token)?.answer(false, 'the map no longer plans this move')
      }
      let n = 0
      for (const s of shards) {
        for (const chunk of store.exportShard(s)) {
          wire.write(this.parts.writer(to), CL_MOVE_DATA, token, { shard: s, chunk })
          if (++n % 64 === 0) await new Promise((resolve) => setImmediate(resolve)) // let the link drain
        }
      }
      wire.write(this.parts.writer(to), CL_MOVE_END, token, { shards, timeouts, epoch: planned })
      const [yes, error] = await answered
      ok = yes
      why = error ?? ''
    } catch (err) {
      why = messageOf(err)
    } finally {
      this.acks.delete(token)
    }
    if (!ok || this.closed) {
      if (!this.closed) this.parts.warn(`moving ${shards.length} shard(s) to ${to} was called off (${why}); they are served here again and will be tried again`)
      await this.restore(shards, timeouts)
      return
    }
    for (const s of shards) {
      const out = this.outgoing.get(s)
      if (out !== undefined) out.acked = true
    }
    try {
      await membership.reportHandover(shards, self, to, planned)
      for (const s of shards) {
        const out = this.outgoing.get(s)
        if (out !== undefined) out.reported = true
      }
      this.movedOut += shards.length
    } catch (err) {
      // the report may have landed with its answer lost (etcd restarting, a timeout): serving
      // the shards again could acknowledge writes the new owner will never have. They stay
      // held until the map says — the new owner (finishOut) or the move called off (callOff
      // restores them) — and the report goes again meanwhile (it is idempotent).
      this.parts.warn(`reporting the handover of ${shards.length} shard(s) to ${to} failed (${messageOf(err)}); they wait for the map, reported again every ${REPORT_RETRY_MS} ms`)
      for (const s of shards) {
        const out = this.outgoing.get(s)
        if (out !== undefined) out.reported = true
      }
      this.reportAgain(shards, to, planned)
      return
    }
    void this.reconcile() // the map may have moved on meanwhile
  }

  /**
   * The lease is gone (it expired: etcd deleted every key under it) — the reports of
   * handovers the leader had not folded yet went with it. Their moves would wait for ever
   * for a report nobody holds any more: the map still plans them, and the leader writes no
   * new map for them. Each is reported again until it lands (under the lease this host
   * registers with next) or the map decides.
   *
   * Every move whose data the new owner acknowledged, not only those whose report came
   * back: a report in flight when the lease went may have landed under it just before (and
   * gone with it) while its answer comes after this. A report made twice is harmless (the
   * put is idempotent, and the leader folds a report once).
   */
  leaseLost (): void {
    const groups = new Map<string, number[]>()
    for (const [s, out] of this.outgoing) {
      if (!out.acked) continue // the data is still going out: its report is made afterwards, under the lease then
      const key = `${out.to}\u0000${out.planned}`
      groupInto(groups, key, s)
    }
    for (const [key, shards] of groups) {
      const [to, planned] = key.split('\u0000') as [string, string]
      this.reportAgain(shards, to, Number(planned))
    }
  }

  /** Report a handover again until it lands or the map has decided the shards' fate. */
  private reportAgain (shards: readonly number[], to: string, planned: number): void {
    const timer = setTimeout(() => {
      if (this.closed) return
      const map = this.parts.membership.map()
      const pending = shards.filter((s) => {
        const out = this.outgoing.get(s)
        return out !== undefined && out.to === to && out.planned === planned && map !== undefined && movePlanned(map, s, this.parts.self, to, planned)
      })
      if (pending.length === 0) {
        void this.reconcile() // the map decided meanwhile (or planned the move again): act on it
        return
      }
      this.parts.membership.reportHandover(pending, this.parts.self, to, planned).then(
        () => { void this.reconcile() },
        () => this.reportAgain(pending, to, planned)
      )
    }, REPORT_RETRY_MS)
    timer.unref()
  }

  /** The map names the new owner: hand it what was held, tell it so, and let go of the records. */
  private async finishOut (shards: number[], to: string, lost: number[]): Promise<void> {
    const { router, wire, store } = this.parts
    router.releaseLeaving(shards, to, (sink) => wire.write(sink, CL_FLUSHED, 0, { shards }))
    for (const s of shards) {
      lost.push(s)
      await store.dropShard(s)
      // held until dropped: a replica copy of the new owner's stream must not start before the drop
      this.outgoing.delete(s)
    }
  }

  /** A move out failed or was called off: serve the shards here again, their held frames first. */
  private async restore (shards: number[], timeouts: MovedTimeout[]): Promise<void> {
    const { router, gateway } = this.parts
    this.calledOff += shards.length
    const held = new Map<number, ReturnType<ClusterRouter['takeLeaving']>>()
    for (const s of shards) {
      held.set(s, router.takeLeaving(s))
      this.outgoing.delete(s)
      this.restoring.add(s)
    }
    try {
      await gateway.arrive(shards)
      await gateway.adopt(shards, timeouts, (s) => held.get(s))
      for (const s of shards) this.served.add(s)
    } finally {
      for (const s of shards) this.restoring.delete(s)
    }
    // tried again later; and the map may have moved on while they were adopted (fenced, a
    // failover): the next reconcile releases what is not this host's any more
    this.scheduleRetry()
  }

  /**
   * The map no longer plans this move. Before the new owner acknowledged the data, the
   * stream is ended now, as its timeout would end it (moveOut restores the shards and
   * serves them again): the leader folds no report of a plan it replaced, and waiting for an
   * answer that may never come (chaos seeds 3008 and 5202: the target had no stream coming
   * in) held the shards out of service for MOVE_ACK_TIMEOUT_MS. Acknowledged but not yet
   * reported, the report is in flight and may land: the shard stays held until the map
   * decides. After the report, the leader ignores it, so the shard is served here again now.
   */
  private callOff (shard: number): void {
    const out = this.outgoing.get(shard)
    if (out === undefined) return
    if (!out.acked) {
      if (out.token !== 0) this.acks.get(out.token)?.answer(false, 'the map no longer plans this move')
      return
    }
    if (!out.reported) return
    void this.restore([shard], [])
  }

  private scheduleRetry (): void {
    if (this.retryTimer !== null || this.closed) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      void this.reconcile()
    }, RETRY_MS)
    this.retryTimer.unref()
  }

  /**
   * A link to `peer` is up. Shards moved here from it may still wait for its CL_FLUSHED:
   * one it wrote into a link that dropped, or while the link was down, is lost, and the
   * new owner would wait FLUSH_WAIT_MS before serving them (chaos seed 5203: 38 shards
   * adopted from h1 unserved, "waiting for CL_FLUSHED from h1", the cluster settling 7 s
   * late). Ask: it answers for the shards it holds nothing of any more, and the others get
   * their CL_FLUSHED when its move out finishes, on this link.
   */
  up (peer: string): void {
    const shards = this.parts.router.waitingFrom(peer)
    if (shards.length === 0) return
    this.flushAsks++
    try {
      this.parts.wire.write(this.parts.writer(peer), CL_FLUSH_ASK, 0, { shards })
    } catch {
      // down again: asked at the next 'up', or the wait ends after FLUSH_WAIT_MS
    }
  }

  /**
   * The link to `peer` dropped. Frames on it are lost, so a move stream to it cannot end
   * well: it is called off now (not after MOVE_ACK_TIMEOUT_MS, which kept the shards
   * unserved and the cluster unsettled that long) and tried again. A stream from it that
   * had not ended is forgotten: the peer calls it off on its side and sends it again.
   */
  down (peer: string): void {
    for (const { to, answer } of [...this.acks.values()]) if (to === peer) answer(false, `the link to ${peer} dropped`)
    for (const [key, stream] of this.incoming) if (stream.from === peer) this.incoming.delete(key)
  }

  /** What keeps this host from settling, for a timeout's message. */
  describeMoving (): string {
    const step = this.busy ? `a reconcile step running for ${Math.round(performance.now() - this.phaseSince)} ms (${this.phase})` : 'no reconcile step running'
    return `${this.outgoing.size} moving out, ${this.importing.size} being written, ${this.imported.size} moved in and waiting for the map (${[...this.imported.keys()].slice(0, 4).join(', ')}), ${this.incoming.size} stream(s) coming in, ${this.restoring.size} being served again after a move was called off, ${step}`
  }

  /**
   * The moves out this host holds, grouped by target, planned epoch and whether the report
   * went out, and for each group what the map says of its first shard — for an unsettled
   * cluster's report: an old owner's view is the one that says why a planned move waits.
   */
  describeOutgoing (map: ShardMap | undefined): string {
    if (this.outgoing.size === 0) return 'no move out held'
    const groups = new Map<string, number[]>()
    for (const [s, out] of this.outgoing) {
      const key = `to ${out.to} planned at ${out.planned}, ${stepOf(out)}`
      groupInto(groups, key, s)
    }
    const parts: string[] = []
    for (const [key, shards] of groups) {
      const s = shards[0]!
      const out = this.outgoing.get(s)!
      const said = map === undefined
        ? 'no map'
        : `map: owner ${map.owner[s] === NONE ? 'none' : map.hosts[map.owner[s]!]!}, target ${map.target[s] === NONE ? 'none' : `${map.hosts[map.target[s]!]!} at ${map.targetEpoch[s]!}`}, still planned as held: ${String(movePlanned(map, s, this.parts.self, out.to, out.planned))}`
      parts.push(`${shards.length} ${key} (e.g. shard ${s}; ${said})`)
    }
    return `moves out held: ${parts.join('; ')}`
  }

  /** What the running reconcile step waits for, and since when: an unsettled cluster's message says it. */
  private phase = ''
  private phaseSince = 0
  private at (phase: string): void {
    this.phase = phase
    this.phaseSince = performance.now()
  }

  // ---- in ----------------------------------------------------------------------

  /** A cluster frame of a move, from `peer`. */
  onFrame (peer: string, kind: number, id: number, value: unknown): void {
    switch (kind) {
      case CL_MOVE_DATA: {
        const { shard, chunk } = value as { shard: number, chunk: Uint8Array }
        const key = `${peer}\u0000${id}`
        let stream = this.incoming.get(key)
        if (stream === undefined) this.incoming.set(key, stream = { from: peer, chunks: new Map() })
        let list = stream.chunks.get(shard)
        if (list === undefined) stream.chunks.set(shard, list = [])
        list.push(Buffer.from(chunk))
        return
      }
      case CL_MOVE_END: {
        const { shards, timeouts, epoch } = value as { shards: number[], timeouts: MovedTimeout[], epoch?: number }
        const key = `${peer}\u0000${id}`
        const stream = this.incoming.get(key) ?? { from: peer, chunks: new Map() }
        this.incoming.delete(key)
        void this.importShards(peer, id, shards, stream, timeouts, epoch ?? 0)
        return
      }
      case CL_MOVE_ACK: {
        const { ok, error } = value as { ok: boolean, error?: string }
        this.acks.get(id)?.answer(ok, error ?? null)
        return
      }
      case CL_FLUSHED: {
        this.parts.router.flushedFrom(peer, (value as { shards: number[] }).shards)
        void this.reconcile()
        return
      }
      case CL_FLUSH_ASK: {
        // nothing held for them (the move out finished, or this host restarted): everything
        // it held went out before, on a link that is gone now — nothing more will come
        const { router, wire } = this.parts
        const done = (value as { shards: number[] }).shards.filter((s) => Number.isInteger(s) && !router.holdsLeaving(s))
        if (done.length === 0) return
        try {
          wire.write(this.parts.writer(peer), CL_FLUSHED, 0, { shards: done })
        } catch {
          // the link dropped again: asked again when it comes up
        }
      }
    }
  }

  private async importShards (peer: string, token: number, shards: number[], stream: Incoming, timeouts: MovedTimeout[], planned: number): Promise<void> {
    const { store, router, wire } = this.parts
    let ok = true
    let error: string | undefined
    try {
      for (const s of shards) {
        // served here already (a failover made this host the owner while the stream came):
        // the range here has writes the stream lacks — it must not replace them
        if (this.served.has(s) || this.importing.has(s)) throw new Error(`shard ${s} is ${this.served.has(s) ? 'served' : 'being imported'} here already`)
        this.importing.add(s)
        try {
          await this.parts.beforeImport?.(s)
          await this.drops.get(s) // a drop of an earlier, called-off copy lands first
          await store.importShard(s, stream.chunks.get(s) ?? [])
          router.arrival(s, peer)
          this.imported.set(s, { from: peer, timeouts: timeouts.filter((t) => shardOf(t[1]) === s), planned })
        } finally {
          this.importing.delete(s)
        }
      }
    } catch (err) {
      ok = false
      error = err instanceof ShoalError ? err.message : messageOf(err)
    }
    void this.reconcile() // shards the map gave this host while their records were written are adopted now
    try {
      wire.write(this.parts.writer(peer), CL_MOVE_ACK, token, ok ? { ok } : { ok, error })
    } catch {
      // the link dropped: the old owner calls the move off on its side
    }
  }

  /** Adopt shards the map gives this host: those that came with a move wait for their old owner's CL_FLUSHED. */
  private async adopt (shards: number[], gained: number[]): Promise<void> {
    const { router, gateway } = this.parts
    const ready: number[] = []
    for (const s of shards) {
      const imported = this.imported.get(s)
      if (imported !== undefined) router.arrival(s, imported.from)
      if (router.flushed([s]) || this.flushWaitOver(s)) ready.push(s)
    }
    if (ready.length === 0) return
    const timeouts: MovedTimeout[] = []
    let arrived = 0
    for (const s of ready) {
      const imported = this.imported.get(s)
      if (imported !== undefined) {
        timeouts.push(...imported.timeouts)
        arrived++
      }
      this.imported.delete(s)
      this.waitingSince.delete(s)
    }
    const copies = this.parts.isCopy === undefined ? [] : ready.filter((s) => this.parts.isCopy!(s)) // a moved-in range is no copy
    this.at(`promoting ${copies.length} replica cop(ies)`)
    if (copies.length !== 0) await this.parts.promote!(copies)
    this.at(`adopting ${ready.length} shard(s)`)
    await gateway.arrive(ready)
    const held = router.takeArrivals(ready)
    await gateway.adopt(ready, timeouts, (s) => held.get(s))
    for (const s of ready) {
      this.served.add(s)
      gained.push(s)
    }
    this.movedIn += arrived
  }

  private readonly waitingSince = new Map<number, number>()

  /** A new owner does not wait for ever for an old owner that went away before it flushed. */
  private flushWaitOver (shard: number): boolean {
    const now = Date.now()
    const since = this.waitingSince.get(shard)
    if (since === undefined) {
      this.waitingSince.set(shard, now)
      setTimeout(() => { void this.reconcile() }, FLUSH_WAIT_MS + 10).unref()
      return false
    }
    return now - since >= FLUSH_WAIT_MS
  }

  /** Records of a shard that came for a move that was called off. */
  private dropStale (shard: number): void {
    const { router, store } = this.parts
    const held = router.takeArrivals([shard]).get(shard)
    held?.forEach((frame) => router.route(frame))
    const drop = Promise.resolve(store.dropShard(shard)).catch(() => {}).finally(() => {
      if (this.drops.get(shard) === drop) this.drops.delete(shard)
    })
    this.drops.set(shard, drop)
  }

  /** Drops of called-off copies in flight, per shard: an import of the same shard waits for them. */
  private readonly drops = new Map<number, Promise<void>>()
}
