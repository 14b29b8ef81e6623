// Deterministic test files of any size for fs-verity and streaming tests: a fixed-seed xorshift32 stream
// (4 MiB of it, repeated) with each 4096-byte block's index stamped into its first 8 bytes, so no two
// blocks are equal and block order matters. Written once per machine under /tmp and reused.

import { closeSync, existsSync, openSync, renameSync, statSync, writeSync } from "node:fs";

const PERIOD = 4 << 20;

/** The first `n` bytes of the pattern (n ≤ 4 MiB is the raw xorshift stream before stamping). */
function base(): Uint8Array {
  const out = new Uint8Array(PERIOD);
  const words = new Uint32Array(out.buffer);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return out;
}

/** Byte-for-byte content of the pattern from offset 0, `size` bytes, fed to `sink` in 4 MiB pieces. */
export function patternChunks(size: number, sink: (chunk: Uint8Array) => void): void {
  const b = base();
  const chunk = new Uint8Array(PERIOD);
  const view = new DataView(chunk.buffer);
  for (let off = 0; off < size; off += PERIOD) {
    chunk.set(b);
    for (let blk = 0; blk < PERIOD; blk += 4096) view.setBigUint64(blk, BigInt((off + blk) / 4096), true);
    sink(chunk.subarray(0, Math.min(PERIOD, size - off)));
  }
}

/** The pattern of `size` bytes in memory (for small sizes). */
export function patternBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  patternChunks(size, (c) => {
    out.set(c, at);
    at += c.length;
  });
  return out;
}

/** Path of a file holding the pattern of `size` bytes, created once (atomically) under `dir`. */
export function patternFile(size: number, dir = "/tmp"): string {
  const path = `${dir}/sealroot-pattern-v1-${size}.bin`;
  if (existsSync(path) && statSync(path).size === size) return path;
  const tmp = `${path}.tmp${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    patternChunks(size, (c) => {
      writeSync(fd, c);
    });
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return path;
}
