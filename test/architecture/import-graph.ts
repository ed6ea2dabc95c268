/**
 * The repository's TypeScript import graph, read from the sources (type-only imports
 * included: a cycle of types is still a cycle a reader has to untangle), for the
 * architecture test. Specifiers are found by a small tokenizer that skips comments,
 * string and template contents and regular expressions, so an import written inside a
 * comment or a child process's script text is not taken for one.
 */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'

export interface ImportRef {
  /** The specifier as written. */
  readonly spec: string
  /** For a relative specifier, the file it names (repo-relative, '/'-separated); else null. */
  readonly target: string | null
  readonly typeOnly: boolean
  readonly line: number
}

/** Every import specifier of a module: static, re-export, side-effect, dynamic `import('…')`, `import type`. */
export function importsOf (source: string): Array<{ spec: string, typeOnly: boolean, line: number }> {
  const tokens = tokenize(source)
  const found: Array<{ spec: string, typeOnly: boolean, line: number }> = []
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.kind !== 'word' || (t.text !== 'import' && t.text !== 'export')) continue
    const prev = tokens[i - 1]
    if (prev !== undefined && prev.kind === 'punct' && prev.text === '.') continue // x.import
    const next = tokens[i + 1]
    if (next === undefined) continue
    if (t.text === 'import' && next.kind === 'string') { // import 'x'
      found.push({ spec: next.text, typeOnly: false, line: next.line })
      continue
    }
    if (t.text === 'import' && next.kind === 'punct' && next.text === '(') { // import('x')
      const arg = tokens[i + 2]
      if (arg?.kind === 'string') found.push({ spec: arg.text, typeOnly: false, line: arg.line })
      continue
    }
    if (t.text === 'import' && next.kind === 'punct' && next.text === '.') continue // import.meta
    // import … from 'x' / export … from 'x': an import clause, then `from`
    const typeOnly = next.kind === 'word' && next.text === 'type'
    let closed = false
    for (let j = i + 1; j < tokens.length; j++) {
      const u = tokens[j]!
      if (u.kind === 'word' && u.text === 'from') {
        const s = tokens[j + 1]
        if (s?.kind === 'string') found.push({ spec: s.text, typeOnly, line: s.line })
        break
      }
      if (closed) break // only `from` may follow `{ … }`
      if (u.kind === 'word') {
        if (kNotClause.has(u.text)) break // export const …, export default …, the next statement
        continue
      }
      if (u.kind === 'punct' && (u.text === '{' || u.text === ',' || u.text === '*')) continue
      if (u.kind === 'punct' && u.text === '}') { closed = true; continue }
      break
    }
  }
  return found
}

const kNotClause = new Set(['import', 'export', 'const', 'let', 'var', 'function', 'class', 'interface', 'enum', 'default', 'declare', 'abstract', 'async', 'namespace', 'module'])

interface Token { readonly kind: 'word' | 'string' | 'punct', readonly text: string, readonly line: number }

/** Words, string literals (their value) and punctuation; comments, template text and regexes are dropped. */
export function tokenize (src: string): Token[] {
  const out: Token[] = []
  const templates: number[] = [] // brace depth at which each open template's `${` began
  let depth = 0
  let line = 1
  let i = 0
  const n = src.length
  const regexAllowed = (): boolean => {
    const last = out[out.length - 1]
    if (last === undefined) return true
    if (last.kind === 'string') return false
    if (last.kind === 'word') return /^(return|typeof|instanceof|in|of|new|delete|void|throw|case|do|else|yield|await)$/.test(last.text)
    return !/^[)\]}]$/.test(last.text)
  }
  const template = (): void => { // i is just after '`' or after the '}' closing a `${`
    while (i < n) {
      const c = src[i]!
      if (c === '\\') { i += 2; continue }
      if (c === '\n') line++
      if (c === '`') { i++; out.push({ kind: 'string', text: '', line }); return }
      if (c === '$' && src[i + 1] === '{') { i += 2; templates.push(depth); depth++; return }
      i++
    }
  }
  while (i < n) {
    const c = src[i]!
    if (c === '\n') { line++; i++; continue }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue }
    if (c === '/' && src[i + 1] === '/') { while (i < n && src[i] !== '\n') i++; continue }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2)
      const stop = end < 0 ? n : end + 2
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++
      i = stop
      continue
    }
    if (c === '\'' || c === '"') {
      let j = i + 1
      let text = ''
      while (j < n && src[j] !== c) {
        if (src[j] === '\\') { text += src[j + 1]; j += 2; continue }
        text += src[j]
        j++
      }
      out.push({ kind: 'string', text, line })
      i = j + 1
      continue
    }
    if (c === '`') { i++; template(); continue }
    if (c === '/' && regexAllowed()) {
      let j = i + 1
      let inClass = false
      while (j < n && src[j] !== '\n') {
        const d = src[j]!
        if (d === '\\') { j += 2; continue }
        if (d === '[') inClass = true
        else if (d === ']') inClass = false
        else if (d === '/' && !inClass) break
        j++
      }
      j++
      while (j < n && /[a-z]/i.test(src[j]!)) j++
      out.push({ kind: 'punct', text: 'regex', line })
      i = j
      continue
    }
    if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1
      while (j < n && /[\w$]/.test(src[j]!)) j++
      out.push({ kind: 'word', text: src.slice(i, j), line })
      i = j
      continue
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1
      while (j < n && /[\w.]/.test(src[j]!)) j++
      out.push({ kind: 'word', text: src.slice(i, j), line })
      i = j
      continue
    }
    if (c === '{') depth++
    if (c === '}') {
      depth--
      if (templates.length !== 0 && templates[templates.length - 1] === depth) {
        templates.pop()
        i++
        template()
        continue
      }
    }
    out.push({ kind: 'punct', text: c, line })
    i++
  }
  return out
}

/** Every .ts source under `dirs` of `root` (no declaration files), repo-relative with '/'. */
export function sourceFiles (root: string, dirs: readonly string[]): string[] {
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist') continue
      const p = join(dir, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(relative(root, p).split(sep).join('/'))
    }
  }
  for (const d of dirs) if (existsSync(join(root, d))) walk(join(root, d))
  return files.sort()
}

/** Each file's imports, relative ones resolved to the file they name. */
export function importGraph (root: string, files: readonly string[]): Map<string, ImportRef[]> {
  const graph = new Map<string, ImportRef[]>()
  for (const file of files) {
    const refs: ImportRef[] = []
    for (const { spec, typeOnly, line } of importsOf(readFileSync(join(root, file), 'utf8'))) {
      let target: string | null = null
      if (spec.startsWith('./') || spec.startsWith('../')) {
        let abs = resolve(root, dirname(file), spec)
        if (abs.endsWith('.js') && existsSync(abs.slice(0, -3) + '.ts')) abs = abs.slice(0, -3) + '.ts'
        target = relative(root, abs).split(sep).join('/')
      }
      refs.push({ spec, target, typeOnly, line })
    }
    graph.set(file, refs)
  }
  return graph
}

/**
 * The import cycles among `files`: one cycle per strongly connected component that has
 * one (Tarjan), each as the files in import order with the first repeated at the end.
 */
export function cyclesOf (edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const components: string[][] = []
  let next = 0
  const connect = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      components.push(component)
    }
  }
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) connect(v)
  const cycles: string[][] = []
  for (const component of components) {
    const members = new Set(component)
    const start = [...members].sort()[0]!
    if (members.size === 1 && !(edges.get(start) ?? []).includes(start)) continue
    cycles.push(pathBack(edges, members, start))
  }
  return cycles
}

/** A shortest path from `start` back to itself inside one component (breadth first). */
function pathBack (edges: ReadonlyMap<string, readonly string[]>, members: ReadonlySet<string>, start: string): string[] {
  const from = new Map<string, string>()
  const queue = [start]
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q]!
    for (const w of edges.get(v) ?? []) {
      if (!members.has(w)) continue
      if (w === start) {
        const path = [start]
        for (let u = v; u !== start; u = from.get(u)!) path.push(u)
        path.push(start)
        return [start, ...path.slice(1, -1).reverse(), start]
      }
      if (!from.has(w)) {
        from.set(w, v)
        queue.push(w)
      }
    }
  }
  return [start, start]
}
