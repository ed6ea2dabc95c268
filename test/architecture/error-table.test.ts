/**
 * The README's error table is the contract users match on (`err.code`): it must list
 * every code the package can raise — derived here from the classes errors.ts exports, so
 * a code added there fails this test until the README has its row — and nothing else.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as errors from '../../native-free-core/errors.ts'
import { sourceFiles } from './import-graph.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const { ShoalError, errorCodes } = errors

/** Every ShoalError subclass errors.ts exports, by code. */
function classesByCode (): Map<string, string> {
  const found = new Map<string, string>()
  for (const value of Object.values(errors)) {
    // the classes below ShoalError (prototype checks by brand would let the base itself through)
    if (typeof value !== 'function' || !Object.prototype.isPrototypeOf.call(ShoalError, value)) continue
    const cls = value as typeof ShoalError
    assert.ok(!found.has(cls.code), `${cls.name} and ${found.get(cls.code)} share the code ${cls.code}`)
    found.set(cls.code, cls.name)
  }
  return found
}

/** `| `CODE` | `Class` …` rows of the README's "## Errors" section. */
function readmeRows (): Map<string, string> {
  const readme = readFileSync(`${root}README.md`, 'utf8')
  const start = readme.indexOf('\n## Errors\n')
  assert.ok(start >= 0, 'the README has an "## Errors" section')
  const end = readme.indexOf('\n## ', start + 1)
  const section = readme.slice(start, end < 0 ? undefined : end)
  const rows = new Map<string, string>()
  for (const m of section.matchAll(/^\| `(SHOAL_ERR[A-Z_]*)` \| `(\w+)`/gm)) {
    assert.ok(!rows.has(m[1]!), `${m[1]} has two rows`)
    rows.set(m[1]!, m[2]!)
  }
  return rows
}

test('the README error table and the error classes are the same set, class by class', () => {
  const code = classesByCode()
  const readme = readmeRows()
  assert.ok(code.size >= 20, `found ${code.size} classes`)
  const missing = [...code].filter(([c]) => !readme.has(c)).map(([c, name]) => `${c} (${name})`)
  const extra = [...readme.keys()].filter((c) => !code.has(c))
  assert.deepEqual({ missingFromReadme: missing, notInCode: extra }, { missingFromReadme: [], notInCode: [] })
  for (const [c, name] of code) assert.equal(readme.get(c), name, `the README row of ${c} names its class`)
  // every class can be rebuilt by code after crossing a thread
  for (const c of code.keys()) assert.ok(errorCodes.includes(c), `${c} is registered for errorFromWire`)
})

test('the base ShoalError (SHOAL_ERR) is never thrown: every error raised is a subclass with its own code', () => {
  const found: string[] = []
  for (const file of sourceFiles(root, ['native-free-core', 'src', 'plugins'])) {
    const lines = readFileSync(`${root}${file}`, 'utf8').split('\n')
    lines.forEach((line, i) => { if (/\bnew ShoalError\s*\(/.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`) })
  }
  assert.deepEqual(found, [])
  assert.ok(!readmeRows().has('SHOAL_ERR'))
})
