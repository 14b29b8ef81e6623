// Builds the sealroot initramfs: busybox-static, the sealroot binary as PID 1 (`sealroot init` behind a
// two-line /init), the libraries it and ffi-rs's native addon load at run time (libgcc_s, librt; the addon
// is extracted to the writable /tmp of the initramfs), the kernel modules in load order, the public key(s)
// and prepare-root.conf. Everything else is initrd/build.ts (deterministic cpio, cache).
//
// CLI: node_modules/.bin/bun initrd/sealroot.ts --kernel-dir DIR --key PUB [--config CONF] [--bin BIN] [OUT]

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  buildInitramfs,
  type InitrdFile,
  type InitrdImage,
  type InitrdSpec,
  REPO,
  SEALROOT_BIN,
} from "./build.ts";

/** ostree's default key path, read by `enabled = signed` without `keypath=`. */
export const DEFAULT_KEY_DEST = "/etc/ostree/initramfs-root-binding.key";
/** Where the initramfs's prepare-root.conf goes (ostree reads /usr/lib, then /etc). */
export const CONFIG_DEST = "/etc/ostree/prepare-root.conf";

/**
 * /init: a Bun-compiled binary reads /proc/self/exe as it starts and aborts without /proc (seen with Bun
 * 1.4.5), so the shell mounts /proc and then execs sealroot, which mounts the rest. Kernel arguments the
 * kernel hands to init as argv (words without `=`, e.g. `rd.shell`) are not passed on: sealroot reads
 * /proc/cmdline.
 */
export const SEALROOT_INIT = `#!/bin/sh
mount -t proc -o nosuid,nodev,noexec proc /proc
exec /usr/bin/sealroot init
`;

export interface SealrootInitrdOptions {
  /** The compiled sealroot binary (default dist/sealroot). */
  bin?: string;
  /** Decompressed modules `<dir>/<name>.ko`, loaded in this order by `sealroot init`. */
  modules: { dir: string; names: string[] };
  /** Public key files; the first default destination is ostree's default key path. */
  keys?: { src?: string; content?: string; dest?: string }[];
  /** prepare-root.conf text, installed at /etc/ostree/prepare-root.conf; absent: none (kargs decide). */
  config?: string;
  /** More files (test tools, other configs). */
  files?: InitrdFile[];
  binaries?: { src: string; dest: string }[];
  compression?: InitrdSpec["compression"];
  level?: number;
}

/** Path of ffi-rs's native addon for this platform: its shared libraries must be in the initramfs. */
export function ffiRsAddon(): string {
  const req = createRequire(join(REPO, "package.json"));
  const pkg = req.resolve(`@yuuang/ffi-rs-linux-${process.arch}-gnu/package.json`);
  const main =
    (JSON.parse(readFileSync(pkg, "utf8")) as { main?: string }).main ??
    `ffi-rs.linux-${process.arch}-gnu.node`;
  return join(dirname(pkg), main);
}

export function sealrootInitrdSpec(o: SealrootInitrdOptions): InitrdSpec {
  const files: InitrdFile[] = [];
  for (const [i, k] of (o.keys ?? []).entries()) {
    const dest = k.dest ?? (i === 0 ? DEFAULT_KEY_DEST : `/etc/ostree/key-${i}.pub`);
    files.push(
      k.src !== undefined
        ? { dest, src: k.src, mode: 0o644 }
        : { dest, content: k.content ?? "", mode: 0o644 },
    );
  }
  if (o.config !== undefined) files.push({ dest: CONFIG_DEST, content: o.config, mode: 0o644 });
  files.push(...(o.files ?? []));
  const spec: InitrdSpec = {
    init: SEALROOT_INIT,
    binaries: [{ src: o.bin ?? SEALROOT_BIN, dest: "/usr/bin/sealroot" }, ...(o.binaries ?? [])],
    libsOf: [ffiRsAddon()],
    modules: o.modules,
    dirs: ["/sysroot"],
    files,
  };
  if (o.compression !== undefined) spec.compression = o.compression;
  if (o.level !== undefined) spec.level = o.level;
  return spec;
}

/** Builds (or reuses from the cache) the sealroot initramfs. */
export function buildSealrootInitramfs(o: SealrootInitrdOptions, out?: string): InitrdImage {
  return buildInitramfs(sealrootInitrdSpec(o), out);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    options: {
      "kernel-dir": { type: "string" },
      key: { type: "string" },
      config: { type: "string" },
      bin: { type: "string" },
    },
    allowPositionals: true,
  });
  const { "kernel-dir": kernelDir, key, config, bin } = values;
  if (!kernelDir || !key) {
    process.stderr.write(
      "usage: bun initrd/sealroot.ts --kernel-dir DIR --key PUB [--config CONF] [--bin BIN] [OUT]\n",
    );
    process.exit(2);
  }
  const meta = JSON.parse(readFileSync(join(kernelDir, "kernel.json"), "utf8")) as { modules: string[] };
  const o: SealrootInitrdOptions = {
    modules: { dir: join(kernelDir, "modules"), names: meta.modules },
    keys: [{ src: key }],
  };
  if (config !== undefined) o.config = readFileSync(config, "utf8");
  if (bin !== undefined) o.bin = bin;
  const img = buildSealrootInitramfs(o, positionals[0]);
  process.stderr.write(`initrd: ${img.entries} entries, ${img.bytes} B${img.cached ? " (cached)" : ""}\n`);
  process.stdout.write(`${img.path}\n`);
}
