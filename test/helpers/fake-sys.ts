// A recording fake `Sys` for unit tests of the boot orchestrator: a small model of one mount namespace
// whose mounts are backed by real directories (read through, e.g. the extracted golden sysroot), an
// in-memory tmpfs ("/" and /run) or the tree of a composefs (EROFS) image it was asked to mount. Every
// side-effecting call is recorded as one readable line `name(args) = result` (`→ ERRNO` when it failed);
// plain reads (FsRead, stat) are not. A fault can be injected at the first call whose line starts with a
// given text. Never touches the real system beyond reading the directories it is given.

import { statSync } from "node:fs";
import { SysError } from "../../src/base/errors.ts";
import { cappedRead, type FileKind, type Stat } from "../../src/base/fs.ts";
import { fromHex, toHex } from "../../src/formats/bytes.ts";
import { type Inode, isDir, isReg, isSymlink } from "../../src/formats/composefs/tree.ts";
import { readErofs } from "../../src/formats/erofs/read.ts";
import { eventDigests, type PcrBank } from "../../src/formats/tpm2.ts";
import { sysError } from "../../src/sys/errno.ts";
import {
  AT_FDCWD,
  MNT_DETACH,
  MS_BIND,
  MS_MOVE,
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
import { realFs } from "../../src/sys/fs.ts";
import type { FsConfigOp, Sys } from "../../src/sys/types.ts";

export interface FakeSysOptions {
  /** Mounts present from the start besides the in-memory "/": virtual path → real directory. */
  mounts: Record<string, string>;
  /** In-memory directories (besides "/") and files present from the start, e.g. /run, the key file. */
  dirs?: string[];
  files?: Record<string, string | Uint8Array>;
  /** Virtual paths that do not exist even though a real directory holds them. */
  hidden?: string[];
  /** st_dev / st_ino that stat() reports per virtual path (others: dev 0, ino 0). */
  inodes?: Record<string, { dev: number; ino: number }>;
  /** The fs-verity digest (hex) of files by virtual path; others have none (measureVerity: undefined). */
  verity?: Record<string, string>;
  /** A kernel before Linux 6.12: EROFS refuses a regular file as its source (ENOTBLK). */
  noFileBackedErofs?: boolean;
  /** Fail the `nth` (default first) call whose recorded line starts with `call`, with `errno`, before it
   * changes anything (so an injected `close` keeps its fd). */
  fault?: { call: string; errno: string; nth?: number };
  /** A TPM (its device name and active banks of every PCR); none: tpmMeasure finds no TPM. */
  tpm?: { device: string; banks: PcrBank[] };
}

type Backing = { kind: "real"; dir: string } | { kind: "mem" } | { kind: "tree"; root: Inode };

interface Mount {
  target: string;
  backing: Backing;
  /** Path inside the backing (a bind of a subdirectory). */
  sub: string;
  /** What mountinfo would say: fstype and source, or `bind <source>`. */
  what: string;
  ro: boolean;
}

type MemNode =
  | { kind: "dir"; mode: number }
  | { kind: "file"; mode: number; data: Uint8Array }
  | { kind: "symlink"; target: string };

type Fd =
  | { kind: "file"; path: string }
  | { kind: "loop"; device: string; image: string }
  | { kind: "fsctx"; fsname: string; ops: string[]; source?: string; lower?: string }
  | { kind: "mnt"; mount: Omit<Mount, "target"> }
  | { kind: "clone"; mounts: Mount[]; path: string };

/** `a|b` names of the bits of `n` in `table` (unknown bits in hex), "0" for none. */
function flagNames(n: number, table: [string, number][]): string {
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

const MS: [string, number][] = [
  ["MS_RDONLY", MS_RDONLY],
  ["MS_REMOUNT", MS_REMOUNT],
  ["MS_BIND", MS_BIND],
  ["MS_MOVE", MS_MOVE],
  ["MS_REC", MS_REC],
  ["MS_SILENT", MS_SILENT],
  ["MS_PRIVATE", MS_PRIVATE],
  ["MS_SLAVE", MS_SLAVE],
  ["MS_SHARED", MS_SHARED],
];
const O: [string, number][] = [
  ["O_CLOEXEC", O_CLOEXEC],
  ["O_NOFOLLOW", O_NOFOLLOW],
  ["O_NONBLOCK", O_NONBLOCK],
];
const OPEN_TREE: [string, number][] = [
  ["OPEN_TREE_CLONE", OPEN_TREE_CLONE],
  ["OPEN_TREE_CLOEXEC", OPEN_TREE_CLOEXEC],
  ["AT_RECURSIVE", AT_RECURSIVE],
];

function op(o: FsConfigOp): string {
  switch (o.kind) {
    case "flag":
      return o.key;
    case "string":
      return `${o.key}=${o.value}`;
    case "fd":
      return `${o.key}=fd ${o.fd}`;
    case "create":
      return "create";
  }
}

const under = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(`${dir}/`);
const rel = (path: string, dir: string) => (dir === "/" ? path.slice(1) : path.slice(dir.length + 1));
const join = (a: string, b: string) => (b === "" ? a : a === "" ? b : `${a}/${b}`);
const parent = (p: string) => p.slice(0, Math.max(p.lastIndexOf("/"), 1));
/** `path` (at or under `from`) as seen after `from` moved to `to`. */
const moved = (path: string, from: string, to: string) =>
  path === from ? to : `${to}${path.slice(from.length)}`;
const enc = new TextEncoder();
const dec = new TextDecoder();

const S_IF: Record<string, number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000 };

export class FakeSys {
  /** Every side-effecting call, in order. */
  readonly calls: string[] = [];
  /** The events extended into the fake TPM, and the records appended to measurement logs. */
  readonly measured: { pcr: number; event: string }[] = [];
  readonly measureLog: { path: string; record: string }[] = [];
  private readonly mountTable: Mount[];
  private readonly mem = new Map<string, MemNode>([["/", { kind: "dir", mode: 0o755 }]]);
  private readonly fds = new Map<number, Fd>();
  private loops = 0;
  private matches = 0;

  constructor(private readonly o: FakeSysOptions) {
    this.mountTable = [{ target: "/", backing: { kind: "mem" }, sub: "", what: "tmpfs", ro: false }];
    for (const [target, dir] of Object.entries(o.mounts)) {
      this.mem.set(target, { kind: "dir", mode: 0o755 }); // the mount point, in the file system below
      this.mountTable.push({
        target,
        backing: { kind: "real", dir },
        sub: "",
        what: `bind ${dir}`,
        ro: false,
      });
    }
    for (const d of o.dirs ?? []) this.mem.set(d, { kind: "dir", mode: 0o755 });
    for (const [p, data] of Object.entries(o.files ?? {})) {
      this.mem.set(p, {
        kind: "file",
        mode: 0o644,
        data: typeof data === "string" ? enc.encode(data) : data,
      });
    }
  }

  /** The mount table, oldest first: `target: what[ ro]`. */
  mounts(): string[] {
    return this.mountTable.map((m) => `${m.target}: ${m.what}${m.ro ? " ro" : ""}`);
  }

  /** Descriptors left open. */
  openFds(): number[] {
    return [...this.fds.keys()];
  }

  /** In-memory entries (what the run left in / and /run): `path kind mode`. */
  memTree(): string[] {
    return [...this.mem]
      .map(([p, n]) =>
        n.kind === "symlink"
          ? `${p} -> ${n.target}`
          : `${p} ${n.kind} 0o${n.mode.toString(8).padStart(3, "0")}`,
      )
      .sort();
  }

  memFile(path: string): Uint8Array | undefined {
    const n = this.mem.get(path);
    return n?.kind === "file" ? n.data : undefined;
  }

  // ---- the model ----

  private rec<T>(line: string, run: () => T, result: (r: T) => string | undefined = () => undefined): T {
    const f = this.o.fault;
    if (f && line.startsWith(f.call) && ++this.matches === (f.nth ?? 1)) {
      this.calls.push(`${line} → ${f.errno}`);
      throw new SysError(f.errno, `Cannot ${line}: ${f.errno} (injected fault)`);
    }
    let r: T;
    try {
      r = run();
    } catch (e) {
      this.calls.push(`${line} → ${e instanceof SysError ? e.errno : String(e)}`);
      throw e;
    }
    const shown = result(r);
    this.calls.push(shown === undefined ? line : `${line} = ${shown}`);
    return r;
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

  /** The mount a path is in: the latest mount on the longest covering target. */
  private mountOf(path: string): Mount {
    let best: Mount | undefined;
    for (const m of this.mountTable) {
      if (under(path, m.target) && (!best || m.target.length >= best.target.length)) best = m;
    }
    return best as Mount;
  }

  private isMountPoint(path: string): boolean {
    return this.mountTable.some((m) => m.target === path);
  }

  /** What is at `path`: a node of the in-memory tree, a real path, or an image inode. */
  private lookup(
    path: string,
  ): { mem: MemNode; path: string } | { real: string } | { inode: Inode } | undefined {
    if (this.o.hidden?.includes(path)) return undefined;
    const m = this.mountOf(path);
    const inside = join(m.sub, rel(path, m.target));
    switch (m.backing.kind) {
      case "mem": {
        const p = `/${inside}`;
        const n = this.mem.get(p);
        return n ? { mem: n, path: p } : undefined;
      }
      case "real": {
        const real = join(m.backing.dir, inside);
        return realFs.lstatIfExists(real) ? { real } : undefined;
      }
      case "tree": {
        let node: Inode | undefined = m.backing.root;
        for (const name of inside.split("/").filter(Boolean)) {
          const b = enc.encode(name);
          node = node?.children.find(
            (c) => c.name.length === b.length && c.name.every((x, i) => x === b[i]),
          )?.inode;
        }
        return node ? { inode: node } : undefined;
      }
    }
  }

  private need(path: string, action: string) {
    const at = this.lookup(path);
    if (!at) throw sysError(action, path, "ENOENT");
    return at;
  }

  private memDir(path: string, action: string): void {
    const at = this.lookup(path);
    if (at && !("mem" in at)) throw sysError(action, path, "EROFS", { detail: "fake: not in memory" });
  }

  private lstatOf(path: string): Stat | undefined {
    const at = this.lookup(path);
    if (!at) return undefined;
    const ids = this.o.inodes?.[path] ?? { dev: 0, ino: 0 };
    const st = (kind: FileKind, mode: number, size: number): Stat => ({
      kind,
      mode,
      uid: 0,
      gid: 0,
      size,
      rdev: 0,
      mtimeSec: 0,
      mtimeNsec: 0,
      nlink: 1,
      ...ids,
    });
    if ("real" in at) return { ...realFs.lstat(at.real), ...ids };
    if ("inode" in at) {
      const i = at.inode;
      const kind: FileKind = isDir(i) ? "dir" : isReg(i) ? "file" : isSymlink(i) ? "symlink" : "chr";
      return st(kind, i.mode, i.size);
    }
    const n = at.mem;
    const size = n.kind === "file" ? n.data.length : n.kind === "symlink" ? n.target.length : 0;
    return st(n.kind, S_IF[n.kind]! | (n.kind === "symlink" ? 0o777 : n.mode), size);
  }

  private bytesOf(path: string): Uint8Array {
    const at = this.need(path, "read");
    if ("real" in at) return realFs.readFile(at.real, Number.MAX_SAFE_INTEGER);
    if ("mem" in at && at.mem.kind === "file") return at.mem.data;
    if ("inode" in at && isReg(at.inode)) return at.inode.content ?? new Uint8Array(at.inode.size);
    throw sysError("read", path, "EISDIR");
  }

  /** The image file behind an EROFS source: `/proc/self/fd/N` or a loop device the fake attached. */
  private erofsImage(source: string): string {
    const m = /^\/proc\/self\/fd\/(\d+)$/.exec(source);
    if (m && this.o.noFileBackedErofs) throw sysError("mount erofs from", source, "ENOTBLK");
    if (m) return this.fd(Number(m[1]), "file").path;
    for (const f of this.fds.values()) if (f.kind === "loop" && f.device === source) return f.image;
    throw sysError("mount erofs from", source, "ENOTBLK");
  }

  /** An overlay shows the image mounted as its first lower layer (`lowerdir+=X` or `lowerdir=X::…`). */
  private overlayOf(lower: string | undefined): Backing {
    const first = lower?.split("::")[0];
    const m = first === undefined ? undefined : this.mountTable.findLast((x) => x.target === first);
    if (m?.backing.kind !== "tree") throw sysError("mount overlay on lower layer", first ?? "", "EINVAL");
    return m.backing;
  }

  private newMount(fstype: string, source: string, data: string | null): Omit<Mount, "target"> {
    if (fstype === "erofs") {
      const image = this.erofsImage(source);
      return {
        backing: { kind: "tree", root: readErofs(this.bytesOf(image)).root },
        sub: "",
        what: `erofs ${source}`,
        ro: true,
      };
    }
    if (fstype === "overlay") {
      const lower = /(?:^|,)lowerdir\+?=([^,]*)/.exec(data ?? "")?.[1];
      return { backing: this.overlayOf(lower), sub: "", what: `overlay ${source}`, ro: false };
    }
    throw sysError(`mount ${fstype} on`, source, "ENODEV");
  }

  private unmount(target: string): void {
    const i = this.mountTable.findLastIndex((m) => m.target === target);
    if (i < 0) throw sysError("unmount", target, "EINVAL");
    this.mountTable.splice(i, 1);
    // MNT_DETACH takes the mounts on top of it along
    for (let j = this.mountTable.length - 1; j >= i; j--) {
      const m = this.mountTable[j] as Mount;
      if (m.target !== target && under(m.target, target)) this.mountTable.splice(j, 1);
    }
  }

  sys(): Sys {
    const mode = (m: number) => `0o${m.toString(8).padStart(3, "0")}`;
    const str = (x: string | null) => (x === null ? "null" : x === "" ? '""' : x);
    return {
      // ---- reads (not recorded) ----
      readFile: (p, cap, what) => {
        const b = cappedRead(
          (x) => this.lstatOf(x),
          (x) => this.bytesOf(x),
          p,
          cap,
          what,
        );
        if (!b) throw sysError("read", p, "ENOENT");
        return b;
      },
      readFileIfExists: (p, cap, what) =>
        cappedRead(
          (x) => this.lstatOf(x),
          (x) => this.bytesOf(x),
          p,
          cap,
          what,
        ),
      lstat: (p) => {
        const st = this.lstatOf(p);
        if (!st) throw sysError("stat", p, "ENOENT");
        return st;
      },
      lstatIfExists: (p) => this.lstatOf(p),
      stat: (p) => {
        const at = this.need(p, "stat");
        const ids = this.o.inodes?.[p] ?? { dev: 0, ino: 0 };
        if ("real" in at) {
          const r = statSync(at.real);
          return { ...realFs.lstat(at.real), kind: r.isDirectory() ? "dir" : "file", mode: r.mode, ...ids };
        }
        return this.lstatOf(p) as Stat;
      },
      readlink: (p) => {
        const at = this.need(p, "read link");
        if ("real" in at) return realFs.readlink(at.real);
        if ("mem" in at && at.mem.kind === "symlink") return at.mem.target;
        if ("inode" in at && isSymlink(at.inode)) return dec.decode(at.inode.payload);
        throw sysError("read link", p, "EINVAL");
      },
      readdir: (p) => {
        const at = this.need(p, "list directory");
        if ("real" in at) return realFs.readdir(at.real).filter((n) => !this.o.hidden?.includes(`${p}/${n}`));
        if ("inode" in at) return at.inode.children.map((c) => dec.decode(c.name));
        const prefix = at.path === "/" ? "/" : `${at.path}/`;
        return [...this.mem.keys()]
          .filter((k) => k.startsWith(prefix) && k !== "/" && !k.slice(prefix.length).includes("/"))
          .map((k) => k.slice(prefix.length));
      },
      lgetxattr: (p, name) => {
        const at = this.need(p, "read xattr of");
        return "real" in at ? realFs.lgetxattr(at.real, name) : undefined;
      },
      llistxattr: (p) => {
        const at = this.need(p, "list xattrs of");
        return "real" in at ? realFs.llistxattr(at.real) : [];
      },
      kernelRelease: () => "6.12.0-fake",

      // ---- files ----
      mkdir: (p, m) =>
        this.rec(`mkdir(${p}, ${mode(m)})`, () => {
          if (this.lookup(p)) throw sysError("create directory", p, "EEXIST");
          if (!this.lookup(parent(p))) throw sysError("create directory", p, "ENOENT");
          this.memDir(parent(p), "create directory in");
          this.mem.set(p, { kind: "dir", mode: m });
        }),
      rmdir: (p) =>
        this.rec(`rmdir(${p})`, () => {
          const at = this.need(p, "remove directory");
          if (this.isMountPoint(p)) throw sysError("remove directory", p, "EBUSY");
          if (!("mem" in at) || at.mem.kind !== "dir") throw sysError("remove directory", p, "ENOTDIR");
          if ([...this.mem.keys()].some((k) => k.startsWith(`${p}/`)))
            throw sysError("remove directory", p, "ENOTEMPTY");
          this.mem.delete(p);
        }),
      unlink: (p) =>
        this.rec(`unlink(${p})`, () => {
          const at = this.need(p, "remove");
          if (!("mem" in at) || at.mem.kind === "dir") throw sysError("remove", p, "EISDIR");
          this.mem.delete(p);
        }),
      symlink: (target, p) =>
        this.rec(`symlink(${target}, ${p})`, () => {
          if (this.lookup(p)) throw sysError("create symlink", p, "EEXIST");
          this.memDir(parent(p), "create symlink in");
          if (!this.lookup(parent(p))) throw sysError("create symlink", p, "ENOENT");
          this.mem.set(p, { kind: "symlink", target });
        }),
      writeFile: (p, data, m) =>
        this.rec(`writeFile(${p}, ${mode(m)})`, () => {
          if (!this.lookup(parent(p))) throw sysError("write", p, "ENOENT");
          this.memDir(parent(p), "write in");
          this.mem.set(p, {
            kind: "file",
            mode: m,
            data: typeof data === "string" ? enc.encode(data) : data,
          });
        }),
      open: (p, flags) =>
        this.rec(
          `open(${p}, ${flags === 0 ? "O_RDONLY" : `O_RDONLY|${flagNames(flags, O)}`})`,
          () => {
            this.need(p, "open");
            if (flags & O_NOFOLLOW && this.lstatOf(p)?.kind === "symlink") throw sysError("open", p, "ELOOP");
            return this.newFd({ kind: "file", path: p });
          },
          String,
        ),
      fstat: (fd, p) =>
        this.rec(`fstat(${fd})`, () => {
          const f = this.fd(fd, "file");
          const st = this.lstatOf(f.path);
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
          this.bytesOf(this.fd(fd, "file").path).slice(offset, offset + length),
        ),

      // ---- fs-verity, loop ----
      measureVerity: (fd, _p) =>
        this.rec(
          `measureVerity(${fd})`,
          () => {
            const hex = this.o.verity?.[this.fd(fd, "file").path];
            return hex === undefined ? undefined : { algorithm: "sha256", digest: fromHex(hex) };
          },
          (r) => (r ? `sha256:${toHex(r.digest)}` : "none"),
        ),
      enableVerity: (p) =>
        this.rec(`enableVerity(${p})`, () => {
          throw sysError("enable fs-verity on", p, "EOPNOTSUPP");
        }),
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
              if (!source || !this.isMountPoint(source)) throw sysError("move mount", source ?? "", "EINVAL");
              for (const m of this.mountTable)
                if (under(m.target, source)) m.target = moved(m.target, source, target);
              return;
            }
            if (flags & MS_REMOUNT) {
              const m = this.mountTable.findLast((x) => x.target === target);
              if (!m) throw sysError("remount", target, "EINVAL");
              m.ro = (flags & MS_RDONLY) !== 0;
              return;
            }
            if (flags & MS_BIND) {
              const from = source ?? "";
              this.need(from, "bind");
              this.need(target, "bind onto");
              const src = this.mountOf(from);
              this.mountTable.push({
                target,
                backing: src.backing,
                sub: join(src.sub, rel(from, src.target)),
                what: `bind ${source}`,
                ro: false,
              });
              return;
            }
            if (fstype === null) {
              if (!this.isMountPoint(target)) throw sysError("change propagation of", target, "EINVAL");
              return; // propagation only
            }
            this.need(target, "mount onto");
            this.mountTable.push({
              target,
              ...this.newMount(fstype, source ?? "", data),
              ro: (flags & MS_RDONLY) !== 0,
            });
          },
        ),
      umount2: (target, flags) =>
        this.rec(`umount2(${target}, ${flagNames(flags, [["MNT_DETACH", MNT_DETACH]])})`, () =>
          this.unmount(target),
        ),
      fsopen: (fsname, flags) =>
        this.rec(
          `fsopen(${fsname}, ${flagNames(flags, [["FSOPEN_CLOEXEC", FSOPEN_CLOEXEC]])})`,
          () => this.newFd({ kind: "fsctx", fsname, ops: [] }),
          String,
        ),
      fsconfig: (fsfd, o) =>
        this.rec(`fsconfig(${fsfd}, ${op(o)})`, () => {
          const ctx = this.fd(fsfd, "fsctx");
          // overlayfs validates fsconfig keys since Linux 6.5
          if (o.kind === "string" && o.key.startsWith("sealroot-probe"))
            throw sysError("configure overlay for", o.key, "EINVAL");
          if (o.kind === "string" && o.key === "source") ctx.source = o.value;
          if (o.kind === "create" && ctx.fsname === "erofs") this.erofsImage(ctx.source ?? "");
          if (o.kind === "string" && /^lowerdir\+?$/.test(o.key)) ctx.lower ??= o.value;
          ctx.ops.push(op(o));
        }),
      fsmount: (fsfd, flags, attr) =>
        this.rec(
          `fsmount(${fsfd}, ${flagNames(flags, [["FSMOUNT_CLOEXEC", FSMOUNT_CLOEXEC]])}, ${flagNames(attr, [["MOUNT_ATTR_RDONLY", MOUNT_ATTR_RDONLY]])})`,
          () => {
            const ctx = this.fd(fsfd, "fsctx");
            if (!ctx.ops.includes("create")) throw sysError("mount", ctx.fsname, "EINVAL");
            const m = this.newMount(ctx.fsname, ctx.source ?? "", ctx.lower ? `lowerdir=${ctx.lower}` : null);
            return this.newFd({ kind: "mnt", mount: { ...m, ro: (attr & MOUNT_ATTR_RDONLY) !== 0 } });
          },
          String,
        ),
      moveMount: (fromDfd, fromPath, toDfd, toPath, flags) =>
        this.rec(
          `moveMount(${fromDfd}, ${str(fromPath)}, ${toDfd === AT_FDCWD ? "AT_FDCWD" : toDfd}, ${toPath}, ${flagNames(flags, [["MOVE_MOUNT_F_EMPTY_PATH", MOVE_MOUNT_F_EMPTY_PATH]])})`,
          () => {
            const f = this.fd(fromDfd, "mnt", "clone");
            this.need(toPath, "attach mount on");
            if (f.kind === "mnt") this.mountTable.push({ target: toPath, ...f.mount });
            else
              for (const m of f.mounts)
                this.mountTable.push({ ...m, target: moved(m.target, f.path, toPath) });
          },
        ),
      openTree: (dfd, p, flags) =>
        this.rec(
          `openTree(${dfd === AT_FDCWD ? "AT_FDCWD" : dfd}, ${p}, ${flagNames(flags, OPEN_TREE)})`,
          () => {
            if (!this.isMountPoint(p)) throw sysError("clone mount tree of", p, "EINVAL");
            const mounts = this.mountTable.filter((m) => under(m.target, p)).map((m) => ({ ...m }));
            return this.newFd({ kind: "clone", mounts, path: p });
          },
          String,
        ),
      mountSetattr: (dfd, p, flags, attr) =>
        this.rec(`mountSetattr(${dfd}, ${p}, ${flags}, ${JSON.stringify(attr)})`, () => {}),
      pivotRoot: (n, old) => this.rec(`pivotRoot(${n}, ${old})`, () => {}),
      chroot: (p) => this.rec(`chroot(${p})`, () => {}),
      chdir: (p) => this.rec(`chdir(${p})`, () => {}),

      // ---- measured boot ----
      tpmDevices: ["/dev/tpmrm0", "/dev/tpm0"],
      tpmMeasure: (pcr, event) =>
        this.rec(
          `tpmMeasure(${pcr})`,
          () => {
            const tpm = this.o.tpm;
            if (!tpm) return undefined;
            this.measured.push({ pcr, event });
            return { device: tpm.device, digests: eventDigests(event, tpm.banks), unsupported: [] };
          },
          (r) => (r ? `${r.device} ${r.digests.map((d) => d.bank).join(",")}` : "none"),
        ),
      appendMeasureLog: (path, record) =>
        this.rec(`appendMeasureLog(${path})`, () => {
          this.measureLog.push({ path, record });
        }),
      measureLogStamp: () => ({ bootId: "0123456789abcdef0123456789abcdef", timestampUsec: 1_000_000 }),
    };
  }
}
