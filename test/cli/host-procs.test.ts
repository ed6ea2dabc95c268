/**
 * The harness that puts hosts in processes of their own (src/cli/procs/), which the
 * cluster tests and `shoal bench --hosts` stand on: what crosses the IPC channel, the
 * signals a failover test sends, and the TCP proxy that breaks links on purpose.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UnknownMethodError } from '../../native-free-core/errors.ts'
import { HostProcess, TcpProxy, clusterProcs, testAgents } from '../helpers/cluster-procs.ts'
import { startEtcd } from '../helpers/etcd.ts'
import { EXEC_ARGV_ENV, HostProcessExitedError, childExecArgv } from '../../src/cli/procs/host-process.ts'

test('a host child\'s Node flags: the caller\'s, then those of $SHOAL_HOST_EXEC_ARGV (to profile any bench\'s hosts)', () => {
  assert.equal(EXEC_ARGV_ENV, 'SHOAL_HOST_EXEC_ARGV')
  assert.deepEqual(childExecArgv(['--cpu-prof'], {}), ['--cpu-prof'])
  assert.deepEqual(childExecArgv(undefined, { SHOAL_HOST_EXEC_ARGV: ' --trace-gc  --heap-prof-dir=/tmp/x ' }), ['--trace-gc', '--heap-prof-dir=/tmp/x'])
  assert.deepEqual(childExecArgv(['--cpu-prof'], { SHOAL_HOST_EXEC_ARGV: '--trace-gc' }), ['--cpu-prof', '--trace-gc'])
  assert.deepEqual(childExecArgv([], { SHOAL_HOST_EXEC_ARGV: '' }), [])
})

test('a host process: calls, load and errors cross as they are; SIGSTOP pauses it, SIGCONT resumes it; SIGKILL fails what waits; close exits 0', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-proc-'))
  try {
    const config = { agents: testAgents, workers: 1, dataDir: dir }
    const h = await HostProcess.start(config, { name: 'p' })
    assert.equal(h.info.cluster, null, 'no cluster plugin: no cluster view')
    assert.equal(await h.call('counter', 'x', 'add', 2), 2)
    await assert.rejects(h.call('counter', 'x', 'nope'), UnknownMethodError)
    await h.loadStart('l', { type: 'counter', keys: ['a', 'b', 'c'] }, 'add', 1, 2)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const report = await h.loadStop('l')
    assert.equal(report.errors, 0)
    const each = await h.callEach({ type: 'counter', keys: ['a', 'b', 'c'] }, 'get')
    assert.deepEqual(each.values, [...report.acked], 'every acknowledged add is in its counter')

    await h.kill('SIGSTOP')
    let answered = false
    const waiting = h.call('counter', 'x', 'get').then((v) => { answered = true; return v })
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(answered, false, 'a stopped process answers nothing')
    await h.kill('SIGCONT')
    assert.equal(await waiting, 2)

    await h.kill('SIGSTOP')
    const lost = h.call('counter', 'x', 'get')
    await h.kill('SIGKILL')
    await assert.rejects(lost, HostProcessExitedError)
    assert.deepEqual(await h.exited, { code: null, signal: 'SIGKILL' })
    await assert.rejects(h.call('counter', 'x', 'get'), HostProcessExitedError)

    // the same data directory, after a crash: the committed add is there; close exits 0
    const again = await HostProcess.start(config, { name: 'p2' })
    assert.equal(await again.call('counter', 'x', 'get'), 2)
    assert.deepEqual(await again.close(), { code: 0, signal: null })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

async function echoServer (): Promise<{ port: number, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.pipe(s) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

function client (port: number): Promise<{ socket: Socket, received: () => string, closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = connect({ port, host: '127.0.0.1' })
    const closed = new Promise<void>((done) => socket.once('close', () => done()))
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { text += d })
    socket.once('error', reject)
    socket.once('connect', () => resolve({ socket, received: () => text, closed }))
  })
}

async function until (what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('TcpProxy: bytes keep their order through delay, pause and heal; cut drops every connection and refuses new ones until heal', async () => {
  const echo = await echoServer()
  const proxy = await TcpProxy.start(echo.port)
  try {
    const c = await client(proxy.port)
    c.socket.write('a1,')
    await until('a1', () => c.received() === 'a1,')
    proxy.delay(30)
    c.socket.write('b2,')
    proxy.delay(0) // a later chunk never overtakes a delayed one
    c.socket.write('c3,')
    await until('b2 c3', () => c.received() === 'a1,b2,c3,')
    proxy.pause()
    c.socket.write('d4,')
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(c.received(), 'a1,b2,c3,', 'paused: nothing forwarded')
    assert.equal(proxy.connections, 1, 'paused: nothing closed')
    proxy.heal()
    await until('d4', () => c.received() === 'a1,b2,c3,d4,')

    proxy.cut()
    await c.closed
    const refused = await client(proxy.port)
    await refused.closed
    assert.equal(proxy.refused, 1)
    proxy.heal()
    const back = await client(proxy.port)
    back.socket.write('e5')
    await until('e5', () => back.received() === 'e5')
    back.socket.destroy()
  } finally {
    await proxy.close()
    await echo.close()
  }
})

test('host processes told to go at once (SIGTERM to every host: nobody left to take the shards) all exit, within the close grace at worst', { timeout: 60_000 }, async () => {
  const etcd = await startEtcd()
  const c = await clusterProcs({ membership: { etcd: { hosts: [etcd.endpoint], leaseTtlS: 2, minMembers: 2 } } })
  try {
    await c.start(['a', 'b'])
    await c.settled()
    const hosts = [c.host('a'), c.host('b')]
    const asked = performance.now()
    await Promise.all(hosts.map(async (h) => await h.kill('SIGTERM')))
    const exits = await Promise.all(hosts.map(async (h) => await h.exited))
    const tookMs = performance.now() - asked
    console.log(`# SIGTERM to both: exits ${JSON.stringify(exits)} after ${Math.round(tookMs)} ms`)
    assert.ok(tookMs < 30_000, `exited ${Math.round(tookMs)} ms after SIGTERM`)
    for (const [i, exit] of exits.entries()) {
      assert.ok(exit.code === 0 || (exit.code === 1 && /close did not finish/.test(hosts[i]!.log)), `exit ${JSON.stringify(exit)}; log: ${hosts[i]!.log.slice(-500)}`)
    }
  } finally {
    await c.close().catch(() => {})
    await etcd.stop()
  }
})
