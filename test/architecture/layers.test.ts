/**
 * The house rules the layout relies on, checked on every .ts file of the repository:
 *
 *   plugins/ → src/ → native-free-core/     layers import one way only
 *   native-free-core/                        no node: module, no Node builtin, no native
 *                                            addon: only the pure-JS packages listed below
 *   everywhere                               no import cycle (type-only imports count)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { builtinModules } from 'node:module'
import { fileURLToPath } from 'node:url'
import { cyclesOf, importGraph, importsOf, sourceFiles } from './import-graph.ts'

// dist/test/architecture/ → the repository
const root = fileURLToPath(new URL('../../../', import.meta.url))
const files = sourceFiles(root, ['native-free-core', 'src', 'plugins', 'bench', 'test'])
const graph = importGraph(root, files)

/**
 * Packages the core may import: pure JavaScript that imports no builtin (test/sim/codec.test.ts
 * walks what they load). The core runs in the simulator, in a browser, anywhere: add a
 * package here only after checking it holds no native code and loads no node: module.
 */
const kCorePackages = new Set(['msgpackr/pack', 'msgpackr/unpack'])
const builtins = new Set(builtinModules)

const layerOf = (file: string): string => file.slice(0, file.indexOf('/'))

test('the sources are found, and their imports with them', () => {
  assert.ok(files.includes('native-free-core/runtime/shard-runtime.ts'), files.slice(0, 5).join(', '))
  assert.ok(files.includes('src/host/host.ts'))
  assert.ok(files.includes('test/architecture/layers.test.ts'))
  const runtime = graph.get('native-free-core/runtime/shard-runtime.ts')!
  assert.ok(runtime.some((r) => r.target === 'native-free-core/runtime/commit-pipeline.ts' && !r.typeOnly))
  assert.ok(runtime.some((r) => r.target === 'native-free-core/runtime/ports.ts' && r.typeOnly))
  for (const [file, refs] of graph) {
    for (const r of refs) {
      if (r.target !== null) assert.ok(files.includes(r.target), `${file}:${r.line} imports ${r.spec}, which is not a source file`)
    }
  }
})

test('native-free-core imports nothing from src/ or plugins/, no node: module, no builtin and no native package', () => {
  const broken: string[] = []
  for (const [file, refs] of graph) {
    if (layerOf(file) !== 'native-free-core') continue
    for (const r of refs) {
      const where = `${file}:${r.line} imports ${r.spec}`
      if (r.target !== null) {
        if (layerOf(r.target) !== 'native-free-core') broken.push(`${where} (${layerOf(r.target)}/ is a layer above the core)`)
      } else if (r.spec.startsWith('node:') || builtins.has(r.spec) || builtins.has(r.spec.split('/')[0]!)) {
        broken.push(`${where} (a Node builtin: the core runs without Node)`)
      } else if (!kCorePackages.has(r.spec)) {
        broken.push(`${where} (not a package the core may use: ${[...kCorePackages].join(', ')})`)
      }
    }
  }
  assert.deepEqual(broken, [])
})

test('src/ imports nothing from plugins/', () => {
  const broken: string[] = []
  for (const [file, refs] of graph) {
    if (layerOf(file) !== 'src') continue
    for (const r of refs) if (r.target !== null && layerOf(r.target) === 'plugins') broken.push(`${file}:${r.line} imports ${r.spec}`)
  }
  assert.deepEqual(broken, [])
})

test('no import cycle anywhere', () => {
  const edges = new Map<string, string[]>()
  for (const [file, refs] of graph) edges.set(file, refs.flatMap((r) => r.target === null ? [] : [r.target]))
  assert.deepEqual(cyclesOf(edges).map((c) => c.join(' → ')), [])
})

test('the checker finds what it must: imports in tricky sources, and cycles', () => {
  const source = [
    '// import { no } from \'./comment.ts\'',
    '/* export * from \'./block.ts\' */',
    'import type { A } from \'./a.ts\'',
    'import {',
    '  b,',
    '  type C',
    '} from "./b.ts"',
    'import \'./side.ts\'',
    'export * as ns from \'./ns.ts\'',
    'export { d } from \'./d.ts\'',
    'export const text = `import x from \'./template.ts\' ${\'./in-template.ts\'.length}`',
    'const re = /[\'"]from \'.\\/regex.ts\'/g',
    'const lazy = await import(\'./lazy.ts\')',
    'const u = import.meta.url',
    'export type T = typeof re'
  ].join('\n')
  assert.deepEqual(importsOf(source), [
    { spec: './a.ts', typeOnly: true, line: 3 },
    { spec: './b.ts', typeOnly: false, line: 7 },
    { spec: './side.ts', typeOnly: false, line: 8 },
    { spec: './ns.ts', typeOnly: false, line: 9 },
    { spec: './d.ts', typeOnly: false, line: 10 },
    { spec: './lazy.ts', typeOnly: false, line: 13 }
  ])
  const edges = new Map([['a', ['b']], ['b', ['c']], ['c', ['a', 'd']], ['d', []], ['e', ['e']], ['f', ['a']]])
  assert.deepEqual(cyclesOf(edges), [['a', 'b', 'c', 'a'], ['e', 'e']])
  assert.deepEqual(cyclesOf(new Map([['a', ['b']], ['b', []]])), [])
})

test('the core\'s tests (test/core, test/sim) reach nothing in src/ or plugins/, even through fixtures', () => {
  // the one exception compares the simulator's codec with the host's, byte for byte
  const allowed = new Set(['test/sim/codec.test.ts'])
  const broken: string[] = []
  for (const file of graph.keys()) {
    if (!/^test\/(core|sim)\//.test(file) || allowed.has(file)) continue
    const seen = new Set<string>()
    const walk = (f: string, path: string[]): void => {
      if (seen.has(f)) return
      seen.add(f)
      for (const r of graph.get(f) ?? []) {
        if (r.target === null) continue
        const layer = layerOf(r.target)
        if (layer === 'src' || layer === 'plugins') broken.push(`${[...path, f].join(' → ')} → ${r.target}`)
        else walk(r.target, [...path, f])
      }
    }
    walk(file, [])
  }
  assert.deepEqual(broken, [])
})
