/**
 * The parent's handle on a host running in a child process (host-child.ts):
 *
 *   const h = await HostProcess.start({ agents, workers: 1, dataDir, plugins: [...] }, { name: 'a' })
 *   await h.call('counter', 'k1', 'add', 1)        // errors come back as their ShoalError class
 *   await h.command({ op: 'loadStart', ... })       // any Command of host-protocol.ts
 *   await h.kill('SIGSTOP'); await h.kill('SIGCONT'); await h.kill()   // SIGKILL: a crash
 *   await h.close()                                 // host.close() in the child, then it exits 0
 *
 * `start` resolves when createHost resolved in the child; if it threw there, `start`
 * rejects with a HostStartError whose `cause` is the child's error rebuilt in its class
 * (a ClusterUnavailableError stays one) and whose `elapsedMs` is the child's time to
 * fail. Every command still waiting when the child dies is rejected with
 * HostProcessExitedError.
 * The child's stdout and stderr are kept (the last 64 KiB) for a failing test's message,
 * and echoed with a prefix when $SHOAL_PROCS_ECHO is set. $SHOAL_HOST_EXEC_ARGV (Node flags,
 * separated by spaces) is added to every child's flags: a way to profile the hosts of any
 * bench or test (`--trace-gc`, `--heap-prof`, which NODE_OPTIONS does not all allow).
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { errorFromWire } from '../../../native-free-core/errors.ts'
import { CONFIG_ENV } from './host-protocol.ts'
import type {
  Agents, ClusterInfo, Command, DurableBacklog, ErrorInfo, FromChild, HostProcessConfig, LoadReport, ReadyInfo, ToChild
} from './host-protocol.ts'

export const hostChildScript = fileURLToPath(new URL('./host-child.js', import.meta.url))

const kLogBytes = 64 * 1024
export const EXEC_ARGV_ENV = 'SHOAL_HOST_EXEC_ARGV'

/** The child's Node flags: the caller's, then those of $SHOAL_HOST_EXEC_ARGV. */
export function childExecArgv (own: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = env[EXEC_ARGV_ENV]
  return [...own, ...(extra === undefined ? [] : extra.split(/\s+/).filter((a) => a !== ''))]
}
const live = new Set<ChildProcess>()
process.once('exit', () => { for (const p of live) p.kill('SIGKILL') })

export interface SpawnOptions {
  /** A label for logs and errors. Default: the pid. */
  readonly name?: string
  /** Node flags of the child (`--cpu-prof`, ...). */
  readonly execArgv?: readonly string[]
  /** Extra environment variables of the child. */
  readonly env?: Readonly<Record<string, string>>
  /** How long `start` waits for createHost. Default 60 s. */
  readonly readyTimeoutMs?: number
}

/** An error as the child threw it: its ShoalError class when it had a code, else a plain Error. */
export function rebuildError (info: ErrorInfo): Error {
  if (info.code !== undefined && info.code.startsWith('SHOAL_ERR')) {
    return errorFromWire({ code: info.code, message: info.message, ...(info.data === undefined ? {} : { data: info.data }) })
  }
  const err = new Error(info.message)
  err.name = info.name
  return err
}

/** createHost failed in the child (`cause` is the child's error, rebuilt), or the child never got there. */
export class HostStartError extends Error {
  /** From fork to the child's report of the failure. */
  readonly elapsedMs: number
  readonly log: string

  constructor (message: string, elapsedMs: number, log: string, cause?: Error) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'HostStartError'
    this.elapsedMs = elapsedMs
    this.log = log
  }
}

export class HostProcessExitedError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'HostProcessExitedError'
  }
}

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export class HostProcess {
  readonly name: string
  readonly config: HostProcessConfig
  readonly pid: number
  /** Resolves with the child's ready report; rejects with HostStartError. */
  readonly ready: Promise<ReadyInfo>
  /** Resolves when the child has exited, however. */
  readonly exited: Promise<Exit>
  private readonly child: ChildProcess
  private readonly pending = new Map<number, { op: string, resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private seq = 0
  private log_ = ''
  private info_: ReadyInfo | null = null
  private exit_: Exit | null = null

  private constructor (config: HostProcessConfig, options: SpawnOptions) {
    this.config = config
    const t0 = performance.now()
    this.child = fork(hostChildScript, [], {
      execArgv: childExecArgv(options.execArgv),
      env: { ...process.env, ...options.env, [CONFIG_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced'
    })
    live.add(this.child)
    this.pid = this.child.pid ?? -1
    this.name = options.name ?? String(this.pid)
    const echo = process.env.SHOAL_PROCS_ECHO !== undefined && process.env.SHOAL_PROCS_ECHO !== ''
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding('utf8')
      stream?.on('data', (chunk: string) => {
        this.log_ = (this.log_ + chunk).slice(-kLogBytes)
        if (echo) process.stderr.write(chunk.replace(/^(?=.)/gm, `[${this.name}] `))
      })
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child)
        this.exit_ = { code, signal }
        for (const [, p] of this.pending) p.reject(new HostProcessExitedError(`host process ${this.name} exited (${signal ?? code}) before answering ${p.op}`))
        this.pending.clear()
        resolve(this.exit_)
      })
    })
    this.ready = new Promise<ReadyInfo>((resolve, reject) => {
      const timeoutMs = options.readyTimeoutMs ?? 60_000
      const timer = setTimeout(() => {
        reject(new HostStartError(`host process ${this.name} not ready after ${timeoutMs} ms`, performance.now() - t0, this.log_))
      }, timeoutMs)
      const settle = (): void => clearTimeout(timer)
      this.child.on('message', (m: FromChild) => {
        if (m.t === 'ready') {
          settle()
          this.info_ = m.info
          resolve(m.info)
        } else if (m.t === 'failed') {
          settle()
          const cause = rebuildError(m.error)
          reject(new HostStartError(`createHost failed in host process ${this.name} after ${Math.round(m.elapsedMs)} ms: ${m.error.message}`, m.elapsedMs, this.log_, cause))
        } else if (m.t === 'res') {
          const p = this.pending.get(m.seq)
          if (p === undefined) return
          this.pending.delete(m.seq)
          if (m.ok) p.resolve(m.value)
          else p.reject(rebuildError(m.error))
        }
      })
      void this.exited.then((e) => {
        settle()
        reject(new HostStartError(`host process ${this.name} exited (${e.signal ?? e.code}) before it was ready:\n${this.log_}`, performance.now() - t0, this.log_))
      })
    })
    this.ready.catch(() => {})
  }

  /** Fork a host process; see `ready`. */
  static spawn (config: HostProcessConfig, options: SpawnOptions = {}): HostProcess {
    return new HostProcess(config, options)
  }

  /** Fork a host process and wait until it is ready (kills it if it never gets there). */
  static async start (config: HostProcessConfig, options: SpawnOptions = {}): Promise<HostProcess> {
    const h = new HostProcess(config, options)
    try {
      await h.ready
    } catch (err) {
      await h.kill('SIGKILL')
      throw err
    }
    return h
  }

  /** The ready report (throws before `ready` resolved). */
  get info (): ReadyInfo {
    if (this.info_ === null) throw new Error(`host process ${this.name} is not ready`)
    return this.info_
  }

  /** The cluster's address as the child reported it at start. */
  get address (): string {
    return this.info.cluster?.address ?? ''
  }

  get running (): boolean {
    return this.exit_ === null
  }

  /** The child's last output (stdout and stderr interleaved, at most 64 KiB). */
  get log (): string {
    return this.log_
  }

  command<T = unknown> (cmd: Command): Promise<T> {
    if (this.exit_ !== null) return Promise.reject(new HostProcessExitedError(`host process ${this.name} has exited (${this.exit_.signal ?? this.exit_.code})`))
    const seq = ++this.seq
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { op: cmd.op, resolve: resolve as (v: unknown) => void, reject })
      const m: ToChild = { t: 'cmd', seq, cmd }
      this.child.send(m, (err) => {
        if (err !== null && this.pending.delete(seq)) reject(err)
      })
    })
  }

  call<T = unknown> (type: string, key: string, method: string, payload?: unknown, options: { quota?: string, timeoutMs?: number } = {}): Promise<T> {
    return this.command<T>({ op: 'call', type, key, method, ...(payload === undefined ? {} : { payload }), ...options })
  }

  cast (type: string, key: string, method: string, payload?: unknown): Promise<void> {
    return this.command({ op: 'cast', type, key, method, ...(payload === undefined ? {} : { payload }) })
  }

  callEach (agents: Agents, method: string, payload?: unknown, concurrency?: number): Promise<{ values: unknown[], errors: number, errorSamples: ErrorInfo[] }> {
    return this.command({ op: 'callEach', agents, method, ...(payload === undefined ? {} : { payload }), ...(concurrency === undefined ? {} : { concurrency }) })
  }

  loadStart (id: string, agents: Agents, method: string, payload?: unknown, concurrency?: number): Promise<void> {
    return this.command({ op: 'loadStart', id, agents, method, ...(payload === undefined ? {} : { payload }), ...(concurrency === undefined ? {} : { concurrency }) })
  }

  loadStop (id: string): Promise<LoadReport> {
    return this.command({ op: 'loadStop', id })
  }

  cluster (): Promise<ClusterInfo> {
    return this.command({ op: 'cluster' })
  }

  owners (agents: Agents): Promise<Array<string | null>> {
    return this.command({ op: 'owners', agents })
  }

  settled (timeoutMs?: number): Promise<void> {
    return this.command({ op: 'settled', ...(timeoutMs === undefined ? {} : { timeoutMs }) })
  }

  /** What keeps the cluster from settling, as this host sees it (null: no plugin says). */
  describe (): Promise<string | null> {
    return this.command({ op: 'describe' })
  }

  durableBacklog (): Promise<DurableBacklog> {
    return this.command({ op: 'durableBacklog' })
  }

  stats<T = Record<string, unknown>> (): Promise<T> {
    return this.command<T>({ op: 'stats' })
  }

  /**
   * host.close() in the child (a cluster host leaves: hands its shards over), then it
   * exits. If it has not exited after `timeoutMs`, it is killed and this rejects.
   */
  async close (timeoutMs = 60_000): Promise<Exit> {
    if (this.exit_ !== null) return this.exit_
    const closed = this.command({ op: 'close' }).catch(() => {})
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), timeoutMs) })
    const r = await Promise.race([this.exited, late])
    clearTimeout(timer)
    await closed
    if (r === 'late') {
      await this.kill('SIGKILL')
      throw new Error(`host process ${this.name} did not close within ${timeoutMs} ms; killed:\n${this.log_}`)
    }
    return r
  }

  /**
   * Send a signal. SIGKILL (the default) resolves once the process is gone; SIGSTOP and
   * SIGCONT resolve at once (the process is paused or resumed, not gone).
   */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.exit_ !== null) return
    this.child.kill(signal)
    if (signal === 'SIGKILL') await this.exited
  }
}
