/**
 * The value codec of the host: msgpackr, for object payloads on the rings, replies,
 * and committed states.
 *
 * Plain msgpack maps (`useRecords: false`), not records: a record whose structure is
 * not shared out of band is inlined in every message, measured 2–3× slower to pack
 * here (786 vs 270 ns for a 3-field object). `moreTypes` keeps Set, Date, Error,
 * typed arrays and Buffers. The known loss: a `Map` decodes as a plain object.
 *
 * `copyBuffers`: binary values are copied out of the source; without it msgpackr
 * returns views into the decode buffer, which for us is a scratch area that the next
 * batch overwrites.
 *
 * Native acceleration (`msgpackr-extract`) stays on in every thread: the rings are
 * copied out to private memory before decoding (see ring-queue.ts), so the extractor
 * never sees a SharedArrayBuffer — where it throws and falls back 15× slower.
 */
import { Packr, Unpackr, isNativeAccelerationEnabled } from 'msgpackr'
import { encodeChecked, kValueCodecOptions } from '../../native-free-core/agent/value-rules.ts'
import type { ValueCodec } from '../../native-free-core/runtime/shard-runtime.ts'

export const packr = new Packr(kValueCodecOptions)
export const unpackr = new Unpackr({ ...kValueCodecOptions, copyBuffers: true })
const pack = (value: unknown): Uint8Array => packr.pack(value)

/** Whether msgpackr loaded its native string extractor (msgpackr-extract). */
export function nativeDecoderLoaded (): boolean {
  return isNativeAccelerationEnabled
}

/**
 * Encode with typed errors. A top-level function is refused (msgpackr would silently
 * turn it into `undefined`); nested functions do become `undefined`, as in JSON.
 */
export function encodeValue (value: unknown, what: string): Uint8Array {
  return encodeChecked(pack, value, what)
}

export const stateCodec: ValueCodec = {
  encode: (value) => encodeValue(value, 'state'),
  decode: (bytes) => unpackr.unpack(bytes)
}
