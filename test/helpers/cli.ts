// Runs the compiled binary (dist/sealroot, built by the vitest globalSetup) the way a user does, and
// returns exit code, stdout and stderr. SEALROOT_BIN points at another binary.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SEALROOT_BIN } from "../../initrd/build.ts";

export const BIN = SEALROOT_BIN;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sealroot(...args: string[]): RunResult {
  const r = spawnSync(BIN, args, { encoding: "utf8", timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A private writable copy of an extracted fixture directory (xattrs and owners kept). */
export function copyOf(dir: string): string {
  const dest = join(mkdtempSync(join(tmpdir(), "sealroot-test-")), "copy");
  execFileSync("cp", ["-a", dir, dest]); // GNU cp -a keeps xattrs (user.ostreemeta) and owners
  return dest;
}
