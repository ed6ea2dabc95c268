/** The events a `Host` emits (it is an EventEmitter<HostEvents>). */
import type { AgentId } from '../../native-free-core/agent/agent-id.ts'
import type { ShoalError } from '../../native-free-core/errors.ts'

export interface AgentErrorEvent {
  /** The agent, when the error concerns one. */
  readonly id: AgentId | null
  readonly method: string
  readonly error: ShoalError
}

export interface WorkerRestartEvent {
  readonly thread: number
  readonly exitCode: number | null
  readonly error: Error | null
  /** Calls that failed with WorkerCrashedError. */
  readonly failedCalls: number
}

export interface HostEvents {
  'agent-error': [AgentErrorEvent]
  'worker-restart': [WorkerRestartEvent]
  error: [Error]
}
