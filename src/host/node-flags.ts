/**
 * The node and V8 flags this process was started with: `NODE_OPTIONS` first, then the
 * command line (`process.execArgv`, which does not list NODE_OPTIONS'), in the order Node
 * passes them to V8 — the last occurrence of a flag wins. Flags set at run time with
 * `v8.setFlagsFromString` are not visible to JavaScript and are not here.
 */

/** Every flag, in V8's order. */
export function startupFlags (execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  return [...(nodeOptions ?? '').split(/\s+/).filter((a) => a !== ''), ...execArgv]
}

/**
 * The value (MiB) of the last `--<name>=N` among `flags`, V8 taking `-` and `_` alike in a
 * name, and a size only as `--flag=N` (Node refuses `--flag N`); null when absent or 0
 * (V8's "unset"). `name` is written with `-`.
 */
export function sizeFlag (flags: readonly string[], name: string): number | null {
  const pattern = new RegExp(`^--?${name.replaceAll('-', '[-_]')}=(\\d+)$`)
  let mb: number | null = null
  for (const flag of flags) {
    const m = pattern.exec(flag)
    if (m !== null) mb = Number(m[1]) === 0 ? null : Number(m[1])
  }
  return mb
}

/** Whether the boolean flag `--<name>` is among `flags` (`-` and `_` alike). */
export function hasFlag (flags: readonly string[], name: string): boolean {
  const pattern = new RegExp(`^--?${name.replaceAll('-', '[-_]')}$`)
  return flags.some((flag) => pattern.test(flag))
}
