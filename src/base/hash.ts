// SHA-256, SHA-512 (ed25519) and the TPM PCR banks' SHA-1/SHA-384 for every layer: the one module outside
// src/sys/ that reaches the runtime (DESIGN.md: hashing is confined to one module). In the compiled binary
// the hashers are Bun's native ones; loading node:crypto there costs ~0.15 s of a boot under QEMU TCG, so
// it is only loaded, on first use, where there is no Bun (Node: the tests). Both are BoringSSL/OpenSSL
// digests. Nothing here does I/O.

import type * as NodeCrypto from "node:crypto";

/** The digests a TPM 2.0 PCR bank can use that sealroot computes (TPM_ALG_SHA1/SHA256/SHA384/SHA512). */
export type DigestAlgorithm = "sha1" | "sha256" | "sha384" | "sha512";
type Algorithm = DigestAlgorithm;
interface Hasher {
  update(data: Uint8Array): unknown;
  digest(): Uint8Array;
}
/** The parts of Bun's API used here, absent under Node. */
interface BunHashing {
  CryptoHasher: new (algorithm: Algorithm) => Hasher;
  SHA256: { hash(input: Uint8Array, hashInto: Uint8Array): Uint8Array };
}
const bun = (globalThis as { Bun?: BunHashing }).Bun;

let nodeCrypto: typeof NodeCrypto | undefined;
function hasher(algorithm: Algorithm): Hasher {
  if (bun) return new bun.CryptoHasher(algorithm);
  nodeCrypto ??= process.getBuiltinModule("node:crypto") as typeof NodeCrypto;
  return nodeCrypto.createHash(algorithm);
}

export function sha256(data: Uint8Array): Uint8Array {
  const h = hasher("sha256");
  h.update(data);
  return new Uint8Array(h.digest());
}

export function sha512(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const h = hasher("sha512");
  h.update(data);
  return new Uint8Array(h.digest());
}

/** One-shot digest with any of the PCR banks' algorithms. */
export function digestOf(algorithm: DigestAlgorithm, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const h = hasher(algorithm);
  h.update(data);
  return new Uint8Array(h.digest());
}

export interface Sha256 {
  update(data: Uint8Array): Sha256;
  digest(): Uint8Array;
}

export function createSha256(): Sha256 {
  const h = hasher("sha256");
  const api: Sha256 = {
    update(data) {
      h.update(data);
      return api;
    },
    digest: () => new Uint8Array(h.digest()),
  };
  return api;
}

/**
 * Hashes each consecutive `blockSize`-byte block of `data` (its length a multiple of `blockSize`) and
 * writes the 32-byte digests back to back into `out` from `outOffset`. This is the fs-verity Merkle
 * tree's hot loop. Under Bun (the compiled binary) `Bun.SHA256.hash(block, into)` costs ~0.15 µs per
 * 4 KiB block beyond the hashing itself (~2.4 µs with SHA-NI), a hasher object per block ~0.8 µs;
 * Node (the tests) has only the latter (~1.6 µs there). Both are BoringSSL/OpenSSL SHA-256.
 */
export function sha256Blocks(data: Uint8Array, blockSize: number, out: Uint8Array, outOffset = 0): void {
  const n = data.length / blockSize;
  if (!Number.isInteger(n) || outOffset + 32 * n > out.length) {
    throw new RangeError(
      `sha256Blocks: ${data.length} bytes in ${blockSize}-byte blocks do not fit the output`,
    );
  }
  if (bun) {
    for (let i = 0, o = outOffset; i < data.length; i += blockSize, o += 32) {
      bun.SHA256.hash(data.subarray(i, i + blockSize), out.subarray(o, o + 32));
    }
    return;
  }
  for (let i = 0, o = outOffset; i < data.length; i += blockSize, o += 32) {
    const h = hasher("sha256");
    h.update(data.subarray(i, i + blockSize));
    out.set(h.digest(), o);
  }
}
