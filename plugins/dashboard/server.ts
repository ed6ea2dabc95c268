/**
 * The dashboard's HTTP and WebSocket routes on a uWebSockets.js app: the cluster's link
 * server's when the cluster plugin is on (one port per host; it shares its app as 'uws'),
 * an app of its own otherwise. Everything lives under /dashboard/:
 *
 *   GET /dashboard/      the page (one self-contained HTML document: page.ts)
 *   WS  /dashboard/ws    figures pushed once per interval; the page's only question is a
 *                        lookup, answered read-only
 *   anything else under /dashboard/: 404, or 405 for a method other than GET
 *
 * Every request goes through the AccessGate (access.ts) first. Nothing here changes the
 * host: there is no route that takes a command.
 *
 * Every HTTP response closes its connection: a page is fetched once, and a kept-alive
 * socket would hold the server (and, on the cluster's app, the process) open after close.
 *
 * A viewer that does not read (its socket buffers more than 1 MiB) skips samples rather
 * than growing the host's memory; the next one it takes is complete.
 */
import { createRequire } from 'node:module'
import type * as Uws from 'uWebSockets.js'
import { InvalidOptionError } from '../../native-free-core/errors.ts'
import { tokenOf } from './access.ts'
import type { AccessGate, Refusal, RequestFacts } from './access.ts'

export const BASE_PATH = '/dashboard/'
const WS_PATH = '/dashboard/ws'
const MAX_BUFFERED = 1024 * 1024
const MAX_INBOUND = 16 * 1024

const securityHeaders: ReadonlyArray<readonly [string, string]> = [
  ['Content-Security-Policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
  ['Cache-Control', 'no-store']
]

/** One open page. */
export class Viewer {
  private readonly ws: Uws.WebSocket<{ viewer?: Viewer }>
  open = true
  /** The shard map epoch this page was last sent (cluster view). */
  mapEpoch = -1
  /** Lookups waiting for their answer. */
  lookups = 0
  skipped = 0

  constructor (ws: Uws.WebSocket<{ viewer?: Viewer }>) {
    this.ws = ws
  }

  /** Send a text message unless the page is behind; false when it was skipped. */
  send (text: string): boolean {
    if (!this.open) return false
    if (this.ws.getBufferedAmount() > MAX_BUFFERED) {
      this.skipped++
      return false
    }
    this.ws.send(text, false)
    return true
  }

  end (): void {
    if (!this.open) return
    this.open = false
    this.ws.end(1001, 'the dashboard is closing')
  }
}

export interface ServerHooks {
  page (): string
  opened (viewer: Viewer): void
  message (viewer: Viewer, text: string): void
  closed (viewer: Viewer): void
}

const require = createRequire(import.meta.url)

export class DashboardServer {
  /** Where the server listens (the cluster's link server's address when shared). */
  readonly host: string
  readonly port: number
  private readonly own: { uws: typeof Uws, socket: Uws.us_listen_socket } | null
  private readonly viewers = new Set<Viewer>()
  private closed = false

  private constructor (host: string, port: number, own: DashboardServer['own']) {
    this.host = host
    this.port = port
    this.own = own
  }

  /** Serve from an app of the dashboard's own, listening on host:port. */
  static async listen (host: string, port: number, gate: AccessGate, hooks: ServerHooks): Promise<DashboardServer> {
    const uws = require('uWebSockets.js') as typeof Uws
    const app = uws.App()
    let server: DashboardServer | null = null
    const routes = (): DashboardServer => server!
    DashboardServer.route(app, uws, gate, hooks, routes)
    app.get('/', (res, req) => {
      const q = req.getQuery()
      res.writeStatus('302 Found').writeHeader('Location', BASE_PATH + (q === undefined || q === '' ? '' : `?${q}`)).end(undefined, true)
    })
    app.any('/*', (res) => { res.writeStatus('404 Not Found').end('not found', true) })
    const socket = await new Promise<Uws.us_listen_socket | false>((resolve) => { app.listen(host, port, resolve) })
    if (socket === false) throw new InvalidOptionError('dashboard.port', port, `must be a port this host can listen on at ${host} (is it taken?)`)
    server = new DashboardServer(host, uws.us_socket_local_port(socket as unknown as Uws.us_socket), { uws, socket })
    return server
  }

  /** Serve from another plugin's app (the cluster's link server). */
  static share (app: Uws.TemplatedApp, host: string, port: number, gate: AccessGate, hooks: ServerHooks): DashboardServer {
    const uws = require('uWebSockets.js') as typeof Uws
    const server = new DashboardServer(host, port, null)
    DashboardServer.route(app, uws, gate, hooks, () => server)
    return server
  }

  private static route (app: Uws.TemplatedApp, uws: typeof Uws, gate: AccessGate, hooks: ServerHooks, server: () => DashboardServer): void {
    const facts = (req: Uws.HttpRequest): RequestFacts => ({
      host: req.getHeader('host'),
      origin: req.getHeader('origin'),
      token: tokenOf(req.getQuery() ?? '', req.getHeader('authorization'))
    })
    const refuse = (res: Uws.HttpResponse, why: Refusal): void => {
      const [status, text] = why === 'token'
        ? ['401 Unauthorized', 'this dashboard needs its token: open the URL with ?token=…']
        : why === 'origin'
          ? ['403 Forbidden', 'a WebSocket from another origin']
          : ['403 Forbidden', 'without a token the dashboard answers only requests addressed to a loopback host name']
      res.writeStatus(status).writeHeader('Content-Type', 'text/plain; charset=utf-8').end(text, true)
    }
    const page = (res: Uws.HttpResponse, req: Uws.HttpRequest): void => {
      if (server().closed) { res.writeStatus('503 Service Unavailable').end('the dashboard is closed', true); return }
      const why = gate.checkPage(facts(req))
      if (why !== null) { refuse(res, why); return }
      res.writeStatus('200 OK').writeHeader('Content-Type', 'text/html; charset=utf-8')
      for (const [k, v] of securityHeaders) res.writeHeader(k, v)
      res.end(hooks.page(), true)
    }
    app.get('/dashboard', page)
    app.get(BASE_PATH, page)
    app.ws<{ viewer?: Viewer }>(WS_PATH, {
      compression: uws.DISABLED,
      maxPayloadLength: MAX_INBOUND,
      // never reached: a page more than MAX_BUFFERED behind gets nothing more (Viewer.send), and a hello with a long history must not be dropped
      maxBackpressure: 64 * MAX_BUFFERED,
      idleTimeout: 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        if (server().closed) { res.writeStatus('503 Service Unavailable').end(undefined, true); return }
        const why = gate.checkSocket(facts(req))
        if (why !== null) { refuse(res, why); return }
        res.upgrade({}, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context)
      },
      open: (ws) => {
        const viewer = new Viewer(ws)
        ws.getUserData().viewer = viewer
        const s = server()
        if (s.closed) { viewer.end(); return }
        s.viewers.add(viewer)
        hooks.opened(viewer)
      },
      message: (ws, message, isBinary) => {
        const viewer = ws.getUserData().viewer
        if (viewer === undefined || isBinary) return
        hooks.message(viewer, Buffer.from(message).toString('utf8'))
      },
      close: (ws) => {
        const viewer = ws.getUserData().viewer
        if (viewer === undefined) return
        viewer.open = false
        if (server().viewers.delete(viewer)) hooks.closed(viewer)
      }
    })
    app.any('/dashboard/*', (res, req) => {
      if (req.getMethod() !== 'get') {
        gate.countMethod()
        res.writeStatus('405 Method Not Allowed').writeHeader('Allow', 'GET').end('the dashboard is read-only', true)
        return
      }
      res.writeStatus('404 Not Found').end('not found', true)
    })
  }

  get viewerCount (): number {
    return this.viewers.size
  }

  forEachViewer (f: (v: Viewer) => void): void {
    for (const v of this.viewers) f(v)
  }

  /** Send `text` to every open page. */
  broadcast (text: string): void {
    for (const v of this.viewers) v.send(text)
  }

  /** Close every page, and the server if it is the dashboard's own. */
  close (): void {
    if (this.closed) return
    this.closed = true
    for (const v of [...this.viewers]) v.end()
    this.viewers.clear()
    if (this.own !== null) this.own.uws.us_listen_socket_close(this.own.socket)
  }
}
