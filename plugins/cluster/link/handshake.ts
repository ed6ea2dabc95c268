/**
 * Mutual authentication of a link: HMAC-SHA256 challenge–response over the cluster's
 * shared secret, in five control messages.
 *
 *   dialer D                                         acceptor A
 *   HELLO     { v, from: D, to: A, nonce: nD, maxBatchBytes }  →
 *             ←  CHALLENGE { nonce: nA, proof: HMAC(acceptor | D | A | nD | nA), maxBatchBytes }
 *   PROOF     { proof: HMAC(dialer | D | A | nD | nA), hello: D's }  →
 *             ←  WELCOME { hello: A's }
 *   READY     {}  →                           (D is up; A is up when READY arrives)
 *
 * Each side checks the other's hello, and a check need not be symmetric (the default
 * one tolerates keys only the peer has, so either side may be the one that refuses).
 * READY is there so that the acceptor never reports a link up that the dialer is about
 * to refuse: without it, a dialer that dislikes A's hello would make A flap up and down
 * on every redial. The dialer's first batch follows READY on the same socket.
 *
 * Each side proves it holds the secret over a fresh nonce the *other* side chose, so a
 * recorded handshake cannot be replayed. Both ids are inside the MAC, so a proof made
 * for one pair of hosts is worthless for another, and the role is too, so a proof A
 * produced cannot be reflected back to A as a dialer's proof. The dialer checks A's
 * proof before it sends its own, and each side reveals its `hello` (cluster name,
 * registry fingerprint, ...) only to a peer that has proven the secret. Proofs are
 * compared with timingSafeEqual.
 *
 * What it does not do: encrypt, or authenticate the frames after the handshake. A link
 * runs on a network the cluster trusts (a private network, a VPN or WireGuard mesh);
 * anyone on the path can read and inject. That is the same trust Orleans' and Akka's
 * plain TCP transports place in the network, and what mutual TLS would add later.
 *
 * MAC inputs are length-prefixed fields, so no two different (ids, nonces) tuples
 * share an input.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { InvalidOptionError } from '../../../native-free-core/errors.ts'

export const NONCE_BYTES = 32
export const MIN_SECRET_BYTES = 32
const PROOF_BYTES = 32
const kLabel = Buffer.from('shoal-link/1')

export type Role = 'dialer' | 'acceptor'

/** What a host says about itself once authenticated: plain data (msgpack-encodable). */
export type Hello = Readonly<Record<string, unknown>>

/**
 * Decides whether a peer's `hello` is compatible: undefined to accept, or the reason to
 * refuse (it reaches both hosts' logs and the dialer's `lastError`).
 */
export type HelloCheck = (peer: { readonly id: string, readonly hello: Hello }) => string | undefined

/** The secret as bytes; throws InvalidOptionError without ever echoing it. */
export function secretBytes (secret: unknown, option = 'secret'): Buffer {
  let bytes: Buffer
  if (typeof secret === 'string') bytes = Buffer.from(secret, 'utf8')
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret)
  else throw new InvalidOptionError(option, secret === undefined ? 'undefined' : `a ${typeof secret}`, `is required: a string or bytes of at least ${MIN_SECRET_BYTES} bytes shared by every host of the cluster`)
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new InvalidOptionError(option, `a secret of ${bytes.length} bytes`, `must be at least ${MIN_SECRET_BYTES} bytes (for example 32 random bytes, hex-encoded)`)
  }
  return bytes
}

export function newNonce (): Buffer {
  return randomBytes(NONCE_BYTES)
}

export function proof (secret: Buffer, role: Role, dialerId: string, acceptorId: string, dialerNonce: Uint8Array, acceptorNonce: Uint8Array): Buffer {
  const mac = createHmac('sha256', secret)
  for (const field of [kLabel, Buffer.from(role), Buffer.from(dialerId), Buffer.from(acceptorId), dialerNonce, acceptorNonce]) {
    const len = Buffer.allocUnsafe(4)
    len.writeUInt32LE(field.length, 0)
    mac.update(len)
    mac.update(field)
  }
  return mac.digest()
}

/** `got` is a proof of the right length equal to `expected`, compared in constant time. */
export function proofMatches (expected: Buffer, got: unknown): boolean {
  return got instanceof Uint8Array && got.length === PROOF_BYTES && timingSafeEqual(expected, got)
}

export function isNonce (value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === NONCE_BYTES
}

/**
 * The default check: every key of our own hello must hold the same value in the
 * peer's (keys only the peer has are ignored, so a newer host may say more).
 */
export function sameHello (mine: Hello): HelloCheck {
  return ({ hello }) => {
    for (const key of Object.keys(mine)) {
      if (!isDeepStrictEqual(mine[key], hello[key])) {
        return `hello.${key} differs: ours ${show(mine[key])}, theirs ${show(hello[key])}`
      }
    }
    return undefined
  }
}

function show (value: unknown): string {
  try { return JSON.stringify(value) ?? String(value) } catch { return String(value) }
}
