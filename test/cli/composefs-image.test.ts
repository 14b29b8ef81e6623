import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sealroot } from "../helpers/cli.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C1, C2, C2_DIGEST } from "../helpers/golden.ts";

// Issue 5 acceptance: `sealroot composefs-image` writes what `ostree checkout --composefs` writes.
const C3 = "5b56b34165ba6deece350f133f30ee2640ea5bf761830c6e6ef98eb11015198e";
const made: string[] = [];
const outDir = () => {
  const d = mkdtempSync(join(tmpdir(), "sealroot-cfs-"));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe("sealroot composefs-image", () => {
  const cases: [string, string[], string, string][] = [
    [C1, [], "c1.cfs", "118a631c7c8d550bdc4e09fc087ad8c480e9e858b5fc361aedbc982a559a35cc"],
    [
      C1,
      ["--no-verity"],
      "c1.noverity.cfs",
      "2ecd2f0b169d05c56fe21321ce67b67328aa703ed78825174f9b3d437697c08f",
    ],
    [C2, [], "c2.cfs", C2_DIGEST],
    [
      C2,
      ["--no-verity"],
      "c2.noverity.cfs",
      "d27ab38a1139e261bcd11a587bcd4bbacfd2cee836bb55c4be2c05a215739815",
    ],
  ];
  const repos = {
    "bare-user": () => extracted("ostree/repo-bare-user.tar"),
    "archive-z2": () => extracted("ostree/repo-archive-z2.tar"),
    "sysroot bare": () => join(extracted("ostree/sysroot.tar"), "ostree/repo"),
  };
  for (const [mode, repo] of Object.entries(repos)) {
    for (const [commit, flags, file, digest] of cases) {
      it(`reproduces cfs/${file} from the ${mode} repo and prints its digest`, () => {
        const image = join(outDir(), file);
        expect(sealroot("composefs-image", "--repo", repo(), "--commit", commit, image, ...flags)).toEqual({
          code: 0,
          stdout: `sha256:${digest} ${image}\n`,
          stderr: "",
        });
        expect(readFileSync(image).equals(readFileSync(join(OSTREE, "cfs", file)))).toBe(true);
      });
    }
  }

  it("resolves --ref", () => {
    const image = join(outDir(), "x.cfs");
    const r = sealroot(
      "composefs-image",
      "--repo",
      repos["bare-user"](),
      "--ref",
      "refos/x86_64/stable",
      image,
    );
    expect(r.stdout).toBe(`sha256:${C2_DIGEST} ${image}\n`);
  });

  it("fails like ostree checkout --composefs when the commit's digest does not match, leaving no file", () => {
    const dir = outDir();
    const image = join(dir, "c3.cfs");
    const repo = extracted("ostree/bad/repo-wrong-cfs-digest.tar");
    expect(sealroot("composefs-image", "--repo", repo, "--commit", C3, image)).toEqual({
      code: 1,
      stdout: "",
      stderr: `sealroot: Cannot write the composefs image of commit ${C3}: Generated composefs image digest (${C2_DIGEST}) doesn't match expected digest (13aeaeedc034d139effcd66fe3db08d3328aec2f02c5a78aeea60f346d7a226d), expected the commit's ostree.composefs.digest.v0\n`,
    });
    expect(existsSync(image)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    // ostree's own words for the same commit (bad/commands.log)
    const log = readFileSync(join(OSTREE, "bad/commands.log"), "utf8");
    expect(log).toContain(
      `error: Generated composefs image digest (${C2_DIGEST}) doesn't match expected digest (13aeaeedc034d139effcd66fe3db08d3328aec2f02c5a78aeea60f346d7a226d)`,
    );
  });

  it("writes the bad commit's image with --no-verity, as --composefs-noverity does (no digest check)", () => {
    const image = join(outDir(), "c3.noverity.cfs");
    const repo = extracted("ostree/bad/repo-wrong-cfs-digest.tar");
    const r = sealroot("composefs-image", "--repo", repo, "--commit", C3, image, "--no-verity");
    expect(r).toEqual({
      code: 0,
      stdout: `sha256:d27ab38a1139e261bcd11a587bcd4bbacfd2cee836bb55c4be2c05a215739815 ${image}\n`,
      stderr: "",
    });
    expect(readFileSync(image).equals(readFileSync(join(OSTREE, "cfs/c2.noverity.cfs")))).toBe(true);
  });
});
