// Shared setup of the prepare-root acceptance tests: what the host must offer, a fresh copy of the golden
// sysroot per test, one scenario run in a new private mount namespace (run-prepare-root.ts under Bun),
// and the mount table under SYSROOT rewritten relative to SYSROOT and the copy, as findmnt shows it.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SEALROOT_BIN } from "../../initrd/build.ts";
import { loosePath } from "../../src/formats/ostree/objects.ts";
import { extracted, ROOT } from "../helpers/fixtures.ts";
import { C2 } from "../helpers/golden.ts";
import type { MountLine, Report, Spec } from "./run-prepare-root.ts";

export const BUN = join(ROOT, "node_modules/.bin/bun");
export const BIN = SEALROOT_BIN;
export const COMMIT2 = C2;
export const DEPLOY_C2 = `ostree/deploy/refos/deploy/${COMMIT2}.0`;
/** The `ostree=` of boot entry ostree-2.conf (deployment 0, commit 2). */
export const TARGET =
  "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
export const BASE_CMDLINE = `root=LABEL=root rw ostree=${TARGET}`;
export const COMMITMETA_C2 = `ostree/repo/objects/${loosePath(COMMIT2, "commitmeta")}`;

export function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root";
  if (spawnSync("unshare", ["--version"]).status !== 0) return "no unshare";
  const fss = readFileSync("/proc/filesystems", "utf8");
  for (const fs of ["overlay", "erofs", "tmpfs"])
    if (!new RegExp(`\\b${fs}\\n`).test(fss)) return `no ${fs} in /proc/filesystems`;
  if (!existsSync("/dev/loop-control")) return "no /dev/loop-control";
  if (!existsSync(BIN)) return `no ${BIN} (npm run build)`;
  return undefined;
}

export interface Copy {
  dir: string;
  /** The sysroot copy (the physical root's contents). */
  copy: string;
  /** SYSROOT, where the copy is bound in the namespace. */
  phys: string;
}

const made: string[] = [];

/** `cp -a` of the extracted golden sysroot into a new temporary directory. */
export function freshCopy(): Copy {
  const dir = mkdtempSync("/tmp/sealroot-prt-");
  made.push(dir);
  const copy = join(dir, "sys");
  execFileSync("cp", ["-a", extracted("ostree/sysroot.tar"), copy]);
  mkdirSync(join(dir, "phys"));
  return { dir, copy, phys: join(dir, "phys") };
}

/** Removes every copy made (their namespaces, and so their mounts, are gone). */
export function removeCopies(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function inNamespace(spec: Spec): Report {
  const r = spawnSync(
    "unshare",
    [
      "-m",
      "--propagation",
      "private",
      BUN,
      join(ROOT, "test/privileged/run-prepare-root.ts"),
      JSON.stringify(spec),
    ],
    { encoding: "utf8", maxBuffer: 1 << 28 },
  );
  if (r.status !== 0) throw new Error(`run-prepare-root exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

/** The binary's command line for a scenario: `sealroot prepare-root SYSROOT --cmdline … [flags]`. */
export function cli(cmdline: string, ...flags: string[]): { program: string; args: string[] } {
  return { program: BIN, args: ["prepare-root", "SYSROOT", "--cmdline", cmdline, ...flags] };
}

export interface RelMount {
  /** Relative to SYSROOT ("" = SYSROOT itself). */
  target: string;
  parent: string;
  fstype: string;
  source: string;
  /** Bind mounts: the directory bound, relative to the copy ("" = the copy itself). */
  root: string;
  options: string;
  superOptions: string;
}

/** The mounts at or under SYSROOT, relative to it; `physRoot` is the mountinfo root of the copy's bind. */
export function relTree(lines: MountLine[], phys: string, physRoot: string): RelMount[] {
  const rel = (p: string, base: string) =>
    p === base ? "" : p.startsWith(`${base}/`) ? p.slice(base.length + 1) : p;
  return lines
    .filter((m) => m.target === phys || m.target.startsWith(`${phys}/`))
    .map((m) => ({
      target: rel(m.target, phys),
      parent: rel(m.parent, phys),
      fstype: m.fstype,
      source: m.source,
      root: m.fstype === "overlay" ? m.root : rel(m.root, physRoot),
      options: m.options,
      superOptions: m.superOptions.split(phys).join("SYSROOT"),
    }));
}

/** The mount of the copy on SYSROOT before the run: its mountinfo root, options and device. */
export function physMount(r: Report, phys: string): MountLine {
  const m = r.before.mounts.find((x) => x.target === phys);
  if (!m) throw new Error(`nothing mounted on ${phys} before the run`);
  return m;
}
