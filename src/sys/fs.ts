// The real FsRead: node:fs for files and directories, libc (through sys/ffi) for extended attributes,
// which Node has no API for. Errors become SysError with the errno name and the path.

import { type BigIntStats, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import type { FileKind, FsRead, Stat } from "../core/fs.ts";
import { ENODATA, ERANGE, sysError } from "./errno.ts";
import { lgetxattr, llistxattr } from "./ffi/libc.ts";

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

function toStat(s: BigIntStats): Stat {
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

export const realFs: FsRead = {
  readFile(path) {
    try {
      const b = readFileSync(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      throw nodeErr("read", path, e);
    }
  },
  readFileIfExists(path) {
    try {
      const b = readFileSync(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw nodeErr("read", path, e);
    }
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
