/**
 * A host that takes up shards the map already plans to move away from it moves them.
 *
 * The handover compares the map with what the host serves one step at a time, and a step
 * planned its moves out from the shards served when it began: a shard it adopted in that
 * step (a host serving its shards again after it was fenced, a host that starts or restarts
 * and finds moves from it planned) was compared with the map's target only by the next
 * step. Steps run when the map changes, and the leader writes no new map while a planned
 * move waits for its old owner: the moves never started and the cluster never settled.
 * The two-track chaos runs found it (seed 3001, about one run in three, "5 h3→h2 planned at
 * 84"): etcd restarted under the load, the old owner fenced itself, and when it could serve
 * again it served those shards and moved none of them — its own view said "no move out
 * held, no reconcile step running".
 *
 * Deterministic here: the test holds the leader key, so nothing but the test writes the map,
 * and before h0 starts it writes the ring's map for h0 and h1 but for 8 of h1's shards, still
 * h0's and planned to move to h1. h0 must stream them and report the handovers on its own
 * (the reports appear in etcd); then the test steps down, a host becomes leader, folds the
 * reports, and the cluster settles with h1 serving the shards, and the calls made through h0
 * meanwhile answered once each. Real etcd, hosts, links, LMDB.
 */
import { test } from 'node:test'
import { movesUnderTheTestsLead } from './led-moves.ts'

test('a host that starts with moves from it planned in the map makes them: it streams the shards and reports, and the cluster settles', { timeout: 90_000 }, async () => {
  // h0 reported the handovers on its own (movesUnderTheTestsLead waits for that): nothing more to do while the test leads
  await movesUnderTheTestsLead('/adopted', async () => {})
})
