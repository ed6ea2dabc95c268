/**
 * The page's script. It runs in the browser, not in Node: page.ts inlines
 * `dashboardClient.toString()` into the HTML, so this function must be self-contained —
 * no import, no reference to anything outside its own body — and tsc only strips its
 * types (the project compiles without the DOM typings: browser globals are `any` here).
 *
 * What it does: opens the WebSocket (with the page's `?token=`, reconnecting with
 * backoff), keeps the samples the host pushes, and draws three views — the host (tiles,
 * six uPlot charts, per-worker table, quotas, events), the cluster (members, the shard
 * map on a canvas, links) and the agent lookup. Every value from the host is written
 * with `textContent`, never as HTML: agent states and keys are anyone's strings.
 *
 * Numbers are formatted by hand, never with Intl (see src/cli/report-html.ts: uPlot is
 * loaded seeing a fixed `en-US`, and Chromium may report a locale Intl refuses).
 * `window.shoalDashboard` exposes the page's state for tests and the curious.
 */
declare const document: any
declare const window: any
declare const WebSocket: any
declare const uPlot: any
declare const location: any
declare const IntersectionObserver: any

export interface ClientBoot {
  /** WebSocket path on the page's own origin. */
  readonly wsPath: string
}

export function dashboardClient (boot: ClientBoot): void {
  const palette = ['#1a73e8', '#d93025', '#188038', '#9334e6', '#e8710a', '#12b5cb', '#c2185b', '#795548', '#5f6368', '#0b8043', '#3f51b5', '#ff6d00']
  const st: any = { connected: false, hello: null, samples: [], last: null, cluster: null, map: null, view: 'host', charts: 0, events: [], lookup: null, lookupSeq: 0, messages: 0, stale: {} }
  window.shoalDashboard = st
  const $ = (id: string): any => document.getElementById(id)

  // ---- numbers, without Intl -----------------------------------------------------------
  const group = (digits: string): string => digits.length > 3 ? group(digits.slice(0, -3)) + ',' + digits.slice(-3) : digits
  const num = (v: any): string => typeof v !== 'number' || !Number.isFinite(v) ? String(v)
    : Math.abs(v) >= 100 ? (v < 0 ? '-' : '') + group(String(Math.round(Math.abs(v))))
      : String(Number(v.toPrecision(3)))
  const short = (x: number): string => x.toFixed(1).replace('.0', '')
  const human = (v: number): string => Math.abs(v) >= 1e9 ? short(v / 1e9) + 'G' : Math.abs(v) >= 1e6 ? short(v / 1e6) + 'M' : Math.abs(v) >= 1e3 ? short(v / 1e3) + 'k' : num(v)
  const bytes = (v: number): string => v >= 1073741824 ? short(v / 1073741824) + ' GiB' : v >= 1048576 ? short(v / 1048576) + ' MiB' : v >= 1024 ? short(v / 1024) + ' KiB' : num(v) + ' B'
  const us = (v: number): string => v >= 1000 ? num(v / 1000) + ' ms' : num(v) + ' µs'
  const ms = (v: number): string => num(v) + ' ms'
  const duration = (v: number): string => v >= 86400000 ? num(v / 86400000) + ' d' : v >= 3600000 ? num(v / 3600000) + ' h' : v >= 60000 ? num(v / 60000) + ' min' : v >= 1000 ? num(v / 1000) + ' s' : ms(v)
  const clock = (t: number): string => {
    const d = new Date(t)
    const two = (n: number): string => (n < 10 ? '0' : '') + n
    return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds())
  }

  // ---- DOM helpers (textContent only) ----------------------------------------------------
  const el = (tag: string, text?: any, cls?: string): any => {
    const e = document.createElement(tag)
    if (text !== undefined && text !== null) e.textContent = String(text)
    if (cls !== undefined) e.className = cls
    return e
  }
  const row = (cells: any[], numeric?: boolean[]): any => {
    const tr = el('tr')
    cells.forEach((c, i) => { tr.appendChild(el('td', c, numeric !== undefined && numeric[i] === true ? 'num' : undefined)) })
    return tr
  }
  const fill = (tbody: any, rows: any[]): void => {
    tbody.replaceChildren(...rows)
  }

  // ---- views -----------------------------------------------------------------------------
  const show = (view: string): void => {
    st.view = view
    for (const v of ['host', 'cluster', 'agent']) {
      $('view-' + v).hidden = v !== view
      $('tab-' + v).classList.toggle('active', v === view)
    }
    if (view === 'host') { fitCharts(); drawCharts(); renderHost() }
    if (view === 'cluster') renderCluster()
  }
  for (const v of ['host', 'cluster', 'agent']) $('tab-' + v).addEventListener('click', () => show(v))

  // ---- charts ------------------------------------------------------------------------------
  const value = (_u: any, v: any): any => v == null ? null : num(v)
  const axisNum = (_u: any, vals: number[]): string[] => vals.map(num)
  const axisHuman = (_u: any, vals: number[]): string[] => vals.map(human)
  const axisBytes = (_u: any, vals: number[]): string[] => vals.map(bytes)
  const charts: any[] = []
  const maxOf = (a: any[], f: (w: any) => number): number => a.reduce((m: number, w: any) => Math.max(m, f(w)), 0)

  /** One chart: its element, its series (label, scale, how to read a sample), its axes. */
  const defs = (workers: number): any[] => {
    const per = (label: string, f: (w: any) => number, opts: any = {}): any[] => {
      const out: any[] = []
      for (let i = 0; i < workers; i++) out.push({ label: label + ' w' + (i + 1), read: (s: any) => s.workers[i] === undefined ? null : f(s.workers[i]), stroke: palette[i % palette.length], ...opts })
      return out
    }
    const dashed = { dash: [6, 4] }
    return [
      { id: 'chart-messages', y: 'messages/s', fmt: axisHuman, series: [...per('in', (w) => w.messagesInPerSec), ...per('out', (w) => w.messagesOutPerSec, dashed)] },
      {
        id: 'chart-agents', y: 'resident agents', fmt: axisHuman, y2: 'activations/s',
        series: [...per('resident', (w) => w.activeAgents), ...per('activations/s', (w) => w.activationsPerSec, { ...dashed, scale: 'r' })]
      },
      {
        id: 'chart-latency', y: 'ms', fmt: axisNum,
        series: [
          { label: 'call p50', read: (s: any) => s.calls.p50Us / 1000, stroke: palette[0] },
          { label: 'call p99', read: (s: any) => s.calls.p99Us / 1000, stroke: palette[0], dash: [6, 4] },
          { label: 'commit p50 (slowest worker)', read: (s: any) => maxOf(s.workers, (w) => w.commitP50Ms), stroke: palette[1] },
          { label: 'commit p99 (slowest worker)', read: (s: any) => maxOf(s.workers, (w) => w.commitP99Ms), stroke: palette[1], dash: [6, 4] }
        ]
      },
      {
        id: 'chart-commits', y: 'states per commit', fmt: axisHuman, y2: 'commits/s',
        series: [...per('batch', (w) => w.meanBatch), ...per('commits/s', (w) => w.commitsPerSec, { ...dashed, scale: 'r' })]
      },
      {
        id: 'chart-gc', y: 'ms paused per second', fmt: axisNum,
        series: [{ label: 'main', read: (s: any) => s.mainGc.msPerSec, stroke: palette[palette.length - 1] }, ...per('gc', (w) => w.gcMsPerSec)]
      },
      { id: 'chart-rings', y: 'bytes', fmt: axisBytes, series: [...per('ring depth', (w) => w.ringDepthBytes), ...per('overflow', (w) => w.overflowBytes, dashed)] }
    ]
  }

  const chartData = (d: any): any[] => {
    const s = st.samples
    return [s.map((x: any) => x.uptimeS), ...d.series.map((ser: any) => s.map((x: any) => { const v = ser.read(x); return v == null || !Number.isFinite(v) ? null : v }))]
  }

  const buildCharts = (): void => {
    for (const c of charts) c.plot.destroy()
    charts.length = 0
    const workers = st.hello.workers
    for (const d of defs(workers)) {
      const box = $(d.id)
      box.replaceChildren()
      const width = Math.max(320, box.clientWidth || 520)
      const axes: any[] = [
        { label: 'host uptime (s)', values: axisNum },
        { label: d.y, size: 70, values: d.fmt }
      ]
      const scales: any = { x: { time: false } }
      if (d.y2 !== undefined) {
        scales.r = {}
        axes.push({ side: 1, scale: 'r', label: d.y2, size: 70, values: axisHuman, grid: { show: false } })
      }
      const plot = new uPlot({
        width, height: 220, scales, axes,
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        series: [{ label: 'uptime (s)', value }, ...d.series.map((s: any) => ({ label: s.label, value, stroke: s.stroke, width: 1.5, dash: s.dash, scale: s.scale ?? 'y', spanGaps: true, points: { show: false } }))]
      }, chartData(d), box)
      charts.push({ def: d, plot })
      seen?.observe(box)
    }
    st.charts = charts.length
  }

  /** Charts built while their view was hidden (a reconnect on another tab), or a resized window: fit their boxes again. */
  const fitCharts = (): void => {
    for (const c of charts) {
      const w = $(c.def.id).clientWidth
      if (w > 0 && Math.abs(w - c.plot.width) > 2) c.plot.setSize({ width: w, height: 220 })
    }
  }
  let resizing: any = null
  window.addEventListener('resize', () => {
    if (resizing !== null) clearTimeout(resizing)
    resizing = setTimeout(() => { resizing = null; if (st.view === 'host') fitCharts() }, 150)
  })

  // a chart scrolled out of sight is not redrawn (the browser's drawing is most of what an
  // open page costs); it catches up when it comes back into view
  const visible = new Set<string>()
  const seen = typeof IntersectionObserver === 'function'
    ? new IntersectionObserver((entries: any[]) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          visible.add(e.target.id)
          const c = charts.find((x) => x.def.id === e.target.id)
          if (c !== undefined && st.view === 'host') c.plot.setData(chartData(c.def))
        } else visible.delete(e.target.id)
      }
    })
    : null
  const drawCharts = (): void => {
    if (st.hello === null || st.view !== 'host') return
    for (const c of charts) if (seen === null || visible.has(c.def.id)) c.plot.setData(chartData(c.def))
  }

  // ---- host view ---------------------------------------------------------------------------
  const renderHost = (): void => {
    const s = st.last
    if (s === null || st.view !== 'host') return
    $('tile-agents').textContent = num(s.activeAgents)
    $('tile-messages').textContent = human(s.messagesPerSec)
    $('tile-activations').textContent = human(s.activationsPerSec)
    $('tile-calls').textContent = human(s.calls.perSec)
    $('tile-call-p50').textContent = s.calls.perSec > 0 ? us(s.calls.p50Us) : '—'
    $('tile-call-p99').textContent = s.calls.perSec > 0 ? us(s.calls.p99Us) : '—'
    $('tile-pending').textContent = num(s.pendingCalls)
    $('tile-gc').textContent = ms(Math.max(s.mainGc.maxMs, maxOf(s.workers, (w) => w.gcMaxMs)))
    fill($('workers'), s.workers.map((w: any) => row([
      w.thread, w.alive ? 'up' : 'down', num(w.activeAgents), num(w.activationsPerSec), num(w.messagesInPerSec), num(w.messagesOutPerSec),
      bytes(w.ringDepthBytes), bytes(w.overflowBytes), num(w.meanBatch), ms(w.commitP50Ms), ms(w.commitP99Ms),
      ms(w.gcMsPerSec), num(w.gcPausesPerSec), ms(w.gcMaxMs), num(w.busyAgents), num(w.timers), num(w.reminders), num(w.restarts), num(w.rateLimitedPerSec)
    ], [true, false, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true])))
    fill($('quotas'), s.quotas.map((q: any) => row([q.quota, q.limit === null ? 'none' : num(q.limit), num(q.count), q.limit === null || q.limit === 0 ? '' : num(100 * q.count / q.limit) + ' %'], [false, true, true, true])))
  }

  const addEvents = (events: any[]): void => {
    for (const e of events) st.events.unshift(e)
    if (st.events.length > 200) st.events.length = 200
    fill($('events'), st.events.map((e: any) => {
      const li = el('li')
      li.appendChild(el('span', clock(e.at), 'when'))
      li.appendChild(el('span', e.kind, 'kind ' + e.kind))
      li.appendChild(el('span', e.text))
      return li
    }))
  }

  // ---- cluster view ------------------------------------------------------------------------
  const hostColor = (i: number): string => i < 0 ? '#d0d4d9' : palette[i % palette.length]!
  const renderMap = (): void => {
    const m = st.map
    const canvas = $('shard-map')
    if (m === null || canvas === null) return
    const cell = 8
    const ctx = canvas.getContext('2d')
    ctx.clearRect(0, 0, canvas.width, canvas.height)
    const moving = new Map<number, number>()
    for (const [shard, , to] of m.moves) moving.set(shard, to)
    let owned = 0
    const counts = m.hosts.map(() => 0)
    for (let s = 0; s < m.owner.length; s++) {
      const o = m.owner[s]
      if (o >= 0) { owned++; counts[o]++ }
      const x = (s % 64) * cell
      const y = Math.floor(s / 64) * cell
      ctx.fillStyle = hostColor(o)
      ctx.fillRect(x, y, cell - 1, cell - 1)
      const to = moving.get(s)
      if (to !== undefined) {
        ctx.fillStyle = hostColor(to)
        ctx.fillRect(x + 2, y + 2, cell - 5, cell - 5)
      }
    }
    st.mapOwned = owned
    $('map-owned').textContent = num(owned) + ' of ' + num(m.owner.length) + ' shards have an owner · ' + num(m.moves.length) + ' moving · map epoch ' + m.epoch
    fill($('map-legend'), m.hosts.map((h: string, i: number) => {
      const li = el('li')
      const sw = el('span', '', 'swatch')
      sw.style.background = hostColor(i)
      li.appendChild(sw)
      li.appendChild(el('span', h + ': ' + num(counts[i]) + ' shards'))
      return li
    }))
  }
  $('shard-map').addEventListener('mousemove', (ev: any) => {
    const m = st.map
    if (m === null) return
    const r = ev.target.getBoundingClientRect()
    const col = Math.floor((ev.clientX - r.left) / (r.width / 64))
    const line = Math.floor((ev.clientY - r.top) / (r.height / 64))
    const s = line * 64 + col
    if (s < 0 || s >= m.owner.length) return
    const o = m.owner[s]
    const move = m.moves.find((x: any) => x[0] === s)
    $('map-hover').textContent = 'shard ' + s + ': ' + (o >= 0 ? m.hosts[o] : 'no owner') + (move !== undefined ? ', moving to ' + m.hosts[move[2]] : '')
  })

  const lease = (c: any): string => c === null ? '' : c.lease === null ? 'static list (no lease)' : (c.lease.fenced ? 'FENCED · ' : 'alive · ') + 'lease ' + (c.lease.id ?? '—') + ', TTL ' + c.lease.ttlS + ' s'
  const renderCluster = (): void => {
    const c = st.cluster
    if (c === null || st.view !== 'cluster') return
    let moving = 0
    for (const h of c.hosts) if (h.sample !== null && h.sample.cluster !== null) moving += h.sample.cluster.shardsMoving
    $('cluster-summary').textContent = 'map epoch ' + c.epoch + ' · ' + c.hosts.length + ' members · leader ' + (c.leader ?? 'none (static list)') + ' · ' + moving + ' shards moving (as the hosts report them)'
    fill($('members'), c.hosts.map((h: any) => {
      const s = h.sample
      const cl = s === null ? null : s.cluster
      return row([
        h.id + (h.id === c.self ? ' (this host)' : ''), h.address, h.state, cl === null ? '' : lease(cl),
        cl === null ? '' : cl.epoch, cl === null ? '' : num(cl.shardsServed), cl === null ? '' : num(cl.shardsMoving),
        s === null ? '' : num(s.activeAgents), s === null ? '' : human(s.messagesPerSec),
        cl === null ? '' : cl.links.filter((l: any) => l.state === 'up').length + ' / ' + cl.links.length,
        h.error !== null ? 'no answer: ' + h.error : s === null ? 'waiting…' : clock(s.at)
      ], [false, false, false, false, true, true, true, true, true, true, false])
    }))
    const links: any[] = []
    const traffic: any[] = []
    for (const h of c.hosts) {
      const cl = h.sample === null ? null : h.sample.cluster
      if (cl === null) continue
      for (const l of cl.links) {
        links.push(row([h.id + ' → ' + l.peer, l.state, human(l.framesInPerSec), human(l.framesOutPerSec), bytes(l.bytesInPerSec) + '/s', bytes(l.bytesOutPerSec) + '/s',
          bytes(l.queuedBytes), l.rttMs < 0 ? '—' : ms(l.rttMs), num(l.droppedFrames)], [false, false, true, true, true, true, true, true, true]))
      }
      const refused = Object.entries(cl.refusedPeers).map(([k, n]) => k + ' ' + n).join(', ')
      traffic.push(row([h.id, human(cl.forwardedPerSec), num(cl.held), num(cl.unroutable), num(cl.callsInFlight), num(cl.refusedFrames), refused === '' ? 'none' : refused],
        [false, true, true, true, true, true, false]))
    }
    fill($('links'), links)
    fill($('traffic'), traffic)
    renderMap()
  }

  // ---- agent lookup --------------------------------------------------------------------------
  const renderLookup = (m: any): void => {
    const box = $('lookup-result')
    box.replaceChildren()
    if (!m.ok) { box.appendChild(el('p', m.error, 'error')); return }
    const r = m.result
    const dl = el('dl')
    const item = (k: string, v: any): void => { dl.appendChild(el('dt', k)); dl.appendChild(el('dd', v)) }
    item('agent', r.id.quota + ' / ' + r.id.type + ' / ' + r.id.key)
    item('host', r.host + (r.served ? '' : ' (does not serve its shard now)'))
    item('worker', r.thread === 0 ? 'main thread (workers: 0)' : 'worker ' + r.thread)
    item('shard', r.shard)
    item('active', r.active ? (r.busy ? 'yes, in an async turn' : 'yes, resident') : 'no (passivated or never activated)')
    item('committed state', r.stateFrom === null ? 'none' : r.stateFrom === 'store' ? 'stored, ' + bytes(r.stateBytes) : 'memory only (durable: false), resident')
    if (r.note !== null) item('note', r.note)
    if (r.error !== null) item('error', r.error)
    box.appendChild(dl)
    if (r.stateText !== null) box.appendChild(el('pre', r.stateText, 'state'))
    box.appendChild(el('h3', 'Storage keys (' + r.storageKeys.length + (r.moreStorageKeys ? '+' : '') + ')'))
    const keys = el('ul', undefined, 'keys')
    for (const k of r.storageKeys) keys.appendChild(el('li', k))
    if (r.storageKeys.length === 0) keys.appendChild(el('li', 'none'))
    box.appendChild(keys)
    box.appendChild(el('h3', 'Pending reminders (' + r.reminders.length + ')'))
    const t = el('table')
    const body = el('tbody')
    for (const x of r.reminders) body.appendChild(row([x.name, clock(x.dueAt) + ' (' + new Date(x.dueAt).toISOString() + ')', x.everyMs === 0 ? 'once' : 'every ' + duration(x.everyMs)]))
    if (r.reminders.length === 0) body.appendChild(row(['none', '', '']))
    t.appendChild(body)
    box.appendChild(t)
  }
  $('lookup-form').addEventListener('submit', (ev: any) => {
    ev.preventDefault()
    if (st.ws === undefined || st.ws === null || !st.connected) return
    st.lookupSeq++
    $('lookup-result').replaceChildren(el('p', 'looking up…'))
    st.ws.send(JSON.stringify({ t: 'lookup', seq: st.lookupSeq, quota: $('lookup-quota').value, type: $('lookup-type').value, key: $('lookup-key').value }))
  })

  // ---- the socket --------------------------------------------------------------------------
  const onMessage = (m: any): void => {
    st.messages++
    if (m.t === 'hello') {
      st.hello = m
      st.samples = m.history.slice()
      st.last = st.samples.length === 0 ? null : st.samples[st.samples.length - 1]
      $('host-id').textContent = m.host
      document.title = 'Shoal — ' + m.host
      $('tab-cluster').hidden = !m.clustered
      const types = $('lookup-type')
      types.replaceChildren(...m.types.map((t: string) => { const o = el('option', t); o.value = t; return o }))
      st.events = []
      addEvents(m.events.slice().reverse())
      buildCharts()
      renderHost()
    } else if (m.t === 'sample') {
      st.samples.push(m.s)
      const keep = st.hello === null ? 300 : st.hello.historySize
      if (st.samples.length > keep) st.samples.splice(0, st.samples.length - keep)
      st.last = m.s
      $('updated').textContent = clock(m.s.at)
      drawCharts()
      renderHost()
    } else if (m.t === 'events') {
      addEvents(m.e)
    } else if (m.t === 'cluster') {
      st.cluster = m
      if (m.map !== undefined) st.map = m.map
      renderCluster()
    } else if (m.t === 'lookup') {
      if (m.seq !== st.lookupSeq) return
      st.lookup = m
      renderLookup(m)
    }
  }

  let backoff = 500
  const connect = (): void => {
    const token = new URLSearchParams(location.search).get('token')
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + boot.wsPath + (token === null ? '' : '?token=' + encodeURIComponent(token))
    const ws = new WebSocket(url)
    st.ws = ws
    $('status').textContent = 'connecting…'
    ws.onopen = () => { st.connected = true; backoff = 500; $('status').textContent = 'live'; $('status').className = 'live' }
    ws.onmessage = (ev: any) => { onMessage(JSON.parse(ev.data)) }
    ws.onclose = () => {
      st.connected = false
      $('status').textContent = 'disconnected — retrying'
      $('status').className = 'down'
      setTimeout(connect, backoff)
      backoff = Math.min(5000, backoff * 2)
    }
  }
  connect()
}
