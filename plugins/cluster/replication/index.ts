/**
 * Replication (`replicas` > 1): this host as the owner of the shards it serves
 * (owner-streams.ts) and as the replica of shards others serve (replica-copies.ts), over
 * the links. The cluster plugin hands it the host's commit journals (the gateway's
 * `replicate` route), the replication frames, the map, and link downs.
 */
import type { InSyncRecord } from '../../../native-free-core/placement/in-sync.ts'
import type { ShardMap } from '../../../native-free-core/placement/shard-map.ts'
import type { FrameSink } from '../../../native-free-core/ring/ring-queue.ts'
import type { ShardRanges } from '../../../native-free-core/storage/shard-range.ts'
import { SHARDS } from '../../../native-free-core/placement/hash.ts'
import { CL_REPL, CL_REPL_ACK, CL_REPL_REFUSED, CL_RESYNC, CL_SNAP_DATA, CL_SNAP_END, CL_SYNCED, CL_UNREPLICA } from '../wire.ts'
import type { ClusterWire } from '../wire.ts'
import { OwnerStreams } from './owner-streams.ts'
import { ReplicaCopies } from './replica-copies.ts'
import type { ReplicaStore } from './replica-copies.ts'
import { readAcks, readSegments } from './segment-frames.ts'

export interface ReplicationParts {
  readonly self: string
  readonly wire: ClusterWire
  readonly store: ShardRanges & ReplicaStore
  writer (peer: string): FrameSink
  publish (record: InSyncRecord): Promise<void>
  /** The handover's view: shards served here (streams start for them). */
  serves (shard: number): boolean
  /** Shards whose range is this host's own (served, moving out, moving in). */
  holds (shard: number): boolean
  readonly ackTimeoutMs: number
  /** Resolves once every commit of the shard queued on this host so far has committed here (or failed). */
  committed (shard: number): Promise<void>
  warn (message: string): void
}

export class Replication {
  readonly owner: OwnerStreams
  readonly replica: ReplicaCopies
  private readonly wire: ClusterWire

  constructor (parts: ReplicationParts) {
    this.wire = parts.wire
    this.owner = new OwnerStreams(parts)
    this.replica = new ReplicaCopies(parts)
  }

  /** Frames whose payload is binary (segment-frames.ts): read with `bytes`, not msgpack. */
  static isBinary (kind: number): boolean {
    return kind === CL_REPL || kind === CL_REPL_ACK
  }

  /** A binary frame's payload; false if it is malformed (nothing of it applied: the caller counts it). */
  bytes (peer: string, kind: number, payload: Uint8Array): boolean {
    if (kind === CL_REPL) {
      const read = readSegments(payload, SHARDS)
      if (read === null) return false
      this.replica.segments(peer, read.nonce, read.segments)
      return true
    }
    return readAcks(payload, SHARDS, (shard, nonce, epoch, seq, gen) => this.owner.acked(peer, shard, nonce, epoch, seq, gen))
  }

  /** Is this one of replication's msgpack frames? Then it is handled. */
  frame (peer: string, kind: number, value: unknown): boolean {
    const shape = kShapes.get(kind)
    if (shape === undefined) return false
    if (!shaped(value, shape)) {
      this.wire.undecodable++ // a peer of another build, or a bug: refused, never thrown at the link
      return true
    }
    switch (kind) {
      case CL_REPL_REFUSED: {
        const [shard, id, why] = value as [number, string, string]
        this.owner.refused(peer, shard, id, String(why))
        return true
      }
      case CL_RESYNC: {
        const [shard, id] = value as [number, string]
        void this.owner.resync(peer, shard, id)
        return true
      }
      case CL_SNAP_DATA: {
        const [shard, id, chunk] = value as [number, string, Uint8Array]
        this.replica.snapshotChunk(peer, shard, id, chunk)
        return true
      }
      case CL_SNAP_END: {
        const [shard, id, base] = value as [number, string, number]
        this.replica.snapshotEnd(peer, shard, id, base)
        return true
      }
      case CL_SYNCED: {
        const [shard, id, seq] = value as [number, string, number]
        this.owner.synced(peer, shard, id, seq)
        return true
      }
      case CL_UNREPLICA: {
        const [shard, id] = value as [number, string]
        this.replica.unreplica(peer, shard, id)
        return true
      }
      default:
        return false
    }
  }

  /** The map changed (before the handover acts on it: writes of shards lost fail first). */
  setMap (map: ShardMap, serves: (shard: number) => boolean): void {
    this.replica.setMap(map)
    this.owner.setMap(map, serves)
  }

  /** The link to `peer` is up: replicas there that are not in sync hear of their streams now. */
  up (peer: string): void {
    this.owner.nudge(peer)
    this.owner.up(peer)
    this.replica.up(peer)
  }

  down (peer: string): void {
    this.owner.down(peer)
    this.replica.down(peer)
  }

  close (): void {
    this.owner.close()
    this.replica.close()
  }
}

/** The msgpack frames' payloads, element by element: n a non-negative integer (the first: a shard), s a string, b bytes. */
const kShapes = new Map<number, string>([
  [CL_REPL_REFUSED, 'nss'], [CL_RESYNC, 'ns'], [CL_SNAP_DATA, 'nsb'], [CL_SNAP_END, 'nsn'], [CL_SYNCED, 'nsn'], [CL_UNREPLICA, 'ns']
])

function shaped (value: unknown, shape: string): boolean {
  if (!Array.isArray(value) || value.length < shape.length) return false
  for (let i = 0; i < shape.length; i++) {
    const v: unknown = value[i]
    switch (shape[i]) {
      case 'n': if (!Number.isSafeInteger(v) || (v as number) < 0 || (i === 0 && (v as number) >= SHARDS)) return false; break
      case 's': if (typeof v !== 'string') return false; break
      default: if (!(v instanceof Uint8Array)) return false
    }
  }
  return true
}
