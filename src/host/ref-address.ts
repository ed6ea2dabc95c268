/**
 * What a ref resolves to once, kept apart from `AgentRef` (agent-ref.ts): routing and
 * follows read it, and neither needs the handle itself.
 */
import { idString } from '../../native-free-core/agent/agent-id.ts'
import type { MethodInfo, TypeInfo } from '../../native-free-core/agent/registry.ts'
import type { IdPrefixBytes } from '../thread/frame-codec.ts'

/**
 * Where a ref points, resolved once, plus what repeated use can skip: the id's UTF-8
 * bytes (kept from the second message on, so one-shot refs pay nothing) and the last
 * method looked up.
 *
 * The id string is made when something asks for it, not per ref: a ref's first message
 * writes the id into its frame from `prefix` (the UTF-8 bytes of `quota \x1f type \x1f`,
 * shared by every ref of that quota and type) and the key. Building `quota + … + key`
 * for every new ref, and flattening it for the frame's UTF-8 write, was 0.2 µs of the
 * main thread's 0.5 µs per activation (bench/RESULTS.md, issue 13).
 */
export class RefAddress {
  /** The id's placement hash as an int32 (hashId's 32 bits: `>>> 0` gives hashId's value; shardOf reads either). */
  readonly hash: number
  readonly info: TypeInfo
  readonly quota: string
  readonly key: string
  /** UTF-8 bytes of `quota \x1f type \x1f`, also as words (shared: never written). */
  readonly prefix: IdPrefixBytes
  idBytes: Uint8Array | null = null
  uses = 0
  lastMethod = ''
  lastMethodInfo: MethodInfo | null = null
  #id: string | null = null

  constructor (prefix: IdPrefixBytes, key: string, hash: number, info: TypeInfo, quota: string) {
    this.prefix = prefix
    this.key = key
    this.hash = hash
    this.info = info
    this.quota = quota
  }

  /** The id string `quota \x1f type \x1f key`, made on first use. */
  get id (): string {
    return this.#id ??= idString(this.quota, this.info.type, this.key)
  }
}
