// The real mkcomposefs of libcomposefs 1.0.8, the ground truth of the differential tests: built from the
// upstream v1.0.8 sources into ../shared/tools/libcomposefs-1.0.8 beside the repository (on these machines
// and in CI; SEALROOT_LIBCOMPOSEFS points elsewhere). Absent, referenceMkcomposefs() says why and tests
// skip; present, it must run. Never imported by src/.

import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./fixtures.ts";

export const REFERENCE_DIR =
  process.env.SEALROOT_LIBCOMPOSEFS ?? join(ROOT, "../shared/tools/libcomposefs-1.0.8");
const BIN = join(REFERENCE_DIR, "bin/mkcomposefs");
const LIB = join(REFERENCE_DIR, "lib/x86_64-linux-gnu");

export interface ReferenceRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * The library directory as the loader needs it. The shared copy lost its symlinks on the way:
 * libcomposefs.so.1 is a 21-byte text file holding "libcomposefs.so.1.4.0" (ld.so: "file too short").
 * Each such stand-in gets a real symlink in a private directory searched first.
 */
function libraryPath(): string {
  const fixed = mkdtempSync(join(tmpdir(), "sealroot-libcomposefs-"));
  for (const name of readdirSync(LIB)) {
    const p = join(LIB, name);
    const st = statSync(p);
    if (!st.isFile() || st.size > 255) continue;
    const target = readFileSync(p, "latin1").trim();
    if (/^[\w.+-]+$/.test(target) && existsSync(join(LIB, target)))
      symlinkSync(join(LIB, target), join(fixed, name));
  }
  return `${fixed}:${LIB}`;
}

let libs: string | undefined;
let scratch: string | undefined;

/** How to run the reference binary: its path and the environment its library needs (libraryPath). */
export function referenceCommand(): { bin: string; env: Record<string, string> } {
  libs ??= libraryPath();
  return { bin: BIN, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LD_LIBRARY_PATH: libs } };
}

/**
 * Runs the reference on dumpfile `input` (written to a file: mkcomposefs stops reading at the first
 * refused line, so stdin could break the pipe) with `args` before `--from-file IN -` (image on stdout).
 */
export function runReference(args: readonly string[], input: string | Uint8Array): ReferenceRun {
  const { bin, env } = referenceCommand();
  scratch ??= mkdtempSync(join(tmpdir(), "sealroot-reference-"));
  const file = join(scratch, "in.dump");
  writeFileSync(file, input);
  const r = spawnSync(bin, [...args, "--from-file", file, "-"], {
    env,
    maxBuffer: 1 << 28,
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: String(r.stderr) };
}

/** Runs the reference with `args` as they are (a directory SOURCE, `-` for the image on stdout). */
export function runReferenceArgs(args: readonly string[]): ReferenceRun {
  const { bin, env } = referenceCommand();
  const r = spawnSync(bin, args, { env, maxBuffer: 1 << 28, timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: String(r.stderr) };
}

/** Why the reference cannot be used here (undefined when it can): only its absence is a reason. */
export function referenceMissing(): string | undefined {
  if (!existsSync(BIN)) return `${BIN} missing (libcomposefs 1.0.8 is expected in ../shared/tools)`;
  return undefined;
}
