// A recording fake of the kernel's side of `Sys`, for the tests of src/sys/ that pin which system calls
// each operation makes (mount.test.ts: the composefs mount's kernel paths; boot-sys.test.ts: the boot's
// intents) and of the PID-1 mode (init.test.ts, which adds InitSys's calls). Every call is one line of
// the shared Recorder with its flags named (`mount(A, B, null, MS_BIND|MS_SILENT, null)`); the kernel's
// own answers follow `KernelFacts` (which Linux version it is), and a FaultRule injects the rest. It
// models only what those tests read back: open fds, the set of mounted targets, a few files.

import type { Stat } from "../../src/base/fs.ts";
import { sysError } from "../../src/sys/errno.ts";
import {
  AT_FDCWD,
  MNT_DETACH,
  MS_BIND,
  MS_MOVE,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  O_CLOEXEC,
  O_NOFOLLOW,
  O_NONBLOCK,
} from "../../src/sys/ffi/libc.ts";
import {
  AT_RECURSIVE,
  FSMOUNT_CLOEXEC,
  FSOPEN_CLOEXEC,
  MOUNT_ATTR_RDONLY,
  MOVE_MOUNT_F_EMPTY_PATH,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
} from "../../src/sys/ffi/syscalls.ts";
import { describeFsConfigOp } from "../../src/sys/mount.ts";
import type { Sys } from "../../src/sys/types.ts";
import { fakeStat } from "./fake-stat.ts";
import { type FaultRule, Recorder } from "./recorder.ts";

/** What the kernel can do; the defaults are Linux 6.12's. */
export interface KernelFacts {
  /** uname -r. */
  release?: string;
  /** fsopen/fsconfig/fsmount/move_mount/open_tree (Linux 5.2); without: ENOSYS. */
  newMountApi?: boolean;
  /** EROFS mounts a regular file (Linux 6.12); without: ENOTBLK when it is created. */
  fileBackedErofs?: boolean;
  /** overlayfs `lowerdir+`/`datadir+` (Linux 6.8); without: EINVAL. */
  overlayAppend?: boolean;
  /** overlayfs refuses an unknown fsconfig key (Linux 6.5); without: it accepts any. */
  overlayChecksKeys?: boolean;
}

export interface KernelSysOptions extends KernelFacts {
  fault?: FaultRule;
  /** Regular files by path (their bytes), for open/fstat/pread/readFile. */
  files?: Record<string, Uint8Array | string>;
  /** Directories and symlinks (path → target) besides the files. */
  dirs?: string[];
  symlinks?: Record<string, string>;
  /** Targets mounted from the start. */
  mounted?: string[];
}

type Named = readonly (readonly [string, number])[];

/** `a|b` names of the bits of `n` in `table` (unknown bits in hex), "0" for none. */
export function flagNames(n: number, table: Named): string {
  const names: string[] = [];
  let rest = n;
  for (const [name, bit] of table) {
    if (bit !== 0 && (rest & bit) === bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names.length > 0 ? names.join("|") : "0";
}

const MS: Named = [
  ["MS_RDONLY", MS_RDONLY],
  ["MS_NOSUID", MS_NOSUID],
  ["MS_NODEV", MS_NODEV],
  ["MS_NOEXEC", MS_NOEXEC],
  ["MS_REMOUNT", MS_REMOUNT],
  ["MS_BIND", MS_BIND],
  ["MS_MOVE", MS_MOVE],
  ["MS_REC", MS_REC],
  ["MS_SILENT", MS_SILENT],
  ["MS_PRIVATE", MS_PRIVATE],
  ["MS_SLAVE", MS_SLAVE],
  ["MS_SHARED", MS_SHARED],
];
const O: Named = [
  ["O_CLOEXEC", O_CLOEXEC],
  ["O_NOFOLLOW", O_NOFOLLOW],
  ["O_NONBLOCK", O_NONBLOCK],
];
const OPEN_TREE: Named = [
  ["OPEN_TREE_CLONE", OPEN_TREE_CLONE],
  ["OPEN_TREE_CLOEXEC", OPEN_TREE_CLOEXEC],
  ["AT_RECURSIVE", AT_RECURSIVE],
];

const mode = (m: number) => `0o${m.toString(8).padStart(3, "0")}`;
const str = (x: string | null) => (x === null ? "null" : x === "" ? '""' : x);
const dfd = (n: number) => (n === AT_FDCWD ? "AT_FDCWD" : String(n));
const enc = new TextEncoder();

type Fd =
  | { kind: "file"; path: string }
  | { kind: "loop"; device: string; image: string }
  | { kind: "fsctx"; fsname: string; source?: string; created: boolean }
  | { kind: "mnt" }
  | { kind: "clone"; path: string };

export class KernelSys {
  /** Every call, in order (the Recorder's lines). */
  readonly calls: string[];
  /** Mounted targets, in the order they were mounted. */
  readonly mounted: string[];
  private readonly recorder: Recorder;
  private readonly fds = new Map<number, Fd>();
  private loops = 0;

  constructor(private readonly o: KernelSysOptions = {}) {
    this.recorder = new Recorder(o.fault);
    this.calls = this.recorder.calls;
    this.mounted = [...(o.mounted ?? [])];
  }

  /** Descriptors left open. */
  openFds(): number[] {
    return [...this.fds.keys()];
  }

  /** An fd on one of the files, opened by the test (not recorded). */
  openFile(path: string): number {
    if (this.o.files?.[path] === undefined) throw new Error(`kernel-sys: no file ${path}`);
    return this.newFd({ kind: "file", path });
  }

  /** Records one call of an extension (InitSys's, in init.test.ts) through the same recorder. */
  rec<T>(line: string, run: () => T, show?: (r: T) => string | undefined): T {
    return this.recorder.rec(line, run, show);
  }

  private newFd(fd: Fd): number {
    let n = 3;
    while (this.fds.has(n)) n++;
    this.fds.set(n, fd);
    return n;
  }

  private fd<K extends Fd["kind"]>(n: number, ...kinds: K[]): Extract<Fd, { kind: K }> {
    const f = this.fds.get(n);
    if (!f || !(kinds as string[]).includes(f.kind)) throw sysError("use fd", String(n), "EBADF");
    return f as Extract<Fd, { kind: K }>;
  }

  private newApi(call: string, what: string): void {
    if (this.o.newMountApi === false) throw sysError(call, what, "ENOSYS");
  }

  private attach(target: string): void {
    this.mounted.push(target);
  }

  private detach(target: string): void {
    const i = this.mounted.lastIndexOf(target);
    if (i < 0) throw sysError("unmount", target, "EINVAL");
    this.mounted.splice(i, 1);
  }

  private bytes(path: string): Uint8Array {
    const b = this.o.files?.[path];
    if (b === undefined) throw sysError("read", path, "ENOENT");
    return typeof b === "string" ? enc.encode(b) : b;
  }

  private statOf(path: string): Stat | undefined {
    if (this.o.files?.[path] !== undefined) return fakeStat("file", { size: this.bytes(path).length });
    if (this.o.symlinks?.[path] !== undefined) return fakeStat("symlink");
    if (this.o.dirs?.includes(path)) return fakeStat("dir");
    return undefined;
  }

  /** An EROFS source the kernel can mount: a loop device, or a file when EROFS is file-backed. */
  private erofsSource(source: string): void {
    const file = /^\/proc\/self\/fd\/(\d+)$/.exec(source);
    if (file) {
      if (this.o.fileBackedErofs === false) throw sysError("mount erofs from", source, "ENOTBLK");
      this.fd(Number(file[1]), "file");
      return;
    }
    for (const f of this.fds.values()) if (f.kind === "loop" && f.device === source) return;
    throw sysError("mount erofs from", source, "ENOTBLK");
  }

  /** What overlayfs says of one option, by the kernel's version. */
  private overlayOption(key: string): void {
    if (this.o.overlayAppend === false && /^(lowerdir|datadir)\+$/.test(key))
      throw sysError("configure overlay with", key, "EINVAL");
  }

  sys(): Sys {
    const notModelled = (name: string) => () => {
      throw new Error(`kernel-sys: ${name} is not modelled`);
    };
    return {
      // ---- reads (not recorded) ----
      readFile: (p) => this.bytes(p),
      readFileIfExists: (p) => (this.o.files?.[p] === undefined ? undefined : this.bytes(p)),
      lstat: (p) => {
        const st = this.statOf(p);
        if (!st) throw sysError("stat", p, "ENOENT");
        return st;
      },
      lstatIfExists: (p) => this.statOf(p),
      stat: (p) => {
        const st = this.statOf(p);
        if (!st) throw sysError("stat", p, "ENOENT");
        return st;
      },
      readlink: (p) => {
        const t = this.o.symlinks?.[p];
        if (t === undefined) throw sysError("read link", p, "EINVAL");
        return t;
      },
      readdir: notModelled("readdir"),
      lgetxattr: () => undefined,
      llistxattr: () => [],
      kernelRelease: () => this.o.release ?? "6.12.0-fake",

      // ---- files ----
      mkdir: (p, m) => this.rec(`mkdir(${p}, ${mode(m)})`, () => {}),
      rmdir: (p) => this.rec(`rmdir(${p})`, () => {}),
      unlink: (p) => this.rec(`unlink(${p})`, () => {}),
      symlink: (t, p) => this.rec(`symlink(${t}, ${p})`, () => {}),
      writeFile: (p, _d, m) => this.rec(`writeFile(${p}, ${mode(m)})`, () => {}),
      open: (p, flags) =>
        this.rec(
          `open(${p}, ${flags === 0 ? "O_RDONLY" : `O_RDONLY|${flagNames(flags, O)}`})`,
          () => {
            const st = this.statOf(p);
            if (!st) throw sysError("open", p, "ENOENT");
            if (flags & O_NOFOLLOW && st.kind === "symlink") throw sysError("open", p, "ELOOP");
            return this.newFd({ kind: "file", path: p });
          },
          String,
        ),
      fstat: (fd, p) =>
        this.rec(`fstat(${fd})`, () => {
          const f = this.fd(fd, "file");
          const st = this.statOf(f.path);
          if (!st) throw sysError("stat", p, "EBADF");
          return st;
        }),
      close: (fd) =>
        this.rec(`close(${fd})`, () => {
          this.fd(fd, "file", "loop", "fsctx", "mnt", "clone");
          this.fds.delete(fd);
        }),
      pread: (fd, length, offset) =>
        this.rec(`pread(${fd}, ${length}, ${offset})`, () =>
          this.bytes(this.fd(fd, "file").path).slice(offset, offset + length),
        ),

      // ---- fs-verity, loop ----
      measureVerity: notModelled("measureVerity"),
      enableVerity: notModelled("enableVerity"),
      loopAttach: (fd, name) =>
        this.rec(
          `loopAttach(${fd}, ${name})`,
          () => {
            const device = `/dev/loop${this.loops++}`;
            return { device, fd: this.newFd({ kind: "loop", device, image: this.fd(fd, "file").path }) };
          },
          (r) => `${r.device} fd ${r.fd}`,
        ),

      // ---- mounts ----
      mount: (source, target, fstype, flags, data) =>
        this.rec(
          `mount(${str(source)}, ${target}, ${str(fstype)}, ${flagNames(flags, MS)}, ${str(data)})`,
          () => {
            if (flags & MS_MOVE) {
              this.detach(source ?? "");
              this.attach(target);
            } else if (flags & (MS_PRIVATE | MS_SLAVE | MS_SHARED)) {
              if (!this.mounted.includes(target)) throw sysError("change propagation of", target, "EINVAL");
            } else if (flags & MS_REMOUNT) {
              if (!this.mounted.includes(target)) throw sysError("remount", target, "EINVAL");
            } else {
              if (fstype === "erofs") this.erofsSource(source ?? "");
              if (fstype === "overlay")
                for (const kv of (data ?? "").split(",")) this.overlayOption(kv.split("=")[0] ?? "");
              this.attach(target);
            }
          },
        ),
      umount2: (target, flags) =>
        this.rec(`umount2(${target}, ${flagNames(flags, [["MNT_DETACH", MNT_DETACH]])})`, () =>
          this.detach(target),
        ),
      fsopen: (fsname, flags) =>
        this.rec(
          `fsopen(${fsname}, ${flagNames(flags, [["FSOPEN_CLOEXEC", FSOPEN_CLOEXEC]])})`,
          () => {
            this.newApi("open file system", fsname);
            return this.newFd({ kind: "fsctx", fsname, created: false });
          },
          String,
        ),
      fsconfig: (fsfd, o) =>
        this.rec(`fsconfig(${fsfd}, ${describeFsConfigOp(o)})`, () => {
          const ctx = this.fd(fsfd, "fsctx");
          if (o.kind === "string" && o.key === "source") ctx.source = o.value;
          if (ctx.fsname === "overlay" && o.kind !== "create") {
            if (o.key.startsWith("sealroot-probe") && this.o.overlayChecksKeys !== false)
              throw sysError("configure overlay with", o.key, "EINVAL");
            this.overlayOption(o.key);
          }
          if (o.kind === "create") {
            if (ctx.fsname === "erofs") this.erofsSource(ctx.source ?? "");
            ctx.created = true;
          }
        }),
      fsmount: (fsfd, flags, attr) =>
        this.rec(
          `fsmount(${fsfd}, ${flagNames(flags, [["FSMOUNT_CLOEXEC", FSMOUNT_CLOEXEC]])}, ${flagNames(attr, [["MOUNT_ATTR_RDONLY", MOUNT_ATTR_RDONLY]])})`,
          () => {
            if (!this.fd(fsfd, "fsctx").created) throw sysError("mount", String(fsfd), "EINVAL");
            return this.newFd({ kind: "mnt" });
          },
          String,
        ),
      moveMount: (fromDfd, fromPath, toDfd, toPath, flags) =>
        this.rec(
          `moveMount(${fromDfd}, ${str(fromPath)}, ${dfd(toDfd)}, ${toPath}, ${flagNames(flags, [["MOVE_MOUNT_F_EMPTY_PATH", MOVE_MOUNT_F_EMPTY_PATH]])})`,
          () => {
            this.fd(fromDfd, "mnt", "clone");
            this.attach(toPath);
          },
        ),
      openTree: (at, p, flags) =>
        this.rec(
          `openTree(${dfd(at)}, ${p}, ${flagNames(flags, OPEN_TREE)})`,
          () => {
            this.newApi("clone mount tree of", p);
            if (!this.mounted.includes(p)) throw sysError("clone mount tree of", p, "EINVAL");
            return this.newFd({ kind: "clone", path: p });
          },
          String,
        ),
      mountSetattr: (at, p, flags, attr) =>
        this.rec(`mountSetattr(${dfd(at)}, ${p}, ${flags}, ${JSON.stringify(attr)})`, () => {}),
      pivotRoot: (n, old) => this.rec(`pivotRoot(${n}, ${old})`, () => {}),
      chroot: (p) => this.rec(`chroot(${p})`, () => {}),
      chdir: (p) => this.rec(`chdir(${p})`, () => {}),

      // ---- measured boot ----
      tpmDevices: [],
      tpmMeasure: notModelled("tpmMeasure"),
      appendMeasureLog: notModelled("appendMeasureLog"),
      measureLogStamp: notModelled("measureLogStamp"),
    };
  }
}
