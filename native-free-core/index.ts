/**
 * `shoal/core`: what a user of the simulator and of the core's building blocks needs,
 * with no native addon and no `node:` module — it runs in Node, a browser or Deno:
 *
 *   defineAgent and its types    the same definitions a host runs
 *   simulate, explore            your agents on one thread, under every ordering and
 *                                fault (README, "Testing your agents")
 *   errors                       every ShoalError class and code
 *   ids and the placement hash   which of the 4,096 shards an agent lives in (fixed forever)
 *   TimingWheel, TokenBucket     the timer wheel and the rate-limit bucket, standalone
 *
 * The shard runtime, the rings, the stores and the other parts a host is built from are
 * internals (docs/architecture.md): the host imports them by path, and they may change
 * between versions.
 */
export * from './errors.ts'
export { DEFAULT_QUOTA, idString } from './agent/agent-id.ts'
export type { AgentId, AgentAddress } from './agent/agent-id.ts'
export { hashId, shardOf, SHARDS } from './placement/hash.ts'
export { defineAgent, isAgentDefinition, kAgentDefinition } from './agent/define-agent.ts'
export type {
  AgentContext, AgentDefinition, AgentSpec, AgentStorage, Handler, Handlers, MethodName, MethodsOf, PayloadOf,
  RateLimit, ReplyOf, StateOf
} from './agent/define-agent.ts'
export { simulate } from './sim/simulate.ts'
export { explore } from './sim/explore.ts'
export type { ExploreResult } from './sim/explore.ts'
export type { AgentsInput, ExploreOptions, ScenarioMessage, ScenarioOptions, SimulateOptions } from './sim/scenario.ts'
export type { FaultOptions } from './sim/faults.ts'
export type { InFlightMessage, Reply, World, WorldView } from './sim/world-view.ts'
export { formatTrace } from './sim/trace.ts'
export type { TraceEntry } from './sim/trace.ts'
export { TimingWheel, MAX_TICK, MAX_TIMERS } from './time/timing-wheel.ts'
export type { TimingWheelOptions } from './time/timing-wheel.ts'
export { TokenBucket } from './tenancy/token-bucket.ts'
