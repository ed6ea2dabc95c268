/**
 * Bench reporting: every figure is printed beside the baseline it is held against,
 * measured in the same run, as a ratio — so a result means something on a noisy,
 * shared 2-core machine. Rows are also appended to bench/results/<suite>.json for
 * RESULTS.md and the CLI.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'

export interface Row {
  readonly name: string
  readonly value: number
  readonly unit: string
  /** The baseline figure measured in the same run, in the same unit. */
  readonly baseline?: { readonly name: string, readonly value: number }
  /** Target on the ratio value/baseline (or on the value when there is no baseline). */
  readonly target?: { readonly op: '>=' | '<=', readonly value: number }
  readonly note?: string
}

export function machine (): string {
  return `${availableParallelism()} cores, Node ${process.version}, ${process.platform}-${process.arch}`
}

function fmt (n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US')
  return n.toPrecision(3)
}

export function printRows (suite: string, rows: readonly Row[], layout?: string): void {
  console.log(`\n## ${suite} — ${machine()}${layout ? ` — threads: ${layout}` : ''}`)
  const lines = rows.map((r) => {
    const ratio = r.baseline ? r.value / r.baseline.value : undefined
    const checked = r.target ? (ratio ?? r.value) : undefined
    const ok = r.target && checked !== undefined
      ? (r.target.op === '>=' ? checked >= r.target.value : checked <= r.target.value)
      : undefined
    return {
      figure: r.name,
      value: `${fmt(r.value)} ${r.unit}`,
      baseline: r.baseline ? `${fmt(r.baseline.value)} ${r.unit} (${r.baseline.name})` : '',
      ratio: ratio === undefined ? '' : `${ratio.toFixed(2)}×`,
      target: r.target ? `${r.target.op} ${r.target.value}${r.baseline ? '×' : ''} ${ok ? 'met' : 'MISSED'}` : '',
      note: r.note ?? ''
    }
  })
  console.table(lines)
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}${suite}.json`, JSON.stringify({ suite, machine: machine(), layout, at: new Date().toISOString(), rows }, null, 2))
}

/** Median of a sample (sorts a copy). */
export function median (xs: readonly number[]): number {
  return percentile(xs, 0.5)
}

export function percentile (xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}
