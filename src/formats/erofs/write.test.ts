import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { COMPOSEFS } from "../../../test/helpers/fixtures.ts";
import { buildTree, treeOp } from "../../../test/helpers/random-tree.ts";
import { FormatError } from "../../base/errors.ts";
import { sha256 } from "../../base/hash.ts";
import { toHex, utf8 } from "../bytes.ts";
import { parseDumpfile, parseDumpfileText } from "../composefs/dumpfile.ts";
import { addChild, newInode, S_IFDIR, S_IFREG } from "../composefs/tree.ts";
import {
  CFS_HEADER,
  EROFS_SUPER_MAGIC_V1,
  EROFS_SUPER_OFFSET,
  INODE_COMPACT,
  LCFS_EROFS_MAGIC,
  SUPER,
} from "./layout.ts";
import { effectiveVersion, measureErofs, writeErofs } from "./write.ts";
import { chunking } from "./write-emit.ts";
import { xxh32 } from "./write-xattrs.ts";

const ROOT = "/ 4096 40755 2 0 0 0 0.0 - - -\n";
const u32 = (img: Uint8Array, at: number) => new DataView(img.buffer, img.byteOffset).getUint32(at, true);
const u16 = (img: Uint8Array, at: number) => new DataView(img.buffer, img.byteOffset).getUint16(at, true);
const rejects = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error("did not throw");
};

describe("xxh32()", () => {
  it.each([
    ["", 0, 0x02cc5d05],
    ["a", 0, 0x550d7456],
    ["abc", 0, 0x32d153ff],
    ["Nobody inspects the spammish repetition", 0, 0xe2293b2f],
  ])("hashes %j with seed %d like the reference xxHash32", (s, seed, want) => {
    expect(xxh32(utf8.encode(s), seed)).toBe(want);
  });
});

describe("chunking()", () => {
  it.each([
    [1, 12, 1],
    [4096, 12, 1],
    [4097, 13, 1],
    [2 ** 32, 32, 1],
    [2 ** 43, 43, 1],
    [2 ** 43 + 1, 43, 2],
    [100 * 2 ** 43, 43, 100],
    [2 ** 53, 43, 1024],
  ])("a %d-byte file uses 2^%d-byte chunks, %d of them", (size, bits, count) => {
    expect(chunking(size)).toEqual({ chunkBits: bits, chunkCount: count });
  });
});

describe("writeErofs()", () => {
  it("writes the composefs header and EROFS superblock of a root-only image", () => {
    const img = writeErofs(parseDumpfileText(ROOT));
    expect(img.length).toBe(16384);
    expect(u32(img, CFS_HEADER.magic)).toBe(LCFS_EROFS_MAGIC);
    expect(u32(img, CFS_HEADER.version)).toBe(1);
    expect(u32(img, CFS_HEADER.composefsVersion)).toBe(0);
    expect(u32(img, EROFS_SUPER_OFFSET + SUPER.magic)).toBe(EROFS_SUPER_MAGIC_V1);
    expect(u16(img, EROFS_SUPER_OFFSET + SUPER.rootNid)).toBe(36);
    expect(u32(img, EROFS_SUPER_OFFSET + SUPER.inos)).toBe(257); // root + 256 whiteout stubs
    expect(u32(img, EROFS_SUPER_OFFSET + SUPER.blocks)).toBe(4);
    // root inode at nid 36: compact, nlink 2
    expect(u16(img, 36 * 32 + INODE_COMPACT.mode)).toBe(0o40755);
    expect(u16(img, 36 * 32 + INODE_COMPACT.nlink)).toBe(2);
  });

  it("is deterministic and leaves the input tree unchanged", () => {
    const text = `${ROOT}/w 0 20644 1 0 0 0 0.0 - - - trusted.overlay.x=1\n/f 9 100644 1 0 0 0 0.0 ab/cd - -\n`;
    const tree = parseDumpfileText(text);
    const before = JSON.stringify(tree, (_k, v) => (v instanceof Uint8Array ? toHex(v) : v));
    const a = writeErofs(tree);
    const b = writeErofs(tree);
    expect(toHex(sha256(a))).toBe(toHex(sha256(b)));
    expect(JSON.stringify(tree, (_k, v) => (v instanceof Uint8Array ? toHex(v) : v))).toBe(before);
  });

  it("raises the format version to 1 for a whiteout only when maxVersion allows it", () => {
    const tree = parseDumpfileText(`${ROOT}/w 0 20644 1 0 0 0 0.0 - - -\n`);
    expect(effectiveVersion(tree)).toBe(1);
    expect(effectiveVersion(tree, { version: 0, maxVersion: 0 })).toBe(0);
    expect(u32(writeErofs(tree), CFS_HEADER.composefsVersion)).toBe(1);
    expect(effectiveVersion(parseDumpfileText(ROOT))).toBe(0);
  });

  it("rejects a hand-built hardlink to a directory and a directory entry named '..'", () => {
    const root = newInode(S_IFDIR | 0o755);
    const d = newInode(S_IFDIR | 0o755);
    addChild(root, utf8.encode("d"), d);
    addChild(root, utf8.encode("l"), d, true);
    expect(rejects(() => writeErofs(root))).toBe(
      'Cannot write composefs image for "/l": a hardlink to a directory, expected a non-directory',
    );
    const r2 = newInode(S_IFDIR | 0o755);
    r2.children.push({ name: utf8.encode(".."), inode: newInode(S_IFREG), hardlink: false });
    expect(rejects(() => writeErofs(r2))).toContain('an explicit "." or ".." entry');
  });

  it("rejects a payload file over 1024 chunks", () => {
    const big = newInode(S_IFDIR | 0o755);
    addChild(big, utf8.encode("f"), newInode(S_IFREG | 0o644, { size: 2 ** 53 + 2 ** 43 }));
    expect(rejects(() => writeErofs(big))).toContain("needs 1025 chunks (File too large)");
  });

  it("adds metacopy and redirect to a file whose own xattrs sit at the 32767-byte budget", () => {
    // 12 + 7 + 8 + 32740 = 32767: the parser's limit; the overlay xattrs are not counted against it
    const tree = parseDumpfileText(`${ROOT}/f 5 100644 1 0 0 0 0.0 a/b - - user.max=${"v".repeat(32740)}\n`);
    const img = writeErofs(tree);
    expect(utf8.decode(img)).toContain("metacopy");
    expect(utf8.decode(img)).toContain("/a/b");
  });

  it("rejects replacing an own xattr that takes the writer's budget below 0, as mkcomposefs 1.0.8", () => {
    const tree = parseDumpfileText(
      `${ROOT}/w 0 20644 1 0 0 0 0.0 - - - trusted.overlay.whiteout=abc user.z=1\n`,
    );
    expect(rejects(() => writeErofs(tree))).toBe(
      'Cannot write composefs image for "/w": replacing its xattr "trusted.overlay.overlay.whiteout" (written as ' +
        '"trusted.overlay.whiteout") of 3 bytes takes the writer\'s xattr budget below 0, which libcomposefs ' +
        "1.0.8 refuses (ERANGE), expected a value of at most 0 bytes",
    );
  });

  it("returns an image or throws FormatError for random trees", () => {
    fc.assert(
      fc.property(
        fc.array(treeOp, { maxLength: 40 }),
        fc.constantFrom(0, 1),
        fc.constantFrom(0, 1),
        (ops, v, mv) => {
          const root = buildTree(ops);
          try {
            const img = writeErofs(root, { version: v, maxVersion: mv });
            expect(img.length % 4096).toBe(0);
          } catch (e) {
            if (!(e instanceof FormatError)) throw e;
          }
        },
      ),
      { seed: 424242, numRuns: 300 },
    );
  });
});

describe("measureErofs().writeTo()", () => {
  it.each(["os-tree.dump", "xattrs-shared.dump", "bigdir-1500-subdirs.dump", "chunk-format-boundaries.dump"])(
    "streams %s in chunks of any size as the bytes writeErofs() gives",
    (name) => {
      const tree = parseDumpfile(new Uint8Array(readFileSync(join(COMPOSEFS, name))));
      const whole = writeErofs(tree);
      for (const size of [4096, 5000, 65536]) {
        const image = measureErofs(tree);
        const chunks: Uint8Array[] = [];
        image.writeTo((c) => chunks.push(c.slice()), size);
        expect(chunks.every((c) => c.length <= size)).toBe(true);
        const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          joined.set(c, at);
          at += c.length;
        }
        expect([size, image.size, toHex(sha256(joined))]).toEqual([size, whole.length, toHex(sha256(whole))]);
      }
    },
  );
});
