/**
 * What the replication tests wait for before they break something: every shard served and
 * replicated. A failover goes by the owner's in-sync record in etcd, which trails the
 * owner's memory by up to its publish gap — a host stopped in that gap leaves shards no
 * failover may take, and the test would wait for them in vain.
 */
import type { ClusterProcs } from '../helpers/cluster-procs.ts'

interface ReplStats {
  cluster: { shardsServed: number, replication?: { shardsWithReplicasInSync: number, shardsFailoverReady: number } }
}

/** Until each of the 4096 shards is served, has a replica in sync, and its owner's record in etcd says so (each host counts the shards it serves). */
export async function replicasInSync (c: ClusterProcs, ids: readonly string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let served = 0
    let withReplica = 0
    let ready = 0
    for (const id of ids) {
      const s = await c.host(id).stats<ReplStats>()
      served += s.cluster.shardsServed
      withReplica += s.cluster.replication?.shardsWithReplicasInSync ?? 0
      ready += s.cluster.replication?.shardsFailoverReady ?? 0
    }
    if (served === 4096 && withReplica === 4096 && ready === 4096) return
    if (Date.now() > deadline) throw new Error(`replicas not in sync after ${timeoutMs} ms: ${withReplica} of ${served} served shards, ${ready} in the owners' records`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
