/**
 * The cluster's own frames on a link, beside the engine's (messages, replies and follow
 * states, which cross as their ring bytes). They use the engine's result-frame layout
 * (src/thread/frame-codec.ts) with kinds of their own, so one walk over a batch sorts
 * everything, and a msgpack payload:
 *
 *   CL_MOVE_DATA   id = move token   { shard, chunk }          a piece of a shard's range
 *   CL_MOVE_END    id = move token   { shards, epoch, timeouts } the range is complete
 *   CL_MOVE_ACK    id = move token   { ok, error? }            written in the new owner's store
 *   CL_FLUSHED     id = 0            { shards }                the old owner forwarded everything it
 *                                                             held for these shards (the new owner
 *                                                             may serve them)
 *   CL_FLUSH_ASK   id = 0            { shards }                the new owner still waits for CL_FLUSHED of
 *                                                             these (sent when a link to their old owner
 *                                                             comes up: one written into a link that
 *                                                             dropped was lost); answered with CL_FLUSHED
 *                                                             for those the old owner holds nothing of
 *   CL_SENT_ACK    id = 0            [acks]                    durable sends applied (receiver → sender)
 *   CL_DELETED     id = 0            [acks]                    their outbox records are gone (sender →
 *                                                             receiver: forget them after a grace period)
 *   CL_QUOTA_COUNTS id = 0           { reset, counts }         this host's agents per quota (quotas/)
 *   CL_QUOTA_LIMITS id = 0           { limits }                static membership: limits set, by a
 *                                                             Lamport clock (quotas/static-limits.ts)
 *   CL_LIST        id = listing      { shards, prefix, type }  host.agents(): list these shards here;
 *                                    or { next } / { cancel }  the next page, or stop (listing/)
 *   CL_LIST_PAGE   id = listing      { ids, partial, complete, missing, done }
 *   CL_ASK         id = ask token    { topic, value }          a read-only question for a plugin of the
 *                                                             peer (peer-asks.ts: the dashboard's figures)
 *   CL_ANSWER      id = ask token    { ok, value | error }     its answer
 *   CL_REPL        id = 0            binary: commit journal segments, owner → replica
 *                                    (replication/segment-frames.ts; not msgpack: `writeBytes`)
 *   CL_REPL_ACK    id = 0            binary: applied up to seq, per stream (replica → owner)
 *   CL_REPL_REFUSED id = 0           [shard, stream, why]      a segment refused: its sender is not the
 *                                                             owner at its epoch (replica → owner)
 *   CL_RESYNC      id = 0            [shard, stream]           send me a snapshot (replica → owner)
 *   CL_SNAP_DATA   id = 0            [shard, stream, chunk]    a piece of the snapshot
 *   CL_SNAP_END    id = 0            [shard, stream, base]     it holds every segment up to base
 *   CL_SYNCED      id = 0            [shard, stream, seq]      snapshot and segments applied up to seq
 *   CL_UNREPLICA   id = 0            [shard, stream]           the owner no longer counts on this copy
 *
 * Kinds start at 32: the engine's frame kinds stay below 16, and 0x40 marks held frames
 * inside a host only.
 */
import type { Buffer } from 'node:buffer'
import { align4 } from '../../native-free-core/ring/ring-queue.ts'
import type { FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import { FrameReader, FrameWriter, RESULT_HEADER_BYTES } from '../../src/thread/frame-codec.ts'

export const CL_MOVE_DATA = 32
export const CL_MOVE_END = 33
export const CL_MOVE_ACK = 34
export const CL_FLUSHED = 35
export const CL_SENT_ACK = 36
export const CL_DELETED = 37
export const CL_ASK = 38
export const CL_ANSWER = 39
export const CL_QUOTA_COUNTS = 40
export const CL_QUOTA_LIMITS = 41
export const CL_LIST = 42
export const CL_LIST_PAGE = 43
export const CL_REPL = 44
export const CL_REPL_ACK = 45
export const CL_RESYNC = 46
export const CL_SNAP_DATA = 47
export const CL_SNAP_END = 48
export const CL_SYNCED = 49
export const CL_UNREPLICA = 50
export const CL_REPL_REFUSED = 51
export const CL_FLUSH_ASK = 52
export const CL_FIRST = 32
export const CL_LAST = 52

/** Writes cluster frames into a link's batch. */
export class ClusterWire {
  private readonly writer: FrameWriter
  private readonly reader: FrameReader
  /** Frames whose payload did not decode (a peer of another build, or a bug). */
  undecodable = 0

  private readonly maxFrameBytes: number

  constructor (maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes
    this.writer = new FrameWriter(maxFrameBytes)
    this.reader = new FrameReader(align4(maxFrameBytes + 64))
  }

  write (sink: FrameSink, kind: number, id: number, value: unknown): void {
    this.writer.result(sink, kind, id, true, value)
  }

  /** Most payload bytes a `writeBytes` frame may carry. */
  get maxPayloadBytes (): number {
    return this.maxFrameBytes - RESULT_HEADER_BYTES
  }

  /**
   * A frame whose payload is bytes of the kind's own layout (replication's segments and
   * acknowledgements), copied as they are; the receiver reads it with `payloadOf`, not
   * `read`. Throws MessageTooLargeError over `maxPayloadBytes`, writing nothing.
   */
  writeBytes (sink: FrameSink, kind: number, bytes: Uint8Array): void {
    this.writer.resultBytes(sink, kind, 0, bytes)
  }

  /** The payload of a `writeBytes` frame (a view of `frame`), or undefined if it is too short to be one. */
  payloadOf (frame: Buffer): Uint8Array | undefined {
    if (frame.length < RESULT_HEADER_BYTES) {
      this.undecodable++
      return undefined
    }
    return frame.subarray(RESULT_HEADER_BYTES)
  }

  /** The payload and id of a cluster frame (its ring bytes), or undefined if it does not decode. */
  read (frame: Buffer): { id: number, value: unknown } | undefined {
    if (frame.length > this.reader.scratch.length) {
      this.undecodable++
      return undefined
    }
    this.reader.scratch.set(frame, 0)
    try {
      const value = this.reader.reply(0, frame.length)
      return { id: this.reader.replyCallId >>> 0, value }
    } catch {
      this.undecodable++
      return undefined
    }
  }
}
