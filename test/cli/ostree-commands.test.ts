import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loosePath } from "../../src/formats/ostree/objects.ts";
import { copyOf, sealroot } from "../helpers/cli.ts";
import { extracted, OSTREE, ostreeExpected } from "../helpers/fixtures.ts";
import { C1, C2, PRIMARY_KEY_HEX } from "../helpers/golden.ts";

// Issue 3 acceptance through the compiled binary: verify-commit, sign, keygen, show on the golden repos.
const C3 = "5b56b34165ba6deece350f133f30ee2640ea5bf761830c6e6ef98eb11015198e";
const OTHER = "7dc729545331aa886c33ef75b16a24fac1fd873a35ebcb82861440ff98ec617b";
const key = (name: string) => join(OSTREE, "keys", name);
const ok = (hex: string) => `ed25519: Signature verified successfully with key '${hex}'\n`;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("sealroot verify-commit", () => {
  const repos = {
    "bare-user": () => extracted("ostree/repo-bare-user.tar"),
    "archive-z2": () => extracted("ostree/repo-archive-z2.tar"),
    "sysroot bare": () => join(extracted("ostree/sysroot.tar"), "ostree/repo"),
  };
  const cases: [string, string, string][] = [
    [C1, "ed25519.pub", PRIMARY_KEY_HEX],
    [C1, "ed25519-other.pub", OTHER],
    [C1, "trusted-two-keys.pub", OTHER],
    [C2, "ed25519.pub", PRIMARY_KEY_HEX],
    [C2, "trusted-two-keys.pub", PRIMARY_KEY_HEX],
  ];
  for (const [mode, repo] of Object.entries(repos)) {
    for (const [commit, keys, verifiedBy] of cases) {
      if (mode === "sysroot bare" && keys !== "ed25519.pub") continue;
      it(`accepts commit ${commit.slice(0, 8)} in the ${mode} repo with ${keys}`, () => {
        expect(sealroot("verify-commit", "--repo", repo(), "--commit", commit, "--keys", key(keys))).toEqual({
          code: 0,
          stdout: ok(verifiedBy),
          stderr: "",
        });
      });
    }
  }

  it("rejects commit 2 with a key that did not sign it", () => {
    const r = sealroot(
      "verify-commit",
      "--repo",
      repos["bare-user"](),
      "--ref",
      "refos/x86_64/stable",
      "--keys",
      key("ed25519-other.pub"),
    );
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: `sealroot: Cannot verify commit ${C2}: none of 1 signature verifies with the trusted key\n`,
    });
  });

  const bad: [string, string, string, number, string][] = [
    ["repo-corrupt-signature", C2, "ed25519.pub", 1, "none of 1 signature verifies with the trusted key"],
    ["repo-signed-by-other", C2, "ed25519.pub", 1, "none of 1 signature verifies with the trusted key"],
    ["repo-signed-by-other", C2, "ed25519-other.pub", 0, OTHER],
    [
      "repo-truncated-commitmeta",
      C2,
      "ed25519.pub",
      1,
      "no ostree.sign.ed25519 signatures in the commit's detached metadata",
    ],
    // Its composefs digest is wrong, but its signature is valid: the image is checked elsewhere.
    ["repo-wrong-cfs-digest", C3, "ed25519.pub", 0, PRIMARY_KEY_HEX],
  ];
  for (const [name, commit, keys, code, what] of bad) {
    it(`${code ? "refuses" : "accepts"} ${name} with ${keys}`, () => {
      const r = sealroot(
        "verify-commit",
        "--repo",
        extracted(`ostree/bad/${name}.tar`),
        "--commit",
        commit,
        "--keys",
        key(keys),
      );
      expect(r).toEqual(
        code === 0
          ? { code, stdout: ok(what), stderr: "" }
          : { code, stdout: "", stderr: `sealroot: Cannot verify commit ${commit}: ${what}\n` },
      );
    });
  }

  it("refuses a commit object whose bytes do not hash to its name", () => {
    const repo = copyOf(repos["bare-user"]());
    const path = join(repo, "objects", loosePath(C2, "commit"));
    const bytes = readFileSync(path);
    bytes[100] = (bytes[100] ?? 0) ^ 1;
    rmSync(path);
    writeFileSync(path, bytes);
    const r = sealroot("verify-commit", "--repo", repo, "--commit", C2, "--keys", key("ed25519.pub"));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sealroot: Cannot verify object "${path}": content hashes to ${sha256(bytes)}, expected ${C2}\n`,
    );
  });

  it("skips a malformed key line with a warning and still verifies with the good key", () => {
    const keys = join(copyOf(`${OSTREE}/keys`), "mixed.pub");
    writeFileSync(keys, `not-base64!\n\n${readFileSync(key("ed25519.pub"), "utf8")}`);
    const r = sealroot("verify-commit", "--repo", repos["bare-user"](), "--commit", C2, "--keys", keys);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(ok(PRIMARY_KEY_HEX));
    expect(r.stderr).toMatch(/^sealroot: warning: .*mixed\.pub line 1: .*; key skipped\n$/);
  });

  it("refuses a key file with no well-formed key", () => {
    const keys = join(copyOf(`${OSTREE}/keys`), "none.pub");
    writeFileSync(keys, "AAAA\n");
    const r = sealroot("verify-commit", "--repo", repos["bare-user"](), "--commit", C2, "--keys", keys);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(keys);
  });
});

describe("sealroot sign", () => {
  it("signing commit 2 with the primary key into an empty .commitmeta reproduces the conformance bytes", () => {
    const repo = copyOf(extracted("ostree/repo-bare-user.tar"));
    const meta = join(repo, "objects", loosePath(C2, "commitmeta"));
    rmSync(meta);
    const r = sealroot("sign", "--repo", repo, "--commit", C2, "--secret-key", key("ed25519.secret"));
    expect(r.code).toBe(0);
    const expected = (ostreeExpected().commits as { checksum: string; commitmeta_sha256: string }[]).find(
      (c) => c.checksum === C2,
    )!;
    expect(sha256(readFileSync(meta))).toBe(expected.commitmeta_sha256);
  });

  it("appends a second signature after the existing one, and both keys then verify", () => {
    const repo = copyOf(extracted("ostree/repo-bare-user.tar"));
    expect(
      sealroot("sign", "--repo", repo, "--commit", C2, "--secret-key", key("ed25519-other.secret")).code,
    ).toBe(0);
    for (const [k, hex] of [
      ["ed25519.pub", PRIMARY_KEY_HEX],
      ["ed25519-other.pub", OTHER],
    ] as const) {
      expect(sealroot("verify-commit", "--repo", repo, "--commit", C2, "--keys", key(k)).stdout).toBe(
        ok(hex),
      );
    }
    const shown = JSON.parse(sealroot("show", "--repo", repo, "--commit", C2, "--json").stdout);
    expect(JSON.stringify(shown)).toContain("2525d96f86d2e42b");
  });
});

describe("sealroot keygen", () => {
  it("writes a pair in ostree's formats whose signatures verify", () => {
    const dir = copyOf(extracted("ostree/repo-bare-user.tar"));
    const r = sealroot("keygen", "--out", join(dir, "k"));
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, "k.secret"), "utf8")).toMatch(/^[A-Za-z0-9+/]{86}==\n$/);
    expect(readFileSync(join(dir, "k.pub"), "utf8")).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(sealroot("sign", "--repo", dir, "--commit", C1, "--secret-key", join(dir, "k.secret")).code).toBe(
      0,
    );
    expect(sealroot("verify-commit", "--repo", dir, "--commit", C1, "--keys", join(dir, "k.pub")).code).toBe(
      0,
    );
  });
});

describe("sealroot show", () => {
  for (const c of [C1, C2]) {
    it(`gives commit ${c.slice(0, 8)}'s composefs digest from expected.json`, () => {
      const expected = (ostreeExpected().commits as { checksum: string; composefs_digest_v0: string }[]).find(
        (x) => x.checksum === c,
      )!;
      const shown = JSON.parse(
        sealroot("show", "--repo", extracted("ostree/repo-archive-z2.tar"), "--commit", c, "--json").stdout,
      );
      expect(shown.composefsDigestV0).toBe(expected.composefs_digest_v0);
    });
  }
});
