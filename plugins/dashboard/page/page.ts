/**
 * The dashboard's one page: HTML, CSS, uPlot and the client script (client.ts) in one
 * document, so it works with no network — nothing is fetched but its own WebSocket. It
 * holds no figure and no token: everything comes over the WebSocket, which the page opens
 * with the `?token=` of its own URL.
 *
 * uPlot is inlined as the HTML report inlines it (src/cli/report-html.ts): read from
 * node_modules once, and run seeing a fixed `navigator.language` of 'en-US', because
 * uPlot builds an Intl.NumberFormat from it as it loads and Chromium may report a tag
 * Intl refuses. Built once per plugin, at start.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dashboardClient } from './client.ts'
import type { ClientBoot } from './client.ts'

const require = createRequire(import.meta.url)

function asset (path: string): string {
  return readFileSync(require.resolve(path), 'utf8')
}

/** JSON inside <script>: no "</script>" can close it early. */
function scriptJson (value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c')
}

const css = `
  :root { color-scheme: light; }
  body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #1d2530; background: #f6f7f9; }
  header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #fff; border-bottom: 1px solid #e3e6ea; position: sticky; top: 0; z-index: 2; }
  header h1 { font-size: 16px; margin: 0; }
  header .meta { color: #5b6573; }
  #status.live { color: #16803c; } #status.down { color: #b42318; }
  nav { margin-left: auto; display: flex; gap: 4px; }
  nav button { font: inherit; border: 1px solid #d0d4d9; background: #fff; padding: 4px 12px; border-radius: 4px; cursor: pointer; }
  nav button.active { background: #1a73e8; border-color: #1a73e8; color: #fff; }
  main { padding: 12px 20px 40px; max-width: 1400px; margin: 0 auto; }
  h2 { font-size: 15px; margin: 20px 0 6px; }
  h3 { font-size: 13px; margin: 14px 0 4px; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 8px; }
  .tile { background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; padding: 8px 10px; }
  .tile b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
  .tile span { color: #5b6573; font-size: 12px; }
  .charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px; margin-top: 10px; }
  .chart { background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; padding: 6px; min-width: 0; }
  .chart h3 { margin: 2px 4px 4px; }
  .chart .u-legend { font-size: 11px; }
  .chart .u-legend th { font-weight: 500; }
  .chart .u-legend .u-series:first-child { display: none; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 6px; text-align: left; vertical-align: top; white-space: nowrap; }
  th { background: #f0f2f5; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .scroll { overflow-x: auto; }
  #events { list-style: none; padding: 0; margin: 0; max-height: 260px; overflow-y: auto; background: #fff; border: 1px solid #e3e6ea; }
  #events li { padding: 3px 8px; border-bottom: 1px solid #f0f2f5; display: flex; gap: 10px; }
  #events .when { color: #5b6573; font-variant-numeric: tabular-nums; }
  #events .kind { font-weight: 600; min-width: 110px; }
  #events .agent-error { color: #b42318; } #events .worker-restart { color: #e8710a; } #events .cluster-change { color: #1a73e8; }
  .map { display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }
  #shard-map { width: 512px; height: 512px; background: #fff; border: 1px solid #e3e6ea; image-rendering: pixelated; }
  #map-legend { list-style: none; padding: 0; margin: 6px 0; }
  #map-legend li { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
  .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
  .note { color: #5b6573; }
  form { display: flex; gap: 8px; align-items: end; flex-wrap: wrap; background: #fff; border: 1px solid #e3e6ea; padding: 10px; border-radius: 6px; }
  label { display: flex; flex-direction: column; font-size: 12px; color: #5b6573; gap: 2px; }
  input, select { font: inherit; padding: 4px 6px; min-width: 160px; }
  #lookup-key { min-width: 280px; }
  form button { font: inherit; padding: 5px 14px; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; background: #fff; border: 1px solid #e3e6ea; padding: 10px; border-radius: 6px; }
  dt { color: #5b6573; } dd { margin: 0; }
  pre.state { background: #fff; border: 1px solid #e3e6ea; padding: 10px; max-height: 360px; overflow: auto; border-radius: 6px; }
  .error { color: #b42318; }
  .keys { background: #fff; border: 1px solid #e3e6ea; margin: 0; padding: 6px 24px; max-height: 200px; overflow: auto; }
  footer { color: #5b6573; padding: 0 20px 20px; }
`

const body = `
<header>
  <h1>Shoal</h1>
  <span class="meta">host <b id="host-id">…</b> · <span id="status">connecting…</span> · updated <span id="updated">—</span></span>
  <nav>
    <button id="tab-host" class="active" type="button">Host</button>
    <button id="tab-cluster" type="button" hidden>Cluster</button>
    <button id="tab-agent" type="button">Agent lookup</button>
  </nav>
</header>
<main>
<section id="view-host">
  <div class="tiles">
    <div class="tile"><b id="tile-agents">—</b><span>agents resident</span></div>
    <div class="tile"><b id="tile-messages">—</b><span>messages/s</span></div>
    <div class="tile"><b id="tile-activations">—</b><span>activations/s</span></div>
    <div class="tile"><b id="tile-calls">—</b><span>calls/s</span></div>
    <div class="tile"><b id="tile-call-p50">—</b><span>call p50</span></div>
    <div class="tile"><b id="tile-call-p99">—</b><span>call p99</span></div>
    <div class="tile"><b id="tile-pending">—</b><span>calls pending</span></div>
    <div class="tile"><b id="tile-gc">—</b><span>longest GC pause</span></div>
  </div>
  <div class="charts">
    <div class="chart"><h3>Messages per worker (in —, out - -)</h3><div id="chart-messages"></div></div>
    <div class="chart"><h3>Agents resident and activations/s per worker</h3><div id="chart-agents"></div></div>
    <div class="chart"><h3>Latency: calls and commits, p50 and p99</h3><div id="chart-latency"></div></div>
    <div class="chart"><h3>Commit batch size and commits/s per worker</h3><div id="chart-commits"></div></div>
    <div class="chart"><h3>GC pauses per thread</h3><div id="chart-gc"></div></div>
    <div class="chart"><h3>Ring depth and overflow per worker</h3><div id="chart-rings"></div></div>
  </div>
  <h2>Workers</h2>
  <div class="scroll"><table>
    <thead><tr><th>thread</th><th></th><th>resident</th><th>activations/s</th><th>msgs in/s</th><th>msgs out/s</th><th>ring depth</th><th>overflow</th>
    <th>batch</th><th>commit p50</th><th>commit p99</th><th>GC ms/s</th><th>GC pauses/s</th><th>longest GC</th><th>busy</th><th>timers</th><th>reminders</th><th>restarts</th><th>rate-limited/s</th></tr></thead>
    <tbody id="workers"></tbody>
  </table></div>
  <h2>Quotas</h2>
  <table><thead><tr><th>quota</th><th>limit</th><th>agents</th><th>used</th></tr></thead><tbody id="quotas"></tbody></table>
  <h2>Events</h2>
  <p class="note">Worker restarts and cluster changes; agent errors while a page is open (workers report them only while someone listens).</p>
  <ul id="events"></ul>
</section>
<section id="view-cluster" hidden>
  <p id="cluster-summary" class="note">waiting for the cluster…</p>
  <h2>Members</h2>
  <div class="scroll"><table>
    <thead><tr><th>host</th><th>address</th><th>state</th><th>lease</th><th>epoch</th><th>shards served</th><th>moving</th><th>agents</th><th>msgs/s</th><th>links up</th><th>figures</th></tr></thead>
    <tbody id="members"></tbody>
  </table></div>
  <h2>Shard map</h2>
  <div class="map">
    <canvas id="shard-map" width="512" height="512"></canvas>
    <div><p id="map-owned" class="note">no map yet</p><ul id="map-legend"></ul><p id="map-hover" class="note">Each square is one of the 4,096 shards, coloured by its owner; an inner square in another colour is a move in progress to that host.</p></div>
  </div>
  <h2>Links</h2>
  <div class="scroll"><table>
    <thead><tr><th>link</th><th>state</th><th>frames in/s</th><th>frames out/s</th><th>bytes in</th><th>bytes out</th><th>queue</th><th>RTT</th><th>dropped</th></tr></thead>
    <tbody id="links"></tbody>
  </table></div>
  <h2>Forwards and refusals</h2>
  <div class="scroll"><table>
    <thead><tr><th>host</th><th>forwards/s</th><th>held</th><th>unroutable</th><th>calls in flight</th><th>refused frames</th><th>refused peers</th></tr></thead>
    <tbody id="traffic"></tbody>
  </table></div>
</section>
<section id="view-agent" hidden>
  <h2>Look up an agent</h2>
  <form id="lookup-form">
    <label>quota <input id="lookup-quota" value="default" autocomplete="off"></label>
    <label>type <select id="lookup-type"></select></label>
    <label>key <input id="lookup-key" autocomplete="off"></label>
    <button type="submit">Look up</button>
  </form>
  <p class="note">Read-only: the agent is not activated and no handler runs. The committed state is what the store holds.</p>
  <div id="lookup-result"></div>
</section>
</main>
<footer>Shoal dashboard · read-only · live over a WebSocket, nothing else is fetched.</footer>
`

export function renderPage (boot: ClientBoot): string {
  const uplot = `var uPlot = (function (navigator) {\n${asset('uplot/dist/uPlot.iife.min.js')}\n;return uPlot;\n})({ language: 'en-US' });`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal dashboard</title>
<style>${asset('uplot/dist/uPlot.min.css')}</style>
<style>${css}</style>
</head>
<body>
${body}
<script>${uplot}</script>
<script>(${dashboardClient.toString()})(${scriptJson(boot)});</script>
</body>
</html>
`
}
