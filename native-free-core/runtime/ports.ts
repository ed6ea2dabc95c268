/**
 * The shard runtime's ports: what whoever runs a `ShardRuntime` plugs into it. The host
 * (worker threads, rings, LMDB) and the simulator (queues, a seeded scheduler) each
 * provide these; the runtime itself knows nothing of threads, rings or LMDB.
 */
import type { Utf8Decode } from './id-arena.ts'
import type { WireError } from '../errors.ts'
import type { AgentRegistry } from '../agent/registry.ts'
import type { Clock } from '../time/clock.ts'
import type { QuotaGate } from '../tenancy/quota-gate.ts'
import type { SendId, Store } from '../storage/store.ts'
import type { Envelope } from '../agent/envelope.ts'
import type { ShardStates } from '../placement/shard-state.ts'

/** How a durable send is applied once (durable-outbox.ts). */
export type OutboxMode = 'claim' | 'dedup'

export interface ValueCodec {
  /** Encode a state; the bytes must stay valid until the batch has committed. */
  encode (value: unknown): Uint8Array
  decode (bytes: Uint8Array): unknown
}

/** Where the runtime's effects go: the host's rings, or the simulator's queues. */
export interface RuntimeOutput {
  reply (replyTo: number, callId: number, ok: boolean, value: unknown): void
  /**
   * `durable` is a durable send's identity (null for others): the receiver needs it to
   * apply the send once. `from` is the sending agent's id (the simulator keeps sends in
   * order per sender and receiver; a batch may hold the turns of many agents).
   * `payloadBytes`, when given, are `payload` already encoded (a durable send's object
   * payload, taken from its outbox record): a transport may carry them as they are.
   */
  send (id: string, hash: number, typeIdx: number, methodIdx: number, payload: unknown, durable: SendId | null, from: string, payloadBytes?: Uint8Array | null): void
  /**
   * Dedup mode (durable-outbox.ts): agent `id` (placement hash `hash`) applied the durable
   * send `send`, and that is committed — or a copy of a send it applied earlier came
   * again. Acknowledge it to the sender, whose record can go (`Store.deleteOutbox`); once
   * no copy can arrive any more, send a MSG_FORGET the same way the copies came.
   */
  applied? (id: string, hash: number, send: SendId): void
  /** An async turn settled outside the host loop: run `commit()` and flush soon. */
  wake (): void
  /** A handler failed, or a message could not be handled (for events and dead letters). */
  agentError? (id: string, method: string, error: WireError): void
  /**
   * A committed state for the follower `(thread, followId)`: the state's encoded bytes
   * (`ok`), or why the subscription failed (a WireError).
   */
  followed? (thread: number, followId: number, ok: boolean, value: Uint8Array | WireError): void
  /**
   * A message for an agent whose shard this thread does not serve (any more): a message
   * that waited in a busy agent's mailbox, or a redelivered durable send. The host hands
   * it to whoever serves the shard. Only called when `shardStates` is given.
   */
  forward? (env: Envelope): void
  /**
   * The host is past its serving deadline now (its lease was last confirmed too long ago;
   * cluster only): what a busy agent's mailbox holds is forwarded, not run — the shard may
   * be served elsewhere by now, and this thread's state of it stale.
   */
  pastServingDeadline? (): boolean
  /**
   * The keys of this thread's stored durable sends not released yet — their commit has
   * not settled — are now within [lowest, upper) (0, 0: none). A host whose other threads
   * redeliver stored sends tells them to leave those alone (durable-outbox.ts).
   */
  unreleased? (lowest: number, upper: number): void
}

export interface ShardRuntimeOptions {
  readonly registry: AgentRegistry
  /** Committed states; null keeps every type in memory only (as `durable: false`). */
  readonly store: Store | null
  readonly codec: ValueCodec
  readonly output: RuntimeOutput
  readonly offload?: (name: string, input: unknown) => Promise<unknown>
  /** The host clock's tick when the runtime starts (a restarted worker joins a running clock). */
  readonly startTick?: number
  /** Largest encoded durable send: checked in the handler, since a stored send must be deliverable. */
  readonly maxMessageBytes?: number
  /** Time for rate limits. Default: `performance.now()`. */
  readonly clock?: Clock
  /** Real time for commit latency (stats only). Default: `performance.now()`. */
  readonly stopwatch?: Clock
  /** The host's quotas as this thread sees them. Default: only 'default', unlimited, counted privately. */
  readonly quotas?: QuotaGate
  /** Initial agent-table slots and timer-wheel nodes (default 1024 each); the simulator starts its many small runtimes smaller. */
  readonly tableCapacity?: number
  /**
   * Bytes per chunk of the resident agents' ids (IdArena; a power of two of at least 2 KiB,
   * default 1 MiB): the simulator's runtimes, one per world it explores, take a small one —
   * zeroing a 1 MiB chunk was most of the cost of making a world.
   */
  readonly idChunkBytes?: number
  /** Bytes and entries a commit batch's ids and states start with (they grow; default 16 KiB and 512): the simulator's take little. */
  readonly batchRoom?: { readonly bytes: number, readonly entries: number }
  /**
   * How the runtime makes an id string from its bytes (IdArena): Node's
   * `Buffer.prototype.utf8Slice` on the workers; TextDecoder by default.
   */
  readonly decodeUtf8?: Utf8Decode
  /**
   * How a durable send is applied once (durable-outbox.ts). `'claim'` (default): the
   * receiver removes the sender's outbox record in its own batch — the sender's record
   * must be in the receiver's store (one host). `'dedup'`: the receiver records what it
   * applied and reports it (`RuntimeOutput.applied`) so the sender can drop its record —
   * for senders on other hosts.
   */
  readonly outbox?: OutboxMode
  /**
   * Which shards this thread serves (placement/shard-state.ts), shared with the host's
   * main thread; omitted on a single host, where every shard of the thread is served.
   */
  readonly shardStates?: ShardStates
}
