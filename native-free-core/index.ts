/**
 * `shoal/core`: the parts of Shoal that need no native addon and no `node:` module —
 * agent definitions, ids and placement hash, the SharedArrayBuffer ring and doorbell,
 * the shard runtime, the in-memory store, errors, and the deterministic simulator
 * (`simulate`, `explore`: your agents on one thread, under every ordering and fault).
 * Hosts inject their capabilities (store, codec, clock) through the interfaces
 * declared here.
 */
export * from './errors.ts'
export { DEFAULT_QUOTA, idOf, idString, parseId, checkKey, checkName } from './agent/agent-id.ts'
export type { AgentId, AgentAddress } from './agent/agent-id.ts'
export { hashId, shardOf, SHARDS } from './placement/hash.ts'
export { defineAgent, isAgentDefinition, kAgentDefinition } from './agent/define-agent.ts'
export type {
  AgentContext, AgentDefinition, AgentSpec, AgentStorage, Handler, Handlers, MethodName, MethodsOf, PayloadOf,
  RateLimit, ReplyOf, StateOf
} from './agent/define-agent.ts'
export { AgentRegistry } from './agent/registry.ts'
export type { MethodInfo, TypeInfo } from './agent/registry.ts'
export { RingConsumer, RingProducer, createRing, forEachFrame, maxFrameBytes, ringCapacity, ringDepth, RING_HEADER_BYTES } from './ring/ring-queue.ts'
export type { BytesView, FrameTarget } from './ring/ring-queue.ts'
export { Doorbell, DOORBELL_BYTES } from './ring/doorbell.ts'
export { Envelope, MSG_CALL, MSG_CAST, MSG_FOLLOW, MSG_FORGET, MSG_REMINDER, MSG_SEND, MSG_TIMER, MSG_UNFOLLOW } from './agent/envelope.ts'
export { ShardRuntime } from './runtime/shard-runtime.ts'
export type { RuntimeOutput, ShardRuntimeOptions, ValueCodec } from './runtime/shard-runtime.ts'
export { MemoryStore } from './storage/memory-store.ts'
export type { AppliedId, AppliedRecord, OutboxRecord, SendId, Store, WriteBatch } from './storage/store.ts'
export { RANGE_CHUNK_BYTES, isShardRanges } from './storage/shard-range.ts'
export type { ShardRanges, ShardSize } from './storage/shard-range.ts'
export { STORE_FORMAT } from './storage/store-format.ts'
export type { OutboxMode } from './runtime/durable-outbox.ts'
export type { MemoryStoreOptions } from './storage/memory-store.ts'
export { AgentTable } from './runtime/agent-table.ts'
export { TimingWheel, MAX_TICK, MAX_TIMERS } from './time/timing-wheel.ts'
export type { TimingWheelOptions } from './time/timing-wheel.ts'
export { AgentTimers, MAX_TIMER_TICKS } from './time/agent-timers.ts'
export type { TimerHost } from './time/agent-timers.ts'
export { TokenBucket } from './tenancy/token-bucket.ts'
export { systemClock } from './time/clock.ts'
export type { Clock } from './time/clock.ts'
export { RateLimits, LimitedCell } from './tenancy/rate-limits.ts'
export { Followers, Follower } from './runtime/followers.ts'
export { CommitStats, BATCH_BOUNDS, LATENCY_BOUNDS_MS } from './runtime/commit-stats.ts'
export { QuotaCounters, QUOTA_CHUNK } from './tenancy/quota-counters.ts'
export { QuotaDirectory, QuotaGate } from './tenancy/quota-gate.ts'
export type { QuotaBatch } from './tenancy/quota-gate.ts'
export { isQuotaRecords } from './tenancy/quota-store.ts'
export type { QuotaRecords } from './tenancy/quota-store.ts'
export { simulate } from './sim/simulate.ts'
export { explore } from './sim/explore.ts'
export type { ExploreResult } from './sim/explore.ts'
export type { AgentsInput, ExploreOptions, ScenarioMessage, SimulateOptions } from './sim/scenario.ts'
export type { FaultOptions } from './sim/faults.ts'
export type { InFlightMessage, Reply, World, WorldView } from './sim/world-view.ts'
export { formatTrace } from './sim/trace.ts'
export type { TraceEntry } from './sim/trace.ts'
