/**
 * Plugins: what `createHost({ plugins: [...] })` lets an add-on do — the cluster
 * (plugins/cluster/), the dashboard (plugins/dashboard/). The host declares the interface
 * and plugins implement it, so `src/` never imports `plugins/` (the layers run one way).
 *
 * Lifecycle, in `createHost` order:
 *   setup(host)  the host exists (options resolved, agents loaded), no worker runs yet:
 *                a router plugin claims the gateway here, and may shape the shard states
 *                the workers start with;
 *   start()      the workers serve; a plugin that fails here fails `createHost` (the host
 *                is closed again);
 *   close()      `host.close()` calls it first, while the host still serves — a cluster
 *                hands its shards to the other hosts before this one stops.
 */
import type { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import type { Store } from '../../native-free-core/storage/store.ts'
import type { Gateway, RemoteRoutes } from './gateway.ts'
import type { HostEvents } from './host-events.ts'
import type { HostStats } from '../observe/host-stats.ts'

/**
 * A plugin, as `createHost({ plugins })` takes it. Users pass the ones this package makes
 * (`cluster(...)`); the members the host calls are internal (marked so: not in the
 * published types), as the interface may change while plugins live in this repository.
 */
export interface HostPlugin {
  /** Unique among a host's plugins; names it in errors, stats and metrics. */
  readonly name: string
  /** @internal This plugin routes frames for shards the host does not serve (the cluster): the host then keeps shard states. */
  readonly routes?: boolean
  /** @internal */
  setup? (host: PluginHost): void | Promise<void>
  /** @internal */
  start? (): void | Promise<void>
  /** @internal */
  close? (): void | Promise<void>
  /** @internal Figures added to `host.stats()` under the plugin's name. */
  stats? (): Record<string, unknown>
  /** @internal Prometheus text exposition lines appended to `host.metrics()`. */
  metrics? (): string
}

/** The host's resolved options a plugin may read (a view of ResolvedHostOptions). */
export interface PluginHostOptions {
  /** The agents module's URL. */
  readonly agents: string
  readonly workers: number
  readonly dataDir: string | undefined
  readonly durability: 'disk' | 'os'
  readonly tickMs: number
  readonly maxMessageBytes: number
  readonly callTimeoutMs: number
}

/** What a plugin may use of its host. */
export interface PluginHost {
  readonly options: PluginHostOptions
  readonly registry: AgentRegistry
  /** Emit one of the host's events (`cluster-change`, ...). */
  emit<K extends keyof HostEvents> (event: K, ...args: HostEvents[K]): boolean
  /** The host's own figures (without the plugins'). */
  stats (): HostStats
  /**
   * The main thread's handle on the store (LMDB with `dataDir`; the main thread's own
   * memory store with `workers: 0`), or null (workers keep memory stores of their own).
   */
  readonly store: Store | null
  /** Route the frames of shards this host does not serve through `routes`; once per host, by a plugin with `routes: true`. */
  gateway (routes: RemoteRoutes): Gateway
  /** Make `value` available as `host[name]` (the cluster's `host.cluster`). */
  expose (name: 'cluster', value: object): void
  /** Share a value with the plugins set up after this one (e.g. the cluster's HTTP/WebSocket server). */
  provide (name: string, value: unknown): void
  /** A value an earlier plugin provided, or undefined. */
  use<T> (name: string): T | undefined
}
