/** Clusters of hosts in this process for the tenancy tests: static lists or etcd, real links, real LMDB. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHost } from '../../src/index.ts'
import type { Host, HostOptions } from '../../src/index.ts'
import { cluster } from '../../plugins/cluster/index.ts'
import type { ClusterOptions } from '../../plugins/cluster/index.ts'
import { agentsUrl } from '../engine/helpers.ts'
import type { TestHooks } from '../../src/time/test-clock.ts'
import { freePort } from '../helpers/etcd.ts'

export const secret = 'a test secret of at least thirty-two bytes!!'

/** Wait until `check` holds (polled every 10 ms), or fail naming `what` after `timeoutMs`. */
export async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export async function collect<T> (it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

export interface TestCluster {
  readonly hosts: Host[]
  close (): Promise<void>
}

/** `n` hosts on a static list. */
export async function staticCluster (n: number, host: Partial<HostOptions> & TestHooks = {}, options: Partial<ClusterOptions> = {}): Promise<TestCluster> {
  const ports = await Promise.all(Array.from({ length: n }, freePort))
  const list = ports.map((p, i) => `h${i}@127.0.0.1:${p}`)
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'shoal-tenancy-')))
  const hosts = await Promise.all(ports.map((port, i) => createHost({
    agents: agentsUrl,
    workers: 1,
    dataDir: dirs[i]!,
    ...host,
    plugins: [cluster({ id: `h${i}`, secret, listen: { port }, membership: { static: list }, ...options })]
  } as HostOptions)))
  return {
    hosts,
    close: async () => {
      await Promise.all(hosts.map((h) => h.close()))
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    }
  }
}

/** Hosts on one etcd, started and stopped one by one. */
export class EtcdCluster {
  readonly hosts = new Map<string, Host>()
  private readonly dirs: string[] = []
  private readonly endpoint: string
  private readonly prefix = `/t${Math.floor(Math.random() * 1e9)}`

  constructor (endpoint: string) {
    this.endpoint = endpoint
  }

  async start (id: string, minMembers = 1, options: Partial<ClusterOptions> = {}): Promise<Host> {
    const dir = mkdtempSync(join(tmpdir(), `shoal-${id}-`))
    this.dirs.push(dir)
    const host = await createHost({
      agents: agentsUrl,
      workers: 1,
      dataDir: dir,
      callTimeoutMs: 20_000,
      plugins: [cluster({ id, secret, membership: { etcd: { hosts: [this.endpoint], prefix: this.prefix, leaseTtlS: 2, minMembers } }, ...options })]
    })
    this.hosts.set(id, host)
    return host
  }

  async settled (): Promise<void> {
    await Promise.all([...this.hosts.values()].map((h) => h.cluster.settled({ timeoutMs: 30_000 })))
  }

  async close (): Promise<void> {
    await Promise.all([...this.hosts.values()].map((h) => h.close()))
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true })
  }
}
