// The in-memory composefs tree shared by the dumpfile parser and printer, the EROFS writer and reader:
// inodes with stat fields, payload, fs-verity digest, inline content and xattrs, and directories whose
// entries are sorted bytewise (C strcmp order). Every name, key, payload and value is raw bytes, since
// none of them has to be UTF-8. A hardlink is one Inode object referenced by several dirents; exactly one
// of them is its primary entry (`hardlink: false`), which decides where the inode sits in the image. Pure.

import { FormatError, q } from "../../base/errors.ts";
import { utf8 } from "../bytes.ts";

/** File type bits of st_mode (sys/stat.h). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** The file types libcomposefs accepts (lcfs_validate_mode). */
export const VALID_FILE_TYPES: readonly number[] = [
  S_IFREG,
  S_IFDIR,
  S_IFLNK,
  S_IFBLK,
  S_IFCHR,
  S_IFSOCK,
  S_IFIFO,
];

/** Size of a sha256 fs-verity digest (LCFS_DIGEST_SIZE). */
export const DIGEST_SIZE = 32;
/** Longest file name (LCFS_MAX_NAME_LENGTH). */
export const MAX_NAME_LENGTH = 255;
/** Payloads and symlink targets must be shorter than PATH_MAX (4096). */
export const PATH_MAX = 4096;
/** Largest inline content (LCFS_INLINE_CONTENT_MAX). */
export const INLINE_CONTENT_MAX = 5000;
/** Longest xattr name (XATTR_NAME_MAX) and value (u16). */
export const XATTR_NAME_MAX = 255;
export const XATTR_VALUE_MAX = 0xffff;
/** Per-inode xattr budget for external input (LCFS_INODE_EXTERNAL_XATTR_MAX = UINT16_MAX / 2). */
export const XATTR_EXTERNAL_BUDGET = 32767;
/** Budget accounting: header once, then per xattr 2 * entry header - 1 + key + value (worst-case padding). */
export const XATTR_BUDGET_HEADER = 12;
export const XATTR_BUDGET_PER_ENTRY = 7;

export interface Mtime {
  /** Seconds since the epoch (signed; always a safe integer). */
  sec: number;
  /** Nanoseconds, 0..2^32-1 (not range-checked against 10^9, as libcomposefs does not). */
  nsec: number;
}

export interface Xattr {
  key: Uint8Array;
  value: Uint8Array;
}

export interface Inode {
  /** st_mode including the S_IFMT type bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Device number (char/block devices; 0:0 char device = overlay whiteout). */
  rdev: number;
  mtime: Mtime;
  /** st_size; for symlinks the target length, for directories ignored by the writer. */
  size: number;
  /** Regular file: backing-file path relative to the object store. Symlink: the target. */
  payload?: Uint8Array;
  /** Regular file: fs-verity digest (32 bytes) of the backing file. */
  digest?: Uint8Array;
  /** Regular file: inline content (1..5000 bytes, length === size). */
  content?: Uint8Array;
  /** Extended attributes in insertion order (the writer sorts by key). Keys are unique. */
  xattrs: Xattr[];
  /** Directory entries sorted bytewise by name (empty for non-directories). */
  children: Dirent[];
}

export interface Dirent {
  name: Uint8Array;
  inode: Inode;
  /** True for every entry of a hardlinked inode except its primary one. */
  hardlink: boolean;
}

export function fileType(mode: number): number {
  return mode & S_IFMT;
}
export const isDir = (i: Inode): boolean => fileType(i.mode) === S_IFDIR;
export const isReg = (i: Inode): boolean => fileType(i.mode) === S_IFREG;
export const isSymlink = (i: Inode): boolean => fileType(i.mode) === S_IFLNK;
/** An overlayfs whiteout: a character device with device number 0:0. */
export const isWhiteout = (i: Inode): boolean => fileType(i.mode) === S_IFCHR && i.rdev === 0;

export function newInode(mode: number, fields: Partial<Omit<Inode, "mode">> = {}): Inode {
  return {
    mode,
    uid: 0,
    gid: 0,
    nlink: 1,
    rdev: 0,
    mtime: { sec: 0, nsec: 0 },
    size: 0,
    xattrs: [],
    children: [],
    ...fields,
  };
}

/** C strcmp/memcmp order: bytewise unsigned, a prefix sorts first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Index of `name` in `entries` sorted by name (bytewise), or `-(insertion point) - 1`. */
export function searchByName(entries: readonly { name: Uint8Array }[], name: Uint8Array): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(entries[mid]!.name, name);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -lo - 1;
}

export function lookupChild(dir: Inode, name: Uint8Array): Dirent | undefined {
  const i = searchByName(dir.children, name);
  return i >= 0 ? dir.children[i] : undefined;
}

/** Printable form of raw name/path bytes for error messages. */
export function showBytes(b: Uint8Array): string {
  return utf8.decode(b);
}

/**
 * Adds a dirent in sorted position. Throws FormatError for a non-directory parent, an empty name, a
 * name longer than 255 bytes, a name holding '/' or NUL, "." / "..", or a name already present.
 */
export function addChild(dir: Inode, name: Uint8Array, inode: Inode, hardlink = false): Dirent {
  if (!isDir(dir))
    throw new FormatError(
      `Cannot add ${q(showBytes(name))}: parent is not a directory, expected a directory`,
    );
  if (name.length === 0) throw new FormatError("Cannot add an entry: name is empty, expected 1..255 bytes");
  if (name.length > MAX_NAME_LENGTH) {
    throw new FormatError(
      `Cannot add ${q(showBytes(name))}: name is ${name.length} bytes, expected at most ${MAX_NAME_LENGTH}`,
    );
  }
  if (name.includes(0x2f) || name.includes(0)) {
    throw new FormatError(
      `Cannot add ${q(showBytes(name))}: name contains '/' or NUL, expected a single path component`,
    );
  }
  if (
    (name.length === 1 && name[0] === 0x2e) ||
    (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)
  ) {
    throw new FormatError(
      `Cannot add ${q(showBytes(name))}: "." and ".." are implicit, expected another name`,
    );
  }
  const children = dir.children;
  const last = children[children.length - 1];
  // Entries mostly come in name order (dumpfiles, sorted directory reads): then the new one goes last.
  const i =
    last === undefined || compareBytes(last.name, name) < 0
      ? -children.length - 1
      : searchByName(children, name);
  if (i >= 0)
    throw new FormatError(
      `Cannot add ${q(showBytes(name))}: an entry of that name exists, expected a unique name`,
    );
  const d: Dirent = { name, inode, hardlink };
  if (-i - 1 === children.length) children.push(d);
  else children.splice(-i - 1, 0, d);
  return d;
}

/** Value of the xattr `key`, if present. */
export function getXattr(inode: Inode, key: Uint8Array): Uint8Array | undefined {
  for (const x of inode.xattrs) if (compareBytes(x.key, key) === 0) return x.value;
  return undefined;
}

/** libcomposefs's per-inode xattr budget use of a set of xattrs: 12 + Σ(7 + |key| + |value|), or 0. */
export function xattrBudgetUse(xattrs: readonly Xattr[]): number {
  if (xattrs.length === 0) return 0;
  let n = XATTR_BUDGET_HEADER;
  for (const x of xattrs) n += XATTR_BUDGET_PER_ENTRY + x.key.length + x.value.length;
  return n;
}
