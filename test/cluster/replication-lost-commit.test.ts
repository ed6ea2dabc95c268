/**
 * A commit's journal goes to the replicas as the commit is queued, before its local
 * transaction has committed (plugins/cluster/replication/owner-streams.ts). If that
 * transaction then fails, the replicas may hold a write the owner lost: the shard's stream
 * starts over and the replicas take a snapshot, so none keeps it. Two hosts in this process
 * on a real etcd, real links on 127.0.0.1 and real LMDB; the failure is LMDB's own (a write
 * it refuses inside the transaction, queued with the commit: test/durable/helpers.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RootDatabase } from 'lmdb'
import { createHost } from '../../src/index.ts'
import type { Host } from '../../src/index.ts'
import type { LmdbStore } from '../../src/storage/lmdb-store.ts'
import { stateCodec } from '../../src/thread/codec.ts'
import { idString } from '../../native-free-core/agent/agent-id.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import { agentsUrl } from '../engine/helpers.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { poisoner, toleratingFailedCommits } from '../durable/helpers.ts'
import { shardOfId } from '../fixtures/shards.ts'

const secret = 'a test secret of at least thirty-two bytes!!'

interface Stats { cluster: { shardsServed: number, replication: { shardsWithReplicasInSync: number, streamsRestarted: number, segmentsIn: number, snapshotsIn: number } } }

const stats = async (h: Host): Promise<Stats['cluster']> => ((await h.stats()) as unknown as Stats).cluster

/** The host's own LMDB store (its main thread's), for what a test writes and reads beside the agents. */
const storeOf = (h: Host): LmdbStore => (h as unknown as { localStore: LmdbStore }).localStore

function freshState (store: LmdbStore, id: string): unknown {
  (store as unknown as { env: RootDatabase }).env.resetReadTxn()
  const bytes = store.getState(id)
  return bytes === undefined ? undefined : stateCodec.decode(bytes)
}

async function until (what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('a commit that fails on its owner after its journal went to the replicas: the shard\'s stream starts over, the replica re-snapshots and does not keep the write', { timeout: 90_000 }, async () => {
  const etcd = await startEtcd()
  const prefix = `/t${Math.floor(Math.random() * 1e9)}`
  const dirs: string[] = []
  const hosts: Host[] = []
  const start = async (id: string): Promise<Host> => {
    const dir = mkdtempSync(join(tmpdir(), `shoal-${id}-`))
    dirs.push(dir)
    const host = await createHost({
      agents: agentsUrl,
      workers: 1,
      dataDir: dir,
      plugins: [cluster({ id, secret, membership: { etcd: { hosts: [etcd.endpoint], prefix, leaseTtlS: 5, minMembers: 2 } } })]
    })
    hosts.push(host)
    return host
  }
  try {
    const [a, b] = await Promise.all([start('a'), start('b')])
    await Promise.all([a!.cluster.settled({ timeoutMs: 30_000 }), b!.cluster.settled({ timeoutMs: 30_000 })])
    const allInSync = async (): Promise<boolean> => {
      const s = await stats(a!)
      return s.shardsServed > 0 && s.replication.shardsWithReplicasInSync === s.shardsServed
    }
    await until('a\'s shards have b in sync', allInSync)

    // two agents of one shard that a serves (b is its replica: two hosts, replicas: 2)
    const keys: string[] = []
    let shard = -1
    for (let i = 0; keys.length < 2; i++) {
      const key = `lost${i}`
      const s = shardOfId(idString('default', 'counter', key))
      if (a!.cluster.ownerOf({ type: 'counter', key }) !== 'a' || (shard >= 0 && s !== shard)) continue
      shard = s
      keys.push(key)
    }
    const [kept, lost] = keys.map((key) => idString('default', 'counter', key)) as [string, string]
    const storeA = storeOf(a!)
    const storeB = storeOf(b!)

    // a commit that succeeds: done only once b has it
    await storeA.commit({ states: [[kept, stateCodec.encode({ n: 1 })]] })
    assert.deepEqual(freshState(storeB, kept), { n: 1 }, 'b holds an acknowledged write')

    const before = await stats(a!)
    const beforeB = await stats(b!)
    const poison = await poisoner(storeA)
    await toleratingFailedCommits(async () => {
      const failing = storeA.commit({ states: [[lost, stateCodec.encode({ n: 2 })], [kept, stateCodec.encode({ n: 2 })]] })
      poison() // the same transaction: LMDB refuses it whole, after the journal went to b
      await assert.rejects(failing)
      await until('the shard\'s stream started over and b caught up again', async () =>
        (await stats(a!)).replication.streamsRestarted > before.replication.streamsRestarted && await allInSync())
    })
    const afterB = await stats(b!)
    assert.ok(afterB.replication.segmentsIn > beforeB.replication.segmentsIn, 'the failed commit\'s segment had gone to b')
    assert.ok(afterB.replication.snapshotsIn > beforeB.replication.snapshotsIn, 'b took a snapshot of the new stream')
    assert.equal(freshState(storeA, lost), undefined, 'the owner lost the write')
    assert.equal(freshState(storeB, lost), undefined, 'b does not keep it')
    assert.deepEqual(freshState(storeB, kept), { n: 1 }, 'b holds the owner\'s state of the shard')

    // the new stream carries writes as before
    await storeA.commit({ states: [[kept, stateCodec.encode({ n: 3 })]] })
    assert.deepEqual(freshState(storeB, kept), { n: 3 })
  } finally {
    await Promise.all(hosts.map((h) => h.close()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    await etcd.stop()
  }
})
