/**
 * The page's agent lookup: `(quota, type, key)` → where the agent lives and what it holds,
 * read without delivering anything (`host.inspect`: never activates, never runs a handler;
 * the page can send no command). In a cluster the question goes to the host that serves
 * the agent's shard now (`host.cluster.ownerOf`), over the links (topic
 * `dashboard.inspect`), and that host answers from its own threads and store.
 *
 * The state is turned into display text on the host that read it (`preview`): JSON with
 * the msgpack types JSON lacks spelled out (bigint, typed arrays, Set, Map, Error),
 * truncated at 64 KiB, so it crosses a link and a WebSocket as one small string.
 */
import { InvalidArgumentError, messageOf } from '../../native-free-core/errors.ts'
import type { AgentInspection } from '../../src/thread/inspect-agent.ts'
import type { ClusterPeers } from '../cluster/peer-asks.ts'

export const INSPECT_TOPIC = 'dashboard.inspect'
const PREVIEW_CHARS = 64 * 1024
/** Storage keys a lookup shows. */
export const STORAGE_KEYS = 50

export interface LookupQuery {
  readonly quota: string
  readonly type: string
  readonly key: string
}

export interface LookupResult extends Omit<AgentInspection, 'state'> {
  /** The host that answered (the one serving the agent's shard, when there is one). */
  readonly host: string
  /** The state as display text (JSON), or null when there is none. */
  readonly stateText: string | null
  /** Something the page should say (no host serves the shard now, ...), or null. */
  readonly note: string | null
}

/** A lookup as it came from a page or a peer: three short strings, or an error. */
export function checkQuery (q: unknown): LookupQuery {
  const o = q as Partial<Record<keyof LookupQuery, unknown>> | null
  const str = (name: keyof LookupQuery, max: number): string => {
    const v = o?.[name]
    if (typeof v !== 'string' || v.length > max) throw new InvalidArgumentError(`${name} must be a string of at most ${max} characters`)
    return v
  }
  const quota = str('quota', 128)
  return { quota: quota === '' ? 'default' : quota, type: str('type', 128), key: str('key', 1024) }
}

/** The state as display text. */
export function preview (value: unknown): string | null {
  if (value === undefined) return null
  let text: string
  try {
    text = JSON.stringify(value, function (this: Record<string, unknown>, k: string, v: unknown) {
      const raw = k === '' ? value : this[k]
      if (typeof raw === 'bigint') return `${raw}n`
      if (ArrayBuffer.isView(raw)) {
        const bytes = new Uint8Array(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, 32))
        return `${raw.constructor.name}(${raw.byteLength} bytes) ${Buffer.from(bytes).toString('hex')}${raw.byteLength > 32 ? '…' : ''}`
      }
      if (raw instanceof Set) return { Set: [...raw] }
      if (raw instanceof Map) return { Map: [...raw] }
      if (raw instanceof Error) return { [raw.name]: raw.message }
      return v
    }, 2) ?? String(value)
  } catch (err) {
    text = `(cannot be shown: ${messageOf(err)})`
  }
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}\n… (${text.length - PREVIEW_CHARS} more characters)` : text
}

/** Inspect on this host and make the page's result. */
export async function lookUpHere (self: string, inspect: (q: LookupQuery) => Promise<AgentInspection>, q: LookupQuery, note: string | null = null): Promise<LookupResult> {
  const { state, ...rest } = await inspect(q)
  return { ...rest, host: self, stateText: preview(state), note }
}

/** Look up on the host that serves the agent now (this one without a cluster). */
export async function lookUp (self: string, inspect: (q: LookupQuery) => Promise<AgentInspection>, peers: ClusterPeers | undefined, q: LookupQuery): Promise<LookupResult> {
  if (peers === undefined) return await lookUpHere(self, inspect, q)
  const owner = peers.view.ownerOf(q)
  if (owner === null) return await lookUpHere(self, inspect, q, 'no host serves this agent\'s shard now (its owner is down, or there is no map yet): this is what this host has')
  if (owner === self) return await lookUpHere(self, inspect, q)
  return await peers.ask(owner, INSPECT_TOPIC, q, { timeoutMs: 5_000 }) as LookupResult
}
