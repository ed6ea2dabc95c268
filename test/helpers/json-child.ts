/**
 * Run a fixture script in a child Node process and parse the last line it prints as JSON:
 * for tests of what a process's V8 flags do to its threads, which only a fresh process
 * can show (flags are read when an isolate is created).
 */
import { spawn } from 'node:child_process'

export function runJsonChild<T> (script: URL, flags: readonly string[], args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...flags, script.pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env })
    let out = ''
    proc.stdout.setEncoding('utf8')
    proc.stdout.on('data', (chunk: string) => { out += chunk })
    proc.on('error', reject)
    proc.on('close', (code) => {
      if (code !== 0) reject(new Error(`the child exited with ${code}: ${out}`))
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as T)
    })
  })
}
