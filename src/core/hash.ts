// SHA-256 and SHA-512 (ed25519) for every layer: the one module outside src/sys/ allowed a `node:` import (DESIGN.md: hashing is
// confined to one module). node:crypto runs natively under Node (vitest) and Bun (the compiled binary);
// the many-block helper also feature-detects Bun's native hasher for speed. Nothing here does I/O.

import { createHash } from "node:crypto";

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

export function sha512(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(createHash("sha512").update(data).digest());
}

export interface Sha256 {
  update(data: Uint8Array): Sha256;
  digest(): Uint8Array;
}

export function createSha256(): Sha256 {
  const h = createHash("sha256");
  const api: Sha256 = {
    update(data) {
      h.update(data);
      return api;
    },
    digest: () => new Uint8Array(h.digest()),
  };
  return api;
}

/** The native one-shot SHA-256 that writes into a caller's buffer, present only under Bun. */
interface BunSha256 {
  hash(input: Uint8Array, hashInto: Uint8Array): Uint8Array;
}
const bunSha256 = (globalThis as { Bun?: { SHA256?: BunSha256 } }).Bun?.SHA256;

/**
 * Hashes each consecutive `blockSize`-byte block of `data` (its length a multiple of `blockSize`) and
 * writes the 32-byte digests back to back into `out` from `outOffset`. This is the fs-verity Merkle
 * tree's hot loop. Under Bun (the compiled binary) `Bun.SHA256.hash(block, into)` costs ~0.15 µs per
 * 4 KiB block beyond the hashing itself (~2.4 µs with SHA-NI), a `createHash` object per block ~0.8 µs;
 * Node (the tests) has only the latter (~1.6 µs there). Both are BoringSSL/OpenSSL SHA-256.
 */
export function sha256Blocks(data: Uint8Array, blockSize: number, out: Uint8Array, outOffset = 0): void {
  const n = data.length / blockSize;
  if (!Number.isInteger(n) || outOffset + 32 * n > out.length) {
    throw new RangeError(
      `sha256Blocks: ${data.length} bytes in ${blockSize}-byte blocks do not fit the output`,
    );
  }
  if (bunSha256) {
    for (let i = 0, o = outOffset; i < data.length; i += blockSize, o += 32) {
      bunSha256.hash(data.subarray(i, i + blockSize), out.subarray(o, o + 32));
    }
    return;
  }
  for (let i = 0, o = outOffset; i < data.length; i += blockSize, o += 32) {
    out.set(
      createHash("sha256")
        .update(data.subarray(i, i + blockSize))
        .digest(),
      o,
    );
  }
}
