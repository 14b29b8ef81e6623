import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyOf, sealroot } from "../helpers/cli.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C1, C1_DIGEST, C2, C2_DIGEST, PRIMARY_KEY_HEX } from "../helpers/golden.ts";

// Issue 5 acceptance for `sealroot deploy-image`: the reference sysroot with its images removed, and a
// sysroot made by Debian's ostree 2022.7 (which has no composefs, so writes no image) from sealed, bad
// and unsealed commits.
const C3 = "5b56b34165ba6deece350f133f30ee2640ea5bf761830c6e6ef98eb11015198e";
const PUB = join(OSTREE, "keys/ed25519.pub");
const NO_VERITY =
  "fs-verity: not enabled: Cannot enable fs-verity on %s: EOPNOTSUPP, expected fs-verity in the kernel (CONFIG_FS_VERITY) and in the file system (mkfs.ext4 -O verity or tune2fs -O verity)";

/** The note deploy-image prints on a host whose kernel has no fs-verity (this one, per MANIFEST.md). */
const verityNote = (image: string) => NO_VERITY.replace("%s", JSON.stringify(image));
const deployDir = (sysroot: string, commit: string) =>
  join(sysroot, "ostree/deploy/refos/deploy", `${commit}.0`);

function ostree(...args: string[]): string {
  const r = spawnSync("ostree", args, { encoding: "utf8" });
  if (r.error) throw new Error(`Cannot run ostree (apt-get install -y ostree): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ostree ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const chattr = (flag: string, path: string) => execFileSync("chattr", [flag, path]);
const isImmutable = (path: string) =>
  execFileSync("lsattr", ["-d", path], { encoding: "utf8" }).split(" ")[0]?.includes("i");

function written(sysroot: string, index: number, commit: string, digest: string, extra = "") {
  const image = join(deployDir(sysroot, commit), ".ostree.cfs");
  return {
    code: 0,
    stdout: `Deployment ${index}: ostree/deploy/refos/deploy/${commit}.0\n${extra}Wrote ${JSON.stringify(image)}: sha256:${digest} = ostree.composefs.digest.v0\n${verityNote(image)}\n`,
    stderr: "",
  };
}

describe("sealroot deploy-image on the reference sysroot", () => {
  let sysroot: string;
  beforeAll(() => {
    sysroot = copyOf(extracted("ostree/sysroot.tar"));
    for (const c of [C1, C2]) rmSync(join(deployDir(sysroot, c), ".ostree.cfs"));
  });
  afterAll(() => rmSync(join(sysroot, ".."), { recursive: true, force: true }));

  it("writes deployment 0's image (commit 2), byte-identical to ostree's", () => {
    expect(sealroot("deploy-image", "--sysroot", sysroot)).toEqual(written(sysroot, 0, C2, C2_DIGEST));
    const image = readFileSync(join(deployDir(sysroot, C2), ".ostree.cfs"));
    expect(image.equals(readFileSync(join(OSTREE, "cfs/c2.cfs")))).toBe(true);
  });

  it("writes deployment 1's image (commit 1) with every file digest, matching its signed digest", () => {
    // ostree's own deploy wrote the noverity image here (commit 1 has no prepare-root.conf); a sealed
    // deployment gets the image the commit's digest names.
    const r = sealroot("deploy-image", "--sysroot", sysroot, "--deployment", "1", "--keys", PUB);
    const ok = `ed25519: Signature verified successfully with key '${PRIMARY_KEY_HEX}'\n`;
    expect(r).toEqual(written(sysroot, 1, C1, C1_DIGEST, ok));
    const image = readFileSync(join(deployDir(sysroot, C1), ".ostree.cfs"));
    expect(image.equals(readFileSync(join(OSTREE, "cfs/c1.cfs")))).toBe(true);
  });

  it("refuses a deployment index beyond the boot entries", () => {
    expect(sealroot("deploy-image", "--sysroot", sysroot, "--deployment", "2")).toEqual({
      code: 1,
      stdout: "",
      stderr: `sealroot: Cannot choose deployment 2 in ${JSON.stringify(sysroot)}: 2 boot entries with ostree= in boot/loader/entries, expected deployment 0..1\n`,
    });
  });

  it("refuses when the commit's signature does not verify with --keys", () => {
    const r = sealroot(
      "deploy-image",
      "--sysroot",
      sysroot,
      "--keys",
      join(OSTREE, "keys/ed25519-other.pub"),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sealroot: Cannot trust commit ${C2}: none of 1 signature verifies with the trusted key\n`,
    );
  });
});

describe("sealroot deploy-image on a sysroot deployed by Debian's ostree", () => {
  let work: string;
  let sysroot: string;
  let plain: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "sealroot-deploy-"));
    sysroot = join(work, "sysroot");
    mkdirSync(sysroot);
    const repo = join(sysroot, "ostree/repo");
    ostree("admin", "init-fs", sysroot);
    ostree("admin", "os-init", `--sysroot=${sysroot}`, "refos");
    ostree(`--repo=${repo}`, "config", "set", "sysroot.bootloader", "none");
    ostree(`--repo=${repo}`, "pull-local", extracted("ostree/repo-bare-user.tar"), "refos/x86_64/stable");
    ostree(
      `--repo=${repo}`,
      "pull-local",
      extracted("ostree/bad/repo-wrong-cfs-digest.tar"),
      "refos/x86_64/bad-cfs-digest",
    );
    // the same tree committed again by Debian's ostree: no ostree.composefs.digest.v0
    plain = ostree(
      `--repo=${repo}`,
      "commit",
      "-b",
      "plain",
      "--tree=ref=refos/x86_64/stable",
      "-s",
      "plain",
      "--bootable",
    ).trim();
    const deploy = (ref: string) =>
      ostree(
        "admin",
        "deploy",
        `--sysroot=${sysroot}`,
        "--os=refos",
        "--retain",
        "--karg=root=LABEL=root",
        ref,
      );
    deploy("refos/x86_64/stable"); // → deployment 2
    deploy("refos/x86_64/bad-cfs-digest"); // → deployment 1
    deploy("plain"); // → deployment 0
  });
  afterAll(() => {
    const deployments = join(sysroot, "ostree/deploy/refos/deploy");
    for (const d of readdirSync(deployments)) {
      if (d.endsWith(".0")) chattr("-i", join(deployments, d));
    }
    rmSync(work, { recursive: true, force: true });
  });

  it("numbers deployments as ostree admin status lists them", () => {
    const status = ostree("admin", "status", `--sysroot=${sysroot}`);
    const order = [...status.matchAll(/refos ([0-9a-f]{64})\.0/g)].map((m) => m[1]);
    expect(order).toEqual([plain, C3, C2]);
  });

  it("writes the sealed commit's image into the immutable directory ostree left, and sets the flag again", () => {
    const dir = deployDir(sysroot, C2);
    expect(isImmutable(dir)).toBe(true); // ostree admin deploy's chattr +i
    const ok = `ed25519: Signature verified successfully with key '${PRIMARY_KEY_HEX}'\n`;
    const r = sealroot("deploy-image", "--sysroot", sysroot, "--deployment", "2", "--keys", PUB);
    expect(r).toEqual(written(sysroot, 2, C2, C2_DIGEST, ok));
    expect(readFileSync(join(dir, ".ostree.cfs")).equals(readFileSync(join(OSTREE, "cfs/c2.cfs")))).toBe(
      true,
    );
    expect(isImmutable(dir)).toBe(true);
  });

  it("refuses the commit whose signed digest does not match its tree, writing nothing", () => {
    const dir = deployDir(sysroot, C3);
    const before = readdirSync(dir).sort();
    expect(sealroot("deploy-image", "--sysroot", sysroot, "--deployment", "1")).toEqual({
      code: 1,
      stdout: `Deployment 1: ostree/deploy/refos/deploy/${C3}.0\n`,
      stderr: `sealroot: Cannot write the composefs image of commit ${C3}: Generated composefs image digest (${C2_DIGEST}) doesn't match expected digest (13aeaeedc034d139effcd66fe3db08d3328aec2f02c5a78aeea60f346d7a226d), expected the commit's ostree.composefs.digest.v0\n`,
    });
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(isImmutable(dir)).toBe(true);
  });

  it("refuses a commit without ostree.composefs.digest.v0", () => {
    const r = sealroot("deploy-image", "--sysroot", sysroot);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sealroot: Cannot write the composefs image of ${JSON.stringify(deployDir(sysroot, plain))}: commit ${plain} has no ostree.composefs.digest.v0, expected a sealed commit (sealroot seal)\n`,
    );
  });
});
