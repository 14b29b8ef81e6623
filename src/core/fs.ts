// The read-only file-system interface the pure layers are given (the repository reader, deployment
// resolution, policy). src/sys/fs.ts implements it on the real OS; tests hand in fakes. Synchronous:
// the boot agent is a single linear program and ffi-rs calls are synchronous anyway.

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
  /** Whole-file read; throws SysError (errno ENOENT, …) naming the path. */
  readFile(path: string): Uint8Array;
  /** Like readFile, but `undefined` when the file does not exist. */
  readFileIfExists(path: string): Uint8Array | undefined;
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
