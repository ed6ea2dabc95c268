/**
 * The dashboard plugin: `createHost({ plugins: [dashboard({ port })] })` serves a live page
 * of the host — and, with the cluster plugin, of the whole cluster — from the host itself,
 * with no other service (docs/dashboard.md). It wires:
 *
 *   sampler.ts          host.stats() → one HostSample per interval, rates and percentiles
 *   server.ts           the page and its WebSocket, on the cluster's uWS app or its own
 *   access.ts           token, Host and Origin checks
 *   cluster-figures.ts  the other hosts' figures, asked over the cluster's links
 *   lookup.ts           the agent lookup (read-only), on the host that serves the agent
 *   page/               the page: HTML, CSS, uPlot and the client script in one document
 *
 * Lifecycle: setup keeps the host; start — when every plugin is set up, whatever the
 * order they were listed in — finds the cluster plugin's shared app ('uws') and peers
 * ('cluster-peers'), or listens on its own; then samples every interval (an unref'd
 * timer: the dashboard never keeps a process alive). close stops sampling and closes
 * every page (and its own server).
 *
 * Costs, when no page is open: one `host.stats()` per interval and the call-latency
 * window (two clock readings per call). A page open adds one JSON message per interval
 * and, with the cluster, one ask per other host per interval; agent errors are listened
 * to only while a page is open (workers report them only while someone listens).
 */
import { hostname } from 'node:os'
import { HostClosedError, InvalidOptionError, messageOf } from '../../native-free-core/errors.ts'
import { printable, idString } from '../../native-free-core/agent/agent-id.ts'
import type { HostPlugin, PluginHost } from '../../src/host/plugin.ts'
import type { AgentErrorEvent, ClusterChangeEvent, WorkerRestartEvent } from '../../src/host/host-events.ts'
import type { CallLatencyWindow } from '../../src/observe/call-latency.ts'
import type { TemplatedApp } from 'uWebSockets.js'
import type { ClusterPeers } from '../cluster/peer-asks.ts'
import { AccessGate, isLoopback } from './access.ts'
import { ClusterFigures, SAMPLE_TOPIC } from './cluster-figures.ts'
import type { DashboardEvent, HostSample } from './figures.ts'
import { INSPECT_TOPIC, STORAGE_KEYS, checkQuery, lookUp, lookUpHere } from './lookup.ts'
import type { LookupQuery } from './lookup.ts'
import { resolveDashboardOptions } from './options.ts'
import type { DashboardOptions, ResolvedDashboardOptions } from './options.ts'
import { renderPage } from './page/page.ts'
import { Sampler } from './sampler.ts'
import { BASE_PATH, DashboardServer } from './server.ts'
import type { Viewer } from './server.ts'

/** What the cluster plugin provides as 'uws' (plugins/cluster/cluster-plugin.ts). */
interface SharedApp {
  readonly app: TemplatedApp
  readonly host: string
  readonly port: number
}

/** Agent errors shown per interval; more are counted in one line (a flood of rate-limited casts must not flood the page). */
const MAX_ERRORS_PER_INTERVAL = 20
const MAX_EVENTS = 200
const MAX_LOOKUPS_IN_FLIGHT = 2

export class DashboardPlugin implements HostPlugin {
  readonly name = 'dashboard'
  private readonly options: ResolvedDashboardOptions
  private host!: PluginHost
  private server: DashboardServer | null = null
  private gate!: AccessGate
  private sampler: Sampler | null = null
  private latency: CallLatencyWindow | null = null
  private peers: ClusterPeers | undefined
  private clusterFigures: ClusterFigures | null = null
  private timer: NodeJS.Timeout | null = null
  private page: string | null = null
  private id = ''
  private readonly events: DashboardEvent[] = []
  private pending: DashboardEvent[] = []
  private errorsThisInterval = 0
  private errorsDropped = 0
  private listeningErrors = false
  private closed = false

  constructor (options: DashboardOptions = {}) {
    this.options = resolveDashboardOptions(options)
  }

  /** The page's address once started, e.g. `http://127.0.0.1:7400/dashboard/` (add `?token=…` when the dashboard has one). */
  get url (): string | null {
    const s = this.server
    if (s === null) return null
    const host = s.host === '0.0.0.0' || s.host === '::' ? '127.0.0.1' : s.host.includes(':') ? `[${s.host}]` : s.host
    return `http://${host}:${s.port}${BASE_PATH}`
  }

  /** @internal */
  setup (host: PluginHost): void {
    this.host = host
  }

  /** @internal */
  async start (): Promise<void> {
    const o = this.options
    const host = this.host
    this.peers = host.use<ClusterPeers>('cluster-peers')
    this.id = this.peers?.self ?? hostname()
    const shared = host.use<SharedApp>('uws')
    const bind = shared?.host ?? o.host ?? '127.0.0.1'
    if (shared !== undefined && (o.port !== null || o.host !== null)) {
      throw new InvalidOptionError(o.port !== null ? 'dashboard.port' : 'dashboard.host', o.port ?? o.host,
        `must be omitted with the cluster plugin: the dashboard is served by the cluster's link server (${shared.host}:${shared.port}), one port per host`)
    }
    if (o.token === null && !isLoopback(bind)) {
      throw new InvalidOptionError('dashboard.token', undefined, `is required: the dashboard would be served on ${bind}, which is not a loopback address`)
    }
    this.gate = new AccessGate(o.token)
    this.latency = host.callLatency()
    this.sampler = new Sampler({
      id: this.id,
      stats: () => host.stats(),
      quotas: () => host.quotaList(),
      latency: this.latency,
      peers: this.peers
    }, o.history)
    this.sampler.take()
    this.page = renderPage({ wsPath: `${BASE_PATH}ws` })
    if (this.peers !== undefined) {
      this.clusterFigures = new ClusterFigures(this.peers, Math.max(1000, 2 * o.intervalMs))
      this.peers.answer(SAMPLE_TOPIC, () => this.sampler?.latest ?? null)
      this.peers.answer(INSPECT_TOPIC, async (q) => await lookUpHere(this.id, (x) => this.inspect(x), checkQuery(q)))
    }
    const hooks = {
      page: () => this.page!,
      opened: (v: Viewer) => this.opened(v),
      message: (v: Viewer, text: string) => this.message(v, text),
      closed: () => this.viewersChanged()
    }
    this.server = shared !== undefined
      ? DashboardServer.share(shared.app, shared.host, shared.port, this.gate, hooks)
      : await DashboardServer.listen(bind, o.port ?? 0, this.gate, hooks)
    host.on('worker-restart', this.onRestart)
    host.on('cluster-change', this.onClusterChange)
    this.timer = setInterval(() => this.tick(), o.intervalMs)
    this.timer.unref()
  }

  /** @internal */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.latency?.close()
    this.server?.close()
    if (this.host !== undefined) {
      this.host.off('worker-restart', this.onRestart)
      this.host.off('cluster-change', this.onClusterChange)
      if (this.listeningErrors) this.host.off('agent-error', this.onAgentError)
    }
    this.listeningErrors = false
  }

  /** @internal */
  stats (): Record<string, unknown> {
    return {
      url: this.url,
      viewers: this.server?.viewerCount ?? 0,
      samples: this.sampler?.history.length ?? 0,
      refused: this.gate === undefined ? {} : { ...this.gate.refused }
    }
  }

  // ---- every interval ---------------------------------------------------------------

  private tick (): void {
    const sampler = this.sampler
    const server = this.server
    if (sampler === null || server === null || this.closed) return
    const sample = sampler.take()
    this.errorsThisInterval = 0
    if (this.errorsDropped > 0) {
      this.note({ at: Date.now(), kind: 'agent-error', text: `… and ${this.errorsDropped} more agent errors in the last interval` })
      this.errorsDropped = 0
    }
    if (server.viewerCount === 0) {
      this.pending = []
      return
    }
    server.broadcast(JSON.stringify({ t: 'sample', s: sample }))
    if (this.pending.length !== 0) {
      server.broadcast(JSON.stringify({ t: 'events', e: this.pending }))
      this.pending = []
    }
    this.pushCluster(sample)
  }

  private pushCluster (sample: HostSample | null, only?: Viewer): void {
    const figures = this.clusterFigures
    const server = this.server
    if (figures === null || server === null) return
    if (only === undefined) figures.poll()
    const epoch = figures.mapEpoch
    let plain: string | null = null
    let withMap: string | null = null
    const send = (v: Viewer): void => {
      if (v.mapEpoch !== epoch) {
        withMap ??= JSON.stringify(figures.message(sample, true))
        if (v.send(withMap)) v.mapEpoch = epoch
      } else {
        plain ??= JSON.stringify(figures.message(sample, false))
        v.send(plain)
      }
    }
    if (only !== undefined) send(only)
    else server.forEachViewer(send)
  }

  // ---- pages ------------------------------------------------------------------------

  private opened (v: Viewer): void {
    this.viewersChanged()
    const sampler = this.sampler!
    v.send(JSON.stringify({
      t: 'hello',
      host: this.id,
      clustered: this.peers !== undefined,
      intervalMs: this.options.intervalMs,
      historySize: this.options.history,
      workers: sampler.latest?.workers.length ?? 0,
      types: this.host.registry.types.map((t) => t.type),
      history: sampler.history,
      events: this.events
    }))
    this.pushCluster(sampler.latest, v)
  }

  private message (v: Viewer, text: string): void {
    let m: { t?: unknown, seq?: unknown }
    try {
      m = JSON.parse(text) as typeof m
    } catch {
      return
    }
    if (m?.t !== 'lookup' || typeof m.seq !== 'number') return
    const seq = m.seq
    if (v.lookups >= MAX_LOOKUPS_IN_FLIGHT) {
      v.send(JSON.stringify({ t: 'lookup', seq, ok: false, error: 'too many lookups in flight: wait for the last one' }))
      return
    }
    let q: LookupQuery
    try {
      q = checkQuery(m)
    } catch (err) {
      v.send(JSON.stringify({ t: 'lookup', seq, ok: false, error: messageOf(err) }))
      return
    }
    v.lookups++
    lookUp(this.id, (x) => this.inspect(x), this.peers, q).then(
      (result) => { v.lookups--; v.send(JSON.stringify({ t: 'lookup', seq, ok: true, result })) },
      (err: unknown) => { v.lookups--; v.send(JSON.stringify({ t: 'lookup', seq, ok: false, error: messageOf(err) })) })
  }

  private async inspect (q: LookupQuery): ReturnType<PluginHost['inspect']> {
    if (this.closed) throw new HostClosedError('the dashboard is closed')
    return await this.host.inspect(q.type, q.key, { quota: q.quota, storageKeys: STORAGE_KEYS })
  }

  /** Agent errors are listened to only while a page is open. */
  private viewersChanged (): void {
    const want = (this.server?.viewerCount ?? 0) > 0 && !this.closed
    if (want === this.listeningErrors) return
    this.listeningErrors = want
    if (want) this.host.on('agent-error', this.onAgentError)
    else this.host.off('agent-error', this.onAgentError)
  }

  // ---- events -----------------------------------------------------------------------

  private note (e: DashboardEvent): void {
    this.events.push(e)
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS)
    this.pending.push(e)
  }

  private readonly onAgentError = (e: AgentErrorEvent): void => {
    if (++this.errorsThisInterval > MAX_ERRORS_PER_INTERVAL) {
      this.errorsDropped++
      return
    }
    const who = e.id === null ? '' : `${printable(idString(e.id.quota, e.id.type, e.id.key))} `
    this.note({ at: Date.now(), kind: 'agent-error', text: `${who}${e.method}: ${e.error.code} ${e.error.message}` })
  }

  private readonly onRestart = (e: WorkerRestartEvent): void => {
    this.note({
      at: Date.now(),
      kind: 'worker-restart',
      text: `worker ${e.thread} restarted (exit code ${String(e.exitCode)}${e.error !== null ? `, ${e.error.message}` : ''}); ${e.failedCalls} call(s) failed with WorkerCrashedError`
    })
  }

  private readonly onClusterChange = (e: ClusterChangeEvent): void => {
    const parts = [`epoch ${e.epoch}`, `${e.members.length} member(s): ${e.members.map((m) => `${m.id} ${m.state}`).join(', ')}`]
    if (e.gained.length !== 0) parts.push(`gained ${e.gained.length} shard(s)`)
    if (e.lost.length !== 0) parts.push(`lost ${e.lost.length} shard(s)`)
    if (e.moving !== 0) parts.push(`${e.moving} moving`)
    this.note({ at: Date.now(), kind: 'cluster-change', text: parts.join(' · ') })
  }
}

/** `dashboard({ port })`: a live page of this host, and of its cluster with the cluster plugin (see DashboardOptions). */
export function dashboard (options: DashboardOptions = {}): DashboardPlugin {
  return new DashboardPlugin(options)
}
