import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LooseObjectExt, loosePath } from "../../src/formats/ostree/objects.ts";
import { copyOf, sealroot } from "../helpers/cli.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C1, C1_DIGEST, C2, C2_DIGEST, PRIMARY_KEY_HEX } from "../helpers/golden.ts";
import { sodiumVerify } from "../helpers/libsodium.ts";

// Issue 5 acceptance for `sealroot seal`, checked against upstream: the reference trees committed by
// Debian's ostree 2022.7 (no composefs support, so no digest) and sealed by sealroot come out as the
// reference commits themselves — same checksums, same signature bytes — and Debian's ostree still reads,
// checks and checks out the result.
const C3 = "5b56b34165ba6deece350f133f30ee2640ea5bf761830c6e6ef98eb11015198e";
/** What Debian's ostree 2022.7 commits for tree1 / tree2 with the reference options minus the digest. */
const U1 = "4e6eef98fb42be452dec754cd87cc063d36e097cd7a4ff7e0f414e9dcc9d47bd";
const U2 = "8e13b00c4cbd8c2104afed155cda63f24c93ccb132fe80aeebbecc21fb233908";
/** Upstream's signatures by the primary key (MANIFEST.md): deterministic, so re-signing gives these. */
const SIG1 =
  "8cd16a2c073705bf3037c5762b5e6dcd6d9bf430c48cd7e2cad7756dc9d19cab220b1d86569225ce5a375d504923ac6a1f6cd1f4c9a3f4fde885ea20d1d82d0d";
const SIG2 =
  "2525d96f86d2e42b4396285b2a94c6a3ac3f56d6e29d4b7fe69c9c3e234312200442a91d5804dbf9c3dfcf8409646a9688100335f4a8ce5508b32fe8d626020d";
const REF = "refos/x86_64/stable";
const SECRET = join(OSTREE, "keys/ed25519.secret");
const PUB = join(OSTREE, "keys/ed25519.pub");

const obj = (repo: string, c: string, ext: LooseObjectExt) => join(repo, "objects", loosePath(c, ext));
const fixtureRepo = () => extracted("ostree/repo-bare-user.tar");

/** Debian's `ostree` CLI; throws with its stderr on failure. */
function ostree(...args: string[]): string {
  const r = spawnSync("ostree", args, { encoding: "utf8" });
  if (r.error) throw new Error(`Cannot run ostree (apt-get install -y ostree): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ostree ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The reference tree as its own directory, extracted by the test itself. */
function extractTree(work: string, name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  const tar = join(OSTREE, "trees", `${name}.tar`);
  execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", tar, "-C", dir]);
  return dir;
}

function commitTree(repo: string, tree: string, version: string, timestamp: number, subject: string): string {
  return ostree(
    "commit",
    `--repo=${repo}`,
    "-b",
    REF,
    `--tree=dir=${tree}`,
    `--timestamp=@${timestamp}`,
    "-s",
    subject,
    `--add-metadata-string=version=${version}`,
    "--bootable",
  ).trim();
}

const sealed = (from: string, to: string, digest: string) => ({
  code: 0,
  stdout: `ostree.composefs.digest.v0: ${digest}\nSealed ${from} as ${to}\nSigned ${to} with key ${PRIMARY_KEY_HEX}\nMoved ${REF} to ${to}\n`,
  stderr: "",
});

describe("sealroot seal on commits made by Debian's ostree", () => {
  let work: string;
  let repo: string;
  const results: Record<string, ReturnType<typeof sealroot>> = {};
  const unsealed: Record<string, string> = {};

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "sealroot-seal-"));
    repo = join(work, "repo");
    ostree("init", `--repo=${repo}`, "--mode=bare-user");
    const tree1 = extractTree(work, "tree1");
    const tree2 = extractTree(work, "tree2");
    unsealed.c1 = commitTree(repo, tree1, "1", 1735689600, "Reference commit 1 (public)");
    results.c1 = sealroot("seal", "--repo", repo, "--ref", REF, "--secret-key", SECRET);
    // commit 2's parent is the ref's head: the sealed commit 1
    unsealed.c2 = commitTree(repo, tree2, "2", 1735776000, "Reference commit 2 (public)");
    results.c2 = sealroot("seal", "--repo", repo, "--ref", REF, "--secret-key", SECRET);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("starts from Debian's unsealed commits (no ostree.composefs.digest.v0)", () => {
    expect(unsealed).toEqual({ c1: U1, c2: U2 });
    const keys = JSON.parse(sealroot("show", "--repo", repo, "--commit", U2, "--json").stdout).metadataKeys;
    expect(keys).toEqual(["ostree.bootable", "ostree.linux", "ostree.ref-binding", "version"]);
  });

  it("seals tree 1 into upstream's commit 1, byte for byte", () => {
    expect(results.c1).toEqual(sealed(U1, C1, C1_DIGEST));
    expect(readFileSync(obj(repo, C1, "commit")).equals(readFileSync(obj(fixtureRepo(), C1, "commit")))).toBe(
      true,
    );
  });

  it("seals tree 2 (on sealed commit 1) into upstream's commit 2 with upstream's digest", () => {
    expect(results.c2).toEqual(sealed(U2, C2, C2_DIGEST));
    expect(readFileSync(obj(repo, C2, "commit")).equals(readFileSync(obj(fixtureRepo(), C2, "commit")))).toBe(
      true,
    );
    expect(readFileSync(join(repo, "refs/heads", REF), "utf8")).toBe(`${C2}\n`);
  });

  it("writes upstream's signatures, which libsodium verifies over the .commit bytes", () => {
    for (const [commit, sig] of [
      [C1, SIG1],
      [C2, SIG2],
    ] as const) {
      const json = JSON.parse(sealroot("show", "--repo", repo, "--commit", commit, "--json").stdout);
      expect(json.ed25519Signatures).toEqual([sig]);
      const ok = sodiumVerify(
        Buffer.from(sig, "hex"),
        readFileSync(obj(repo, commit, "commit")),
        Buffer.from(PRIMARY_KEY_HEX, "hex"),
      );
      expect(ok).toBe(true);
    }
    // upstream's commit 2 carries exactly this .commitmeta
    expect(
      readFileSync(obj(repo, C2, "commitmeta")).equals(readFileSync(obj(fixtureRepo(), C2, "commitmeta"))),
    ).toBe(true);
  });

  it("passes sealroot verify-commit with the primary key", () => {
    expect(sealroot("verify-commit", "--repo", repo, "--ref", REF, "--keys", PUB)).toEqual({
      code: 0,
      stdout: `ed25519: Signature verified successfully with key '${PRIMARY_KEY_HEX}'\n`,
      stderr: "",
    });
  });

  it("is accepted by Debian's ostree: fsck, log, show of the key, checkout", () => {
    expect(ostree("fsck", `--repo=${repo}`)).toContain("no errors found");
    const log = ostree("log", `--repo=${repo}`, REF);
    expect(log).toContain(`commit ${C2}\nParent:  ${C1}\n`);
    expect(log).toContain(`commit ${C1}\nContentChecksum:`);
    expect(ostree("show", `--repo=${repo}`, "--print-metadata-key=ostree.composefs.digest.v0", REF)).toBe(
      `[byte ${C2_DIGEST.match(/../g)
        ?.map((b) => `0x${b}`)
        .join(", ")}]\n`,
    );
    const dest = join(work, "checkout");
    ostree("checkout", `--repo=${repo}`, REF, dest);
    expect(readFileSync(join(dest, "usr/lib/ostree/prepare-root.conf"), "utf8")).toBe(
      "[composefs]\nenabled = signed\n",
    );
  });

  it("does nothing to a commit that is already sealed and signed by the key", () => {
    const before = readFileSync(obj(repo, C2, "commitmeta"));
    expect(sealroot("seal", "--repo", repo, "--ref", REF, "--secret-key", SECRET)).toEqual({
      code: 0,
      stdout: `ostree.composefs.digest.v0: ${C2_DIGEST}\nCommit ${C2} is already sealed\n`,
      stderr: "",
    });
    expect(readFileSync(obj(repo, C2, "commitmeta")).equals(before)).toBe(true);
  });

  it("refuses a ref that is not a local branch", () => {
    const r = sealroot("seal", "--repo", repo, "--ref", "no/such/ref", "--secret-key", SECRET);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sealroot: Cannot resolve "no/such/ref" in "${repo}": no such ref, expected one of refs/heads/no/such/ref, refs/remotes/no/such/ref, refs/mirrors/no/such/ref\n`,
    );
  });
});

describe("sealroot seal of a commit with a wrong digest", () => {
  it("replaces the digest, keeps parent, subject and timestamp, signs, and moves the ref", () => {
    const repo = copyOf(extracted("ostree/bad/repo-wrong-cfs-digest.tar"));
    try {
      const ref = "refos/x86_64/bad-cfs-digest";
      const r = sealroot("seal", "--repo", repo, "--ref", ref, "--secret-key", SECRET);
      const to = readFileSync(join(repo, "refs/heads", ref), "utf8").trim();
      expect(r).toEqual({
        code: 0,
        stdout: `ostree.composefs.digest.v0: ${C2_DIGEST}\nSealed ${C3} as ${to}\nSigned ${to} with key ${PRIMARY_KEY_HEX}\nMoved ${ref} to ${to}\n`,
        stderr: "",
      });
      const show = (c: string) =>
        JSON.parse(sealroot("show", "--repo", repo, "--commit", c, "--json").stdout);
      const [before, after] = [show(C3), show(to)];
      expect(after.composefsDigestV0).toBe(C2_DIGEST);
      expect(after.metadataKeys).toEqual(before.metadataKeys);
      for (const k of ["parent", "subject", "body", "timestamp", "rootDirtree", "rootDirmeta"]) {
        expect([k, after[k]]).toEqual([k, before[k]]);
      }
      expect(after.parent).toBe(C2);
      expect(sealroot("verify-commit", "--repo", repo, "--commit", to, "--keys", PUB).code).toBe(0);
      const image = join(repo, "..", "x.cfs");
      expect(sealroot("composefs-image", "--repo", repo, "--commit", to, image).stdout).toBe(
        `sha256:${C2_DIGEST} ${image}\n`,
      );
      execFileSync("ostree", ["fsck", `--repo=${repo}`]);
    } finally {
      rmSync(join(repo, ".."), { recursive: true, force: true });
    }
  });
});
