/**
 * `npm run bench`: every benchmark script in dist/bench, one child process each (a
 * fresh heap per suite), with --expose-gc for memory figures.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)
const scripts = readdirSync(dir).filter((f) => f.endsWith('.bench.js')).sort()
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
let failed = 0
for (const script of scripts) {
  console.log(`\n=== ${script}`)
  const r = spawnSync(process.execPath, ['--expose-gc', `${dir}${script}`], { stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
