/**
 * A real etcd of our own: its own process, free loopback ports (client and peer), a
 * temp data directory, fast raft timings (heartbeat 50 ms, election 500 ms, so a restart
 * elects itself in well under a second). For a test file (test/helpers/etcd.ts) and for
 * `shoal chaos`, which kills and restarts it. `npm test`'s pretest
 * (scripts/ensure-etcd.mjs) makes sure the binary exists.
 *
 *   const etcd = await startEtcd()
 *   etcd.endpoint       // 'http://127.0.0.1:<port>'
 *   await etcd.kill()    // SIGKILL, keeps the data: a crash
 *   await etcd.restart() // same ports, same data, waits until healthy
 *   await etcd.stop()    // SIGKILL if running, then deletes the data (call in `after`)
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { freePort } from './cluster-procs.ts'

export interface EtcdProcess {
  /** Client URL, for `hosts` options. */
  readonly endpoint: string
  readonly clientPort: number
  readonly dataDir: string
  /** True while the process runs. */
  readonly running: boolean
  /** SIGKILL (a crash); data kept for `restart()`. */
  kill (): Promise<void>
  /** Start again on the same ports and data; resolves when healthy. */
  restart (): Promise<void>
  /** Kill if running and delete the data directory. */
  stop (): Promise<void>
}

const HEALTH_TIMEOUT_MS = 15_000
const live = new Set<ChildProcess>()
process.once('exit', () => { for (const p of live) p.kill('SIGKILL') })

export function etcdBinary (): string {
  const candidates = [process.env.SHOAL_ETCD, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'etcd')), '/usr/bin/etcd']
  for (const file of candidates) {
    if (!file) continue
    try {
      accessSync(file, constants.X_OK)
      if (spawnSync(file, ['--version']).status === 0) return file
    } catch {}
  }
  throw new Error('no etcd binary: run `node scripts/ensure-etcd.mjs` (npm test does), or `apt-get install -y etcd-server`')
}

export async function startEtcd (): Promise<EtcdProcess> {
  const binary = etcdBinary()
  let lastError: unknown
  // a port taken between freePort() and etcd's bind: retry with new ones
  for (let attempt = 0; attempt < 3; attempt++) {
    const dataDir = mkdtempSync(join(tmpdir(), 'shoal-etcd-'))
    const clientPort = await freePort()
    const peerPort = await freePort()
    const etcd = new Etcd(binary, dataDir, clientPort, peerPort)
    try {
      await etcd.launch()
      return etcd
    } catch (e) {
      lastError = e
      await etcd.stop()
    }
  }
  throw lastError
}

class Etcd implements EtcdProcess {
  readonly binary: string
  readonly dataDir: string
  readonly clientPort: number
  readonly peerPort: number
  readonly endpoint: string
  #child: ChildProcess | undefined
  #log = ''

  constructor (binary: string, dataDir: string, clientPort: number, peerPort: number) {
    this.binary = binary
    this.dataDir = dataDir
    this.clientPort = clientPort
    this.peerPort = peerPort
    this.endpoint = `http://127.0.0.1:${clientPort}`
  }

  get running (): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  async launch (): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`
    const child = spawn(this.binary, [
      '--name', 'shoal-test',
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `shoal-test=${peer}`,
      '--initial-cluster-state', 'new',
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--logger', 'zap',
      '--log-level', 'warn'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.#child = child
    live.add(child)
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => { this.#log = (this.#log + chunk).slice(-4_000) })
    const exited = new Promise<never>((_resolve, reject) => {
      child.once('exit', (code, signal) => {
        live.delete(child)
        reject(new Error(`etcd exited (${signal ?? code}) before it was healthy:\n${this.#log}`))
      })
    })
    exited.catch(() => {})
    await Promise.race([this.#healthy(), exited])
  }

  async #healthy (): Promise<void> {
    const deadline = Date.now() + HEALTH_TIMEOUT_MS
    for (;;) {
      try {
        const res = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1_000) })
        const body = await res.json() as { health?: string }
        if (body.health === 'true') return
      } catch {}
      if (Date.now() > deadline) throw new Error(`etcd not healthy after ${HEALTH_TIMEOUT_MS} ms:\n${this.#log}`)
      if (!this.running) throw new Error(`etcd exited:\n${this.#log}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async kill (): Promise<void> {
    const child = this.#child
    if (child === undefined || !this.running) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await gone
    live.delete(child)
  }

  async restart (): Promise<void> {
    await this.kill()
    await this.launch()
  }

  async stop (): Promise<void> {
    await this.kill()
    rmSync(this.dataDir, { recursive: true, force: true })
  }
}
