/**
 * `--html FILE`: one self-contained page — the summary table, two charts over the
 * run's timeline (messages/s; RSS, main-thread heap and resident agents), phases
 * shaded, and, when the `latency` scenario ran, latency (p50, p99, p99.9, max, log
 * scale) against offered load for queries and for commands, beside their targets. It must open offline, from a mail attachment or a CI artifact, so uPlot's
 * JS and CSS (a small maintained canvas chart library, ~50 KB) are read from
 * node_modules and inlined, and the results are embedded as JSON.
 *
 * Gotchas: JSON inside <script> must not contain "</script>" — every "<" is escaped
 * as \u003c. The page sets `window.shoalCharts` to the number of charts it drew, so a
 * test (and a curious person) can tell a blank page from a finished one.
 *
 * The browser's locale plays no part: uPlot, as it loads, builds `new
 * Intl.NumberFormat(navigator.language)`, which throws on a tag Intl refuses — Chromium
 * reports `en-US@posix` under LANG=C.UTF-8 — and leaves no `uPlot` at all. So uPlot loads
 * seeing a fixed `en-US` (`uplotScript`), and the page formats every number it shows
 * (ticks and legend) with its own `num`, by the table's rule (`fmt`), never Intl.
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fmt, fmtBytes } from './progress.ts'
import { clusterLegend } from './cluster-results.ts'
import type { ClusterResults, HostFigures } from './cluster-results.ts'
import { baselineLegend, targetText } from './results.ts'
import type { BenchResults, SummaryRow } from './results.ts'

const require = createRequire(import.meta.url)

function asset (path: string): string {
  return readFileSync(require.resolve(path), 'utf8')
}

/**
 * uPlot's IIFE, run with a stand-in `navigator` (the only thing it reads from it is
 * `language`, once, for its default number format): see the module comment.
 */
function uplotScript (): string {
  return `var uPlot = (function (navigator) {\n${asset('uplot/dist/uPlot.iife.min.js')}\n;return uPlot;\n})({ language: 'en-US' });`
}

function esc (s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function cell (v: number, unit: string): string {
  if (unit === 'B') return Math.abs(v) < 4096 ? `${fmt(v)} B` : fmtBytes(v)
  if (unit === 'agents') return fmt(v)
  return `${fmt(v)} ${unit}`
}

function tableRow (r: SummaryRow): string {
  const target = r.target === null
    ? ''
    : `${esc(targetText(r, cell))} <b class="${r.met === true ? 'met' : 'missed'}">${r.met === true ? 'met' : 'MISSED'}</b>`
  return `<tr><td>${esc(r.name)}${r.note !== null ? `<div class="note">${esc(r.note)}</div>` : ''}</td>` +
    `<td class="num">${esc(cell(r.value, r.unit))}</td>` +
    `<td>${r.baseline === null ? '' : `${esc(cell(r.baseline.value, r.baseline.unit))} <span class="note">${esc(r.baseline.name)}</span>`}</td>` +
    `<td class="num">${r.ratio === null ? '' : `${r.ratio.toFixed(2)}×`}</td><td>${target}</td></tr>`
}

export function renderHtml (r: BenchResults): string {
  const c = r.config
  const data = JSON.stringify({ timeline: r.timeline, phases: r.phases, cluster: r.cluster?.timeline ?? null, latency: latencyCharts(r) }).replace(/</g, '\\u003c')
  const title = r.cluster !== null
    ? `Shoal cluster bench — ${r.cluster.hosts} hosts (${r.cluster.membership}), ${fmt(c.agents)} agents, ${c.workers} worker${c.workers === 1 ? '' : 's'} each`
    : `Shoal bench — ${fmt(c.agents)} agents, ${c.workers} workers, ${c.store}`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${asset('uplot/dist/uPlot.min.css')}</style>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1040px; color: #1d2530; padding: 0 16px; }
  h1 { font-size: 22px; margin-bottom: 4px; }
  .meta { color: #5b6573; margin: 0 0 16px; }
  table { border-collapse: collapse; width: 100%; margin: 12px 0 24px; }
  th, td { border-bottom: 1px solid #e3e6ea; padding: 6px 8px; text-align: left; vertical-align: top; }
  th { background: #f5f7f9; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .note { color: #6b7480; font-size: 12px; }
  .met { color: #16803c; } .missed { color: #b42318; }
  .chart { margin: 8px 0 28px; }
  h2 { font-size: 17px; margin: 24px 0 4px; }
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="meta">${esc(c.threadLayout)} · Node ${esc(r.machine.node)} · ${esc(r.machine.cpuModel)} · ${esc(fmtBytes(r.machine.totalMemoryBytes))} RAM ·
${esc(r.startedAt)} · ${(r.elapsedMs / 1000).toFixed(1)} s${c.storeNote !== null ? `<br>store: ${esc(c.storeNote)}` : ''}</p>
<table>
<thead><tr><th>figure</th><th>value</th><th>baseline (same run)</th><th>ratio</th><th>target</th></tr></thead>
<tbody>
${r.rows.map(tableRow).join('\n')}
</tbody>
</table>
${r.baselines !== null ? `<ul class="note">${baselineLegend.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>` : ''}
${r.cluster !== null ? clusterSection(r.cluster) : `<p class="note">Resident memory at the end ${esc(fmtBytes(r.final.rssBytes))}, peak ${esc(fmtBytes(r.final.peakRssBytes))}.
${r.memory !== null ? esc(r.memory.method) : ''}</p>
<h2>Throughput</h2>
<div id="throughput" class="chart"></div>
<h2>Memory</h2>
<div id="memory" class="chart"></div>
${r.latency !== null
    ? `<h2>Latency against offered load (open loop)</h2>
<p class="note">Calls sent on a fixed schedule at 25, 50 and 75% of the closed-loop maximum; latency from each call's intended send time (no coordinated omission). Log scale.</p>
<div id="latency-query" class="chart"></div>
<div id="latency-command" class="chart"></div>`
    : ''}
`}
<script>${uplotScript()}</script>
<script>
const DATA = ${data};
(function () {
  const tl = DATA.timeline;
  const xs = tl.map((s) => s.t / 1000);
  const colors = ['#1a73e8', '#d93025', '#188038', '#9334e6', '#e37400', '#12b5cb', '#5f6368', '#b06000'];
  const width = Math.min(1000, document.body.clientWidth - 16);
  const palette = ['rgba(66,133,244,0.07)', 'rgba(251,188,5,0.09)'];
  // shade each phase and print its name along the top edge
  const phaseBands = {
    hooks: {
      drawClear: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.font = (11 * devicePixelRatio) + 'px sans-serif';
        DATA.phases.forEach((p, i) => {
          // phases before the host started (the baselines) fall left of the data: clip them
          const x0 = Math.max(u.bbox.left, u.valToPos(p.startMs / 1000, 'x', true));
          const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(p.endMs / 1000, 'x', true));
          if (x1 <= x0) return;
          ctx.fillStyle = palette[i % 2];
          ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          ctx.fillStyle = '#5b6573';
          if (x1 - x0 > 30 * devicePixelRatio) ctx.fillText(p.name, x0 + 4, u.bbox.top + 14 * devicePixelRatio);
        });
        ctx.restore();
      }]
    }
  };
  // the table's rule (fmt in progress.ts) without Intl: whole numbers from 100, grouped
  // 1,234,567; below, 3 significant digits. (No regex here: this is a template literal.)
  const group = (digits) => digits.length > 3 ? group(digits.slice(0, -3)) + ',' + digits.slice(-3) : digits;
  const num = (v) => !Number.isFinite(v) ? String(v)
    : Math.abs(v) >= 100 ? (v < 0 ? '-' : '') + group(String(Math.round(Math.abs(v))))
    : String(Number(v.toPrecision(3)));
  // axis ticks of large counts: 1.5k, 2k, 12.5k, 1.2M
  const short = (x) => x.toFixed(1).replace('.0', '');
  const human = (v) => v >= 1e6 ? short(v / 1e6) + 'M' : v >= 1e3 ? short(v / 1e3) + 'k' : String(Math.round(v));
  // a log scale's unlabelled minor splits come as null
  const ticks = (u, vals) => vals.map((v) => v == null ? '' : num(v));
  const humanTicks = (u, vals) => vals.map((v) => v == null ? '' : human(v));
  // the legend's value under the cursor; null shows uPlot's "--"
  const value = (u, v) => v == null ? null : num(v);
  let drawn = 0;
  if (DATA.cluster !== null) {
    // one series per host: messages its agents ran per second, link frames it received per second
    const ct = DATA.cluster;
    const cxs = ct.map((s) => s.t / 1000);
    const ids = ct.length === 0 ? [] : [...new Set(ct.flatMap((s) => s.hosts.map((h) => h.id)))];
    const perHost = (field) => ids.map((id) => ct.map((s) => { const h = s.hosts.find((x) => x.id === id); return h === undefined ? null : h[field]; }));
    const hostSeries = ids.map((id, i) => ({ label: id, value, stroke: colors[i % colors.length], width: 2 }));
    for (const [el, field, label] of [['cluster-messages', 'messagesPerSec', 'messages/s'], ['cluster-links', 'linkFramesInPerSec', 'frames/s']]) {
      new uPlot({
        width, height: 300,
        scales: { x: { time: false } },
        axes: [{ label: 'seconds', values: ticks }, { label, size: 70, values: humanTicks }],
        series: [{ label: 'time (s)', value }, ...hostSeries],
        plugins: [phaseBands]
      }, [cxs, ...perHost(field)], document.getElementById(el));
      drawn++;
    }
    window.shoalCharts = drawn;
    return;
  }
  new uPlot({
    width, height: 300,
    scales: { x: { time: false } },
    axes: [{ label: 'seconds', values: ticks }, { label: 'messages/s', size: 70, values: humanTicks }],
    series: [{ label: 'time (s)', value }, { label: 'messages delivered/s', value, stroke: '#1a73e8', width: 2, fill: 'rgba(26,115,232,0.10)' }],
    plugins: [phaseBands]
  }, [xs, tl.map((s) => s.messagesPerSec)], document.getElementById('throughput'));
  drawn++;
  const MiB = 1024 * 1024;
  new uPlot({
    width, height: 300,
    scales: { x: { time: false }, agents: {} },
    axes: [
      { label: 'seconds', values: ticks },
      { label: 'MiB', size: 70, values: ticks },
      { side: 1, scale: 'agents', label: 'resident agents', size: 70, values: humanTicks, grid: { show: false } }
    ],
    series: [
      { label: 'time (s)', value },
      { label: 'RSS (MiB)', value, stroke: '#d93025', width: 2 },
      { label: 'main heap (MiB)', value, stroke: '#188038', width: 2 },
      { label: 'resident agents', value, stroke: '#9334e6', width: 2, dash: [6, 4], scale: 'agents' }
    ],
    plugins: [phaseBands]
  }, [xs, tl.map((s) => s.rssBytes / MiB), tl.map((s) => s.mainHeapUsedBytes / MiB), tl.map((s) => s.activeAgents)], document.getElementById('memory'));
  drawn++;
  // latency against offered load: one chart per call kind, p50 … max and the target
  for (const c of DATA.latency) {
    new uPlot({
      width, height: 300,
      title: c.title,
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [{ label: 'offered calls/s', values: humanTicks }, { label: 'latency (µs)', size: 70, values: ticks }],
      series: [
        { label: 'offered/s', value },
        { label: 'p50 (µs)', value, stroke: '#188038', width: 2, points: { show: true } },
        { label: 'p99 (µs)', value, stroke: '#1a73e8', width: 2, points: { show: true } },
        { label: 'p99.9 (µs)', value, stroke: '#9334e6', width: 2, points: { show: true } },
        { label: 'max (µs)', value, stroke: '#d93025', width: 1, points: { show: true } },
        { label: c.targetLabel, value, stroke: '#5b6573', width: 1, dash: [6, 4] }
      ]
    }, [c.offered, c.p50, c.p99, c.p999, c.max, c.target], document.getElementById('latency-' + c.kind));
    drawn++;
  }
  window.shoalCharts = drawn;
})();
</script>
</body>
</html>
`
}

function clusterSection (k: ClusterResults): string {
  const row = (h: HostFigures): string => `<tr><td>${esc(h.id)}</td><td class="num">${fmt(h.shardsServed)}</td><td class="num">${fmt(h.agentsOwned)}</td>` +
    `<td class="num">${fmt(h.linkFramesIn)}</td><td class="num">${fmt(h.linkFramesOut)}</td><td class="num">${esc(fmtBytes(h.linkBytesIn))}</td>` +
    `<td class="num">${esc(fmtBytes(h.linkBytesOut))}</td><td class="num">${esc(fmtBytes(h.rssBytes))}</td></tr>`
  return `<ul class="note">${clusterLegend.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
<h2>Cluster</h2>
<p class="meta">${esc(k.layout)}; ${k.membership} membership; started and settled in ${(k.startMs / 1000).toFixed(1)} s.
Casts counted: ${fmt(k.sameHost.casts + k.crossHost.casts - k.castsLost)} of ${fmt(k.sameHost.casts + k.crossHost.casts)}.
Remote call p50/p99 ${k.remoteCall.p50Us.toFixed(1)}/${k.remoteCall.p99Us.toFixed(1)} µs, same-host call ${k.sameHostCall.p50Us.toFixed(1)}/${k.sameHostCall.p99Us.toFixed(1)} µs,
raw ws→uWS ${k.rawWsRoundTrip.p50Us.toFixed(1)}/${k.rawWsRoundTrip.p99Us.toFixed(1)} µs.${k.linkNote !== null ? ` Link alone: ${esc(k.linkNote)}.` : ''}</p>
<table>
<thead><tr><th>host</th><th>shards served</th><th>agents owned</th><th>link frames in</th><th>link frames out</th><th>link bytes in</th><th>link bytes out</th><th>RSS</th></tr></thead>
<tbody>
${k.perHost.map(row).join('\n')}
</tbody>
</table>
<h2>Messages run per second, per host</h2>
<div id="cluster-messages" class="chart"></div>
<h2>Link frames received per second, per host</h2>
<div id="cluster-links" class="chart"></div>`
}

interface LatencyChart {
  readonly kind: 'query' | 'command'
  readonly title: string
  readonly targetLabel: string
  readonly offered: number[]
  readonly p50: number[]
  readonly p99: number[]
  readonly p999: number[]
  readonly max: number[]
  readonly target: number[]
}

/** The open-loop points as chart columns (log scale: latencies at least 1 µs). */
function latencyCharts (r: BenchResults): LatencyChart[] {
  const l = r.latency
  if (l === null) return []
  const floor = (v: number): number => Math.max(1, v)
  return [l.queries, l.commands].map((s) => {
    const target = s.kind === 'query' ? 1000 : l.fsync.p99Us + 2000
    return {
      kind: s.kind,
      title: s.kind === 'query' ? `queries (get): max ${fmt(s.maxPerSec)}/s closed loop` : `commands (add, reply after commit): max ${fmt(s.maxPerSec)}/s closed loop`,
      targetLabel: s.kind === 'query' ? 'target p99 at 50% (µs)' : 'target: raw fsync p99 + 2 ms (µs)',
      offered: s.points.map((p) => p.offeredPerSec),
      p50: s.points.map((p) => floor(p.latency.p50Us)),
      p99: s.points.map((p) => floor(p.latency.p99Us)),
      p999: s.points.map((p) => floor(p.latency.p999Us)),
      max: s.points.map((p) => floor(p.latency.maxUs)),
      target: s.points.map(() => target)
    }
  })
}

export function writeHtml (file: string, results: BenchResults): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, renderHtml(results))
}
