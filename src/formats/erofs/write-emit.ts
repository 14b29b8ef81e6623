// The EROFS emit of libcomposefs 1.0.8's lcfs_write_to(), after the overlay rewrite and the xattr plan:
// composefs header, superblock, inodes breadth first (compact or extended, inline tails with
// libcomposefs's padding rules), the shared xattr table, then the data blocks. One emit routine runs
// twice: into a counting sink to measure the layout (nids, block addresses, table sizes), then with those
// values into one buffer, or chunk by chunk to a caller's output (a file) in constant memory. Every
// structure is written field by field at the offsets of layout.ts, into zeroed space. Pure.

import {
  fileType,
  type Mtime,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
} from "../composefs/tree.ts";
import {
  CFS_HEADER,
  CFS_HEADER_SIZE,
  DIRENT,
  DIRENT_SIZE,
  EROFS_BLKSIZ,
  EROFS_BLKSIZ_BITS,
  EROFS_BLOCK_MAP_ENTRY_SIZE,
  EROFS_CHUNK_FORMAT_BLKBITS_MASK,
  EROFS_CHUNK_INFO_FORMAT_MASK,
  EROFS_FEATURE_COMPAT_MTIME,
  EROFS_FEATURE_COMPAT_XATTR_FILTER,
  EROFS_FT_BLKDEV,
  EROFS_FT_CHRDEV,
  EROFS_FT_DIR,
  EROFS_FT_FIFO,
  EROFS_FT_REG_FILE,
  EROFS_FT_SOCK,
  EROFS_FT_SYMLINK,
  EROFS_FT_UNKNOWN,
  EROFS_I_DATALAYOUT_BIT,
  EROFS_I_VERSION_BIT,
  EROFS_INLINE_TAIL_MAX,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_FLAT_PLAIN,
  EROFS_INODE_LAYOUT_COMPACT,
  EROFS_INODE_LAYOUT_EXTENDED,
  EROFS_NULL_ADDR,
  EROFS_SLOTSIZE,
  EROFS_SUPER_MAGIC_V1,
  EROFS_SUPER_OFFSET,
  EROFS_SUPER_SIZE,
  INODE_COMPACT,
  INODE_COMPACT_SIZE,
  INODE_EXTENDED,
  INODE_EXTENDED_SIZE,
  LCFS_EROFS_FLAGS_HAS_ACL,
  LCFS_EROFS_MAGIC,
  LCFS_EROFS_VERSION,
  LCFS_MAX_NONINLINE_CHUNKS,
  SUPER,
  XATTR_ALIGN,
  XATTR_ENTRY,
  XATTR_ENTRY_SIZE,
  XATTR_IBODY_HEADER,
  XATTR_IBODY_HEADER_SIZE,
  XATTR_SHARED_ID_SIZE,
  XATTR_SHARED_ID_UNIT,
} from "./layout.ts";
import { cannot, isPayloadFile, pathOf, type TreeInfo, type WEntry, type WNode } from "./write-tree.ts";
import { roundUp, type XattrPlan } from "./write-xattrs.ts";

const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
/** The inode's xattr_icount: the body after its header, in 4-byte units, plus one. */
const XATTR_ICOUNT_UNIT = 4;

/** erofs_compute_chunking(): the smallest power-of-two chunk (≥ 1 block, ≤ 2^43) covering the file. */
export function chunking(size: number): { chunkBits: number; chunkCount: number } {
  const chunkBits = chunkBitsOf(size);
  return { chunkBits, chunkCount: chunkCountOf(size, chunkBits) };
}

/** chunking()'s chunk size in bits, without an object (it runs several times per file). */
export function chunkBitsOf(size: number): number {
  let chunkBits: number;
  if (size <= 1) chunkBits = 1;
  else if (size <= 2 ** 32)
    chunkBits = 32 - Math.clz32(size - 1); // ilog2(size - 1) + 1
  else {
    chunkBits = Math.ceil(Math.log2(size));
    // Math.log2 can be off by one ulp near powers of two; settle on the exact ilog2(size - 1) + 1.
    while (chunkBits > 1 && 2 ** (chunkBits - 1) >= size) chunkBits--;
    while (2 ** chunkBits < size) chunkBits++;
  }
  if (chunkBits < EROFS_BLKSIZ_BITS) chunkBits = EROFS_BLKSIZ_BITS;
  if (chunkBits - EROFS_BLKSIZ_BITS > EROFS_CHUNK_FORMAT_BLKBITS_MASK) {
    chunkBits = EROFS_CHUNK_FORMAT_BLKBITS_MASK + EROFS_BLKSIZ_BITS;
  }
  return chunkBits;
}

export const chunkCountOf = (size: number, chunkBits: number): number => Math.ceil(size / 2 ** chunkBits);

// ---------------------------------------------------------------------------------------------------
// Output sinks: the same emit code measures (CountSink) and writes (BufferSink).

interface Sink {
  pos: number;
  /** Reserves `size` zero bytes for a structure; its fields are then set relative to the returned start. */
  struct(size: number): number;
  setU8(at: number, v: number): void;
  setU16(at: number, v: number): void;
  setU32(at: number, v: number): void;
  /** A safe integer (negative ones in two's complement). */
  setU64(at: number, v: number): void;
  /** b[start..end) */
  bytes(b: Uint8Array, start: number, end: number): void;
  zeros(n: number): void;
}

class CountSink implements Sink {
  pos = 0;
  struct(size: number): number {
    const at = this.pos;
    this.pos += size;
    return at;
  }
  setU8(): void {}
  setU16(): void {}
  setU32(): void {}
  setU64(): void {}
  bytes(_b: Uint8Array, start: number, end: number): void {
    this.pos += end - start;
  }
  zeros(n: number): void {
    this.pos += n;
  }
}

/** Where the writing pass's bytes go, in order, each chunk valid only for the call. */
export type ChunkOut = (chunk: Uint8Array) => void;

/**
 * Writes through one zeroed buffer of `chunkSize` bytes, handed to `out` whenever the next structure or
 * bytes do not fit, and at the end (finish()): constant memory for any image size. A structure never
 * straddles two chunks, so its fields are set in place (chunkSize is at least the largest structure).
 */
class ChunkSink implements Sink {
  pos = 0;
  /** Image offset of buf[0]. */
  private base = 0;
  private readonly buf: Uint8Array;
  constructor(
    chunkSize: number,
    private readonly out: ChunkOut,
  ) {
    this.buf = new Uint8Array(chunkSize);
  }
  /** Hands out what is buffered and starts the next chunk, zeroed, at `pos`. */
  private flush(): void {
    const used = this.pos - this.base;
    this.out(this.buf.subarray(0, used));
    this.buf.fill(0, 0, used);
    this.base = this.pos;
  }
  /** Hands out the last chunk (the buffer itself when the whole image fit in it). */
  finish(): void {
    const used = this.pos - this.base;
    if (used > 0) this.out(used === this.buf.length ? this.buf : this.buf.subarray(0, used));
  }
  struct(size: number): number {
    if (this.pos + size > this.base + this.buf.length) this.flush();
    const at = this.pos;
    this.pos += size;
    return at;
  }
  setU8(at: number, v: number): void {
    this.buf[at - this.base] = v & 0xff;
  }
  // Little-endian byte by byte: faster than a DataView here, and zeros need no store (zeroed space).
  setU16(at: number, v: number): void {
    if (v === 0) return;
    const buf = this.buf;
    const i = at - this.base;
    buf[i] = v;
    buf[i + 1] = v >>> 8;
  }
  setU32(at: number, v: number): void {
    if (v === 0) return;
    const buf = this.buf;
    const i = at - this.base;
    buf[i] = v;
    buf[i + 1] = v >>> 8;
    buf[i + 2] = v >>> 16;
    buf[i + 3] = v >>> 24;
  }
  setU64(at: number, v: number): void {
    this.setU32(at, v >>> 0);
    this.setU32(at + 4, Math.floor(v / 0x100000000) >>> 0);
  }
  bytes(b: Uint8Array, start: number, end: number): void {
    const buf = this.buf;
    if (this.pos + (end - start) <= this.base + buf.length) {
      // No subarray() of `b`: on a small typed array it costs JavaScriptCore an ArrayBuffer for good.
      if (end - start > 64 && start === 0 && end === b.length) buf.set(b, this.pos - this.base);
      else for (let i = start, pos = this.pos - this.base; i < end; i++) buf[pos++] = b[i]!;
      this.pos += end - start;
      return;
    }
    while (start < end) {
      if (this.pos === this.base + buf.length) this.flush();
      const n = Math.min(end - start, this.base + buf.length - this.pos);
      buf.set(b.subarray(start, start + n), this.pos - this.base);
      this.pos += n;
      start += n;
    }
  }
  zeros(n: number): void {
    while (n > 0) {
      if (this.pos === this.base + this.buf.length) this.flush();
      const k = Math.min(n, this.base + this.buf.length - this.pos);
      this.pos += k;
      n -= k;
    }
  }
}

function alignTo(s: Sink, to: number): void {
  const end = roundUp(s.pos, to);
  if (end > s.pos) s.zeros(end - s.pos);
}

const all = (s: Sink, b: Uint8Array): void => s.bytes(b, 0, b.length);

/** Null chunk addresses for a payload file's chunk map: every chunk is a hole. */
const NULL_CHUNKS = new Uint8Array(LCFS_MAX_NONINLINE_CHUNKS * EROFS_BLOCK_MAP_ENTRY_SIZE).fill(0xff);
if (EROFS_NULL_ADDR !== 0xffffffff) throw new Error("NULL_CHUNKS assumes EROFS_NULL_ADDR = 0xffffffff");

// ---------------------------------------------------------------------------------------------------
// Layout rules

/** An inode's data blocks and inline tail; tailPadding() may move the tail to a block of its own. */
interface NodeLayout {
  nBlocks: number;
  tail: number;
}

/** Values only known after a full pass (forward references), measured by the first pass. */
interface Measured {
  inodesEnd: number;
  sharedXattrSize: number;
  nDataBlocks: number;
  size: number;
}

function dirSize(n: WNode, lay: NodeLayout): void {
  let nBlocks = 0;
  let block = 0;
  for (const c of n.entries) {
    const len = DIRENT_SIZE + c.name.length;
    if (block + len > EROFS_BLKSIZ) {
      nBlocks++;
      block = 0;
    }
    block += len;
  }
  if (block > EROFS_INLINE_TAIL_MAX) {
    nBlocks++;
    block = 0;
  }
  lay.nBlocks = nBlocks;
  lay.tail = block;
}

/** compute_erofs_inode_size(): data blocks and inline tail before padding decisions. */
function initialLayout(n: WNode, lay: NodeLayout): void {
  const type = fileType(n.mode);
  lay.nBlocks = 0;
  lay.tail = 0;
  if (type === S_IFDIR) dirSize(n, lay);
  else if (type === S_IFLNK) lay.tail = n.size;
  else if (type === S_IFREG && n.size > 0) {
    if (n.inode.content !== undefined) {
      lay.nBlocks = Math.floor(n.size / EROFS_BLKSIZ);
      lay.tail = n.size % EROFS_BLKSIZ;
      if (lay.tail > EROFS_INLINE_TAIL_MAX) {
        lay.nBlocks++;
        lay.tail = 0;
      }
    } else lay.tail = chunkCountOf(n.size, chunkBitsOf(n.size)) * EROFS_BLOCK_MAP_ENTRY_SIZE;
  }
}

function fitsCompact(n: WNode, lay: NodeLayout, minMtime: Mtime): boolean {
  const m = n.mtime;
  if (m.sec !== minMtime.sec || m.nsec !== minMtime.nsec) return false;
  if (n.nlink > U16_MAX || n.uid > U16_MAX || n.gid > U16_MAX) return false;
  const size = fileType(n.mode) === S_IFDIR ? lay.nBlocks * EROFS_BLKSIZ + lay.tail : n.size;
  return size <= U32_MAX;
}

/** compute_erofs_inode_padding_for_tail(): padding so an inline tail never straddles a block. */
function tailPadding(n: WNode, lay: NodeLayout, pos: number, inodeSize: number, xattrSize: number): number {
  const nonTail = inodeSize + xattrSize;
  if (fileType(n.mode) === S_IFLNK) {
    const total = nonTail + lay.tail;
    const posBlock = Math.floor(pos / EROFS_BLKSIZ);
    const endBlock = Math.floor((pos + total - 1) / EROFS_BLKSIZ);
    if (Math.floor(total / EROFS_BLKSIZ) > 0) {
      lay.nBlocks++;
      lay.tail = 0;
    }
    return posBlock !== endBlock ? roundUp(pos, EROFS_BLKSIZ) - pos : 0;
  }
  let remainder = EROFS_BLKSIZ - ((pos + nonTail) % EROFS_BLKSIZ);
  if (remainder < lay.tail) {
    const extra = roundUp(remainder, EROFS_SLOTSIZE);
    remainder = EROFS_BLKSIZ - ((pos + nonTail + extra) % EROFS_BLKSIZ);
    if (lay.tail <= remainder) return extra;
    lay.nBlocks++;
    lay.tail = 0;
    return roundUp(pos, EROFS_BLKSIZ) - pos;
  }
  return 0;
}

function direntType(n: WNode): number {
  switch (fileType(n.mode)) {
    case S_IFLNK:
      return EROFS_FT_SYMLINK;
    case S_IFDIR:
      return EROFS_FT_DIR;
    case S_IFREG:
      return EROFS_FT_REG_FILE;
    case S_IFBLK:
      return EROFS_FT_BLKDEV;
    case S_IFCHR:
      return EROFS_FT_CHRDEV;
    case S_IFSOCK:
      return EROFS_FT_SOCK;
    case S_IFIFO:
      return EROFS_FT_FIFO;
    default:
      return EROFS_FT_UNKNOWN;
  }
}

/** entries[first..end) as one dirent block: the dirents, then their names, padded to `align`. */
function emitDirentChunk(s: Sink, entries: WEntry[], first: number, end: number, align: number): void {
  let nameoff = (end - first) * DIRENT_SIZE;
  for (let i = first; i < end; i++) {
    const e = entries[i]!;
    const at = s.struct(DIRENT_SIZE);
    s.setU64(at + DIRENT.nid, e.node.nid);
    s.setU16(at + DIRENT.nameoff, nameoff);
    s.setU8(at + DIRENT.fileType, direntType(e.node));
    nameoff += e.name.length;
  }
  for (let i = first; i < end; i++) all(s, entries[i]!.name);
  alignTo(s, align);
}

/** write_erofs_dentries(): full blocks (data area) and/or the inline tail (inode area). */
function emitDirents(s: Sink, n: WNode, lay: NodeLayout, blocks: boolean, tail: boolean): void {
  let block = 0;
  let written = 0;
  let first = 0;
  const kids = n.entries;
  for (let i = 0; i < kids.length; i++) {
    const len = DIRENT_SIZE + kids[i]!.name.length;
    if (block + len > EROFS_BLKSIZ) {
      if (blocks) emitDirentChunk(s, kids, first, i, EROFS_BLKSIZ);
      written++;
      block = 0;
      first = i;
    }
    block += len;
  }
  if (written < lay.nBlocks) {
    if (blocks) emitDirentChunk(s, kids, first, kids.length, EROFS_BLKSIZ);
    written++;
    block = 0;
    first = kids.length;
  }
  if (tail && block > 0) emitDirentChunk(s, kids, first, kids.length, 1);
}

function emitXattr(s: Sink, plan: XattrPlan, k: number): void {
  const x = plan.flat[k]!;
  const prefixLen = plan.prefixLen[k]!;
  const at = s.struct(XATTR_ENTRY_SIZE);
  s.setU8(at + XATTR_ENTRY.nameLen, x.key.length - prefixLen);
  s.setU8(at + XATTR_ENTRY.nameIndex, plan.index[k]!);
  s.setU16(at + XATTR_ENTRY.valueSize, x.value.length);
  s.bytes(x.key, prefixLen, x.key.length);
  all(s, x.value);
  alignTo(s, XATTR_ALIGN);
}

/** Writes the inode of `n` (its layout final, its data at block `blockAddr`), xattr body and inline tail. */
function emitInode(
  s: Sink,
  n: WNode,
  lay: NodeLayout,
  compact: boolean,
  xattrs: XattrPlan,
  m: Measured,
  blockAddr: number,
): void {
  const type = fileType(n.mode);
  const i = n.ino;
  const xattrSize = xattrs.bodySize[i]!;

  let layout = lay.tail > 0 ? EROFS_INODE_FLAT_INLINE : EROFS_INODE_FLAT_PLAIN;
  let size = 0;
  let chunkFormat = -1;
  let chunkCount = 0;
  if (type === S_IFDIR) size = lay.nBlocks * EROFS_BLKSIZ + lay.tail;
  else if (type === S_IFREG) {
    size = n.size;
    if (isPayloadFile(n)) {
      const chunkBits = chunkBitsOf(n.size);
      chunkCount = chunkCountOf(n.size, chunkBits);
      layout = EROFS_INODE_CHUNK_BASED;
      chunkFormat = chunkBits - EROFS_BLKSIZ_BITS;
    }
  } else if (type === S_IFLNK) size = lay.nBlocks === 0 ? lay.tail : n.size;

  // i_u: block address, device number, or chunk format (in the low 16 bits of the same word)
  let iu = 0;
  if (type === S_IFCHR || type === S_IFBLK) iu = n.rdev;
  else if ((type === S_IFDIR || type === S_IFREG || type === S_IFLNK) && lay.nBlocks > 0) iu = blockAddr;
  if (chunkFormat >= 0) iu = ((iu & ~EROFS_CHUNK_INFO_FORMAT_MASK) | chunkFormat) >>> 0;

  const icount = xattrSize === 0 ? 0 : (xattrSize - XATTR_IBODY_HEADER_SIZE) / XATTR_ICOUNT_UNIT + 1;
  const format =
    (layout << EROFS_I_DATALAYOUT_BIT) |
    ((compact ? EROFS_INODE_LAYOUT_COMPACT : EROFS_INODE_LAYOUT_EXTENDED) << EROFS_I_VERSION_BIT);
  if (compact) {
    const at = s.struct(INODE_COMPACT_SIZE);
    s.setU16(at + INODE_COMPACT.format, format);
    s.setU16(at + INODE_COMPACT.xattrIcount, icount);
    s.setU16(at + INODE_COMPACT.mode, n.mode);
    s.setU16(at + INODE_COMPACT.nlink, n.nlink);
    s.setU32(at + INODE_COMPACT.size, size);
    s.setU32(at + INODE_COMPACT.u, iu);
    s.setU32(at + INODE_COMPACT.ino, n.ino);
    s.setU16(at + INODE_COMPACT.uid, n.uid);
    s.setU16(at + INODE_COMPACT.gid, n.gid);
  } else {
    const at = s.struct(INODE_EXTENDED_SIZE);
    s.setU16(at + INODE_EXTENDED.format, format);
    s.setU16(at + INODE_EXTENDED.xattrIcount, icount);
    s.setU16(at + INODE_EXTENDED.mode, n.mode);
    s.setU64(at + INODE_EXTENDED.size, size);
    s.setU32(at + INODE_EXTENDED.u, iu);
    s.setU32(at + INODE_EXTENDED.ino, n.ino);
    s.setU32(at + INODE_EXTENDED.uid, n.uid);
    s.setU32(at + INODE_EXTENDED.gid, n.gid);
    s.setU64(at + INODE_EXTENDED.mtime, n.mtime.sec);
    s.setU32(at + INODE_EXTENDED.mtimeNsec, n.mtime.nsec);
    s.setU32(at + INODE_EXTENDED.nlink, n.nlink);
  }

  if (xattrSize > 0) {
    const start = s.pos;
    const at = s.struct(XATTR_IBODY_HEADER_SIZE);
    s.setU32(at + XATTR_IBODY_HEADER.nameFilter, xattrs.filter[i]!);
    s.setU8(at + XATTR_IBODY_HEADER.sharedCount, xattrs.nShared[i]!);
    const end = xattrs.base[i + 1]!;
    const idBase = m.inodesEnd % EROFS_BLKSIZ;
    for (let k = xattrs.base[i]!; k < end; k++) {
      const off = xattrs.shared[k]!;
      if (off >= 0) s.setU32(s.struct(XATTR_SHARED_ID_SIZE), (idBase + off) / XATTR_SHARED_ID_UNIT);
    }
    for (let k = xattrs.base[i]!; k < end; k++) if (xattrs.shared[k]! < 0) emitXattr(s, xattrs, k);
    if (s.pos - start !== xattrSize) throw new Error("writeErofs: xattr body size changed while writing");
  }

  if (type === S_IFDIR) emitDirents(s, n, lay, false, true);
  else if (type === S_IFLNK) {
    if (lay.nBlocks === 0) all(s, n.inode.payload!);
  } else if (type === S_IFREG && lay.tail > 0) {
    const content = n.inode.content;
    if (content !== undefined) s.bytes(content, n.size - lay.tail, content.length);
    else s.bytes(NULL_CHUNKS, 0, chunkCount * EROFS_BLOCK_MAP_ENTRY_SIZE);
  }
}

export interface EmitPlan {
  version: number;
  info: TreeInfo;
  xattrs: XattrPlan;
}

/** The whole image; `m` holds the first pass's measurements (zeros while measuring). */
function emit(s: Sink, plan: EmitPlan, m: Measured, layouts: Int32Array): Measured {
  const { info, xattrs } = plan;
  const order = info.order;
  const root = order[0]!;
  const dataBlockStart = roundUp(m.inodesEnd + m.sharedXattrSize, EROFS_BLKSIZ);

  const h = s.struct(CFS_HEADER_SIZE);
  s.setU32(h + CFS_HEADER.magic, LCFS_EROFS_MAGIC);
  s.setU32(h + CFS_HEADER.version, LCFS_EROFS_VERSION);
  s.setU32(h + CFS_HEADER.flags, info.hasAcl ? LCFS_EROFS_FLAGS_HAS_ACL : 0);
  s.setU32(h + CFS_HEADER.composefsVersion, plan.version);
  s.zeros(EROFS_SUPER_OFFSET - s.pos);

  const sb = s.struct(EROFS_SUPER_SIZE);
  s.setU32(sb + SUPER.magic, EROFS_SUPER_MAGIC_V1);
  s.setU32(sb + SUPER.featureCompat, EROFS_FEATURE_COMPAT_MTIME | EROFS_FEATURE_COMPAT_XATTR_FILTER);
  s.setU8(sb + SUPER.blkszbits, EROFS_BLKSIZ_BITS);
  s.setU16(sb + SUPER.rootNid, root.nid);
  s.setU64(sb + SUPER.inos, order.length);
  s.setU64(sb + SUPER.buildTime, info.minMtime.sec);
  s.setU32(sb + SUPER.buildTimeNsec, info.minMtime.nsec);
  s.setU32(sb + SUPER.blocks, dataBlockStart / EROFS_BLKSIZ + m.nDataBlocks);
  s.setU32(sb + SUPER.metaBlkaddr, Math.floor((EROFS_SUPER_OFFSET + EROFS_SUPER_SIZE) / EROFS_BLKSIZ));
  s.setU32(sb + SUPER.xattrBlkaddr, Math.floor(m.inodesEnd / EROFS_BLKSIZ));

  // inodes, breadth first; nids are slot offsets from block 0
  const lay: NodeLayout = { nBlocks: 0, tail: 0 };
  let currentEnd = dataBlockStart;
  let nDataBlocks = 0;
  for (const n of order) {
    const type = fileType(n.mode);
    initialLayout(n, lay);
    const compact = fitsCompact(n, lay, info.minMtime); // before tailPadding() moves the tail
    const inodeSize = compact ? INODE_COMPACT_SIZE : INODE_EXTENDED_SIZE;
    const xattrSize = xattrs.bodySize[n.ino]!;
    const icount = xattrSize === 0 ? 0 : (xattrSize - XATTR_IBODY_HEADER_SIZE) / XATTR_ICOUNT_UNIT + 1;
    if (icount > U16_MAX) throw cannot(pathOf(n), `${icount} xattr slots`, `at most ${U16_MAX}`);

    alignTo(s, EROFS_SLOTSIZE);
    s.zeros(tailPadding(n, lay, s.pos, inodeSize, xattrSize));
    layouts[2 * n.ino] = lay.nBlocks;
    layouts[2 * n.ino + 1] = lay.tail;
    n.nid = s.pos / EROFS_SLOTSIZE;
    nDataBlocks += lay.nBlocks;
    let blockAddr = 0;
    if ((type === S_IFDIR || type === S_IFREG || type === S_IFLNK) && lay.nBlocks > 0) {
      blockAddr = currentEnd / EROFS_BLKSIZ;
      currentEnd += EROFS_BLKSIZ * lay.nBlocks;
    }
    emitInode(s, n, lay, compact, xattrs, m, blockAddr);
  }
  alignTo(s, EROFS_SLOTSIZE);
  const inodesEnd = s.pos;

  for (const k of xattrs.table) emitXattr(s, xattrs, k);
  const sharedXattrSize = s.pos - inodesEnd;
  alignTo(s, EROFS_BLKSIZ);

  // data blocks, in inode order
  for (const n of order) {
    lay.nBlocks = layouts[2 * n.ino]!;
    lay.tail = layouts[2 * n.ino + 1]!;
    if (lay.nBlocks === 0) continue;
    const type = fileType(n.mode);
    if (type === S_IFDIR) emitDirents(s, n, lay, true, false);
    else if (type === S_IFREG) {
      const content = n.inode.content;
      if (content === undefined) {
        all(s, NULL_CHUNKS);
        continue;
      }
      // libcomposefs writes only the first block (content is at most 5000 bytes: one block + tail)
      s.bytes(content, 0, Math.min(n.size, EROFS_BLKSIZ));
      alignTo(s, EROFS_BLKSIZ);
    } else if (type === S_IFLNK) {
      s.bytes(n.inode.payload!, 0, Math.min(n.size, EROFS_BLKSIZ));
      alignTo(s, EROFS_BLKSIZ);
    }
  }
  return { inodesEnd, sharedXattrSize, nDataBlocks, size: s.pos };
}

/** Larger than any one structure the emit reserves (the composefs header and superblock: 1,152 bytes). */
const MIN_CHUNK = EROFS_BLKSIZ;

/** An image measured (and so validated): its size, and the writing pass, run on demand. */
export interface MeasuredImage {
  size: number;
  /** Writes the image to `out` in chunks of at most `chunkSize` bytes (once: it sets the nids). */
  writeTo(out: ChunkOut, chunkSize: number): void;
}

/** Runs the measuring pass; the writing pass is the returned image's writeTo(). */
export function measureImage(plan: EmitPlan): MeasuredImage {
  const layouts = new Int32Array(2 * plan.info.order.length);
  const zero: Measured = { inodesEnd: 0, sharedXattrSize: 0, nDataBlocks: 0, size: 0 };
  const measured = emit(new CountSink(), plan, zero, layouts);
  return {
    size: measured.size,
    writeTo(out, chunkSize) {
      const sink = new ChunkSink(Math.max(chunkSize, MIN_CHUNK), out);
      const written = emit(sink, plan, measured, layouts);
      sink.finish();
      if (
        written.size !== measured.size ||
        written.inodesEnd !== measured.inodesEnd ||
        written.nDataBlocks !== measured.nDataBlocks
      ) {
        throw new Error("writeErofs: layout changed between the measuring and the writing pass");
      }
    },
  };
}

/** Measures the image, then writes it into a buffer of exactly that size. */
export function emitImage(plan: EmitPlan): Uint8Array {
  const image = measureImage(plan);
  let out: Uint8Array | undefined;
  // One chunk of the whole size: the sink's own buffer is the image.
  image.writeTo((chunk) => {
    out = chunk;
  }, image.size);
  if (out === undefined || out.length !== image.size)
    throw new Error("writeErofs: the image is not one chunk");
  return out;
}
