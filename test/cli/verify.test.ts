import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loosePath } from "../../src/formats/ostree/objects.ts";
import { copyOf, sealroot } from "../helpers/cli.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C1, C2, C2_DIGEST, PRIMARY_KEY_HEX } from "../helpers/golden.ts";

// Issue 4 acceptance: `sealroot verify` on the extracted conformance sysroot.
const D0 = "ostree=/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const D1 = "ostree=/ostree/boot.0/refos/b0d948d23ff829a8ccc9b2f90d9b055a40896951f3d65ae8b2b8fe17125eeb25/0";
const KEYS = join(OSTREE, "keys");
const deployDir = (sysroot: string, c: string) => join(sysroot, "ostree/deploy/refos/deploy", `${c}.0`);
const commitmeta = (sysroot: string, c: string) =>
  join(sysroot, "ostree/repo/objects", loosePath(c, "commitmeta"));

/** An initramfs-like root holding prepare-root.conf and the binding key. */
function initramfsRoot(conf: string, key = "ed25519.pub"): string {
  const root = mkdtempSync(join(tmpdir(), "sealroot-initrd-"));
  mkdirSync(join(root, "usr/lib/ostree"), { recursive: true });
  mkdirSync(join(root, "etc/ostree"), { recursive: true });
  writeFileSync(join(root, "usr/lib/ostree/prepare-root.conf"), conf);
  copyFileSync(join(KEYS, key), join(root, "etc/ostree/initramfs-root-binding.key"));
  return root;
}

const SIGNED = "[composefs]\nenabled = signed\n";
let sysroot: string;
let signedRoot: string;
let plainRoot: string;

beforeAll(() => {
  sysroot = extracted("ostree/sysroot.tar");
  signedRoot = initramfsRoot(SIGNED);
  plainRoot = initramfsRoot("");
});

function verify(sys: string, cmdline: string, root: string, ...extra: string[]) {
  return sealroot("verify", "--sysroot", sys, "--cmdline", cmdline, "--root", root, ...extra);
}

const line = (stage: string, reason: string) => `sealroot: refused (${stage}): ${reason}\n`;

function json(sys: string, cmdline: string, root: string) {
  const r = verify(sys, cmdline, root, "--json");
  return { code: r.code, stderr: r.stderr, d: JSON.parse(r.stdout) };
}

describe("sealroot verify --json prints the event the boot would measure", () => {
  const banks = (event: string) =>
    (["sha1", "sha256", "sha384", "sha512"] as const).map((bank) => ({
      bank,
      digest: createHash(bank).update(event).digest("hex"),
    }));

  it("for a signed boot: the commit, the signed digest, the key that verified it", () => {
    const { d } = json(sysroot, D0, signedRoot);
    const event = `sealroot:v1:commit=${C2}:composefs=${C2_DIGEST}:key=${PRIMARY_KEY_HEX}:policy=signed`;
    expect(d.measurement).toEqual({ pcr: 15, tpm: "auto", setBy: [], event, digests: banks(event) });
  });

  it("for a digest= boot, with key=none, into the PCR and mode of the config", () => {
    const root = initramfsRoot("[sealroot]\npcr = 12\ntpm = required\n");
    const { d } = json(sysroot, `${D0} ot-composefs=digest=${C2_DIGEST}`, root);
    const event = `sealroot:v1:commit=${C2}:composefs=${C2_DIGEST}:key=none:policy=digest`;
    expect(d.measurement).toEqual({
      pcr: 12,
      tpm: "required",
      setBy: ["/usr/lib/ostree/prepare-root.conf [sealroot] tpm = required"],
      event,
      digests: banks(event),
    });
  });

  it("and none for a boot it refuses", () => {
    const { code, d } = json(sysroot, `${D0} ot-composefs=digest=${"0".repeat(64)}`, plainRoot);
    expect(code).toBe(1);
    expect(d.measurement).toBeUndefined();
  });
});

describe("sealroot verify accepts deployment 0", () => {
  it("in signed mode from the config", () => {
    const { code, d } = json(sysroot, `root=LABEL=root ${D0}`, signedRoot);
    expect(code).toBe(0);
    expect(d.verdict).toBe("boot");
    expect(d.useComposefs).toBe(true);
    expect(d.verityRequired).toBe(true);
    expect(d.commitVerified).toBe(true);
    expect(d.keySets).toEqual([
      {
        path: "/etc/ostree/initramfs-root-binding.key",
        requiredBy: [`config enabled=signed`],
        keys: 1,
        problems: [],
        verifiedBy: PRIMARY_KEY_HEX,
      },
    ]);
    expect(d.expectedDigests.map((e: { hex: string }) => e.hex)).toEqual([C2_DIGEST]);
    expect(d.image).toMatchObject({ digest: C2_DIGEST, measuredBy: "userspace", present: true });
  });

  it("in signed mode from ot-composefs=signed=<path>", () => {
    const r = verify(sysroot, `${D0} ot-composefs=signed=/etc/ostree/initramfs-root-binding.key`, plainRoot);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`signed by ${PRIMARY_KEY_HEX}`);
  });

  it("with --config naming a signed prepare-root.conf", () => {
    const conf = join(mkdtempSync(join(tmpdir(), "sealroot-conf-")), "prepare-root.conf");
    writeFileSync(conf, SIGNED);
    expect(verify(sysroot, D0, plainRoot, "--config", conf).code).toBe(0);
  });

  it("in digest= mode with its digest", () => {
    const { code, d } = json(sysroot, `${D0} ot-composefs=digest=${C2_DIGEST}`, plainRoot);
    expect(code).toBe(0);
    expect(d.expectedDigests).toEqual([{ hex: C2_DIGEST, source: `karg ot-composefs=digest=${C2_DIGEST}` }]);
  });

  it("when a weaker karg tries to switch a signed config off, and records the overrule", () => {
    const { code, d } = json(sysroot, `${D0} ostree.prepare-root.composefs=0 ot-composefs=off`, signedRoot);
    expect(code).toBe(0);
    expect(d.composefs).toBe("on");
    expect(d.keySets[0].verifiedBy).toBe(PRIMARY_KEY_HEX);
    expect(d.overruled.map((o: { token: string }) => o.token)).toEqual([
      "ostree.prepare-root.composefs=0",
      "ot-composefs=off",
    ]);
  });
});

describe("sealroot verify refuses", () => {
  it("deployment 0 with the other key", () => {
    const r = verify(sysroot, D0, initramfsRoot(SIGNED, "ed25519-other.pub"));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      line(
        "signature",
        `Cannot verify commit ${C2} with the keys in "/etc/ostree/initramfs-root-binding.key": none of 1 signature verifies with the trusted key, expected an ed25519 signature by one of them`,
      ),
    );
  });

  it("deployment 0 with a wrong digest", () => {
    const wrong = "13aeaeedc034d139effcd66fe3db08d3328aec2f02c5a78aeea60f346d7a226d";
    const r = verify(sysroot, `${D0} ot-composefs=digest=${wrong}`, plainRoot);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      line(
        "image",
        `Cannot verify composefs image "${deployDir(sysroot, C2)}/.ostree.cfs": fs-verity digest ${C2_DIGEST}, expected ${wrong} (karg ot-composefs=digest=${wrong})`,
      ),
    );
  });

  it("the flipped .ostree.cfs, in signed and in digest mode", () => {
    const sys = copyOf(sysroot);
    copyFileSync(join(OSTREE, "bad/deploy-c2.ostree.cfs.flipped"), join(deployDir(sys, C2), ".ostree.cfs"));
    for (const [cmdline, root] of [
      [D0, signedRoot],
      [`${D0} ot-composefs=digest=${C2_DIGEST}`, plainRoot],
    ] as const) {
      const r = verify(sys, cmdline, root);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^sealroot: refused \(image\): Cannot verify composefs image ".*": fs-verity digest 4237f161[0-9a-f]+, expected e914e932/,
      );
    }
  });

  const dropIns: [string, string, string][] = [
    ["c2.commitmeta.corrupt-signature", "signature", "none of 1 signature verifies with the trusted key"],
    ["c2.commitmeta.signed-by-other", "signature", "none of 1 signature verifies with the trusted key"],
    [
      "c2.commitmeta.truncated",
      "signature",
      "no ostree.sign.ed25519 signatures in the commit's detached metadata",
    ],
  ];
  for (const [file, stage, why] of dropIns) {
    it(`deployment 0 with bad/${file} dropped in`, () => {
      const sys = copyOf(sysroot);
      copyFileSync(join(OSTREE, "bad", file), commitmeta(sys, C2));
      const r = verify(sys, D0, signedRoot);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        line(
          stage,
          `Cannot verify commit ${C2} with the keys in "/etc/ostree/initramfs-root-binding.key": ${why}, expected an ed25519 signature by one of them`,
        ),
      );
    });
  }

  it("deployment 1, whose image was written without per-file digests", () => {
    const r = verify(sysroot, D1, signedRoot);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      line(
        "image",
        `Cannot verify composefs image "${deployDir(sysroot, C1)}/.ostree.cfs": fs-verity digest 2ecd2f0b169d05c56fe21321ce67b67328aa703ed78825174f9b3d437697c08f, expected 118a631c7c8d550bdc4e09fc087ad8c480e9e858b5fc361aedbc982a559a35cc (signed ostree.composefs.digest.v0 (keys /etc/ostree/initramfs-root-binding.key))`,
      ),
    );
  });

  it("a commit object whose bytes do not hash to the deployment's id", () => {
    const sys = copyOf(sysroot);
    // commit 1's bytes under commit 2's name: validly signed, but not the deployed commit
    const obj = (c: string) => join(sys, "ostree/repo/objects", loosePath(c, "commit"));
    copyFileSync(obj(C1), obj(C2));
    const r = verify(sys, D0, signedRoot);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^sealroot: refused \(commit\): Cannot verify object ".*\.commit": content hashes to 2a633663.*, expected 59d43ea8/,
    );
  });

  it("a missing .ostree.cfs when composefs is required, but boots the legacy way under maybe", () => {
    const sys = copyOf(sysroot);
    rmSync(join(deployDir(sys, C2), ".ostree.cfs"));
    expect(verify(sys, `${D0} ot-composefs=on`, plainRoot).stderr).toMatch(
      /^sealroot: refused \(image\): Cannot find composefs image/,
    );
    const maybe = json(sys, `${D0} ot-composefs=maybe`, plainRoot);
    expect(maybe.code).toBe(0);
    expect(maybe.d.useComposefs).toBe(false);
  });

  it("a missing key file", () => {
    const r = verify(sysroot, `${D0} ot-composefs=signed=/nonexistent.pub`, plainRoot);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sealroot: refused \(keys\): Cannot read ".*\/nonexistent\.pub": ENOENT/);
  });

  it("an ostree= that escapes the sysroot", () => {
    const r = verify(sysroot, "ostree=/../../etc", plainRoot);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sealroot: refused \(target\): Cannot resolve ostree target/);
  });
});

describe("sealroot verify holds a signed commit to the initramfs's anti-rollback floor (issue 12 item 3)", () => {
  // commit 2: timestamp 2025-01-02 00:00:00 UTC, version "2"
  const TS = 1735776000;
  const floorRoot = (floor: string) => initramfsRoot(`${SIGNED}[sealroot]\n${floor}`);
  const belowTs = (min: number) =>
    line(
      "commit",
      `Cannot boot commit "${C2}": timestamp ${TS} (2025-01-02 00:00:00 UTC), expected at least min-timestamp ${min} (${new Date(
        min * 1000,
      )
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, " UTC")})`,
    );

  it("boots a commit at the floor and records it", () => {
    const { code, d } = json(
      sysroot,
      `root=LABEL=root ${D0}`,
      floorRoot(`min-timestamp = ${TS}\nmin-version = 2\n`),
    );
    expect(code).toBe(0);
    expect(d.floor).toEqual({ minTimestamp: String(TS), minVersion: "2" });
  });

  it("refuses a commit older than min-timestamp at stage commit, with both values", () => {
    const r = verify(sysroot, D0, floorRoot(`min-timestamp = ${TS + 1}\n`));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(belowTs(TS + 1));
  });

  it("refuses a commit whose version sorts below min-version, as strverscmp orders them", () => {
    const r = verify(sysroot, D0, floorRoot("min-version = 10\n"));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      line("commit", `Cannot boot commit "${C2}": version "2", expected at least min-version "10"`),
    );
  });

  it("lets a kernel argument raise the floor, never lower it", () => {
    expect(verify(sysroot, `${D0} sealroot.min-timestamp=${TS + 1}`, signedRoot).stderr).toBe(
      belowTs(TS + 1),
    );
    const lowered = verify(
      sysroot,
      `${D0} sealroot.min-timestamp=0 sealroot.min-version=1`,
      floorRoot(`min-timestamp = ${TS + 1}\n`),
    );
    expect(lowered.stderr).toBe(belowTs(TS + 1));
  });

  it("refuses a floor that is not a number", () => {
    const r = verify(sysroot, D0, floorRoot("min-timestamp = soon\n"));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/min-timestamp "soon": not a number, expected unix seconds/);
  });
});
