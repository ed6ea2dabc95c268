/**
 * A cluster of host processes on 127.0.0.1 (host-process.ts), each with its own LMDB
 * data directory under one temp root, on static membership or an etcd:
 *
 *   const c = await ClusterProcs.create({ agents, membership: { static: ['a', 'b', 'c'] } })
 *   const c = await ClusterProcs.create({ agents, membership: { etcd: { hosts: [etcd.endpoint], leaseTtlS: 2 } } })
 *   await c.start(['a', 'b', 'c'])            // in parallel; resolves when all are ready
 *   c.host('a').call('counter', 'k1', 'add', 1)
 *   await c.kill('b')                         // SIGKILL; c.start(['b']) restarts it on the same data
 *   await c.leave('c')                        // graceful: host.close() hands its shards over
 *   await c.close()                           // every host closed (or killed), proxies closed, data removed
 *
 * With `proxies: true` every host sits behind a TcpProxy (tcp-proxy.ts) that the other
 * hosts dial: `c.proxy('b').cut()` drops b's links without touching b.
 *
 * The cluster plugin is named by module specifier (default `shoal/cluster`, this
 * package's own export): the child imports it, this module never does.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { messageOf } from '../../../native-free-core/errors.ts'
import { HostProcess } from './host-process.ts'
import type { SpawnOptions } from './host-process.ts'
import type { HostProcessConfig } from './host-protocol.ts'
import { TcpProxy } from './tcp-proxy.ts'

export interface EtcdMembershipSpec {
  readonly hosts: readonly string[]
  /** Default: a random prefix per ClusterProcs, so clusters on one etcd never meet. */
  readonly prefix?: string
  readonly leaseTtlS?: number
  readonly minMembers?: number
}

export interface ClusterProcsOptions {
  /** The agents module every host loads (file URL or path). */
  readonly agents: string
  /** Workers per host. Default 1. */
  readonly workers?: number
  /** Static: the ids of every member, fixed up front. Etcd: hosts join and leave as they start and close. */
  readonly membership: { readonly static: readonly string[] } | { readonly etcd: EtcdMembershipSpec }
  /** The cluster's secret. Default: 48 random bytes, base64. */
  readonly secret?: string
  /** Module specifier of the cluster plugin. Default `'shoal/cluster'`. */
  readonly clusterModule?: string
  /** More createHost options for every host (callTimeoutMs, durability, ...). */
  readonly host?: Readonly<Record<string, unknown>>
  /** More cluster options for every host (heartbeatMs, maxLinkQueueBytes, ...). */
  readonly cluster?: Readonly<Record<string, unknown>>
  /** Put every host behind a TcpProxy that the others dial. */
  readonly proxies?: boolean
  /** Where the data directories go (`<root>/<id>`). Default: a new temp directory, removed by close(). */
  readonly rootDir?: string
  /** Extra environment variables of every host process. */
  readonly env?: Readonly<Record<string, string>>
  /** Node flags for a host's process (`--cpu-prof`, ...). */
  readonly execArgv?: (id: string) => readonly string[]
  readonly readyTimeoutMs?: number
}

/** A port nothing listens on now (bound then released: the usual small race). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export class ClusterProcs {
  readonly options: ClusterProcsOptions
  readonly rootDir: string
  readonly secret: string
  readonly prefix: string | null
  private readonly ownRoot: boolean
  private readonly hosts_ = new Map<string, HostProcess>()
  /** The logs of each host's earlier processes (killed, closed), oldest first. */
  private readonly pastLogs = new Map<string, string[]>()
  private readonly ports = new Map<string, number>()
  private readonly proxies = new Map<string, TcpProxy>()
  private staticList: string[] | null = null

  private constructor (options: ClusterProcsOptions) {
    this.options = options
    this.ownRoot = options.rootDir === undefined
    this.rootDir = options.rootDir ?? mkdtempSync(join(tmpdir(), 'shoal-cluster-'))
    this.secret = options.secret ?? randomBytes(48).toString('base64')
    this.prefix = 'etcd' in options.membership ? options.membership.etcd.prefix ?? `/shoal-${randomBytes(6).toString('hex')}` : null
  }

  static async create (options: ClusterProcsOptions): Promise<ClusterProcs> {
    const c = new ClusterProcs(options)
    if ('static' in options.membership) {
      const list: string[] = []
      for (const id of options.membership.static) list.push(`${id}@${await c.endpoint(id)}`)
      c.staticList = list
    }
    return c
  }

  /** The address the other hosts dial for `id` (its proxy's when proxied); allocates its ports once. */
  private async endpoint (id: string): Promise<string> {
    let port = this.ports.get(id)
    if (port === undefined) this.ports.set(id, port = await freePort())
    if (this.options.proxies !== true) return `127.0.0.1:${port}`
    let proxy = this.proxies.get(id)
    if (proxy === undefined) this.proxies.set(id, proxy = await TcpProxy.start(port))
    return proxy.address
  }

  dataDir (id: string): string {
    return join(this.rootDir, id)
  }

  /** The config host `id` starts with (`overrides` of its cluster options win). */
  async config (id: string, overrides: Readonly<Record<string, unknown>> = {}): Promise<HostProcessConfig> {
    const m = this.options.membership
    if ('static' in m && !m.static.includes(id)) throw new Error(`${id} is not in the static list ${m.static.join(', ')}`)
    const advertise = await this.endpoint(id)
    const membership = 'static' in m
      ? { static: this.staticList }
      : { etcd: { hosts: m.etcd.hosts, prefix: this.prefix, ...(m.etcd.leaseTtlS === undefined ? {} : { leaseTtlS: m.etcd.leaseTtlS }), ...(m.etcd.minMembers === undefined ? {} : { minMembers: m.etcd.minMembers }) } }
    const dataDir = this.dataDir(id)
    mkdirSync(dataDir, { recursive: true })
    return {
      agents: this.options.agents,
      workers: this.options.workers ?? 1,
      dataDir,
      ...(this.options.host === undefined ? {} : { host: this.options.host }),
      plugins: [{
        module: this.options.clusterModule ?? 'shoal/cluster',
        export: 'cluster',
        options: {
          id,
          secret: this.secret,
          listen: { host: '127.0.0.1', port: this.ports.get(id) },
          advertise,
          membership,
          ...this.options.cluster,
          ...overrides
        }
      }]
    }
  }

  private spawnOptions (id: string): SpawnOptions {
    return {
      name: id,
      ...(this.options.execArgv === undefined ? {} : { execArgv: this.options.execArgv(id) }),
      ...(this.options.env === undefined ? {} : { env: this.options.env }),
      ...(this.options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: this.options.readyTimeoutMs })
    }
  }

  /** Start hosts in parallel (a killed one again, on its data); resolves when all are ready. */
  async start (ids: readonly string[], overrides: Readonly<Record<string, unknown>> = {}): Promise<HostProcess[]> {
    const configs = await Promise.all(ids.map((id) => this.config(id, overrides)))
    const spawned = ids.map((id, i) => {
      const running = this.hosts_.get(id)
      if (running?.running === true) throw new Error(`host ${id} is running already`)
      if (running !== undefined) this.pastLogs.set(id, [...this.pastLogs.get(id) ?? [], running.log])
      const h = HostProcess.spawn(configs[i]!, this.spawnOptions(id))
      this.hosts_.set(id, h)
      return h
    })
    const settled = await Promise.allSettled(spawned.map((h) => h.ready))
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed !== undefined) {
      await Promise.all(spawned.map((h) => h.kill('SIGKILL')))
      throw failed.reason
    }
    return spawned
  }

  host (id: string): HostProcess {
    const h = this.hosts_.get(id)
    if (h === undefined) throw new Error(`no host ${id}`)
    return h
  }

  /** Every process of host `id` so far, its output (each at most 64 KiB), oldest first. */
  logs (id: string): string[] {
    const h = this.hosts_.get(id)
    return [...this.pastLogs.get(id) ?? [], ...(h === undefined ? [] : [h.log])]
  }

  /** The proxy in front of `id` (with `proxies: true`). */
  proxy (id: string): TcpProxy {
    const p = this.proxies.get(id)
    if (p === undefined) throw new Error(`no proxy for ${id} (ClusterProcs needs proxies: true)`)
    return p
  }

  /** The hosts whose process runs. */
  running (): HostProcess[] {
    return [...this.hosts_.values()].filter((h) => h.running)
  }

  ids (): string[] {
    return this.running().map((h) => h.name)
  }

  /** Signal a host: SIGKILL (default; resolves once it is gone), SIGSTOP, SIGCONT. */
  async kill (id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.host(id).kill(signal)
  }

  /** Close a host gracefully: with etcd it leaves, handing its shards to the others first. */
  async leave (id: string, timeoutMs = 60_000): Promise<void> {
    await this.host(id).close(timeoutMs)
  }

  /**
   * Every running host has settled (no shard moving, each serves what the map gives it).
   * When one has not, the error names every host that did not, each with its own view (its
   * timeout's message): the host whose step is stuck may be any of them.
   */
  async settled (timeoutMs = 30_000): Promise<void> {
    const hosts = this.running()
    const results = await Promise.allSettled(hosts.map((h) => h.settled(timeoutMs)))
    const failed = results.flatMap((r, i) => r.status === 'rejected' ? [`${hosts[i]!.name}: ${messageOf(r.reason)}`] : [])
    if (failed.length !== 0) throw new Error(`${failed.length} of ${hosts.length} host(s) did not settle:\n${failed.join('\n')}`)
  }

  /** Each running host's view of what keeps the cluster from settling (the cluster plugin's `describe()`), asked at once; a host that does not answer within `timeoutMs` says so. */
  async describe (timeoutMs = 5_000): Promise<Array<{ readonly id: string, readonly view: string }>> {
    return await Promise.all(this.running().map(async (h) => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs) })
      try {
        const view = await Promise.race([h.describe().then((v) => v ?? 'no plugin describes the cluster', (err: unknown) => `describe failed: ${messageOf(err)}`), late])
        return { id: h.name, view }
      } finally {
        clearTimeout(timer)
      }
    }))
  }

  /** Close every host (SIGCONT first for a stopped one; killed if it does not close), the proxies, and the data unless `rootDir` was given. */
  async close (timeoutMs = 30_000): Promise<void> {
    await Promise.all(this.running().map(async (h) => {
      await h.kill('SIGCONT')
      await h.close(timeoutMs).catch(() => h.kill('SIGKILL'))
    }))
    await Promise.all([...this.proxies.values()].map((p) => p.close()))
    if (this.ownRoot) rmSync(this.rootDir, { recursive: true, force: true })
  }
}
