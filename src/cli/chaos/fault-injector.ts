/**
 * Applies a fault plan (fault-plan.ts) to a running cluster, on `tracks` tracks side by
 * side (fault n on track n mod tracks; a fault waits while another holds its target),
 * and keeps what happened when: each fault's start, heal and end (ms from the run's start),
 * with a note when the heal itself struggled (a restart that needed more than one try).
 *
 * It also says which hosts the driver may send ops through (`usable()`): not a killed
 * one, not a stopped one — an op sent to a stopped process would wait in its IPC
 * channel until SIGCONT, which is the driver's attempt timeout's business, not the
 * plan's.
 */
import type { ClusterProcs } from '../procs/cluster-procs.ts'
import type { EtcdProcess } from '../procs/etcd-process.ts'
import { describeFault } from './fault-plan.ts'
import type { Fault } from './fault-plan.ts'

export interface FaultEvent {
  readonly fault: Fault
  /** ms from the run's start. */
  readonly startMs: number
  healMs: number
  endMs: number
  notes: string[]
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const kRestartTries = 5

export class FaultInjector {
  readonly events: FaultEvent[] = []
  private readonly procs: ClusterProcs
  private readonly etcd: EtcdProcess
  private readonly t0: number
  private readonly down = new Set<string>()
  /** Targets a fault holds now. */
  private readonly busy = new Set<string>()
  private readonly log: (line: string) => void
  private stopped = false

  constructor (procs: ClusterProcs, etcd: EtcdProcess, t0: number, log: (line: string) => void) {
    this.procs = procs
    this.etcd = etcd
    this.t0 = t0
    this.log = log
  }

  /** Hosts to send ops through now. */
  usable (): string[] {
    return this.procs.ids().filter((id) => !this.down.has(id))
  }

  private now (): number {
    return Math.round(performance.now() - this.t0)
  }

  /** Run the plan to its end (or until `stop()`: the faults held are healed, no more start). */
  async run (plan: readonly Fault[], tracks = 1): Promise<void> {
    const lanes = Array.from({ length: tracks }, (_, t) => plan.filter((f) => f.n % tracks === t))
    // a track that fails stops the others at their next fault; its error is the run's
    const errors: unknown[] = []
    await Promise.all(lanes.map(async (faults) => {
      try {
        await this.track(faults)
      } catch (err) {
        errors.push(err)
        this.stopped = true
      }
    }))
    if (errors.length !== 0) throw errors[0]
  }

  private async track (faults: readonly Fault[]): Promise<void> {
    for (const f of faults) {
      while (this.busy.has(f.target) && !this.stopped) await sleep(50)
      if (this.stopped) return
      this.busy.add(f.target)
      try {
        const e: FaultEvent = { fault: f, startMs: this.now(), healMs: -1, endMs: -1, notes: [] }
        this.events.push(e)
        this.log(`  ${String(e.startMs).padStart(6)} ms  ${describeFault(f)}`)
        await this.inject(f, e)
        await sleep(f.holdMs)
        e.healMs = this.now()
        await this.heal(f, e)
        e.endMs = this.now()
        if (e.notes.length !== 0) this.log(`          #${f.n}: ${e.notes.join('; ')}`)
      } finally {
        this.busy.delete(f.target)
      }
      await sleep(f.gapMs)
    }
  }

  stop (): void {
    this.stopped = true
  }

  private async inject (f: Fault, e: FaultEvent): Promise<void> {
    switch (f.kind) {
      case 'leave': {
        this.down.add(f.target)
        const t = performance.now()
        await this.procs.leave(f.target, 60_000)
        e.notes.push(`left in ${Math.round(performance.now() - t)} ms`)
        break
      }
      case 'kill':
        this.down.add(f.target)
        await this.procs.kill(f.target, 'SIGKILL')
        break
      case 'stop':
        this.down.add(f.target)
        await this.procs.kill(f.target, 'SIGSTOP')
        break
      case 'cut':
        this.procs.proxy(f.target).cut()
        break
      case 'pause':
        this.procs.proxy(f.target).pause()
        break
      case 'delay':
        this.procs.proxy(f.target).delay(f.delayMs ?? 50)
        break
      case 'etcd':
        await this.etcd.kill()
        break
    }
  }

  private async heal (f: Fault, e: FaultEvent): Promise<void> {
    switch (f.kind) {
      case 'leave':
      case 'kill':
        await this.restart(f.target, e)
        this.down.delete(f.target)
        break
      case 'stop':
        await this.procs.kill(f.target, 'SIGCONT')
        this.down.delete(f.target)
        break
      case 'cut':
      case 'pause':
      case 'delay':
        this.procs.proxy(f.target).heal()
        break
      case 'etcd':
        await this.etcd.restart()
        break
    }
  }

  /** Start a killed host again on its data; a start that fails (its old lease not gone yet, etcd down) is tried again. */
  private async restart (id: string, e: FaultEvent): Promise<void> {
    for (let t = 1; ; t++) {
      try {
        await this.procs.start([id])
        if (t > 1) e.notes.push(`restarted on try ${t}`)
        return
      } catch (err) {
        e.notes.push(`restart try ${t}: ${(err as Error).message.split('\n')[0]!}`)
        if (t === kRestartTries) throw err
        await sleep(500)
      }
    }
  }

  /** Heal whatever is still broken (a run cut short): every host running and resumed, proxies forwarding, etcd up. */
  async healAll (ids: readonly string[]): Promise<void> {
    if (!this.etcd.running) await this.etcd.restart()
    for (const id of ids) {
      this.procs.proxy(id).heal()
      const h = this.procs.host(id)
      if (h.running) await h.kill('SIGCONT')
      else await this.procs.start([id])
      this.down.delete(id)
    }
  }
}
