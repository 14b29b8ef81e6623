// Ed25519 signatures with exactly the acceptance of libsodium 1.0.18's `crypto_sign_verify_detached`
// (Debian 12's libsodium23, what ostree calls), built on @noble/ed25519's point arithmetic. noble's own
// `verify` is cofactored and looser, so the verdict is computed here, step for step as libsodium's
// `crypto_sign/ed25519/ref10/open.c` does it. Pure: bytes in, a boolean out; wrong lengths are FormatErrors.

import * as ed from "@noble/ed25519";
import { FormatError } from "../base/errors.ts";
import { sha512 } from "../base/hash.ts";
import { bytesEqual, concat, fromHex, toHex } from "../formats/bytes.ts";

// noble's synchronous API needs a SHA-512 provider: the one from base/hash.ts, where all hashing lives.
ed.hashes.sha512 = sha512;

export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;
export const SEED_BYTES = 32;
/** libsodium's secret key: seed ‖ public key. */
export const SECRET_KEY_BYTES = 64;

/** Order of the prime-order subgroup, 2^252 + 27742317777372353535851937790883648493. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
/** The field prime 2^255 − 19. */
const P = 2n ** 255n - 19n;

/**
 * libsodium 1.0.18's `ge25519_has_small_order` blocklist: the encodings (sign bit ignored) of the points of
 * order 1, 2, 4 and 8 plus the non-canonical encodings y = p and y = p + 1 of the points with y = 0 and
 * y = 1. The other torsion points have no non-canonical y (y + p ≥ 2^255).
 */
const SMALL_ORDER_ENCODINGS: readonly Uint8Array[] = [
  "0000000000000000000000000000000000000000000000000000000000000000", // y = 0 (order 4)
  "0100000000000000000000000000000000000000000000000000000000000000", // y = 1 (identity)
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p − 1 (order 2)
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p ≡ 0 (order 4)
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1 ≡ 1 (identity)
].map((h) => fromHex(h));

function leToBigint(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] ?? 0);
  return n;
}

function checkLength(b: Uint8Array, expected: number, what: string, action: string): void {
  if (b.length !== expected) {
    throw new FormatError(`Cannot ${action}: ed25519 ${what} is ${b.length} bytes, expected ${expected}`, {
      what,
      actual: b.length,
      expected,
    });
  }
}

/** `sc25519_is_canonical`: the 32 little-endian bytes encode an integer below L. */
export function isCanonicalScalar(s: Uint8Array): boolean {
  return s.length === 32 && leToBigint(s) < L;
}

/** `ge25519_is_canonical`: the y coordinate (sign bit cleared) is below p. */
export function isCanonicalPointEncoding(e: Uint8Array): boolean {
  if (e.length !== 32) return false;
  const y = Uint8Array.from(e);
  y[31] = (y[31] ?? 0) & 0x7f;
  return leToBigint(y) < P;
}

/** `ge25519_has_small_order`: the encoding, sign bit ignored, is one of the seven blocklisted ones. */
export function hasSmallOrderEncoding(e: Uint8Array): boolean {
  if (e.length !== 32) return false;
  return SMALL_ORDER_ENCODINGS.some((bad) => {
    for (let i = 0; i < 31; i++) if (e[i] !== bad[i]) return false;
    return ((e[31] ?? 0) & 0x7f) === bad[31];
  });
}

/**
 * Decompresses a canonical point encoding, or `undefined` when y has no matching x (the one failure of
 * `ge25519_frombytes_negate_vartime` left once canonicity and the blocklist were checked). noble reports
 * that case by throwing; only callers that already checked the encoding reach here.
 */
function decodePoint(e: Uint8Array): ed.Point | undefined {
  try {
    return ed.Point.fromBytes(e, false);
  } catch {
    // noble throws "bad point: y not sqrt" for an off-curve y: that is a verdict (reject), not an error.
    return undefined;
  }
}

/**
 * libsodium's `crypto_sign_verify_detached(sig, msg, pub) == 0`, exactly: S < L, R and A not of small
 * order (blocklist), A canonical and on the curve, then the cofactorless equation compared byte for byte:
 * encode([S]B − [k]A) == R with k = SHA-512(R ‖ A ‖ msg) mod L. A non-canonical R never matches the
 * canonical re-encoding, so it is rejected as libsodium rejects it. Throws FormatError only for wrong sizes.
 */
export function verifyDetached(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  checkLength(sig, SIGNATURE_BYTES, "signature", "verify signature");
  checkLength(pub, PUBLIC_KEY_BYTES, "public key", "verify signature");
  const r = sig.subarray(0, 32);
  const sBytes = sig.subarray(32, 64);
  if (!isCanonicalScalar(sBytes) || hasSmallOrderEncoding(r)) return false;
  if (!isCanonicalPointEncoding(pub) || hasSmallOrderEncoding(pub)) return false;
  const A = decodePoint(pub);
  if (A === undefined) return false;
  const h = sha512(concat([r, pub, msg]));
  const k = leToBigint(h) % L;
  const s = leToBigint(sBytes);
  return bytesEqual(doubleScalarMultiply(s, k, A.negate()).toBytes(), r);
}

/**
 * [s]B + [k]N by one shared double-and-add over the bits of both scalars (Straus–Shamir), as libsodium's
 * `ge25519_double_scalarmult_vartime` does. Variable time is fine: every input is public. noble's
 * `BASE.multiply` would first build its 4,224-point base table, ~15× the cost of this whole sum when a
 * process verifies once (the boot: ~0.35 s under QEMU TCG); nothing here builds or keeps tables.
 */
function doubleScalarMultiply(s: bigint, k: bigint, N: ed.Point): ed.Point {
  const B = ed.Point.BASE;
  const both = B.add(N);
  let acc = ed.Point.ZERO;
  for (let bit = BigInt(Math.max(s.toString(2).length, k.toString(2).length)) - 1n; bit >= 0n; bit--) {
    acc = acc.double();
    const sb = (s >> bit) & 1n;
    const kb = (k >> bit) & 1n;
    if (sb && kb) acc = acc.add(both);
    else if (sb) acc = acc.add(B);
    else if (kb) acc = acc.add(N);
  }
  return acc;
}

/** The public key of a 32-byte seed (libsodium `crypto_sign_seed_keypair`'s pk). */
export function publicFromSeed(seed: Uint8Array): Uint8Array {
  checkLength(seed, SEED_BYTES, "seed", "derive public key");
  return ed.getPublicKey(seed);
}

export interface KeyPair {
  publicKey: Uint8Array;
  /** seed ‖ publicKey, the form libsodium and `ostree sign` use. */
  secretKey: Uint8Array;
}

/** A key pair from 32 bytes of randomness supplied by the caller (the seed); deterministic, no I/O. */
export function generateKeyPair(randomBytes32: Uint8Array): KeyPair {
  checkLength(randomBytes32, SEED_BYTES, "seed", "generate key pair");
  const publicKey = publicFromSeed(randomBytes32);
  return { publicKey, secretKey: concat([randomBytes32, publicKey]) };
}

/**
 * Checks that a 64-byte secret key's second half is the public key of its first half and returns that
 * public key. libsodium would silently hash the stored half into every signature, giving signatures that
 * verify under no key; this refuses such a key instead.
 */
export function checkSecretKey(secretKey: Uint8Array, what = "ed25519 secret key"): Uint8Array {
  checkLength(secretKey, SECRET_KEY_BYTES, "secret key", "use ed25519 secret key");
  const publicKey = publicFromSeed(secretKey.subarray(0, 32));
  const stored = secretKey.subarray(32, 64);
  if (!bytesEqual(publicKey, stored)) {
    throw new FormatError(
      `Cannot use ${what}: public half ${toHex(stored)} does not match the seed, expected ${toHex(publicKey)}`,
      { stored: toHex(stored), expected: toHex(publicKey) },
    );
  }
  return publicKey;
}

/** Deterministic RFC 8032 signature, byte-identical to libsodium's `crypto_sign_detached`. */
export function sign(msg: Uint8Array, secretKey: Uint8Array): Uint8Array {
  checkSecretKey(secretKey);
  return ed.sign(msg, secretKey.subarray(0, 32));
}
