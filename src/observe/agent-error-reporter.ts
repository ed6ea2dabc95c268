/**
 * Agent errors leave a worker for the host's 'agent-error' event over postMessage —
 * only while someone listens, and batched, so a handler that throws on every message
 * costs one postMessage per event-loop turn, not one per message.
 */
import type { WireError } from '../../native-free-core/errors.ts'

export interface AgentErrorReport {
  readonly id: string
  readonly method: string
  readonly error: WireError
}

const MAX_BATCH = 1000

export class AgentErrorReporter {
  private readonly listeners: Int32Array
  private readonly send: (errors: AgentErrorReport[], dropped: number) => void
  private batch: AgentErrorReport[] = []
  private dropped = 0
  private queued = false

  constructor (listeners: Int32Array, send: (errors: AgentErrorReport[], dropped: number) => void) {
    this.listeners = listeners
    this.send = send
  }

  report (id: string, method: string, error: WireError): void {
    if (Atomics.load(this.listeners, 0) === 0) return
    if (this.batch.length >= MAX_BATCH) {
      this.dropped++
      return
    }
    this.batch.push({ id, method, error })
    if (!this.queued) {
      this.queued = true
      setImmediate(() => this.flush())
    }
  }

  flush (): void {
    this.queued = false
    if (this.batch.length === 0 && this.dropped === 0) return
    const batch = this.batch
    const dropped = this.dropped
    this.batch = []
    this.dropped = 0
    this.send(batch, dropped)
  }
}
