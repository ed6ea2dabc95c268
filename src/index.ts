/**
 * `shoal`: run millions of small stateful agents on worker threads.
 *
 *   import { createHost, defineAgent } from 'shoal'
 */
export { createHost, Host } from './host.ts'
export type { HostEvents, AgentErrorEvent, WorkerRestartEvent, RefOptions } from './host.ts'
export type { HostStats, WorkerStats } from './host-stats.ts'
export type { Quotas, QuotaInfo } from './host-quotas.ts'
export type { FollowOptions } from './follow.ts'
export type { OffloadStats } from './offload-pool.ts'
export { metricsContentType } from './metrics.ts'
export { AgentRef } from './agent-ref.ts'
export type { HostOptions, OffloadOptions } from './options.ts'
export type { ClockKind } from './thread-clock.ts'
export { defaults } from './options.ts'
export type { CallOptions } from './pending-calls.ts'
export { nativeDecoderLoaded } from './codec.ts'
export { defineAgent } from '../native-free-core/define-agent.ts'
export type {
  AgentContext, AgentDefinition, AgentStorage, MethodName, PayloadOf, ReplyOf, StateOf
} from '../native-free-core/define-agent.ts'
export type { AgentId, AgentAddress } from '../native-free-core/agent-id.ts'
export * from '../native-free-core/errors.ts'
