// Strict reader of composefs (EROFS) images as libcomposefs 1.0.8 writes them: it accepts exactly the
// superblock, composefs header, inode formats, data layouts, directory blocks and xattr encodings that
// mkcomposefs emits and rejects anything else with a FormatError naming the field. The result is the
// tree `composefs-info dump` sees (libcomposefs' lcfs_load_node_from_image): whiteout stubs dropped,
// escaped overlay xattrs unescaped, payload/digest taken from the overlay redirect/metacopy xattrs.
// Pure: bytes in, values out; every offset goes through the bounds-checked `Reader`.

import { FormatError, q } from "../../base/errors.ts";
import { Reader } from "../bytes.ts";
import {
  compareBytes,
  type Dirent,
  INLINE_CONTENT_MAX,
  type Inode,
  newInode,
  PATH_MAX,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  showBytes,
  XATTR_NAME_MAX,
} from "../composefs/tree.ts";
import {
  CFS_HEADER,
  DIRENT,
  DIRENT_SIZE,
  EROFS_BLKSIZ,
  EROFS_BLKSIZ_BITS,
  EROFS_CHUNK_FORMAT_BLKBITS_MASK,
  EROFS_FEATURE_COMPAT_MTIME,
  EROFS_FEATURE_COMPAT_XATTR_FILTER,
  EROFS_FT_BLKDEV,
  EROFS_FT_CHRDEV,
  EROFS_FT_DIR,
  EROFS_FT_FIFO,
  EROFS_FT_REG_FILE,
  EROFS_FT_SOCK,
  EROFS_FT_SYMLINK,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_FLAT_PLAIN,
  EROFS_NAME_LEN,
  EROFS_NULL_ADDR,
  EROFS_SLOTSIZE,
  EROFS_SUPER_MAGIC_V1,
  EROFS_SUPER_OFFSET,
  EROFS_XATTR_PREFIXES,
  INODE_COMPACT,
  INODE_COMPACT_SIZE,
  INODE_EXTENDED,
  INODE_EXTENDED_SIZE,
  LCFS_EROFS_FLAGS_HAS_ACL,
  LCFS_EROFS_MAGIC,
  LCFS_EROFS_VERSION,
  LCFS_MAX_NONINLINE_CHUNKS,
  LCFS_VERSION_MAX,
  SUPER,
  XATTR_ENTRY_SIZE,
  XATTR_IBODY_HEADER,
  XATTR_IBODY_HEADER_SIZE,
  XATTR_SHARED_ID_SIZE,
} from "./layout.ts";

/** Longest symlink target libcomposefs reads back (file_size < PATH_MAX). */
export const SYMLINK_MAX = PATH_MAX - 1;
/** Per-inode xattr budget of lcfs_node_set_xattr_internal for image input: 12 + Σ(7 + key + value). */
export const READ_XATTR_BUDGET = 0xffff;
// Caps that bound the walk on hostile input (a real image is far below them).
export const MAX_DEPTH = 4096;
export const MAX_ENTRIES = 1 << 21;
/** Largest composefs image read or hashed (a 100,000-entry image is ~26 MB; 1 GiB is generous). */
export const MAX_IMAGE_BYTES = 1 << 30;

/** EROFS dirent file_type (EROFS_FT_*) for each S_IFMT type. */
const FILE_TYPES = new Map<number, number>([
  [S_IFREG, EROFS_FT_REG_FILE],
  [S_IFDIR, EROFS_FT_DIR],
  [S_IFCHR, EROFS_FT_CHRDEV],
  [S_IFBLK, EROFS_FT_BLKDEV],
  [S_IFIFO, EROFS_FT_FIFO],
  [S_IFSOCK, EROFS_FT_SOCK],
  [S_IFLNK, EROFS_FT_SYMLINK],
]);

const OVERLAY = "trusted.overlay.";
const OVERLAY_ESCAPED = "trusted.overlay.overlay.";
const XATTR_REDIRECT = "trusted.overlay.redirect";
const XATTR_METACOPY = "trusted.overlay.metacopy";
const XATTR_ESCAPED_WHITEOUT = "trusted.overlay.overlay.whiteout";
const XATTRS_SKIPPED = new Set([
  "trusted.overlay.overlay.whiteouts",
  "user.overlay.whiteout",
  "user.overlay.whiteouts",
]);
/** trusted.overlay.metacopy value header: version 0, length 36, flags 0, FS_VERITY_HASH_ALG_SHA256. */
const METACOPY_HEADER = [0, 36, 0, 1] as const;

export interface ErofsImage {
  header: { version: number; flags: number; formatVersion: number };
  superblock: {
    featureCompat: number;
    rootNid: number;
    inodeCount: bigint;
    buildTimeSec: bigint;
    buildTimeNsec: number;
    blocks: number;
    metaBlkaddr: number;
    xattrBlkaddr: number;
  };
  /**
   * The tree as libcomposefs reads it back: whiteout stubs dropped, an escaped whiteout as a char
   * device 0:0, overlay xattrs unescaped, payload/digest from redirect/metacopy. Directory sizes are
   * the on-disk dirent bytes. Of a hardlinked inode's entries, the first in depth-first order is the
   * primary one (`hardlink: false`), as in libcomposefs.
   */
  root: Inode;
  /** EROFS node id each inode was read from. */
  nids: Map<Inode, number>;
}

export interface ReadErofsOptions {
  /**
   * Reproduce libcomposefs 1.0.8's read-back of trusted.overlay.redirect byte for byte: it copies the
   * value after the leading '/' with a length one too long, so up to two bytes past the value (the next
   * xattr entry when the value needs no 4-byte padding) end up in the payload. `composefs-info dump`
   * shows them; the dump command sets this. Default false: the payload is the redirect target itself.
   */
  libcomposefsPayloadQuirk?: boolean;
}

function bad(field: string, expected: string, got: string | number | bigint): FormatError {
  return new FormatError(`Cannot read composefs image: ${field} expected ${expected}, got ${got}`, {
    field,
    expected,
    got: typeof got === "bigint" ? got.toString() : got,
  });
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

function latin1(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

function fromLatin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function fileTypeName(mode: number): string {
  return `0${(mode & S_IFMT).toString(8)}`;
}

/** Chunk size bits libcomposefs picks for a payload file (erofs_compute_chunk_bitsize). */
export function chunkBitsFor(size: number): number {
  let bits = 0;
  while (2 ** bits < size) bits++;
  return Math.min(Math.max(bits, EROFS_BLKSIZ_BITS), EROFS_BLKSIZ_BITS + EROFS_CHUNK_FORMAT_BLKBITS_MASK);
}

interface RawInode {
  nid: number;
  offset: number;
  extended: boolean;
  layout: number;
  xattrCount: number;
  mode: number;
  type: number;
  nlink: number;
  size: bigint;
  iu: number;
  uid: number;
  gid: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  /** Offset of the inline xattr area and of the tail (inline data) that follows it. */
  xattrStart: number;
  tailStart: number;
}

type Field = string | (() => string);
const fieldName = (f: Field) => (typeof f === "string" ? f : f());

/** What a visited nid turned into: an inode, or a skipped whiteout stub (char 0:0). */
type Visit = { inode: Inode; type: number } | { stub: true };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Marks every entry of a hardlinked inode except the first in depth-first order (libcomposefs reads
 * the tree recursively, so that entry becomes the real node and the others links to it).
 */
function markHardlinks(root: Inode): void {
  const seen = new Set<Inode>();
  const stack: Dirent[] = [...root.children].reverse();
  while (stack.length > 0) {
    const d = stack.pop()!;
    d.hardlink = seen.has(d.inode);
    seen.add(d.inode);
    const kids = d.inode.children;
    if (!d.hardlink) for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
}

class ImageReader {
  readonly r: Reader;
  readonly metaBase: number;
  readonly xattrBase: number;
  readonly buildTimeSec: bigint;
  readonly buildTimeNsec: number;
  readonly quirk: boolean;
  readonly nids = new Map<Inode, number>();
  private readonly visited = new Map<number, Visit>();
  private entryCount = 0;

  constructor(
    readonly bytes: Uint8Array,
    sb: ErofsImage["superblock"],
    quirk: boolean,
  ) {
    this.r = new Reader(bytes, "composefs image");
    this.metaBase = sb.metaBlkaddr * EROFS_BLKSIZ;
    this.xattrBase = sb.xattrBlkaddr * EROFS_BLKSIZ;
    this.buildTimeSec = sb.buildTimeSec;
    this.buildTimeNsec = sb.buildTimeNsec;
    this.quirk = quirk;
  }

  /** Bounds check through the Reader; the field name is only built when the check fails. */
  need(at: number, n: number, field: Field): void {
    if (at < 0 || n < 0 || at + n > this.bytes.length) this.r.need(n, fieldName(field), at);
  }
  view(at: number, n: number, field: Field): Uint8Array {
    this.need(at, n, field);
    return this.bytes.subarray(at, at + n);
  }
  u8(at: number, field: Field): number {
    this.need(at, 1, field);
    return this.bytes[at]!;
  }
  u16(at: number, field: Field): number {
    this.need(at, 2, field);
    return this.r.view.getUint16(at, true);
  }
  u32(at: number, field: Field): number {
    this.need(at, 4, field);
    return this.r.view.getUint32(at, true);
  }

  nidOffset(nid: bigint | number, field: Field): number {
    const max = Math.floor((this.bytes.length - this.metaBase) / EROFS_SLOTSIZE);
    if (nid >= max) throw bad(fieldName(field), `a nid below ${max}`, nid);
    return this.metaBase + Number(nid) * EROFS_SLOTSIZE;
  }

  parseInode(nid: number): RawInode {
    const offset = this.nidOffset(nid, "inode nid");
    const v = this.r.view;
    this.need(offset, INODE_COMPACT_SIZE, () => `inode ${nid} (compact)`);
    const format = v.getUint16(offset + INODE_COMPACT.format, true);
    if (format & ~0x0f) throw bad(`inode ${nid} i_format`, "only version and datalayout bits", hex(format));
    const extended = (format & 1) === 1;
    const layout = (format >> 1) & 7;
    if (
      layout !== EROFS_INODE_FLAT_PLAIN &&
      layout !== EROFS_INODE_FLAT_INLINE &&
      layout !== EROFS_INODE_CHUNK_BASED
    ) {
      throw bad(`inode ${nid} datalayout`, "0 (flat plain), 2 (flat inline) or 4 (chunk-based)", layout);
    }
    const isize = extended ? INODE_EXTENDED_SIZE : INODE_COMPACT_SIZE;
    if (extended) this.need(offset, isize, () => `inode ${nid} (extended)`);
    // The whole on-disk inode is in bounds from here on: fields are read straight from the view.
    // i_format, i_xattr_icount, i_mode and i_u sit at the same offsets in both inode forms.
    const xattrCount = v.getUint16(offset + INODE_COMPACT.xattrIcount, true);
    const mode = v.getUint16(offset + INODE_COMPACT.mode, true);
    const type = mode & S_IFMT;
    if (!FILE_TYPES.has(type)) throw bad(`inode ${nid} i_mode`, "a file type", `0${mode.toString(8)}`);
    const iu = v.getUint32(offset + INODE_COMPACT.u, true);
    let nlink: number;
    let size: bigint;
    let uid: number;
    let gid: number;
    let mtimeSec: bigint;
    let mtimeNsec: number;
    if (extended) {
      const e = INODE_EXTENDED;
      size = v.getBigUint64(offset + e.size, true);
      uid = v.getUint32(offset + e.uid, true);
      gid = v.getUint32(offset + e.gid, true);
      mtimeSec = v.getBigInt64(offset + e.mtime, true);
      mtimeNsec = v.getUint32(offset + e.mtimeNsec, true);
      nlink = v.getUint32(offset + e.nlink, true);
    } else {
      const c = INODE_COMPACT;
      nlink = v.getUint16(offset + c.nlink, true);
      size = BigInt(v.getUint32(offset + c.size, true));
      uid = v.getUint16(offset + c.uid, true);
      gid = v.getUint16(offset + c.gid, true);
      mtimeSec = this.buildTimeSec;
      mtimeNsec = this.buildTimeNsec;
    }
    if (mtimeSec > MAX_SAFE || mtimeSec < -MAX_SAFE) {
      throw bad(`inode ${nid} mtime`, "seconds within ±(2^53-1)", mtimeSec);
    }
    const xattrSize = xattrCount === 0 ? 0 : XATTR_IBODY_HEADER_SIZE + (xattrCount - 1) * XATTR_ENTRY_SIZE;
    const xattrStart = offset + isize;
    this.need(xattrStart, xattrSize, () => `inode ${nid} inline xattrs`);
    return {
      nid,
      offset,
      extended,
      layout,
      xattrCount,
      mode,
      type,
      nlink,
      size,
      iu,
      uid,
      gid,
      mtimeSec,
      mtimeNsec,
      xattrStart,
      tailStart: xattrStart + xattrSize,
    };
  }

  /** The inline tail: must lie in the image and, as EROFS requires, inside one block. */
  tail(raw: RawInode, n: number, what: string): Uint8Array {
    const field = () => `inode ${raw.nid} ${what}`;
    if (n > 0 && (raw.tailStart % EROFS_BLKSIZ) + n > EROFS_BLKSIZ) {
      throw bad(
        field(),
        `to end within the block (${EROFS_BLKSIZ - (raw.tailStart % EROFS_BLKSIZ)} bytes)`,
        n,
      );
    }
    return this.view(raw.tailStart, n, field);
  }

  /** Data blocks outside the inode: `n` bytes from block `raw_blkaddr`. */
  blocks(raw: RawInode, n: number, what: string): Uint8Array {
    return this.view(raw.iu * EROFS_BLKSIZ, n, () => `inode ${raw.nid} ${what}`);
  }

  /** Reads the whole tree from the root directory. */
  readRoot(rootNid: number): Inode {
    const raw = this.parseInode(rootNid);
    if (raw.type !== S_IFDIR) throw bad("root inode mode", "a directory", fileTypeName(raw.mode));
    const root = this.buildInode(raw);
    this.visited.set(rootNid, { inode: root, type: S_IFDIR });
    // Directories are read breadth-first from an explicit queue; each is reachable exactly once.
    const queue: { raw: RawInode; inode: Inode; parentNid: number; depth: number }[] = [
      { raw, inode: root, parentNid: rootNid, depth: 0 },
    ];
    for (let i = 0; i < queue.length; i++) {
      const dir = queue[i]!;
      for (const sub of this.readDirectory(dir.raw, dir.inode, dir.parentNid)) {
        if (dir.depth + 1 > MAX_DEPTH) throw bad("directory depth", `at most ${MAX_DEPTH}`, dir.depth + 1);
        queue.push({ raw: sub.raw, inode: sub.inode, parentNid: dir.raw.nid, depth: dir.depth + 1 });
      }
    }
    markHardlinks(root);
    return root;
  }

  /** Fills `inode.children`; returns the subdirectories still to read. */
  readDirectory(raw: RawInode, inode: Inode, parentNid: number): { raw: RawInode; inode: Inode }[] {
    const f = `directory ${raw.nid}`;
    if (raw.layout === EROFS_INODE_CHUNK_BASED) throw bad(`${f} datalayout`, "0 or 2", raw.layout);
    const size = Number(raw.size);
    const tailSize = raw.layout === EROFS_INODE_FLAT_INLINE ? size % EROFS_BLKSIZ : 0;
    if (raw.layout === EROFS_INODE_FLAT_PLAIN && (size === 0 || size % EROFS_BLKSIZ !== 0)) {
      throw bad(`${f} size`, `a non-zero multiple of ${EROFS_BLKSIZ} (flat plain)`, raw.size);
    }
    if (raw.layout === EROFS_INODE_FLAT_INLINE && tailSize === 0) {
      throw bad(`${f} size`, `not a multiple of ${EROFS_BLKSIZ} (flat inline)`, raw.size);
    }
    const nBlocks = Math.floor(size / EROFS_BLKSIZ);
    const blockData = this.blocks(raw, nBlocks * EROFS_BLKSIZ, "directory blocks");
    const chunks: Uint8Array[] = [];
    for (let b = 0; b < nBlocks; b++)
      chunks.push(blockData.subarray(b * EROFS_BLKSIZ, (b + 1) * EROFS_BLKSIZ));
    if (tailSize > 0) chunks.push(this.tail(raw, tailSize, "inline dirents"));

    const entries: Dirent[] = [];
    const subdirs: { raw: RawInode; inode: Inode }[] = [];
    let prev: Uint8Array | undefined;
    let dots = 0;
    for (const [b, block] of chunks.entries()) {
      for (const d of parseDirentBlock(block, `${f} block ${b}`)) {
        if (prev !== undefined && compareBytes(prev, d.name) >= 0) {
          throw bad(
            `${f} entry order`,
            `names sorted bytewise after ${q(showBytes(prev))}`,
            q(showBytes(d.name)),
          );
        }
        prev = d.name;
        const isDot = d.name.length === 1 && d.name[0] === 0x2e;
        const isDotDot = d.name.length === 2 && d.name[0] === 0x2e && d.name[1] === 0x2e;
        if (isDot || isDotDot) {
          const want = isDot ? raw.nid : parentNid;
          if (d.nid !== BigInt(want)) throw bad(`${f} "${isDot ? "." : ".."}" nid`, String(want), d.nid);
          if (d.fileType !== EROFS_FT_DIR) {
            throw bad(`${f} "${isDot ? "." : ".."}" file type`, `${EROFS_FT_DIR} (dir)`, d.fileType);
          }
          dots++;
          continue;
        }
        if (++this.entryCount > MAX_ENTRIES)
          throw bad("directory entries", `at most ${MAX_ENTRIES}`, this.entryCount);
        const offset = this.nidOffset(d.nid, () => `${f} entry nid`);
        const nid = (offset - this.metaBase) / EROFS_SLOTSIZE;
        const seen = this.visited.get(nid);
        const where = () => `${f} entry ${q(showBytes(d.name))}`;
        let visit: Visit;
        if (seen !== undefined) {
          if ("stub" in seen) throw bad(`${where()} nid`, "a whiteout stub linked once", nid);
          if (seen.type === S_IFDIR) throw bad(`${where()} nid`, "a directory reachable once", nid);
          visit = seen;
        } else {
          const child = this.parseInode(nid);
          if (child.type === S_IFCHR && child.iu === 0) {
            // A whiteout stub (the 00..ff entries mkcomposefs adds): libcomposefs skips it on read.
            this.checkDevice(child);
            this.readXattrs(child, undefined);
            visit = { stub: true };
          } else {
            visit = { inode: this.buildInode(child), type: child.type };
            if (child.type === S_IFDIR) subdirs.push({ raw: child, inode: visit.inode });
          }
          this.visited.set(nid, visit);
          const ft = FILE_TYPES.get(child.type)!;
          if (d.fileType !== ft) throw bad(`${where()} file type`, String(ft), d.fileType);
        }
        if (seen !== undefined && d.fileType !== FILE_TYPES.get(seen.type)) {
          throw bad(`${where()} file type`, String(FILE_TYPES.get(seen.type)), d.fileType);
        }
        if ("inode" in visit) entries.push({ name: d.name, inode: visit.inode, hardlink: false });
      }
    }
    if (dots !== 2) throw bad(`${f} entries`, 'both "." and ".."', `${dots} of them`);
    inode.children = entries;
    return subdirs;
  }

  checkDevice(raw: RawInode): void {
    const f = `inode ${raw.nid}`;
    if (raw.layout !== EROFS_INODE_FLAT_PLAIN) throw bad(`${f} datalayout`, "0 (flat plain)", raw.layout);
    if (raw.size !== 0n) throw bad(`${f} size`, "0", raw.size);
  }

  /** Decodes one inode's data (not a directory's entries) and xattrs into the libcomposefs view. */
  buildInode(raw: RawInode): Inode {
    const f = `inode ${raw.nid}`;
    const inode = newInode(raw.mode, {
      uid: raw.uid,
      gid: raw.gid,
      nlink: raw.nlink,
      mtime: { sec: Number(raw.mtimeSec), nsec: raw.mtimeNsec },
    });
    this.nids.set(inode, raw.nid);
    switch (raw.type) {
      case S_IFDIR: {
        // Entries are read by readDirectory; the size bound keeps Number exact and the blocks in the image.
        if (raw.size > BigInt(this.bytes.length))
          throw bad(`${f} size`, `at most ${this.bytes.length}`, raw.size);
        inode.size = Number(raw.size);
        break;
      }
      case S_IFLNK: {
        if (raw.size === 0n || raw.size > BigInt(SYMLINK_MAX)) {
          throw bad(`${f} symlink size`, `1..${SYMLINK_MAX}`, raw.size);
        }
        const n = Number(raw.size);
        let target: Uint8Array;
        if (raw.layout === EROFS_INODE_FLAT_INLINE) target = this.tail(raw, n, "symlink target");
        else if (raw.layout === EROFS_INODE_FLAT_PLAIN) target = this.blocks(raw, n, "symlink target");
        else throw bad(`${f} datalayout`, "0 or 2", raw.layout);
        if (target.includes(0)) throw bad(`${f} symlink target`, "no NUL byte", "a NUL byte");
        inode.payload = target.slice();
        inode.size = n;
        break;
      }
      case S_IFREG: {
        if (raw.size === 0n) {
          if (raw.layout !== EROFS_INODE_FLAT_PLAIN)
            throw bad(`${f} datalayout`, "0 (empty file)", raw.layout);
        } else if (raw.layout === EROFS_INODE_CHUNK_BASED) {
          this.checkChunks(raw);
          inode.size = Number(raw.size);
        } else {
          if (raw.size > BigInt(INLINE_CONTENT_MAX)) {
            throw bad(`${f} inline file size`, `at most ${INLINE_CONTENT_MAX}`, raw.size);
          }
          const n = Number(raw.size);
          const tailSize = raw.layout === EROFS_INODE_FLAT_INLINE ? n % EROFS_BLKSIZ : 0;
          if (raw.layout === EROFS_INODE_FLAT_INLINE && tailSize === 0) {
            throw bad(`${f} size`, `not a multiple of ${EROFS_BLKSIZ} (flat inline)`, n);
          }
          const content = new Uint8Array(n);
          content.set(this.blocks(raw, n - tailSize, "file data"));
          if (tailSize > 0) content.set(this.tail(raw, tailSize, "inline file data"), n - tailSize);
          inode.content = content;
          inode.size = n;
        }
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
        this.checkDevice(raw);
        inode.rdev = raw.iu;
        break;
      default:
        this.checkDevice(raw);
    }
    this.readXattrs(raw, inode);
    return inode;
  }

  /** A payload file: chunk-based, the chunk size libcomposefs picks, an inline map of null blocks. */
  checkChunks(raw: RawInode): void {
    const f = `inode ${raw.nid}`;
    const maxSize =
      BigInt(LCFS_MAX_NONINLINE_CHUNKS) << BigInt(EROFS_BLKSIZ_BITS + EROFS_CHUNK_FORMAT_BLKBITS_MASK);
    if (raw.size > maxSize) throw bad(`${f} size`, `at most ${maxSize} (1024 chunks)`, raw.size);
    const size = Number(raw.size);
    const bits = chunkBitsFor(size);
    if (raw.iu !== bits - EROFS_BLKSIZ_BITS) {
      throw bad(
        `${f} chunk format`,
        `${bits - EROFS_BLKSIZ_BITS} (4-byte block map, ${2 ** bits}-byte chunks)`,
        hex(raw.iu),
      );
    }
    const count = Math.ceil(size / 2 ** bits);
    // libcomposefs 1.0.8 quirk: when the chunk map does not fit in the rest of the inode's block (files of
    // ~1000 chunks with xattrs), it writes the map to a data block of its own that the inode does not
    // point to, and leaves the bytes after the inode as they are. The overlay never reads a metacopy
    // file's EROFS data, so such images work; accept them without checking the unreferenced map.
    if ((raw.tailStart % EROFS_BLKSIZ) + count * 4 > EROFS_BLKSIZ) return;
    const map = this.tail(raw, count * 4, "chunk map");
    for (let i = 0; i < count; i++) {
      const v =
        (map[4 * i]! | (map[4 * i + 1]! << 8) | (map[4 * i + 2]! << 16) | (map[4 * i + 3]! << 24)) >>> 0;
      if (v !== EROFS_NULL_ADDR) throw bad(`${f} chunk ${i} block address`, hex(EROFS_NULL_ADDR), hex(v));
    }
  }

  /**
   * Reads inline then shared xattrs in that order (as libcomposefs does) and applies the composefs
   * meaning of overlay xattrs to `inode`; with `inode` undefined (a whiteout stub) only validates.
   */
  readXattrs(raw: RawInode, inode: Inode | undefined): void {
    if (raw.xattrCount === 0) return;
    const f = `inode ${raw.nid}`;
    const end = raw.tailStart;
    const shared = this.u8(raw.xattrStart + XATTR_IBODY_HEADER.sharedCount, () => `${f} h_shared_count`);
    let pos = raw.xattrStart + XATTR_IBODY_HEADER_SIZE + shared * XATTR_SHARED_ID_SIZE;
    if (pos > end) throw bad(`${f} h_shared_count`, `at most ${(end - raw.xattrStart - 12) / 4}`, shared);
    const raws = new Set<string>();
    const state = { budget: 0 };
    const one = (at: number, limit: number, whereFn: () => string): number => {
      this.need(at, 4, () => `${whereFn()} header`);
      const nameLen = this.bytes[at]!;
      const index = this.bytes[at + 1]!;
      const valueSize = this.r.view.getUint16(at + 2, true);
      const total = (4 + nameLen + valueSize + 3) & ~3;
      if (at + total > limit) throw bad(`${whereFn()} size`, `at most ${limit - at} bytes`, total);
      const prefix = EROFS_XATTR_PREFIXES[index];
      const where = whereFn;
      if (prefix === undefined)
        throw bad(`${where()} e_name_index`, `0..${EROFS_XATTR_PREFIXES.length - 1}`, index);
      const suffix = this.bytes.subarray(at + 4, at + 4 + nameLen); // inside [at, at + total)
      if (suffix.includes(0)) throw bad(`${where()} name`, "no NUL byte", "a NUL byte");
      const name = prefix + latin1(suffix);
      if (name.length === 0) throw bad(`${where()} name`, "a non-empty name", "an empty one");
      if (raws.has(name)) throw bad(`${where()} name`, "a name used once per inode", JSON.stringify(name));
      raws.add(name);
      const valueAt = at + 4 + nameLen;
      const value = this.bytes.subarray(valueAt, valueAt + valueSize);
      if (inode) this.applyXattr(inode, name, value, valueAt, where, state);
      return total;
    };
    // Inline entries. libcomposefs stops once 4 or fewer bytes remain, so a last entry with an empty
    // name suffix and value (e.g. "user.") is not read back; anything else there is malformed.
    for (let i = 0; pos + 4 < end; i++) pos += one(pos, end, () => `${f} xattr ${i}`);
    const emptyLast = pos + 4 === end && this.bytes[pos] === 0 && this.r.view.getUint16(pos + 2, true) === 0;
    if (pos !== end && !emptyLast) {
      throw bad(
        `${f} inline xattrs`,
        `entries ending at byte ${end - raw.xattrStart}`,
        `an entry at byte ${pos - raw.xattrStart}`,
      );
    }
    for (let i = 0; i < shared; i++) {
      const id = this.u32(
        raw.xattrStart + XATTR_IBODY_HEADER_SIZE + XATTR_SHARED_ID_SIZE * i,
        () => `${f} shared xattr ${i}`,
      );
      const at = this.xattrBase + id * 4;
      if (at + 4 > this.bytes.length) throw bad(`${f} shared xattr ${i} id`, "an entry inside the image", id);
      one(at, this.bytes.length, () => `${f} shared xattr ${i} (id ${id})`);
    }
  }

  applyXattr(
    inode: Inode,
    name: string,
    value: Uint8Array,
    valueAt: number,
    where: () => string,
    state: { budget: number },
  ): void {
    const type = inode.mode & S_IFMT;
    if (name === XATTR_REDIRECT) {
      if (type === S_IFREG) inode.payload = this.redirectPayload(value, valueAt, where);
      return;
    }
    if (name === XATTR_METACOPY) {
      const ok =
        value.length === 0 || (value.length === 36 && METACOPY_HEADER.every((b, i) => value[i] === b));
      if (!ok)
        throw bad(
          `${where()} metacopy value`,
          "empty or a 36-byte sha256 fs-verity header",
          `${value.length} bytes`,
        );
      if (type === S_IFREG && value.length === 36) inode.digest = value.slice(4);
      return;
    }
    if (name === XATTR_ESCAPED_WHITEOUT && type === S_IFREG) {
      if (inode.size !== 0) throw bad(`${where()} whiteout file size`, "0", inode.size);
      inode.mode = (inode.mode & ~S_IFMT) | S_IFCHR;
      inode.rdev = 0;
      return;
    }
    if (XATTRS_SKIPPED.has(name)) return;
    let shown = name;
    if (name.startsWith(OVERLAY)) {
      if (!name.startsWith(OVERLAY_ESCAPED)) return; // composefs' own overlay xattrs (opaque, …)
      shown = OVERLAY + name.slice(OVERLAY_ESCAPED.length);
    }
    if (shown.length > XATTR_NAME_MAX)
      throw bad(`${where()} name length`, `at most ${XATTR_NAME_MAX}`, shown.length);
    state.budget += (inode.xattrs.length === 0 ? 12 : 0) + 7 + shown.length + value.length;
    if (state.budget > READ_XATTR_BUDGET) {
      throw bad(`${where()} xattr total`, `at most ${READ_XATTR_BUDGET} bytes`, state.budget);
    }
    inode.xattrs.push({ key: fromLatin1(shown), value: value.slice() });
  }

  /** trusted.overlay.redirect → backing path ('/' dropped); see ReadErofsOptions for the quirk. */
  redirectPayload(value: Uint8Array, valueAt: number, where: () => string): Uint8Array {
    if (value.includes(0)) throw bad(`${where()} redirect value`, "no NUL byte", "a NUL byte");
    if (value.length > 1 && value[0] === 0x2f) {
      if (!this.quirk) return value.slice(1);
      // libcomposefs: strndup(value + 1, value_size + 1), i.e. up to two bytes past the value.
      const end = Math.min(valueAt + value.length + 2, this.bytes.length);
      const read = this.bytes.subarray(valueAt + 1, end);
      const nul = read.indexOf(0);
      return (nul < 0 ? read : read.subarray(0, nul)).slice();
    }
    return value.slice();
  }
}

interface RawDirent {
  nid: bigint;
  name: Uint8Array;
  fileType: number;
}

/** One directory block (or inline tail): dirent array, then the names packed after it. */
function parseDirentBlock(block: Uint8Array, f: string): RawDirent[] {
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const first = block.length >= DIRENT_SIZE ? v.getUint16(DIRENT.nameoff, true) : 0;
  if (first < DIRENT_SIZE || first % DIRENT_SIZE !== 0 || first >= block.length) {
    throw bad(`${f} first nameoff`, `a multiple of ${DIRENT_SIZE} below ${block.length}`, first);
  }
  // first < block.length, so all n dirents (n * 12 = first bytes) are inside the block.
  const n = first / DIRENT_SIZE;
  const out: RawDirent[] = [];
  let nameoff = first;
  for (let i = 0; i < n; i++) {
    const at = i * DIRENT_SIZE;
    const nid = v.getBigUint64(at + DIRENT.nid, true);
    const off = v.getUint16(at + DIRENT.nameoff, true);
    const fileType = v.getUint8(at + DIRENT.fileType);
    if (off !== nameoff) throw bad(`${f} dirent ${i} nameoff`, String(nameoff), off);
    let end: number;
    if (i + 1 < n) {
      end = v.getUint16(at + DIRENT_SIZE + DIRENT.nameoff, true);
      if (end <= off || end > block.length)
        throw bad(`${f} dirent ${i + 1} nameoff`, `${off + 1}..${block.length}`, end);
    } else {
      const nul = block.indexOf(0, off);
      end = nul < 0 ? block.length : nul;
    }
    const len = end - off;
    if (len < 1 || len > EROFS_NAME_LEN)
      throw bad(`${f} dirent ${i} name length`, `1..${EROFS_NAME_LEN}`, len);
    const name = block.slice(off, end);
    if (name.includes(0) || name.includes(0x2f)) {
      throw bad(`${f} dirent ${i} name`, "no NUL or '/' byte", q(showBytes(name)));
    }
    out.push({ nid, name, fileType });
    nameoff = end;
  }
  return out;
}

/** Decodes a composefs image; throws FormatError on anything libcomposefs 1.0.8 would not have written. */
export function readErofs(bytes: Uint8Array, options: ReadErofsOptions = {}): ErofsImage {
  if (bytes.length < EROFS_BLKSIZ || bytes.length % EROFS_BLKSIZ !== 0) {
    throw bad("image size", `a non-zero multiple of ${EROFS_BLKSIZ}`, bytes.length);
  }
  const r = new Reader(bytes, "composefs image");
  const magic = r.seek(CFS_HEADER.magic).u32le("composefs magic");
  if (magic !== LCFS_EROFS_MAGIC) throw bad("composefs magic", hex(LCFS_EROFS_MAGIC), hex(magic));
  const version = r.seek(CFS_HEADER.version).u32le("composefs version");
  if (version !== LCFS_EROFS_VERSION) throw bad("composefs version", String(LCFS_EROFS_VERSION), version);
  const flags = r.seek(CFS_HEADER.flags).u32le("composefs flags");
  if (flags & ~LCFS_EROFS_FLAGS_HAS_ACL) {
    throw bad("composefs flags", `only ${hex(LCFS_EROFS_FLAGS_HAS_ACL)} (has ACL)`, hex(flags));
  }
  const formatVersion = r.seek(CFS_HEADER.composefsVersion).u32le("composefs format version");
  if (formatVersion > LCFS_VERSION_MAX) {
    throw bad("composefs format version", `0..${LCFS_VERSION_MAX}`, formatVersion);
  }

  // Superblock fields by name; every read is bounds-checked (the image is at least one block).
  const at = (field: keyof typeof SUPER) => r.seek(EROFS_SUPER_OFFSET + SUPER[field], field);
  const sbMagic = at("magic").u32le("superblock magic");
  if (sbMagic !== EROFS_SUPER_MAGIC_V1)
    throw bad("superblock magic", hex(EROFS_SUPER_MAGIC_V1), hex(sbMagic));
  const checksum = at("checksum").u32le("superblock checksum");
  if (checksum !== 0) throw bad("superblock checksum", "0 (unused)", hex(checksum));
  const featureCompat = at("featureCompat").u32le("superblock feature_compat");
  const compatKnown = EROFS_FEATURE_COMPAT_MTIME | EROFS_FEATURE_COMPAT_XATTR_FILTER;
  if (featureCompat & ~compatKnown) {
    const expected = `only ${hex(compatKnown)} (mtime, xattr filter)`;
    throw bad("superblock feature_compat", expected, hex(featureCompat));
  }
  const blkszbits = at("blkszbits").u8("superblock blkszbits");
  if (blkszbits !== EROFS_BLKSIZ_BITS)
    throw bad("superblock blkszbits", String(EROFS_BLKSIZ_BITS), blkszbits);
  const zeroFields: [keyof typeof SUPER, string, "u8" | "u16le" | "u32le"][] = [
    ["sbExtslots", "sb_extslots", "u8"],
    ["featureIncompat", "feature_incompat", "u32le"],
    ["extraDevices", "extra_devices", "u16le"],
    ["dirblkbits", "dirblkbits", "u8"],
    ["xattrPrefixCount", "xattr_prefix_count", "u8"],
  ];
  for (const [field, name, read] of zeroFields) {
    const v = at(field)[read](`superblock ${name}`);
    if (v !== 0) throw bad(`superblock ${name}`, "0 (unused by composefs)", read === "u8" ? v : hex(v));
  }
  for (const [field, name] of [
    ["uuid", "uuid"],
    ["volumeName", "volume_name"],
  ] as const) {
    if (
      at(field)
        .bytesN(16, `superblock ${name}`)
        .some((b) => b !== 0)
    ) {
      throw bad(`superblock ${name}`, "zeros", "other bytes");
    }
  }
  const rootNid = at("rootNid").u16le("superblock root_nid");
  const inodeCount = at("inos").u64le("superblock inos");
  const buildTimeSec = BigInt.asIntN(64, at("buildTime").u64le("superblock build_time"));
  const buildTimeNsec = at("buildTimeNsec").u32le("superblock build_time_nsec");
  const blocks = at("blocks").u32le("superblock blocks");
  const metaBlkaddr = at("metaBlkaddr").u32le("superblock meta_blkaddr");
  const xattrBlkaddr = at("xattrBlkaddr").u32le("superblock xattr_blkaddr");
  if (metaBlkaddr * EROFS_BLKSIZ >= bytes.length) {
    throw bad("superblock meta_blkaddr", `below ${bytes.length / EROFS_BLKSIZ}`, metaBlkaddr);
  }
  if (xattrBlkaddr * EROFS_BLKSIZ >= bytes.length) {
    throw bad("superblock xattr_blkaddr", `below ${bytes.length / EROFS_BLKSIZ}`, xattrBlkaddr);
  }
  const superblock = {
    featureCompat,
    rootNid,
    inodeCount,
    buildTimeSec,
    buildTimeNsec,
    blocks,
    metaBlkaddr,
    xattrBlkaddr,
  };
  const reader = new ImageReader(bytes, superblock, options.libcomposefsPayloadQuirk === true);
  const root = reader.readRoot(rootNid);
  return { header: { version, flags, formatVersion }, superblock, root, nids: reader.nids };
}
