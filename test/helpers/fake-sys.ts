// A recording fake `BootSys` for unit tests of the boot (src/boot/): the boot's intents (bind, make
// private, mount composefs, replace a mount) over a small model of one mount namespace whose mounts are
// backed by real directories (read through, e.g. the extracted golden sysroot), an in-memory tmpfs ("/"
// and /run) or the tree of a composefs (EROFS) image. Every side-effecting call is one line of the shared
// Recorder (recorder.ts), `name(args) = result` or `→ ERRNO`; plain reads (FsRead, stat) are not
// recorded. No mount flags here: which system calls each intent makes is src/sys/boot-sys.ts's, pinned
// by its own test over kernel-sys.ts. Never touches the real system beyond reading the directories given.

import { statSync } from "node:fs";
import { cappedRead, type FileKind, notRegularFile, type Stat } from "../../src/base/fs.ts";
import { fromHex, toHex } from "../../src/formats/bytes.ts";
import { type Inode, isDir, isReg, isSymlink } from "../../src/formats/composefs/tree.ts";
import { readErofs } from "../../src/formats/erofs/read.ts";
import { eventDigests, type PcrBank } from "../../src/formats/tpm2.ts";
import { sysError } from "../../src/sys/errno.ts";
import { realFs } from "../../src/sys/fs.ts";
import type { ComposefsMountOptions, ComposefsMountResult } from "../../src/sys/mount.ts";
import type { BootSys } from "../../src/sys/types.ts";
import { type FaultRule, Recorder } from "./recorder.ts";

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
  /** Fails calls by their recorded line (recorder.ts failNth, …) before they change anything. */
  fault?: FaultRule;
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

/** One line for a composefs mount: the image fd, where, its layers and modes. */
function composefsLine(o: Omit<ComposefsMountOptions, "force">): string {
  const parts = [`fd ${o.imageFd}`, o.target, `lower ${o.imageMountDir}`, `data ${o.objectDirs.join(":")}`];
  if (o.requireVerity) parts.push("verity=require");
  if (o.upperdir !== undefined) parts.push(`upper ${o.upperdir}`, `work ${o.workdir}`);
  if (o.readonly !== undefined) parts.push(o.readonly ? "ro" : "rw");
  return `mountComposefs(${parts.join(", ")})`;
}

export class FakeSys {
  /** Every side-effecting call, in order. */
  readonly calls: string[];
  /** The events extended into the fake TPM, and the records appended to measurement logs. */
  readonly measured: { pcr: number; event: string }[] = [];
  readonly measureLog: { path: string; record: string }[] = [];
  private readonly mountTable: Mount[];
  private readonly mem = new Map<string, MemNode>([["/", { kind: "dir", mode: 0o755 }]]);
  /** Open files: fd → virtual path. */
  private readonly fds = new Map<number, string>();
  private readonly recorder: Recorder;

  constructor(private readonly o: FakeSysOptions) {
    this.recorder = new Recorder(o.fault);
    this.calls = this.recorder.calls;
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

  private rec<T>(line: string, run: () => T, show?: (r: T) => string | undefined): T {
    return this.recorder.rec(line, run, show);
  }

  private newFd(path: string): number {
    let n = 3;
    while (this.fds.has(n)) n++;
    this.fds.set(n, path);
    return n;
  }

  private fd(n: number): string {
    const path = this.fds.get(n);
    if (path === undefined) throw sysError("use fd", String(n), "EBADF");
    return path;
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

  private detach(target: string): void {
    const i = this.mountTable.findLastIndex((m) => m.target === target);
    if (i < 0) throw sysError("unmount", target, "EINVAL");
    this.mountTable.splice(i, 1);
    // MNT_DETACH takes the mounts on top of it along
    for (let j = this.mountTable.length - 1; j >= i; j--) {
      const m = this.mountTable[j] as Mount;
      if (m.target !== target && under(m.target, target)) this.mountTable.splice(j, 1);
    }
  }

  /** The mount that makes `target` show the composefs image: its EROFS tree under an overlay. */
  private composefs(o: Omit<ComposefsMountOptions, "force">): ComposefsMountResult {
    this.need(o.imageMountDir, "attach EROFS on");
    this.need(o.target, "mount overlay onto");
    const image = this.fd(o.imageFd);
    this.mountTable.push({
      target: o.target,
      backing: { kind: "tree", root: readErofs(this.bytesOf(image)).root },
      sub: "",
      what: `overlay ${o.source ?? "composefs"}`,
      ro: o.readonly ?? o.upperdir === undefined,
    });
    // what a Linux 6.12 kernel takes: file-backed EROFS, lowerdir+/datadir+ by the new mount API
    return {
      erofs: { api: "new", source: "file", device: `/proc/self/fd/${o.imageFd}`, options: ["ro"] },
      overlay: { api: "new", layers: "append", options: [] },
      fallbacks: [],
    };
  }

  /** Detaches `staging`'s target and moves the staged mounts onto it, as one step. */
  private replace(staging: string, target: string): void {
    if (!this.isMountPoint(staging)) throw sysError("move mount", staging, "EINVAL");
    this.detach(target);
    for (const m of this.mountTable)
      if (under(m.target, staging)) m.target = moved(m.target, staging, target);
  }

  sys(): BootSys {
    const mode = (m: number) => `0o${m.toString(8).padStart(3, "0")}`;
    const read = (p: string, cap: number, what?: string) =>
      cappedRead(
        (x) => this.lstatOf(x),
        (x) => this.bytesOf(x),
        p,
        cap,
        what,
      );
    return {
      // ---- reads (not recorded) ----
      readFile: (p, cap, what) => {
        const b = read(p, cap, what);
        if (!b) throw sysError("read", p, "ENOENT");
        return b;
      },
      readFileIfExists: read,
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
      close: (fd) =>
        this.rec(`close(${fd})`, () => {
          this.fd(fd);
          this.fds.delete(fd);
        }),

      // ---- the image ----
      openImage: (p) =>
        this.rec(
          `openImage(${p})`,
          () => {
            const kind = this.lstatOf(p)?.kind;
            if (kind === undefined) throw sysError("open", p, "ENOENT");
            if (kind !== "file") throw notRegularFile("composefs image", p, kind);
            return this.newFd(p);
          },
          String,
        ),
      measureVerity: (fd, _p) =>
        this.rec(
          `measureVerity(${fd})`,
          () => {
            const hex = this.o.verity?.[this.fd(fd)];
            return hex === undefined ? undefined : { algorithm: "sha256", digest: fromHex(hex) };
          },
          (r) => (r ? `sha256:${toHex(r.digest)}` : "none"),
        ),
      mountComposefs: (o) => this.rec(composefsLine(o), () => this.composefs(o)),
      probeRead: (root, r) =>
        this.rec(`probeRead(${root}, ${r})`, () => {
          this.bytesOf(`${root}/${r}`);
        }),

      // ---- mounts ----
      makePrivate: (p) =>
        this.rec(`makePrivate(${p})`, () => {
          if (!this.isMountPoint(p)) throw sysError("change propagation of", p, "EINVAL");
        }),
      bind: (source, target) =>
        this.rec(`bind(${source}, ${target})`, () => {
          this.need(source, "bind");
          this.need(target, "bind onto");
          const src = this.mountOf(source);
          this.mountTable.push({
            target,
            backing: src.backing,
            sub: join(src.sub, rel(source, src.target)),
            what: `bind ${source}`,
            ro: false,
          });
        }),
      remountReadonly: (target) =>
        this.rec(`remountReadonly(${target})`, () => {
          const m = this.mountTable.findLast((x) => x.target === target);
          if (!m) throw sysError("remount", target, "EINVAL");
          m.ro = true;
        }),
      mountOverlay: (target, l) =>
        this.rec(`mountOverlay(${target}, ${l.lowerdir}, ${l.upperdir}, ${l.workdir})`, () => {
          this.need(target, "mount overlay onto");
          const lower = this.mountOf(l.lowerdir);
          this.mountTable.push({
            target,
            backing: lower.backing,
            sub: join(lower.sub, rel(l.lowerdir, lower.target)),
            what: `overlay ${l.lowerdir}`,
            ro: false,
          });
        }),
      unmount: (target) =>
        this.rec(
          `unmount(${target})`,
          () => {
            if (!this.isMountPoint(target)) return false;
            this.detach(target);
            return true;
          },
          (r) => (r ? undefined : "false"),
        ),
      replaceMount: (staging, target) =>
        this.rec(`replaceMount(${staging}, ${target})`, () => this.replace(staging, target)),

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
