/**
 * What a host does with a frame for a shard, one byte per shard in shared memory,
 * written by the host's main thread and read by the shard's home thread (the one
 * `hash → shard → thread` routing names, which never changes on a host).
 *
 * Every thread sends to a shard's home thread whatever the shard's state, so the path
 * from one sender to a shard never changes when the state does: frames of one sender
 * reach the home thread in order and leave it — run, forwarded, kept — in order. That is
 * why a shard can leave or arrive with no fence between worker threads (docs/cluster.md).
 *
 * A single host never changes a state: every shard is LOCAL (the zero a fresh
 * SharedArrayBuffer holds).
 */
import { SHARDS } from './hash.ts'

/** This host serves the shard: the home thread runs its frames. */
export const SHARD_LOCAL = 0
/** Served elsewhere (or leaving): the home thread hands its frames, undecoded, to the main thread's router. */
export const SHARD_FORWARD = 1
/** On its way here: the home thread keeps its frames until the main thread says it has arrived. */
export const SHARD_ARRIVING = 2

export type ShardStates = Uint8Array

export function createShardStates (buffer: SharedArrayBuffer | ArrayBuffer = new ArrayBuffer(SHARDS)): ShardStates {
  return new Uint8Array(buffer, 0, SHARDS)
}
