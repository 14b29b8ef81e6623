import { describe, expect, it } from "vitest";
import { extracted, ostreeExpected } from "../../../test/helpers/fixtures.ts";
import { C1, C2 } from "../../../test/helpers/golden.ts";
import { FormatError, IntegrityError, NotFoundError, UsageError } from "../../base/errors.ts";
import type { FsRead } from "../../base/fs.ts";
import { sha256 } from "../../base/hash.ts";
import { realFs } from "../../sys/fs.ts";
import { inflateRaw } from "../../sys/zlib.ts";
import { toHex } from "../bytes.ts";
import { encodeFilemeta, type LooseObjectExt, loosePath } from "./objects.ts";
import { OstreeRepo, parseRepoMode } from "./repo.ts";

const HELLO = "930fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6";
const obj = (repo: string, c: string, ext: LooseObjectExt) => `${repo}/objects/${loosePath(c, ext)}`;

/** The real file system with some files replaced (bytes), removed (null), or xattrs replaced. */
function overlay(
  files: Record<string, Uint8Array | null>,
  xattrs: Record<string, Record<string, Uint8Array>> = {},
): FsRead {
  const has = (p: string) => Object.hasOwn(files, p);
  return {
    ...realFs,
    readFile: (p, cap, what) => {
      if (!has(p)) return realFs.readFile(p, cap, what);
      const b = files[p];
      if (!b) throw new Error(`test overlay: ${p} removed`);
      return b;
    },
    readFileIfExists: (p, cap, what) =>
      has(p) ? (files[p] ?? undefined) : realFs.readFileIfExists(p, cap, what),
    lstat: (p) => {
      const s = realFs.lstat(p);
      return has(p) && files[p] ? { ...s, size: files[p].length } : s;
    },
    lstatIfExists: (p) => {
      if (has(p) && !files[p]) return undefined;
      const s = realFs.lstatIfExists(p);
      return s && has(p) && files[p] ? { ...s, size: files[p].length } : s;
    },
    lgetxattr: (p, n) => xattrs[p]?.[n] ?? realFs.lgetxattr(p, n),
  };
}

describe("parseRepoMode()", () => {
  it.each([
    ["[core]\nrepo_version=1\nmode=bare\n", "bare"],
    ["[core]\nmode = bare-user\n", "bare-user"],
    ["[core]\nmode=bare-user-only\n", "bare-user-only"],
    ["[core]\nmode=archive-z2\n", "archive"],
    ['# c\n[core]\nmode=archive\n[remote "x"]\nmode=bare\n', "archive"],
    ["[core]\nmode=bare\n[core]\nmode=archive\n", "archive"],
    ["  [core]  \r\n  mode  =  bare-user  \r\n", "bare-user"],
  ])("reads %j as %s", (text, mode) => {
    expect(parseRepoMode(text, "config")).toBe(mode);
  });
  it.each([
    "[core]\nrepo_version=1\n",
    "[core]\nmode=bare-split-xattrs\n",
    "[other]\nmode=bare\n",
    "mode=bare\n[core]\nmode=bare\n",
    "[core]\nmode bare\n",
    "[core]\nmode=bare\\q\n",
  ])("refuses %j with FormatError", (text) => {
    expect(() => parseRepoMode(text, "config")).toThrow(FormatError);
  });
});

describe("OstreeRepo refs", () => {
  it("resolves a head ref, a remote ref and a checksum", () => {
    const bu = OstreeRepo.open(realFs, extracted("ostree/repo-bare-user.tar"), { inflateRaw });
    expect(bu.resolveRev("refos/x86_64/stable")).toBe(C2);
    expect(bu.resolveRev(C1)).toBe(C1);
    const sys = OstreeRepo.open(realFs, `${extracted("ostree/sysroot.tar")}/ostree/repo`, { inflateRaw });
    expect(sys.resolveRev("refos:refos/x86_64/stable")).toBe(C2);
    expect(sys.listRefs().map((r) => r.name)).toEqual([
      "ostree/0/1/0",
      "ostree/0/1/1",
      "refos:refos/x86_64/stable",
    ]);
  });

  it.each([
    ["refos/x86_64/missing", NotFoundError],
    ["../config", UsageError],
    ["refos/../../x", UsageError],
    ["bad remote:x", UsageError],
  ] as const)("resolveRev(%j) throws %s", (rev, cls) => {
    const repo = OstreeRepo.open(realFs, extracted("ostree/repo-bare-user.tar"), { inflateRaw });
    expect(() => repo.resolveRev(rev)).toThrow(cls);
  });

  it("a directory without config is not a repository", () => {
    expect(() => OstreeRepo.open(realFs, extracted("ostree/sysroot.tar"), { inflateRaw })).toThrow(
      NotFoundError,
    );
  });
});

describe("OstreeRepo verifies every object against its name", () => {
  const dir = () => extracted("ostree/repo-bare-user.tar");

  it("refuses a dirtree whose bytes do not hash to its name, naming path, expected and actual", () => {
    const c1 = ostreeExpected() as { commits: Array<{ root_dirtree: string }> };
    const root = c1.commits[0]!.root_dirtree;
    const p = obj(dir(), root, "dirtree");
    const bytes = realFs.readFile(p, 1 << 30).slice();
    bytes[0] = bytes[0]! ^ 1;
    const repo = OstreeRepo.open(overlay({ [p]: bytes }), dir(), { inflateRaw });
    const actual = toHex(sha256(bytes));
    expect(() => repo.readDirtree(root)).toThrow(IntegrityError);
    expect(() => repo.readDirtree(root)).toThrow(
      `Cannot verify object "${p}": content hashes to ${actual}, expected ${root}`,
    );
    const err = (() => {
      try {
        repo.listTree(C1);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).data).toEqual({ path: p, expected: root, actual });
  });

  it("refuses a commit whose bytes were changed", () => {
    const p = obj(dir(), C2, "commit");
    const bytes = realFs.readFile(p, 1 << 30).slice();
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x80;
    const repo = OstreeRepo.open(overlay({ [p]: bytes }), dir(), { inflateRaw });
    expect(() => repo.readCommit(C2)).toThrow(IntegrityError);
  });

  it("refuses a content object whose content changed", () => {
    const p = obj(dir(), HELLO, "file");
    const bytes = realFs.readFile(p, 1 << 30).slice();
    bytes[0] = bytes[0]! ^ 1;
    const repo = OstreeRepo.open(overlay({ [p]: bytes }), dir(), { inflateRaw });
    expect(() => repo.readContent(HELLO)).toThrow(IntegrityError);
  });

  it("refuses a bare-user object whose user.ostreemeta ownership changed", () => {
    const p = obj(dir(), HELLO, "file");
    const meta = encodeFilemeta({ uid: 1, gid: 0, mode: 0o100755, xattrs: [] });
    const repo = OstreeRepo.open(overlay({}, { [p]: { "user.ostreemeta": meta } }), dir(), { inflateRaw });
    expect(() => repo.readContent(HELLO)).toThrow(IntegrityError);
  });

  it("refuses a bare-user object whose metadata is a directory mode with FormatError", () => {
    const p = obj(dir(), HELLO, "file");
    const meta = encodeFilemeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [] });
    const repo = OstreeRepo.open(overlay({}, { [p]: { "user.ostreemeta": meta } }), dir(), { inflateRaw });
    expect(() => repo.readContent(HELLO)).toThrow(FormatError);
  });

  it("refuses an archive object whose deflate stream is corrupt with FormatError", () => {
    const adir = extracted("ostree/repo-archive-z2.tar");
    const p = obj(adir, HELLO, "filez");
    const bytes = realFs.readFile(p, 1 << 30).slice();
    bytes.fill(0xff, bytes.length - 8);
    const repo = OstreeRepo.open(overlay({ [p]: bytes }), adir, { inflateRaw });
    expect(() => repo.readContent(HELLO)).toThrow(FormatError);
  });

  it("reports a missing object as NotFoundError and missing detached metadata as undefined", () => {
    const p = obj(dir(), C1, "commitmeta");
    const repo = OstreeRepo.open(overlay({ [p]: null }), dir(), { inflateRaw });
    expect(repo.readCommitmeta(C1)).toBeUndefined();
    expect(() => repo.readCommit("00".repeat(32))).toThrow(NotFoundError);
  });

  it("refuses a metadata object over the size cap before reading it", () => {
    const repo = OstreeRepo.open(realFs, dir(), { inflateRaw, limits: { maxMetadataSize: 100 } });
    expect(() => repo.readCommit(C2)).toThrow(/348 bytes, expected at most 100/);
  });

  it("refuses a malformed checksum with FormatError", () => {
    const repo = OstreeRepo.open(realFs, dir(), { inflateRaw });
    expect(() => repo.readDirtree("../../etc/passwd")).toThrow(FormatError);
  });
});
