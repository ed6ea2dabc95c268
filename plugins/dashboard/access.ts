/**
 * Who may read the dashboard. The page and its WebSocket are read-only, but they show
 * agent states, so:
 *
 * - **Token.** When the dashboard has one (required off loopback, see options.ts), the
 *   page needs `?token=` in its URL (or `Authorization: Bearer …`) and the WebSocket
 *   `?token=`; compared in constant time (HMAC-SHA256 of both sides, `timingSafeEqual`,
 *   so neither the length nor a prefix leaks).
 * - **Host header, without a token.** A page bound to loopback with no token could be read
 *   by any web site a local browser visits, through DNS rebinding (a name that resolves to
 *   127.0.0.1 after the page loaded): the request then carries the attacker's host name.
 *   So without a token, the `Host` header must name a loopback address.
 * - **Origin, always, on the WebSocket.** Browsers let any site open a WebSocket to any
 *   address (no same-origin rule), so an upgrade whose `Origin` is not the page's own
 *   origin is refused; clients that send no Origin (not a browser) pass on to the token.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export type Refusal = 'token' | 'host' | 'origin' | 'method'

/** Is `host` (an address to bind, or a Host header's name) a loopback one? */
export function isLoopback (host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h)
}

/** The name part of a Host header (`[::1]:8080` → `[::1]`, `localhost:80` → `localhost`). */
function hostName (header: string): string {
  if (header.startsWith('[')) {
    const end = header.indexOf(']')
    return end < 0 ? header : header.slice(0, end + 1)
  }
  const colon = header.indexOf(':')
  return colon < 0 ? header : header.slice(0, colon)
}

export interface RequestFacts {
  readonly host: string
  readonly origin: string
  /** The `token` query parameter, or the bearer token, or ''. */
  readonly token: string
}

export class AccessGate {
  private readonly key = randomBytes(32)
  private readonly expected: Buffer | null
  readonly refused: Record<Refusal, number> = { token: 0, host: 0, origin: 0, method: 0 }

  constructor (token: string | null) {
    this.expected = token === null ? null : this.digest(token)
  }

  get hasToken (): boolean {
    return this.expected !== null
  }

  private digest (s: string): Buffer {
    return createHmac('sha256', this.key).update(s).digest()
  }

  /** Why the page may not be served, or null. */
  checkPage (r: RequestFacts): Refusal | null {
    return this.count(this.hostOrToken(r))
  }

  /** Why the WebSocket may not open, or null. */
  checkSocket (r: RequestFacts): Refusal | null {
    if (r.origin !== '' && r.origin !== `http://${r.host}` && r.origin !== `https://${r.host}`) return this.count('origin')
    return this.count(this.hostOrToken(r))
  }

  countMethod (): void {
    this.refused.method++
  }

  private hostOrToken (r: RequestFacts): Refusal | null {
    if (this.expected === null) return isLoopback(hostName(r.host)) ? null : 'host'
    return timingSafeEqual(this.digest(r.token), this.expected) ? null : 'token'
  }

  private count (why: Refusal | null): Refusal | null {
    if (why !== null) this.refused[why]++
    return why
  }
}

/** The token of a request: `?token=` in the query, or an `Authorization: Bearer` header. */
export function tokenOf (query: string, authorization: string): string {
  for (const part of query.split('&')) {
    if (part.startsWith('token=')) {
      try { return decodeURIComponent(part.slice(6)) } catch { return '' }
    }
  }
  const m = /^Bearer\s+(\S+)$/i.exec(authorization)
  return m?.[1] ?? ''
}
