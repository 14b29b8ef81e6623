// The fs-verity file digest computed in userspace, identical to `fsverity digest` (fsverity-utils) and to
// what the kernel reports for a verity file: SHA-256, 4096-byte blocks, no salt. Pure and streaming: feed
// the file's bytes in chunks of any size to `FsVerityHasher.update()`; memory stays one block per Merkle
// level. Reading the file is the caller's (src/sys/file-stream.ts); hashing is src/base/hash.ts's.

import { sha256, sha256Blocks } from "../base/hash.ts";

/** Merkle tree block size and data block size (log2 = 12), as in `fsverity digest --block-size=4096`. */
export const FSVERITY_BLOCK_SIZE = 4096;
const LOG_BLOCK_SIZE = 12;
const DIGEST_SIZE = 32;
/** `FS_VERITY_HASH_ALG_SHA256` in linux/fsverity.h. */
const HASH_ALG_SHA256 = 1;

/**
 * `struct fsverity_descriptor` (linux/fsverity.h, Documentation/filesystems/fsverity.rst), 256 bytes;
 * the file digest is the hash of it with `sig_size` 0.
 */
const DESC = {
  version: 0, // u8, must be 1
  hashAlgorithm: 1, // u8
  logBlocksize: 2, // u8
  saltSize: 3, // u8
  sigSize: 4, // le32, 0
  dataSize: 8, // le64
  rootHash: 16, // u8[64], zero-padded
  salt: 80, // u8[32]
  reserved: 112, // u8[144], zero
  size: 256,
} as const;

/** The 256-byte descriptor for a file of `dataSize` bytes whose Merkle tree root hash is `rootHash`. */
export function fsverityDescriptor(dataSize: number, rootHash: Uint8Array): Uint8Array {
  const d = new Uint8Array(DESC.size);
  const view = new DataView(d.buffer);
  d[DESC.version] = 1;
  d[DESC.hashAlgorithm] = HASH_ALG_SHA256;
  d[DESC.logBlocksize] = LOG_BLOCK_SIZE;
  d[DESC.saltSize] = 0;
  view.setUint32(DESC.sigSize, 0, true);
  view.setBigUint64(DESC.dataSize, BigInt(dataSize), true);
  d.set(rootHash, DESC.rootHash);
  return d;
}

/** One pending (partly filled) block of a Merkle tree level, and how many blocks the level has had. */
interface Level {
  block: Uint8Array;
  filled: number;
  blocks: number;
}

function newLevel(): Level {
  return { block: new Uint8Array(FSVERITY_BLOCK_SIZE), filled: 0, blocks: 0 };
}

/**
 * Streaming fs-verity digest. Level 0 holds the pending data block; level i+1 collects the hashes of
 * level i's blocks. A level's block is hashed into the next level as soon as it is full, so when the
 * input ends only the partial blocks remain to be zero-padded and hashed, bottom up, until a level has
 * had exactly one block: that block's hash is the root hash.
 */
export class FsVerityHasher {
  private readonly levels: Level[] = [newLevel()];
  private size = 0;
  private done = false;

  update(chunk: Uint8Array): this {
    if (this.done) throw new Error("FsVerityHasher.update() after digest()");
    this.size += chunk.length;
    const data = this.levels[0] as Level;
    let pos = 0;
    if (data.filled > 0) {
      const take = Math.min(chunk.length, FSVERITY_BLOCK_SIZE - data.filled);
      data.block.set(chunk.subarray(0, take), data.filled);
      data.filled += take;
      pos = take;
      if (data.filled === FSVERITY_BLOCK_SIZE) this.hashPending(0);
    }
    // Whole data blocks straight from the chunk, as many at a time as level 1's block has room for.
    for (;;) {
      const whole = Math.floor((chunk.length - pos) / FSVERITY_BLOCK_SIZE);
      if (whole === 0) break;
      const parent = this.level(1);
      const n = Math.min(whole, (FSVERITY_BLOCK_SIZE - parent.filled) / DIGEST_SIZE);
      const end = pos + n * FSVERITY_BLOCK_SIZE;
      sha256Blocks(chunk.subarray(pos, end), FSVERITY_BLOCK_SIZE, parent.block, parent.filled);
      parent.filled += n * DIGEST_SIZE;
      data.blocks += n;
      pos = end;
      if (parent.filled === FSVERITY_BLOCK_SIZE) this.hashPending(1);
    }
    if (pos < chunk.length) {
      data.block.set(chunk.subarray(pos), 0);
      data.filled = chunk.length - pos;
    }
    return this;
  }

  /** The 32-byte fs-verity digest of everything passed to update(); the hasher is spent afterwards. */
  digest(): Uint8Array {
    if (this.done) throw new Error("FsVerityHasher.digest() called twice");
    this.done = true;
    return sha256(fsverityDescriptor(this.size, this.rootHash()));
  }

  private rootHash(): Uint8Array {
    const root = new Uint8Array(DIGEST_SIZE);
    if (this.size === 0) return root; // the root hash of an empty file is all zeros
    for (let i = 0; ; i++) {
      const level = this.levels[i] as Level;
      if (level.filled > 0) this.hashPending(i);
      if (level.blocks === 1) {
        root.set((this.levels[i + 1] as Level).block.subarray(0, DIGEST_SIZE));
        return root;
      }
    }
  }

  private level(i: number): Level {
    while (this.levels.length <= i) this.levels.push(newLevel());
    return this.levels[i] as Level;
  }

  /** Zero-pads level i's pending block, appends its hash to level i+1, and carries up full blocks. */
  private hashPending(i: number): void {
    for (;;) {
      const cur = this.level(i);
      const parent = this.level(i + 1);
      cur.block.fill(0, cur.filled);
      sha256Blocks(cur.block, FSVERITY_BLOCK_SIZE, parent.block, parent.filled);
      cur.filled = 0;
      cur.blocks++;
      parent.filled += DIGEST_SIZE;
      if (parent.filled < FSVERITY_BLOCK_SIZE) return;
      i++;
    }
  }
}

/** The fs-verity digest of bytes held in memory. */
export function fsverityDigest(data: Uint8Array): Uint8Array {
  return new FsVerityHasher().update(data).digest();
}
