/**
 * uWebSockets.js falls back to a slow pure-JS build when its binary does not load. Here
 * the native one must be what loads; and on the fallback (forced with the package's own
 * UWS_USE_FALLBACK=1, in a child process) a hub refuses to listen with NativeAddonError
 * unless SHOAL_ALLOW_UWS_FALLBACK=1, which makes it listen and warn once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { nativeUwsLoaded } from '../../plugins/cluster/link/index.ts'
import { startHub } from './link-helpers.ts'

const child = fileURLToPath(new URL('../fixtures/uws-fallback-child.js', import.meta.url))

test('the native uWebSockets.js binary is the one that loads, and hubs report it', async () => {
  assert.equal(nativeUwsLoaded(), true)
  const hub = await startHub('a')
  try {
    assert.equal(hub.stats().nativeUws, true)
  } finally {
    await hub.close()
  }
})

test('on the pure-JS fallback a hub refuses to listen, unless the environment opts in (then it warns once)', () => {
  const run = (env: Record<string, string>): { status: number | null, out: { native: boolean, listened?: boolean, code?: string, message?: string, warnings: string[] } } => {
    const r = spawnSync(process.execPath, [child], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 })
    return { status: r.status, out: JSON.parse(r.stdout.trim().split('\n').pop()!) }
  }
  const refused = run({ UWS_USE_FALLBACK: '1' })
  assert.equal(refused.status, 0)
  assert.equal(refused.out.native, false)
  assert.equal(refused.out.code, 'SHOAL_ERR_NATIVE_ADDON')
  assert.match(refused.out.message!, /SHOAL_ALLOW_UWS_FALLBACK=1/)
  const allowed = run({ UWS_USE_FALLBACK: '1', SHOAL_ALLOW_UWS_FALLBACK: '1' })
  assert.equal(allowed.status, 0)
  assert.equal(allowed.out.listened, true)
  assert.equal(allowed.out.warnings.length, 1, 'warned once for two hubs')
  assert.match(allowed.out.warnings[0]!, /pure-JS fallback/)
})
