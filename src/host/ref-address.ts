/**
 * What a ref resolves to once, kept apart from `AgentRef` (agent-ref.ts): routing and
 * follows read it, and neither needs the handle itself.
 */
import type { MethodInfo, TypeInfo } from '../../native-free-core/agent/registry.ts'

/**
 * Where a ref points, resolved once, plus what repeated use can skip: the id's UTF-8
 * bytes (kept from the second message on, so one-shot refs pay nothing) and the last
 * method looked up.
 */
export class RefAddress {
  readonly id: string
  readonly hash: number
  readonly info: TypeInfo
  readonly quota: string
  idBytes: Uint8Array | null = null
  uses = 0
  lastMethod = ''
  lastMethodInfo: MethodInfo | null = null

  constructor (id: string, hash: number, info: TypeInfo, quota: string) {
    this.id = id
    this.hash = hash
    this.info = info
    this.quota = quota
  }
}
