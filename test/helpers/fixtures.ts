// Paths to the golden sets copied verbatim from ../shared/conformance into test/fixtures/, and extraction
// of their tarballs (as root, keeping xattrs and numeric owners, as the MANIFESTs say) into a cache dir
// shared by every test of one run. Never edits the fixtures.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = join(ROOT, "test/fixtures");
export const OSTREE = join(FIXTURES, "ostree");
export const COMPOSEFS = join(FIXTURES, "composefs");
const CACHE = process.env.SEALROOT_FIXTURE_CACHE ?? "/tmp/sealroot-fixtures-v2";

/** Extracts `tarPath` (relative to test/fixtures) once and returns the directory. */
export function extracted(tarPath: string): string {
  const dest = join(CACHE, tarPath.replace(/[/]/g, "__").replace(/\.tar$/, ""));
  // the marker sits beside the tree, not in it: an extra entry would change images made from the tree
  const marker = `${dest}.complete`;
  if (existsSync(marker)) return dest;
  const tmp = `${dest}.tmp${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync("tar", [
    "--xattrs",
    "--xattrs-include=*",
    "--numeric-owner",
    "-xpf",
    join(FIXTURES, tarPath),
    "-C",
    tmp,
  ]);
  try {
    renameSync(tmp, dest);
  } catch {
    // another worker won the race; its copy is identical
    rmSync(tmp, { recursive: true, force: true });
  }
  execFileSync("touch", [marker]);
  return dest;
}

export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

export const ostreeExpected = () => readJson<Record<string, unknown>>(join(OSTREE, "expected.json"));
export const composefsExpected = () => readJson<Record<string, unknown>>(join(COMPOSEFS, "expected.json"));
