// Builds a dracut initramfs with the repo's `dracut-module/` (module "sealroot") for the Debian 13 cloud kernel
// the VM runner fetched, using the host's real dracut (Debian 12: dracut-core 059). Two kinds: `systemd`
// (systemd-initrd, the unit) and `nosystemd` (dracut's shell /init, the pre-pivot hook). The host's dracut
// tree is never written: a private dracutbasedir of symlinks adds the module, and the kernel's modules come
// from its .deb with a depmod run on a private copy. Outputs are cached under .cache/dracut/ keyed by inputs.
//
// CLI: node_modules/.bin/bun qemu/build-dracut-initramfs.ts --kind systemd|nosystemd --key PUB
//        [--config CONF] [--bin BIN] [--gzip] [OUT]            (prints the image path)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CACHE, pruneCacheDir, REPO, SEALROOT_BIN } from "../initrd/build.ts";

export type DracutKind = "systemd" | "nosystemd";

/** A dracut module given as files (e.g. a test-only hook module), installed as modules.d/<priority><name>. */
export interface DracutModuleSource {
  name: string;
  /** Two digits; dracut orders hook installation by it. */
  priority: string;
  files: Record<string, { content: string; mode?: number }>;
}

export interface DracutInitramfsOptions {
  kind: DracutKind;
  /** The runner's kernel directory (`qemu/fetch-kernel.sh` output, with kernel.json). */
  kernelDir: string;
  /** The compiled sealroot (default dist/sealroot). */
  bin?: string;
  /** Public key files; the first becomes /etc/ostree/initramfs-root-binding.key. */
  keys?: string[];
  /** prepare-root.conf file for the image; absent: none. */
  config?: string;
  /** More dracut modules to include (test probes). */
  extraModules?: DracutModuleSource[];
  /** Default zstd (level 3: the kernel unpacks any level equally fast; dracut's own -15 takes ~40 s). */
  compression?: "zstd" | "gzip";
  level?: number;
  /** Write here instead of the cache. */
  out?: string;
}

export interface DracutImage {
  path: string;
  kind: DracutKind;
  kernelRelease: string;
  bytes: number;
  cached: boolean;
  /** Wall time of the dracut run (0 when cached). */
  buildMs: number;
  /** dracut modules in the image (its usr/lib/dracut/modules.txt). */
  dracutModules: string[];
  /** The dracut command line (for logs). */
  argv: string[];
}

export const DRACUT = process.env.SEALROOT_DRACUT ?? "/usr/bin/dracut";
export const DRACUT_HOST_BASEDIR = "/usr/lib/dracut";
export const MODULE_DIR = join(REPO, "dracut-module");
const DRACUT_CACHE = join(CACHE, "dracut");
const IMAGES_KEEP = 16;

/** dracut modules of each kind: the smallest set that finds root=LABEL=/UUID= through udev and runs sealroot. */
export const KIND_MODULES: Record<DracutKind, { modules: string[]; omit: string[] }> = {
  systemd: {
    modules: ["systemd", "systemd-initrd", "dracut-systemd", "base", "rootfs-block", "udev-rules", "fs-lib"],
    omit: [],
  },
  nosystemd: {
    modules: ["base", "rootfs-block", "udev-rules", "fs-lib"],
    omit: ["systemd", "systemd-initrd", "dracut-systemd"],
  },
};
/** Block driver for the runner's virtio-blk disks (virtio_pci, ext4 and fs-verity are built in). */
const DRIVERS = ["virtio_blk"];

/** True when dracut (Debian's dracut-core) and depmod are installed; the reason otherwise. */
export function dracutAvailable(): true | string {
  if (!existsSync(DRACUT)) return `${DRACUT} absent; apt-get install --no-install-recommends dracut-core`;
  if (!existsSync(join(DRACUT_HOST_BASEDIR, "modules.d/99base")))
    return `${DRACUT_HOST_BASEDIR}/modules.d/99base absent; apt-get install dracut-core`;
  for (const tool of ["depmod", "dpkg-deb"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      return `${tool} not on PATH; apt-get install kmod dpkg`;
    }
  }
  return true;
}

/** The host dracut's version (dracut-version.sh), part of every cache key. */
export function dracutVersion(): string {
  const text = readFileSync(join(DRACUT_HOST_BASEDIR, "dracut-version.sh"), "utf8");
  const m = /^DRACUT_VERSION=(\S+)$/m.exec(text);
  if (!m?.[1])
    throw new Error(
      `Cannot read the dracut version "${DRACUT_HOST_BASEDIR}/dracut-version.sh": no DRACUT_VERSION=, expected dracut-core`,
    );
  return m[1];
}

interface KernelMeta {
  package: string;
  version: string;
  kernelRelease: string;
  debSha256: string;
}

function kernelMeta(kernelDir: string): KernelMeta {
  return JSON.parse(readFileSync(join(kernelDir, "kernel.json"), "utf8")) as KernelMeta;
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/**
 * The kernel's full module tree with depmod's indexes, for `dracut --kmoddir`: the .deb fetch-kernel.sh
 * kept (it ships no modules.dep; depmod writes it at install time) unpacked under
 * .cache/dracut/kmod/<release>/lib/modules/<release> and indexed with `depmod -b` against its System.map.
 * Returns the kmoddir.
 */
export function kernelModuleTree(kernelDir: string): string {
  const meta = kernelMeta(kernelDir);
  const kver = meta.kernelRelease;
  const root = join(DRACUT_CACHE, "kmod", kver);
  const kmoddir = join(root, "lib/modules", kver);
  const stamp = join(root, ".complete");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === meta.debSha256) return kmoddir;

  const debs = join(CACHE, "apt-trixie/debs");
  const deb = (existsSync(debs) ? readdirSync(debs) : [])
    .filter((n) => n.startsWith(`${meta.package}_`) && n.endsWith(".deb"))
    .map((n) => join(debs, n))
    .find((p) => sha256File(p) === meta.debSha256);
  if (deb === undefined)
    throw new Error(
      `Cannot find the kernel package "${debs}/${meta.package}_*.deb": absent or its sha256 is not ${meta.debSha256}, ` +
        "expected the .deb qemu/fetch-kernel.sh downloaded (rerun it with --update)",
    );
  const tmp = `${root}.tmp${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "x"), { recursive: true });
  execFileSync("dpkg-deb", ["-x", deb, join(tmp, "x")]);
  const src = [join(tmp, "x/usr/lib/modules", kver), join(tmp, "x/lib/modules", kver)].find((d) =>
    existsSync(d),
  );
  if (src === undefined)
    throw new Error(
      `Cannot find the modules of "${deb}": no lib/modules/${kver}, expected a kernel image package`,
    );
  mkdirSync(join(tmp, "lib/modules"), { recursive: true });
  renameSync(src, join(tmp, "lib/modules", kver));
  const sysmap = join(tmp, "x/boot", `System.map-${kver}`);
  execFileSync("depmod", ["-b", tmp, ...(existsSync(sysmap) ? ["-F", sysmap] : []), kver], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  rmSync(join(tmp, "x"), { recursive: true });
  writeFileSync(join(tmp, ".complete"), meta.debSha256);
  publishDir(tmp, root, meta.debSha256);
  return kmoddir;
}

/**
 * Moves a finished `tmp` directory to `dir`. Test files run in parallel workers and may build the same
 * directory at once: when another already published a complete copy (its `.complete` holds `stamp`), that
 * copy is kept and `tmp` is dropped, so a directory in use is never replaced.
 */
function publishDir(tmp: string, dir: string, stamp: string): void {
  const complete = (): boolean =>
    existsSync(join(dir, ".complete")) && readFileSync(join(dir, ".complete"), "utf8") === stamp;
  if (!complete()) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dirname(dir), { recursive: true });
    try {
      renameSync(tmp, dir);
      return;
    } catch (e) {
      if (!complete()) throw e; // not the race: a real failure
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}

/** Files of a module directory (relative path → bytes), for hashing and copying. */
function moduleFiles(dir: string, prefix = ""): [string, Buffer, number][] {
  const out: [string, Buffer, number][] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...moduleFiles(dir, rel));
    else if (e.isFile()) out.push([rel, readFileSync(join(dir, rel)), statSync(join(dir, rel)).mode & 0o777]);
  }
  return out;
}

/**
 * A private dracutbasedir: every entry of the host's /usr/lib/dracut as a symlink, and modules.d with the
 * host's modules (symlinks) plus `98sealroot` (a copy of dracut-module/) and the extra modules. Keyed by
 * the modules' bytes, so an edit gives a new directory and the host tree is never written.
 */
function privateBasedir(extra: DracutModuleSource[]): { dir: string; hash: string } {
  const sealroot = moduleFiles(MODULE_DIR).filter(([rel]) => !rel.endsWith(".md"));
  const h = createHash("sha256").update(`basedir v1 ${dracutVersion()}\n`);
  for (const [rel, data, mode] of sealroot) h.update(`sealroot/${rel} ${mode}\n`).update(data);
  for (const m of extra)
    for (const [rel, f] of Object.entries(m.files).sort())
      h.update(`${m.priority}${m.name}/${rel} ${f.mode ?? 0o644}\n`).update(f.content);
  const hash = h.digest("hex").slice(0, 16);
  const dir = join(DRACUT_CACHE, "basedir", hash);
  if (existsSync(join(dir, ".complete"))) return { dir, hash };

  const tmp = `${dir}.tmp${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "modules.d"), { recursive: true });
  for (const name of readdirSync(DRACUT_HOST_BASEDIR)) {
    if (name !== "modules.d") symlinkSync(join(DRACUT_HOST_BASEDIR, name), join(tmp, name));
  }
  for (const name of readdirSync(join(DRACUT_HOST_BASEDIR, "modules.d"))) {
    symlinkSync(join(DRACUT_HOST_BASEDIR, "modules.d", name), join(tmp, "modules.d", name));
  }
  const write = (modDir: string, rel: string, data: string | Buffer, mode: number): void => {
    mkdirSync(dirname(join(modDir, rel)), { recursive: true });
    writeFileSync(join(modDir, rel), data);
    chmodSync(join(modDir, rel), mode);
  };
  for (const [rel, data, mode] of sealroot) write(join(tmp, "modules.d/98sealroot"), rel, data, mode);
  for (const m of extra) {
    const modDir = join(tmp, "modules.d", `${m.priority}${m.name}`);
    if (existsSync(modDir))
      throw new Error(`Cannot add the dracut module "${m.name}": ${modDir} exists, expected a new name`);
    for (const [rel, f] of Object.entries(m.files)) write(modDir, rel, f.content, f.mode ?? 0o644);
  }
  writeFileSync(join(tmp, ".complete"), hash);
  publishDir(tmp, dir, hash);
  pruneBasedirs(dir);
  return { dir, hash };
}

/** Keeps the 16 most recent private basedirs (they are small, but each spec edit makes one). */
function pruneBasedirs(keepDir: string): void {
  const parent = dirname(keepDir);
  const dirs = readdirSync(parent)
    .filter((n) => !n.includes(".tmp"))
    .map((n) => ({ n, t: statSync(join(parent, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of dirs.slice(IMAGES_KEEP)) {
    if (join(parent, n) !== keepDir) rmSync(join(parent, n), { recursive: true, force: true });
  }
}

/** Builds (or reuses from the cache) a dracut initramfs of `o.kind` with sealroot for the runner's kernel. */
export function buildDracutInitramfs(o: DracutInitramfsOptions): DracutImage {
  const meta = kernelMeta(o.kernelDir);
  const kver = meta.kernelRelease;
  const bin = resolve(o.bin ?? SEALROOT_BIN);
  if (!existsSync(bin))
    throw new Error(`Cannot find the sealroot binary "${bin}": absent, expected npm run build`);
  const keys = (o.keys ?? []).map((k) => resolve(k));
  const config = o.config !== undefined ? resolve(o.config) : undefined;
  const extra = o.extraModules ?? [];
  const compression = o.compression ?? "zstd";
  const level = o.level ?? (compression === "zstd" ? 3 : 6);
  const compress = compression === "zstd" ? `zstd -q -T0 -${level}` : `gzip -n -${level}`;
  const kindMods = KIND_MODULES[o.kind];
  const modules = [...kindMods.modules, "sealroot", ...extra.map((m) => m.name)];

  const binStat = statSync(bin);
  const h = createHash("sha256").update("dracut-image v1\n");
  h.update(`${o.kind} ${kver} ${meta.debSha256} ${dracutVersion()} ${compress}\n`);
  h.update(`modules ${modules.join(" ")} omit ${kindMods.omit.join(" ")} drivers ${DRIVERS.join(" ")}\n`);
  h.update(`bin ${bin} ${binStat.size} ${binStat.mtimeMs}\n`);
  for (const k of keys) h.update(`key ${basename(k)}\n`).update(readFileSync(k));
  h.update(config !== undefined ? "config\n" : "no config\n");
  if (config !== undefined) h.update(readFileSync(config));
  const base = privateBasedir(extra);
  h.update(`basedir ${base.hash}\n`);
  const key = h.digest("hex").slice(0, 24);
  const target = o.out ?? join(DRACUT_CACHE, "images", `${o.kind}-${key}.img`);
  const side = `${target}.json`;
  if (existsSync(target) && existsSync(side)) {
    const prev = JSON.parse(readFileSync(side, "utf8")) as Omit<DracutImage, "cached" | "path"> & {
      key: string;
    };
    if (prev.key === key) {
      const now = new Date();
      utimesSync(target, now, now);
      const { key: _k, ...rest } = prev;
      return { ...rest, path: target, bytes: statSync(target).size, cached: true };
    }
  }

  const kmoddir = kernelModuleTree(o.kernelDir);
  mkdirSync(dirname(target), { recursive: true });
  const work = mkdtempSync(join(DRACUT_CACHE, "work-"));
  try {
    // Keys and config are copied under plain names: dracut.conf values are space-separated words.
    const keyWords: string[] = [];
    keys.forEach((k, i) => {
      const dst = join(work, "keys", `${i}-${basename(k).replace(/[^A-Za-z0-9._-]/g, "_")}`);
      mkdirSync(dirname(dst), { recursive: true });
      copyFileSync(k, dst);
      keyWords.push(i === 0 ? dst : `${dst}:/etc/ostree/${basename(dst)}`);
    });
    let confLines = `sealroot_binary="${bin}"\nsealroot_keys="${keyWords.join(" ")}"\n`;
    if (config !== undefined) {
      copyFileSync(config, join(work, "prepare-root.conf"));
      confLines += `sealroot_conf="${join(work, "prepare-root.conf")}"\n`;
    } else {
      confLines += 'sealroot_conf=""\n';
    }
    writeFileSync(join(work, "dracut.conf"), confLines);
    mkdirSync(join(work, "conf.d"));
    mkdirSync(join(work, "tmp"));
    const tmpOut = `${target}.tmp${process.pid}`;
    const argv = [
      "--force",
      "--no-hostonly",
      "--reproducible",
      "--nostrip",
      "--no-early-microcode",
      "--kver",
      kver,
      "--kmoddir",
      kmoddir,
      "--conf",
      join(work, "dracut.conf"),
      "--confdir",
      join(work, "conf.d"),
      "--tmpdir",
      join(work, "tmp"),
      "--modules",
      modules.join(" "),
      ...(kindMods.omit.length ? ["--omit", kindMods.omit.join(" ")] : []),
      "--add-drivers",
      DRIVERS.join(" "),
      "--compress",
      compress,
      tmpOut,
    ];
    const started = performance.now();
    try {
      execFileSync(DRACUT, argv, {
        env: { ...process.env, dracutbasedir: base.dir },
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 << 20,
      });
    } catch (e) {
      const err = e as { stderr?: Buffer; status?: number };
      const tail = (err.stderr?.toString() ?? "").trim().split("\n").slice(-15).join("\n");
      throw new Error(
        `Cannot build the ${o.kind} dracut initramfs "${target}": dracut exited ${String(err.status)}:\n${tail}`,
      );
    }
    const buildMs = performance.now() - started;
    const mods = execFileSync("lsinitrd", ["-f", "usr/lib/dracut/modules.txt", tmpOut], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    })
      .split("\n")
      .filter(Boolean);
    if (!mods.includes("sealroot"))
      throw new Error(
        `Cannot use the dracut initramfs "${target}": modules ${mods.join(",")}, expected sealroot among them`,
      );
    renameSync(tmpOut, target);
    const image: DracutImage = {
      path: target,
      kind: o.kind,
      kernelRelease: kver,
      bytes: statSync(target).size,
      cached: false,
      buildMs: Math.round(buildMs),
      dracutModules: mods,
      argv: [DRACUT, ...argv],
    };
    const { path: _p, cached: _c, ...rest } = image;
    writeFileSync(side, JSON.stringify({ ...rest, key }, null, 2));
    if (o.out === undefined) pruneImages(dirname(target));
    return image;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Keeps the 16 most recently used images (about 1 GB: the boot matrix and this tier share them). */
function pruneImages(dir: string): void {
  pruneCacheDir(dir, IMAGES_KEEP);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    options: {
      kind: { type: "string" },
      key: { type: "string" },
      config: { type: "string" },
      bin: { type: "string" },
      gzip: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  const { kind, key, config, bin, gzip } = values;
  if ((kind !== "systemd" && kind !== "nosystemd") || key === undefined) {
    process.stderr.write(
      "usage: bun qemu/build-dracut-initramfs.ts --kind systemd|nosystemd --key PUB [--config CONF] [--bin BIN] [--gzip] [OUT]\n",
    );
    process.exit(2);
  }
  const kernelDir = execFileSync(join(REPO, "qemu/fetch-kernel.sh"), [], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
  const o: DracutInitramfsOptions = { kind, kernelDir, keys: [key] };
  if (config !== undefined) o.config = config;
  if (bin !== undefined) o.bin = bin;
  if (gzip) o.compression = "gzip";
  if (positionals[0] !== undefined) o.out = positionals[0];
  const img = buildDracutInitramfs(o);
  process.stderr.write(
    `dracut ${img.kind}: ${img.bytes} B, modules ${img.dracutModules.join(" ")}${img.cached ? " (cached)" : ` (${img.buildMs} ms)`}\n`,
  );
  process.stdout.write(`${img.path}\n`);
}
