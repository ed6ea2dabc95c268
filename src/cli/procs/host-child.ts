/**
 * A host in a process of its own, driven by its parent over IPC (host-protocol.ts):
 * `createHost` from the config in $SHOAL_HOST_PROCESS_CONFIG, plugins loaded by module
 * specifier, then commands until `close`. Spawned by host-process.ts; tests and
 * `shoal bench --hosts N` use it to put every host of a cluster in its own process.
 *
 * It exits by itself (so that `--cpu-prof` writes its profile): after `close`, when
 * createHost failed (exit 1, the error reported first), on SIGTERM/SIGINT, and when
 * its parent goes away (the IPC channel closes) — a test runner that dies leaves no
 * host behind. SIGKILL and SIGSTOP are the parent's to send (host-process.ts `kill`).
 */
import { createHost } from '../../index.ts'
import type { Host, HostOptions } from '../../index.ts'
import type { HostPlugin } from '../../host/plugin.ts'
import { runCommand } from './child-commands.ts'
import { CONFIG_ENV, errorInfo } from './host-protocol.ts'
import type { FromChild, HostProcessConfig, ReadyInfo, ToChild } from './host-protocol.ts'

/** How long a host asked to go (SIGTERM, SIGINT, its driver gone) may take to close before it exits anyway. */
const kCloseGraceMs = 15_000

function send (m: FromChild): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) { resolve(); return }
    process.send(m, undefined, {}, () => resolve())
  })
}

async function loadPlugins (config: HostProcessConfig): Promise<HostPlugin[]> {
  const plugins: HostPlugin[] = []
  for (const spec of config.plugins ?? []) {
    const mod = await import(spec.module) as Record<string, unknown>
    const name = spec.export ?? 'default'
    const factory = mod[name]
    if (typeof factory !== 'function') throw new Error(`plugin module ${spec.module} has no function export ${name}`)
    plugins.push((factory as (options: unknown) => HostPlugin)(spec.options))
  }
  return plugins
}

/**
 * With $SHOAL_TRACE_SHARDS (comma-separated shard numbers), one stdout line per
 * `cluster-change` that gains or loses one of them — `[trace] <wall ms> epoch E +s -s` —
 * and one when the host is up (`[trace] <wall ms> started, epoch E`),
 * which the parent keeps in the host's log: where a shard went, for a chaos run's evidence.
 */
function traceShards (host: Host): void {
  const text = process.env.SHOAL_TRACE_SHARDS
  if (text === undefined || text === '') return
  const watch = new Set(text.split(',').map(Number))
  // what it adopted while createHost ran is not an event: the start says when this process took its part
  process.stdout.write(`[trace] ${Date.now()} started, epoch ${host.cluster.epoch}\n`)
  host.on('cluster-change', (e) => {
    const gained = e.gained.filter((s) => watch.has(s))
    const lost = e.lost.filter((s) => watch.has(s))
    if (gained.length === 0 && lost.length === 0) return
    process.stdout.write(`[trace] ${Date.now()} epoch ${e.epoch}${gained.map((s) => ` +${s}`).join('')}${lost.map((s) => ` -${s}`).join('')}\n`)
  })
}

async function main (): Promise<void> {
  const text = process.env[CONFIG_ENV]
  if (text === undefined || process.send === undefined) {
    process.stderr.write(`host-child: run me with fork() and the config in $${CONFIG_ENV} (see host-process.ts)\n`)
    process.exit(2)
  }
  const config = JSON.parse(text) as HostProcessConfig
  let t0 = performance.now()
  let host: Host
  let plugins: HostPlugin[] = []
  try {
    plugins = await loadPlugins(config)
    t0 = performance.now() // createHost's own time: not the plugins' module loading
    host = await createHost({
      ...(config.host ?? {}),
      agents: config.agents,
      workers: config.workers,
      dataDir: config.dataDir,
      plugins
    } as HostOptions)
  } catch (err) {
    await send({ t: 'failed', error: errorInfo(err), elapsedMs: performance.now() - t0 })
    process.exit(1)
  }
  const startMs = performance.now() - t0

  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= host.close().catch((err: unknown) => { process.stderr.write(`close: ${errorInfo(err).message}\n`) })
    return closing
  }
  // a close that does not finish must not keep the process alive: a test runner that timed
  // out left such hosts spinning for half an hour (why their close hung was not found);
  // after the grace the process exits anyway
  const exitAfterClose = (code: number): void => {
    setTimeout(() => {
      process.stderr.write(`close did not finish within ${kCloseGraceMs} ms; exiting\n`)
      process.exit(code === 0 ? 1 : code)
    }, kCloseGraceMs).unref()
    void close().then(() => process.exit(code))
  }
  process.once('SIGTERM', () => exitAfterClose(0))
  process.once('SIGINT', () => exitAfterClose(0))
  process.once('disconnect', () => exitAfterClose(0))

  process.on('message', (m: ToChild) => {
    if (m.t !== 'cmd') return
    if (m.cmd.op === 'close') {
      void close().then(async () => {
        await send({ t: 'res', seq: m.seq, ok: true, value: null })
        process.exit(0)
      })
      return
    }
    runCommand(host, m.cmd, plugins).then(
      (value) => send({ t: 'res', seq: m.seq, ok: true, value }),
      (err: unknown) => send({ t: 'res', seq: m.seq, ok: false, error: errorInfo(err) })
    ).catch(() => {})
  })

  traceShards(host)

  let cluster: ReadyInfo['cluster'] = null
  try {
    const c = host.cluster
    cluster = { id: c.id, address: c.address, epoch: c.epoch, members: c.members() }
  } catch {} // no cluster plugin
  await send({ t: 'ready', info: { pid: process.pid, startMs, cluster } })
}

await main()
