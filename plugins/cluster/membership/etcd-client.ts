/**
 * The etcd3 client as membership needs it: every unary call bounded by a deadline, no
 * retries or circuit breakers of the client's own (etcd3's default breaker shuts a host
 * out for 5 s after three failures — longer than a lease TTL, so a host would fence
 * itself after every etcd restart), and watch streams that come back within a fraction
 * of the TTL. Membership retries on its own schedule, which the TTL sets.
 */
import { Etcd3, EtcdLeaseInvalidError } from 'etcd3'
import type { IOptions } from 'etcd3'
import { messageOf } from '../../../native-free-core/errors.ts'

type FaultHandling = NonNullable<IOptions['faultHandling']>
type Policy = NonNullable<FaultHandling['global']>
type Backoff = NonNullable<FaultHandling['watchBackoff']>

const neverAborted = new AbortController().signal
/** Runs the call once: etcd3 only ever calls `execute` on its policies. */
const passThrough = {
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => await fn({ signal: neverAborted })
} as unknown as Policy

class CappedBackoff {
  readonly duration: number
  readonly max: number
  constructor (duration: number, max: number) {
    this.duration = duration
    this.max = max
  }

  next (): CappedBackoff { return new CappedBackoff(Math.min(this.duration * 2, this.max), this.max) }
}

export interface EtcdClientOptions {
  readonly hosts: readonly string[]
  /** Deadline of each unary call. */
  readonly callTimeoutMs: number
  /** Longest pause before a broken watch stream reconnects. */
  readonly watchBackoffMaxMs: number
}

export function createEtcdClient (options: EtcdClientOptions): Etcd3 {
  return new Etcd3({
    hosts: [...options.hosts],
    defaultCallOptions: (context) => context.isStream ? {} : { deadline: Date.now() + options.callTimeoutMs },
    faultHandling: {
      host: () => passThrough,
      global: passThrough,
      watchBackoff: new CappedBackoff(Math.min(50, options.watchBackoffMaxMs), options.watchBackoffMaxMs) as unknown as Backoff
    },
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': Math.max(100, options.watchBackoffMaxMs)
    }
  })
}

/** etcd answered that the lease does not exist (expired or revoked). */
export function isLeaseGone (error: unknown): boolean {
  return error instanceof EtcdLeaseInvalidError || /requested lease not found/i.test(messageOf(error))
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
