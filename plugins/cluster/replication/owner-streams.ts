/**
 * The owner's half of replication (docs/cluster.md, "Replicas"): every commit of a shard
 * this host serves goes to the shard's replicas, and the commit's replies and sends
 * leave only once every replica in the shard's in-sync set has it.
 *
 * Per served shard, a stream: `id` (this process's nonce, the shard's epoch and a
 * generation — a new owner, this owner after a restart, or a stream started over because
 * a commit whose journal went out failed here, is a new stream a replica must catch up with),
 * `seq` (each journal segment of the shard gets the next one), and the in-sync set: the
 * replicas that have applied every segment this owner acknowledged. A segment is done
 * when every host of the in-sync set has acknowledged it (replicas apply in order, so an
 * acknowledgement is a high-water mark per host).
 *
 * The in-sync set is what the leader reads to fail a dead owner's shard over
 * (native-free-core/placement/in-sync.ts): it must never name a host that lacks an
 * acknowledged write. So:
 *   - it grows in memory first (from then on writes wait for the host), then in etcd;
 *   - it shrinks in etcd first (`publishInSync`), then in memory — until the write lands,
 *     writes keep waiting for the host that fell behind;
 *   - a new stream's first record (no replica in sync) is published before its first
 *     segment is done: a record left from this shard's earlier life must not vouch for
 *     hosts that have not seen this stream.
 * A replica falls out (link down, no acknowledgement within `ackTimeoutMs`, it asked for a
 * snapshot, the map dropped it); it comes back in after a snapshot and the segments
 * since (CL_SYNCED).
 *
 * A commit's journal comes here as the commit is queued, before its local transaction has
 * committed, so that the replicas' commit overlaps the owner's (the replies wait for both).
 * Two things follow: a snapshot numbered `base` is read only once every commit of the
 * shard queued here before it was numbered has committed (`committed`), so it holds every
 * segment up to `base` (and maybe later ones: replaying those over it is harmless, a
 * journal's writes being absolute); and a commit that fails here after its journal went
 * out starts its shards' streams over (`restart`: a new generation, the replicas take a
 * snapshot), so that no replica keeps a write the owner lost.
 */
import { ShardUnavailableError, messageOf } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { inSyncHosts, markInSync, newInSyncRecord, setShardEpoch } from '../../../native-free-core/placement/in-sync.ts'
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'
import { replicasOf } from '../../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import { forEachSegment } from '../../../native-free-core/storage/commit-journal.ts'
import type { FrameSink } from '../../../native-free-core/ring/ring-queue.ts'
import type { ShardRanges } from '../../../native-free-core/storage/shard-range.ts'
import { CL_REPL, CL_SNAP_DATA, CL_SNAP_END, CL_UNREPLICA } from '../wire.ts'
import { SegmentWriter, streamId } from './segment-frames.ts'
import type { ClusterWire } from '../wire.ts'

/** How often replicas that are not in sync are reminded of the stream (an idle shard sends no segment). */
const NUDGE_MS = 1000
/** Least time between two writes of the in-sync record. */
const PUBLISH_GAP_MS = 200
/**
 * After a failed write of the record (fenced, etcd away or restarting, the lease renewed
 * under a new id), the next try. A failed write must be retried, not given up: a replica
 * that falls out stays in the in-sync set until the record lands, and a new stream's
 * writes wait for its first record — giving up would hold them forever.
 */
const PUBLISH_RETRY_MS = 500

export interface OwnerParts {
  readonly self: string
  readonly wire: ClusterWire
  readonly store: ShardRanges
  writer (peer: string): FrameSink
  /** Write this owner's in-sync record (etcd, fenced by the lease). */
  publish (record: InSyncRecord): Promise<void>
  /** How long a replica may take to acknowledge a segment before it falls out. */
  readonly ackTimeoutMs: number
  /** Resolves once every commit of the shard queued on this host so far has committed here (or failed). */
  committed (shard: number): Promise<void>
  warn (message: string): void
}

const kEmpty = new Uint8Array(0)

/** One journal piece waiting for its shards' replicas. */
class Gate {
  remaining: number
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
  /** When it was numbered (Date.now()). */
  readonly since: number
  constructor (remaining: number, resolve: () => void, reject: (err: unknown) => void, since: number) {
    this.remaining = remaining
    this.resolve = resolve
    this.reject = reject
    this.since = since
  }
}

class Stream {
  readonly shard: number
  readonly id: string
  readonly epoch: number
  readonly gen: number
  seq = 0
  /** Replicas writes wait for (in memory: grows first, shrinks last). */
  readonly inSync = new Set<string>()
  /** Replicas leaving the in-sync set: gone from the next record, still waited for until it lands. */
  readonly dropping = new Set<string>()
  /** Highest segment each replica acknowledged on this stream. */
  readonly acked = new Map<string, number>()
  /**
   * Segments not done yet, oldest first, in `head..tail` (settled ones are skipped, not
   * spliced out per acknowledgement): each one's seq and its journal's gate, side by side
   * — no object per segment (a segment is nearly a command), and the two lists keep their
   * room when they empty (the stream's next segment does not grow them again).
   */
  waitSeq: number[] = []
  waitGate: Array<Gate | null> = []
  head = 0
  tail = 0
  /** The stream's first record landed (until then nothing is done). */
  published = false
  /** Replicas the segments go to (the map's list, and whoever is still in sync). */
  targets: string[] = []
  /**
   * Hosts told they may drop their copy (CL_UNREPLICA): told again whenever a link to one
   * comes up, since the frame is lost if the link drops — a copy nobody counts on would
   * stay on its disk for ever. Forgotten when the host is a target again or the stream ends.
   */
  readonly unreplicated = new Set<string>()
  /** `whenLanded` waiters: each done once the stream is published and every segment up to its seq is done (or the stream ends). */
  landing: Array<{ readonly seq: number, readonly done: () => void }> = []

  constructor (shard: number, nonce: number, epoch: number, gen: number) {
    this.shard = shard
    this.id = streamId(nonce, epoch, gen)
    this.epoch = epoch
    this.gen = gen
  }
}

export class OwnerStreams {
  private readonly parts: OwnerParts
  /** This process's streams' nonce (a stream's id is it and the shard's epoch). */
  private readonly nonce = Math.floor(Math.random() * 0x1_0000_0000)
  private readonly streams = new Map<number, Stream>()
  /** Each shard's stream generation in this process: bumped when a stream starts over, so that no id is used twice. */
  private readonly gens = new Uint16Array(SHARDS)
  /** CL_REPL payloads being filled, per replica host; hosts with some, to send. */
  private readonly out = new Map<string, SegmentWriter>()
  private readonly filled: string[] = []
  private map: ShardMap | null = null
  /** The record as this host last asked to publish it, and whether a write is on its way. */
  private publishing: Promise<void> | null = null
  private publishAgain = false
  private lastPublish = 0
  private readonly timer: ReturnType<typeof setInterval>
  private readonly nudger: ReturnType<typeof setInterval>
  private closed = false
  private publishFailing = false
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  /** Figures for stats. */
  publishFailures = 0
  segmentsOut = 0
  bytesOut = 0
  snapshotsOut = 0
  fellOut = 0
  restarts = 0

  constructor (parts: OwnerParts) {
    this.parts = parts
    this.timer = setInterval(() => this.checkTimeouts(), Math.max(50, parts.ackTimeoutMs >> 2))
    this.timer.unref()
    this.nudger = setInterval(() => this.nudge(null), NUDGE_MS)
    this.nudger.unref()
  }

  /** The in-sync record as last written to etcd (what a failover goes by). */
  private landed: InSyncRecord | null = null

  /**
   * Shards served here whose in-sync record, as last written to etcd, names a replica at
   * the stream's epoch: those a failover could take over now. It trails `inSyncCount` — a
   * replica joins the set in memory first, the record follows within PUBLISH_GAP_MS — and
   * it is the figure to wait for before counting on a failover (a host stopped in that gap
   * leaves a record without the replica).
   */
  failoverReady (): number {
    const landed = this.landed
    if (landed === null) return 0
    let n = 0
    for (const s of this.streams.values()) if (inSyncHosts(landed, s.shard, s.epoch).length !== 0) n++
    return n
  }

  /** Served shards with replicas in sync now, per shard (stats). */
  inSyncCount (): number {
    let n = 0
    for (const s of this.streams.values()) if (s.inSync.size !== 0) n++
    return n
  }

  /**
   * Writes waiting for replicas, for an unsettled cluster's report: how many streams have
   * some, and the oldest — its shard, age, what it waits for (the in-sync replicas and what
   * each acknowledged, those falling out, whether the stream's first record landed).
   */
  describeWaiting (): string {
    let streams = 0
    let writes = 0
    let oldest: { stream: Stream, w: { seq: number, since: number } } | null = null
    for (const stream of this.streams.values()) {
      let n = 0
      for (let i = stream.head; i < stream.tail; i++) if (stream.waitGate[i]!.remaining > 0) n++
      if (n === 0) continue
      streams++
      writes += n
      const w = { seq: stream.waitSeq[stream.head]!, since: stream.waitGate[stream.head]!.since }
      if (oldest === null || w.since < oldest.w.since) oldest = { stream, w }
    }
    const publish = `in-sync record ${this.publishing !== null ? 'being written' : 'idle'}${this.publishFailing ? ', its writes failing' : ''} (${this.publishFailures} failures)`
    if (oldest === null) return `replication: no write waits for replicas; ${publish}`
    const { stream, w } = oldest
    const acks = [...stream.inSync].map((h) => `${h}${stream.dropping.has(h) ? ' (falling out)' : ''} acked ${stream.acked.get(h) ?? 0}`).join(', ')
    return `replication: ${writes} write(s) of ${streams} shard(s) wait for replicas; the oldest, shard ${stream.shard} seq ${w.seq}, for ${Date.now() - w.since} ms: stream ${stream.published ? 'published' : 'not published yet'}, in sync [${acks}], targets [${stream.targets.join(', ')}]; ${publish}`
  }

  // ---- the shards this host serves ---------------------------------------------

  /** The map changed: start streams for shards served now, end those of shards no longer ours. */
  setMap (map: ShardMap, serves: (shard: number) => boolean): void {
    this.map = map
    const self = this.parts.self
    const me = map.hosts.indexOf(self)
    let changed = false
    for (const [shard, stream] of this.streams) {
      if (me >= 0 && map.owner[shard] === me && map.shardEpoch[shard] === stream.epoch) continue
      this.end(stream, `shard ${shard} has another owner now (map epoch ${map.epoch}): retry`)
    }
    for (let shard = 0; shard < SHARDS; shard++) {
      if (me < 0 || map.owner[shard] !== me) continue
      let stream = this.streams.get(shard)
      if (stream === undefined) {
        if (!serves(shard)) continue
        stream = new Stream(shard, this.nonce, map.shardEpoch[shard]!, this.gens[shard]!)
        this.streams.set(shard, stream)
        changed = true
      }
      const listed = replicasOf(map, shard)
      for (const host of stream.inSync) {
        if (!listed.includes(host) && !stream.dropping.has(host)) {
          this.fallOut(stream, host, false)
          changed = true
        }
      }
      const before = stream.targets
      stream.targets = [...new Set([...listed, ...stream.inSync])]
      for (const host of stream.targets) {
        stream.unreplicated.delete(host)
        if (!before.includes(host)) this.hello(stream, host)
      }
      // a replica dropped from the list before it caught up: no record names it, so it may
      // drop its copy now (one in sync is told once the record without it lands: fallOut)
      const gone = before.filter((host) => !stream.targets.includes(host) && !stream.unreplicated.has(host))
      for (const host of gone) {
        stream.unreplicated.add(host)
        this.unreplica(host, [stream])
      }
    }
    if (changed) void this.publishSoon().catch(() => {})
  }

  /** The shard is no longer served here (moved out, released): its writes are done with. */
  stop (shard: number): void {
    const stream = this.streams.get(shard)
    if (stream === undefined) return
    this.end(stream, `shard ${shard} left this host: retry`)
    this.publishSoon()
  }

  private end (stream: Stream, why: string): void {
    this.streams.delete(stream.shard)
    // not served here any more: its sends are not redelivered from here (outbox-redelivery.ts)
    for (const l of stream.landing.splice(0)) l.done()
    const error = new ShardUnavailableError(why, { shard: stream.shard })
    const w = stream.waitGate
    for (let i = stream.head; i < stream.tail; i++) {
      const gate = w[i]!
      if (gate.remaining > 0) {
        gate.remaining = -1
        gate.reject(error)
      }
    }
    stream.waitSeq = []
    stream.waitGate = []
    stream.head = 0
    stream.tail = 0
  }

  /**
   * Commits of these shards (or of the shards `which` picks) whose journals went out were
   * lost here (the local transaction failed, or its worker died): the replicas may hold
   * writes this host does not. Each shard's stream starts over — a new generation, so the
   * replicas take a snapshot; writes waiting on the old one fail (retriable), and the new
   * one's writes wait for a record without the old in-sync replicas, as any new stream's do.
   */
  restart (which: readonly number[] | ((shard: number) => boolean)): void {
    const shards = typeof which === 'function' ? [...this.streams.keys()].filter(which) : new Set(which)
    let changed = false
    for (const shard of shards) {
      const old = this.streams.get(shard)
      if (old === undefined) continue
      const landing = old.landing.splice(0) // they wait for the new stream's record instead
      this.end(old, `a write of shard ${shard} failed on its owner after it went to the replicas: retry`)
      const gen = this.gens[shard] = (this.gens[shard]! + 1) & 0xffff
      const stream = new Stream(shard, this.nonce, old.epoch, gen)
      for (const l of landing) stream.landing.push({ seq: 0, done: l.done })
      stream.targets = this.map === null ? old.targets : replicasOf(this.map, shard)
      for (const host of old.unreplicated) if (!stream.targets.includes(host)) stream.unreplicated.add(host)
      this.streams.set(shard, stream)
      for (const host of stream.targets) this.segmentTo(host, stream, 0, kEmpty)
      this.restarts++
      changed = true
    }
    if (!changed) return
    this.parts.warn(`a commit failed here after its journal went to the replicas: ${this.restarts} stream(s) started over so far`)
    this.send()
    void this.publishSoon().catch(() => {})
  }

  /**
   * Resolves once every write numbered so far of the shards `which` picks is where a
   * failover looks for it: each stream's record is published (a stream started over by
   * `restart` publishes one without the old in-sync replicas) and every segment up to now
   * is done — or the stream ended (the shard is not served here any more). What a worker
   * that died had stored and not released waits for this before it is redelivered
   * (src/host/gateway.ts `restarted`): until then a failover could pick a replica without
   * its turn, and the turn retried there would send again (the send applied twice).
   */
  whenLanded (which: (shard: number) => boolean): Promise<void> {
    return new Promise((resolve) => {
      let left = 1
      const done = (): void => { if (--left === 0) resolve() }
      for (const stream of this.streams.values()) {
        if (!which(stream.shard)) continue
        if (stream.published && this.doneUpTo(stream) >= stream.seq) continue
        left++
        stream.landing.push({ seq: stream.seq, done })
      }
      done()
    })
  }

  // ---- journals ----------------------------------------------------------------

  /** A journal of this host, its commit queued: resolves once every shard's in-sync replicas have it. */
  replicate (journal: Uint8Array): Promise<void> {
    let resolve!: () => void
    let reject!: (err: unknown) => void
    const done = new Promise<void>((res, rej) => {
      resolve = res
      reject = rej
    })
    const gate = new Gate(0, resolve, reject, Date.now())
    this.gate = gate
    try {
      forEachSegment(journal, this.numberSegment)
    } catch (err) {
      if (gate.remaining >= 0) {
        gate.remaining = -1
        reject(err)
      }
    } finally {
      this.gate = null
      // what was numbered goes out, whatever happened after (a later shard not served here)
      this.send()
    }
    if (gate.remaining === 0) resolve()
    return done
  }

  /** The gate of the journal `replicate` is numbering (its segments' visitor reads it). */
  private gate: Gate | null = null

  /** One segment of the journal being replicated: numbered in its shard's stream, written for each target. */
  private readonly numberSegment = (shard: number, bytes: Uint8Array, start: number, end: number): void => {
    const gate = this.gate!
    if (gate.remaining < 0) return // a shard before it was not served here: the rest is not numbered
    const stream = this.streams.get(shard) ?? this.startLate(shard)
    if (stream === undefined) {
      gate.remaining = -1
      gate.reject(new ShardUnavailableError(`shard ${shard} is not served here now: retry`, { shard }))
      return
    }
    const seq = ++stream.seq
    // not done at once unless no replica counts yet (`doneUpTo` without its walk of the set:
    // no replica has acknowledged a segment numbered only now)
    if (!stream.published || stream.inSync.size !== 0) {
      gate.remaining++
      const at = stream.tail++
      if (at < stream.waitSeq.length) {
        stream.waitSeq[at] = seq
        stream.waitGate[at] = gate
      } else {
        stream.waitSeq.push(seq)
        stream.waitGate.push(gate)
      }
    }
    const targets = stream.targets
    for (let i = 0; i < targets.length; i++) this.rangeTo(targets[i]!, stream, seq, bytes, start, end)
    this.segmentsOut++
    this.bytesOut += end - start
  }

  private writerFor (host: string): SegmentWriter {
    let out = this.out.get(host)
    if (out === undefined) this.out.set(host, out = new SegmentWriter(this.parts.wire.maxPayloadBytes, this.nonce))
    if (out.empty) this.filled.push(host)
    return out
  }

  private segmentTo (host: string, stream: Stream, seq: number, segment: Uint8Array): void {
    this.writerFor(host).add(stream.shard, stream.epoch, seq, segment, stream.gen)
  }

  private rangeTo (host: string, stream: Stream, seq: number, bytes: Uint8Array, start: number, end: number): void {
    this.writerFor(host).addRange(stream.shard, stream.epoch, seq, bytes, start, end, stream.gen)
  }

  /** One CL_REPL frame (or a few, if large) per replica host for everything numbered since the last. */
  private send (): void {
    for (const host of this.filled) {
      const out = this.out.get(host)!
      try {
        const sink = this.parts.writer(host)
        out.take((payload) => this.parts.wire.writeBytes(sink, CL_REPL, payload))
      } catch {
        // the link is down or full: the host falls out of the in-sync sets (link 'down', or its acknowledgement times out)
        out.take(() => {})
      }
    }
    this.filled.length = 0
  }

  /**
   * A journal of a shard the map gives this host but whose stream has not started (its
   * first commit came before the handover said it serves it): start it now.
   */
  private startLate (shard: number): Stream | undefined {
    const map = this.map
    if (map === null || map.owner[shard] !== map.hosts.indexOf(this.parts.self)) return undefined
    const stream = new Stream(shard, this.nonce, map.shardEpoch[shard]!, this.gens[shard]!)
    stream.targets = replicasOf(map, shard)
    this.streams.set(shard, stream)
    for (const host of stream.targets) this.hello(stream, host)
    void this.publishSoon().catch(() => {})
    return stream
  }

  /** The stream's segments up to this one are done (every replica in sync has them). */
  private doneUpTo (stream: Stream): number {
    if (!stream.published) return 0
    let upTo = Infinity
    for (const host of stream.inSync) {
      const acked = stream.acked.get(host) ?? 0
      if (acked < upTo) upTo = acked
    }
    return upTo
  }

  /** Let the segments of a stream that are done go. */
  private settle (stream: Stream): void {
    const upTo = this.doneUpTo(stream)
    if (stream.landing.length !== 0 && stream.published) {
      const waiting = stream.landing.filter((l) => l.seq > upTo)
      if (waiting.length !== stream.landing.length) {
        for (const l of stream.landing) if (l.seq <= upTo) l.done()
        stream.landing = waiting
      }
    }
    const seqs = stream.waitSeq
    const gates = stream.waitGate
    const tail = stream.tail
    let i = stream.head
    while (i < tail && seqs[i]! <= upTo) {
      const gate = gates[i]!
      gates[i] = null // a settled journal's gate is not kept alive by its slot
      if (gate.remaining > 0 && --gate.remaining === 0) gate.resolve()
      i++
    }
    if (i === tail) {
      stream.head = stream.tail = 0
    } else if (i > 1024 && i > tail >> 1) {
      // now and then, not per acknowledgement: the waiting ones to the front
      const n = tail - i
      for (let k = 0; k < n; k++) {
        seqs[k] = seqs[i + k]!
        gates[k] = gates[i + k]!
      }
      for (let k = n; k < tail; k++) gates[k] = null
      stream.head = 0
      stream.tail = n
    } else {
      stream.head = i
    }
  }

  // ---- from replicas -------------------------------------------------------------

  /** CL_REPL_ACK: `host` applied segments up to `seq` of a stream (nonce, epoch, generation). */
  acked (host: string, shard: number, nonce: number, epoch: number, seq: number, gen = 0): void {
    const stream = this.streams.get(shard)
    if (stream === undefined || nonce !== this.nonce || stream.epoch !== epoch || stream.gen !== gen) return
    if ((stream.acked.get(host) ?? 0) >= seq) return
    stream.acked.set(host, seq)
    this.settle(stream)
  }

  /** CL_REPL_ACK with a refusal: the replica's map names another owner — this one is deposed. */
  refused (host: string, shard: number, id: string, why: string): void {
    const stream = this.streams.get(shard)
    if (stream === undefined || stream.id !== id) return
    this.parts.warn(`replica ${host} refused shard ${shard}'s writes (${why}); its writes fail until the map here catches up`)
    this.end(stream, `shard ${shard}'s replica ${host} refused its writes (${why}): retry`)
  }

  /** CL_RESYNC: `host` lost the stream (new to it, or a gap): send it a snapshot and the sequence it is at. */
  async resync (host: string, shard: number, id: string): Promise<void> {
    const stream = this.streams.get(shard)
    if (stream !== undefined && id === '') {
      // a replica asks about a copy no stream keeps (replica-copies.ts, askAboutUntracked):
      // one this stream neither targets nor counts in sync — so no record of it names that
      // host — may go
      if (!stream.targets.includes(host) && !stream.inSync.has(host) && !stream.dropping.has(host)) this.unreplica(host, [stream])
      return
    }
    if (stream === undefined || stream.id !== id) return
    if (!stream.targets.includes(host)) {
      // a copy of a stream it is no replica of (the map dropped it meanwhile): it may go
      stream.unreplicated.add(host)
      this.unreplica(host, [stream])
      return
    }
    if (stream.inSync.has(host)) await this.fallOut(stream, host, true) // it has not got what it acknowledged: not in sync
    if (this.streams.get(shard) !== stream || this.closed) return
    const { wire, store } = this.parts
    // journals go out as their commits are queued: the snapshot is read once every commit
    // queued here up to the base has committed, so it holds every segment up to `base`
    // (later ones too, maybe: the replica's replay of those over it is harmless). A commit
    // that failed meanwhile has started the stream over (`restart`): nothing to send then
    const base = stream.seq
    await this.parts.committed(shard)
    if (this.streams.get(shard) !== stream || this.closed) return
    const chunks = store.exportShard(shard)[Symbol.iterator]()
    let next = chunks.next()
    let n = 0
    try {
      while (next.done !== true) {
        wire.write(this.parts.writer(host), CL_SNAP_DATA, 0, [shard, id, next.value])
        if (++n % 64 === 0) await new Promise((resolve) => setImmediate(resolve)) // let the link drain
        next = chunks.next()
      }
      wire.write(this.parts.writer(host), CL_SNAP_END, 0, [shard, id, base])
      this.snapshotsOut++
    } catch (err) {
      chunks.return?.()
      this.parts.warn(`sending shard ${shard}'s snapshot to ${host} failed (${messageOf(err)}); it will ask again`)
    }
  }

  /** CL_SYNCED: `host` applied a snapshot and every segment up to `seq`: in sync from now on. */
  synced (host: string, shard: number, id: string, seq: number): void {
    const stream = this.streams.get(shard)
    if (stream === undefined || stream.id !== id || this.map === null) return
    if (!stream.targets.includes(host) || !replicasOf(this.map, shard).includes(host)) {
      // caught up after the map dropped it: not counted on (one still in the set is told
      // once the record without it lands: fallOut), so it may drop its copy
      if (!stream.inSync.has(host)) {
        stream.unreplicated.add(host)
        this.unreplica(host, [stream])
      }
      return
    }
    if ((stream.acked.get(host) ?? 0) < seq) stream.acked.set(host, seq)
    stream.dropping.delete(host)
    stream.inSync.add(host) // writes wait for it from now; the record says so next
    // it has every segment up to `seq`: writes that waited for it (it was falling out, and the
    // record without it had not landed) are done now. Nothing else would settle them — its
    // acknowledgements up to `seq` were counted already, and the fall-out, seeing it back,
    // ends without settling — and a home thread releasing the shard waits for those writes.
    this.settle(stream)
    this.publishSoon()
  }

  /**
   * An empty segment (seq 0) to a replica that is not in sync: a replica learns of a stream
   * from its segments, and a shard with no writes sends none — this one starts its catch-up.
   * `host` null: every such replica of every stream.
   */
  nudge (host: string | null): void {
    for (const stream of this.streams.values()) {
      for (const h of stream.targets) {
        if ((host !== null && h !== host) || stream.inSync.has(h)) continue
        this.segmentTo(h, stream, 0, kEmpty)
      }
    }
    this.send()
  }

  /** The link to `host` is up: the copies it was told to drop, told again (the frames may have been lost). */
  up (host: string): void {
    this.unreplica(host, [...this.streams.values()].filter((s) => s.unreplicated.has(host)))
  }

  private unreplica (host: string, streams: readonly Stream[]): void {
    for (const stream of streams) {
      try {
        this.parts.wire.write(this.parts.writer(host), CL_UNREPLICA, 0, [stream.shard, stream.id])
      } catch {
        return // the link is down: told when it is up again
      }
    }
  }

  private hello (stream: Stream, host: string): void {
    this.segmentTo(host, stream, 0, kEmpty)
    this.send()
  }

  /** The link to `host` went down: it falls out of every in-sync set. */
  down (host: string): void {
    for (const stream of this.streams.values()) {
      if (stream.inSync.has(host) && !stream.dropping.has(host)) void this.fallOut(stream, host, true)
    }
  }

  /**
   * `host` leaves the stream's in-sync set: the record without it is written first, then
   * writes stop waiting for it. `keep`: it stays a replica (it will catch up again);
   * otherwise it is told it may drop its copy once the record has landed.
   */
  private async fallOut (stream: Stream, host: string, keep: boolean): Promise<void> {
    if (stream.dropping.has(host)) return
    stream.dropping.add(host)
    this.fellOut++
    for (;;) {
      try {
        await this.publishSoon()
        break
      } catch {
        // not published (fenced, etcd away): it stays in and writes keep waiting for it until
        // a record without it lands — or the map moves the shard away (the stream ends)
        await new Promise((resolve) => setTimeout(resolve, PUBLISH_RETRY_MS))
        if (this.closed || this.streams.get(stream.shard) !== stream) return
      }
    }
    if (!stream.dropping.has(host)) return // it came back meanwhile (CL_SYNCED)
    stream.dropping.delete(host)
    stream.inSync.delete(host)
    stream.acked.delete(host)
    if (!keep) {
      stream.targets = stream.targets.filter((h) => h !== host)
      stream.unreplicated.add(host)
      this.unreplica(host, [stream])
    }
    this.settle(stream)
  }

  private checkTimeouts (): void {
    const late = Date.now() - this.parts.ackTimeoutMs
    for (const stream of this.streams.values()) {
      const oldest = stream.head < stream.tail ? stream.waitGate[stream.head]! : undefined
      if (oldest === undefined || oldest.since > late || !stream.published) continue
      const oldestSeq = stream.waitSeq[stream.head]!
      for (const host of stream.inSync) {
        if ((stream.acked.get(host) ?? 0) < oldestSeq && !stream.dropping.has(host)) {
          this.parts.warn(`replica ${host} did not acknowledge shard ${stream.shard}'s writes within ${this.parts.ackTimeoutMs} ms; it is out of sync until it catches up`)
          void this.fallOut(stream, host, true)
        }
      }
    }
  }

  // ---- the in-sync record --------------------------------------------------------

  /** Write the record as it is now (coalesced: one write on its way, one more after it). */
  private publishSoon (): Promise<void> {
    if (this.publishing !== null) {
      this.publishAgain = true // the write on its way runs once more, with this change: its promise covers it
      return this.publishing
    }
    const run = async (): Promise<void> => {
      do {
        // at most one write per PUBLISH_GAP_MS: a catch-up of thousands of shards is a few
        // writes of the record, not thousands (etcd shares its time with the leases)
        const wait = this.lastPublish + PUBLISH_GAP_MS - Date.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        this.lastPublish = Date.now()
        this.publishAgain = false
        const record = this.record()
        const fresh = [...this.streams.values()].filter((s) => !s.published)
        await this.parts.publish(record)
        this.landed = record
        for (const s of fresh) {
          if (this.streams.get(s.shard) !== s) continue
          s.published = true
          this.settle(s)
        }
      } while (this.publishAgain && !this.closed)
    }
    const p = run().finally(() => { this.publishing = null })
    this.publishing = p
    p.catch((err: unknown) => {
      if (this.closed) return
      this.publishFailures++
      // logged once per run of failures, not every retry while fenced
      if (!this.publishFailing) this.parts.warn(`writing the in-sync record failed (${messageOf(err)}); retrying every ${PUBLISH_RETRY_MS} ms`)
      this.publishFailing = true
      if (this.retryTimer === null) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null
          // new streams' writes wait for their first record: write it again (a fall-out retries by itself)
          if (!this.closed && [...this.streams.values()].some((s) => !s.published)) void this.publishSoon().catch(() => {})
        }, PUBLISH_RETRY_MS)
        this.retryTimer.unref()
      }
    })
    p.then(() => { this.publishFailing = false }, () => {})
    return p
  }

  private record (): InSyncRecord {
    const record = newInSyncRecord(this.parts.self)
    for (const stream of this.streams.values()) {
      setShardEpoch(record, stream.shard, stream.epoch)
      for (const host of stream.inSync) if (!stream.dropping.has(host)) markInSync(record, stream.shard, host, true)
    }
    return record
  }

  close (): void {
    this.closed = true
    clearInterval(this.timer)
    clearInterval(this.nudger)
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    for (const stream of [...this.streams.values()]) this.end(stream, 'the host is closing: retry')
  }
}
