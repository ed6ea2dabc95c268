/**
 * Seeded PRNG for the bench (xorshift32): the same `--seed` picks the same agents in
 * the same order, so two runs differ only by the machine. Not for anything secret.
 */
export class Rng {
  private s: number

  constructor (seed: number) {
    this.s = (seed | 0) === 0 ? 0x9e3779b9 | 0 : seed | 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    let x = this.s
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.s = x
    return (x >>> 0) / 4294967296
  }

  /** Uniform integer in [0, n). */
  below (n: number): number {
    return Math.floor(this.next() * n)
  }
}
