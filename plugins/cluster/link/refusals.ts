/**
 * Peers a hub turned away, counted by reason and logged once per reason.
 *
 * A misconfigured host (wrong secret, another cluster's hello) redials every few
 * seconds forever, and a scanner can open thousands of sockets: a log line per attempt
 * would bury everything else, while silence would hide the misconfiguration. The first
 * refusal of each reason is logged with its details; the rest only count, and the
 * counts are in `hub.stats().refused` (and so in the host's metrics).
 */
export type RefusalReason =
  /** A proof that does not match our secret (either side of the handshake). */
  | 'bad-auth'
  /** A control message that does not decode, or comes at the wrong step; a batch before the handshake finished. */
  | 'garbage'
  /** A text WebSocket message. */
  | 'not-binary'
  /** A message over maxBatchBytes (or a control message over its small limit). */
  | 'oversize'
  /** An authenticated host claims the id of a host that already has a live link. */
  | 'duplicate'
  /** The handshake did not finish within handshakeTimeoutMs. */
  | 'handshake-timeout'
  /** The peer closed the socket (or broke WebSocket framing) before the handshake finished. */
  | 'aborted'
  /** A HELLO addressed to another host id. */
  | 'wrong-host'
  /** A host dialed us whose id does not sort below ours (the lower id dials), or our own id. */
  | 'wrong-direction'
  /** An authenticated host that this hub was not told to link with (`connect`). */
  | 'unknown-peer'
  /** Another link protocol version, or another maxBatchBytes. */
  | 'protocol'
  /** The hello check refused the peer's hello. */
  | 'hello-mismatch'
  /** After authentication, a batch whose frame lengths do not tile the message. */
  | 'bad-batch'
  /** An HTTP request to the link port that is not a WebSocket upgrade to the link path. */
  | 'not-websocket'

export interface LinkLogger {
  warn (message: string): void
}

export class Refusals {
  readonly counts: Partial<Record<RefusalReason, number>> = {}
  private readonly logger: LinkLogger
  private readonly hubId: string

  constructor (hubId: string, logger: LinkLogger) {
    this.hubId = hubId
    this.logger = logger
  }

  record (reason: RefusalReason, who: string, detail: string): void {
    const n = (this.counts[reason] ?? 0) + 1
    this.counts[reason] = n
    if (n === 1) {
      this.logger.warn(`shoal link ${this.hubId}: refused ${who}: ${reason} (${detail}); further '${reason}' refusals are only counted in stats().refused`)
    }
  }
}
