/**
 * One etcd lease kept alive, and the self-fencing that goes with it.
 *
 * Renewals go out every TTL/6, one at a time, each bounded by TTL/4. A renewal that
 * succeeds proves the lease lives until at least its *send* time + TTL (etcd extends
 * from when it receives it, which is later), so the keeper measures from send times.
 * If no renewal sent in the last TTL/2 has succeeded, the host is `fenced`: it must
 * stop serving, while its lease still has at least TTL/2 to run — nobody may take its
 * shards before the lease expires, so the two never overlap. A later success on the
 * same lease is `unfenced`. etcd saying the lease is gone (TTL 0, "lease not found")
 * is `lost`: the keeper stops; its owner grants a new lease.
 *
 * etcd being down is not `lost`: a restarted etcd revives its leases with a fresh TTL,
 * and a renewal that gets through then unfences the host with the same lease.
 */
import { EventEmitter } from 'node:events'
import type { Etcd3 } from 'etcd3'
import { isLeaseGone } from './etcd-client.ts'

export interface LeaseKeeperEvents {
  fenced: []
  unfenced: []
  lost: [error: Error]
}

export class LeaseKeeper extends EventEmitter<LeaseKeeperEvents> {
  readonly #client: Etcd3
  readonly #ttlMs: number
  readonly #now: () => number
  #id: string | undefined
  #lastRenewal = 0
  #fenced = false
  /** After `lost`, renewals of the new lease do not unfence: the owner does, once registered. */
  #held = false
  #inFlight = false
  #interval: NodeJS.Timeout | undefined
  #fenceTimer: NodeJS.Timeout | undefined
  #generation = 0

  constructor (client: Etcd3, ttlS: number, now: () => number = Date.now) {
    super()
    this.#client = client
    this.#ttlMs = ttlS * 1000
    this.#now = now
  }

  /** The current lease id (decimal string), once granted. */
  get id (): string | undefined { return this.#id }
  get fenced (): boolean { return this.#fenced }
  /** Send time of the last renewal (or grant) etcd confirmed. */
  get lastRenewal (): number { return this.#lastRenewal }

  /** Grant a new lease (replacing any previous one) and keep it alive. */
  async grant (): Promise<string> {
    this.#stopLoop()
    const generation = ++this.#generation
    const sentAt = this.#now()
    const res = await this.#client.leaseClient.leaseGrant({ TTL: this.#ttlMs / 1000 })
    const id = String(res.ID)
    if (generation !== this.#generation) {
      // stopped (or granted again) while waiting: this lease is nobody's
      this.#client.leaseClient.leaseRevoke({ ID: id }).catch(() => {})
      throw new Error('lease keeper stopped while granting')
    }
    this.#id = id
    this.#lastRenewal = sentAt
    this.#armFence()
    const every = Math.max(50, Math.floor(this.#ttlMs / 6))
    this.#interval = setInterval(() => { void this.#renew() }, every)
    return id
  }

  /** Mark fenced now (the lease is lost, or the caller knows it cannot serve). */
  fence (): void {
    if (this.#fenced) return
    this.#fenced = true
    this.emit('fenced')
  }

  /** Leave fenced state (after `lost`: once the new lease is granted and registered). */
  unfence (): void {
    this.#held = false
    if (!this.#fenced) return
    this.#fenced = false
    this.emit('unfenced')
  }

  /** Stop renewing and revoke (best effort, bounded by the client's call deadline). */
  async revoke (): Promise<void> {
    const id = this.#id
    this.stop()
    if (id === undefined) return
    try { await this.#client.leaseClient.leaseRevoke({ ID: id }) } catch {}
  }

  stop (): void {
    this.#stopLoop()
    this.#generation++
  }

  #stopLoop (): void {
    clearInterval(this.#interval)
    clearTimeout(this.#fenceTimer)
    this.#interval = undefined
    this.#fenceTimer = undefined
  }

  #armFence (): void {
    clearTimeout(this.#fenceTimer)
    const due = this.#lastRenewal + this.#ttlMs / 2 - this.#now()
    this.#fenceTimer = setTimeout(() => this.fence(), Math.max(0, due))
  }

  async #renew (): Promise<void> {
    if (this.#inFlight || this.#id === undefined) return
    this.#inFlight = true
    const generation = this.#generation
    const id = this.#id
    const sentAt = this.#now()
    try {
      const ttl = await this.#keepAliveOnce(id, this.#ttlMs / 4)
      if (generation !== this.#generation) return
      if (ttl <= 0) {
        this.#lose(new Error(`etcd lease ${id} expired`))
        return
      }
      if (sentAt > this.#lastRenewal) this.#lastRenewal = sentAt
      this.#armFence()
      if (!this.#held) this.unfence()
    } catch (e) {
      if (generation === this.#generation && isLeaseGone(e)) this.#lose(e as Error)
      // anything else (etcd down, deadline): keep trying; the fence timer decides
    } finally {
      this.#inFlight = false
    }
  }

  #lose (error: Error): void {
    this.stop()
    this.#held = true
    this.fence()
    this.emit('lost', error)
  }

  /** One keep-alive round trip on its own stream; resolves with the TTL etcd granted. */
  async #keepAliveOnce (id: string, timeoutMs: number): Promise<number> {
    const stream = await this.#client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs })
    try {
      return await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('lease keep-alive timed out')), timeoutMs)
        stream.on('data', (res: { TTL: string }) => { clearTimeout(timer); resolve(Number(res.TTL)) })
        stream.on('error', (err: Error) => { clearTimeout(timer); reject(err) })
        stream.on('end', () => { clearTimeout(timer); reject(new Error('lease keep-alive stream ended')) })
        stream.write({ ID: id })
      })
    } finally {
      try { stream.end() } catch {}
    }
  }
}
