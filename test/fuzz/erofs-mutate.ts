// EROFS-aware mutations for the composefs image reader. fields() maps a well-formed image (read once with
// readErofs) to the position and width of every field the reader interprets: the composefs header, the
// superblock, each inode (compact or extended), its xattr body (header, shared ids, entries), directory
// entries in blocks and inline tails, and chunk maps. The mutator overwrites those fields with boundary
// values and plausible wrong values (other nids, block counts ±1), does block-level copies, swaps and
// truncations, splices blocks between images, and byte-level changes anywhere.

import { FormatError } from "../../src/base/errors.ts";
import { concat } from "../../src/formats/bytes.ts";
import {
  CFS_HEADER,
  DIRENT,
  DIRENT_SIZE,
  EROFS_BLKSIZ,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_FLAT_PLAIN,
  EROFS_SLOTSIZE,
  EROFS_SUPER_OFFSET,
  INODE_COMPACT,
  INODE_COMPACT_SIZE,
  INODE_EXTENDED,
  INODE_EXTENDED_SIZE,
  SUPER,
  XATTR_ENTRY_SIZE,
  XATTR_IBODY_HEADER_SIZE,
} from "../../src/formats/erofs/layout.ts";
import { readErofs } from "../../src/formats/erofs/read.ts";
import { byteOp, interesting, type Mutator, readInt, writeInt } from "./mutate.ts";
import type { Rng } from "./rng.ts";

export interface Field {
  at: number;
  width: 1 | 2 | 4 | 8;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

const HEADER_FIELDS: Field[] = Object.values(CFS_HEADER).map((at) => ({ at, width: 4 }));
const SUPER_WIDTHS: Record<keyof typeof SUPER, 1 | 2 | 4 | 8 | 16> = {
  magic: 4,
  checksum: 4,
  featureCompat: 4,
  blkszbits: 1,
  sbExtslots: 1,
  rootNid: 2,
  inos: 8,
  buildTime: 8,
  buildTimeNsec: 4,
  blocks: 4,
  metaBlkaddr: 4,
  xattrBlkaddr: 4,
  uuid: 16,
  volumeName: 16,
  featureIncompat: 4,
  availableComprAlgs: 2,
  extraDevices: 2,
  devtSlotoff: 2,
  dirblkbits: 1,
  xattrPrefixCount: 1,
  xattrPrefixStart: 4,
  packedNid: 8,
  xattrFilterReserved: 1,
};
const SUPER_FIELDS: Field[] = (Object.keys(SUPER) as (keyof typeof SUPER)[]).map((k) => {
  const w = SUPER_WIDTHS[k];
  return { at: EROFS_SUPER_OFFSET + SUPER[k], width: w === 16 ? 8 : w };
});

const u16 = (b: Uint8Array, at: number) => Number(readInt(b, at, 2, true));
const u32 = (b: Uint8Array, at: number) => Number(readInt(b, at, 4, true));

/** Every interpreted field of a well-formed image, and the nids of its inodes. */
export function fields(bytes: Uint8Array): { fields: Field[]; nids: number[] } {
  const out: Field[] = [...HEADER_FIELDS, ...SUPER_FIELDS];
  let img: ReturnType<typeof readErofs>;
  try {
    img = readErofs(bytes);
  } catch (e) {
    // a seed the reader refuses (bad/ images): only its header and superblock fields are known
    if (e instanceof FormatError) return { fields: out, nids: [0] };
    throw e;
  }
  const meta = img.superblock.metaBlkaddr * EROFS_BLKSIZ;
  const nids = [...new Set(img.nids.values())];
  const add = (at: number, width: 1 | 2 | 4 | 8) => {
    if (at + width <= bytes.length) out.push({ at, width });
  };
  const dirents = (start: number, end: number) => {
    if (start + DIRENT_SIZE > end) return;
    const n = Math.min(Math.floor(u16(bytes, start + DIRENT.nameoff) / DIRENT_SIZE), 400);
    for (let i = 0; i < n && start + (i + 1) * DIRENT_SIZE <= end; i++) {
      const d = start + i * DIRENT_SIZE;
      add(d + DIRENT.nid, 8);
      add(d + DIRENT.nameoff, 2);
      add(d + DIRENT.fileType, 1);
    }
  };
  for (const nid of nids) {
    const base = meta + nid * EROFS_SLOTSIZE;
    const format = u16(bytes, base);
    const extended = (format & 1) === 1;
    const layout = (format >> 1) & 7;
    const L = extended ? INODE_EXTENDED : INODE_COMPACT;
    for (const [k, at] of Object.entries(L)) {
      const w = extended
        ? k === "size" || k === "mtime"
          ? 8
          : k === "format" || k === "xattrIcount" || k === "mode" || k === "reserved"
            ? 2
            : 4
        : k === "size" || k === "reserved" || k === "u" || k === "ino" || k === "reserved2"
          ? 4
          : 2;
      add(base + at, w);
    }
    const mode = u16(bytes, base + L.mode);
    const size = extended ? Number(readInt(bytes, base + 8, 8, true)) : u32(bytes, base + 8);
    const iu = u32(bytes, base + L.u);
    const icount = u16(bytes, base + L.xattrIcount);
    const xattrStart = base + (extended ? INODE_EXTENDED_SIZE : INODE_COMPACT_SIZE);
    const xattrSize = icount ? XATTR_IBODY_HEADER_SIZE + (icount - 1) * 4 : 0;
    if (icount) {
      add(xattrStart, 4);
      add(xattrStart + 4, 1);
      const shared = bytes[xattrStart + 4] ?? 0;
      for (let i = 0; i < shared; i++) add(xattrStart + XATTR_IBODY_HEADER_SIZE + 4 * i, 4);
      let e = xattrStart + XATTR_IBODY_HEADER_SIZE + 4 * shared;
      while (e + XATTR_ENTRY_SIZE <= xattrStart + xattrSize) {
        add(e, 1);
        add(e + 1, 1);
        add(e + 2, 2);
        e += (XATTR_ENTRY_SIZE + (bytes[e] ?? 0) + u16(bytes, e + 2) + 3) & ~3;
      }
    }
    const tail = xattrStart + xattrSize;
    if ((mode & S_IFMT) === S_IFDIR) {
      const full =
        layout === EROFS_INODE_FLAT_INLINE ? Math.floor(size / EROFS_BLKSIZ) : Math.ceil(size / EROFS_BLKSIZ);
      for (let k = 0; k < full && k < 64; k++) {
        const blk = (iu + k) * EROFS_BLKSIZ;
        dirents(blk, Math.min(bytes.length, blk + EROFS_BLKSIZ));
      }
      if (layout === EROFS_INODE_FLAT_INLINE)
        dirents(tail, Math.min(bytes.length, tail + (size % EROFS_BLKSIZ)));
    } else if ((mode & S_IFMT) === S_IFREG && layout === EROFS_INODE_CHUNK_BASED) {
      for (let k = 0; k < 8; k++) add(tail + 4 * k, 4);
    } else if (layout === EROFS_INODE_FLAT_PLAIN && size > 0) {
      add(iu * EROFS_BLKSIZ, 4);
    }
  }
  return { fields: out, nids };
}

interface Seed {
  bytes: Uint8Array;
  fields: Field[];
  nids: number[];
}

/** Overwrites one field with a boundary or plausible wrong value, or flips/adjusts it. */
function fieldOp(rng: Rng, b: Uint8Array, s: Seed): Uint8Array {
  const f = rng.pick(s.fields);
  const cur = readInt(b, f.at, f.width, true);
  const blocks = BigInt(Math.floor(b.length / EROFS_BLKSIZ));
  const v = rng.pick<() => number | bigint>([
    () => interesting(rng, f.width),
    () => interesting(rng, f.width),
    () => cur + BigInt(rng.range(1, 4)),
    () => cur - BigInt(rng.range(1, 4)),
    () => cur ^ (1n << BigInt(rng.below(8 * f.width))),
    () => rng.pick(s.nids),
    () => blocks + BigInt(rng.range(-2, 2)),
    () => BigInt(rng.below(2 ** Math.min(32, 8 * f.width))),
  ])();
  writeInt(b, f.at, f.width, v, true);
  return b;
}

/** Block-level changes that keep the size a multiple of the block size (so the reader goes deep). */
function blockOp(rng: Rng, b: Uint8Array, seeds: readonly Seed[]): Uint8Array {
  const n = Math.floor(b.length / EROFS_BLKSIZ);
  if (n === 0) return b;
  const blk = (i: number) => b.subarray(i * EROFS_BLKSIZ, (i + 1) * EROFS_BLKSIZ);
  switch (rng.below(5)) {
    case 0:
      b.set(blk(rng.below(n)).slice(), rng.below(n) * EROFS_BLKSIZ);
      return b;
    case 1:
      blk(rng.below(n)).fill(rng.chance(0.8) ? 0 : 0xff);
      return b;
    case 2:
      return b.slice(0, rng.range(1, Math.max(1, n - 1)) * EROFS_BLKSIZ);
    case 3:
      return concat([b, new Uint8Array(EROFS_BLKSIZ * rng.range(1, 3))]);
    default: {
      const o = rng.pick(seeds).bytes;
      const k = rng.below(o.length / EROFS_BLKSIZ);
      b.set(o.subarray(k * EROFS_BLKSIZ, (k + 1) * EROFS_BLKSIZ), rng.below(n) * EROFS_BLKSIZ);
      return b;
    }
  }
}

export function erofs(images: readonly Uint8Array[], maxOps = 4): Mutator {
  const seeds: Seed[] = images.map((bytes) => ({ bytes, ...fields(bytes) }));
  const raw = images;
  return (rng) => {
    const s = rng.pick(seeds);
    let b: Uint8Array = s.bytes.slice();
    for (let n = rng.count(maxOps); n > 0; n--) {
      const k = rng.weighted([10, 3, 4, 1]);
      if (k === 0) b = fieldOp(rng, b, s);
      else if (k === 1) b = blockOp(rng, b, seeds);
      else if (k === 2) {
        // a byte-level change inside a field or anywhere, keeping the size
        const f = rng.pick(s.fields);
        const at = rng.chance(0.5) ? f.at : rng.below(b.length);
        if (at < b.length) b[at] = (b[at] ?? 0) ^ (1 << rng.below(8));
      } else b = byteOp(rng, b, raw, rng.pick(s.fields).at);
    }
    return b;
  };
}
