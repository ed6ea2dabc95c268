/**
 * The two kinds of socket a link runs on, behind one small interface: the accepting
 * side's uWebSockets.js WebSocket and the dialing side's `ws` client (uWebSockets.js has
 * no client). The link's logic is the same on both; what differs is how each reports
 * backpressure and drain, who copies the bytes, and how each must be closed.
 *
 * - uWebSockets.js copies into its own buffer what the kernel does not take, reports it
 *   in getBufferedAmount() and calls `drain`. Touching a uWS socket after its close
 *   handler ran throws, so every call is guarded by `closed`.
 * - `ws` writes the Buffer it is given straight to the net.Socket (we send unmasked:
 *   with an all-zero mask `ws` skips its copy-and-XOR; masking protects browsers'
 *   proxies, not two hosts of one cluster). It corks the socket per message only, so
 *   a flush of many batches corks the net.Socket around them all (one `writev`), and it
 *   has no drain event, so the link waits for the net.Socket's. Both reach into `ws`'s
 *   `_socket`, stable across ws 8; without it a send is simply not coalesced.
 */
import type { Socket } from 'node:net'
import type { WebSocket as WsClient } from 'ws'
import type * as Uws from 'uWebSockets.js'

export interface LinkSocket {
  /** True when `send` copies the bytes (the batch buffer may be rewritten at once). */
  readonly copiesOnSend: boolean
  /** Open for sending (not closing or closed). */
  readonly open: boolean
  /** Send one binary message; false when it was dropped (uWS over maxBackpressure). */
  send (bytes: Uint8Array): boolean
  /** Bytes accepted by `send` and not yet handed to the kernel. */
  bufferedAmount (): number
  /** Run `fn` with the socket corked (one syscall for many sends) where supported. */
  cork (fn: () => void): void
  /** Call `fn` (later, once) when the socket may have drained; uWS calls the link's drain handler itself. */
  whenDrained (fn: () => void): void
  /** Graceful close: a close frame with `code` and `reason` (truncated to fit). */
  end (code: number, reason: string): void
  /** Drop the connection now (a silent or hostile peer will not answer a close frame). */
  destroy (): void
  /** The remote address, for logs. */
  readonly remote: string
}

/** A close reason is at most 123 UTF-8 bytes. */
export function closeReason (reason: string): string {
  const bytes = Buffer.from(reason)
  return bytes.length <= 123 ? reason : bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD+$/, '') + '...'
}

export class UwsLinkSocket implements LinkSocket {
  readonly copiesOnSend = true
  readonly remote: string
  closed = false
  private readonly ws: Uws.WebSocket<unknown>

  constructor (ws: Uws.WebSocket<unknown>) {
    this.ws = ws
    this.remote = Buffer.from(ws.getRemoteAddressAsText()).toString()
  }

  get open (): boolean {
    return !this.closed
  }

  send (bytes: Uint8Array): boolean {
    if (this.closed) return true
    return this.ws.send(bytes, true, false) !== 2
  }

  bufferedAmount (): number {
    return this.closed ? 0 : this.ws.getBufferedAmount()
  }

  cork (fn: () => void): void {
    if (this.closed) fn()
    else this.ws.cork(fn)
  }

  whenDrained (): void {}

  end (code: number, reason: string): void {
    if (!this.closed) this.ws.end(code, closeReason(reason))
  }

  destroy (): void {
    if (!this.closed) this.ws.close()
  }
}

const OPEN = 1
/** How long a graceful close of a `ws` socket may take before it is destroyed. */
const CLOSE_GRACE_MS = 1_000

export class WsLinkSocket implements LinkSocket {
  readonly copiesOnSend = false
  readonly remote: string
  private readonly ws: WsClient
  private drainWaiter: (() => void) | null = null
  private readonly onDrain = (): void => {
    const fn = this.drainWaiter
    this.drainWaiter = null
    fn?.()
  }

  constructor (ws: WsClient, remote: string) {
    this.ws = ws
    this.remote = remote
  }

  private get raw (): Socket | null {
    return (this.ws as unknown as { _socket: Socket | null })._socket ?? null
  }

  get open (): boolean {
    return this.ws.readyState === OPEN
  }

  send (bytes: Uint8Array): boolean {
    if (this.ws.readyState === OPEN) this.ws.send(bytes, { binary: true })
    return true
  }

  bufferedAmount (): number {
    return this.ws.bufferedAmount
  }

  cork (fn: () => void): void {
    const raw = this.raw
    if (raw === null) { fn(); return }
    raw.cork()
    try { fn() } finally { raw.uncork() }
  }

  whenDrained (fn: () => void): void {
    if (this.drainWaiter !== null) return
    this.drainWaiter = fn
    const raw = this.raw
    // 'drain' comes only after a write found the socket over its own high-water mark
    if (raw !== null && raw.writableNeedDrain) raw.once('drain', this.onDrain)
    else setImmediate(this.onDrain)
  }

  end (code: number, reason: string): void {
    if (this.ws.readyState > OPEN) return
    // a socket still connecting cannot send a close frame; terminate() aborts the dial
    if (this.ws.readyState !== OPEN) { this.ws.terminate(); return }
    this.ws.close(code, closeReason(reason))
    setTimeout(() => { this.ws.terminate() }, CLOSE_GRACE_MS).unref()
  }

  destroy (): void {
    this.ws.terminate()
  }
}

/** `ws`'s generateMask: the all-zero mask, with which it sends the payload unmodified. */
export function zeroMask (mask: Uint8Array): void {
  mask.fill(0)
}
