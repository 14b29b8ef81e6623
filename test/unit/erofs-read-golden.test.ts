import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dumpTree } from "../../src/formats/composefs/dump-print.ts";
import { readErofs } from "../../src/formats/erofs/read.ts";
import { COMPOSEFS, composefsExpected, OSTREE } from "../helpers/fixtures.ts";
import { C2 } from "../helpers/golden.ts";

// Every composefs image of both golden sets, read by the strict reader and printed, gives exactly the
// `composefs-info dump` text libcomposefs 1.0.8 printed for it; header and superblock facts match the
// recorded `dump.erofs -s` output.

interface Variant {
  image?: string;
  info_dump?: string;
  composefs_header?: { version: number; flags: number; composefs_version: number };
  dump_erofs_superblock?: string;
}
interface Case {
  variants?: Record<string, Variant>;
}

const cases = composefsExpected().cases as Record<string, Case>;
const images = Object.values(cases).flatMap((c) =>
  Object.values(c.variants ?? {}).filter(
    (v): v is Variant & { image: string; info_dump: string } => !!v.image,
  ),
);

const dumpOf = (bytes: Uint8Array) => dumpTree(readErofs(bytes, { libcomposefsPayloadQuirk: true }).root);
const text = (path: string) => readFileSync(path, "latin1");

describe("readErofs + dumpTree on the composefs golden set", () => {
  it("covers every .cfs file in the directory (79 images)", () => {
    const listed = readdirSync(COMPOSEFS).filter((f) => f.endsWith(".cfs"));
    expect(images.map((v) => v.image).sort()).toEqual(listed.sort());
    expect(listed.length).toBe(79);
  });

  it.each(images.map((v) => [v.image, v] as const))("%s prints exactly its composefs-info dump", (_, v) => {
    const bytes = readFileSync(join(COMPOSEFS, v.image));
    expect(dumpOf(bytes)).toBe(text(join(COMPOSEFS, v.info_dump)));
  });

  it.each(images.map((v) => [v.image, v] as const))("%s has the recorded header and superblock", (_, v) => {
    const img = readErofs(readFileSync(join(COMPOSEFS, v.image)));
    expect(img.header).toEqual({
      version: v.composefs_header!.version,
      flags: v.composefs_header!.flags,
      formatVersion: v.composefs_header!.composefs_version,
    });
    const sb = v.dump_erofs_superblock!;
    const field = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(sb)![1]);
    expect({
      blocks: img.superblock.blocks,
      meta: img.superblock.metaBlkaddr,
      xattr: img.superblock.xattrBlkaddr,
      root: img.superblock.rootNid,
      inodes: Number(img.superblock.inodeCount),
    }).toEqual({
      blocks: field("Filesystem blocks"),
      meta: field("Filesystem inode metadata start block"),
      xattr: field("Filesystem shared xattr metadata start block"),
      root: field("Filesystem root nid"),
      inodes: field("Filesystem inode count"),
    });
  });
});

describe("readErofs + dumpTree on the ostree golden set", () => {
  const cfsDir = join(OSTREE, "cfs");
  const files = readdirSync(cfsDir).filter((f) => f.endsWith(".cfs"));

  it("finds the four checkout images", () => {
    expect(files.sort()).toEqual(["c1.cfs", "c1.noverity.cfs", "c2.cfs", "c2.noverity.cfs"]);
  });

  it.each(files)("%s prints exactly its composefs-info dump", (f) => {
    expect(dumpOf(readFileSync(join(cfsDir, f)))).toBe(text(join(cfsDir, `${f}.dump`)));
  });

  it("the flipped-digest deployment image still parses and prints its composefs-info dump", () => {
    const bad = join(OSTREE, "bad/deploy-c2.ostree.cfs.flipped");
    const dump = dumpOf(readFileSync(bad));
    expect(dump).toBe(text(`${bad}.dump`));
    expect(dump).toContain("4b88a85c3430ca9e347ff919b4105c6fc2c4834c567b9924cb4cb3fa5c88120c");
  });

  const deployments = [
    ["deploy-c1", "2a633663545ae4334d786c81269af2c9248fbd4f682f62b251cab506961bb79a"],
    ["deploy-c2", C2],
  ] as const;
  it.each(deployments)(
    "%s .ostree.cfs from sysroot.tar prints exactly its composefs-info dump",
    (name, commit) => {
      const member = `./ostree/deploy/refos/deploy/${commit}.0/.ostree.cfs`;
      const bytes = execFileSync("tar", ["-xOf", join(OSTREE, "sysroot.tar"), member], {
        maxBuffer: 1 << 24,
      });
      expect(dumpOf(new Uint8Array(bytes))).toBe(text(join(cfsDir, `${name}.ostree.cfs.dump`)));
    },
  );
});
