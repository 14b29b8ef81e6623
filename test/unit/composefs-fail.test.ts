import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FormatError, UsageError } from "../../src/base/errors.ts";
import { parseDumpfile } from "../../src/formats/composefs/dumpfile.ts";
import { writeErofs } from "../../src/formats/erofs/write.ts";
import { COMPOSEFS, composefsExpected } from "../helpers/fixtures.ts";

// Every should-fail input of the golden set (mkcomposefs exits 1 on each) is rejected: by the parser with a
// FormatError naming the line and field, or, for --max-version=2, by the writer with a UsageError.

interface FailCase {
  kind: string;
  input: string;
  options: string[];
  env: Record<string, string>;
  exit_code: number;
}

const all = Object.entries((composefsExpected() as { cases: Record<string, FailCase> }).cases).filter(
  ([, c]) => c.kind === "should-fail",
);
const byName = new Map(all);

const read = (name: string): Uint8Array => readFileSync(join(COMPOSEFS, byName.get(name)!.input));

// [case, exact message]
const PARSE_FAILURES: [string, string][] = [
  [
    "fail-bad-escape",
    'Cannot parse "fail-bad-escape.dump" line 2, field PATH: "/a\\\\qb" has unsupported escape \\q, expected one of \\\\ \\n \\r \\t \\xHH',
  ],
  [
    "fail-bad-hex",
    'Cannot parse "fail-bad-hex.dump" line 2, field PATH: "/a\\\\xZ1" has invalid hex digits after \\x, expected two hex digits',
  ],
  [
    "fail-trailing-backslash",
    'Cannot parse "fail-trailing-backslash.dump" line 2, field XATTR: "v\\\\" ends in a lone backslash, expected a character after \'\\\'',
  ],
  [
    "fail-missing-fields",
    'Cannot parse "fail-missing-fields.dump" line 2, field NLINK: "" is not a decimal integer, expected digits only',
  ],
  [
    "fail-dotdot-name",
    'Cannot parse "fail-dotdot-name.dump" line 3, field PATH: "/x/.." ends in "." or "..", expected a file name',
  ],
  [
    "fail-hardlink-missing",
    'Cannot parse "fail-hardlink-missing.dump" line 2, field PAYLOAD: no entry at "/nope", expected the path of an entry in the file',
  ],
  [
    "fail-name-256",
    'Cannot parse "fail-name-256.dump" line 2, field PATH: the file name in "/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…" is 256 bytes, expected at most 255',
  ],
  [
    "fail-content-size",
    'Cannot parse "fail-content-size.dump" line 2, field CONTENT: 3 bytes of content, expected exactly SIZE (4) bytes',
  ],
  [
    "fail-inline-5001",
    'Cannot parse "fail-inline-5001.dump" line 2, field CONTENT: 5001 bytes of inline content, expected at most 5000',
  ],
  [
    "fail-symlink-4096",
    'Cannot parse "fail-symlink-4096.dump" line 2, field PAYLOAD: a 4096-byte symlink target, expected 1..4095 bytes',
  ],
  [
    "fail-duplicate-path",
    'Cannot parse "fail-duplicate-path.dump" line 3, field PATH: "/a" is listed twice, expected each path once',
  ],
  [
    "fail-parent-missing",
    'Cannot parse "fail-parent-missing.dump" line 2, field PATH: the parent directory of "/no/such" is missing, expected parents listed first',
  ],
  [
    "fail-no-root",
    'Cannot parse "fail-no-root.dump" line 1, field PATH: "/a" before the root, expected the root "/" first',
  ],
  [
    "fail-xattr-no-equals",
    'Cannot parse "fail-xattr-no-equals.dump" line 2, field XATTR: "user.novalue" has no \'=\', expected KEY=VALUE',
  ],
  [
    "fail-xattr-over-limit",
    'Cannot parse "fail-xattr-over-limit.dump" line 2, field XATTR: "user.max" brings the inode\'s xattrs to 32768 bytes (12 + Σ(7 + key + value)), expected at most 32767',
  ],
  [
    "fail-empty-input",
    'Cannot parse "fail-empty-input.dump": no entries, expected at least the root directory "/"',
  ],
  [
    "fail-too-many-chunks",
    'Cannot parse "fail-too-many-chunks.dump" line 2, field SIZE: 9007199254740993 bytes needs more than 1024 chunks, expected at most 9007199254740992 (2^53)',
  ],
  [
    "fail-strict-no-newline",
    'Cannot parse "fail-strict-no-newline.dump" line 2, field LINE: the last line has no trailing newline, expected a newline',
  ],
  [
    "fail-trailing-slash",
    'Cannot parse "fail-trailing-slash.dump" line 2, field PATH: the parent directory of "/d/" is missing, expected parents listed first',
  ],
  [
    "fail-content-too-long",
    'Cannot parse "fail-content-too-long.dump" line 2, field CONTENT: 5 bytes of content, expected exactly SIZE (3) bytes',
  ],
  [
    "fail-xattr-empty-key",
    'Cannot parse "fail-xattr-empty-key.dump" line 2, field XATTR: a 0-byte name "", expected 1..255 bytes',
  ],
  [
    "fail-mode-at-only",
    'Cannot parse "fail-mode-at-only.dump" line 2, field MODE: "" is not an octal integer, expected digits only',
  ],
  [
    "fail-bad-nlink",
    'Cannot parse "fail-bad-nlink.dump" line 2, field NLINK: "x" is not a decimal integer, expected digits only',
  ],
  [
    "fail-mtime-no-dot",
    'Cannot parse "fail-mtime-no-dot.dump" line 2, field MTIME: "12" has no \'.\', expected SECONDS.NANOSECONDS',
  ],
  [
    "fail-invalid-mode",
    'Cannot parse "fail-invalid-mode.dump" line 2, field MODE: "70644" has file type 070000, expected a valid S_IFMT type',
  ],
  [
    "fail-root-not-dir",
    'Cannot parse "fail-root-not-dir.dump" line 1, field MODE: a root that is not a directory, expected a directory (040000)',
  ],
  [
    "fail-two-roots",
    'Cannot parse "fail-two-roots.dump" line 2, field PATH: a second root "/", expected one root line',
  ],
  [
    "fail-parent-not-dir",
    'Cannot parse "fail-parent-not-dir.dump" line 3, field PATH: the parent of "/f/x" is not a directory, expected a directory',
  ],
  [
    "fail-hardlink-no-target",
    "Cannot parse \"fail-hardlink-no-target.dump\" line 2, field PAYLOAD: '-' (no target) on a hardlink, expected the path of its target",
  ],
  [
    "fail-bad-uid",
    'Cannot parse "fail-bad-uid.dump" line 2, field UID: "abc" is not a decimal integer, expected digits only',
  ],
];

describe("should-fail dumpfiles", () => {
  it("the table covers every should-fail case, all of which mkcomposefs rejects with exit 1", () => {
    const names = [...PARSE_FAILURES.map(([n]) => n), "fail-max-version-2"].sort();
    expect(names).toEqual(all.map(([n]) => n).sort());
    for (const [, c] of all) expect(c.exit_code).toBe(1);
  });

  it.each(PARSE_FAILURES)("parseDumpfile() rejects %s", (name, message) => {
    const c = byName.get(name)!;
    const strict = "CFS_PARSE_STRICT" in c.env;
    let err: unknown;
    try {
      parseDumpfile(read(name), { strict, path: c.input });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).message).toBe(message);
    const m = /line (\d+), field (\w+)/.exec(message);
    if (m) expect((err as FormatError).data).toMatchObject({ line: Number(m[1]), field: m[2] });
  });

  it("writeErofs() rejects --max-version=2 of a valid dumpfile with a UsageError", () => {
    const tree = parseDumpfile(read("fail-max-version-2"));
    expect(byName.get("fail-max-version-2")!.options).toEqual(["--max-version=2"]);
    expect(() => writeErofs(tree, { version: 0, maxVersion: 2 })).toThrow(
      new UsageError("Cannot write composefs image: maxVersion 2, expected 0..1", { maxVersion: 2 }),
    );
  });

  it("the missing trailing newline is accepted without strict mode", () => {
    const root = parseDumpfile(read("fail-strict-no-newline"));
    expect(root.children.map((d) => new TextDecoder().decode(d.name))).toEqual(["a"]);
  });
});
