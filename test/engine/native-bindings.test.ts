/**
 * npm 11 does not run dependencies' install scripts; lmdb and msgpackr-extract ship
 * prebuilt binaries in optional packages. This proves the native ones load, in the
 * main thread and in worker threads — msgpackr silently falls back to pure JS.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { nativeDecoderLoaded } from '../../src/index.ts'
import { startHost } from './helpers.ts'

test('msgpackr-extract is loaded in the main thread and in workers', async () => {
  assert.equal(nativeDecoderLoaded(), true)
  const extract = createRequire(import.meta.url)('msgpackr-extract') as { extractStrings?: unknown }
  assert.equal(typeof extract.extractStrings, 'function')
  const host = await startHost({ workers: 2 })
  try {
    assert.deepEqual(await host.ref('probe', 'a').call('native'), { msgpackrNative: true })
  } finally {
    await host.close()
  }
})

test('the native LMDB binding loads and writes a real environment', async () => {
  const lmdb = await import('lmdb')
  const addon = (lmdb as unknown as { nativeAddon: { Env: unknown, version: { major: number } } }).nativeAddon
  assert.equal(typeof addon.Env, 'function')
  assert.equal(addon.version.major, 0)
  const dir = mkdtempSync(join(tmpdir(), 'shoal-native-'))
  try {
    const db = lmdb.open({ path: dir })
    await db.put('k', { v: 1 })
    assert.deepEqual(db.get('k'), { v: 1 })
    await db.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
