/**
 * What travels on a link: WebSocket binary messages of two kinds, told apart by their
 * first 32-bit word (little-endian).
 *
 *   batch     [i32 len ≥ 0][len bytes][pad to 4] [i32 len][...] ...   (word 0 ≥ 0)
 *   control   [i32 -kind][msgpack body]                              (word 0 < 0)
 *
 * A batch is exactly the frame layout of the thread rings (ring-queue.ts), with no
 * header of its own, so the receiver hands the message's bytes to `forEachFrame` where
 * they lie and the sender's batch buffer goes to the socket as it is. A negative first
 * word can never start a batch on the wire (the sender writes no skip markers), which
 * leaves negative words free for the few control messages: the handshake and the
 * heartbeat, rare enough that msgpack's convenience costs nothing.
 *
 * Frames' i32/u16 fields are written with typed arrays in host order, as on the rings;
 * every platform uWebSockets.js ships a binary for (x64, arm64, arm) is little-endian,
 * and the hub refuses to listen without that binary (native-uws.ts).
 *
 * The receiver checks a batch's framing before anyone walks it: lengths that do not
 * add up to the message (a bug or a hostile peer that has the secret) close the link
 * instead of sending a decoder outside the message.
 */
import { Packr, Unpackr } from 'msgpackr'

/** The URL path of the link endpoint on a host's uWebSockets.js server. */
export const LINK_PATH = '/shoal/link'
/** Bumped when the wire format changes; hosts refuse links of another version. */
export const LINK_PROTOCOL = 1

export const CTRL_HELLO = -1
export const CTRL_CHALLENGE = -2
export const CTRL_PROOF = -3
export const CTRL_WELCOME = -4
export const CTRL_PING = -5
export const CTRL_PONG = -6
export const CTRL_READY = -7

/** Control messages are small; anything bigger before authentication is a refusal. */
export const MAX_CONTROL_BYTES = 16 * 1024

/** WebSocket close codes (4000–4999 are the application's). */
export const CLOSE_GOING_AWAY = 1001
export const CLOSE_REFUSED = 4000
export const CLOSE_LINK_DOWN = 4001
export const CLOSE_DISCONNECTED = 4002

const packr = new Packr({ useRecords: false, moreTypes: false })
// copyBuffers: a uWS message's ArrayBuffer is neutered when its callback returns, and nonces outlive it
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true })

/** `[i32 kind][msgpack body]`. */
export function encodeControl (kind: number, body: unknown): Buffer {
  const packed = packr.pack(body)
  const out = Buffer.allocUnsafe(4 + packed.length)
  out.writeInt32LE(kind, 0)
  out.set(packed, 4)
  return out
}

/** The first word of a message: ≥ 0 a batch, < 0 a control kind. Needs ≥ 4 bytes. */
export function firstWord (u8: Uint8Array): number {
  return u8[0]! | (u8[1]! << 8) | (u8[2]! << 16) | (u8[3]! << 24)
}

/** Decode a control message's body; throws on bytes that are not msgpack. */
export function decodeControlBody (u8: Uint8Array): unknown {
  return unpackr.unpack(u8.subarray(4))
}

/**
 * Number of frames in a batch of `bytes` bytes viewed by `i32`, or -1 when the lengths
 * do not tile the message exactly (negative, past its end, or a size not a multiple of 4).
 */
export function batchFrameCount (i32: Int32Array, bytes: number): number {
  if ((bytes & 3) !== 0) return -1
  let p = 0
  let frames = 0
  while (p < bytes) {
    const len = i32[p >> 2]!
    if (len < 0 || len > bytes - p - 4) return -1
    p += 4 + ((len + 3) & ~3)
    frames++
  }
  return frames
}
