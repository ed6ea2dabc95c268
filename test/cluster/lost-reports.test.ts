/**
 * Handover reports lost with the lease are made again.
 *
 * An old owner reports a finished handover with a key under its lease, and holds the
 * shards until the map names the new owner. When the lease expires before the leader folds
 * the report (the host stood still past its TTL; etcd deletes every key under the lease),
 * the report is gone — but the old owner counted it made: it held the shards for ever, the
 * map kept planning the move, the leader wrote no new map, the cluster never settled. The
 * two-track chaos runs found it (seed 3008: "moves out held: 3 to h0 planned at 161,
 * reported; map: owner h2, target h0 at 161, still planned as held: true", the new owner
 * waiting for CL_FLUSHED). Now a lost lease makes the host report those moves again, under
 * the lease it registers with next.
 *
 * Deterministic here: the test holds the leader key (nothing folds a report while it
 * leads), lets h0 move 8 shards to h1 and report them, revokes h0's lease (the reports go
 * with it) and waits for them to come back; then it steps down and the cluster settles.
 * Real etcd, hosts, links, LMDB.
 */
import { test } from 'node:test'
import { Buffer } from 'node:buffer'
import { until } from './tenancy-helpers.ts'
import { MOVES, movesUnderTheTestsLead } from './led-moves.ts'

test('the reports of handovers a lost lease took with it are made again, and the moves finish', { timeout: 90_000 }, async () => {
  await movesUnderTheTestsLead('/lost-reports', async ({ raw, keys, reported, untilReported }) => {
    // h0's lease expires (revoked here): its member key and its reports go
    const lease0 = (await raw.kv.range({ key: Buffer.from(keys.member('h0')) })).kvs[0]!.lease
    await raw.leaseClient.leaseRevoke({ ID: lease0 })
    await until('the reports went with the lease', async () => await reported() === 0, 5_000)
    await untilReported('h0 reports the handovers again, under its new lease', MOVES, 20_000)
  })
})
