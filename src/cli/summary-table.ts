/**
 * The table a person reads at the end of `shoal bench`: one line per figure, its
 * same-run baseline, the ratio, and the target (docs/architecture.md §10) with "met"/"MISSED". Plain
 * box-drawing text that survives a pipe, a CI log and a narrow terminal (notes go on
 * their own indented line rather than widening the table).
 */
import { fmt, fmtBytes } from './progress.ts'
import { clusterLegend } from './cluster-results.ts'
import { baselineLegend, targetText } from './results.ts'
import type { BenchResults, SummaryRow } from './results.ts'

function value (v: number, unit: string): string {
  if (unit === 'B') return Math.abs(v) < 4096 ? `${fmt(v)} B` : fmtBytes(v)
  if (unit === 'agents') return fmt(v)
  return `${fmt(v)} ${unit}`
}

function cells (r: SummaryRow): string[] {
  const target = r.target === null ? '' : `${targetText(r, value)} ${r.met === true ? 'met' : 'MISSED'}`
  return [
    r.name,
    value(r.value, r.unit),
    r.baseline === null ? '' : `${value(r.baseline.value, r.baseline.unit)}  ${r.baseline.name}`,
    r.ratio === null ? '' : `${r.ratio.toFixed(2)}×`,
    target
  ]
}

export function renderTable (rows: readonly SummaryRow[]): string {
  const head = ['figure', 'value', 'baseline (same run)', 'ratio', 'target']
  const body = rows.map(cells)
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)))
  const line = (l: string, m: string, r: string): string => `${l}${widths.map((w) => '─'.repeat(w + 2)).join(m)}${r}`
  const row = (c: readonly string[]): string =>
    `│${c.map((s, i) => ` ${i === 1 || i === 3 ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)} `).join('│')}│`
  const out = [line('┌', '┬', '┐'), row(head), line('├', '┼', '┤')]
  let section = rows[0]?.section
  rows.forEach((r, i) => {
    if (r.section !== section) {
      out.push(line('├', '┼', '┤'))
      section = r.section
    }
    out.push(row(body[i]!))
  })
  out.push(line('└', '┴', '┘'))
  const notes = rows.filter((r) => r.note !== null).map((r) => `  · ${r.name}: ${r.note}`)
  return [...out, ...notes].join('\n')
}

export function renderSummary (r: BenchResults): string {
  const c = r.config
  const lines = [
    '',
    `Shoal bench — ${r.cluster !== null ? `cluster of ${r.cluster.hosts} hosts (${r.cluster.membership}), ` : ''}${fmt(c.agents)} agents · ${c.threadLayout} · Node ${r.machine.node} · ${r.machine.cpuModel}`,
    `store: ${c.store}${c.store === 'durable' ? ` (LMDB at ${c.dataDir}${c.dataDirKept ? ', kept' : ', temporary, removed'}; durability ${c.durability ?? 'disk'})` : ''}` +
      (c.storeNote !== null ? ` — ${c.storeNote}` : ''),
    renderTable(r.rows),
    ...(r.baselines !== null ? baselineLegend.map((l) => `  · ${l}`) : []),
    ...(r.cluster !== null ? clusterLegend.map((l) => `  · ${l}`) : []),
    `  · resident memory at the end ${fmtBytes(r.final.rssBytes)}, peak ${fmtBytes(r.final.peakRssBytes)}; run took ${(r.elapsedMs / 1000).toFixed(1)} s`
  ]
  return lines.join('\n')
}
