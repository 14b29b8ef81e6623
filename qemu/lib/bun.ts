// Compiles small TypeScript programs into standalone Bun executables for the VM (cached under
// .cache/vm/bin by the hash of the source and the Bun version), and names the host files a Bun binary that
// loads ffi-rs needs at run time: the native addon (extracted to /tmp and dlopened), whose libraries
// (libgcc_s, librt, …) must be in the initramfs.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { CACHE, pruneCacheDir, REPO } from "../../initrd/build.ts";

const BUN = join(REPO, "node_modules/.bin/bun");

/** Compiles `entry` (bundling its imports) and returns the binary's path; reused while the entry's text and
 * the Bun version are unchanged. Imports other than node_modules are not part of the key. */
export function compileBun(entry: string): string {
  const version = execFileSync(BUN, ["--version"], { encoding: "utf8" }).trim();
  const key = createHash("sha256")
    .update(`${version}\n`)
    .update(readFileSync(entry))
    .digest("hex")
    .slice(0, 24);
  const out = join(CACHE, "vm/bin", key);
  // Not touched on reuse: initramfs cache keys include input mtimes.
  if (existsSync(out)) return out;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp${process.pid}`;
  execFileSync(BUN, ["build", "--compile", entry, "--outfile", tmp], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "inherit"],
  });
  renameSync(tmp, out);
  pruneCacheDir(dirname(out), 4);
  return out;
}

/** Path of ffi-rs's native addon for linux-x64-gnu, as resolved from the repo. */
export function ffiRsAddon(): string {
  const req = createRequire(join(REPO, "package.json"));
  const pkg = req.resolve("@yuuang/ffi-rs-linux-x64-gnu/package.json");
  const main =
    (JSON.parse(readFileSync(pkg, "utf8")) as { main?: string }).main ?? "ffi-rs.linux-x64-gnu.node";
  return join(dirname(pkg), main);
}
