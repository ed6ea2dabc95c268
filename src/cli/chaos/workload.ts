/**
 * The chaos run's load: `lanes` loops in this process, each driving one op at a time
 * through a host process picked at random among those the fault injector says are up
 * (not killed, not stopped), and recording every attempt in the ledger:
 *
 *   add        chaos-counter `add(opId)` on one of `counters` keys
 *   transfer   chaos-account `transfer({ to, amount, opId })` between two of `accounts`
 *
 * An op is retried with the same op id until it is acknowledged — the way a client of a
 * retriable error should behave — through any host. Retriable: a ShoalError with
 * `retriable` (ShardUnavailableError, TimeoutError, WorkerCrashedError, LinkUnavailableError,
 * ClusterUnavailableError, RateLimitedError), the host process it went through dying or
 * being closed under it, or no answer within `attemptTimeoutMs` (a stopped host answers nothing; its late
 * answer is ignored, its attempt still counted). Anything else is a finding: the op is
 * abandoned and the error kept.
 *
 * `stop()` lets each lane finish its op (acknowledged, or given up at the deadline) and
 * starts no new one.
 */
import { ShoalError } from '../../../native-free-core/errors.ts'
import type { ClusterProcs } from '../procs/cluster-procs.ts'
import type { HostProcess } from '../procs/host-process.ts'
import { Rng } from '../rng.ts'
import { ACCOUNT, COUNTER } from './chaos-agents.ts'
import type { Ledger, OpRecord } from './ledger.ts'

export interface WorkloadOptions {
  readonly counters: number
  readonly accounts: number
  readonly lanes: number
  /** Share of ops that are transfers, [0, 1]. */
  readonly transferShare: number
  /** The host's own callTimeoutMs for each call. */
  readonly callTimeoutMs: number
  /** This process gives up waiting for an attempt's answer after this long. */
  readonly attemptTimeoutMs: number
  readonly seed: number
}

export const counterKey = (i: number): string => `c${i}`
export const accountKey = (i: number): string => `a${i}`

class AttemptTimeout extends Error {
  constructor (ms: number) {
    super(`no answer within ${ms} ms`)
    this.name = 'AttemptTimeout'
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export class Workload {
  private readonly procs: ClusterProcs
  private readonly ledger: Ledger
  private readonly o: WorkloadOptions
  private readonly usable: () => readonly string[]
  private readonly rng: Rng
  private readonly lanes: Array<Promise<void>> = []
  private stopping = false
  private deadline = Infinity

  private readonly t0: number

  /** `usable`: the ids of the hosts to send ops through now; `t0`: the load's start (performance.now()), for the ledger's times. */
  constructor (procs: ClusterProcs, ledger: Ledger, options: WorkloadOptions, usable: () => readonly string[], t0: number) {
    this.t0 = t0
    this.procs = procs
    this.ledger = ledger
    this.o = options
    this.usable = usable
    this.rng = new Rng(options.seed)
  }

  private now (): number {
    return Math.round(performance.now() - this.t0)
  }

  start (): void {
    for (let l = 0; l < this.o.lanes; l++) this.lanes.push(this.lane())
  }

  /** No new op; each lane retries its current one until acknowledged or `deadlineMs` from now. Resolves with the ops given up. */
  async stop (deadlineMs: number): Promise<number> {
    this.stopping = true
    this.deadline = performance.now() + deadlineMs
    await Promise.all(this.lanes)
    let open = 0
    for (const r of this.ledger.ops.values()) if (!r.acked && r.attempts > 0) open++
    return open
  }

  private async lane (): Promise<void> {
    while (!this.stopping) await this.drive(this.nextOp())
  }

  private nextOp (): OpRecord {
    if (this.rng.next() < this.o.transferShare) {
      const from = this.rng.below(this.o.accounts)
      const to = (from + 1 + this.rng.below(this.o.accounts - 1)) % this.o.accounts
      return this.ledger.open('transfer', accountKey(from), { to: accountKey(to), amount: 1 + this.rng.below(20) })
    }
    return this.ledger.open('add', counterKey(this.rng.below(this.o.counters)))
  }

  private async drive (r: OpRecord): Promise<void> {
    for (let tries = 0; ; tries++) {
      if (this.stopping && performance.now() > this.deadline) return
      const ids = this.usable()
      if (ids.length === 0) {
        await sleep(50)
        continue
      }
      const h = this.procs.host(ids[this.rng.below(ids.length)]!)
      r.attempts++
      const t = { via: h.name, atMs: this.now(), endMs: -1, outcome: '' }
      r.tries.push(t)
      try {
        r.value = await this.attempt(h, r)
        r.acked = true
        t.endMs = this.now()
        t.outcome = 'ack'
        return
      } catch (err) {
        t.endMs = this.now()
        t.outcome = err instanceof ShoalError ? err.name : (err as Error).name
        const kind = this.classify(err, h)
        if (kind === null) {
          this.ledger.fatal(r.id, h.name, `${(err as Error).name}: ${(err as Error).message}`)
          return
        }
        this.ledger.retriable(kind)
        await sleep(Math.min(500, 20 * 2 ** Math.min(tries, 5)) * (0.5 + this.rng.next()))
      }
    }
  }

  private async attempt (h: HostProcess, r: OpRecord): Promise<unknown> {
    const call = r.kind === 'add'
      ? h.call(COUNTER, r.key, 'add', r.id, { timeoutMs: this.o.callTimeoutMs })
      : h.call(ACCOUNT, r.key, 'transfer', { to: r.to, amount: r.amount, opId: r.id }, { timeoutMs: this.o.callTimeoutMs })
    call.catch(() => {}) // a late answer after the attempt timed out is ignored
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new AttemptTimeout(this.o.attemptTimeoutMs)), this.o.attemptTimeoutMs)
    })
    try {
      return await Promise.race([call, late])
    } finally {
      clearTimeout(timer)
    }
  }

  /** The name to count a retriable error under, or null for one that is not. */
  private classify (err: unknown, via: HostProcess): string | null {
    if (err instanceof AttemptTimeout) return 'no answer (host stopped?)'
    if (!via.running) return 'host process died'
    // a host the injector is closing (leave) may answer HostClosedError: the caller's host went away
    if (!this.usable().includes(via.name)) return `host going away (${err instanceof ShoalError ? err.code : (err as Error).name})`
    if (err instanceof ShoalError) return err.retriable ? err.code : null
    return null
  }
}
