/**
 * The simulator's value codec: msgpackr's pure-JavaScript packer and unpacker, with the
 * host's options (src/thread/codec.ts: `useRecords: false`, `moreTypes: true`, `copyBuffers`).
 *
 * Why msgpackr and not `structuredClone`. Rollback only needs a deep copy, which either
 * gives; fidelity needs the host's encoding. On a host every committed state, payload
 * and reply goes through msgpackr, so a `Map` comes back as a plain object, a nested
 * function as `undefined`, a symbol or a cycle fails with EncodeError. `structuredClone`
 * keeps a Map and throws on a function: an agent could pass in simulation and break on
 * a host. The simulator encodes exactly where the host does (commit, send, reply) so
 * that such differences show up in the simulation.
 *
 * Why it is allowed in the core. native-free-core may import no `node:` module and no
 * native addon. The package root `msgpackr` resolves, under Node, to `node-index.js`,
 * which imports `module` (createRequire) to load the native `msgpackr-extract` — so it
 * is not used here. The subpaths `msgpackr/pack` and `msgpackr/unpack` resolve, under
 * Node and in browsers alike, to plain ES modules (`index.js` → `pack.js`, `unpack.js`,
 * `iterators.js`) with no import outside the package and no native code; `Buffer` is
 * only used when it exists as a global. test/sim/codec.test.ts walks that import
 * graph and fails if that ever changes. When the host is loaded in the same process
 * the two share one `unpack.js` module, and so its native string extractor: faster,
 * same values.
 *
 * test/sim/codec.test.ts checks that this codec and the host's produce the same bytes.
 */
import { Packr } from 'msgpackr/pack'
import { Unpackr } from 'msgpackr/unpack'
import { encodeChecked, kValueCodecOptions } from '../agent/value-rules.ts'
import type { ValueCodec } from '../runtime/shard-runtime.ts'

const packr = new Packr(kValueCodecOptions)
const unpackr = new Unpackr({ ...kValueCodecOptions, copyBuffers: true })
const pack = (value: unknown): Uint8Array => packr.pack(value)

/** Encode with the host's rules: a top-level function or symbol is refused, as in src/thread/codec.ts. */
export function encodeSimValue (value: unknown, what: string): Uint8Array {
  return encodeChecked(pack, value, what)
}

export function decodeSimValue (bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes)
}

export const simCodec: ValueCodec = {
  encode: (value) => encodeSimValue(value, 'state'),
  decode: decodeSimValue
}
