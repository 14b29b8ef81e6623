import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { extracted, OSTREE, ostreeExpected } from "../../../test/helpers/fixtures.ts";
import { FormatError } from "../../base/errors.ts";
import { sha256 } from "../../base/hash.ts";
import { fromHex, toHex } from "../bytes.ts";
import { Variant } from "../gvariant.ts";
import {
  ayay,
  commitContentChecksum,
  composefsDigest,
  contentChecksum,
  decodeCommit,
  decodeCommitmeta,
  decodeDirmeta,
  decodeDirtree,
  decodeZlibFileHeader,
  ED25519_SIGNATURE_KEY,
  ed25519Signatures,
  encodeCommit,
  encodeCommitmeta,
  encodeDirmeta,
  encodeDirtree,
  encodeFileHeader,
  type LooseObjectExt,
  lenPrefixed,
  loosePath,
  splitLenPrefixed,
  validateDirmeta,
  validateDirtree,
} from "./objects.ts";

type ExpectedCommit = {
  checksum: string;
  parent: string | null;
  timestamp: number;
  content_checksum: string;
  composefs_digest_v0: string;
  ed25519_signatures_hex: string[];
  root_dirtree: string;
  root_dirmeta: string;
  commitmeta_sha256: string;
  subject?: string;
};
const exp = ostreeExpected() as {
  commits: ExpectedCommit[];
  bad: Record<string, { commitmeta_sha256?: string }>;
};
const C1 = exp.commits[0]!;
const C2 = exp.commits[1]!;

const objectsOf = (repo: string, ext: LooseObjectExt) => {
  const dir = join(repo, "objects");
  const out: Array<{ checksum: string; bytes: Uint8Array }> = [];
  for (const xx of readdirSync(dir).sort()) {
    for (const f of readdirSync(join(dir, xx)).sort()) {
      if (f.endsWith(`.${ext}`))
        out.push({
          checksum: xx + f.slice(0, -ext.length - 1),
          bytes: new Uint8Array(readFileSync(join(dir, xx, f))),
        });
    }
  }
  return out;
};
const objPath = (repo: string, c: string, ext: LooseObjectExt) => join(repo, "objects", loosePath(c, ext));
const read = (p: string) => new Uint8Array(readFileSync(p));

describe("ostree metadata objects re-encode to identical bytes", () => {
  const repos = ["ostree/repo-bare-user.tar", "ostree/repo-archive-z2.tar"];
  const table: Array<[string, LooseObjectExt, (b: Uint8Array) => Uint8Array]> = [
    ["commit", "commit", (b) => encodeCommit(decodeCommit(b))],
    ["dirtree", "dirtree", (b) => encodeDirtree(decodeDirtree(b))],
    ["dirmeta", "dirmeta", (b) => encodeDirmeta(decodeDirmeta(b))],
    ["commitmeta", "commitmeta", (b) => encodeCommitmeta(decodeCommitmeta(b))],
  ];
  for (const tar of repos) {
    it.each(table)(`${tar}: every %s object`, (_name, ext, roundTrip) => {
      const objs = objectsOf(extracted(tar), ext);
      expect(objs.length).toBeGreaterThan(0);
      for (const o of objs) {
        expect(toHex(roundTrip(o.bytes)), o.checksum).toBe(toHex(o.bytes));
        if (ext !== "commitmeta") expect(toHex(sha256(o.bytes))).toBe(o.checksum);
      }
    });
  }
});

describe("decodeCommit()", () => {
  it.each([C1, C2])("reads commit $checksum as ostree shows it", (c) => {
    const bytes = read(objPath(extracted("ostree/repo-bare-user.tar"), c.checksum, "commit"));
    const commit = decodeCommit(bytes);
    expect(commit.parent.length ? toHex(commit.parent) : null).toBe(c.parent);
    expect(commit.timestamp).toBe(BigInt(c.timestamp));
    expect(toHex(commit.rootDirtree)).toBe(c.root_dirtree);
    expect(toHex(commit.rootDirmeta)).toBe(c.root_dirmeta);
    expect(toHex(commitContentChecksum(commit))).toBe(c.content_checksum);
    expect(toHex(composefsDigest(commit)!)).toBe(c.composefs_digest_v0);
    expect(commit.body).toBe("");
    expect(commit.related).toEqual([]);
  });
});

describe("detached metadata (.commitmeta)", () => {
  it.each([C1, C2])(
    "signatures of $checksum decode, and re-signing an empty commitmeta reproduces the file",
    (c) => {
      const bytes = read(objPath(extracted("ostree/repo-bare-user.tar"), c.checksum, "commitmeta"));
      expect(ed25519Signatures(decodeCommitmeta(bytes)).map(toHex)).toEqual(c.ed25519_signatures_hex);
      const rebuilt = encodeCommitmeta([
        [ED25519_SIGNATURE_KEY, ayay(c.ed25519_signatures_hex.map((h) => fromHex(h)))],
      ]);
      expect(toHex(sha256(rebuilt))).toBe(c.commitmeta_sha256);
    },
  );

  it("a truncated .commitmeta reads as an empty dictionary, as ostree reads it", () => {
    const bytes = read(join(OSTREE, "bad/c2.commitmeta.truncated"));
    expect(toHex(sha256(bytes))).toBe(exp.bad["repo-truncated-commitmeta"]!.commitmeta_sha256);
    expect(decodeCommitmeta(bytes)).toEqual([]);
    expect(ed25519Signatures(decodeCommitmeta(bytes))).toEqual([]);
  });

  it("the corrupt-signature file still decodes to one 64-byte signature with one flipped bit", () => {
    const sigs = ed25519Signatures(
      decodeCommitmeta(read(join(OSTREE, "bad/c2.commitmeta.corrupt-signature"))),
    );
    expect(sigs).toHaveLength(1);
    const good = fromHex(C2.ed25519_signatures_hex[0]!);
    expect(sigs[0]![10]! ^ good[10]!).toBe(1);
  });

  it("a signature under another type is not returned", () => {
    expect(ed25519Signatures([[ED25519_SIGNATURE_KEY, new Variant("ay", new Uint8Array(64))]])).toEqual([]);
  });
});

describe("dirmeta and dirtree", () => {
  const repo = () => extracted("ostree/repo-bare-user.tar");
  it.each([
    ["446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488", 0, 0, 0o40755, []],
    ["ca89500e7f21cc50a96cdb9ca13bd4c8708986c3b3eacdf1bfabb7d10d712f38", 0, 1000, 0o40750, []],
    [
      "d941568d98d41765003ab005865412931f8963df609ad4e200f50024ec43f658",
      0,
      0,
      0o40755,
      [["user.ref.dir\0", "1"]],
    ],
  ] as Array<[string, number, number, number, string[][]]>)(
    "dirmeta %s has big-endian uid/gid/mode decoded",
    (c, uid, gid, mode, xattrs) => {
      const m = decodeDirmeta(read(objPath(repo(), c, "dirmeta")));
      expect({ uid: m.uid, gid: m.gid, mode: m.mode }).toEqual({ uid, gid, mode });
      expect(
        m.xattrs.map((x) => [new TextDecoder().decode(x.name), new TextDecoder().decode(x.value)]),
      ).toEqual(xattrs);
    },
  );

  it("the root dirtree of commit 1 lists files then directories", () => {
    const t = decodeDirtree(read(objPath(repo(), C1.root_dirtree, "dirtree")));
    expect(t.files.map((f) => f.name)).toEqual(["bin", "lib", "ostree"]);
    expect(t.dirs.map((d) => d.name)).toEqual(["boot", "sysroot", "usr", "var"]);
  });

  it.each(["..", ".", "a/b", ""])("validateDirtree() refuses the file name %j", (name) => {
    const t = { files: [{ name, checksum: new Uint8Array(32) }], dirs: [] };
    expect(() => validateDirtree(t, "dirtree x")).toThrow(FormatError);
  });

  it("validateDirmeta() refuses a non-directory mode and unsorted xattrs", () => {
    expect(() => validateDirmeta({ uid: 0, gid: 0, mode: 0o100644, xattrs: [] }, "d")).toThrow(
      /expected a directory mode/,
    );
    const x = (n: string) => ({ name: new TextEncoder().encode(`${n}\0`), value: Uint8Array.of(1) });
    expect(() => validateDirmeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [x("b"), x("a")] }, "d")).toThrow(
      /sorted and unique/,
    );
    expect(() => validateDirmeta({ uid: 0, gid: 0, mode: 0o40755, xattrs: [x("a"), x("a")] }, "d")).toThrow(
      /sorted and unique/,
    );
  });
});

describe("loosePath(): where a loose object lives under objects/", () => {
  const c = "930fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6";
  it.each([
    ["file", `93/${c.slice(2)}.file`],
    ["commitmeta", `93/${c.slice(2)}.commitmeta`],
    [undefined, `93/${c.slice(2)}`],
  ] as const)("%s", (ext, path) => {
    expect(loosePath(c, ext)).toBe(path);
  });

  it.each([
    ["upper case", c.toUpperCase()],
    ["63 digits", c.slice(1)],
    ["a path", `../${c.slice(3)}`],
  ])("refuses a checksum in %s with FormatError", (_w, bad) => {
    expect(() => loosePath(bad, "commit")).toThrow(
      new FormatError(`Cannot name an object: "${bad}", expected 64 lowercase hex digits`, { checksum: bad }),
    );
  });
});

describe("content checksums and headers", () => {
  it("a symlink's checksum covers its header only (/bin -> usr/bin)", () => {
    const meta = { uid: 0, gid: 0, mode: 0o120777, xattrs: [], symlinkTarget: "usr/bin" };
    expect(toHex(contentChecksum(meta, undefined))).toBe(
      "389846c2702216e1367c8dfb68326a6b93ccf5703c89c93979052a9bf359608e",
    );
  });

  it("a regular file's checksum covers the length-prefixed header and the content (/usr/bin/hello)", () => {
    const c = "930fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6";
    const content = read(objPath(extracted("ostree/repo-bare-user.tar"), c, "file"));
    expect(
      toHex(contentChecksum({ uid: 0, gid: 0, mode: 0o100755, xattrs: [], symlinkTarget: "" }, content)),
    ).toBe(c);
  });

  it("xattrs are hashed in sorted order whatever order they are given in", () => {
    const x = (n: string, v: number[]) => ({
      name: new TextEncoder().encode(`${n}\0`),
      value: Uint8Array.from(v),
    });
    const a = [x("user.b", [1]), x("security.a", [2])];
    const m = { uid: 0, gid: 0, mode: 0o100644, symlinkTarget: "" };
    expect(contentChecksum({ ...m, xattrs: a }, Uint8Array.of(1))).toEqual(
      contentChecksum({ ...m, xattrs: [...a].reverse() }, Uint8Array.of(1)),
    );
  });

  it("an archive .filez starts with a length-prefixed (tuuuusa(ayay)) header", () => {
    const c = "930fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6";
    const { header } = splitLenPrefixed(
      read(objPath(extracted("ostree/repo-archive-z2.tar"), c, "filez")),
      "filez",
    );
    expect(decodeZlibFileHeader(header)).toMatchObject({
      size: 21n,
      uid: 0,
      gid: 0,
      mode: 0o100755,
      rdev: 0,
      symlinkTarget: "",
      xattrs: [],
    });
  });

  it.each([
    ["a zero header size", "00000000000000000000"],
    ["a header size past the end", "000000ff00000000aa"],
    ["a truncated prefix", "0000"],
  ])("splitLenPrefixed() refuses %s with FormatError", (_w, hex) => {
    expect(() => splitLenPrefixed(fromHex(hex), "x")).toThrow(FormatError);
  });

  it("lenPrefixed() frames a header as u32be size + 4 NULs", () => {
    const h = encodeFileHeader({ uid: 0, gid: 0, mode: 0o100644, symlinkTarget: "", xattrs: [] });
    expect(toHex(lenPrefixed(h).subarray(0, 8))).toBe(`${h.length.toString(16).padStart(8, "0")}00000000`);
  });
});
