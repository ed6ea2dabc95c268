/** The `offload` option of `createHost`: a piscina pool for `ctx.offload(name, input)`. */
export interface OffloadOptions {
  /** The module whose exports are the tasks (`ctx.offload('resize', …)` runs its export `resize`). A file URL or a path. */
  readonly filename: URL | string
  /** Threads of the pool, shared by every worker of the host. Default: `os.availableParallelism()`. */
  readonly maxThreads?: number
  /** Threads kept started while idle. Default: 1. */
  readonly minThreads?: number
  /** Handed to every pool thread as `workerData` (structured clone: SharedArrayBuffers stay shared). */
  readonly workerData?: unknown
}

export interface ResolvedOffloadOptions {
  /** file: URL of the tasks module. */
  readonly filename: string
  readonly maxThreads: number
  readonly minThreads: number
  readonly workerData: unknown
}
