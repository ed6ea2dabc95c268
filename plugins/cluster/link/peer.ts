/**
 * What a hub keeps about one other host across connections: its writer (whose queue
 * outlives a connecting or reconnecting socket), the connection that is up or being
 * dialed, the dialer's backoff, and the counters behind `hub.stats()`.
 *
 * Exactly one side of each pair dials — the host whose id sorts lower — so the two hosts
 * never race two sockets for the same link and never need a tie-break after both
 * succeeded; the higher side only waits to be dialed.
 */
import { Backoff, type BackoffOptions } from './backoff.ts'
import { BatchWriter, type BatchWriterOptions } from './batch-writer.ts'
import type { Connection } from './connection.ts'

export type LinkState = 'up' | 'connecting'

export interface LinkPeerStats {
  readonly id: string
  readonly address: string
  /** 'dial': this host dials the peer (its id sorts lower); 'accept': the peer dials us. */
  readonly role: 'dial' | 'accept'
  readonly state: LinkState
  /** Up and under the socket's high-water mark: what is written now goes out this turn. */
  readonly writable: boolean
  /** Bytes and frames waiting in the writer (connecting, or over the high-water mark). */
  readonly queuedBytes: number
  readonly queuedFrames: number
  /** Bytes the socket holds that the kernel has not taken yet. */
  readonly bufferedBytes: number
  readonly framesOut: number
  readonly batchesOut: number
  readonly bytesOut: number
  readonly framesIn: number
  readonly batchesIn: number
  readonly bytesIn: number
  /** Times the link came up, and went down. */
  readonly ups: number
  readonly downs: number
  /** Frames dropped from the queue when the link went down (the upper layer was told in `down`). */
  readonly droppedFrames: number
  /** Last heartbeat round trip, ms (-1 before the first pong). */
  readonly rttMs: number
  /** The peer's wall clock minus ours, estimated at the last pong, ms (null before the first). */
  readonly clockOffsetMs: number | null
  /** Why the last attempt or link failed, while it is not up. */
  readonly lastError: string | null
}

export class Peer {
  readonly id: string
  address: string
  readonly dials: boolean
  readonly writer: BatchWriter
  readonly backoff: Backoff
  /** Dialer: the socket being dialed, handshaking or up. Acceptor: the socket that is up. */
  conn: Connection | null = null
  up = false
  retry: NodeJS.Timeout | null = null
  lastError: string | null = null
  /** An unreachable peer is logged once per outage, not per attempt. */
  loggedUnreachable = false
  /** Its clock is off by more than the hub's clockWarnMs, and that was logged. */
  clockWarned = false
  ups = 0
  downs = 0
  droppedFrames = 0
  framesIn = 0
  batchesIn = 0
  bytesIn = 0
  /** Totals of closed connections; the live one's are added in `stats`. */
  framesOut = 0
  batchesOut = 0
  bytesOut = 0

  constructor (id: string, address: string, dials: boolean, writer: BatchWriterOptions, backoff: BackoffOptions) {
    this.id = id
    this.address = address
    this.dials = dials
    this.writer = new BatchWriter(writer)
    this.backoff = new Backoff(backoff)
  }

  /** Fold a finished connection's counters into the peer's. */
  retire (conn: Connection): void {
    this.framesOut += conn.framesOut
    this.batchesOut += conn.batchesOut
    this.bytesOut += conn.bytesOut
  }

  stats (): LinkPeerStats {
    const conn = this.conn
    return {
      id: this.id,
      address: this.address,
      role: this.dials ? 'dial' : 'accept',
      state: this.up ? 'up' : 'connecting',
      writable: this.up && conn !== null && conn.writable,
      queuedBytes: this.writer.queuedBytes,
      queuedFrames: this.writer.queuedFrames,
      bufferedBytes: this.up && conn !== null ? conn.socket.bufferedAmount() : 0,
      framesOut: this.framesOut + (conn?.framesOut ?? 0),
      batchesOut: this.batchesOut + (conn?.batchesOut ?? 0),
      bytesOut: this.bytesOut + (conn?.bytesOut ?? 0),
      framesIn: this.framesIn,
      batchesIn: this.batchesIn,
      bytesIn: this.bytesIn,
      ups: this.ups,
      downs: this.downs,
      droppedFrames: this.droppedFrames,
      rttMs: conn?.rttMs ?? -1,
      clockOffsetMs: conn === null || conn.clockOffsetMs === null ? null : Math.round(conn.clockOffsetMs),
      lastError: this.up ? null : this.lastError
    }
  }
}
