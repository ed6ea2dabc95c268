/**
 * Host processes for cluster tests: src/cli/procs/ (the same harness `shoal bench
 * --hosts` runs on) with the test fixtures' agents and this build's cluster plugin.
 *
 *   const etcd = await startEtcd()
 *   const c = await clusterProcs({ membership: { etcd: { hosts: [etcd.endpoint], leaseTtlS: 2 } } })
 *   await c.start(['a', 'b', 'c'])
 *   await c.host('a').call('counter', 'k1', 'add', 1)
 *   await c.kill('b')                 // SIGKILL; 'SIGSTOP' / 'SIGCONT' pause and resume
 *   await c.close()
 *
 * `proxies: true` puts each host behind a TcpProxy (`c.proxy('b').cut()`, `.pause()`,
 * `.delay(ms)`, `.heal()`). Set SHOAL_PROCS_ECHO=1 to see the hosts' output.
 */
import { ClusterProcs } from '../../src/cli/procs/cluster-procs.ts'
import type { ClusterProcsOptions } from '../../src/cli/procs/cluster-procs.ts'

export { ClusterProcs, freePort } from '../../src/cli/procs/cluster-procs.ts'
export { HostProcess, HostStartError } from '../../src/cli/procs/host-process.ts'
export { TcpProxy } from '../../src/cli/procs/tcp-proxy.ts'
export { keysOf } from '../../src/cli/procs/host-protocol.ts'
export type { Agents, HostProcessConfig, LoadReport } from '../../src/cli/procs/host-protocol.ts'

/** The fixtures' agents (test/fixtures/agents.ts), as the hosts load them. */
export const testAgents = new URL('../fixtures/agents.js', import.meta.url).href
/** This build's cluster plugin, by file URL (no reliance on the package's self-reference). */
export const clusterModule = new URL('../../plugins/cluster/index.js', import.meta.url).href
export const testSecret = 'a test secret of at least thirty-two bytes!!'

export async function clusterProcs (options: Omit<ClusterProcsOptions, 'agents'> & { agents?: string }): Promise<ClusterProcs> {
  return await ClusterProcs.create({ agents: testAgents, clusterModule, secret: testSecret, ...options })
}
