import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fakeStat } from "../../test/helpers/fake-stat.ts";
import { extracted, OSTREE } from "../../test/helpers/fixtures.ts";
import { C2 } from "../../test/helpers/golden.ts";
import type { FsRead, Stat } from "../base/fs.ts";
import { toHex, utf8 } from "../formats/bytes.ts";
import { lookupChild } from "../formats/composefs/tree.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { realFs } from "../sys/fs.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { buildComposefsImage } from "./composefs-image.ts";
import { listBootEntries } from "./deploy-image.ts";

const open = (tar: string) => OstreeRepo.open(realFs, extracted(tar), { inflateRaw });
const KERNEL = new Uint8Array(32).fill(0xab);

describe("buildComposefsImage(): where file digests come from", () => {
  it("takes the kernel's digest of a bare object over computing it", () => {
    const asked: string[] = [];
    const built = buildComposefsImage(open("ostree/repo-bare-user.tar"), C2, "full", {
      kernel: (path) => {
        asked.push(path);
        return path.endsWith("/93/0fc25874c26c343a792858523e747af11db9709ee14af708b8ff3fd81f9fc6.file")
          ? KERNEL
          : undefined;
      },
    });
    const usr = lookupChild(built.tree, utf8.encode("usr"))?.inode;
    const bin = usr && lookupChild(usr, utf8.encode("bin"))?.inode;
    const hello = bin && lookupChild(bin, utf8.encode("hello"))?.inode;
    expect(toHex(hello?.digest ?? new Uint8Array())).toBe(toHex(KERNEL));
    expect(asked.length).toBe(41); // once per object (dup-a.txt and dup-b.txt share one)
    expect(toHex(built.digest)).not.toBe("e914e9327767b5f38a31e90215a9bba6c327dbc56d6a5539e81beb01fe555664");
  });

  it("in kernel-only mode, leaves out digests the kernel does not have (= the noverity image)", () => {
    const built = buildComposefsImage(open("ostree/repo-bare-user.tar"), C2, "kernel", {
      kernel: () => undefined,
    });
    expect(Buffer.from(built.image).equals(readFileSync(join(OSTREE, "cfs/c2.noverity.cfs")))).toBe(true);
  });

  it("never asks the kernel about archive objects (ostree reads them through a zlib stream)", () => {
    const built = buildComposefsImage(open("ostree/repo-archive-z2.tar"), C2, "full", {
      kernel: () => {
        throw new Error("asked");
      },
    });
    expect(toHex(built.digest)).toBe("e914e9327767b5f38a31e90215a9bba6c327dbc56d6a5539e81beb01fe555664");
    expect(toHex(built.expected ?? new Uint8Array())).toBe(toHex(built.digest));
  });
});

/** A read-only fake file system of text files and directories. */
function fakeFs(files: Record<string, string>): FsRead {
  const stat = (kind: Stat["kind"]): Stat => fakeStat(kind);
  const isDir = (p: string) => Object.keys(files).some((f) => f.startsWith(`${p}/`));
  return {
    readFile: (p) => utf8.encode(files[p] ?? ""),
    readFileIfExists: (p) => (p in files ? utf8.encode(files[p] ?? "") : undefined),
    lstat: (p) => stat(isDir(p) ? "dir" : "file"),
    lstatIfExists: (p) => (p in files ? stat("file") : isDir(p) ? stat("dir") : undefined),
    readlink: () => "",
    readdir: (p) => [
      ...new Set(
        Object.keys(files)
          .filter((f) => f.startsWith(`${p}/`))
          .map((f) => f.slice(p.length + 1).split("/")[0] ?? ""),
      ),
    ],
    lgetxattr: () => undefined,
    llistxattr: () => [],
  };
}

describe("listBootEntries(): ostree admin status order", () => {
  const E = "/s/boot/loader/entries";
  const entry = (version: string | undefined, target: string) =>
    `title x\n${version === undefined ? "" : `version ${version}\n`}options root=LABEL=root ostree=${target} rw\n`;

  it("sorts by version, highest first, numerically; entries without a version last", () => {
    const fs = fakeFs({
      [`${E}/ostree-9-refos.conf`]: entry("9", "/ostree/boot.1/refos/a/0"),
      [`${E}/ostree-10-refos.conf`]: entry("10", "/ostree/boot.1/refos/a/1"),
      [`${E}/ostree-x.conf`]: entry(undefined, "/ostree/boot.1/refos/a/2"),
      [`${E}/ostree-2.conf`]: entry("2", "/ostree/boot.1/refos/a/3"),
    });
    expect(listBootEntries(fs, "/s").map((e) => [e.version, e.target])).toEqual([
      ["10", "/ostree/boot.1/refos/a/1"],
      ["9", "/ostree/boot.1/refos/a/0"],
      ["2", "/ostree/boot.1/refos/a/3"],
      [undefined, "/ostree/boot.1/refos/a/2"],
    ]);
  });

  it("skips files that are not ostree-*.conf or have no ostree= argument", () => {
    const fs = fakeFs({
      [`${E}/other.conf`]: entry("5", "/ostree/boot.1/refos/a/0"),
      [`${E}/ostree-1.conf.bak`]: entry("5", "/ostree/boot.1/refos/a/0"),
      [`${E}/ostree-3.conf`]: "title y\nversion 3\noptions root=/dev/vda rw\n",
      [`${E}/ostree-1.conf`]: entry("1", "/ostree/boot.1/refos/a/0"),
    });
    expect(listBootEntries(fs, "/s").map((e) => e.file)).toEqual([`${E}/ostree-1.conf`]);
  });

  it("lists the reference sysroot's two deployments, commit 2 first", () => {
    const sysroot = extracted("ostree/sysroot.tar");
    expect(listBootEntries(realFs, sysroot).map((e) => [e.version, e.target])).toEqual([
      ["2", "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0"],
      ["1", "/ostree/boot.0/refos/b0d948d23ff829a8ccc9b2f90d9b055a40896951f3d65ae8b2b8fe17125eeb25/0"],
    ]);
  });
});
