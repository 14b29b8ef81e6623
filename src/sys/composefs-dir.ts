// The I/O half of `mkcomposefs SOURCE-DIR`: walks a real directory tree into a composefs tree the way
// libcomposefs 1.0.8's lcfs_build() does (lstat fields, symlink targets, xattrs, no hardlink detection,
// nlink 1), streams source files, copies content into a digest store (`XX/YYYY…` objects, mode 0644,
// existing objects kept, fs-verity enabled best-effort) and writes the image atomically. Names and paths
// travel as raw bytes (Buffers), so non-UTF-8 names work, except where xattrs need a string path.

import {
  type BigIntStats,
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  writeSync,
} from "node:fs";
import { isatty } from "node:tty";
import { FormatError, q, UsageError } from "../base/errors.ts";
import { concat, utf8 } from "../formats/bytes.ts";
import {
  addChild,
  type Inode,
  newInode,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  XATTR_EXTERNAL_BUDGET,
  type Xattr,
  xattrBudgetUse,
} from "../formats/composefs/tree.ts";
import { sysError } from "./errno.ts";
import { type ChunkSink, streamFd } from "./file-stream.ts";
import { realFs } from "./fs.ts";
import { enableVerity } from "./verity.ts";
import { unlinkBestEffort, writeFileAtomicWith } from "./write.ts";

/** mkcomposefs's directory-source flags (LCFS_BUILD_*). */
export interface DirSourceOptions {
  /** --use-epoch: every mtime becomes 0.0. */
  useEpoch?: boolean;
  /** --skip-xattrs: read no xattrs. */
  skipXattrs?: boolean;
  /** --user-xattrs: read only `user.*` xattrs. */
  userXattrs?: boolean;
  /** --skip-devices: leave out character and block devices (whiteouts included). */
  skipDevices?: boolean;
}

/** A regular file of the source tree: where to read it, and its inode in the tree. */
export interface SourceFile {
  /** File-system path (raw bytes). */
  path: Buffer;
  inode: Inode;
}

export interface SourceTree {
  root: Inode;
  /** Every regular file, in tree order (sorted names, depth first), as mkcomposefs processes them. */
  files: SourceFile[];
}

const SLASH = Buffer.from("/");
const USER_PREFIX = "user.";

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? "EIO";
}

/** Printable form of a raw path for messages. */
export function showPath(p: Buffer): string {
  return utf8.decode(p);
}

function join(dir: Buffer, name: Buffer): Buffer {
  return dir.length > 0 && dir[dir.length - 1] === 0x2f
    ? Buffer.concat([dir, name])
    : Buffer.concat([dir, SLASH, name]);
}

function readXattrs(path: Buffer, opts: DirSourceOptions): Xattr[] {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(path);
  } catch {
    throw new FormatError(
      `Cannot read xattrs of ${q(showPath(path))}: the path is not valid UTF-8, expected a UTF-8 path (or --skip-xattrs)`,
      { path: showPath(path) },
    );
  }
  const xattrs: Xattr[] = [];
  for (const name of realFs.llistxattr(text)) {
    if (opts.userXattrs && !name.startsWith(USER_PREFIX)) continue;
    const value = realFs.lgetxattr(text, name);
    if (value === undefined) continue; // removed between list and get
    xattrs.push({ key: utf8.encode(name), value });
  }
  const use = xattrBudgetUse(xattrs);
  if (use > XATTR_EXTERNAL_BUDGET) {
    throw new FormatError(
      `Cannot read xattrs of ${q(text)}: they take ${use} bytes (12 + Σ(7 + key + value)), expected at most ${XATTR_EXTERNAL_BUDGET}`,
      { path: text },
    );
  }
  return xattrs;
}

/** One inode from lstat, as lcfs_load_node_from_file() fills it (nlink stays 1; content comes later). */
function loadNode(path: Buffer, opts: DirSourceOptions): Inode {
  let st: BigIntStats;
  try {
    st = lstatSync(path, { bigint: true });
  } catch (e) {
    throw sysError("stat", showPath(path), errCode(e));
  }
  const mode = Number(st.mode);
  const inode = newInode(mode, {
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(BigInt.asUintN(32, st.rdev)),
    size: Number(st.size),
  });
  const type = mode & S_IFMT;
  if (type !== S_IFCHR && type !== S_IFBLK) inode.rdev = 0;
  if (type === S_IFLNK) {
    let target: Buffer;
    try {
      target = readlinkSync(path, { encoding: "buffer" });
    } catch (e) {
      throw sysError("read link", showPath(path), errCode(e));
    }
    inode.payload = new Uint8Array(target);
    inode.size = target.length;
  }
  if (!opts.useEpoch) {
    inode.mtime = { sec: Number(st.mtimeNs / 1_000_000_000n), nsec: Number(st.mtimeNs % 1_000_000_000n) };
  }
  if (!opts.skipXattrs) inode.xattrs = readXattrs(path, opts);
  return inode;
}

/**
 * Reads the tree at `dir` as lcfs_build() does. Throws UsageError for conflicting flags, FormatError
 * when the source is not a directory or an inode's xattrs exceed the budget, SysError for I/O failures.
 */
export function readSourceTree(dir: string, opts: DirSourceOptions = {}): SourceTree {
  if (opts.skipXattrs && opts.userXattrs) {
    throw new UsageError("Cannot combine --skip-xattrs with --user-xattrs, expected at most one of them");
  }
  const rootPath = Buffer.from(dir);
  const root = loadNode(rootPath, opts);
  if ((root.mode & S_IFMT) !== S_IFDIR) {
    throw new FormatError(
      `Cannot read source ${q(dir)}: not a directory (mode 0${root.mode.toString(8)}), expected a directory`,
      { path: dir },
    );
  }
  const files: SourceFile[] = [];
  const walk = (path: Buffer, node: Inode): void => {
    let names: Buffer[];
    try {
      names = readdirSync(path, { encoding: "buffer" });
    } catch (e) {
      throw sysError("list directory", showPath(path), errCode(e));
    }
    for (const name of names) {
      const child = join(path, name);
      const inode = loadNode(child, opts);
      const type = inode.mode & S_IFMT;
      if (opts.skipDevices && (type === S_IFCHR || type === S_IFBLK)) continue;
      addChild(node, new Uint8Array(name), inode);
    }
    // Children are sorted now; recurse (and list regular files) in tree order.
    for (const d of node.children) {
      const child = join(path, Buffer.from(d.name));
      const type = d.inode.mode & S_IFMT;
      if (type === S_IFREG) files.push({ path: child, inode: d.inode });
      else if (type === S_IFDIR) walk(child, d.inode);
    }
  };
  walk(rootPath, root);
  return { root, files };
}

/** Streams the source file at `path` to `sink` in large chunks; returns the bytes read. */
export function streamSourceFile(path: Buffer, sink: ChunkSink): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (e) {
    throw sysError("open", showPath(path), errCode(e));
  }
  try {
    return streamFd(fd, showPath(path), sink);
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies `src` into the digest store as `store/object` unless something already exists there, as
 * mkcomposefs's copy_file_with_dirs_if_needed(): parents created 0755, a temporary file in the store
 * (reflinked when the file system can), mode 0644, fsync, fs-verity enabled best-effort, rename into
 * place. Returns true when it copied.
 */
export function storeObject(src: Buffer, store: string, object: string): boolean {
  const full = storePath(store, object);
  const parent = full.slice(0, full.lastIndexOf("/"));
  try {
    if (parent !== "") mkdirSync(parent, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw sysError("create directory", parent, errCode(e));
  }
  try {
    lstatSync(full);
    return false; // already stored
  } catch (e) {
    if (errCode(e) !== "ENOENT") throw sysError("stat", full, errCode(e));
  }
  const tmp = storePath(store, `.tmp${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  try {
    copyFileSync(src, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  } catch (e) {
    unlinkBestEffort(tmp);
    throw sysError(`copy ${q(showPath(src))} to`, tmp, errCode(e));
  }
  try {
    chmodSync(tmp, 0o644);
    const fd = openSync(tmp, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    enableVerityBestEffort(tmp);
    renameSync(tmp, full);
  } catch (e) {
    unlinkBestEffort(tmp);
    throw sysError("store", full, errCode(e));
  }
  return true;
}

/** `store/name` as mkcomposefs's join_paths(): trailing slashes of the store dropped, no '/' after "". */
export function storePath(store: string, name: string): string {
  return store === "" ? name : `${store.replace(/\/+$/, "")}/${name}`;
}

function enableVerityBestEffort(path: string): void {
  try {
    enableVerity(path);
  } catch {
    // best effort, as mkcomposefs: most file systems (tmpfs, ext4 without `verity`) cannot
  }
}

/** Reads all of standard input. */
export function readStdin(): Uint8Array {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (errCode(e) === "EAGAIN") {
        sleepMs(1);
        continue;
      }
      if (errCode(e) === "EOF") break;
      throw sysError("read", "<stdin>", errCode(e));
    }
    if (n === 0) break;
    chunks.push(buf.slice(0, n));
  }
  return concat(chunks);
}

export function stdoutIsTty(): boolean {
  return isatty(1);
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Writes raw bytes to standard output (blocking until all are written). */
export function writeStdout(bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(1, bytes, off, bytes.length - off);
    } catch (e) {
      if (errCode(e) === "EAGAIN") {
        sleepMs(1);
        continue;
      }
      throw sysError("write", "<stdout>", errCode(e));
    }
  }
}

/**
 * A full garbage collection under Bun (nothing elsewhere): between building a tree and writing its image,
 * so the writer's peak memory does not stack on the builder's garbage and the heap's headroom for it.
 */
export function collectGarbage(): void {
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
}

/** An image handed out chunk by chunk: `produce` calls `write` with each chunk in order. */
export type ImageChunks = (write: (chunk: Uint8Array) => void) => void;

/**
 * Writes the image to `path` so that a failure never leaves a partial file: a regular file (or a new
 * path) is replaced atomically (through a symlink, its target is); anything else (/dev/null, a fifo) is
 * written in place. `produce` streams it, so the whole image need not be in memory at once.
 */
export function writeImage(path: string, produce: ImageChunks): void {
  let target = path;
  try {
    const st = statSync(path);
    if (!st.isFile()) {
      writeInPlace(path, produce);
      return;
    }
    target = realpathSync(path);
  } catch (e) {
    if (errCode(e) !== "ENOENT") throw sysError("stat", path, errCode(e));
  }
  writeFileAtomicWith(target, 0o644, produce);
}

function writeInPlace(path: string, produce: ImageChunks): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY);
  } catch (e) {
    throw sysError("open", path, errCode(e));
  }
  try {
    produce((bytes) => {
      try {
        let off = 0;
        while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      } catch (e) {
        throw sysError("write", path, errCode(e));
      }
    });
  } finally {
    closeSync(fd);
  }
}
