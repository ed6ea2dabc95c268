/**
 * `shoal`: run millions of small stateful agents on worker threads.
 *
 *   import { createHost, defineAgent } from 'shoal'
 */
export { createHost } from './host/host.ts'
// types only: a host comes from createHost, a ref from host.ref
export type { Host, HostEvents, AgentErrorEvent, WorkerRestartEvent, RefOptions, AgentFilter } from './host/host.ts'
export type { HostStats, ThreadGcStats, WorkerStats } from './observe/host-stats.ts'
export type { Quotas, QuotaInfo } from './tenancy/host-quotas.ts'
export type { FollowOptions } from './host/follow.ts'
export type { OffloadStats } from './offload/offload-pool.ts'
export { metricsContentType } from './observe/metrics.ts'
export type { AgentRef } from './host/agent-ref.ts'
export type { HostOptions, OffloadOptions } from './host/options.ts'
export type { HostPlugin } from './host/plugin.ts'
export type { Durability } from './storage/lmdb-store.ts'
export type { ClockKind } from './time/thread-clock.ts'
export { defaults } from './host/options.ts'
export type { CallOptions } from './host/pending-calls.ts'
export { nativeDecoderLoaded } from './thread/codec.ts'
export { defineAgent } from '../native-free-core/agent/define-agent.ts'
export type {
  AgentContext, AgentDefinition, AgentStorage, MethodName, PayloadOf, ReplyOf, StateOf
} from '../native-free-core/agent/define-agent.ts'
export type { AgentId, AgentAddress } from '../native-free-core/agent/agent-id.ts'
export * from '../native-free-core/errors.ts'
