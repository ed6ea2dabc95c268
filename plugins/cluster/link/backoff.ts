/**
 * Reconnect delays for the dialing side of a link: exponential, capped, with jitter.
 *
 * Without jitter every host that lost the same peer (it restarted, a switch flapped)
 * redials it in lock-step and they all collide again; "equal jitter" (half the delay
 * fixed, half random) spreads them while keeping a floor, so a peer that is down is
 * not hammered. The random source is injected so tests can replay the exact delays.
 */
export interface BackoffOptions {
  /** First delay, ms. */
  readonly initialMs: number
  /** Largest delay, ms. */
  readonly maxMs: number
  /** Growth per failed attempt. */
  readonly factor: number
  /** A number in [0, 1) per call (Math.random unless a test injects a seeded one). */
  readonly random: () => number
}

export class Backoff {
  private attempt = 0
  private readonly options: BackoffOptions

  constructor (options: BackoffOptions) {
    this.options = options
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next (): number {
    const { initialMs, maxMs, factor, random } = this.options
    const ceiling = Math.min(maxMs, initialMs * factor ** this.attempt)
    if (ceiling < maxMs) this.attempt++
    return Math.round(ceiling / 2 + random() * (ceiling / 2))
  }

  /** The link came up: the next failure starts from the first delay again. */
  reset (): void {
    this.attempt = 0
  }
}
