/**
 * `dashboard({...})` options, validated when the plugin is made: a bad one names the
 * option, the rule and the value (never the token's value: only its length).
 *
 * Safe by default: the page binds 127.0.0.1. Any other address needs a `token` of at
 * least 32 bytes, checked on the page and on its WebSocket (access.ts); whether the
 * address is a loopback one is decided when the server's address is known (start), since
 * with the cluster plugin the dashboard is served from the cluster's link server.
 */
import { Buffer } from 'node:buffer'
import { InvalidOptionError } from '../../native-free-core/errors.ts'

/** Shortest token accepted: as for the cluster secret, guessing must not be an option. */
export const MIN_TOKEN_BYTES = 32

export interface DashboardOptions {
  /**
   * Port of the dashboard's own server. Default 0: a free port (`plugin.url` says which).
   * Not with the cluster plugin: the page is then served by the cluster's link server, on
   * its port (one port per host).
   */
  readonly port?: number
  /** Address the dashboard's own server binds. Default `'127.0.0.1'`; any other requires `token`. Not with the cluster plugin. */
  readonly host?: string
  /**
   * At least 32 bytes. When set, the page (`?token=` in its URL) and its WebSocket are
   * refused without it. Required when the page is served on an address that is not loopback.
   */
  readonly token?: string
  /** How often the figures are sampled and pushed to open pages, ms. Default 1000 (100 to 60,000). */
  readonly intervalMs?: number
  /** Samples kept for the charts a page shows when it opens. Default 300 (10 to 3,600). */
  readonly history?: number
}

export interface ResolvedDashboardOptions {
  readonly port: number | null
  readonly host: string | null
  readonly token: string | null
  readonly intervalMs: number
  readonly history: number
}

const known = new Set(['port', 'host', 'token', 'intervalMs', 'history'])

function int (name: string, value: unknown, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`dashboard.${name}`, value, `must be an integer from ${min} to ${max}`)
  }
  return value
}

export function resolveDashboardOptions (options: DashboardOptions = {}): ResolvedDashboardOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('dashboard', options, 'must be an object { port?, host?, token?, intervalMs?, history? }')
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new InvalidOptionError(`dashboard.${key}`, (options as Record<string, unknown>)[key], `is not an option (known: ${[...known].join(', ')})`)
  }
  const port = options.port === undefined ? null : int('port', options.port, 0, 0, 65535)
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
    throw new InvalidOptionError('dashboard.host', options.host, 'must be a host name or IP address to bind')
  }
  const token = options.token
  if (token !== undefined) {
    if (typeof token !== 'string') throw new InvalidOptionError('dashboard.token', typeof token, 'must be a string')
    const bytes = Buffer.byteLength(token)
    if (bytes < MIN_TOKEN_BYTES) throw new InvalidOptionError('dashboard.token', `a string of ${bytes} bytes`, `must be at least ${MIN_TOKEN_BYTES} bytes`)
    if (!/^[\x21-\x7e]+$/.test(token)) throw new InvalidOptionError('dashboard.token', `a string of ${bytes} bytes`, 'must be printable ASCII without spaces (it travels in a URL)')
  }
  return Object.freeze({
    port,
    host: options.host ?? null,
    token: token ?? null,
    intervalMs: int('intervalMs', options.intervalMs, 1000, 100, 60_000),
    history: int('history', options.history, 300, 10, 3600)
  })
}
