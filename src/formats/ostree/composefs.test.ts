import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { extracted, OSTREE } from "../../../test/helpers/fixtures.ts";
import { C1, C2, C2_DIGEST } from "../../../test/helpers/golden.ts";
import { FormatError } from "../../base/errors.ts";
import { realFs } from "../../sys/fs.ts";
import { inflateRaw } from "../../sys/zlib.ts";
import { FsVerityHasher } from "../../verify/fsverity.ts";
import { toHex, utf8 } from "../bytes.ts";
import { type Inode, lookupChild } from "../composefs/tree.ts";
import { writeErofs } from "../erofs/write.ts";
import { Variant } from "../gvariant.ts";
import { gStrHash, sealCommit, variantDictEnd } from "./commit-write.ts";
import {
  COMPOSEFS_ROOT_DIRS,
  commitComposefsTree,
  type FileVerityDigest,
  OSTREE_COMPOSEFS_WRITE_OPTIONS,
  objectPayload,
} from "./composefs.ts";
import { COMPOSEFS_DIGEST_KEY, type Commit } from "./objects.ts";
import { OstreeRepo } from "./repo.ts";

const C3 = "5b56b34165ba6deece350f133f30ee2640ea5bf761830c6e6ef98eb11015198e";

const fsverity = (b: Uint8Array) => new FsVerityHasher().update(b).digest();
/** `ostree checkout --composefs` on a host without kernel fs-verity: every digest computed from content. */
const userspace: FileVerityDigest = (o) => fsverity(o.content ?? new Uint8Array(0));
const open = (tar: string) => OstreeRepo.open(realFs, extracted(tar), { inflateRaw });
const bareUser = () => open("ostree/repo-bare-user.tar");

function at(root: Inode, path: string): Inode {
  let n = root;
  for (const part of path.split("/").filter(Boolean)) {
    const d = lookupChild(n, utf8.encode(part));
    if (!d) throw new Error(`no ${path}`);
    n = d.inode;
  }
  return n;
}

describe("commitComposefsTree() + writeErofs(): ostree checkout --composefs", () => {
  const cases: [string, string, string, FileVerityDigest | undefined, string][] = [
    ["c1", C1, "c1.cfs", userspace, "118a631c7c8d550bdc4e09fc087ad8c480e9e858b5fc361aedbc982a559a35cc"],
    [
      "c1 noverity",
      C1,
      "c1.noverity.cfs",
      undefined,
      "2ecd2f0b169d05c56fe21321ce67b67328aa703ed78825174f9b3d437697c08f",
    ],
    ["c2", C2, "c2.cfs", userspace, C2_DIGEST],
    [
      "c2 noverity",
      C2,
      "c2.noverity.cfs",
      undefined,
      "d27ab38a1139e261bcd11a587bcd4bbacfd2cee836bb55c4be2c05a215739815",
    ],
  ];
  for (const [repoName, tar] of [
    ["bare-user", "ostree/repo-bare-user.tar"],
    ["archive-z2", "ostree/repo-archive-z2.tar"],
  ] as const) {
    for (const [name, commit, file, digestOf, digest] of cases) {
      it(`reproduces cfs/${file} byte for byte from the ${repoName} repo (${name})`, () => {
        const image = writeErofs(
          commitComposefsTree(open(tar), commit, digestOf),
          OSTREE_COMPOSEFS_WRITE_OPTIONS,
        );
        expect(Buffer.from(image).equals(readFileSync(join(OSTREE, "cfs", file)))).toBe(true);
        expect(toHex(fsverity(image))).toBe(digest);
      });
    }
  }

  it("uses ostree's writer options: format version 0, up to 1", () => {
    expect(OSTREE_COMPOSEFS_WRITE_OPTIONS).toEqual({ version: 0, maxVersion: 1 });
  });

  it("names each regular file's backing object as XX/YYYY….file relative to objects/", () => {
    const hello = at(commitComposefsTree(bareUser(), C2, userspace), "/usr/bin/hello");
    expect(utf8.decode(hello.payload ?? new Uint8Array())).toBe(
      "93/0fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6.file",
    );
    expect(objectPayload("930fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6")).toBe(
      "93/0fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6.file",
    );
    expect(toHex(hello.digest ?? new Uint8Array())).toBe(
      "daed8bbe8f15ca510bb068b565e9ed2eec568dce5529d4742b955f1b6dd6d06b",
    );
    expect({ mode: hello.mode.toString(8), size: hello.size, mtime: hello.mtime }).toEqual({
      mode: "100755",
      size: 21,
      mtime: { sec: 0, nsec: 0 },
    });
  });

  it("gives an empty file no payload and no digest, even in full verity mode", () => {
    const empty = at(commitComposefsTree(bareUser(), C2, userspace), "/usr/share/data/empty");
    expect([empty.size, empty.payload, empty.digest]).toEqual([0, undefined, undefined]);
  });

  it("maps symlinks to their target as payload, with mode 0120777", () => {
    const link = at(commitComposefsTree(bareUser(), C2, userspace), "/usr/share/data/rel-link");
    expect([link.mode.toString(8), utf8.decode(link.payload ?? new Uint8Array()), link.digest]).toEqual([
      "120777",
      "small.txt",
      undefined,
    ]);
  });

  it("keeps ownership, setuid/sticky bits and xattrs (names without their NUL)", () => {
    const root = commitComposefsTree(bareUser(), C2, userspace);
    const owned = at(root, "/usr/share/owned/by-4242");
    expect([owned.uid, owned.gid, owned.mode.toString(8)]).toEqual([4242, 4343, "100600"]);
    expect(at(root, "/usr/bin/setuid-tool").mode.toString(8)).toBe("104755");
    expect(at(root, "/usr/share/owned/sticky-exec").mode.toString(8)).toBe("101755");
    const dir = at(root, "/usr/share/owned");
    expect([dir.uid, dir.gid, dir.mode.toString(8)]).toEqual([0, 1000, "40750"]);
    const x = at(root, "/usr/share/xattrs/file-xattr").xattrs.map((e) => [
      utf8.decode(e.key),
      toHex(e.value),
    ]);
    expect(x.sort()).toEqual([
      ["security.ref-test", expect.any(String)],
      ["user.ref.bin", "000102ff"],
      ["user.ref.text", toHex(utf8.encode("hello"))],
    ]);
    expect(at(root, "/usr/share/xattrs").xattrs.map((e) => utf8.decode(e.key))).toEqual(["user.ref.dir"]);
  });

  it("gives each dirent of a shared content object its own inode (no hard links), as ostree", () => {
    const root = commitComposefsTree(bareUser(), C2, userspace);
    const a = at(root, "/usr/share/data/dup-a.txt");
    const b = at(root, "/usr/share/data/dup-b.txt");
    expect(a).not.toBe(b);
    expect([a.nlink, b.nlink]).toEqual([1, 1]);
    expect(a.payload).toEqual(b.payload);
  });

  it("adds usr etc boot var sysroot to the root when missing, as 040755 root:root", () => {
    expect(COMPOSEFS_ROOT_DIRS).toEqual(["usr", "etc", "boot", "var", "sysroot"]);
    const root = commitComposefsTree(bareUser(), C1, userspace);
    const etc = at(root, "/etc"); // the reference trees have no /etc (they ship /usr/etc)
    expect([etc.mode.toString(8), etc.uid, etc.gid, etc.children.length, etc.xattrs]).toEqual([
      "40755",
      0,
      0,
      0,
      [],
    ]);
    expect(root.children.map((d) => utf8.decode(d.name))).toEqual([
      "bin",
      "boot",
      "etc",
      "lib",
      "ostree",
      "sysroot",
      "usr",
      "var",
    ]);
  });

  it("asks the digest function only for non-empty regular files", () => {
    const asked: string[] = [];
    commitComposefsTree(bareUser(), C2, (o) => {
      asked.push(`${o.kind}:${o.size}`);
      return undefined;
    });
    expect(asked.every((s) => s.startsWith("file:") && s !== "file:0")).toBe(true);
    // once per object: 42 files have a digest in cfs/c2.cfs.dump, dup-a.txt and dup-b.txt share one
    expect(asked.length).toBe(41);
  });

  it("refuses a tree nested deeper than the limit with a FormatError", () => {
    expect(() => commitComposefsTree(bareUser(), C2, undefined, { maxDepth: 3 })).toThrow(FormatError);
    expect(() => commitComposefsTree(bareUser(), C2, undefined, { maxDepth: 3 })).toThrow(
      /deeper than 3 levels/,
    );
  });
});

describe("variantDictEnd(): GLib GVariantDict key order", () => {
  const v = new Variant("s", "x");
  const keys = (e: [string, Variant][]) => e.map(([k]) => k);
  const dict = (...names: string[]): [string, Variant][] => names.map((n) => [n, v]);

  it("reproduces ostree commit --bootable then --generate-composefs-metadata (commits 1 and 2)", () => {
    // ostree commit: builder [version, ref-binding] → dict + bootable + linux → dict + composefs digest
    const bootable = variantDictEnd(
      dict("version", "ostree.ref-binding"),
      dict("ostree.bootable", "ostree.linux"),
    );
    expect(keys(bootable)).toEqual(["ostree.linux", "version", "ostree.bootable", "ostree.ref-binding"]);
    expect(keys(variantDictEnd(bootable, dict(COMPOSEFS_DIGEST_KEY)))).toEqual([
      "ostree.linux",
      "version",
      "ostree.bootable",
      "ostree.ref-binding",
      COMPOSEFS_DIGEST_KEY,
    ]);
  });

  it("reproduces the bad commit's order, where the digest came in with --add-metadata", () => {
    const start = dict("version", COMPOSEFS_DIGEST_KEY, "ostree.ref-binding");
    expect(keys(variantDictEnd(start, dict("ostree.bootable", "ostree.linux")))).toEqual([
      "ostree.linux",
      "version",
      "ostree.bootable",
      COMPOSEFS_DIGEST_KEY,
      "ostree.ref-binding",
    ]);
  });

  it("keeps a replaced key in its slot with the new value", () => {
    const out = variantDictEnd(dict("a", "b", "c"), [["b", new Variant("s", "new")]]);
    expect(out.map(([k, x]) => `${k}=${x.value}`)).toEqual(
      variantDictEnd(dict("a", "b", "c")).map(([k]) => `${k}=${k === "b" ? "new" : "x"}`),
    );
  });

  it("hashes like g_str_hash (djb2 over signed chars)", () => {
    expect(gStrHash("")).toBe(5381);
    expect(gStrHash("a")).toBe((5381 * 33 + 97) >>> 0);
    expect(gStrHash("\u00e9")).toBe((((5381 * 33 + (0xc3 - 256)) >>> 0) * 33 + (0xa9 - 256)) % 2 ** 32);
  });
});

describe("sealCommit(): the sealed twin of a commit", () => {
  const unsealed = (c: Commit): Commit => ({
    ...c,
    metadata: c.metadata.filter(([k]) => k !== COMPOSEFS_DIGEST_KEY),
  });

  for (const [name, commit, digest] of [
    ["commit 1", C1, "118a631c7c8d550bdc4e09fc087ad8c480e9e858b5fc361aedbc982a559a35cc"],
    ["commit 2", C2, C2_DIGEST],
  ] as const) {
    it(`rebuilds ${name}'s exact .commit bytes from its unsealed form`, () => {
      const { bytes, commit: c } = bareUser().readCommit(commit);
      const sealed = sealCommit(unsealed(c), Buffer.from(digest, "hex"));
      expect(sealed.checksum).toBe(commit);
      expect(Buffer.from(sealed.bytes).equals(Buffer.from(bytes))).toBe(true);
    });
  }

  it("replaces a wrong digest in place, keeping parent, subject, timestamp and other metadata", () => {
    const repo = open("ostree/bad/repo-wrong-cfs-digest.tar");
    const { commit } = repo.readCommit(C3);
    const right = Buffer.from(C2_DIGEST, "hex");
    const sealed = sealCommit(commit, right);
    expect(sealed.commit.metadata.map(([k]) => k)).toEqual(commit.metadata.map(([k]) => k));
    expect(toHex(sealed.commit.metadata[3]?.[1].value as Uint8Array)).toBe(toHex(right));
    expect({ ...sealed.commit, metadata: [] }).toEqual({ ...commit, metadata: [] });
    expect(sealed.checksum).not.toBe(C3);
  });

  it("refuses a digest that is not 32 bytes", () => {
    const { commit } = bareUser().readCommit(C2);
    expect(() => sealCommit(commit, new Uint8Array(31))).toThrow(
      new FormatError("Cannot seal a commit: a 31-byte digest, expected 32 bytes"),
    );
  });
});
