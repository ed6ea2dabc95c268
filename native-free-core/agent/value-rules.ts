/**
 * The one definition of how Shoal encodes values — states, payloads, replies, storage
 * values — shared by the host's codec (src/thread/codec.ts, msgpackr with its native decoder) and
 * the simulator's (sim/codec.ts, msgpackr's pure-JS modules): both must produce the same
 * bytes, or an agent could pass in simulation and fail on a host.
 *
 * Plain msgpack maps (`useRecords: false`), `moreTypes` for Set, Date, Error, typed arrays
 * and Buffers. A top-level function or symbol is refused (msgpackr would silently turn it
 * into `undefined`); nested functions become `undefined`, as in JSON.
 */
import { EncodeError, messageOf } from '../errors.ts'

export const kValueCodecOptions = { useRecords: false, moreTypes: true } as const

/** `pack(value)` with typed errors naming `what` was being encoded. */
export function encodeChecked (pack: (value: unknown) => Uint8Array, value: unknown, what: string): Uint8Array {
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new EncodeError(`${what} cannot be encoded: a ${typeof value} is not data`)
  }
  try {
    return pack(value)
  } catch (err) {
    throw new EncodeError(`${what} cannot be encoded: ${messageOf(err)}`)
  }
}
