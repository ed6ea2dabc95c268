/**
 * Loading uWebSockets.js, and refusing its fallback.
 *
 * The package catches a failed load of its native binary (wrong glibc, Node ABI or
 * platform), prints a warning and hands back a pure-JS implementation built on `ws`
 * — the same API, an order of magnitude slower. A cluster that quietly runs on it would
 * miss its link targets with nothing in its own logs to say why, so a hub refuses to
 * listen on the fallback unless the operator opts in with SHOAL_ALLOW_UWS_FALLBACK=1.
 *
 * Which build loaded is read from the module cache, not from the package's console
 * output: the native build is the `exports` of a cached `.node` module, the fallback
 * is a plain JS module. The package's own UWS_USE_FALLBACK=1 forces the fallback, which
 * is how the test proves the refusal.
 */
import { createRequire } from 'node:module'
import type * as Uws from 'uWebSockets.js'
import { NativeAddonError } from '../../../native-free-core/errors.ts'

export type UwsModule = typeof Uws

/** The environment variable that lets a hub run on the pure-JS fallback. */
export const ALLOW_UWS_FALLBACK_ENV = 'SHOAL_ALLOW_UWS_FALLBACK'

const require = createRequire(import.meta.url)
let loaded: { uws: UwsModule, native: boolean } | undefined
let warned = false

function load (): { uws: UwsModule, native: boolean } {
  if (loaded === undefined) {
    const uws = require('uWebSockets.js') as UwsModule
    const native = Object.values(require.cache).some((m) => m !== undefined && m.filename.endsWith('.node') && m.exports === uws)
    loaded = { uws, native }
  }
  return loaded
}

/** True when uWebSockets.js loaded its native binary (loads the package on first use). */
export function nativeUwsLoaded (): boolean {
  return load().native
}

/**
 * uWebSockets.js for a server: the native build, or the fallback if the environment
 * opts in (then warns once per process). Throws NativeAddonError otherwise.
 */
export function uwsForServer (warn: (message: string) => void): UwsModule {
  const { uws, native } = load()
  if (native) return uws
  const optIn = process.env[ALLOW_UWS_FALLBACK_ENV]
  if (optIn !== '1' && optIn !== 'true') {
    throw new NativeAddonError(
      `uWebSockets.js did not load its native binary for ${process.platform}-${process.arch} (Node ABI ${process.versions.modules}) ` +
      `and fell back to a pure-JS build that is far too slow for cluster links; install a build that matches, ` +
      `or set ${ALLOW_UWS_FALLBACK_ENV}=1 to run on the fallback anyway`,
      { addon: 'uWebSockets.js', optIn: ALLOW_UWS_FALLBACK_ENV })
  }
  if (!warned) {
    warned = true
    warn(`shoal: WARNING — cluster links run on uWebSockets.js's pure-JS fallback (${ALLOW_UWS_FALLBACK_ENV}=${optIn}): ` +
      'its native binary did not load, links will be many times slower than they should be')
  }
  return uws
}
