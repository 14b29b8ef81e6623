// Child program for the mount tests, run as root inside `unshare -m --propagation private` on the host
// (under Bun) and as a compiled Bun binary inside the VM. argv[2] is a JSON Spec; it mounts the composefs
// image with mountComposefs() over the real Sys, reads back what the tests assert (mountinfo, loop device
// state, the whole tree or chosen files) and prints one JSON Report line. Mounts die with the namespace.

import { mkdirSync, mkdtempSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { SealrootError } from "../../src/base/errors.ts";
import { sha256 } from "../../src/base/hash.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { MNT_DETACH } from "../../src/sys/ffi/libc.ts";
import type { CompatForce } from "../../src/sys/kernel-compat.ts";
import { type ComposefsMountResult, mountComposefs, openImage, probeRead } from "../../src/sys/mount.ts";
import { realSys } from "../../src/sys/real.ts";
import { type Entry, walk } from "./tree-walk.ts";

export interface Spec {
  image: string;
  objects: string[];
  force?: CompatForce;
  requireVerity?: boolean;
  /** Hex fs-verity digest to compare, measured on the image fd before mounting. */
  expectedDigest?: string;
  /** Directory to create the staging dirs in (default: a new /tmp/sealroot-mnt-*). */
  work?: string;
  walk?: boolean;
  /** Paths relative to the mounted root to read; each gives a sha256 or an error line. */
  read?: string[];
  /** A path relative to the mounted root for probeRead(); its error (if any) fails the run. */
  probe?: string;
}

export interface MountinfoEntry {
  mountOptions: string;
  fstype: string;
  source: string;
  superOptions: string;
}

export interface Report {
  ok: boolean;
  error?: { name: string; code?: string; errno?: string; message: string };
  measured?: string | null;
  result?: ComposefsMountResult;
  target?: string;
  imageMountDir?: string;
  /** mountinfo entries whose mount point is the target / the staging dir, after the mount. */
  targetMounts?: MountinfoEntry[];
  stagingMounts?: MountinfoEntry[];
  /** /sys/block/loopN/loop/* of the loop device, when one was used. */
  loop?: Record<string, string>;
  tree?: Entry[];
  reads?: Record<string, string>;
}

function mountsAt(point: string): MountinfoEntry[] {
  const out: MountinfoEntry[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    if (f[4] !== point) continue;
    const dash = f.indexOf("-");
    out.push({
      mountOptions: f[5] ?? "",
      fstype: f[dash + 1] ?? "",
      source: f[dash + 2] ?? "",
      superOptions: f[dash + 3] ?? "",
    });
  }
  return out;
}

function errorOf(e: unknown): NonNullable<Report["error"]> {
  if (e instanceof SealrootError)
    return {
      name: e.name,
      code: e.code,
      ...(typeof e.data.errno === "string" ? { errno: e.data.errno } : {}),
      message: e.message,
    };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: "unknown", message: String(e) };
}

function umountAll_bestEffort(dir: string): void {
  while (mountsAt(dir).length > 0) {
    try {
      realSys.umount2(dir, MNT_DETACH);
    } catch (e) {
      process.stderr.write(`run-mount: cannot detach ${dir}: ${errorOf(e).message}\n`);
      return;
    }
  }
}

export function run(spec: Spec): Report {
  const base = spec.work ?? mkdtempSync("/tmp/sealroot-mnt-");
  const target = join(base, "root");
  const imageMountDir = join(base, "lower");
  mkdirSync(target, { recursive: true });
  mkdirSync(imageMountDir, { recursive: true });
  const report: Report = { ok: false, target, imageMountDir };
  try {
    const fd = openImage(realSys, spec.image);
    try {
      if (spec.expectedDigest !== undefined) {
        const m = realSys.measureVerity(fd, spec.image);
        report.measured = m ? `${m.algorithm}:${toHex(m.digest)}` : null;
        if (report.measured !== `sha256:${spec.expectedDigest}`)
          throw new Error(`digest mismatch: ${report.measured}`);
      }
      report.result = mountComposefs(realSys, {
        imageFd: fd,
        imagePath: spec.image,
        target,
        objectDirs: spec.objects,
        imageMountDir,
        requireVerity: spec.requireVerity ?? false,
        ...(spec.force ? { force: spec.force } : {}),
      });
    } finally {
      realSys.close(fd);
    }
    report.targetMounts = mountsAt(target);
    report.stagingMounts = mountsAt(imageMountDir);
    const dev = report.result.erofs.device;
    if (dev.startsWith("/dev/loop")) {
      const sysDir = `/sys/block/${dev.slice("/dev/".length)}`;
      report.loop = {};
      for (const k of ["loop/backing_file", "loop/autoclear", "loop/dio", "ro"])
        report.loop[k] = readFileSync(join(sysDir, k), "utf8").trim();
    }
    if (spec.probe !== undefined) probeRead(realSys, target, spec.probe);
    if (spec.walk) report.tree = walk(target);
    if (spec.read) {
      report.reads = {};
      for (const rel of spec.read) {
        try {
          report.reads[rel] = toHex(sha256(realSys.readFile(join(target, rel), 1 << 30)));
        } catch (e) {
          report.reads[rel] = errorOf(e).message;
        }
      }
    }
    report.ok = true;
    realSys.umount2(target, MNT_DETACH);
  } catch (e) {
    report.error = errorOf(e);
  }
  if (spec.work === undefined) {
    for (const dir of [target, imageMountDir]) {
      // whatever is still mounted goes when the namespace ends; detach it now so the dirs can go
      umountAll_bestEffort(dir);
      rmdirSync(dir);
    }
    rmdirSync(base);
  }
  return report;
}

// Bun sets import.meta.main for the entry module (also in a compiled binary); vitest imports this file.
if ((import.meta as { main?: boolean }).main) {
  const arg = process.argv[2];
  if (arg === undefined) throw new Error("usage: run-mount.ts SPEC_JSON");
  process.stdout.write(`${JSON.stringify(run(JSON.parse(arg) as Spec))}\n`);
}
