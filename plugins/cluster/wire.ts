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
 *   CL_SENT_ACK    id = 0            { ids }                   durable sends applied (receiver → sender)
 *   CL_FORGET      id = 0            { ids }                   sender → receiver: drop their dedup records
 *
 * Kinds start at 32: the engine's frame kinds stay below 16, and 0x40 marks held frames
 * inside a host only.
 */
import type { Buffer } from 'node:buffer'
import { align4 } from '../../native-free-core/ring/ring-queue.ts'
import type { FrameSink } from '../../native-free-core/ring/ring-queue.ts'
import { FrameReader, FrameWriter } from '../../src/thread/frame-codec.ts'

export const CL_MOVE_DATA = 32
export const CL_MOVE_END = 33
export const CL_MOVE_ACK = 34
export const CL_FLUSHED = 35
export const CL_SENT_ACK = 36
export const CL_FORGET = 37
export const CL_FIRST = 32
export const CL_LAST = 47

/** Writes cluster frames into a link's batch. */
export class ClusterWire {
  private readonly writer: FrameWriter
  private readonly reader: FrameReader
  /** Frames whose payload did not decode (a peer of another build, or a bug). */
  undecodable = 0

  constructor (maxFrameBytes: number) {
    this.writer = new FrameWriter(maxFrameBytes)
    this.reader = new FrameReader(align4(maxFrameBytes + 64))
  }

  write (sink: FrameSink, kind: number, id: number, value: unknown): void {
    this.writer.result(sink, kind, id, true, value)
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
