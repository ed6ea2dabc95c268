/**
 * The one way a test starts a browser: headless Chromium driven by playwright-core.
 *
 * Which Chromium, first that starts wins:
 *   1. `SHOAL_CHROMIUM`, when set — and then only it: a path someone chose that cannot
 *      start is an error, not a reason to quietly test with another browser. The value
 *      `@sparticuz/chromium` means the npm-shipped one below, even where Debian's is
 *      installed (.ci/run sets it, to prove what a fresh machine gets);
 *   2. Debian's `chromium` (/usr/bin/chromium), when installed;
 *   3. the headless Chromium shipped inside the devDependency `@sparticuz/chromium`, so
 *      `npm install && npm test` passes on a machine with no system browser and no root.
 *      Its `executablePath()` unpacks ~200 MB of brotli (the binary, its fonts and
 *      SwiftShader) into the temp dir; we have it do so into a private staging dir (a child
 *      process with its own TMPDIR) and rename that into place, so an interrupted unpack or
 *      a second suite unpacking at the same time never leaves a half-written binary that a
 *      later run would take for a finished one. It needs no flag beyond `chromiumFlags`.
 *
 * "Starts" means launched, not merely present: a Chromium that is on disk but cannot run
 * (a stale or half-removed package, a missing shared library) is passed over with a note
 * on stderr, and if none starts, the launch fails with every candidate's reason and what
 * to install. Never a silent skip.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'
import type { BrowserContext } from 'playwright-core'

/**
 * What every Chromium on this machine is started with. `--no-sandbox`: CI runs as root,
 * and an unprivileged user may have no user namespaces for the sandbox. `--disable-gpu`:
 * there is none; canvas is drawn in software. The rest keep a run offline and quiet (no
 * background, component-update or sync traffic, no QUIC, no first-run UI). Each launch
 * gets a fresh profile (`--user-data-dir`, added by `chromiumArgs` or by playwright).
 */
export const chromiumFlags: readonly string[] = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/** `chromiumFlags` and a profile, for a test that spawns Chromium itself. */
export function chromiumArgs (userDataDir: string): string[] {
  return [...chromiumFlags, `--user-data-dir=${userDataDir}`]
}

export const debianChromiumPath = '/usr/bin/chromium'

export interface ChromiumBinary {
  readonly executablePath: string
  /** e.g. "Debian's chromium (/usr/bin/chromium)" */
  readonly source: string
}

/** Where to look; the defaults are the environment's. Tests of this helper override them. */
export interface ChromiumSearch {
  /** default: `process.env.SHOAL_CHROMIUM`; '' means unset */
  readonly shoalChromium?: string | undefined
  /** default: /usr/bin/chromium */
  readonly debianChromium?: string
  /** the npm package that ships a Chromium; default: '@sparticuz/chromium' */
  readonly bundledChromium?: string
}

export interface LaunchOptions {
  /** The page's locale (`navigator.language`, Intl's default), e.g. 'en-US@posix'. */
  readonly locale?: string
  readonly search?: ChromiumSearch
}

export interface LaunchedBrowser {
  readonly context: BrowserContext
  readonly chromium: ChromiumBinary
  /** Closes the browser and removes its profile. */
  close (): Promise<void>
}

const launchTimeoutMs = 30_000
const installHint =
  'Install one: `npm install` (the devDependency @sparticuz/chromium ships a headless Chromium; ' +
  'it needs libnss3, libnspr4 and libexpat1 from the system), or Debian\'s package ' +
  '(apt-get install -y chromium), or set SHOAL_CHROMIUM to a Chromium that starts.'

interface Search {
  readonly shoalChromium: string | undefined
  readonly debianChromium: string
  readonly bundledChromium: string
}

interface Candidate {
  readonly source: string
  /** Resolves to the executable, or rejects with why there is none. */
  readonly locate: () => Promise<string>
}

const chosen = new Map<string, ChromiumBinary>()

/** Launch the first Chromium that starts (see the module comment), with a fresh profile. */
export async function launchBrowser (options: LaunchOptions = {}): Promise<LaunchedBrowser> {
  const search: Search = {
    shoalChromium: nonEmpty(options.search?.shoalChromium ?? process.env.SHOAL_CHROMIUM),
    debianChromium: options.search?.debianChromium ?? debianChromiumPath,
    bundledChromium: options.search?.bundledChromium ?? '@sparticuz/chromium'
  }
  const key = JSON.stringify(search)
  const known = chosen.get(key)
  if (known !== undefined) {
    try {
      return await launch(known, options.locale)
    } catch (err) {
      throw new Error(`${known.source} started earlier in this run but cannot start now: ${reason(err)}`)
    }
  }

  const failures: string[] = []
  const absent: string[] = []
  for (const candidate of candidates(search, absent)) {
    let binary: ChromiumBinary
    try {
      binary = { executablePath: await candidate.locate(), source: candidate.source }
    } catch (err) {
      failures.push(`${candidate.source}: ${reason(err)}`)
      continue
    }
    try {
      const browser = await launch(binary, options.locale)
      chosen.set(key, binary)
      for (const f of failures) process.stderr.write(`browser tests: passed over ${f}\n`)
      return browser
    } catch (err) {
      failures.push(`${binary.source}: cannot start: ${reason(err)}`)
    }
  }
  throw new Error(
    `No Chromium could start for the browser tests:\n${[...absent, ...failures].map((f) => `  - ${f}`).join('\n')}\n` +
    (search.shoalChromium !== undefined
      ? 'SHOAL_CHROMIUM names the browser to use: fix it, or unset it to use Debian\'s chromium or the one in @sparticuz/chromium. '
      : '') + installHint)
}

/** The Chromium `launchBrowser` uses, checked by starting it once. */
export async function findChromium (search?: ChromiumSearch): Promise<ChromiumBinary> {
  const browser = await launchBrowser(search === undefined ? {} : { search })
  await browser.close()
  return browser.chromium
}

/** What to try, in order; a candidate that is simply not there goes to `absent`. */
function candidates (search: Search, absent: string[]): Candidate[] {
  if (search.shoalChromium !== undefined) {
    const path = search.shoalChromium
    if (path === search.bundledChromium) return [{ source: `SHOAL_CHROMIUM=${path}`, locate: async () => await unpackBundled(path) }]
    return [{ source: `SHOAL_CHROMIUM=${path}`, locate: async () => mustExist(path) }]
  }
  const list: Candidate[] = []
  if (existsSync(search.debianChromium)) {
    list.push({ source: `Debian's chromium (${search.debianChromium})`, locate: async () => search.debianChromium })
  } else {
    absent.push(`Debian's chromium (${search.debianChromium}): not installed`)
  }
  list.push({ source: search.bundledChromium, locate: async () => await unpackBundled(search.bundledChromium) })
  return list
}

async function launch (binary: ChromiumBinary, locale: string | undefined): Promise<LaunchedBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'shoal-chromium-profile-'))
  const removeProfile = (): void => { rmSync(profile, { recursive: true, force: true }) }
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: binary.executablePath,
      headless: true,
      args: [...chromiumFlags],
      timeout: launchTimeoutMs,
      ...(locale !== undefined ? { locale } : {})
    })
    return {
      context,
      chromium: binary,
      async close () {
        try { await context.close() } finally { removeProfile() }
      }
    }
  } catch (err) {
    removeProfile()
    throw err
  }
}

function mustExist (path: string): string {
  if (!existsSync(path)) throw new Error('no such file')
  return path
}

/** `@sparticuz/chromium`'s binary, unpacked once per version into `<tmp>/shoal-chromium-<version>-uid<uid>/`. */
async function unpackBundled (packageName: string): Promise<string> {
  const require = createRequire(import.meta.url)
  let entry: string
  try {
    entry = require.resolve(packageName)
  } catch {
    throw new Error('the devDependency is not installed (run `npm install`)')
  }
  const { version } = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }
  // per user: the unpacked dir is private (mkdtemp's 0700), and /tmp may be shared
  const home = join(tmpdir(), `shoal-chromium-${version}-uid${process.getuid?.() ?? 0}`)
  const binary = join(home, 'chromium')
  if (existsSync(binary)) return binary

  const staging = mkdtempSync(join(tmpdir(), `shoal-chromium-${version}.unpacking-`))
  const started = Date.now()
  try {
    // its executablePath() unpacks into os.tmpdir() and returns <tmpdir>/chromium
    const script = `const { default: c } = await import(${JSON.stringify(pathToFileURL(entry).href)}); process.stdout.write(await c.executablePath())`
    const unpacked = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: staging } },
        (err, stdout, stderr) => { if (err !== null) reject(new Error(`unpacking failed: ${stderr.trim() || err.message}`)); else resolve(stdout.trim()) })
    })
    if (unpacked !== join(staging, 'chromium')) throw new Error(`unpacked to ${unpacked}, expected ${join(staging, 'chromium')}`)
    try {
      renameSync(staging, home)
    } catch (err) {
      // another run unpacked the same version first: use its copy
      if (!existsSync(binary)) throw err
      rmSync(staging, { recursive: true, force: true })
    }
  } catch (err) {
    rmSync(staging, { recursive: true, force: true })
    throw err
  }
  process.stderr.write(`browser tests: unpacked ${packageName} ${version} to ${home} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  return binary
}

/**
 * Why a launch failed, in a line: playwright's first line and what the browser itself
 * wrote to stderr (a missing library, a crash), without the call log and the command line.
 */
function reason (err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/\u001b\[[0-9;]*m/g, '')
  const lines = text.split('\n')
  const head = (lines[0] ?? '').replace(/^browserType\.\w+: /, '').replace(/^Target page, context or browser has been closed$/, 'it exited during start-up')
  const browserSaid = new Set<string>()
  for (const l of lines) {
    const said = /\[pid=\d+\]\[err\] (.*)/.exec(l)?.[1]?.trim()
    if (said !== undefined && said !== '' && browserSaid.size < 3) browserSaid.add(said)
  }
  return [head, ...browserSaid].join(' — ')
}

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}
