/** Run the built `shoal` CLI as a child process, as a user would, and collect its output. */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const mainJs = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export function runCli (args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 90_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mainJs, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** A fresh temp dir, removed by the returned function. */
export function tempDir (prefix = 'shoal-test-'): [string, () => void] {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return [dir, () => rmSync(dir, { recursive: true, force: true })]
}

/** The small, quick run the CLI tests share: every scenario, a short duration. */
export const smallRun = ['bench', '--agents', '2000', '--duration', '0.4', '--hot-casts', '20000', '--concurrency', '32', '--no-latest']
