import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { extracted, OSTREE } from "../../test/helpers/fixtures.ts";
import { C2, C2_DIGEST } from "../../test/helpers/golden.ts";
import { toHex, utf8 } from "../formats/bytes.ts";
import { lookupChild } from "../formats/composefs/tree.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { realFs } from "../sys/fs.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { buildComposefsImage } from "./composefs-image.ts";

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
    expect(toHex(built.digest)).not.toBe(C2_DIGEST);
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
    expect(toHex(built.digest)).toBe(C2_DIGEST);
    expect(toHex(built.expected ?? new Uint8Array())).toBe(toHex(built.digest));
  });
});
