/** Offload tasks for bench/tenancy.bench.ts. */
export function echo (input: unknown): unknown {
  return input
}
