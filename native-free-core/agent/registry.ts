/**
 * The agent types a host runs, numbered the same way on every thread.
 *
 * Frames on the rings name a type and a method by small integers rather than strings
 * (no string to decode per message). Every thread builds its registry from the same
 * module, sorting types and method names, so the numbers agree; `fingerprint` lets the
 * host check that at startup. Numbers never leave the host: anything persisted (the
 * outbox, reminders) or sent to another host uses names.
 */
import { InvalidDefinitionError, UnknownAgentTypeError, UnknownMethodError } from '../errors.ts'
import type { AgentDefinition, Handler } from './define-agent.ts'
import { isAgentDefinition } from './define-agent.ts'

export interface MethodInfo {
  readonly name: string
  readonly index: number
  readonly fn: Handler<unknown>
  /** Commands may change state and are persisted before replying; queries are read-only. */
  readonly command: boolean
}

export interface TypeInfo {
  readonly index: number
  readonly type: string
  readonly def: AgentDefinition
  readonly methods: readonly MethodInfo[]
  readonly byName: ReadonlyMap<string, MethodInfo>
  /** The definition's `timeout(state, ctx)` as a command (run by MSG_TIMER turns), or null. */
  readonly timeoutMethod: MethodInfo | null
  /** The definition's `reminder(state, name, ctx)` as a command (MSG_REMINDER turns, the name as payload), or null. */
  readonly reminderMethod: MethodInfo | null
  /**
   * False when `initial` surely ignores its argument (`takesNoArgument`): an activation
   * then decodes no key from the message to pass it.
   */
  readonly initialTakesKey: boolean
}

/**
 * True only for a function that cannot read an argument it is given: declared with an
 * empty parameter list (`() => …`, `initial () {…}`) — not a default or rest parameter,
 * which `length` does not count either — and not reading `arguments`. Decided from
 * the source text; anything else it cannot read (a bound or native function, a comment in
 * the parameter list, a computed name) counts as taking one.
 */
export function takesNoArgument (fn: (...args: never[]) => unknown): boolean {
  if (fn.length !== 0) return false
  const src = Function.prototype.toString.call(fn)
  if (src.includes('[native code]') || /\barguments\b/.test(src)) return false
  const open = src.indexOf('(')
  const close = src.indexOf(')', open + 1)
  return open >= 0 && close > open && src.slice(open + 1, close).trim() === ''
}

/**
 * Agent types one registry may hold: a resident cell keeps its type's index in the high
 * bits of its `flags` (runtime/cell.ts, TYPE_SHIFT), which must stay a V8 small integer.
 */
export const MAX_AGENT_TYPES = 1 << 14

export class AgentRegistry {
  readonly types: readonly TypeInfo[]
  private readonly byType: ReadonlyMap<string, TypeInfo>

  constructor (definitions: Iterable<AgentDefinition>) {
    const unique = new Map<string, AgentDefinition>()
    for (const def of definitions) {
      const prev = unique.get(def.type)
      if (prev !== undefined && prev !== def) {
        throw new InvalidDefinitionError(`two different definitions use the agent type ${JSON.stringify(def.type)}`, { type: def.type })
      }
      unique.set(def.type, def)
    }
    if (unique.size > MAX_AGENT_TYPES) {
      throw new InvalidDefinitionError(`a host runs at most ${MAX_AGENT_TYPES} agent types, not ${unique.size}`, { limit: MAX_AGENT_TYPES })
    }
    const sorted = [...unique.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
    this.types = sorted.map((def, index) => {
      const entries: Array<[string, Handler<unknown>, boolean]> = []
      for (const [name, fn] of Object.entries(def.commands ?? {})) entries.push([name, fn as Handler<unknown>, true])
      for (const [name, fn] of Object.entries(def.queries ?? {})) entries.push([name, fn as Handler<unknown>, false])
      entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      const methods = entries.map(([name, fn, command], i) => ({ name, index: i, fn, command }))
      const onTimeout = def.timeout
      // not among `methods`: no message can name it, and the fingerprint stays the handlers'
      const timeoutMethod: MethodInfo | null = onTimeout === undefined
        ? null
        : { name: 'timeout', index: -1, fn: (state, _payload, ctx) => onTimeout(state, ctx), command: true }
      const onReminder = def.reminder
      const reminderMethod: MethodInfo | null = onReminder === undefined
        ? null
        : { name: 'reminder', index: -1, fn: (state, name, ctx) => onReminder(state, name as string, ctx), command: true }
      const initialTakesKey = !takesNoArgument(def.initial)
      return { index, type: def.type, def, methods, byName: new Map(methods.map((m) => [m.name, m])), timeoutMethod, reminderMethod, initialTakesKey }
    })
    this.byType = new Map(this.types.map((t) => [t.type, t]))
  }

  /** Every `defineAgent` result among a module's exports. */
  static fromModule (namespace: Record<string, unknown>): AgentRegistry {
    const defs: AgentDefinition[] = []
    for (const value of Object.values(namespace)) {
      if (isAgentDefinition(value)) defs.push(value)
      else if (Array.isArray(value)) for (const v of value) if (isAgentDefinition(v)) defs.push(v)
    }
    return new AgentRegistry(defs)
  }

  get (type: string): TypeInfo | undefined {
    return this.byType.get(type)
  }

  require (type: string): TypeInfo {
    const info = this.byType.get(type)
    if (info === undefined) throw new UnknownAgentTypeError(type, this.types.map((t) => t.type))
    return info
  }

  method (info: TypeInfo, method: string): MethodInfo {
    const m = typeof method === 'string' ? info.byName.get(method) : undefined
    if (m === undefined) throw new UnknownMethodError(info.type, String(method))
    return m
  }

  /** Types and methods in order: two threads that agree on it agree on every index. */
  fingerprint (): string {
    return this.types.map((t) => `${t.type}(${t.methods.map((m) => (m.command ? '!' : '?') + m.name).join(',')})`).join(';')
  }
}
