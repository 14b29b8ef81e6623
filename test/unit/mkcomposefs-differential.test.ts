// Differential proof that sealroot's dumpfile parser and EROFS writer accept exactly what the real
// mkcomposefs 1.0.8 (`--from-file`) accepts and write the same bytes, in format versions 0 and 1 and the
// default range: the xattr boundary cases (test/helpers/xattr-boundary.ts), seeded random dumpfiles aimed
// at the xattr budgets (own xattrs near 32767, names the overlay rewrite escapes or replaces, whiteouts
// under directories with xattrs) and seeded random trees (test/helpers/random-tree.ts) printed as
// dumpfiles; seeded random directory trees built on disk (files inline and by digest, directories,
// symlinks, fifos, hardlinks, user.* xattrs, and as root trusted.overlay.* xattrs and whiteouts), read as
// a directory SOURCE by both; and the inputs it accepts that sealroot refuses on purpose. Skips only when
// the reference binary is absent (test/helpers/reference-mkcomposefs.ts).

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/base/errors.ts";
import { treeFromDirectory } from "../../src/cli/mkcomposefs.ts";
import { utf8 } from "../../src/formats/bytes.ts";
import { dumpTree } from "../../src/formats/composefs/dump-print.ts";
import { parseDumpfile } from "../../src/formats/composefs/dumpfile.ts";
import { writeErofs } from "../../src/formats/erofs/write.ts";
import { buildTree, treeOp } from "../helpers/random-tree.ts";
import { referenceMissing, runReference, runReferenceArgs } from "../helpers/reference-mkcomposefs.ts";
import { BOUNDARY_CASES, fill, LIMIT, ROOT_LINE, VERSIONS } from "../helpers/xattr-boundary.ts";

type Version = (typeof VERSIONS)[number];
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Both tools on one dumpfile in one version: the image sha256 or "refused", and what each said. */
function both(dump: string, v: Version) {
  const ref = runReference(v.args, dump);
  if (ref.code !== 0 && ref.code !== 1) throw new Error(`mkcomposefs exited ${ref.code}: ${ref.stderr}`);
  const reference = ref.code === 0 ? sha(ref.stdout) : "refused";
  let sealroot: string;
  let said = "";
  try {
    sealroot = sha(
      writeErofs(parseDumpfile(utf8.encode(dump)), { version: v.version, maxVersion: v.maxVersion }),
    );
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    sealroot = "refused";
    said = e.message;
  }
  return {
    reference,
    sealroot,
    why: `mkcomposefs: ${ref.stderr.trim() || "ok"} | sealroot: ${said || "ok"}`,
  };
}

/** Outcomes seen, to show that the generated inputs reach both sides of each limit. */
const seen = { accepted: 0, parser: 0, writer: 0 };

function expectSame(dump: string, v: Version): void {
  const r = both(dump, v);
  seen[
    r.reference !== "refused" ? "accepted" : r.why.includes("sealroot: Cannot parse") ? "parser" : "writer"
  ]++;
  expect(r.sealroot, `${v.name}: ${r.why}\n${dump.length > 2000 ? `${dump.slice(0, 2000)}…` : dump}`).toBe(
    r.reference,
  );
}

const missing = referenceMissing();

describe.skipIf(missing !== undefined)(
  `sealroot writes the bytes mkcomposefs 1.0.8 writes, and refuses what it refuses${missing ? ` (skipped: ${missing})` : ""}`,
  () => {
    const rows = BOUNDARY_CASES.flatMap((c) => VERSIONS.map((v) => ({ ...c, v, version: v.name })));
    it.each(rows)("$name ($version)", ({ dump, v }) => expectSame(dump, v));

    it("agrees on random dumpfiles around the xattr budgets", () => {
      Object.assign(seen, { accepted: 0, parser: 0, writer: 0 });
      fc.assert(
        fc.property(budgetDumpfile, fc.constantFrom(...VERSIONS), (dump, v) => expectSame(dump, v)),
        { seed: 110010, numRuns: 150 },
      );
      expect(seen).toEqual({ accepted: 82, parser: 61, writer: 7 });
    });

    it("agrees on random trees printed as dumpfiles", () => {
      Object.assign(seen, { accepted: 0, parser: 0, writer: 0 });
      fc.assert(
        fc.property(fc.array(treeOp, { maxLength: 30 }), fc.constantFrom(...VERSIONS), (ops, v) =>
          expectSame(dumpTree(buildTree(ops)), v),
        ),
        { seed: 424243, numRuns: 100 },
      );
      expect(seen).toEqual({ accepted: 96, parser: 4, writer: 0 });
    });
  },
);

/** One entry of a random source directory, under the directory `parent` (modulo those made so far). */
const dirOp = fc.record({
  parent: fc.nat(),
  name: fc.stringMatching(/^[a-z0-9_-][a-z0-9._-]{0,7}$/),
  kind: fc.constantFrom("file", "file", "file", "dir", "dir", "symlink", "fifo", "hardlink", "whiteout"),
  size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 65, max: 9000 })),
  perm: fc.integer({ min: 0, max: 0o777 }),
  fill: fc.nat({ max: 255 }),
  xattrs: fc.array(
    fc.record({
      key: fc.constantFrom("user.a", "user.mime_type", "trusted.overlay.opaque", "trusted.overlay.redirect"),
      value: fc.uint8Array({ maxLength: 40 }),
    }),
    { maxLength: 3 },
  ),
});
type DirOp = typeof dirOp extends fc.Arbitrary<infer T> ? T : never;

const isRoot = process.getuid?.() === 0;

/**
 * Builds the directory the ops describe under a fresh temporary directory and returns its path. Names
 * already taken are skipped; trusted.* xattrs and whiteouts (char 0:0) only as root; every xattr is set
 * by one `setfattr --restore` run.
 */
function buildSourceDir(ops: DirOp[], seen: Map<string, number>): string {
  const top = mkdtempSync(join(tmpdir(), "sealroot-difftree-"));
  const root = join(top, "src");
  mkdirSync(root);
  const dirs = [root];
  const files: string[] = [];
  const taken = new Set<string>();
  const restore: string[] = [];
  for (const op of ops) {
    const parent = dirs[op.parent % dirs.length]!;
    const path = join(parent, op.name);
    if (taken.has(path)) continue;
    let kind = op.kind;
    if (kind === "whiteout" && !isRoot) kind = "fifo";
    if (kind === "hardlink" && files.length === 0) kind = "file";
    taken.add(path);
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
    if (kind === "file") {
      writeFileSync(
        path,
        new Uint8Array(op.size).map((_, i) => (op.fill + i * 7) & 0xff),
        { mode: op.perm },
      );
      files.push(path);
    } else if (kind === "dir") {
      mkdirSync(path, { mode: op.perm | 0o700 });
      dirs.push(path);
    } else if (kind === "symlink") symlinkSync(`../t${op.fill}/${op.name}`, path);
    else if (kind === "fifo") execFileSync("mkfifo", ["-m", (op.perm & 0o666).toString(8), path]);
    else if (kind === "whiteout") execFileSync("mknod", [path, "c", "0", "0"]);
    else linkSync(files[op.fill % files.length]!, path);
    if (kind === "symlink" || kind === "hardlink") continue;
    const xattrs = op.xattrs.filter(
      (x, i, all) =>
        (isRoot || x.key.startsWith("user.")) &&
        ((kind !== "fifo" && kind !== "whiteout") || !x.key.startsWith("user.")) &&
        all.findIndex((y) => y.key === x.key) === i,
    );
    if (xattrs.length === 0) continue;
    seen.set("xattr", (seen.get("xattr") ?? 0) + xattrs.length);
    restore.push(`# file: ${path}`);
    for (const x of xattrs) restore.push(`${x.key}=0x${Buffer.from(x.value).toString("hex") || "00"}`);
    restore.push("");
  }
  if (restore.length > 0) {
    const list = join(top, "xattrs");
    writeFileSync(list, `${restore.join("\n")}\n`);
    execFileSync("setfattr", [`--restore=${list}`]);
  }
  return root;
}

describe.skipIf(missing !== undefined)(
  `sealroot reads a source directory as mkcomposefs 1.0.8 does${missing ? ` (skipped: ${missing})` : ""}`,
  () => {
    it(`agrees on random directory trees${isRoot ? " (as root: with trusted.* xattrs and whiteouts)" : ""}`, () => {
      const seen = new Map<string, number>();
      fc.assert(
        fc.property(fc.array(dirOp, { minLength: 1, maxLength: 30 }), fc.boolean(), (ops, epoch) => {
          const dir = buildSourceDir(ops, seen);
          try {
            const ref = runReferenceArgs([...(epoch ? ["--use-epoch"] : []), dir, "-"]);
            expect(ref.stderr).toBe("");
            expect(ref.code).toBe(0);
            const tree = treeFromDirectory({
              source: dir,
              digestStore: undefined,
              useEpoch: epoch,
              skipXattrs: false,
              userXattrs: false,
              skipDevices: false,
            });
            expect(sha(writeErofs(tree))).toBe(sha(ref.stdout));
          } finally {
            rmSync(join(dir, ".."), { recursive: true, force: true });
          }
        }),
        { seed: 31337, numRuns: 40 },
      );
      // Every kind of entry was made, many times over.
      const kinds = ["file", "dir", "symlink", "fifo", "hardlink", "xattr", ...(isRoot ? ["whiteout"] : [])];
      for (const k of kinds) expect(seen.get(k) ?? 0, k).toBeGreaterThan(10);
    });
  },
);

/** Lines mkcomposefs 1.0.8 turns into an image and sealroot refuses on purpose (README.md, "mkcomposefs"). */
const DELIBERATE: [string, string, string][] = [
  [
    "a hardlink to a directory",
    "/d 0 40755 2 0 0 0 0.0 - - -\n/l 0 @100644 1 0 0 0 0.0 /d - -",
    'line 3, field PAYLOAD: "/d" is a directory, expected a non-directory',
  ],
  [
    "a hardlink to the root",
    "/l 0 @100644 1 0 0 0 0.0 / - -",
    'line 2, field PAYLOAD: "/" is a directory, expected a non-directory',
  ],
  [
    "a digest that is not hex",
    `/f 1 100644 1 0 0 0 0.0 p - ${"g".repeat(64)}`,
    `line 2, field DIGEST: "${"g".repeat(64)}" is not hex, expected 64 hex digits`,
  ],
  [
    "a short digest",
    "/f 1 100644 1 0 0 0 0.0 p - 0123",
    'line 2, field DIGEST: "0123" is 4 characters, expected 64 hex digits',
  ],
  [
    "an unparsable GID after a non-zero UID",
    "/f 1 100644 1 5 x 0 0.0 p - -",
    'line 2, field GID: "x" is not a decimal integer, expected digits only',
  ],
  [
    "an unparsable RDEV after a non-zero UID",
    "/f 0 20644 1 5 0 y 0.0 - - -",
    'line 2, field RDEV: "y" is not a decimal integer, expected digits only',
  ],
];

describe.skipIf(missing !== undefined)(
  `sealroot refuses on purpose what mkcomposefs 1.0.8 writes wrongly${missing ? ` (skipped: ${missing})` : ""}`,
  () => {
    it.each(DELIBERATE)("%s", (_, lines, where) => {
      const dump = `${ROOT_LINE}\n${lines}\n`;
      expect(runReference([], dump).code).toBe(0);
      let message = "accepted";
      try {
        parseDumpfile(utf8.encode(dump), { path: "in.dump" });
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        message = e.message;
      }
      expect(message).toBe(`Cannot parse "in.dump" ${where}`);
    });
  },
);

/** Keys the overlay rewrite escapes (trusted.overlay.*), adds or replaces, and plain ones. */
const KEYS = [
  "user.a",
  "user.b",
  "security.selinux",
  "trusted.overlay.x",
  "trusted.overlay.whiteout",
  "trusted.overlay.whiteouts",
  "trusted.overlay.opaque",
  "trusted.overlay.metacopy",
  "trusted.overlay.redirect",
  "user.overlay.whiteout",
  "user.overlay.whiteouts",
  "user.overlay.opaque",
];

/** Own xattrs of one entry: a few short ones, the last possibly filled to 32767 - 1, 32767 or 32768. */
const xattrs = fc
  .record({
    keys: fc.uniqueArray(fc.constantFrom(...KEYS), { maxLength: 3 }),
    lens: fc.array(fc.constantFrom(0, 1, 3, 27, 108, 109, 200), { minLength: 3, maxLength: 3 }),
    fillTo: fc.constantFrom(undefined, undefined, -1, 0, 1),
  })
  .map(({ keys, lens, fillTo }) => {
    const sizes: number[] = keys.map((_, i) => lens[i]!);
    if (fillTo !== undefined && keys.length > 0) {
      sizes[sizes.length - 1] = fill(keys, sizes.slice(0, -1), fillTo);
    }
    return keys.map((k, i) => ` ${k}=${"v".repeat(sizes[i]!)}`).join("");
  });

const ENTRY_KINDS = [
  "dir",
  "payload",
  "payload-digest",
  "digest-only",
  "inline",
  "empty",
  "whiteout",
  "symlink",
];
const DIGEST = "ab".repeat(32);

/** A dumpfile of a root and up to 6 entries of every kind the rewrite treats apart, each with xattrs. */
const budgetDumpfile = fc
  .record({
    root: xattrs,
    entries: fc.array(fc.record({ kind: fc.constantFrom(...ENTRY_KINDS), parent: fc.nat(), x: xattrs }), {
      maxLength: 6,
    }),
  })
  .map(({ root, entries }) => {
    const lines = [`${ROOT_LINE}${root}`];
    const dirs = [""];
    entries.forEach((e, i) => {
      const path = `${dirs[e.parent % dirs.length]}/e${i}`;
      const t = "0 0 0 0.0";
      const line = {
        dir: `${path} 0 40755 2 ${t} - - -`,
        payload: `${path} 10 100644 1 ${t} ab/cd - -`,
        "payload-digest": `${path} 10 100644 1 ${t} ab/cd - ${DIGEST}`,
        "digest-only": `${path} 10 100644 1 ${t} - - ${DIGEST}`,
        inline: `${path} 3 100644 1 ${t} - abc -`,
        empty: `${path} 0 100644 1 ${t} - - -`,
        whiteout: `${path} 0 20644 1 ${t} - - -`,
        symlink: `${path} 3 120777 1 ${t} abc - -`,
      }[e.kind]!;
      lines.push(`${line}${e.x}`);
      if (e.kind === "dir") dirs.push(path);
    });
    return `${lines.join("\n")}\n`;
  });

it("the budget generator reaches the limit exactly and one byte over", () => {
  const samples = fc.sample(xattrs, { seed: 1, numRuns: 400 });
  const use = (s: string) =>
    s === ""
      ? 0
      : s
          .trim()
          .split(" ")
          .reduce((n, kv) => n + 7 + kv.length - 1, 12);
  expect(new Set(samples.map(use).filter((u) => u >= LIMIT - 1))).toEqual(
    new Set([LIMIT - 1, LIMIT, LIMIT + 1]),
  );
});
