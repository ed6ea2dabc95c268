/**
 * Durable sends between hosts across process death: two host processes (static cluster,
 * LMDB each) run chains of transfers whose deposits hop between the hosts; the test kills
 * one host with SIGKILL, restarts it on its data directory, then kills and restarts the
 * other, at moments a seeded PRNG picks. Money moves only by ctx.send, so the total is
 * conserved only if every send is applied exactly once; afterwards no outbox record is
 * left unacknowledged.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prng, between } from '../fixtures/prng.ts'
import { freePort } from '../helpers/etcd.ts'

const childScript = new URL('../fixtures/cluster-bank-child.js', import.meta.url).pathname

class HostProcess {
  readonly child: ChildProcess
  acks = 0
  private next = 0
  private readonly waiting = new Map<number, (m: { ok: boolean, value: unknown }) => void>()
  readonly ready: Promise<void>
  readonly exited: Promise<void>

  constructor (args: string[]) {
    this.child = fork(childScript, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
    this.child.stdout!.setEncoding('utf8')
    this.child.stdout!.on('data', (chunk: string) => { for (const c of chunk) if (c === '\n') this.acks++ })
    this.ready = new Promise((resolve) => {
      this.child.on('message', (m: { ready?: boolean, req?: number, ok: boolean, value: unknown }) => {
        if (m.ready === true) resolve()
        else this.waiting.get(m.req!)?.(m)
      })
    })
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()))
  }

  async ask (op: string, extra: object = {}): Promise<unknown> {
    const req = ++this.next
    const answer = await new Promise<{ ok: boolean, value: unknown }>((resolve) => {
      this.waiting.set(req, resolve)
      this.child.send({ req, op, ...extra })
    })
    this.waiting.delete(req)
    if (!answer.ok) throw new Error(String(answer.value))
    return answer.value
  }

  async untilAcks (n: number): Promise<void> {
    while (this.acks < n) await new Promise((resolve) => setTimeout(resolve, 10))
  }

  async kill (): Promise<void> {
    this.child.kill('SIGKILL')
    await this.exited
  }
}

test('kill -9 of either host in the middle of cross-host transfer chains: money conserved, nothing left unacknowledged', { timeout: 120_000 }, async () => {
  const rand = prng(11)
  const ports = [await freePort(), await freePort()]
  const list = ports.map((p, i) => `h${i}@127.0.0.1:${p}`).join(',')
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'shoal-kill-')))
  const args = (i: number): string[] => [`h${i}`, dirs[i]!, String(ports[i]), list]
  const accounts = Array.from({ length: 20 }, (_, i) => `a${i}`)
  let a = new HostProcess(args(0))
  let b = new HostProcess(args(1))
  try {
    await Promise.all([a.ready, b.ready])
    await a.ask('fund', { accounts, amount: 1000 })
    await a.ask('bank', { accounts, seed: 1 })
    await b.ask('bank', { accounts, seed: 2 })
    // kill the receiving side of half the hops, then restart it on its data
    await b.untilAcks(between(rand, 100, 400))
    await b.kill()
    b = new HostProcess(args(1))
    await b.ready
    await b.ask('bank', { accounts, seed: 3 })
    await a.untilAcks(a.acks + between(rand, 100, 400))
    await a.kill()
    a = new HostProcess(args(0))
    await a.ready
    await b.untilAcks(b.acks + between(rand, 100, 300))
    // stop the load: restart b without it, so that only redeliveries are left to run
    await b.kill()
    b = new HostProcess(args(1))
    await b.ready
    let total = 0
    for (let i = 0; i < 300; i++) {
      const balances = await b.ask('balances', { accounts }) as number[]
      total = balances.reduce((x, y) => x + y, 0)
      const backlog = [await a.ask('backlog') as { outbox: number }, await b.ask('backlog') as { outbox: number }]
      if (total === 20 * 1000 && backlog[0]!.outbox === 0 && backlog[1]!.outbox === 0) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.equal(total, 20 * 1000, 'money conserved: every deposit applied exactly once')
    const backlog = [await a.ask('backlog'), await b.ask('backlog')] as Array<{ outbox: number }>
    assert.deepEqual(backlog.map((x) => x.outbox), [0, 0], 'every outbox record acknowledged')
  } finally {
    for (const p of [a, b]) if (p.child.exitCode === null) await p.ask('close').catch(() => p.kill())
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
})
