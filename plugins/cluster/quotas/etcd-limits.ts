/**
 * Quota limits in etcd, beside the membership's keys:
 *
 *   ${prefix}/quotas/${quota}    the limit, as decimal text or 'Infinity'
 *
 * `host.quotas.set` on any host writes the key, `delete` deletes it; every host watches
 * the keys and applies each change (`PluginQuotas.apply`: stored in its LMDB, enforced by
 * its workers). The writer applies its own change as soon as etcd has it, at that
 * revision, so `await host.quotas.set(...)` is enforced on this host when it resolves;
 * the others apply it when their watch delivers it (a few milliseconds). Each quota
 * remembers the revision it was last applied at, so a late or repeated event never rolls
 * a newer limit back.
 *
 * At start (and when the watch had to be re-made) a host reads the whole table and
 * makes its own match it: the cluster's table replaces whatever the host's data
 * directory held, quotas it does not name included ('default' without a key: no limit).
 */
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3'
import { DEFAULT_QUOTA } from '../../../native-free-core/agent/agent-id.ts'
import { ClusterUnavailableError, messageOf } from '../../../native-free-core/errors.ts'
import type { PluginQuotas } from '../../../src/host/plugin.ts'
import { key, rangeEnd } from '../membership/cluster-keys.ts'
import type { LimitTable } from './limit-table.ts'

const RETRY_MS = 200

export class EtcdQuotaLimits implements LimitTable {
  readonly prefix: string
  private readonly client: () => Etcd3
  private readonly quotas: PluginQuotas
  private readonly warn: (message: string) => void
  /** Per quota, the revision of the last change applied (a put's mod revision, a delete's revision). */
  private readonly revisions = new Map<string, number>()
  /** The last apply started per quota, until it ends. */
  private readonly applying = new Map<string, Promise<void>>()
  private watcher: Watcher | undefined
  private closed = false

  /** `prefix`: the cluster's etcd prefix (the membership's). */
  constructor (prefix: string, client: () => Etcd3, quotas: PluginQuotas, warn: (message: string) => void) {
    this.prefix = `${prefix}/quotas/`
    this.client = client
    this.quotas = quotas
    this.warn = warn
  }

  async start (): Promise<void> {
    const revision = await this.resync()
    await this.watch(revision)
  }

  async set (quota: string, limit: number): Promise<void> {
    let revision: number
    try {
      const res = await this.client().kv.put({ key: key(this.prefix + quota), value: key(String(limit)) })
      revision = Number(res.header.revision)
    } catch (err) {
      throw unavailable('set', err)
    }
    await this.apply(quota, limit, revision)
  }

  async delete (quota: string): Promise<boolean> {
    let revision: number
    let existed: boolean
    try {
      const res = await this.client().kv.deleteRange({ key: key(this.prefix + quota) })
      revision = Number(res.header.revision)
      existed = Number(res.deleted) > 0
    } catch (err) {
      throw unavailable('delete', err)
    }
    await this.apply(quota, null, revision)
    return existed
  }

  async close (): Promise<void> {
    this.closed = true
    await this.watcher?.cancel().catch(() => {})
    this.watcher = undefined
  }

  /** Read every limit at one revision and make this host's table match; returns that revision. */
  private async resync (): Promise<number> {
    const res = await this.client().kv.range({ key: key(this.prefix), range_end: rangeEnd(this.prefix) })
    const revision = Number(res.header.revision)
    const named = new Set<string>()
    const applied: Array<Promise<unknown>> = []
    for (const kv of res.kvs) {
      const quota = this.quotaOf(kv)
      if (quota === undefined) continue
      named.add(quota)
      const limit = this.limitOf(quota, kv)
      if (limit !== undefined) applied.push(this.follow(quota, limit, Number(kv.mod_revision)))
    }
    for (const { quota } of this.quotas.list()) {
      if (!named.has(quota)) applied.push(this.follow(quota, quota === DEFAULT_QUOTA ? Infinity : null, revision))
    }
    await Promise.all(applied)
    return revision
  }

  private async watch (after: number): Promise<void> {
    const watcher = await this.client().watch().prefix(this.prefix).startRevision(String(after + 1)).create()
    if (this.closed) {
      await watcher.cancel().catch(() => {})
      return
    }
    this.watcher = watcher
    let disconnected = false
    watcher.on('data', (res: IWatchResponse) => {
      for (const ev of res.events) {
        const quota = this.quotaOf(ev.kv)
        if (quota === undefined) continue
        const revision = Number(ev.kv.mod_revision)
        if (ev.type === 'Put') {
          const limit = this.limitOf(quota, ev.kv)
          if (limit !== undefined) void this.follow(quota, limit, revision)
        } else {
          void this.follow(quota, quota === DEFAULT_QUOTA ? Infinity : null, revision)
        }
      }
    })
    watcher.on('disconnected', () => { disconnected = true })
    watcher.on('connected', () => {
      if (!disconnected) return
      disconnected = false
      void this.resync().catch(() => {}) // the stream resumes from its revision; this catches what a compaction hid
    })
    watcher.on('error', () => {
      if (this.closed) return
      this.watcher = undefined
      void (async () => {
        while (!this.closed) {
          try {
            await this.watch(await this.resync())
            return
          } catch {
            await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
          }
        }
      })()
    })
  }

  /**
   * Apply a change here unless a newer one was; resolves when this host enforces it (or
   * the newer change: the watch may bring a host's own write before etcd's answer does).
   */
  private apply (quota: string, limit: number | null, revision: number): Promise<void> {
    if ((this.revisions.get(quota) ?? 0) >= revision) return this.applying.get(quota) ?? Promise.resolve()
    this.revisions.set(quota, revision)
    const applied = this.quotas.apply(quota, limit).then(() => {})
    const settled = applied.catch(() => {})
    this.applying.set(quota, settled)
    void settled.then(() => { if (this.applying.get(quota) === settled) this.applying.delete(quota) })
    return applied
  }

  /** The same, for a change this host did not ask for: a failure is told, not thrown. */
  private follow (quota: string, limit: number | null, revision: number): Promise<void> {
    return this.apply(quota, limit, revision).catch((err: unknown) => {
      this.warn(`quota ${JSON.stringify(quota)} from etcd not applied: ${messageOf(err)}`)
    })
  }

  private quotaOf (kv: IKeyValue): string | undefined {
    const k = kv.key.toString('utf8')
    return k.startsWith(this.prefix) && k.length > this.prefix.length ? k.slice(this.prefix.length) : undefined
  }

  private limitOf (quota: string, kv: IKeyValue): number | undefined {
    const limit = Number(kv.value.toString('utf8'))
    if (limit === Infinity || (Number.isInteger(limit) && limit >= 0 && limit <= 2 ** 31 - 1)) return limit
    this.warn(`quota ${JSON.stringify(quota)}: etcd holds ${JSON.stringify(kv.value.toString('utf8'))}, not a limit; ignored`)
    return undefined
  }
}

function unavailable (op: string, err: unknown): ClusterUnavailableError {
  return new ClusterUnavailableError(`host.quotas.${op}: no answer from etcd (${messageOf(err)}): the change may or may not have been made; retry`, { cause: messageOf(err) }, { cause: err })
}
