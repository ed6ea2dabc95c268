/**
 * The trace of a simulated run: every event, in order, as plain data (so two runs can
 * be compared with `deepEqual` or `JSON.stringify`), and a readable printout.
 *
 * One scheduler *step* delivers one message or advances the clock by one tick; a step
 * produces several entries (the delivery, its commit, the sends it released and the
 * faults they met). Entries carry their step number and tick.
 *
 * Agents are named `type/key` (`quota/type/key` outside the default quota); the
 * scenario's clients `client#i` (or `client:name`). Messages are `#seq`, numbered in
 * creation order; a duplicate gets its own number, a redelivery keeps its. Payloads and reply values are copies
 * decoded from the bytes the host would carry, taken when the event happened.
 */
import { DEFAULT_QUOTA, kIdSeparator } from '../agent/agent-id.ts'

interface At { readonly step: number, readonly tick: number }

export type TraceEntry = At & (
  | { readonly kind: 'deliver', readonly msg: number, readonly from: string, readonly to: string, readonly method: string, readonly payload: unknown }
  | { readonly kind: 'send', readonly msg: number, readonly from: string, readonly to: string, readonly method: string, readonly payload: unknown }
  /** The reply to scenario message `msg` (ok, or an error as `{ code, message }`). */
  | { readonly kind: 'reply', readonly msg: number, readonly ok: boolean, readonly value: unknown }
  | { readonly kind: 'commit', readonly agents: readonly string[] }
  /** The host died before committing `agent`'s turn; the message it handled was redelivered or lost. */
  | { readonly kind: 'crash', readonly agent: string, readonly msg: number, readonly input: 'redelivered' | 'lost' }
  /** Lost; a durable send's record stays in the outbox, which delivers it again from tick `until` (null: gone). */
  | { readonly kind: 'drop', readonly msg: number, readonly until: number | null }
  /** A copy of a durable send that was applied already: the runtime dropped it (effectively-once). */
  | { readonly kind: 'discard', readonly msg: number }
  | { readonly kind: 'duplicate', readonly msg: number, readonly copy: number }
  | { readonly kind: 'reorder', readonly msg: number }
  | { readonly kind: 'delay', readonly msg: number, readonly until: number }
  /** A handler threw (the agent was rolled back), or a message or send could not be handled. */
  | { readonly kind: 'error', readonly agent: string, readonly method: string, readonly code: string, readonly message: string }
  | { readonly kind: 'tick' }
  /** The agent's `timeout` (reminder null) or `reminder(name)` turn runs. */
  | { readonly kind: 'timer', readonly agent: string, readonly reminder: string | null }
  /** The agent was passivated for idleness (`idleTicks`, `ctx.idleAfter`). */
  | { readonly kind: 'passivate', readonly agent: string }
  /** The run stopped at `maxSteps` with work left. */
  | { readonly kind: 'limit' }
)

const names = new Map<string, string>()

/** `type/key`, or `quota/type/key` outside the default quota. */
export function agentName (id: string): string {
  let name = names.get(id)
  if (name === undefined) {
    name = nameOf(id)
    if (names.size > 10_000) names.clear()
    names.set(id, name)
  }
  return name
}

function nameOf (id: string): string {
  const parts = id.split(kIdSeparator)
  if (parts.length < 3) return id
  const [quota, type] = parts
  const key = parts.slice(2).join(kIdSeparator)
  return quota === DEFAULT_QUOTA ? `${type}/${key}` : `${quota}/${type}/${key}`
}

/** One line per entry, grouped by step. */
export function formatTrace (trace: readonly TraceEntry[]): string {
  const lines: string[] = []
  let lastStep = -1
  for (const e of trace) {
    const head = e.step === lastStep ? ''.padEnd(16) : `step ${String(e.step).padEnd(4)} t${String(e.tick).padEnd(5)} `
    lastStep = e.step
    lines.push(head + describe(e))
  }
  return lines.join('\n')
}

function describe (e: TraceEntry): string {
  switch (e.kind) {
    case 'deliver': return `deliver   #${e.msg} ${e.from} → ${e.to}  ${e.method}(${show(e.payload)})`
    case 'send': return `send      #${e.msg} ${e.from} → ${e.to}  ${e.method}(${show(e.payload)})`
    case 'reply': return `reply     to #${e.msg}: ${e.ok ? show(e.value) : `error ${show(e.value)}`}`
    case 'commit': return `commit    ${e.agents.join(', ')}`
    case 'crash': return `CRASH     ${e.agent} before its commit: turn rolled back, #${e.msg} ${e.input}`
    case 'drop': return e.until === null ? `DROP      #${e.msg}: lost` : `DROP      #${e.msg}: lost with a ring, the outbox delivers it again from tick ${e.until}`
    case 'discard': return `discard   #${e.msg}: already applied (effectively-once)`
    case 'duplicate': return `DUPLICATE #${e.msg} as #${e.copy}`
    case 'reorder': return `REORDER   #${e.msg} may be overtaken`
    case 'delay': return `DELAY     #${e.msg} until tick ${e.until}`
    case 'error': return `error     ${e.agent} ${e.method}: ${e.code} ${e.message}`
    case 'tick': return 'tick'
    case 'timer': return e.reminder === null ? `timer     ${e.agent}: timeout` : `timer     ${e.agent}: reminder ${JSON.stringify(e.reminder)}`
    case 'passivate': return `passivate ${e.agent} (idle)`
    case 'limit': return 'limit     maxSteps reached with work left'
  }
}

/** A compact, JSON-like rendering (bigints, undefined, Sets and Dates included), cut at 120 characters. */
export function show (value: unknown): string {
  let s: string
  try {
    s = JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return `${v}n`
      if (v === undefined) return '‹undefined›'
      if (v instanceof Set) return { '‹Set›': [...v] }
      if (v instanceof Map) return { '‹Map›': [...v] }
      return v
    }) ?? String(value)
  } catch {
    s = String(value)
  }
  s = s.replaceAll('"‹undefined›"', 'undefined')
  return s.length > 120 ? s.slice(0, 117) + '...' : s
}
