// The real FsRead: node:fs for files and directories, libc (through sys/ffi) for extended attributes,
// which Node has no API for. Errors become SysError with the errno name and the path.

import {
  type BigIntStats,
  closeSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
} from "node:fs";
import { type FileKind, type FsRead, notRegularFile, overCap, type Stat } from "../base/fs.ts";
import { ENODATA, ERANGE, sysError } from "./errno.ts";
import { lgetxattr, llistxattr, O_NOFOLLOW, O_NONBLOCK, O_RDONLY } from "./ffi/libc.ts";

/** A node:fs error as a SysError naming the action, the path and the errno (other errors pass through). */
export function nodeErr(action: string, path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code ? sysError(action, path, code) : (e as Error);
}

function kindOf(s: BigIntStats): FileKind {
  if (s.isFile()) return "file";
  if (s.isDirectory()) return "dir";
  if (s.isSymbolicLink()) return "symlink";
  if (s.isCharacterDevice()) return "chr";
  if (s.isBlockDevice()) return "blk";
  if (s.isFIFO()) return "fifo";
  return "sock";
}

export function toStat(s: BigIntStats): Stat {
  return {
    kind: kindOf(s),
    mode: Number(s.mode),
    uid: Number(s.uid),
    gid: Number(s.gid),
    size: Number(s.size),
    rdev: Number(s.rdev),
    mtimeSec: Number(s.mtimeNs / 1_000_000_000n),
    mtimeNsec: Number(s.mtimeNs % 1_000_000_000n),
    dev: Number(s.dev),
    ino: Number(s.ino),
    nlink: Number(s.nlink),
  };
}

/** Calls `fn` with a growing buffer until the value fits; `undefined` for ENODATA. */
function withBuffer(action: string, path: string, fn: (buf: Uint8Array) => { value: number; errno: number }) {
  let size = 256;
  for (;;) {
    const buf = new Uint8Array(size);
    const r = fn(buf);
    if (r.value >= 0) return buf.slice(0, r.value);
    if (r.errno === ENODATA) return undefined;
    if (r.errno === ERANGE && size < 1 << 24) {
      size *= 8;
      continue;
    }
    throw sysError(action, path, r.errno);
  }
}

/** First read size for files that report no size (procfs, sysfs). */
const MIN_READ = 4096;

/**
 * FsRead's whole-file read: lstat (only a regular file of at most `cap` bytes is opened), then open with
 * O_NOFOLLOW|O_NONBLOCK (a link swapped in is refused, a FIFO could not block) and fstat on that fd (the
 * same regular file), then at most cap + 1 bytes read, whatever the size said (procfs says 0).
 */
function readRegular(path: string, cap: number, what: string): Uint8Array | undefined {
  const fd = openRegular(path, cap, what);
  if (fd === undefined) return undefined;
  try {
    const fst = fstatSync(fd, { bigint: true });
    let buf = new Uint8Array(Math.min(cap + 1, Math.max(MIN_READ, Number(fst.size) + 1)));
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > cap) throw overCap(what, path, n, cap);
        const bigger = new Uint8Array(Math.min(cap + 1, buf.length * 2));
        bigger.set(buf);
        buf = bigger;
      }
      const got = readAt(fd, buf, n, path);
      if (got === 0) return buf.slice(0, n);
      n += got;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * readRegular() in chunks of at most `chunkSize` bytes, each handed to `sink` (valid only for the call,
 * the buffer is reused), in constant memory. The same refusals, ENOENT included; over `cap` bytes is
 * refused when the reading gets there. Returns the bytes read.
 */
export function streamRegular(
  path: string,
  cap: number,
  what: string,
  sink: (chunk: Uint8Array) => void,
  chunkSize = 1 << 20,
): number {
  const fd = openRegular(path, cap, what);
  if (fd === undefined) throw sysError("read", path, "ENOENT");
  try {
    const buf = new Uint8Array(chunkSize);
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, 0, buf.length, n);
      } catch (e) {
        throw nodeErr("read", path, e);
      }
      if (got === 0) return n;
      n += got;
      if (n > cap) throw overCap(what, path, n, cap);
      sink(buf.subarray(0, got));
    }
  } finally {
    closeSync(fd);
  }
}

/** Opens a regular file (no symlink) of at most `cap` bytes read-only; undefined when it is absent. */
function openRegular(path: string, cap: number, what: string): number | undefined {
  let st: BigIntStats;
  try {
    st = lstatSync(path, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw nodeErr("stat", path, e);
  }
  if (!st.isFile()) throw notRegularFile(what, path, kindOf(st));
  if (st.size > BigInt(cap)) throw overCap(what, path, Number(st.size), cap);
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOOP") throw notRegularFile(what, path, "symlink");
    throw nodeErr("open", path, e);
  }
  try {
    const fst = fstatSync(fd, { bigint: true });
    if (!fst.isFile()) throw notRegularFile(what, path, kindOf(fst));
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

function readAt(fd: number, buf: Uint8Array, at: number, path: string): number {
  try {
    return readSync(fd, buf, at, buf.length - at, at);
  } catch (e) {
    throw nodeErr("read", path, e);
  }
}

export const realFs: FsRead = {
  readFile(path, cap, what = "file") {
    const b = readRegular(path, cap, what);
    if (b === undefined) throw sysError("read", path, "ENOENT");
    return b;
  },
  readFileIfExists(path, cap, what = "file") {
    return readRegular(path, cap, what);
  },
  lstat(path) {
    try {
      return toStat(lstatSync(path, { bigint: true }));
    } catch (e) {
      throw nodeErr("stat", path, e);
    }
  },
  lstatIfExists(path) {
    try {
      return toStat(lstatSync(path, { bigint: true }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw nodeErr("stat", path, e);
    }
  },
  readlink(path) {
    try {
      return readlinkSync(path, "utf8");
    } catch (e) {
      throw nodeErr("read link", path, e);
    }
  },
  readdir(path) {
    try {
      return readdirSync(path, "utf8");
    } catch (e) {
      throw nodeErr("list directory", path, e);
    }
  },
  lgetxattr(path, name) {
    return withBuffer(`read xattr ${name} of`, path, (buf) => lgetxattr(path, name, buf));
  },
  llistxattr(path) {
    const raw = withBuffer("list xattrs of", path, (buf) => llistxattr(path, buf));
    if (!raw || raw.length === 0) return [];
    return new TextDecoder()
      .decode(raw)
      .split("\0")
      .filter((n) => n.length > 0);
  },
};

/** realpath(3): the canonical absolute path (the sysroot the boot code is given has no symlinks). */
export function realpath(path: string): string {
  try {
    return realpathSync(path);
  } catch (e) {
    throw nodeErr("resolve", path, e);
  }
}
