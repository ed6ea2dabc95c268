/** The events a `Host` emits (it is an EventEmitter<HostEvents>). */
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
  readonly exitCode: number | null
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
  error: [Error]
}
