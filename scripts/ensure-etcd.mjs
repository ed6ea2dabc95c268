#!/usr/bin/env node
/**
 * `npm test` needs an `etcd` binary: the cluster tests start their own etcd on free
 * loopback ports (test/helpers/etcd.ts). This finds one — $SHOAL_ETCD, then PATH, then
 * /usr/bin/etcd — or installs Debian's `etcd-server` when it can (root and apt-get),
 * or fails printing the command to run. It never lets the suite skip the cluster tests
 * silently.
 *
 * After an install it stops and disables the system etcd service the package may have
 * started (on 127.0.0.1:2379). The tests would not notice it — they use their own
 * ports — but a test run should not leave a database server running.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

const INSTALL = 'apt-get update && apt-get install -y etcd-server'

function findEtcd () {
  const candidates = []
  if (process.env.SHOAL_ETCD) candidates.push(process.env.SHOAL_ETCD)
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir) candidates.push(join(dir, 'etcd'))
  candidates.push('/usr/bin/etcd')
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK)
    } catch {
      continue
    }
    const r = spawnSync(file, ['--version'], { encoding: 'utf8' })
    if (r.status === 0) return { file, version: /etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? 'unknown' }
  }
  return undefined
}

function run (cmd, args) {
  console.error(`ensure-etcd: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  return r.status === 0
}

function stopSystemService () {
  if (existsSync('/run/systemd/system')) {
    run('systemctl', ['disable', '--now', 'etcd.service'])
  } else if (existsSync('/etc/init.d/etcd')) {
    // without systemd the package's start was either denied (policy-rc.d) or ran the init script
    spawnSync('/etc/init.d/etcd', ['stop'], { stdio: 'ignore' })
  }
}

function main () {
  let found = findEtcd()
  if (found === undefined) {
    const canInstall = process.platform === 'linux' && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')
    if (!canInstall) {
      console.error(`ensure-etcd: no etcd binary found ($SHOAL_ETCD, PATH, /usr/bin/etcd).
The cluster tests start a real etcd. Install it, then run the tests again:
  sudo sh -c '${INSTALL}'
or point SHOAL_ETCD at an etcd 3.4+ binary.`)
      process.exit(1)
    }
    if (!run('apt-get', ['update', '-q']) || !run('apt-get', ['install', '-y', '-q', 'etcd-server'])) {
      console.error(`ensure-etcd: installing etcd-server failed; run it yourself: ${INSTALL}`)
      process.exit(1)
    }
    stopSystemService()
    found = findEtcd()
    if (found === undefined) {
      console.error(`ensure-etcd: etcd-server installed but no etcd binary found; check: ${INSTALL}`)
      process.exit(1)
    }
  }
  console.error(`ensure-etcd: ${found.file} (etcd ${found.version})`)
}

main()
