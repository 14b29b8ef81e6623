// Builds a minimal busybox initramfs (newc cpio, zstd or gzip) from a declarative spec: an /init script,
// busybox-static with its applet links, host files and ELF binaries (with the shared libraries ldd names),
// kernel modules and the base directories and device nodes. The VM test tier and the boot matrix share it;
// it only writes under its output/cache paths and never needs root (device nodes are cpio records).
// Deterministic: entries sorted, mtime 0, uid/gid 0, so one spec gives one cache key and one image.
//
// CLI: node_modules/.bin/bun initrd/build.ts SPEC.json [OUT]   (prints the image path)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const CACHE = process.env.SEALROOT_CACHE ?? join(REPO, ".cache");
/** The sealroot binary every test, benchmark and image build uses: `npm run build`'s, or SEALROOT_BIN. */
export const SEALROOT_BIN = process.env.SEALROOT_BIN ?? join(REPO, "dist/sealroot");
const BUSYBOX = "/bin/busybox"; // Debian's busybox-static

export interface InitrdFile {
  /** Absolute path inside the initramfs. */
  dest: string;
  /** Host file to copy (followed if a symlink)… */
  src?: string;
  /** …or literal content. */
  content?: string | Uint8Array;
  /** Permission bits; default: the source's, or 0o644 for content. */
  mode?: number;
}

export interface InitrdSpec {
  /** The /init script (literal shell text, installed 0755). */
  init: string;
  /** Plain files (keys, configs, images). */
  files?: InitrdFile[];
  /** ELF executables: copied to dest, and every shared library ldd lists for them is copied too. */
  binaries?: { src: string; dest: string }[];
  /** Objects whose shared libraries are needed but which are not copied themselves (e.g. a native addon
   * that a Bun binary extracts to /tmp at run time and dlopens). */
  libsOf?: string[];
  /** Kernel modules: `dir/<name>.ko` for each name, installed as /lib/modules/<name>.ko; the load order is
   * written to /etc/modules-load (one name a line). */
  modules?: { dir: string; names: string[] };
  /** Extra empty directories. */
  dirs?: string[];
  symlinks?: { path: string; target: string }[];
  /** Default zstd (the Debian cloud kernel has CONFIG_RD_ZSTD=y). */
  compression?: "zstd" | "gzip" | "none";
  /** zstd level (default 3: fast to write, the kernel decompresses any level equally fast). */
  level?: number;
}

export interface InitrdImage {
  path: string;
  bytes: number;
  /** Uncompressed cpio size. */
  cpioBytes: number;
  entries: number;
  cached: boolean;
}

type Entry =
  | { kind: "dir"; mode: number }
  | { kind: "file"; mode: number; src?: string; data?: Uint8Array }
  | { kind: "symlink"; target: string }
  | { kind: "chr"; mode: number; major: number; minor: number };

const BASE_DIRS = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/dev", "/proc", "/sys", "/run", "/mnt", "/etc"];

/** Builds (or reuses from the cache) the initramfs for `spec`; `out` defaults to a cache path keyed by the
 * hash of the spec and every input's bytes. */
export function buildInitramfs(spec: InitrdSpec, out?: string): InitrdImage {
  const entries = collect(spec);
  const compression = spec.compression ?? "zstd";
  const key = cacheKey(entries, compression, spec.level ?? 3);
  const ext = compression === "zstd" ? ".cpio.zst" : compression === "gzip" ? ".cpio.gz" : ".cpio";
  const target = out ?? join(CACHE, "initrd", `${key}${ext}`);
  const stamp = `${target}.key`;
  if (existsSync(target) && existsSync(stamp) && readFileSync(stamp, "utf8") === key) {
    const now = new Date();
    utimesSync(target, now, now); // most recently used, for pruneCacheDir()
    const meta = JSON.parse(readFileSync(`${target}.json`, "utf8")) as { cpioBytes: number; entries: number };
    return { path: target, bytes: statSync(target).size, ...meta, cached: true };
  }
  mkdirSync(dirname(target), { recursive: true });
  const cpio = `${target}.tmp${process.pid}.cpio`;
  const cpioBytes = writeCpio(entries, cpio);
  const tmpOut = `${target}.tmp${process.pid}`;
  if (compression === "zstd") {
    execFileSync("zstd", ["-q", "-f", "-T0", `-${spec.level ?? 3}`, cpio, "-o", tmpOut]);
    rmSync(cpio);
  } else if (compression === "gzip") {
    execFileSync("sh", ["-c", 'gzip -6 -n -c "$1" > "$2"', "sh", cpio, tmpOut]);
    rmSync(cpio);
  } else {
    renameSync(cpio, tmpOut);
  }
  renameSync(tmpOut, target);
  const meta = { cpioBytes, entries: entries.size };
  writeFileSync(`${target}.json`, JSON.stringify(meta));
  writeFileSync(stamp, key);
  if (out === undefined) pruneCacheDir(dirname(target), CACHE_KEEP);
  return { path: target, bytes: statSync(target).size, ...meta, cached: false };
}

const CACHE_KEEP = 8;

/** Keeps the `keep` most recently used images (by mtime) in a cache directory and deletes the rest with their
 * `.key`/`.json` side files, so spec edits do not pile up 50 MB images. */
export function pruneCacheDir(dir: string, keep: number): void {
  const side = /\.(key|json)$/;
  const images = readdirSync(dir)
    .filter((n) => !side.test(n) && !n.includes(".tmp"))
    .map((n) => ({ n, t: statSync(join(dir, n)).mtimeMs }))
    .sort((x, y) => y.t - x.t);
  for (const { n } of images.slice(keep)) {
    for (const f of [n, `${n}.key`, `${n}.json`]) rmSync(join(dir, f), { force: true });
  }
}

/** The shared libraries (absolute host paths, including the dynamic loader) that ldd lists for `elf`;
 * empty for a static binary. */
export function sharedLibs(elf: string): string[] {
  let outText: string;
  try {
    outText = execFileSync("ldd", [elf], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    const text = `${err.stdout ?? ""}${err.stderr ?? ""}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new Error(
      `Cannot list the libraries of "${elf}": ldd said ${JSON.stringify(text.trim())}, expected an ELF`,
    );
  }
  const libs: string[] = [];
  for (const line of outText.split("\n")) {
    if (/statically linked/.test(line)) return [];
    const arrow = /=>\s+(\/\S+)/.exec(line);
    const loader = /^\s*(\/\S+)\s+\(/.exec(line);
    const missing = /=>\s+not found/.exec(line);
    if (missing)
      throw new Error(`Cannot resolve a library of "${elf}": ${line.trim()}, expected it on the host`);
    const path = arrow?.[1] ?? loader?.[1];
    if (path) libs.push(path);
  }
  return libs;
}

function collect(spec: InitrdSpec): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const addDir = (p: string): void => {
    for (let d = p; d !== "/" && d !== "."; d = posix.dirname(d)) {
      if (!entries.has(d)) entries.set(d, { kind: "dir", mode: 0o755 });
    }
  };
  const put = (p: string, e: Entry): void => {
    if (!p.startsWith("/"))
      throw new Error(`Cannot add "${p}" to the initramfs: relative path, expected absolute`);
    addDir(posix.dirname(p));
    entries.set(p, e);
  };
  const hostFile = (src: string, dest: string, mode?: number): void => {
    const st = statSync(src);
    if (!st.isFile())
      throw new Error(`Cannot add "${src}" to the initramfs: not a regular file, expected one`);
    put(dest, { kind: "file", mode: mode ?? st.mode & 0o7777, src });
  };
  const libsOf = (elf: string): void => {
    for (const lib of sharedLibs(elf)) {
      if (!entries.has(lib)) hostFile(lib, lib);
    }
  };

  for (const d of BASE_DIRS) addDir(d);
  put("/tmp", { kind: "dir", mode: 0o1777 });
  put("/dev/console", { kind: "chr", mode: 0o600, major: 5, minor: 1 });
  put("/dev/null", { kind: "chr", mode: 0o666, major: 1, minor: 3 });
  put("/dev/kmsg", { kind: "chr", mode: 0o644, major: 1, minor: 11 });

  if (!existsSync(BUSYBOX))
    throw new Error(`Cannot find "${BUSYBOX}": absent, expected Debian's busybox-static`);
  if (sharedLibs(BUSYBOX).length > 0)
    throw new Error(`Cannot use "${BUSYBOX}": dynamically linked, expected busybox-static`);
  hostFile(BUSYBOX, "/bin/busybox", 0o755);
  const applets = execFileSync(BUSYBOX, ["--list-full"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const a of applets) {
    const p = `/${a}`;
    if (p !== "/bin/busybox") put(p, { kind: "symlink", target: "/bin/busybox" });
  }

  put("/init", { kind: "file", mode: 0o755, data: new TextEncoder().encode(spec.init) });
  for (const d of spec.dirs ?? []) put(d, { kind: "dir", mode: 0o755 });
  for (const b of spec.binaries ?? []) {
    hostFile(b.src, b.dest, 0o755);
    libsOf(b.src);
  }
  for (const o of spec.libsOf ?? []) libsOf(o);
  if (spec.modules) {
    for (const n of spec.modules.names)
      hostFile(join(spec.modules.dir, `${n}.ko`), `/lib/modules/${n}.ko`, 0o644);
    const order = spec.modules.names.map((n) => `${n}\n`).join("");
    put("/etc/modules-load", { kind: "file", mode: 0o644, data: new TextEncoder().encode(order) });
  }
  for (const f of spec.files ?? []) {
    if (f.src !== undefined) hostFile(f.src, f.dest, f.mode);
    else {
      const data =
        typeof f.content === "string" ? new TextEncoder().encode(f.content) : (f.content ?? new Uint8Array());
      put(f.dest, { kind: "file", mode: f.mode ?? 0o644, data });
    }
  }
  for (const s of spec.symlinks ?? []) put(s.path, { kind: "symlink", target: s.target });
  return entries;
}

function cacheKey(entries: Map<string, Entry>, compression: string, level: number): string {
  const h = createHash("sha256");
  h.update(`v1 ${compression} ${level}\n`);
  for (const path of [...entries.keys()].sort()) {
    const e = entries.get(path) as Entry;
    h.update(`${path}\0${e.kind}\0`);
    if (e.kind === "symlink") h.update(e.target);
    else if (e.kind === "chr") h.update(`${e.mode} ${e.major} ${e.minor}`);
    else if (e.kind === "dir") h.update(`${e.mode}`);
    else {
      h.update(`${e.mode}\0`);
      // Host files are keyed by path, size and mtime (hashing a 100 MB Bun binary each run costs ~0.3 s).
      if (e.src !== undefined) {
        const st = statSync(e.src);
        h.update(`${resolve(e.src)} ${st.size} ${st.mtimeMs}`);
      } else h.update(e.data ?? new Uint8Array());
    }
    h.update("\n");
  }
  return h.digest("hex").slice(0, 32);
}

/** Writes a newc ("070701") archive; returns its size. */
function writeCpio(entries: Map<string, Entry>, out: string): number {
  const fd = openSync(out, "w");
  let offset = 0;
  const write = (b: Uint8Array): void => {
    writeSync(fd, b);
    offset += b.length;
  };
  const pad = (): void => {
    const n = (4 - (offset % 4)) % 4;
    if (n) write(new Uint8Array(n));
  };
  const header = (
    name: string,
    mode: number,
    size: number,
    ino: number,
    rmaj = 0,
    rmin = 0,
    nlink = 1,
  ): void => {
    const nameBytes = new TextEncoder().encode(`${name}\0`);
    const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, nameBytes.length, 0];
    write(new TextEncoder().encode(`070701${fields.map((v) => v.toString(16).padStart(8, "0")).join("")}`));
    write(nameBytes);
    pad();
  };
  try {
    let ino = 1;
    // Parents sort before children ("/a" < "/a/b"); the kernel needs each directory before its entries.
    for (const path of [...entries.keys()].sort()) {
      const e = entries.get(path) as Entry;
      const name = path.slice(1);
      ino += 1;
      if (e.kind === "dir") header(name, 0o040000 | e.mode, 0, ino, 0, 0, 2);
      else if (e.kind === "chr") header(name, 0o020000 | e.mode, 0, ino, e.major, e.minor);
      else if (e.kind === "symlink") {
        const t = new TextEncoder().encode(e.target);
        header(name, 0o120777, t.length, ino);
        write(t);
        pad();
      } else if (e.data !== undefined) {
        header(name, 0o100000 | e.mode, e.data.length, ino);
        write(e.data);
        pad();
      } else {
        const src = e.src as string;
        const size = statSync(src).size;
        header(name, 0o100000 | e.mode, size, ino);
        copyInto(src, size, write);
        pad();
      }
    }
    header("TRAILER!!!", 0, 0, 0, 0, 0, 1);
    return offset;
  } finally {
    closeSync(fd);
  }
}

function copyInto(src: string, size: number, write: (b: Uint8Array) => void): void {
  const fd = openSync(src, "r");
  try {
    const buf = new Uint8Array(1 << 20);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - done), done);
      if (n === 0) throw new Error(`Cannot copy "${src}": ended at ${done} bytes, expected ${size}`);
      write(buf.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [specPath, outPath] = process.argv.slice(2);
  if (!specPath) {
    process.stderr.write("usage: bun initrd/build.ts SPEC.json [OUT]\n");
    process.exit(2);
  }
  const spec = JSON.parse(readFileSync(specPath, "utf8")) as InitrdSpec & { initFile?: string };
  if (spec.initFile !== undefined)
    spec.init = readFileSync(resolve(dirname(specPath), spec.initFile), "utf8");
  const img = buildInitramfs(spec, outPath);
  process.stderr.write(
    `initrd: ${img.entries} entries, ${img.cpioBytes} B cpio, ${img.bytes} B${img.cached ? " (cached)" : ""}\n`,
  );
  process.stdout.write(`${img.path}\n`);
}
