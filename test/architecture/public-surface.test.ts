/**
 * What the published package shows its users, checked on the build output:
 *
 *   - the declarations of every name `shoal` and `shoal/core` export mention only names
 *     those entries export too (or the platform's): no internal type leaks through a
 *     public one (a constructor taking the host's wiring, a test hook in HostOptions);
 *   - the library entries never load a CLI-only package (commander, cli-progress...);
 *   - `npm pack` ships the library and the CLI, not the tests nor the benchmarks.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { importGraph, importsOf, sourceFiles, tokenize } from './import-graph.ts'

// dist/test/architecture/ → the repository
const root = fileURLToPath(new URL('../../../', import.meta.url))
/** The type entries of the package's exports (`shoal`, `shoal/core`, ...): what users can import. */
const entries = Object.values(JSON.parse(readFileSync(`${root}package.json`, 'utf8')).exports as Record<string, string | { types?: string }>)
  .flatMap((e) => typeof e === 'object' && e.types !== undefined ? [e.types.replace(/^\.\//, '')] : [])

/** Names of the platform and of the packages a declaration may mention. */
const kGlobal = new Set([
  'Array', 'ArrayBufferLike', 'AsyncGenerator', 'AsyncIterable', 'AsyncIterableIterator', 'AbortSignal', 'Awaited',
  'Date', 'Error', 'ErrorOptions', 'Float64Array', 'Infinity', 'Int32Array', 'Iterable', 'Map', 'NaN', 'Omit', 'Partial',
  'Pick', 'Promise', 'PromiseLike', 'Readonly', 'ReadonlyArray', 'ReadonlyMap', 'ReadonlySet', 'Record', 'Set',
  'SharedArrayBuffer', 'Symbol', 'URL', 'Uint16Array', 'Uint8Array'
])

interface Declared { readonly file: string, readonly text: string }

/** `export … from` and `export *` of a declaration file: name → [file, name there]. */
function exportsOf (file: string): Map<string, [string, string]> {
  const src = readFileSync(file, 'utf8')
  const out = new Map<string, [string, string]>()
  const target = (spec: string): string => resolve(dirname(file), spec.replace(/\.(ts|js)$/, '.d.ts'))
  for (const m of src.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}\s*from\s*'([^']+)'/g)) {
    for (const part of m[1]!.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
      const [name, alias] = part.replace(/^type\s+/, '').split(/\s+as\s+/)
      out.set((alias ?? name)!, [target(m[2]!), name!])
    }
  }
  for (const m of src.matchAll(/export\s+\*\s+from\s*'([^']+)'/g)) {
    const inner = target(m[1]!)
    for (const m2 of readFileSync(inner, 'utf8').matchAll(/^export (?:declare )?(?:abstract )?(?:class|interface|type|function|const|enum) ([A-Za-z_$][\w$]*)/gm)) {
      out.set(m2[1]!, [inner, m2[1]!])
    }
  }
  return out
}

/** The text of every declaration of `name` in `file` (overloads included), following re-exports. */
function declarationOf (file: string, name: string): Declared {
  const src = readFileSync(file, 'utf8')
  const reexport = exportsOf(file).get(name)
  const start = new RegExp(`^export (?:declare )?(?:abstract )?(?:class|interface|type|function|const|enum) ${name.replace('$', '\\$')}\\b`, 'gm')
  const texts: string[] = []
  for (const m of src.matchAll(start)) texts.push(statementAt(src, m.index))
  if (texts.length === 0 && reexport !== undefined) return declarationOf(reexport[0], reexport[1])
  assert.ok(texts.length > 0, `${relative(root, file)} declares ${name}`)
  return { file, text: texts.join('\n') }
}

/** From `at` to the end of the statement: a `;` or a closing brace at depth 0. */
function statementAt (src: string, at: number): string {
  let depth = 0
  for (let i = at; i < src.length; i++) {
    const c = src[i]
    if (c === '{' || c === '(' || c === '[' || c === '<') depth++
    else if (c === '}' || c === ')' || c === ']' || (c === '>' && src[i - 1] !== '=')) {
      depth--
      if (depth === 0 && c === '}' && /^\s*(\n|$)/.test(src.slice(i + 1, i + 2)) && /^export (declare )?(abstract )?(class|interface)/.test(src.slice(at))) return src.slice(at, i + 1)
    } else if (c === ';' && depth === 0) return src.slice(at, i + 1)
  }
  return src.slice(at)
}

/** Names a declaration mentions that could be types or symbols: capitalized words, and k-prefixed symbols. */
function mentioned (text: string): Set<string> {
  const tokens = tokenize(text)
  const params = new Set<string>()
  const names = new Set<string>()
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.kind !== 'word') continue
    const next = tokens[i + 1]
    const prev = tokens[i - 1]
    // type parameters and inferred types: `<D extends …>`, `<T>`, `infer S`, `[K in …]`
    if (prev?.text === 'infer' || (next?.kind === 'word' && next.text === 'in') || (t.text.length === 1 && prev?.text !== '.') ||
      ((prev?.text === '<' || prev?.text === ',') && (next?.text === 'extends' || next?.text === '='))) {
      params.add(t.text)
      continue
    }
    if (prev?.text === '.') continue // a member of something already mentioned (Symbol.hasInstance)
    if (/^[A-Z]/.test(t.text) || /^k[A-Z]/.test(t.text)) names.add(t.text)
  }
  for (const p of params) names.delete(p)
  return names
}

/**
 * Names a declaration may use besides the public ones: what its file imports from
 * packages (node:events' EventEmitter, ...), and the helpers the file declares without
 * exporting them (a brand symbol, the common fields of a union): part of the public
 * shape, written for it, and nameable nowhere else.
 */
function fileNames (file: string): Set<string> {
  const names = new Set<string>()
  for (const m of readFileSync(file, 'utf8').matchAll(/^(?:declare )?(?:interface|type|const|class|function) ([A-Za-z_$][\w$]*)/gm)) names.add(m[1]!)
  for (const m of readFileSync(file, 'utf8').matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*'([^'.][^']*)'/g)) {
    for (const part of m[1]!.split(',')) names.add(part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!)
  }
  return names
}

test('the public declarations mention only public names', () => {
  assert.ok(entries.includes('dist/src/index.d.ts') && entries.includes('dist/native-free-core/index.d.ts'), entries.join(', '))
  for (const e of entries) assert.ok(existsSync(join(root, e)), `${e} is built`)
  const publicNames = new Map<string, [string, string]>()
  for (const e of entries) for (const [name, where] of exportsOf(join(root, e))) publicNames.set(name, where)
  assert.ok(publicNames.has('createHost') && publicNames.has('simulate') && publicNames.has('AgentFilter') && publicNames.has('Durability'))
  const leaks: string[] = []
  for (const [name, [file, original]] of publicNames) {
    const decl = declarationOf(file, original)
    const external = fileNames(decl.file)
    for (const used of mentioned(decl.text)) {
      if (used === original || publicNames.has(used) || kGlobal.has(used) || external.has(used)) continue
      leaks.push(`${name} (${relative(root, decl.file)}) mentions ${used}`)
    }
  }
  assert.deepEqual(leaks, [])
})

test('the checker sees a leak where there is one', () => {
  const decl = [
    'export declare class Host extends EventEmitter<HostEvents> {',
    '    /** the ResolvedOptions in a comment do not count */',
    '    readonly options: ResolvedHostOptions;',
    '    constructor(loop: ThreadLoop, tag: "Mesh");',
    '    ref<D extends AgentDefinition>(type: D, key: string): AgentRef<D>;',
    '    readonly [kTestClock]?: TestClock;',
    '}'
  ].join('\n')
  assert.deepEqual([...mentioned(statementAt(decl + '\nexport declare const x: Later;\n', 0))].sort(),
    ['AgentDefinition', 'AgentRef', 'EventEmitter', 'Host', 'HostEvents', 'ResolvedHostOptions', 'TestClock', 'ThreadLoop', 'kTestClock'])
})

/** Packages only the CLI uses: a library import of one would load it into every embedder's process. */
const kCliOnly = ['commander', 'cli-progress', 'uplot', 'hdr-histogram-js', 'tinybench', 'playwright-core', '@sparticuz/chromium', 'fast-check']

test('the library entries reach no CLI-only package, even lazily', () => {
  const files = sourceFiles(root, ['native-free-core', 'src', 'plugins'])
  const graph = importGraph(root, files)
  const reached = new Set<string>()
  const loaded: string[] = []
  const walk = (file: string, path: string[]): void => {
    if (reached.has(file)) return
    reached.add(file)
    for (const r of graph.get(file) ?? []) {
      if (r.typeOnly) continue
      if (r.target !== null) walk(r.target, [...path, file])
      else if (kCliOnly.some((p) => r.spec === p || r.spec.startsWith(`${p}/`))) loaded.push(`${[...path, file].join(' → ')} imports ${r.spec}`)
    }
  }
  walk('src/index.ts', [])
  walk('native-free-core/index.ts', [])
  assert.ok(reached.has('src/host/host.ts') && reached.has('native-free-core/sim/simulate.ts'))
  assert.ok(!reached.has('src/cli/main.ts'))
  assert.deepEqual(loaded, [])
  // and the CLI does use them: the list above is not stale
  const cliSpecs = new Set(files.filter((f) => f.startsWith('src/cli/')).flatMap((f) => importsOf(readFileSync(join(root, f), 'utf8')).map((i) => i.spec)))
  for (const p of ['commander', 'cli-progress']) assert.ok(cliSpecs.has(p), `src/cli imports ${p}`)
})

test('npm pack ships the library, its types and the CLI, not the tests nor the benchmarks', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path)
  for (const must of ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/native-free-core/index.js',
    'dist/native-free-core/index.d.ts', 'dist/src/cli/main.js', 'dist/src/thread/worker-entry.js']) {
    assert.ok(files.includes(must), `the package has ${must}`)
  }
  const stray = files.filter((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || !(f.startsWith('dist/') || !f.includes('/')))
  assert.deepEqual(stray, [])
})
