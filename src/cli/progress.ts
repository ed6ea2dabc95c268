/**
 * What a person watches while `shoal bench` runs: one progress bar per phase on a
 * terminal (cli-progress), plain timestamped lines when stdout is a pipe or a file
 * (CI logs, `| tee`), where redrawn bars would be noise.
 *
 * A phase is polled, not pushed: the scenario keeps counters and `poll()` reads them a
 * few times a second from an unref'd interval, so hot loops never pay for display.
 * Time-bounded phases use milliseconds as their total.
 */
import cliProgress from 'cli-progress'

export interface PhaseState {
  /** Progress so far, in the phase's unit (items or milliseconds). */
  readonly value: number
  /** Short live figure shown after the bar, e.g. "812,000 casts/s". */
  readonly detail: string
}

export interface Phase {
  /** Stop displaying this phase and print its one-line summary. */
  done (summary: string): void
}

export interface ProgressOptions {
  readonly out: NodeJS.WriteStream
  /** Draw bars (a terminal) or print plain lines. Default: `out.isTTY`. */
  readonly tty?: boolean
}

/** Plain-line mode prints a status line at most this often per phase. */
const kPlainEveryMs = 2000
const kTtyRedrawMs = 200

export class Progress {
  private readonly out: NodeJS.WriteStream
  private readonly tty: boolean
  private readonly started = Date.now()

  constructor (options: ProgressOptions) {
    this.out = options.out
    this.tty = options.tty ?? options.out.isTTY === true
  }

  log (line: string): void {
    this.out.write(`${this.tty ? '' : this.stamp()}${line}\n`)
  }

  /** Start showing a phase of `total` units; `poll` is read a few times a second. */
  phase (name: string, total: number, poll: () => PhaseState): Phase {
    return this.tty ? this.barPhase(name, total, poll) : this.plainPhase(name, total, poll)
  }

  private barPhase (name: string, total: number, poll: () => PhaseState): Phase {
    const bar = new cliProgress.SingleBar({
      format: `  ${name.padEnd(20)} {bar} {percentage}% {detail}`,
      stream: this.out,
      barsize: 28,
      hideCursor: true,
      clearOnComplete: true,
      fps: 1000 / kTtyRedrawMs,
      formatValue: (v, _o, type) => type === 'percentage' ? String(v).padStart(3) : String(v)
    }, cliProgress.Presets.shades_classic)
    bar.start(Math.max(1, total), 0, { detail: '' })
    const timer = setInterval(() => {
      const s = poll()
      bar.update(Math.min(total, s.value), { detail: s.detail })
    }, kTtyRedrawMs).unref()
    return {
      done: (summary) => {
        clearInterval(timer)
        bar.stop()
        this.out.write(`  ✔ ${name.padEnd(20)} ${summary}\n`)
      }
    }
  }

  private plainPhase (name: string, total: number, poll: () => PhaseState): Phase {
    this.log(`${name}: started`)
    const timer = setInterval(() => {
      const s = poll()
      const pct = total > 0 ? Math.min(100, Math.floor((100 * s.value) / total)) : 0
      this.log(`${name}: ${pct}%${s.detail ? ` — ${s.detail}` : ''}`)
    }, kPlainEveryMs).unref()
    return {
      done: (summary) => {
        clearInterval(timer)
        this.log(`${name}: done — ${summary}`)
      }
    }
  }

  private stamp (): string {
    return `[${((Date.now() - this.started) / 1000).toFixed(1).padStart(6)}s] `
  }
}

/** 1234567.8 → "1,234,568"; small values keep 3 significant digits. */
export function fmt (n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US')
  return Number(n.toPrecision(3)).toString()
}

export function fmtBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let u = 0
  let v = n
  while (Math.abs(v) >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return `${u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`
}
