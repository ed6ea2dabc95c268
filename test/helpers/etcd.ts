/**
 * A real etcd for one test file (src/cli/procs/etcd-process.ts, which `shoal chaos`
 * uses too):
 *
 *   const etcd = await startEtcd()
 *   etcd.endpoint       // 'http://127.0.0.1:<port>'
 *   await etcd.kill()    // SIGKILL, keeps the data: a crash
 *   await etcd.restart() // same ports, same data, waits until healthy
 *   await etcd.stop()    // SIGKILL if running, then deletes the data (call in `after`)
 */
export { etcdBinary, startEtcd } from '../../src/cli/procs/etcd-process.ts'
export type { EtcdProcess } from '../../src/cli/procs/etcd-process.ts'
export { freePort } from '../../src/cli/procs/cluster-procs.ts'
