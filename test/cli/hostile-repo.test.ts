import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode } from "../../src/formats/gvariant.ts";
import {
  decodeCommitmeta,
  ED25519_SIGNATURE_KEY,
  ed25519Signatures,
} from "../../src/formats/ostree/objects.ts";
import { copyOf, sealroot } from "../helpers/cli.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C2 } from "../helpers/golden.ts";
import {
  dagRepo,
  framingBombCommitmeta,
  junkSignaturesCommitmeta,
  rawVariant,
  stringBombCommitmeta,
} from "../helpers/hostile.ts";

// Issue 11, items 1, 2 and 9, through the compiled binary: a hostile `.commitmeta` (crafted framing, a
// huge string, 10,000 junk signatures) and a dirtree DAG that names 201 million paths are refused at once
// with exit 1 and one line. bench/hostile.ts measures the time and memory this takes.
const D0 = "ostree=/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const KEYPATH = "/etc/ostree/initramfs-root-binding.key";
const MiB = 1 << 20;
const commitmeta = (sysroot: string) => join(sysroot, "ostree/repo/objects/59", `${C2.slice(2)}.commitmeta`);

let golden: string;
let signedRoot: string;
/** Directories made here (sysroot copies hold up to 32 MiB of bomb each), removed at the end. */
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
beforeAll(() => {
  golden = extracted("ostree/sysroot.tar");
  signedRoot = mkdtempSync(join(tmpdir(), "sealroot-initrd-"));
  made.push(signedRoot);
  mkdirSync(join(signedRoot, "usr/lib/ostree"), { recursive: true });
  mkdirSync(join(signedRoot, "etc/ostree"), { recursive: true });
  writeFileSync(join(signedRoot, "usr/lib/ostree/prepare-root.conf"), "[composefs]\nenabled = signed\n");
  copyFileSync(join(OSTREE, "keys/ed25519.pub"), join(signedRoot, KEYPATH));
});

/** Runs the binary, timed. */
function run(...args: string[]) {
  const t0 = performance.now();
  const r = sealroot(...args);
  return { ...r, ms: performance.now() - t0 };
}

/** A refusal: exit 1, exactly `line` on stderr, nothing on stdout, and quick. */
function expectRefusal(r: ReturnType<typeof run>, line: string): void {
  expect(r.stderr).toBe(`${line}\n`);
  expect(r.stdout).toBe("");
  expect(r.code).toBe(1);
  expect(r.ms).toBeLessThan(5_000); // natively well under 1 s (bench/hostile.ts); loose for a loaded CI
}

/** A copy of the golden sysroot whose commit 2 has `meta` as its `.commitmeta`. */
function withCommitmeta(meta: Uint8Array): string {
  const s = copyOf(golden);
  made.push(dirname(s));
  writeFileSync(commitmeta(s), meta);
  return s;
}

const verify = (s: string) => run("verify", "--sysroot", s, "--cmdline", D0, "--root", signedRoot);

describe("sealroot verify refuses a hostile .commitmeta (items 1 and 2)", () => {
  it.each([
    ["4 MiB of nested framing", () => framingBombCommitmeta(4 * MiB), 4 * MiB],
    ["a 32 MiB string", () => stringBombCommitmeta(32 * MiB), 32 * MiB],
  ])("%s, by its size", (_, make, size) => {
    const s = withCommitmeta(make());
    expectRefusal(
      verify(s),
      `sealroot: refused (commit): Cannot read detached metadata "${commitmeta(s)}": ${size} bytes, expected at most 1048576`,
    );
  });

  it("10,000 junk signatures, without trying them", () => {
    const s = withCommitmeta(junkSignaturesCommitmeta(10_000));
    expectRefusal(
      verify(s),
      `sealroot: refused (signature): Cannot verify commit ${C2} with the keys in "${KEYPATH}": 10000 signatures, expected at most 256 signatures`,
    );
    const r = run(
      "verify-commit",
      "--repo",
      join(s, "ostree/repo"),
      "--commit",
      C2,
      "--keys",
      join(OSTREE, "keys/ed25519.pub"),
    );
    expectRefusal(
      r,
      `sealroot: Cannot verify commit ${C2}: 10000 signatures, expected at most 256 signatures`,
    );
  });

  it("but boots a commit whose signature follows 1 MiB of nested framing, which it never decodes", () => {
    const sigs = ed25519Signatures(decodeCommitmeta(new Uint8Array(readFileSync(commitmeta(golden)))));
    const s = withCommitmeta(
      framingBombCommitmeta(MiB, [[ED25519_SIGNATURE_KEY, rawVariant("aay", encode("aay", sigs))]]),
    );
    const r = verify(s);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.ms).toBeLessThan(5_000);
  });
});

describe("sealroot ls -R and composefs-image refuse a dirtree DAG of 201 million paths (item 9)", () => {
  let dag: ReturnType<typeof dagRepo>;
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "sealroot-dag-"));
    made.push(dir);
    dag = dagRepo(dir);
  });

  it("ls -R", () => {
    expectRefusal(
      run("ls", "--repo", dag.repo, "--ref", "dag", "-R"),
      `sealroot: Cannot list tree at "/": more than 1000000 entries, expected at most 1000000`,
    );
  });

  it("composefs-image, writing nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "sealroot-dag-image-"));
    made.push(dir);
    const image = join(dir, "dag.cfs");
    expectRefusal(
      run("composefs-image", "--repo", dag.repo, "--ref", "dag", image),
      `sealroot: Cannot build the composefs tree at "/": more than 1000000 entries, expected at most 1000000`,
    );
    expect(existsSync(image)).toBe(false);
  });

  it("ls without -R lists the root and its two entries", () => {
    const r = run("ls", "--repo", dag.repo, "--ref", "dag");
    expect([
      r.code,
      r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(" ").pop()),
    ]).toEqual([0, ["/", "/d0", "/d1"]]);
  });
});
