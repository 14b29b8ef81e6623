// The read-only file-system interface the pure layers are given (the repository reader, deployment
// resolution, policy). src/sys/fs.ts implements it on the real OS; tests hand in fakes. Synchronous:
// the boot agent is a single linear program and ffi-rs calls are synchronous anyway. Every whole-file
// read names a size cap and takes regular files only: the physical root is hostile until verified, and
// a FIFO, a device or a link to one must be refused, not read.

import { FormatError, q } from "./errors.ts";

export type FileKind = "file" | "dir" | "symlink" | "chr" | "blk" | "fifo" | "sock";

export interface Stat {
  kind: FileKind;
  /** Full st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Device number for chr/blk (st_rdev). */
  rdev: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** st_dev of the file system holding the file (Linux dev_t encoding). */
  dev: number;
  ino: number;
  nlink: number;
}

export interface FsRead {
  /**
   * Whole-file read of a regular file of at most `cap` bytes. The last path component is not followed:
   * a symbolic link, directory, FIFO, device or socket is refused before it is opened, and so is a file
   * over `cap` — both as FormatError naming `what` (default "file"). Other failures are SysError
   * (ENOENT, …) naming the path.
   */
  readFile(path: string, cap: number, what?: string): Uint8Array;
  /** Like readFile, but `undefined` when nothing exists at `path`. */
  readFileIfExists(path: string, cap: number, what?: string): Uint8Array | undefined;
  lstat(path: string): Stat;
  /** `undefined` when nothing exists at path. */
  lstatIfExists(path: string): Stat | undefined;
  readlink(path: string): string;
  /** Entry names, unsorted, without "." and "..". */
  readdir(path: string): string[];
  /** Extended attribute value without following symlinks; `undefined` when absent. */
  lgetxattr(path: string, name: string): Uint8Array | undefined;
  /** Extended attribute names without following symlinks. */
  llistxattr(path: string): string[];
}

const KIND_NAMES: Record<FileKind, string> = {
  file: "a regular file",
  dir: "a directory",
  symlink: "a symbolic link",
  chr: "a character device",
  blk: "a block device",
  fifo: "a FIFO",
  sock: "a socket",
};

/** "a FIFO", "a symbolic link", … for messages. */
export function kindName(kind: FileKind): string {
  return KIND_NAMES[kind];
}

/** The refusal of a read that found something other than a regular file at `path`. */
export function notRegularFile(what: string, path: string, kind: FileKind): FormatError {
  return new FormatError(`Cannot read ${what} ${q(path)}: ${kindName(kind)}, expected a regular file`, {
    path,
    kind,
  });
}

/** The refusal of a read of more than `cap` bytes. */
export function overCap(what: string, path: string, size: number, cap: number): FormatError {
  return new FormatError(`Cannot read ${what} ${q(path)}: ${size} bytes, expected at most ${cap}`, {
    path,
    size,
    cap,
  });
}

/**
 * FsRead's readFileIfExists rules over an lstat and an unchecked whole-file read, for in-memory fakes
 * (the real one checks on the open file descriptor as well).
 */
export function cappedRead(
  lstat: (path: string) => Stat | undefined,
  read: (path: string) => Uint8Array,
  path: string,
  cap: number,
  what = "file",
): Uint8Array | undefined {
  const st = lstat(path);
  if (!st) return undefined;
  if (st.kind !== "file") throw notRegularFile(what, path, st.kind);
  if (st.size > cap) throw overCap(what, path, st.size, cap);
  const bytes = read(path);
  if (bytes.length > cap) throw overCap(what, path, bytes.length, cap);
  return bytes;
}
