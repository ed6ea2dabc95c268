/**
 * Agent identity: the triplet (quota, type, key), dist_agent's model.
 *
 * Inside a host an id travels as one string `quota \x1f type \x1f key`: it is the key
 * of the agent tables, the input of the placement hash and the prefix of LMDB keys.
 * Quota and type names may not contain the separator; the key may contain anything,
 * since it is always the last part and the string splits on the first two separators.
 *
 * The string form is fixed forever, like the hash over it: changing it moves every
 * agent and orphans every stored record.
 */
import { InvalidArgumentError } from '../errors.ts'

export const kIdSeparator = '\u001f'
export const DEFAULT_QUOTA = 'default'
/** Longest id in UTF-8 bytes; keeps LMDB keys (id + storage key) under lmdb's 1978-byte limit. */
export const MAX_ID_BYTES = 1024
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:/@-]{0,127}$/

/** A plain, serializable agent address: it can travel inside payloads (Pachyderm's ping-pong). */
export interface AgentId {
  readonly quota: string
  readonly type: string
  readonly key: string
}

/** What `ctx.send` and the simulator accept as a target: quota defaults to `'default'`. */
export interface AgentAddress {
  readonly type: string
  readonly key: string
  readonly quota?: string | undefined
}

export function idString (quota: string, type: string, key: string): string {
  return quota + kIdSeparator + type + kIdSeparator + key
}

export function parseId (id: string): AgentId {
  const a = id.indexOf(kIdSeparator)
  const b = id.indexOf(kIdSeparator, a + 1)
  return { quota: id.slice(0, a), type: id.slice(a + 1, b), key: id.slice(b + 1) }
}

export function keyOf (id: string): string {
  return id.slice(id.indexOf(kIdSeparator, id.indexOf(kIdSeparator) + 1) + 1)
}

export function typeOf (id: string): string {
  const a = id.indexOf(kIdSeparator)
  return id.slice(a + 1, id.indexOf(kIdSeparator, a + 1))
}

/** Ids in messages: the separators shown as '/'. */
export function printable (id: string): string {
  return id.replaceAll(kIdSeparator, '/')
}

/** Type and quota names: short identifiers, so ids stay small and log-friendly. */
export function isValidName (name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name)
}

export function checkName (what: 'quota' | 'type', name: unknown): string {
  if (!isValidName(name)) {
    throw new InvalidArgumentError(
      `agent ${what} must be 1–128 characters of [A-Za-z0-9_.:/@-] starting with a letter, digit or _ (got ${JSON.stringify(name)})`,
      { [what]: typeof name === 'string' ? name : String(name) })
  }
  return name
}

/**
 * Keys are any well-formed string: lone surrogates would not survive UTF-8 and would
 * silently address a different agent on the other side of a ring or a socket.
 */
export function checkKey (key: unknown): string {
  // the errors apart: a small function is inlined into `host.ref`
  if (typeof key !== 'string' || !key.isWellFormed()) throw badKey(key)
  return key
}

function badKey (key: unknown): InvalidArgumentError {
  if (typeof key !== 'string') return new InvalidArgumentError(`agent key must be a string (got ${typeof key})`, { key: String(key) })
  return new InvalidArgumentError('agent key must be a well-formed string (it contains a lone surrogate)', { key })
}

/** Build and check the id string of an address; the quota defaults to `'default'`. */
export function idOf (address: AgentAddress): string {
  if (address === null || typeof address !== 'object') {
    throw new InvalidArgumentError(`an agent address must be an object { type, key, quota? } (got ${String(address)})`)
  }
  const quota = address.quota === undefined ? DEFAULT_QUOTA : checkName('quota', address.quota)
  const id = idString(quota, checkName('type', address.type), checkKey(address.key))
  if (id.length > MAX_ID_BYTES / 3 && utf8Length(id) > MAX_ID_BYTES) {
    throw new InvalidArgumentError(`agent id is longer than ${MAX_ID_BYTES} UTF-8 bytes`, { type: address.type, quota })
  }
  return id
}

export function utf8Length (s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff) { n += 4; i++ } else n += 3
  }
  return n
}
