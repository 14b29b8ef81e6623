// `sealroot fsverity-digest` as users run it (the compiled binary, under Bun): output byte-for-byte equal
// to `fsverity digest` (Debian package fsverity) on the golden images, generated files and a 1 GiB file;
// the same exit codes and the same stop-at-first-error behaviour.

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SEALROOT_BIN } from "../../initrd/build.ts";
import { COMPOSEFS, OSTREE } from "../helpers/fixtures.ts";
import { patternFile } from "../helpers/pattern-file.ts";

const BIN = SEALROOT_BIN;
const BLOCK = 4096;

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.error)
    throw new Error(`cannot run ${cmd} (for fsverity: install the Debian package fsverity): ${r.error}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const sealroot = (...files: string[]) => run(BIN, ["fsverity-digest", ...files]);
const reference = (...files: string[]) => run("fsverity", ["digest", ...files]);

const cfsFiles = [
  ...readdirSync(COMPOSEFS).map((n) => join(COMPOSEFS, n)),
  ...readdirSync(join(OSTREE, "cfs")).map((n) => join(OSTREE, "cfs", n)),
].filter((p) => p.endsWith(".cfs"));

describe("sealroot fsverity-digest", () => {
  it("prints exactly what `fsverity digest` prints for every golden .cfs image", () => {
    expect(cfsFiles.length).toBe(83);
    const ref = reference(...cfsFiles);
    expect(ref.code).toBe(0);
    expect(sealroot(...cfsFiles)).toEqual(ref);
  });

  it("prints exactly what `fsverity digest` prints around block and Merkle-level boundaries", () => {
    const sizes = [0, 1, 4095, BLOCK, BLOCK + 1, 128 * BLOCK, 128 * BLOCK + 1, 129 * BLOCK, 129 * BLOCK + 1];
    const files = sizes.map((s) => patternFile(s));
    const ref = reference(...files);
    expect(ref.code).toBe(0);
    expect(sealroot(...files)).toEqual(ref);
  });

  it("prints exactly what `fsverity digest` prints for a 1 GiB file", () => {
    const file = patternFile(1 << 30);
    expect(sealroot(file)).toEqual({
      code: 0,
      stdout: `sha256:501aee0514cce0d4e1cc0212ea932a83f5e9e29903fab80a43056f526e5a7b58 ${file}\n`,
      stderr: "",
    });
  }, 300_000);

  it.each([
    [
      "a missing file",
      "/nonexistent/sealroot-missing",
      'sealroot: Cannot open "/nonexistent/sealroot-missing": ENOENT\n',
    ],
    ["a directory", "/tmp", 'sealroot: Cannot read "/tmp": EISDIR\n'],
  ])(
    "stops at %s like `fsverity digest`: earlier lines printed, one line on stderr, exit 1",
    (_, bad, stderr) => {
      const good = patternFile(1);
      const ref = reference(good, bad, good);
      const got = sealroot(good, bad, good);
      expect(ref.code).toBe(1);
      expect(got).toEqual({ code: 1, stdout: ref.stdout, stderr });
    },
  );

  it("refuses to run without a file, with a usage error (exit 2, as `fsverity digest`)", () => {
    const got = sealroot();
    expect(reference().code).toBe(2);
    expect(got.code).toBe(2);
    expect(got.stdout).toBe("");
    expect(got.stderr).toContain("Not enough non-option arguments");
  });
});
