import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { COMPOSEFS } from "../../../test/helpers/fixtures.ts";
import { FormatError } from "../../base/errors.ts";
import { toHex, utf8 } from "../bytes.ts";
import { dumpTree } from "./dump-print.ts";
import { dumpfileLineOf, dumpfileParser, parseDumpfile, parseDumpfileText } from "./dumpfile.ts";
import { getXattr, type Inode, lookupChild, S_IFREG } from "./tree.ts";

const ROOT = "/ 4096 40755 2 0 0 0 0.0 - - -\n";
const at = (root: Inode, path: string): Inode => {
  let n = root;
  for (const c of path.split("/").filter(Boolean)) {
    const d = lookupChild(n, utf8.encode(c));
    if (!d) throw new Error(`no ${path}`);
    n = d.inode;
  }
  return n;
};
const names = (dir: Inode) => dir.children.map((d) => toHex(d.name));
const err = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error("did not throw");
};

describe("parseDumpfile()", () => {
  it("decodes \\\\ \\n \\r \\t \\xHH escapes in paths, content and xattrs", () => {
    const root = parseDumpfileText(
      `${ROOT}/a\\x20b\\\\c\\t 3 100644 1 0 0 0 0.0 - x\\ny - user.k\\x3dy=v\\x00\\r\n`,
    );
    expect(names(root)).toEqual([toHex(utf8.encode("a b\\c\t"))]);
    const f = root.children[0]!.inode;
    expect(f.content).toEqual(utf8.encode("x\ny"));
    expect(f.xattrs).toEqual([{ key: utf8.encode("user.k=y"), value: new Uint8Array([0x76, 0, 0x0d]) }]);
  });

  it("keeps names as raw bytes and sorts them bytewise", () => {
    const root = parseDumpfileText(
      `${ROOT}/b 0 100644 1 0 0 0 0.0 - - -\n/\\xe9\\xff 0 100644 1 0 0 0 0.0 - - -\n/B 0 100644 1 0 0 0 0.0 - - -\n/+ 0 100644 1 0 0 0 0.0 - - -\n`,
    );
    expect(names(root)).toEqual(["2b", "42", "62", "e9ff"]);
  });

  it("accepts the lenient-parse fixture as mkcomposefs does without CFS_PARSE_STRICT", () => {
    const root = parseDumpfile(readFileSync(join(COMPOSEFS, "lenient-parse.dump")));
    expect(at(root, "sym")).toMatchObject({ size: 6, payload: utf8.encode("target") });
    expect(at(root, "reg").rdev).toBe(0);
    expect(at(root, "dup").xattrs).toEqual([{ key: utf8.encode("user.a"), value: utf8.encode("2") }]);
    expect(at(root, "dir").mode).toBe(0o40700);
    expect(root.mode).toBe(0o40755);
  });

  it("accepts the lenient-paths fixture: relative path, '//', upper-case digest, SIZE -1", () => {
    const root = parseDumpfile(readFileSync(join(COMPOSEFS, "lenient-paths.dump")));
    expect(lookupChild(root, utf8.encode("rel"))).toBeDefined();
    const x = at(root, "d/x");
    expect(toHex(x.digest!)).toBe("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    expect(x.payload).toEqual(utf8.encode("AB/CD"));
    expect(at(root, "d").size).toBe(2 ** 64); // strtoull("-1") wraps; ignored for directories
  });

  it.each([
    ["symlink SIZE differing from the target", "/s 9 120777 1 0 0 0 0.0 t - -", "field SIZE: 9 for a 1-byte"],
    ["RDEV on a regular file", "/f 0 100644 1 0 0 5 0.0 - - -", "field RDEV: 5 on a non-device, expected 0"],
    ["content on a symlink", "/s 1 120777 1 0 0 0 0.0 t t -", "field CONTENT: content on a symlink"],
    ["a digest of more than 64 digits", `/f 1 100644 1 0 0 0 0.0 p - ${"a".repeat(66)}`, "field DIGEST"],
  ])("strict mode rejects %s", (_what, line, message) => {
    const text = `${ROOT}${line}\n`;
    expect(() => parseDumpfileText(text)).not.toThrow();
    expect(err(() => parseDumpfileText(text, { strict: true }))).toContain(message);
  });

  it("parses integers like strtoull: sign wraps, fields truncate to 32 bits, mtime is signed", () => {
    const root = parseDumpfileText(`${ROOT}/f 0 0100644 +7 4294967296 -1 0 -1.4294967297 - - -\n`);
    expect(at(root, "f")).toMatchObject({ mode: S_IFREG | 0o644, nlink: 7, uid: 0, gid: 0xffffffff });
    expect(at(root, "f").mtime).toEqual({ sec: -1, nsec: 1 });
  });

  it("links hardlinks to one inode, keeping the target's NLINK, also through another hardlink", () => {
    const root = parseDumpfileText(
      `${ROOT}/l2 0 @100644 0 0 0 0 0.0 /l1 - -\n/f 5 100644 3 0 0 0 0.0 ab/cd - -\n/l1 0 @100644 0 0 0 0 0.0 /f - -\n`,
    );
    const f = at(root, "f");
    expect(at(root, "l1")).toBe(f);
    expect(at(root, "l2")).toBe(f);
    expect(f.nlink).toBe(3);
    expect(root.children.map((d) => d.hardlink)).toEqual([false, true, true]);
  });

  it.each([
    [
      "a hardlink to itself",
      "/l 0 @100644 1 0 0 0 0.0 /l - -",
      'line 2, field PAYLOAD: "/l" is the hardlink itself',
    ],
    ["a hardlink cycle", "/a 0 @100644 1 0 0 0 0.0 /b - -\n/b 0 @100644 1 0 0 0 0.0 /a - -", "chain loops"],
    [
      "a hardlink to a directory",
      "/d 0 40755 2 0 0 0 0.0 - - -\n/l 0 @100644 1 0 0 0 0.0 /d - -",
      "is a directory",
    ],
    [
      "a hardlink with directory mode",
      "/l 0 @40755 1 0 0 0 0.0 / - -",
      "field MODE: a hardlink with directory mode",
    ],
    ["a NUL byte in a line", "/a\0 0 100644 1 0 0 0 0.0 - - -", "field LINE: a NUL byte at position 2"],
    ["an empty line", "", "line 2, field PATH: the path is empty"],
    ["a non-hex digest", `/f 1 100644 1 0 0 0 0.0 p - ${"g".repeat(64)}`, "field DIGEST"],
    ["a short digest", "/f 1 100644 1 0 0 0 0.0 p - abcd", 'field DIGEST: "abcd" is 4 characters'],
    ["an mtime of more than 2^53 seconds", "/f 0 100644 1 0 0 0 9007199254740993.0 - - -", "field MTIME"],
    ["a 4096-byte payload", `/f 1 100644 1 0 0 0 0.0 ${"p".repeat(4096)} - -`, "field PAYLOAD"],
    ["a 256-byte xattr name", `/f 0 100644 1 0 0 0 0.0 - - - user.${"k".repeat(251)}=v`, "field XATTR"],
    [
      "an empty xattr item",
      "/f 0 100644 1 0 0 0 0.0 - - - user.a=1  user.b=2",
      "field XATTR: \"\" has no '='",
    ],
    [
      "xattr text over 65535 bytes",
      `/f 0 100644 1 0 0 0 0.0 - - - user.a=${"v".repeat(65535)}`,
      "at most 65535",
    ],
    ["'/.' as a path", "/. 0 100644 1 0 0 0 0.0 - - -", 'ends in "." or ".."'],
  ])("rejects %s", (_what, line, message) => {
    expect(err(() => parseDumpfileText(`${ROOT}${line}\n`))).toContain(message);
  });

  it("cuts paths and xattr names at an escaped NUL, as libcomposefs's C strings do", () => {
    const root = parseDumpfileText(`${ROOT}/ab\\x00cd 0 100644 1 0 0 0 0.0 - - - user.k\\x00z=v\n`);
    expect(names(root)).toEqual(["6162"]);
    expect(getXattr(at(root, "ab"), utf8.encode("user.k"))).toEqual(utf8.encode("v"));
  });

  it("keeps content, payload and digest only where the writer uses them", () => {
    const d = "ab".repeat(32);
    const root = parseDumpfileText(
      `${ROOT}/p 0 10644 1 0 0 0 0.0 x/y - ${d}\n/e 0 100644 1 0 0 0 0.0 - - ${d}\n`,
    );
    expect(at(root, "p").payload).toBeUndefined();
    expect(at(root, "p").digest).toBeUndefined();
    expect(toHex(at(root, "e").digest!)).toBe(d);
  });

  it("returns a tree or throws FormatError for arbitrary dumpfile-like text", () => {
    const token = fc.constantFrom(
      "/",
      "/a",
      "/a/b",
      "a",
      "0",
      "-1",
      "40755",
      "100644",
      "@100644",
      "120777",
      "20000",
      "0.0",
      "1.5",
      "-",
      "\\x41",
      "\\",
      "\\q",
      "user.a=b",
      "=",
      "trusted.overlay.x=y",
      "",
    );
    const line = fc.array(token, { maxLength: 14 }).map((t) => t.join(" "));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.boolean(), (lines, strict) => {
        const text = [ROOT.trimEnd(), ...lines].join("\n");
        try {
          parseDumpfileText(text, { strict });
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
        }
      }),
      { seed: 20250501, numRuns: 2000 },
    );
  });
});

describe("dumpfileParser()", () => {
  /** Feeds `text` in chunks of `size` bytes through one reused buffer, as a file reader does. */
  const parseInChunks = (text: Uint8Array, size: number, strict = false): Inode => {
    const parser = dumpfileParser({ strict });
    const buf = new Uint8Array(size);
    for (let i = 0; i < text.length; i += size) {
      const chunk = text.subarray(i, i + size);
      buf.set(chunk);
      parser.push(buf.subarray(0, chunk.length));
    }
    return parser.end();
  };
  const fixtures = [
    "lenient-parse.dump",
    "hardlinks.dump",
    "utf8-names.dump",
    "xattrs-shared.dump",
    "os-tree.dump",
  ];

  it.each(fixtures)("gives the tree parseDumpfile() gives for %s, whatever the chunk size", (name) => {
    const text = new Uint8Array(readFileSync(join(COMPOSEFS, name)));
    const whole = dumpTree(parseDumpfile(text));
    for (const size of [1, 2, 3, 7, 64, 4096]) expect(dumpTree(parseInChunks(text, size))).toBe(whole);
  });

  it("keeps nothing of a chunk: a reused buffer's next line at the same offset is not taken for the last", () => {
    // One line a chunk, all at offset 0 of one buffer: "/b/f" lands where "/a/f" was, so a kept view of
    // its parent "/a" would read "/b" and put f in /a.
    const lines = ["/", "/a", "/b"].map((p) => `${p} 0 40755 2 0 0 0 0.0 - - -\n`);
    lines.push("/a/f 0 100644 1 0 0 0 0.0 - - -\n", "/b/f 0 100644 1 0 0 0 0.0 - - -\n");
    const parser = dumpfileParser();
    const buf = new Uint8Array(64);
    for (const l of lines) {
      const bytes = utf8.encode(l);
      buf.set(bytes);
      parser.push(buf.subarray(0, bytes.length));
    }
    const root = parser.end();
    expect(dumpTree(root)).toBe(dumpTree(parseDumpfileText(lines.join(""))));
    expect(names(at(root, "/b"))).toEqual([toHex(utf8.encode("f"))]);
  });

  it("joins a line spread over many chunks once: a 4 MiB path in 64-byte chunks is refused, not copied 65,536 times", () => {
    const text = utf8.encode(`/${"a".repeat(4 << 20)} 0 40755 2 0 0 0 0.0 - - -\n`);
    expect(err(() => parseInChunks(text, 64))).toMatch(/line 1, field PATH/);
  });

  it("reports the line a split line ends on, and a last line without newline when strict", () => {
    const text = utf8.encode(`${ROOT}/a 0 100644 1 0 0 0 0.0 - - -\n/b 0 1006z4 1 0 0 0 0.0 - - -\n`);
    expect(err(() => parseInChunks(text, 5))).toMatch(/line 3, field MODE/);
    const noNewline = utf8.encode(`${ROOT}/a 0 100644 1 0 0 0 0.0 - - -`);
    expect(err(() => parseInChunks(noNewline, 4, true))).toMatch(/line 2, field LINE/);
    expect(names(parseInChunks(noNewline, 4))).toEqual([toHex(utf8.encode("a"))]);
  });
});

describe("dumpfileLineOf()", () => {
  const text = `${ROOT}/d 0 40755 2 0 0 0 0.0 - - -\n//d//w 0 20644 1 0 0 0 0.0 - - -\n/\\x41 0 100644 1 0 0 0 0.0 - - -`;
  it.each([
    ["/", 1],
    ["/d", 2],
    ["/d/w", 3],
    ["/A", 4],
    ["/x", undefined],
  ])("finds the entry %j on line %j, as the parser splits and unescapes paths", (path, line) => {
    expect(dumpfileLineOf(utf8.encode(text), path)).toBe(line);
  });

  it("names no line when two lines name the same path (a file that would not parse)", () => {
    expect(
      dumpfileLineOf(
        utf8.encode(`${ROOT}/a 0 100644 1 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n`),
        "/a",
      ),
    ).toBe(undefined);
  });
});
