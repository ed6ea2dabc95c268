/**
 * The events a `Host` emits (it is an EventEmitter<HostEvents>). A host never emits
 * 'error' (which, without a listener, would throw and end the process): what goes wrong
 * inside it reaches the caller it concerns, an 'agent-error' or a 'worker-restart', and
 * is counted in `host.stats()` whether anyone listens or not.
 */
import type { AgentId } from '../../native-free-core/agent/agent-id.ts'
import type { ShoalError } from '../../native-free-core/errors.ts'
import type { ClusterMember } from './cluster-view.ts'

export interface AgentErrorEvent {
  /** The agent, when the error concerns one. */
  readonly id: AgentId | null
  readonly method: string
  readonly error: ShoalError
}

export interface WorkerRestartEvent {
  readonly thread: number
  /** The dead worker's exit code; -1 when the previous replacement failed to start (see `error`). */
  readonly exitCode: number | null
  /**
   * Why it died, if it said: its uncaught error, or the WorkerStartError (or other
   * ShoalError, such as a StorageError) of a replacement that failed to start — which is
   * then tried again, with backoff.
   */
  readonly error: Error | null
  /** Calls that failed with WorkerCrashedError. */
  readonly failedCalls: number
}

/** The cluster's members or shard map changed (with the cluster plugin). */
export interface ClusterChangeEvent {
  /** The shard map's epoch this host has applied. */
  readonly epoch: number
  readonly members: readonly ClusterMember[]
  /** Shards this host started or stopped serving with this change. */
  readonly gained: readonly number[]
  readonly lost: readonly number[]
  /** Shards moving anywhere in the cluster. */
  readonly moving: number
}

export interface HostEvents {
  'agent-error': [AgentErrorEvent]
  'worker-restart': [WorkerRestartEvent]
  'cluster-change': [ClusterChangeEvent]
}
