/**
 * The simulator encodes with msgpackr exactly as the host does (same bytes), from
 * modules that import no node: builtin and no native addon.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { simCodec, encodeSimValue } from '../../native-free-core/sim/codec.ts'
import { stateCodec } from '../../src/thread/codec.ts'

test('the simulation codec writes the bytes the host codec writes, and reads them back alike', () => {
  const values: unknown[] = [
    0, -1, 2 ** 40, 1.5, 'text', '', null, true, [1, 'a', null], { n: 1, nested: { list: [1, 2, { x: 'y' }] } },
    new Date(0), new Set([1, 2]), new Uint8Array([1, 2, 3]), 2n ** 60n, new Map([['k', 1]]), { u: undefined }
  ]
  for (const v of values) {
    const sim = simCodec.encode(v)
    assert.deepEqual(Buffer.from(sim), Buffer.from(stateCodec.encode(v)), String(v))
    assert.deepEqual(simCodec.decode(sim), stateCodec.decode(sim))
  }
  assert.throws(() => encodeSimValue(() => 1, 'x'), { code: 'SHOAL_ERR_ENCODE' })
  assert.throws(() => encodeSimValue({ s: Symbol('x') }, 'x'), { code: 'SHOAL_ERR_ENCODE' })
})

/** Static imports of an ES module (`import … from '…'`, `export … from '…'`, `import '…'`). */
function importsOf (source: string): string[] {
  const found: string[] = []
  for (const m of source.matchAll(/(?:^|[\n;])\s*(?:import|export)\s[^'"]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|[\n;])\s*import\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    found.push((m[1] ?? m[2] ?? m[3])!)
  }
  return found
}

test('native-free-core imports no node: builtin, and msgpackr at the subpaths it uses imports none either', () => {
  const core = join(dirname(fileURLToPath(import.meta.url)), '../../native-free-core')
  const files = readdirSync(core, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'))
  assert.ok(files.some((f) => f.startsWith('sim')), 'the simulator is part of the core')
  const bare = new Set<string>()
  for (const f of files) {
    for (const spec of importsOf(readFileSync(join(core, f), 'utf8'))) {
      assert.ok(!spec.startsWith('node:'), `${f} imports ${spec}`)
      if (!spec.startsWith('.')) bare.add(spec)
    }
  }
  assert.deepEqual([...bare].sort(), ['msgpackr/pack', 'msgpackr/unpack'])
  // walk what those resolve to: only relative imports inside the package, no builtins
  const seen = new Set<string>()
  const walk = (url: string): void => {
    if (seen.has(url)) return
    seen.add(url)
    for (const spec of importsOf(readFileSync(fileURLToPath(url), 'utf8'))) {
      assert.ok(spec.startsWith('./'), `${url} imports ${spec}`)
      walk(new URL(spec, url).href)
    }
  }
  for (const spec of bare) walk(import.meta.resolve(spec))
  assert.ok(seen.size >= 3, [...seen].join(', '))
})
