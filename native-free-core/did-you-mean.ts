/**
 * "did you mean …?" for a name that is not one of the known ones (an option, a key of
 * an agent specification): the known name nearest by edit distance, case ignored, if
 * it is near enough to be a slip — at most half the longer name's letters (`intial` →
 * `initial`, `query` → `queries`) — or one name holds the other and it has four
 * letters or more (`worker` → `workers`, `timeout` → `callTimeoutMs`).
 */

/** The suggestion for `name` among `known`, or undefined when none is close. */
export function nearestName (name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const c = candidate.toLowerCase()
    const d = Math.min(lower.length, c.length) >= 4 && (c.includes(lower) || lower.includes(c)) ? 0.5 : editDistance(lower, c)
    if (d < bestDistance && d <= Math.max(1, Math.floor(Math.max(lower.length, c.length) / 2))) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/** ` (did you mean x?)`, or '' when nothing is close. */
export function didYouMean (name: string, known: Iterable<string>): string {
  const near = nearestName(name, known)
  return near === undefined ? '' : ` (did you mean ${near}?)`
}

/** Levenshtein distance with adjacent transpositions counted as one edit (optimal string alignment). */
function editDistance (a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[] = new Array<number>(rows * cols)
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1)
      d[i * cols + j] = v
    }
  }
  return d[rows * cols - 1]!
}
