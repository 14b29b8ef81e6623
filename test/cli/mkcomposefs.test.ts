// `sealroot mkcomposefs` as users run it (the compiled binary): every golden dumpfile case and variant gives
// mkcomposefs 1.0.8's pinned image and fs-verity digest (also through --print-digest[-only], stdin and
// stdout); every should-fail input exits 1 with one line naming file, line and field and leaves no image;
// the directory-tree case with each flag gives the pinned image and digest-store objects; the argument
// handling follows mkcomposefs's getopt_long rules and messages.

import { execFileSync, type SpawnSyncOptions, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { SealrootError } from "../../src/base/errors.ts";
import { sha256 } from "../../src/base/hash.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { parseDumpfile } from "../../src/formats/composefs/dumpfile.ts";
import { writeErofs } from "../../src/formats/erofs/write.ts";
import { fsverityDigest } from "../../src/verify/fsverity.ts";
import { BIN } from "../helpers/cli.ts";
import { COMPOSEFS, composefsExpected, ROOT } from "../helpers/fixtures.ts";
import { BOUNDARY_CASES } from "../helpers/xattr-boundary.ts";

interface StoreObject {
  path: string;
  size: number;
  fsverity_digest: string;
}
interface Variant {
  sha256: string;
  fsverity_digest: string;
  print_digest?: string;
  size: number;
  options: string[];
  identical_to?: string;
  digest_store_objects?: StoreObject[];
}
interface Case {
  kind: "dumpfile" | "directory" | "should-fail";
  input: string;
  variants?: Record<string, Variant>;
  options?: string[];
  env?: Record<string, string>;
  exit_code?: number;
  stderr?: string;
}

const CASES = Object.entries((composefsExpected() as { cases: Record<string, Case> }).cases);
const ofKind = (k: Case["kind"]) => CASES.filter(([, c]) => c.kind === k);
/** Variants, with those recorded as `identical_to` another taking that one's facts (and their own options). */
const variantsOf = (k: Case["kind"]) =>
  ofKind(k).flatMap(([name, c]) =>
    Object.entries(c.variants ?? {}).map(([variant, v]) => {
      const same = v.identical_to === undefined ? v : { ...c.variants![v.identical_to]!, options: v.options };
      expect(same.sha256).toBe(v.sha256);
      return { name, variant, input: c.input, v: same };
    }),
  );

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}
function run(args: string[], opts: SpawnSyncOptions = {}, bin = BIN): Run {
  const r = spawnSync(bin, args, { cwd: COMPOSEFS, maxBuffer: 1 << 28, timeout: 120_000, ...opts });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout as Buffer, stderr: String(r.stderr) };
}
const mk = (args: string[], opts: SpawnSyncOptions = {}) => run(["mkcomposefs", ...args], opts);

const scratch = () => mkdtempSync(join(tmpdir(), "sealroot-mkcfs-"));
const imageFacts = (bytes: Uint8Array) => ({
  sha256: toHex(sha256(bytes)),
  fsverity: toHex(fsverityDigest(bytes)),
});

/** Every file under `store` as digest_store_objects lists them, plus its permission bits. */
function storeListing(store: string): (StoreObject & { mode: number })[] {
  const out: (StoreObject & { mode: number })[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else {
        const bytes = readFileSync(p);
        out.push({
          path: relative(store, p),
          size: st.size,
          fsverity_digest: toHex(fsverityDigest(bytes)),
          mode: st.mode & 0o7777,
        });
      }
    }
  };
  walk(store);
  return out;
}

describe("sealroot mkcomposefs --from-file reproduces mkcomposefs 1.0.8", () => {
  const rows = variantsOf("dumpfile");

  it("covers every dumpfile case in every variant", () => {
    expect(ofKind("dumpfile").length).toBe(37);
    expect(rows.length).toBe(37 * 4);
  });

  it.each(rows)("$name ($variant): pinned image and --print-digest line", ({ input, v }) => {
    const out = join(scratch(), "out.cfs");
    const r = mk([...v.options, "--print-digest", "--from-file", input, out]);
    expect({ code: r.code, stderr: r.stderr, stdout: String(r.stdout) }).toEqual({
      code: 0,
      stderr: "",
      stdout: `${v.fsverity_digest}\n`,
    });
    const bytes = readFileSync(out);
    expect(bytes.length).toBe(v.size);
    expect(imageFacts(bytes)).toEqual({ sha256: v.sha256, fsverity: v.fsverity_digest });
  });

  it.each(rows)("$name ($variant): --print-digest-only prints the pinned digest", ({ input, v }) => {
    const r = mk([...v.options, "--print-digest-only", "--from-file", input]);
    expect({ code: r.code, stderr: r.stderr, stdout: String(r.stdout) }).toEqual({
      code: 0,
      stderr: "",
      stdout: `${v.print_digest ?? v.fsverity_digest}\n`,
    });
  });

  it("reads the dumpfile from stdin for SOURCE `-` and writes the image to stdout for IMAGE `-`", () => {
    const v = (composefsExpected() as { cases: Record<string, Case> }).cases["os-tree"]!.variants!.default!;
    const r = mk(["--from-file", "-", "-"], { input: readFileSync(join(COMPOSEFS, "os-tree.dump")) });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(imageFacts(r.stdout)).toEqual({ sha256: v.sha256, fsverity: v.fsverity_digest });
  });

  it("prints the digest line after the image bytes when IMAGE is `-` with --print-digest", () => {
    const v = (composefsExpected() as { cases: Record<string, Case> }).cases["whiteouts"]!.variants!.default!;
    const r = mk(["--print-digest", "--from-file", "whiteouts.dump", "-"]);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(v.size + 65);
    expect(imageFacts(r.stdout.subarray(0, v.size))).toEqual({
      sha256: v.sha256,
      fsverity: v.fsverity_digest,
    });
    expect(String(r.stdout.subarray(v.size))).toBe(`${v.fsverity_digest}\n`);
  });

  it("accepts options after the operands and unique prefixes of option names, as getopt_long", () => {
    const v = (composefsExpected() as { cases: Record<string, Case> }).cases["symlinks"]!.variants!.v1!;
    const r = mk(["symlinks.dump", "--from", "--min-v", "1", "--max-version=1", "--print-digest-o"]);
    expect({ code: r.code, stdout: String(r.stdout), stderr: r.stderr }).toEqual({
      code: 0,
      stdout: `${v.fsverity_digest}\n`,
      stderr: "",
    });
  });
});

describe("sealroot mkcomposefs rejects every should-fail dumpfile", () => {
  // [case, line, field] named by the one-line error (null: no single line, e.g. an empty input).
  const WHERE: Record<string, [number | null, string | null]> = {
    "fail-bad-escape": [2, "PATH"],
    "fail-bad-hex": [2, "PATH"],
    "fail-trailing-backslash": [2, "XATTR"],
    "fail-missing-fields": [2, "NLINK"],
    "fail-dotdot-name": [3, "PATH"],
    "fail-hardlink-missing": [2, "PAYLOAD"],
    "fail-name-256": [2, "PATH"],
    "fail-content-size": [2, "CONTENT"],
    "fail-inline-5001": [2, "CONTENT"],
    "fail-symlink-4096": [2, "PAYLOAD"],
    "fail-duplicate-path": [3, "PATH"],
    "fail-parent-missing": [2, "PATH"],
    "fail-no-root": [1, "PATH"],
    "fail-xattr-no-equals": [2, "XATTR"],
    "fail-xattr-over-limit": [2, "XATTR"],
    "fail-empty-input": [null, null],
    "fail-too-many-chunks": [2, "SIZE"],
    "fail-strict-no-newline": [2, "LINE"],
    "fail-max-version-2": [null, null],
    "fail-trailing-slash": [2, "PATH"],
    "fail-content-too-long": [2, "CONTENT"],
    "fail-xattr-empty-key": [2, "XATTR"],
    "fail-mode-at-only": [2, "MODE"],
    "fail-bad-nlink": [2, "NLINK"],
    "fail-mtime-no-dot": [2, "MTIME"],
    "fail-invalid-mode": [2, "MODE"],
    "fail-root-not-dir": [1, "MODE"],
    "fail-two-roots": [2, "PATH"],
    "fail-parent-not-dir": [3, "PATH"],
    "fail-hardlink-no-target": [2, "PAYLOAD"],
    "fail-bad-uid": [2, "UID"],
  };
  const fails = ofKind("should-fail");

  it("covers every should-fail case of the golden set", () => {
    expect(fails.map(([n]) => n).sort()).toEqual(Object.keys(WHERE).sort());
  });

  /** The library's message for the case: the CLI must print exactly it, prefixed, on one line. */
  function libraryMessage(c: Case): string {
    const strict = c.env?.CFS_PARSE_STRICT !== undefined;
    try {
      const tree = parseDumpfile(readFileSync(join(COMPOSEFS, c.input)), { strict, path: c.input });
      writeErofs(tree, { version: 0, maxVersion: c.options?.includes("--max-version=2") ? 2 : 1 });
    } catch (e) {
      if (e instanceof SealrootError) return e.message;
      throw e;
    }
    throw new Error(`${c.input} did not fail in the library`);
  }

  it.each(fails)("%s: exit 1 (as mkcomposefs), one line naming file/line/field, no image left", (name, c) => {
    const dir = scratch();
    const out = join(dir, "out.cfs");
    const r = mk([...(c.options ?? []), "--from-file", c.input, out], {
      env: { ...process.env, ...(c.env ?? {}) },
    });
    expect(c.exit_code).toBe(1);
    expect(r.code).toBe(1);
    expect(String(r.stdout)).toBe("");
    expect(r.stderr).toBe(`sealroot: ${libraryMessage(c)}\n`);
    const [line, field] = WHERE[name]!;
    if (line !== null) expect(r.stderr).toContain(`Cannot parse "${c.input}" line ${line}, field ${field}: `);
    expect(readdirSync(dir)).toEqual([]); // mkcomposefs leaves a 0-byte file here
  });

  it.each([
    [
      "whiteout-own-escaped-whiteout",
      'Cannot write composefs image for "/w" ("in.dump" line 2, field XATTR): replacing its xattr "trusted.overlay.overlay.whiteout" (written as "trusted.overlay.whiteout") of 3 bytes takes the writer\'s xattr budget below 0, which libcomposefs 1.0.8 refuses (ERANGE), expected a value of at most 0 bytes',
    ],
    [
      "whiteout-parent-own-user-opaque-109",
      'Cannot write composefs image for "/d" ("in.dump" line 2, field XATTR): replacing its xattr "user.overlay.opaque" of 109 bytes takes the writer\'s xattr budget below 0, which libcomposefs 1.0.8 refuses (ERANGE), expected a value of at most 108 bytes',
    ],
  ])("refuses %s as mkcomposefs's writer does (ERANGE), naming file, line and field", (name, message) => {
    const dir = scratch();
    writeFileSync(join(dir, "in.dump"), BOUNDARY_CASES.find((c) => c.name === name)!.dump);
    const r = mk(["--from-file", "in.dump", "out.cfs"], { cwd: dir });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: `sealroot: ${message}\n` });
    expect(readdirSync(dir)).toEqual(["in.dump"]);
  });

  it("refuses a hardlink line whose target is a directory (a deliberate difference: mkcomposefs writes it)", () => {
    const dir = scratch();
    writeFileSync(
      join(dir, "in.dump"),
      "/ 0 40755 2 0 0 0 0.0 - - -\n/d 0 40755 2 0 0 0 0.0 - - -\n/l 0 @100644 1 0 0 0 0.0 /d - -\n",
    );
    const r = mk(["--from-file", "in.dump", "out.cfs"], { cwd: dir });
    expect({ code: r.code, stderr: r.stderr }).toEqual({
      code: 1,
      stderr:
        'sealroot: Cannot parse "in.dump" line 3, field PAYLOAD: "/d" is a directory, expected a non-directory\n',
    });
    expect(readdirSync(dir)).toEqual(["in.dump"]);
  });

  it("leaves an existing IMAGE untouched when it fails", () => {
    const out = join(scratch(), "keep.cfs");
    writeFileSync(out, "previous image");
    const r = mk(["--from-file", "fail-bad-uid.dump", out]);
    expect(r.code).toBe(1);
    expect(readFileSync(out, "utf8")).toBe("previous image");
  });

  it("treats CFS_PARSE_STRICT as set whatever its value (mkcomposefs tests getenv() != NULL)", () => {
    const r = mk(["--print-digest-only", "--from-file", "fail-strict-no-newline.dump"], {
      env: { ...process.env, CFS_PARSE_STRICT: "" },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("field LINE: the last line has no trailing newline");
    const lenient = mk(["--print-digest-only", "--from-file", "fail-strict-no-newline.dump"], {
      env: { ...process.env, CFS_PARSE_STRICT: undefined },
    });
    expect(lenient.code).toBe(0);
  });
});

/**
 * The tree extracted as the MANIFEST says (root, xattrs, numeric owners) into a private directory, so no
 * other test touching the shared copy can change an entry or the root's mtime, both part of the image.
 */
let treeDir: string | undefined;
function extractedTree(): string {
  if (treeDir === undefined) {
    const dir = join(scratch(), "tree");
    mkdirSync(dir);
    const tar = join(COMPOSEFS, "tree-basic.tar");
    execFileSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", tar, "-C", dir]);
    treeDir = dir;
  }
  return treeDir;
}

describe("sealroot mkcomposefs SOURCE-DIRECTORY reproduces mkcomposefs 1.0.8 with a digest store", () => {
  const rows = variantsOf("directory");
  const FLAG: Record<string, string[]> = {
    default: [],
    "use-epoch": ["--use-epoch"],
    "skip-xattrs": ["--skip-xattrs"],
    "user-xattrs": ["--user-xattrs"],
    "skip-devices": ["--skip-devices"],
  };

  it("covers the directory case with no flag and each of the four flags", () => {
    expect(rows.map((r) => `${r.name}/${r.variant}`).sort()).toEqual(
      Object.keys(FLAG)
        .map((f) => `tree-basic/${f}`)
        .sort(),
    );
  });

  it.each(rows)("$name ($variant): pinned image, digest line and store objects", ({ input, variant, v }) => {
    expect(input).toBe("tree-basic.tar");
    const tree = extractedTree();
    const dir = scratch();
    const store = join(dir, "store");
    const out = join(dir, "out.cfs");
    expect(v.options).toEqual(["--digest-store=STORE", ...FLAG[variant]!]);
    const r = mk([`--digest-store=${store}`, ...FLAG[variant]!, "--print-digest", tree, out]);
    expect({ code: r.code, stderr: r.stderr, stdout: String(r.stdout) }).toEqual({
      code: 0,
      stderr: "",
      stdout: `${v.fsverity_digest}\n`,
    });
    expect(imageFacts(readFileSync(out))).toEqual({ sha256: v.sha256, fsverity: v.fsverity_digest });
    const objects = [...v.digest_store_objects!].sort((a, b) => a.path.localeCompare(b.path));
    expect(storeListing(store)).toEqual(objects.map((o) => ({ ...o, mode: 0o644 })));
    expect(statSync(join(store, objects[0]!.path.slice(0, 2))).mode & 0o777).toBe(0o755);
  });

  it("gives the same image without a digest store, and writes no store", () => {
    const v = rows.find((r) => r.variant === "default")!.v;
    const r = mk(["--print-digest-only", extractedTree()]);
    expect({ code: r.code, stdout: String(r.stdout) }).toEqual({ code: 0, stdout: `${v.fsverity_digest}\n` });
  });

  it("keeps objects already in the store (mkcomposefs skips any existing path) and adds the missing ones", () => {
    const v = rows.find((r) => r.variant === "default")!.v;
    const store = join(scratch(), "store");
    const kept = v.digest_store_objects![0]!.path;
    mkdirSync(join(store, kept.slice(0, 2)), { recursive: true });
    writeFileSync(join(store, kept), "stale");
    const r = mk([`--digest-store=${store}/`, "--print-digest-only", extractedTree()]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(store, kept), "utf8")).toBe("stale");
    expect(storeListing(store).map((o) => o.path)).toEqual(v.digest_store_objects!.map((o) => o.path).sort());
    expect(readdirSync(store).filter((n) => n.startsWith("."))).toEqual([]); // no temporary files left
  });

  it.each([
    [
      "a source that is not a directory",
      [join(COMPOSEFS, "os-tree.dump"), "x.cfs"],
      `sealroot: Cannot read source "${join(COMPOSEFS, "os-tree.dump")}": not a directory (mode 0100644), expected a directory\n`,
    ],
    ["a missing source", ["/nonexistent/src", "x.cfs"], 'sealroot: Cannot stat "/nonexistent/src": ENOENT\n'],
    [
      "--skip-xattrs with --user-xattrs (mkcomposefs: EINVAL)",
      ["--skip-xattrs", "--user-xattrs", "/tmp", "x.cfs"],
      "sealroot: Cannot combine --skip-xattrs with --user-xattrs, expected at most one of them\n",
    ],
  ])("refuses %s with one line and exit 1", (_, args, stderr) => {
    const dir = scratch();
    const r = mk(args, { cwd: dir });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("sealroot mkcomposefs arguments follow mkcomposefs (every failure exits 1)", () => {
  it.each([
    [["--from-file"], "No source path specified"],
    [["--from-file", ""], "Empty source path specified"],
    [["--from-file", "a.dump"], "No destination path specified"],
    [["--from-file", "a", "b", "c"], "Too many arguments: 3, expected SOURCE and IMAGE"],
    [
      ["--print-digest-only", "--from-file", "a", "b"],
      "Cannot specify destination path with --print-digest-only",
    ],
    [["--bogus", "a", "b"], "unrecognized option '--bogus'"],
    [
      ["--print", "a", "b"],
      "option '--print' is ambiguous; possibilities: '--print-digest' '--print-digest-only'",
    ],
    [["--from-file=yes", "a", "b"], "option '--from-file' doesn't allow an argument"],
    [["a", "b", "--digest-store"], "option '--digest-store' needs a value"],
    [["--min-version=x", "a", "b"], "Invalid min version x, expected an integer"],
    [["--max-version=", "a", "b"], "Invalid max version , expected an integer"],
    [["--threads=0", "a", "b"], "Invalid threads count 0, expected a positive integer"],
    [["-C", "a", "b"], "invalid option '-C', expected the long options listed by --help"],
  ])("%j: %s", (args, message) => {
    const r = mk(args);
    expect({ code: r.code, stdout: String(r.stdout), stderr: r.stderr }).toEqual({
      code: 1,
      stdout: "",
      stderr: `sealroot: ${message}\n`,
    });
  });

  it("takes an operand after `--` literally, even when it looks like an option", () => {
    const r = mk(["--", "--print-digest-only"]);
    expect(r.stderr).toBe("sealroot: No destination path specified\n");
  });

  it("rejects --max-version=2 like mkcomposefs (exit 1) with the allowed range", () => {
    const r = mk(["--max-version=2", "--print-digest-only", "--from-file", "root-only.dump"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({
      code: 1,
      stderr: "sealroot: Cannot write composefs image: maxVersion 2, expected 0..1\n",
    });
  });

  it("accepts --threads=N (mkcomposefs's parallelism knob) and gives the same image", () => {
    const r = mk(["--threads=4", "--print-digest-only", "--from-file", "root-only.dump"]);
    expect(r.code).toBe(0);
  });
});

// The binary behaves as mkcomposefs when invoked under that name (a symlink, as packages install it);
// src/main.ts dispatches on basename(process.argv0).
const mainWired = readFileSync(join(ROOT, "src/main.ts"), "utf8").includes("runMkcomposefs");

describe.skipIf(!mainWired)("the binary invoked as `mkcomposefs`", () => {
  const link = join(scratch(), "mkcomposefs");
  if (mainWired) symlinkSync(BIN, link);

  it("writes the pinned image from mkcomposefs's own command line", () => {
    const v = (composefsExpected() as { cases: Record<string, Case> }).cases["xattrs-shared"]!.variants!.v1!;
    const out = join(scratch(), "out.cfs");
    const r = run(["--min-version=1", "--max-version=1", "--from-file", "xattrs-shared.dump", out], {}, link);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(imageFacts(readFileSync(out))).toEqual({ sha256: v.sha256, fsverity: v.fsverity_digest });
  });

  it("prefixes its errors with `mkcomposefs:` and exits 1", () => {
    const r = run(["--from-file", "fail-bad-uid.dump", "/tmp/never-written.cfs"], {}, link);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mkcomposefs: Cannot parse "fail-bad-uid.dump" line 2, field UID: /);
    expect(existsSync("/tmp/never-written.cfs")).toBe(false);
  });

  it("prints its usage for --help (exit 0)", () => {
    const r = run(["--help"], {}, link);
    expect(r.code).toBe(0);
    expect(String(r.stdout)).toMatch(/^Usage: mkcomposefs \[OPTIONS\] SOURCE IMAGE\n/);
  });
});
