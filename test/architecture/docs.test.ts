/**
 * The project stands on its own: comments and pages cite docs/architecture.md (not a
 * design document outside the repository), by sections that exist, and the files they
 * name exist — a renamed test or module leaves no stale pointer behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { sourceFiles } from './import-graph.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const pages = ['README.md', 'docs/architecture.md', 'bench/RESULTS.md']
const texts = [...sourceFiles(root, ['native-free-core', 'src', 'plugins', 'bench', 'test']), ...pages]
  .map((file) => ({ file, text: readFileSync(`${root}${file}`, 'utf8') }))

/** Line-numbered matches of `re` in every text. */
function findAll (re: RegExp): Array<{ where: string, match: RegExpMatchArray }> {
  const found: Array<{ where: string, match: RegExpMatchArray }> = []
  for (const { file, text } of texts) {
    if (file === 'test/architecture/docs.test.ts') continue
    text.split('\n').forEach((line, i) => {
      for (const match of line.matchAll(re)) found.push({ where: `${file}:${i + 1}`, match })
    })
  }
  return found
}

test('nothing cites a design document that is not in the repository', () => {
  assert.deepEqual(findAll(/\bDESIGN(\.md)?\s*§/gi).map((f) => `${f.where}: ${f.match[0]}`), [])
})

test('every citation of docs/architecture.md names a section it has', () => {
  const page = readFileSync(`${root}docs/architecture.md`, 'utf8')
  const sections = new Set([...page.matchAll(/^## (\d+)\. /gm)].map((m) => m[1]))
  assert.ok(sections.size >= 10, [...sections].join(', '))
  const cited = findAll(/docs\/architecture\.md §(\d+)(?:, §(\d+))?/g)
  assert.ok(cited.length >= 10, `${cited.length} citations`)
  const broken = cited.flatMap((c) => [c.match[1], c.match[2]].filter((n) => n !== undefined && !sections.has(n)).map((n) => `${c.where}: §${n}`))
  assert.deepEqual(broken, [])
})

test('the repository paths that comments and pages name exist', () => {
  const missing = findAll(/(?<![\w./-])(?:native-free-core|src|test|bench|plugins|docs)\/[\w./-]*[\w-]\.(?:ts|js|md)\b/g)
    .filter(({ match }) => {
      const path = match[0]
      return !existsSync(`${root}${path}`) && !(path.endsWith('.js') && existsSync(`${root}${path.slice(0, -3)}.ts`))
    })
    .map(({ where, match }) => `${where}: ${match[0]}`)
  assert.deepEqual(missing, [])
})
