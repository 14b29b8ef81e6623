// The xattr side of the EROFS writer, after the overlay rewrite: each inode's xattrs laid out flat in
// breadth-first order with their EROFS name index and prefix, the shared xattr table of libcomposefs's
// compute_erofs_shared_xattrs() (key/value pairs used by more than one inode, in its canonical order),
// each inode's xattr body size and the xattr name filter (xxHash32 of each name). Typed arrays, no
// object per xattr. Pure.

import { compareBytes, type Xattr } from "../composefs/tree.ts";
import {
  EROFS_XATTR_FILTER_BITS,
  EROFS_XATTR_FILTER_DEFAULT,
  EROFS_XATTR_FILTER_SEED,
  EROFS_XATTR_LONG_PREFIX,
  WRITER_XATTR_PREFIXES,
  XATTR_ALIGN,
  XATTR_ENTRY_SIZE,
  XATTR_IBODY_HEADER_SIZE,
  XATTR_SHARED_ID_SIZE,
} from "./layout.ts";
import type { WNode } from "./write-tree.ts";

const PREFIXES = WRITER_XATTR_PREFIXES.map(([p, index]) => [new TextEncoder().encode(p), index] as const);
/** Length of the prefix each name index stands for (0 for index 0, no prefix). */
const PREFIX_LENGTH = new Uint8Array(256);
for (const [prefix, index] of PREFIXES) PREFIX_LENGTH[index] = prefix.length;

export const roundUp = (x: number, to: number): number => Math.ceil(x / to) * to;

/** The EROFS name index of `key`: its prefix (of PREFIX_LENGTH[index] bytes) is not stored; 0 = none. */
export function xattrIndex(key: Uint8Array): number {
  for (const [prefix, index] of PREFIXES) {
    if (key.length < prefix.length) continue;
    let i = 0;
    while (i < prefix.length && key[i] === prefix[i]) i++;
    if (i === prefix.length) return index;
  }
  return 0;
}

/** Size of one xattr entry: header, name suffix and value, padded. */
export const xattrEntrySize = (x: Xattr, prefixLen: number): number =>
  roundUp(XATTR_ENTRY_SIZE + x.key.length - prefixLen + x.value.length, XATTR_ALIGN);

export interface XattrPlan {
  /** Every xattr of every inode, breadth first; inode `ino` has flat[base[ino] .. base[ino + 1]). */
  flat: Xattr[];
  base: Int32Array;
  /** Per flat xattr: EROFS name index, prefix length, and offset in the shared table or -1. */
  index: Uint8Array;
  prefixLen: Uint8Array;
  shared: Int32Array;
  /** Per inode: shared xattr references, xattr body size (0 without xattrs), name filter. */
  nShared: Uint8Array;
  bodySize: Int32Array;
  filter: Uint32Array;
  /** The shared table: flat indexes of the pairs it holds, in table order, and its size in bytes. */
  table: number[];
  tableSize: number;
}

/** How many recently seen xattr objects planXattrs() checks by identity before hashing. */
const RECENT_PAIRS = 8;
/** How many recently seen xattr names planXattrs() keeps the index and filter bit of, by identity. */
const RECENT_KEYS = 4;

/** FNV-1a over key and value: the hash-table slot for finding equal key/value pairs. */
function pairHash(x: Xattr): number {
  let h = 0x811c9dc5;
  const { key, value } = x;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ value[i]!, 0x01000193);
  return h | 0;
}

function sameBytes(a: Uint8Array, c: Uint8Array): boolean {
  if (a.length !== c.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== c[i]) return false;
  return true;
}

/** Canonical order of the shared table: key descending, then value length, then value bytes descending. */
function tableOrder(p: Xattr, r: Xattr): number {
  const c = compareBytes(r.key, p.key);
  if (c !== 0) return c;
  if (p.value.length !== r.value.length) return r.value.length - p.value.length;
  return compareBytes(r.value, p.value);
}

/** Lays out the xattrs of `order` (inode numbers = positions) as the writer emits them. */
export function planXattrs(order: readonly WNode[]): XattrPlan {
  const base = new Int32Array(order.length + 1);
  let total = 0;
  for (let i = 0; i < order.length; i++) {
    base[i] = total;
    total += order[i]!.xattrs.length;
  }
  base[order.length] = total;
  const flat: Xattr[] = new Array(total);
  const index = new Uint8Array(total);
  const prefixLen = new Uint8Array(total);
  /** The name filter bit of each xattr (xxHash32 of its name after the prefix). */
  const filterBit = new Uint8Array(total);
  // Names are mostly a few shared objects (the overlay keys, the parser's shared labels): the last few
  // seen, by identity, keep their index and filter bit.
  const seenKeys: Uint8Array[] = [];
  const seenIndex: number[] = [];
  const seenBit: number[] = [];
  let seenNext = 0;
  for (let i = 0, k = 0; i < order.length; i++) {
    for (const x of order[i]!.xattrs) {
      flat[k] = x;
      const key = x.key;
      let seen = seenKeys.length - 1;
      while (seen >= 0 && seenKeys[seen] !== key) seen--;
      let ix: number;
      let bit: number;
      if (seen >= 0) {
        ix = seenIndex[seen]!;
        bit = seenBit[seen]!;
      } else {
        ix = xattrIndex(key);
        bit = xxh32(key, EROFS_XATTR_FILTER_SEED + ix, PREFIX_LENGTH[ix]!) & (EROFS_XATTR_FILTER_BITS - 1);
        seenKeys[seenNext] = key;
        seenIndex[seenNext] = ix;
        seenBit[seenNext] = bit;
        seenNext = (seenNext + 1) % RECENT_KEYS;
      }
      index[k] = ix;
      prefixLen[k] = PREFIX_LENGTH[ix]!;
      filterBit[k] = bit;
      k++;
    }
  }

  // Equal pairs: open addressing over flat indexes (+1; 0 = empty slot), first occurrence canonical.
  let slots = 16;
  while (slots < total * 2) slots *= 2;
  const mask = slots - 1;
  const table = new Int32Array(slots);
  const hashes = new Int32Array(total);
  const canon = new Int32Array(total);
  const count = new Int32Array(total);
  // Pairs the parser shares between inodes (one selinux label on most) are found by identity first.
  const recent: Xattr[] = [];
  const recentCanon: number[] = [];
  let recentNext = 0;
  recentLoop: for (let k = 0; k < total; k++) {
    const x = flat[k]!;
    for (let r = 0; r < recent.length; r++) {
      if (recent[r] === x) {
        canon[k] = recentCanon[r]!;
        hashes[k] = hashes[recentCanon[r]!]!;
        count[canon[k]!]!++;
        continue recentLoop;
      }
    }
    const h = pairHash(x);
    hashes[k] = h;
    let slot = (h ^ (h >>> 15)) & mask;
    for (;;) {
      const j = table[slot]! - 1;
      if (j < 0) {
        table[slot] = k + 1;
        canon[k] = k;
        break;
      }
      const y = flat[j]!;
      if (y === x || (hashes[j] === h && sameBytes(y.key, x.key) && sameBytes(y.value, x.value))) {
        canon[k] = j;
        break;
      }
      slot = (slot + 1) & mask;
    }
    count[canon[k]!]!++;
    recent[recentNext] = x;
    recentCanon[recentNext] = canon[k]!;
    recentNext = (recentNext + 1) % RECENT_PAIRS;
  }

  // Pairs used once never reach the table, so they need no sorting.
  const sharedPairs: number[] = [];
  for (let k = 0; k < total; k++) if (count[k]! > 1) sharedPairs.push(k);
  sharedPairs.sort((p, r) => tableOrder(flat[p]!, flat[r]!));
  const offset = new Int32Array(total).fill(-1);
  let tableSize = 0;
  for (const k of sharedPairs) {
    offset[k] = tableSize;
    tableSize += xattrEntrySize(flat[k]!, prefixLen[k]!);
  }

  const shared = new Int32Array(total);
  const nShared = new Uint8Array(order.length);
  const bodySize = new Int32Array(order.length);
  const filter = new Uint32Array(order.length);
  for (let i = 0; i < order.length; i++) {
    const end = base[i + 1]!;
    let refs = 0;
    let unsharedSize = 0;
    let bits = 0;
    for (let k = base[i]!; k < end; k++) {
      const off = offset[canon[k]!]!;
      if (off >= 0 && refs < EROFS_XATTR_LONG_PREFIX) {
        shared[k] = off;
        refs++;
      } else {
        shared[k] = -1;
        unsharedSize += xattrEntrySize(flat[k]!, prefixLen[k]!);
      }
      bits |= 1 << filterBit[k]!;
    }
    nShared[i] = refs;
    bodySize[i] =
      end === base[i]!
        ? 0
        : roundUp(XATTR_IBODY_HEADER_SIZE + refs * XATTR_SHARED_ID_SIZE + unsharedSize, XATTR_ALIGN);
    filter[i] = (EROFS_XATTR_FILTER_DEFAULT & ~bits) >>> 0;
  }
  return {
    flat,
    base,
    index,
    prefixLen,
    shared,
    nShared,
    bodySize,
    filter,
    table: sharedPairs,
    tableSize,
  };
}

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const le32 = (d: Uint8Array, i: number): number =>
  d[i]! | (d[i + 1]! << 8) | (d[i + 2]! << 16) | (d[i + 3]! << 24);
const round = (v: number, input: number): number => Math.imul(rotl((v + Math.imul(input, P2)) | 0, 13), P1);

/** xxHash32 (the kernel's lib/xxhash.c) of data[start..], used for the EROFS xattr name filter. */
export function xxh32(data: Uint8Array, seed: number, start = 0): number {
  const end = data.length;
  const len = end - start;
  let p = start;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    do {
      v1 = round(v1, le32(data, p));
      v2 = round(v2, le32(data, p + 4));
      v3 = round(v3, le32(data, p + 8));
      v4 = round(v4, le32(data, p + 12));
      p += 16;
    } while (p <= end - 16);
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  h = (h + len) | 0;
  while (p + 4 <= end) {
    h = Math.imul(rotl((h + Math.imul(le32(data, p), P3)) | 0, 17), P4);
    p += 4;
  }
  while (p < end) {
    h = Math.imul(rotl((h + Math.imul(data[p]!, P5)) | 0, 11), P1);
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}
