import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loosePath } from "../../src/formats/ostree/objects.ts";
import { copyOf, sealroot } from "../helpers/cli.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C2, C2_DIGEST } from "../helpers/golden.ts";

// Issue 11: `sealroot verify` on a physical root written by an attacker refuses at once with one line —
// no hang on a FIFO, no read of /dev/zero, no hashing of a huge sparse image, no bind of a link out of the
// sysroot, no key taken from the disk it is to verify.
const D0 = "ostree=/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const KEY = join(OSTREE, "keys/ed25519.pub");
const KEYPATH = "/etc/ostree/initramfs-root-binding.key";

let golden: string;
let signedRoot: string;
beforeAll(() => {
  golden = extracted("ostree/sysroot.tar");
  signedRoot = mkdtempSync(join(tmpdir(), "sealroot-initrd-"));
  mkdirSync(join(signedRoot, "usr/lib/ostree"), { recursive: true });
  mkdirSync(join(signedRoot, "etc/ostree"), { recursive: true });
  writeFileSync(join(signedRoot, "usr/lib/ostree/prepare-root.conf"), "[composefs]\nenabled = signed\n");
  copyFileSync(KEY, join(signedRoot, KEYPATH));
});

const deployment = (s: string) => join(s, "ostree/deploy/refos/deploy", `${C2}.0`);

/** A copy of the golden sysroot with `tamper` applied. */
function hostile(tamper: (sysroot: string) => void): string {
  const s = copyOf(golden);
  tamper(s);
  return s;
}

/** `sealroot verify`, timed; a refusal has exit 1 and exactly one stderr line. */
function verify(sysroot: string, cmdline: string | undefined, ...extra: string[]) {
  const t0 = performance.now();
  const r = sealroot(
    "verify",
    "--sysroot",
    sysroot,
    ...(cmdline === undefined ? [] : ["--cmdline", cmdline]),
    ...extra,
  );
  return { ...r, ms: performance.now() - t0 };
}

function expectRefusal(r: ReturnType<typeof verify>, line: string): void {
  expect(r.stderr).toBe(`${line}\n`);
  expect(r.code).toBe(1);
  expect(r.ms).toBeLessThan(10_000); // natively well under 1 s (bench/hostile.ts); loose for a loaded CI
}

const fifo = (path: string) => {
  rmSync(path, { recursive: true, force: true });
  execFileSync("mkfifo", [path]);
};
const link = (target: string, path: string) => {
  rmSync(path, { recursive: true, force: true });
  symlinkSync(target, path);
};

describe("sealroot verify refuses untrusted files that are not regular files (item 4)", () => {
  it("a FIFO as the repository config", () => {
    const s = hostile((s) => fifo(join(s, "ostree/repo/config")));
    expectRefusal(
      verify(s, D0, "--root", signedRoot),
      `sealroot: refused (commit): Cannot read repository config "${s}/ostree/repo/config": a FIFO, expected a regular file`,
    );
  });

  it("a link to /dev/zero as the repository config", () => {
    const s = hostile((s) => link("/dev/zero", join(s, "ostree/repo/config")));
    expectRefusal(
      verify(s, D0, "--root", signedRoot),
      `sealroot: refused (commit): Cannot read repository config "${s}/ostree/repo/config": a symbolic link, expected a regular file`,
    );
  });

  it("ot-signed=/dev/zero", () => {
    expectRefusal(
      verify(golden, `${D0} ot-signed=/dev/zero`, "--root", "/"),
      'sealroot: refused (keys): Cannot read public key file "/dev/zero": a character device, expected a regular file',
    );
  });

  it("a FIFO as a boot entry, when the command line comes from the default entry", () => {
    const s = hostile((s) => fifo(join(s, "boot/loader/entries/ostree-2.conf")));
    expectRefusal(
      verify(s, undefined, "--root", signedRoot),
      `sealroot: Cannot read boot entry "${s}/boot/loader/entries/ostree-2.conf": a FIFO, expected a regular file`,
    );
  });

  it("a FIFO as the initramfs's prepare-root.conf", () => {
    const root = mkdtempSync(join(tmpdir(), "sealroot-initrd-"));
    mkdirSync(join(root, "etc/ostree"), { recursive: true });
    execFileSync("mkfifo", [join(root, "etc/ostree/prepare-root.conf")]);
    expectRefusal(
      verify(golden, D0, "--root", root),
      `sealroot: Cannot read prepare-root.conf "${root}/etc/ostree/prepare-root.conf": a FIFO, expected a regular file`,
    );
  });
});

describe("sealroot verify and the composefs image (item 5)", () => {
  const image = (s: string) => join(deployment(s), ".ostree.cfs");
  it.each([
    ["a symbolic link", (p: string) => link("/dev/zero", p)],
    ["a FIFO", fifo],
    [
      "a directory",
      (p: string) => {
        rmSync(p);
        mkdirSync(p);
      },
    ],
  ])("names an image that is %s, instead of calling it missing", (kind, make) => {
    const s = hostile((s) => make(image(s)));
    for (const cmdline of [`${D0} ot-composefs=digest=${C2_DIGEST}`, `${D0} ot-composefs=maybe`]) {
      expectRefusal(
        verify(s, cmdline, "--root", "/"),
        `sealroot: refused (image): Cannot read composefs image "${image(s)}": ${kind}, expected a regular file`,
      );
    }
  });

  it("does not hash a 64 GiB sparse image when no digest is expected, and caps it when one is", () => {
    const s = hostile((s) => truncateSync(image(s), 64 * 2 ** 30));
    const maybe = verify(s, `${D0} ot-composefs=on`, "--root", "/");
    expect(maybe.code).toBe(0);
    expect(maybe.stdout).toContain("no verity, image digest not required");
    expect(maybe.ms).toBeLessThan(10_000);
    expectRefusal(
      verify(s, `${D0} ot-composefs=digest=${C2_DIGEST}`, "--root", "/"),
      `sealroot: refused (image): Cannot read composefs image "${image(s)}": ${64 * 2 ** 30} bytes, expected at most ${2 ** 30}`,
    );
  });
});

describe("sealroot verify refuses /etc and /var bind sources that are not directories (item 6)", () => {
  it.each([
    ["etc", "the deployment's /etc", (s: string) => join(deployment(s), "etc")],
    ["var", "the stateroot's /var", (s: string) => join(s, "ostree/deploy/refos/var")],
  ])("%s -> /", (_name, role, where) => {
    const s = hostile((s) => link("/", where(s)));
    expectRefusal(
      verify(s, `${D0} ot-composefs=off`, "--root", "/"),
      `sealroot: refused (target): Cannot bind ${role} from "${where(s)}": a symbolic link, expected a directory inside the physical root`,
    );
  });
});

describe("sealroot verify refuses key paths inside the unverified physical root (item 7)", () => {
  it.each(["", "/.", "/sub/..", "/"])("ot-signed=<sysroot>%s<key>", (mid) => {
    const s = hostile((s) => copyFileSync(KEY, join(s, "planted.pub")));
    const karg = `${s}${mid}/planted.pub`;
    expectRefusal(
      verify(s, `${D0} ot-signed=${karg}`, "--root", "/"),
      `sealroot: refused (keys): Cannot use public key file "${karg}": it resolves to "${s}/planted.pub" inside the physical root "${s}", which is what it is to verify, expected a key file in the initramfs`,
    );
  });
});

describe("sealroot verify without --root takes trust anchors from the commit, not the writable /etc (item 8)", () => {
  it("ignores a key planted in the deployment's /etc and says where key paths resolve", () => {
    const s = hostile((s) => {
      mkdirSync(join(deployment(s), "etc/ostree"));
      copyFileSync(KEY, join(deployment(s), KEYPATH));
    });
    expectRefusal(
      verify(s, D0),
      `sealroot: refused (keys): Cannot read public key file "${KEYPATH}": not in commit ${C2}'s own tree (/etc as /usr/etc), expected the key file an initramfs built from it would hold (or --root naming the initramfs)`,
    );
  });

  it("ignores a prepare-root.conf planted in the deployment's /etc (the commit's says signed)", () => {
    const s = hostile((s) => {
      mkdirSync(join(deployment(s), "etc/ostree"));
      writeFileSync(join(deployment(s), "etc/ostree/prepare-root.conf"), "[composefs]\nenabled = no\n");
    });
    expect(verify(s, D0).stderr).toMatch(/^sealroot: refused \(keys\): /);
  });

  it("refuses when the commit the anchors come from does not hash to its name", () => {
    const s = hostile((s) => {
      const obj = (c: string) => join(s, "ostree/repo/objects", loosePath(c, "commit"));
      const c1 = "2a633663545ae4334d786c81269af2c9248fbd4f682f62b251cab506961bb79a";
      rmSync(obj(C2));
      renameSync(obj(c1), obj(C2));
    });
    const r = verify(s, D0);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sealroot: Cannot verify object ".*\.commit": content hashes to 2a63/);
  });
});
