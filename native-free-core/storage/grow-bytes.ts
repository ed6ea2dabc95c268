/**
 * A growable byte buffer's one step: a buffer of at least `need` bytes (doubling), with the
 * first `used` bytes of `bytes` copied over. Shared by the writers that append records to
 * one buffer (commit journals, replication's frames).
 */
export function grownBytes (bytes: Uint8Array, used: number, need: number): Uint8Array<ArrayBuffer> {
  let size = bytes.length * 2
  while (size < need) size *= 2
  const next = new Uint8Array(size)
  next.set(bytes.subarray(0, used))
  return next
}
