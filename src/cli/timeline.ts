/**
 * Throughput and memory over time, for the HTML report's charts and the JSON: a sample
 * every `intervalMs` of the process RSS (main thread and workers share one process),
 * the main thread's heap, and the host's counters (messages delivered, resident
 * agents, commits), tagged with the phase running.
 *
 * Precision: samples are taken on the main thread's event loop, which the bench driver
 * yields at every chunk of a few thousand messages, so intervals stretch by a few ms;
 * each sample keeps its own timestamp and rates are computed from real deltas.
 * Workers' heaps are not sampled here (that needs a round trip per thread); RSS covers
 * them, and exact per-thread heaps are measured at the memory checkpoints.
 */
import type { Host } from '../index.ts'

export interface Sample {
  /** Milliseconds since the bench started. */
  readonly t: number
  readonly phase: string
  readonly rssBytes: number
  readonly mainHeapUsedBytes: number
  /** Messages delivered to agents so far, all threads. */
  readonly messages: number
  /** Messages per second since the previous sample. */
  readonly messagesPerSec: number
  readonly activeAgents: number
  readonly commits: number
  readonly committedStates: number
}

export interface PhaseSpan {
  readonly name: string
  readonly startMs: number
  readonly endMs: number
}

export class Timeline {
  readonly samples: Sample[] = []
  readonly phases: PhaseSpan[] = []
  private readonly t0: number
  private host: Host | null = null
  private timer: ReturnType<typeof setInterval> | null = null
  private current = 'setup'
  private currentStart = 0

  constructor (t0: number) {
    this.t0 = t0
  }

  now (): number {
    return performance.now() - this.t0
  }

  /** Begin sampling `host` every `intervalMs`. */
  start (host: Host, intervalMs: number): void {
    this.host = host
    this.sample()
    this.timer = setInterval(() => this.sample(), intervalMs)
    this.timer.unref()
  }

  /** Mark the start of a phase (and the end of the previous one). */
  enter (name: string): void {
    this.leave()
    this.current = name
    this.currentStart = this.now()
    if (this.host !== null) this.sample()
  }

  /** End the current phase, if one is open. */
  leave (): void {
    if (this.current === '') return
    if (this.host !== null) this.sample()
    this.phases.push({ name: this.current, startMs: this.currentStart, endMs: this.now() })
    this.current = ''
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.host !== null) this.sample()
    this.leave()
    this.host = null
  }

  private sample (): void {
    const host = this.host!
    const s = host.stats()
    let commits = 0
    let committedStates = 0
    for (const w of s.workers) {
      commits += w.commits
      committedStates += w.committedStates
    }
    const t = this.now()
    const prev = this.samples[this.samples.length - 1]
    const dt = prev === undefined ? 0 : (t - prev.t) / 1000
    const mem = process.memoryUsage()
    this.samples.push({
      t,
      phase: this.current,
      rssBytes: mem.rss,
      mainHeapUsedBytes: mem.heapUsed,
      messages: s.messages,
      messagesPerSec: prev === undefined || dt <= 0 ? 0 : (s.messages - prev.messages) / dt,
      activeAgents: s.activeAgents,
      commits,
      committedStates
    })
  }
}
