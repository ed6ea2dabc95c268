/**
 * The replica's half of replication (docs/cluster.md, "Replicas"): copies of shards that
 * other hosts serve, kept in this host's LMDB, write for write.
 *
 * Per shard, the stream it follows (owner, stream id, the owner's shard epoch) and the
 * last segment taken. A segment that continues the stream is applied (all those that
 * came together, in one transaction, as durable as the owner's commit) and acknowledged.
 * A segment of a stream this host does not follow, or after a gap, starts a catch-up:
 * ask the owner for a snapshot (CL_RESYNC), keep the segments that come meanwhile,
 * replace the range with the snapshot, apply the kept segments after its base, and tell
 * the owner it is in sync (CL_SYNCED). The owner never stops for it.
 *
 * Fencing: a segment stamped with an older shard epoch than this host's map, or from a
 * host the map does not name owner at that epoch, is refused — a deposed owner never
 * gets the acknowledgement it would need to say "done".
 */
import { Buffer } from 'node:buffer'
import { messageOf } from '../../../native-free-core/errors.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { NONE, replicasOf } from '../../../native-free-core/placement/shard-map.ts'
import type { ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { FrameSink } from '../../../native-free-core/ring/ring-queue.ts'
import { CL_REPL_ACK, CL_REPL_REFUSED, CL_RESYNC, CL_SYNCED } from '../wire.ts'
import type { ClusterWire } from '../wire.ts'
import { AckWriter, streamId } from './segment-frames.ts'
import type { SegmentRecord } from './segment-frames.ts'

/** What a replica needs of the store (the LMDB store). */
export interface ReplicaStore {
  applyReplicated (segments: ReadonlyArray<readonly [shard: number, segment: Uint8Array]>): Promise<void>
  /** The same (segments as records: a CL_REPL's, as read), queued in this synchronous step (throws if a segment is malformed): committed, then durable. */
  queueReplicated (segments: ReadonlyArray<{ readonly shard: number, readonly segment: Uint8Array }>): { readonly committed: Promise<void>, readonly durable: Promise<void> }
  importShard (shard: number, chunks: Iterable<Uint8Array>, asReplica?: boolean): Promise<void> | undefined
  dropShard (shard: number): Promise<void> | undefined
  countShard (shard: number | readonly number[], sign?: 1 | -1): Promise<void>
  isReplicaRange (shard: number): boolean
  shardSize (shard: number): { readonly records: number }
}

export interface ReplicaParts {
  readonly self: string
  readonly wire: ClusterWire
  readonly store: ReplicaStore
  writer (peer: string): FrameSink
  /** This host serves, is moving, or is receiving the shard (its range is not a copy to drop). */
  holds (shard: number): boolean
  warn (message: string): void
}

class Copy {
  readonly owner: string
  /** The stream: the owner process's nonce, the shard's epoch and the generation (`id` says all three). */
  readonly nonce: number
  readonly epoch: number
  readonly gen: number
  readonly id: string
  /** Last segment taken (applied or queued to be). */
  next = 0
  syncing = true
  buffer: SegmentRecord[] = []
  chunks: Buffer[] = []

  constructor (owner: string, nonce: number, epoch: number, gen: number) {
    this.owner = owner
    this.nonce = nonce
    this.epoch = epoch
    this.gen = gen
    this.id = streamId(nonce, epoch, gen)
  }
}

/** How often a replica range nobody streams to this host is asked about again (`askAboutUntracked`). */
const ASK_AGAIN_MS = 5_000

export class ReplicaCopies {
  private readonly parts: ReplicaParts
  private readonly copies = new Map<number, Copy>()
  /** Copies whose stream was lost with its owner's link, and the epoch of that stream (see `down`). */
  private readonly orphans = new Map<number, number>()
  /** Copies their owner said to drop (CL_UNREPLICA, by stream id) while this host's map still listed it. */
  private readonly told = new Map<number, string>()
  private map: ShardMap | null = null
  /** Store work, one at a time in arrival order: applies, snapshots, drops. */
  private queue: Promise<void> = Promise.resolve()
  /**
   * Segments waiting for the next apply transaction (as read from their CL_REPL), and
   * side by side each one's owner and its stream's nonce (no object per segment taken).
   */
  private batch: SegmentRecord[] = []
  private batchOwner: string[] = []
  private batchNonce: number[] = []
  private batchQueued = false
  /** An apply is queued and not started: segments join it. */
  private flushQueued = false
  /** CL_REPL_ACK payloads, per owner host. */
  private readonly acks = new Map<string, AckWriter>()
  private closed = false
  private askTimer: ReturnType<typeof setInterval> | null = null
  /** Figures for stats. */
  segmentsIn = 0
  bytesIn = 0
  snapshotsIn = 0
  snapshotBytesIn = 0
  refusedSegments = 0
  /** Live apply transactions (batches of in-sync copies' segments, each acknowledged once durable; not catch-ups). */
  applies = 0

  constructor (parts: ReplicaParts) {
    this.parts = parts
  }

  /** Shards this host keeps a copy of, in sync with their owner's stream. */
  get copiesInSync (): number {
    let n = 0
    for (const c of this.copies.values()) if (!c.syncing) n++
    return n
  }

  /** The copy of `shard` kept here, for diagnostics: 'in sync', 'syncing' or undefined. */
  copyOf (shard: number): string | undefined {
    const c = this.copies.get(shard)
    return c === undefined ? undefined : c.syncing ? 'syncing' : 'in sync'
  }

  setMap (map: ShardMap): void {
    this.map = map
    const me = map.hosts.indexOf(this.parts.self)
    for (const [shard, id] of this.told) {
      const copy = this.copies.get(shard)
      if (copy !== undefined && copy.id !== id) {
        this.told.delete(shard) // a new stream: its copy is kept up to date
        continue
      }
      if (replicasOf(map, shard).includes(this.parts.self) && map.owner[shard] !== me) continue
      this.told.delete(shard)
      if (map.owner[shard] !== me) {
        this.copies.delete(shard)
        this.dropCopy(shard)
      }
    }
    for (const [shard, epoch] of this.orphans) {
      if (this.copies.has(shard)) {
        this.orphans.delete(shard) // a stream came again: its copy is kept up to date
        continue
      }
      if (map.owner[shard] === me || map.shardEpoch[shard]! <= epoch) continue
      this.orphans.delete(shard)
      if (!replicasOf(map, shard).includes(this.parts.self)) this.dropCopy(shard)
    }
    for (const [shard, copy] of this.copies) {
      const owner = map.owner[shard]!
      if (owner === me) continue // promoted, or moving here: promote() / the handover take it
      if (owner !== NONE && map.hosts[owner] === copy.owner) continue
      if (map.shardEpoch[shard]! <= copy.epoch) continue
      // another owner now: its stream starts over (a snapshot); a copy no longer listed goes
      this.copies.delete(shard)
      if (!replicasOf(map, shard).includes(this.parts.self)) this.dropCopy(shard)
    }
    this.askAboutUntracked(null)
  }

  /** The link to `peer` is up: ask it about the untracked copies of its shards. */
  up (peer: string): void {
    this.askAboutUntracked(peer)
  }

  /**
   * Replica ranges on disk that no stream keeps up to date and that the map does not list
   * this host for: left by a restart (the copies' tracking is in memory), a failed apply
   * (`failed` starts every copy over), or a stream lost with its link while the map dropped
   * this host and its owner's CL_UNREPLICA was lost too — with an owner that never changed,
   * the epoch rule for orphans never lets such a copy go. Only the owner knows whether its
   * in-sync record may still name this host, so it is asked (CL_RESYNC with no stream id):
   * it answers CL_UNREPLICA when it neither streams to this host nor counts it in sync, and
   * the copy goes then (`unreplica`). Asked at every map, when the owner's link comes up,
   * and every ASK_AGAIN_MS while any is left (an owner not serving yet says nothing).
   */
  private askAboutUntracked (peer: string | null): void {
    const map = this.map
    if (map === null || this.closed) return
    const me = map.hosts.indexOf(this.parts.self)
    let left = 0
    for (let shard = 0; shard < SHARDS; shard++) {
      if (this.copies.has(shard) || this.told.has(shard) || !this.parts.store.isReplicaRange(shard) || this.parts.holds(shard)) continue
      const owner = map.owner[shard]!
      if (owner === NONE || owner === me || replicasOf(map, shard).includes(this.parts.self)) continue
      left++
      const ownerId = map.hosts[owner]!
      if (peer !== null && ownerId !== peer) continue
      try {
        this.parts.wire.write(this.parts.writer(ownerId), CL_RESYNC, 0, [shard, ''])
      } catch {} // the link is down: asked when it is up
    }
    if (left === 0 && this.askTimer !== null) {
      clearInterval(this.askTimer)
      this.askTimer = null
    } else if (left !== 0 && this.askTimer === null) {
      this.askTimer = setInterval(() => this.askAboutUntracked(null), ASK_AGAIN_MS)
      this.askTimer.unref()
    }
  }

  // ---- from owners -----------------------------------------------------------------

  /** CL_REPL from `owner`: segments of its process `nonce`'s streams. */
  segments (owner: string, nonce: number, segs: readonly SegmentRecord[]): void {
    for (const seg of segs) this.segment(owner, nonce, seg)
  }

  private segment (owner: string, nonce: number, seg: SegmentRecord): void {
    const { shard, epoch, seq, gen } = seg
    // this host's own range (served, leaving, arriving): no copy until the handover has let go (the owner nudges again)
    if (this.parts.holds(shard)) return
    const why = this.refusal(owner, shard, epoch)
    if (why !== null) {
      this.refusedSegments++
      try {
        this.parts.wire.write(this.parts.writer(owner), CL_REPL_REFUSED, 0, [shard, streamId(nonce, epoch, gen), why])
      } catch {}
      return
    }
    this.segmentsIn++
    this.bytesIn += seg.segment.length
    let copy = this.copies.get(shard)
    if (copy === undefined || copy.nonce !== nonce || copy.epoch !== epoch || copy.gen !== gen || copy.owner !== owner) {
      copy = new Copy(owner, nonce, epoch, gen)
      this.copies.set(shard, copy)
      this.resync(copy, shard, seg)
      return
    }
    if (copy.syncing) {
      copy.buffer.push(seg)
      return
    }
    if (seq !== copy.next + 1) {
      if (seq <= copy.next) return // a copy of one taken already
      copy.syncing = true
      copy.chunks = []
      this.resync(copy, shard, seg)
      return
    }
    copy.next = seq
    this.batch.push(seg)
    this.batchOwner.push(owner)
    this.batchNonce.push(nonce)
    this.applySoon()
  }

  /** Why a segment is refused (its sender is not the shard's owner at its epoch), or null. */
  private refusal (owner: string, shard: number, epoch: number): string | null {
    const map = this.map
    if (map === null) return null
    const known = map.shardEpoch[shard]!
    if (epoch < known) return `its owner changed at epoch ${known}; the segment is of epoch ${epoch}`
    const o = map.owner[shard]!
    if (epoch === known && (o === NONE || map.hosts[o] !== owner)) return `the map of epoch ${map.epoch} names another owner`
    return null
  }

  private resync (copy: Copy, shard: number, first: SegmentRecord): void {
    copy.buffer = [first]
    copy.chunks = []
    try {
      this.parts.wire.write(this.parts.writer(copy.owner), CL_RESYNC, 0, [shard, copy.id])
    } catch {
      this.copies.delete(shard) // the link is down: the next segment asks again
    }
  }

  /** CL_SNAP_DATA */
  snapshotChunk (owner: string, shard: number, id: string, chunk: Uint8Array): void {
    const copy = this.copies.get(shard)
    if (copy === undefined || copy.id !== id || copy.owner !== owner || !copy.syncing) return
    copy.chunks.push(Buffer.from(chunk))
    this.snapshotBytesIn += chunk.length
  }

  /** CL_SNAP_END: the snapshot holds every segment up to `base`. */
  snapshotEnd (owner: string, shard: number, id: string, base: number): void {
    const copy = this.copies.get(shard)
    if (copy === undefined || copy.id !== id || copy.owner !== owner || !copy.syncing) return
    const chunks = copy.chunks
    copy.chunks = []
    this.enqueue(async () => {
      if (this.copies.get(shard) !== copy) return
      // an empty shard (most, in a young cluster) with nothing here: no transaction to wait for
      if (chunks.length !== 0 || this.parts.store.shardSize(shard).records !== 0) await this.parts.store.importShard(shard, chunks, true)
      let last = base
      // segments kept meanwhile (more may come while applying them): those after the base, in order
      while (copy.buffer.length !== 0) {
        const kept = copy.buffer.filter((s) => s.seq > last)
        copy.buffer = []
        if (kept.length === 0) continue
        if (kept[0]!.seq !== last + 1) {
          this.resync(copy, shard, kept[0]!) // a gap: once more
          copy.buffer.push(...kept.slice(1))
          return
        }
        for (let i = 1; i < kept.length; i++) {
          if (kept[i]!.seq !== kept[i - 1]!.seq + 1) {
            this.resync(copy, shard, kept[i]!)
            copy.buffer.push(...kept.slice(i + 1))
            return
          }
        }
        await this.parts.store.applyReplicated(kept.map((s) => [shard, s.segment] as const))
        last = kept[kept.length - 1]!.seq
        if (this.copies.get(shard) !== copy) return
      }
      copy.next = last
      copy.syncing = false
      this.snapshotsIn++
      try {
        this.parts.wire.write(this.parts.writer(owner), CL_SYNCED, 0, [shard, id, last])
      } catch {
        this.copies.delete(shard)
      }
    })
  }

  /** CL_UNREPLICA: the owner no longer counts on this copy; drop it unless the map still lists this host. */
  unreplica (owner: string, shard: number, id: string): void {
    const copy = this.copies.get(shard)
    if (copy !== undefined && (copy.id !== id || copy.owner !== owner)) return
    this.copies.delete(shard)
    this.orphans.delete(shard)
    const map = this.map
    if (map !== null && replicasOf(map, shard).includes(this.parts.self)) {
      // the owner's map is ahead of this one: dropped once this map stops listing it
      this.told.set(shard, id)
      return
    }
    this.dropCopy(shard)
  }

  /**
   * The link to `peer` went down: the streams it owns start over when it comes back. The
   * copies stay on disk (an in-sync record may still name this host for them); one the map
   * does not list goes once the shard's epoch has moved past its stream's — no record of
   * that stream can be used for a failover any more — or when its owner says so (CL_UNREPLICA).
   */
  down (peer: string): void {
    for (const [shard, copy] of this.copies) {
      if (copy.owner !== peer) continue
      this.copies.delete(shard)
      this.orphans.set(shard, copy.epoch)
    }
  }

  // ---- promotion ---------------------------------------------------------------------

  /**
   * The map makes this host the owner of shards it kept copies of (failover): once every
   * segment taken is applied, the copies are this host's ranges, counted as its agents.
   */
  async promote (shards: readonly number[]): Promise<void> {
    for (const s of shards) this.copies.delete(s)
    await this.drain()
    await this.parts.store.countShard(shards, 1)
  }

  /** Shards moving here by a planned move: their copies give way to the move's range. */
  forget (shard: number): void {
    this.copies.delete(shard)
  }

  /** Every store write queued so far has landed. */
  drain (): Promise<void> {
    if (this.batch.length !== 0) this.flushBatch()
    return this.queue
  }

  // ---- store work ----------------------------------------------------------------------

  private applySoon (): void {
    if (this.batchQueued) return
    this.batchQueued = true
    setImmediate(() => {
      this.batchQueued = false
      this.flushBatch()
    })
  }

  private flushBatch (): void {
    if (this.batch.length === 0 || this.flushQueued) return
    this.flushQueued = true
    this.enqueue(async () => {
      // everything that came while the transaction before was being made durable: one
      // transaction (and one fsync) for all of it, so batches grow under load
      this.flushQueued = false
      // only segments of copies still kept: one dropped meanwhile (CL_UNREPLICA, a lost
      // link) must not come back as a range nobody tracks. Skipping them is safe: a write
      // its owner acknowledged had this host's acknowledgement, so it was applied already
      const batch = this.batch
      const owners = this.batchOwner
      const nonces = this.batchNonce
      this.batch = []
      this.batchOwner = []
      this.batchNonce = []
      let n = 0
      for (let i = 0; i < batch.length; i++) {
        const b = batch[i]!
        const copy = this.copies.get(b.shard)
        if (copy === undefined || copy.nonce !== nonces[i] || copy.epoch !== b.epoch || copy.gen !== b.gen || copy.owner !== owners[i]) continue
        batch[n] = b
        owners[n] = owners[i]!
        nonces[n] = nonces[i]!
        n++
      }
      batch.length = owners.length = nonces.length = n
      if (n === 0) return
      const write = this.parts.store.queueReplicated(batch)
      this.applies++
      // acknowledged once durable; the next apply need only wait for this one's commit, so
      // its transaction overlaps this one's flush
      // a failed commit is the queue's to report; a flush failing after it, this one's
      write.committed.then(() => write.durable.then(() => this.ack(batch, owners, nonces), (err: unknown) => this.failed(err)), () => {})
      await write.committed
    })
  }

  private dropCopy (shard: number): void {
    this.enqueue(async () => {
      if (this.parts.holds(shard) || this.copies.has(shard) || !this.parts.store.isReplicaRange(shard)) return
      await this.parts.store.dropShard(shard)
    })
  }

  private enqueue (work: () => Promise<void>): void {
    this.queue = this.queue.then(work).catch((err: unknown) => this.failed(err))
  }

  private failed (err: unknown): void {
    if (!this.closed) this.parts.warn(`a replica write failed (${messageOf(err)}); the shards concerned catch up again`)
    // whatever the work was, the copies it touched are not trustworthy: start them over
    this.copies.clear()
  }

  /** An apply is durable: one CL_REPL_ACK per owner, a high-water mark per stream. */
  private ack (batch: readonly SegmentRecord[], owners: readonly string[], nonces: readonly number[]): void {
    let last = -1
    for (let i = 0; i < batch.length; i++) {
      // a stream's segments are in order within a batch: its last one says it all
      if (last !== -1 && (batch[last]!.shard !== batch[i]!.shard || owners[last] !== owners[i] || batch[last]!.gen !== batch[i]!.gen)) this.ackOne(owners[last]!, nonces[last]!, batch[last]!)
      last = i
    }
    if (last !== -1) this.ackOne(owners[last]!, nonces[last]!, batch[last]!)
    for (const [owner, out] of this.acks) {
      if (out.empty) continue
      try {
        const sink = this.parts.writer(owner)
        out.take((payload) => this.parts.wire.writeBytes(sink, CL_REPL_ACK, payload))
      } catch {
        out.take(() => {}) // the link is down: the owner counts this host out of sync
      }
    }
  }

  private ackOne (owner: string, nonce: number, b: SegmentRecord): void {
    let out = this.acks.get(owner)
    if (out === undefined) this.acks.set(owner, out = new AckWriter(this.parts.wire.maxPayloadBytes))
    out.add(b.shard, nonce, b.epoch, b.seq, b.gen)
  }

  close (): void {
    this.closed = true
    if (this.askTimer !== null) clearInterval(this.askTimer)
    this.askTimer = null
  }
}
