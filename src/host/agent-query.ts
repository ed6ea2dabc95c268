/**
 * A listing's query as `host.agents(filter)` validated it, and what a plugin that lists
 * agents in its place implements (plugin.ts: the cluster lists every host's agents).
 */
import { typeOf } from '../../native-free-core/agent/agent-id.ts'

/**
 * What a listing asks for, validated: ids that start with `prefix` and, when `type` is
 * given (a type without a quota: ids of that type in every quota), whose type is `type`.
 */
export interface AgentQuery {
  readonly prefix: string
  readonly type: string | null
}

/** Lists every agent a query matches, once each, as id strings (a plugin's: the cluster lists every host's). */
export type AgentLister = (query: AgentQuery) => AsyncIterable<string>

export function matchesQuery (query: AgentQuery, id: string): boolean {
  return id.startsWith(query.prefix) && (query.type === null || typeOf(id) === query.type)
}
