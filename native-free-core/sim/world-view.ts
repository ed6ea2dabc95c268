/**
 * What a user sees of a simulated world: `WorldView` is what an invariant gets after
 * every step; `World` is what `simulate` returns (the view plus the trace).
 *
 * The view shows the *current* state only — committed states, messages in flight,
 * replies so far, the clock — never the history. That is deliberate: explore merges
 * orderings that reach the same state (state hashing), which is sound only if the
 * invariant cannot tell them apart. Keep what your invariant needs in the agents'
 * states or in the messages.
 */
import type { AgentAddress, AgentId } from '../agent/agent-id.ts'
import type { WireError } from '../errors.ts'
import type { TraceEntry } from './trace.ts'

export interface InFlightMessage {
  /** Its number in the trace (#seq). */
  readonly seq: number
  /** The sending agent, or null for a scenario message. */
  readonly from: AgentId | null
  readonly to: AgentId
  readonly method: string
  readonly payload: unknown
}

/** The reply to one scenario message: its value, or the error a host caller would get. */
export type Reply = { readonly ok: true, readonly value: unknown } | { readonly ok: false, readonly error: WireError }

export interface WorldView {
  /**
   * The agent's committed state (a copy), or `initial(key)` if it has none yet — the
   * state its next message would see. `durable: false` agents have no commit: their
   * current state.
   */
  state<S = any> (address: AgentAddress): S
  /** The agent's committed `ctx.storage` entries (copies), in key order. */
  storage<V = unknown> (address: AgentAddress, options?: { readonly prefix?: string }): Array<[string, V]>
  /** Agents that have a committed state (or are resident, for `durable: false` types), sorted. */
  agents (filter?: { readonly type?: string, readonly quota?: string }): AgentId[]
  /** Every message sent and not yet delivered (nor dropped), oldest first. */
  readonly inFlight: readonly InFlightMessage[]
  /**
   * Replies to the scenario messages, by index; undefined while none came (a message
   * lost, or still on its way). A message delivered twice keeps the reply its client
   * would act on: the first answer or non-retriable error; a later one replaces only a
   * retriable error such as WorkerCrashedError. Every reply is in the trace.
   */
  readonly replies: ReadonlyArray<Reply | undefined>
  /** The virtual clock. */
  readonly tick: number
  /** Steps taken so far. */
  readonly steps: number
  /** Nothing is left to deliver and the clock has run to `ticks`: the run is over. */
  readonly idle: boolean
}

export interface World extends WorldView {
  /** The seed of this run, or null when it replayed `replay`. */
  readonly seed: number | null
  readonly trace: readonly TraceEntry[]
  /** False when the run stopped at `maxSteps` with work left. */
  readonly complete: boolean
  /** The trace, one line per event. */
  print (): string
}
