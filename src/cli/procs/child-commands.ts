/**
 * The commands a host process runs for its parent (host-protocol.ts `Command`). Load
 * is generated here, in the host's own process: a parent that sent one IPC message per
 * call would measure the channel, not the host.
 *
 *   load      calls in turn over a key list, `concurrency` in flight, until stopped:
 *             acknowledged calls counted per key, every error counted and a few kept —
 *             what a test compares with the agents' final states; with `latency`, each
 *             acknowledged call's round trip in an HdrHistogram, sent back encoded so
 *             that the parent can merge the hosts' histograms
 *   casts     casts to seeded random keys, paced by barrier calls to probe agents (a
 *             call queued behind the casts on the same path answers once they ran), so
 *             no queue grows without bound and the rate is casts that ran
 *   latency   one call in flight, each round trip timed
 *   raw*      the baseline: a bare `ws` client and a bare uWebSockets.js echo server,
 *             no engine
 */
import { createRequire } from 'node:module'
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js'
import { WebSocket } from 'ws'
import type * as Uws from 'uWebSockets.js'
import type { Host } from '../../index.ts'
import type { HostPlugin } from '../../host/plugin.ts'
import { HdrLatency } from '../hdr.ts'
import { Rng } from '../rng.ts'
import { errorInfo, keysOf } from './host-protocol.ts'
import type { Agents, CastsReport, Command, DurableBacklog, ErrorInfo, LoadReport } from './host-protocol.ts'

const kErrorSamples = 5

class Load {
  readonly acked: Uint32Array
  calls = 0
  errors = 0
  readonly errorSamples: ErrorInfo[] = []
  private stopped = false
  private readonly lanes: Array<Promise<void>> = []
  private readonly t0 = performance.now()
  private readonly latency: HdrLatency | null

  constructor (host: Host, agents: Agents, method: string, payload: unknown, concurrency: number, latency: boolean) {
    const keys = keysOf(agents.keys)
    this.acked = new Uint32Array(keys.length)
    this.latency = latency ? new HdrLatency() : null
    const options = agents.quota === undefined ? undefined : { quota: agents.quota }
    let next = 0
    const lane = async (): Promise<void> => {
      while (!this.stopped) {
        const i = next
        next = (next + 1) % keys.length
        try {
          const t0 = performance.now()
          await host.ref(agents.type, keys[i]!, options).call(method, payload)
          this.latency?.recordMs(performance.now() - t0)
          this.acked[i]!++
          this.calls++
        } catch (err) {
          this.errors++
          if (this.errorSamples.length < kErrorSamples) this.errorSamples.push(errorInfo(err))
        }
      }
    }
    for (let l = 0; l < Math.max(1, Math.min(concurrency, keys.length)); l++) this.lanes.push(lane())
  }

  async stop (): Promise<LoadReport> {
    this.stopped = true
    await Promise.all(this.lanes)
    return {
      calls: this.calls,
      acked: this.acked,
      errors: this.errors,
      errorSamples: this.errorSamples,
      elapsedMs: performance.now() - this.t0,
      ...(this.latency === null ? {} : { latencyHdr: encodeIntoCompressedBase64(this.latency.histogram) })
    }
  }
}

const loads = new Map<string, Load>()

async function callEach (host: Host, agents: Agents, method: string, payload: unknown, concurrency: number): Promise<{ values: unknown[], errors: number, errorSamples: ErrorInfo[] }> {
  const keys = keysOf(agents.keys)
  const values: unknown[] = new Array(keys.length)
  const errorSamples: ErrorInfo[] = []
  const options = agents.quota === undefined ? undefined : { quota: agents.quota }
  let errors = 0
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < keys.length) {
      const i = next++
      try {
        values[i] = await host.ref(agents.type, keys[i]!, options).call(method, payload)
      } catch (err) {
        errors++
        if (errorSamples.length < kErrorSamples) errorSamples.push(errorInfo(err))
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, keys.length)) }, lane))
  return { values, errors, errorSamples }
}

async function casts (host: Host, cmd: Extract<Command, { op: 'casts' }>): Promise<CastsReport> {
  const keys = keysOf(cmd.agents.keys)
  const refs = keys.map((k) => host.ref(cmd.agents.type, k))
  const probes = keysOf(cmd.probes.keys).map((k) => host.ref(cmd.probes.type, k))
  const barrier = (): Promise<unknown> => Promise.all(probes.map((p) => p.call(cmd.probeMethod)))
  const chunk = cmd.chunk ?? 4096
  const depth = cmd.depth ?? 2
  const rng = new Rng(cmd.seed ?? 1)
  const inflight: Array<Promise<unknown>> = []
  let n = 0
  const t0 = performance.now()
  const deadline = t0 + cmd.durationMs
  do {
    for (let i = 0; i < chunk; i++) refs[rng.below(refs.length)]!.cast(cmd.method, cmd.payload)
    n += chunk
    // at most `depth` chunks ahead of the agents: wait for the barrier `depth` chunks back
    inflight.push(barrier())
    if (inflight.length > depth) await inflight.shift()
  } while (performance.now() < deadline)
  while (inflight.length !== 0) await inflight.shift()
  const elapsedMs = performance.now() - t0
  return { casts: n, elapsedMs, castsPerSec: n / (elapsedMs / 1000) }
}

async function latency (host: Host, cmd: Extract<Command, { op: 'latency' }>): Promise<Float64Array> {
  const ref = host.ref(cmd.type, cmd.key)
  const out = new Float64Array(cmd.rounds)
  for (let r = 0; r < cmd.rounds; r++) {
    const t0 = performance.now()
    await ref.call(cmd.method, cmd.payload)
    out[r] = (performance.now() - t0) * 1000
  }
  return out
}

// ---- the raw baseline: a bare ws client → a bare uWS echo server ----------------------

let echoPort: number | null = null

async function rawEchoListen (): Promise<number> {
  if (echoPort !== null) return echoPort
  const uws = createRequire(import.meta.url)('uWebSockets.js') as typeof Uws
  const app = uws.App()
  app.ws('/*', {
    maxPayloadLength: 1024 * 1024,
    idleTimeout: 0,
    message: (ws, message) => { ws.send(message, true) }
  })
  echoPort = await new Promise<number>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket) => {
      if (socket === false) reject(new Error('the raw echo server could not listen'))
      else resolve(uws.us_socket_local_port(socket))
    })
  })
  return echoPort
}

const rawClients = new Map<number, WebSocket>()

async function rawRoundTrips (port: number, rounds: number, bytes: number): Promise<Float64Array> {
  let ws = rawClients.get(port)
  if (ws === undefined) {
    ws = new WebSocket(`ws://127.0.0.1:${port}/raw`, { perMessageDeflate: false, maxPayload: 1024 * 1024 })
    await new Promise<void>((resolve, reject) => { ws!.once('open', resolve); ws!.once('error', reject) })
    rawClients.set(port, ws)
  }
  const message = Buffer.alloc(bytes, 7)
  const out = new Float64Array(rounds)
  let resolve: () => void = () => {}
  const onMessage = (): void => { resolve() }
  ws.on('message', onMessage)
  try {
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now()
      const back = new Promise<void>((res) => { resolve = res })
      message.writeUInt32LE(r, 0)
      ws.send(message, { binary: true })
      await back
      out[r] = (performance.now() - t0) * 1000
    }
  } finally {
    ws.off('message', onMessage)
  }
  return out
}

/** The plugins' durable-send records (the cluster plugin's `durableBacklog()`), summed. */
function durableBacklog (plugins: readonly HostPlugin[]): DurableBacklog {
  const sum = { outbox: 0, applied: 0, outboxWhere: [] as string[] }
  for (const p of plugins) {
    const f = (p as { durableBacklog?: () => DurableBacklog }).durableBacklog
    if (typeof f !== 'function') continue
    const b = f.call(p)
    sum.outbox += b.outbox
    sum.applied += b.applied
    if (b.outboxWhere !== undefined) sum.outboxWhere.push(...b.outboxWhere)
  }
  return sum
}

/** The plugins' views of the cluster (the cluster plugin's `describe()`), or null when none has one. */
function describe (plugins: readonly HostPlugin[]): string | null {
  const views: string[] = []
  for (const p of plugins) {
    const f = (p as { describe?: () => string }).describe
    if (typeof f === 'function') views.push(f.call(p))
  }
  return views.length === 0 ? null : views.join('\n')
}

export async function runCommand (host: Host, cmd: Command, plugins: readonly HostPlugin[] = []): Promise<unknown> {
  switch (cmd.op) {
    case 'call':
      return await host.ref(cmd.type, cmd.key, cmd.quota === undefined ? undefined : { quota: cmd.quota })
        .call(cmd.method, cmd.payload, cmd.timeoutMs === undefined ? undefined : { timeoutMs: cmd.timeoutMs })
    case 'cast':
      host.ref(cmd.type, cmd.key, cmd.quota === undefined ? undefined : { quota: cmd.quota }).cast(cmd.method, cmd.payload)
      return null
    case 'callEach':
      return await callEach(host, cmd.agents, cmd.method, cmd.payload, cmd.concurrency ?? 64)
    case 'loadStart':
      if (loads.has(cmd.id)) throw new Error(`load ${cmd.id} is running already`)
      loads.set(cmd.id, new Load(host, cmd.agents, cmd.method, cmd.payload, cmd.concurrency ?? 64, cmd.latency === true))
      return null
    case 'loadStop': {
      const load = loads.get(cmd.id)
      if (load === undefined) throw new Error(`no load ${cmd.id}`)
      loads.delete(cmd.id)
      return await load.stop()
    }
    case 'casts':
      return await casts(host, cmd)
    case 'latency':
      return await latency(host, cmd)
    case 'rawEchoListen':
      return await rawEchoListen()
    case 'rawRoundTrips':
      return await rawRoundTrips(cmd.port, cmd.rounds, cmd.bytes ?? 64)
    case 'cluster': {
      const c = host.cluster
      return { id: c.id, address: c.address, epoch: c.epoch, members: c.members() }
    }
    case 'owners':
      return keysOf(cmd.agents.keys).map((key) => host.cluster.ownerOf({ type: cmd.agents.type, key, ...(cmd.agents.quota === undefined ? {} : { quota: cmd.agents.quota }) }))
    case 'settled':
      await host.cluster.settled(cmd.timeoutMs === undefined ? {} : { timeoutMs: cmd.timeoutMs })
      return null
    case 'stats':
      return host.stats()
    case 'process': {
      const cpu = process.cpuUsage()
      return { rssBytes: process.memoryUsage.rss(), cpuUs: cpu.user + cpu.system }
    }
    case 'metrics':
      return await host.metrics()
    case 'durableBacklog':
      return durableBacklog(plugins)
    case 'describe':
      return describe(plugins)
    case 'close':
      throw new Error('close is handled by host-child.ts')
  }
}
