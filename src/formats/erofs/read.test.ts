import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { COMPOSEFS } from "../../../test/helpers/fixtures.ts";
import { FormatError } from "../../base/errors.ts";
import { dumpTree } from "../composefs/dump-print.ts";
import type { Inode } from "../composefs/tree.ts";
import { chunkBitsFor, readErofs } from "./read.ts";

const rootOnly = () => new Uint8Array(readFileSync(join(COMPOSEFS, "root-only.cfs")));

/** root-only.cfs with little-endian values written at absolute offsets. */
function patched(edits: [offset: number, value: number, bytes: 1 | 2 | 4 | 8][]): Uint8Array {
  const b = rootOnly();
  const v = new DataView(b.buffer);
  for (const [at, value, n] of edits) {
    if (n === 1) v.setUint8(at, value);
    else if (n === 2) v.setUint16(at, value, true);
    else if (n === 4) v.setUint32(at, value, true);
    else v.setBigUint64(at, BigInt(value), true);
  }
  return b;
}

function errorOf(bytes: Uint8Array): string {
  try {
    readErofs(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error("readErofs() accepted the image");
}

// root-only.cfs layout: superblock at 1024, root (nid 36) compact at 1152 with one inline xattr entry at
// 1196, whiteout stubs from nid 38 on, the root's dirent block at 0x3000: ".", "..", "00" (nid 38), "01"…
const ROOT = 1152;
const DIRENTS = 0x3000;
const P = "Cannot read composefs image: ";

describe("readErofs() rejects what libcomposefs does not write", () => {
  const cases: [string, () => Uint8Array, string][] = [
    [
      "a short image",
      () => rootOnly().slice(0, 5000),
      "image size expected a non-zero multiple of 4096, got 5000",
    ],
    ["a wrong composefs magic", () => patched([[0, 0, 4]]), "composefs magic expected 0xd078629a, got 0x0"],
    ["composefs header version 2", () => patched([[4, 2, 4]]), "composefs version expected 1, got 2"],
    [
      "unknown header flags",
      () => patched([[8, 2, 4]]),
      "composefs flags expected only 0x1 (has ACL), got 0x2",
    ],
    ["format version 2", () => patched([[12, 2, 4]]), "composefs format version expected 0..1, got 2"],
    ["a wrong EROFS magic", () => patched([[1024, 1, 4]]), "superblock magic expected 0xe0f5e1e2, got 0x1"],
    [
      "a superblock checksum",
      () => patched([[1028, 7, 4]]),
      "superblock checksum expected 0 (unused), got 0x7",
    ],
    [
      "the sb_chksum compat feature",
      () => patched([[1032, 7, 4]]),
      "superblock feature_compat expected only 0x6 (mtime, xattr filter), got 0x7",
    ],
    ["512-byte blocks", () => patched([[1036, 9, 1]]), "superblock blkszbits expected 12, got 9"],
    [
      "superblock extension slots",
      () => patched([[1037, 1, 1]]),
      "superblock sb_extslots expected 0 (unused by composefs), got 1",
    ],
    [
      "an incompat feature (chunked files)",
      () => patched([[1104, 4, 4]]),
      "superblock feature_incompat expected 0 (unused by composefs), got 0x4",
    ],
    [
      "extra devices",
      () => patched([[1110, 1, 2]]),
      "superblock extra_devices expected 0 (unused by composefs), got 0x1",
    ],
    [
      "long xattr prefixes",
      () => patched([[1115, 1, 1]]),
      "superblock xattr_prefix_count expected 0 (unused by composefs), got 1",
    ],
    [
      "a metadata block past the end",
      () => patched([[1064, 4, 4]]),
      "superblock meta_blkaddr expected below 4, got 4",
    ],
    [
      "a root nid past the end",
      () => patched([[1038, 0xffff, 2]]),
      "inode nid expected a nid below 512, got 65535",
    ],
    [
      "a root that is not a directory",
      () => patched([[1038, 38, 2]]),
      "root inode mode expected a directory, got 020000",
    ],
    [
      "unknown i_format bits",
      () => patched([[ROOT, 0x10, 2]]),
      "inode 36 i_format expected only version and datalayout bits, got 0x10",
    ],
    [
      "a compressed data layout",
      () => patched([[ROOT, 3 << 1, 2]]),
      "inode 36 datalayout expected 0 (flat plain), 2 (flat inline) or 4 (chunk-based), got 3",
    ],
    [
      "a mode without a file type",
      () => patched([[ROOT + 4, 0o755, 2]]),
      "inode 36 i_mode expected a file type, got 0755",
    ],
    [
      "a flat plain directory of partial blocks",
      () => patched([[ROOT + 8, 100, 4]]),
      "directory 36 size expected a non-zero multiple of 4096 (flat plain), got 100",
    ],
    [
      "directory blocks past the end",
      () => patched([[ROOT + 16, 4, 4]]),
      "inode 36 directory blocks needs 4096 bytes at offset 16384, 0 available",
    ],
    [
      "an unknown xattr name index",
      () => patched([[ROOT + 45, 7, 1]]),
      "inode 36 xattr 0 e_name_index expected 0..6, got 7",
    ],
    [
      "an xattr entry overrunning the inline area",
      () => patched([[ROOT + 46, 200, 2]]),
      "inode 36 xattr 0 size expected at most 20 bytes, got 220",
    ],
    [
      "more shared xattrs than the inline area holds",
      () => patched([[ROOT + 36, 9, 1]]),
      "inode 36 h_shared_count expected at most 5, got 9",
    ],
    [
      "a first nameoff that is not a dirent multiple",
      () => patched([[DIRENTS + 8, 13, 2]]),
      "directory 36 block 0 first nameoff expected a multiple of 12 below 4096, got 13",
    ],
    [
      "a nameoff out of sequence",
      () => patched([[DIRENTS + 12 + 8, 0x0c17, 2]]),
      "directory 36 block 0 dirent 1 nameoff expected 3097..4096, got 3095",
    ],
    [
      'a "." that is not the directory',
      () => patched([[DIRENTS, 38, 8]]),
      'directory 36 "." nid expected 36, got 38',
    ],
    [
      "a dirent file type that does not match the inode",
      () => patched([[DIRENTS + 24 + 10, 1, 1]]),
      'directory 36 entry "00" file type expected 3, got 1',
    ],
    [
      "a directory reachable twice (a loop to the root)",
      () => patched([[DIRENTS + 24, 36, 8]]),
      'directory 36 entry "00" nid expected a directory reachable once, got 36',
    ],
    [
      "a whiteout stub linked twice",
      () => patched([[DIRENTS + 36, 38, 8]]),
      'directory 36 entry "01" nid expected a whiteout stub linked once, got 38',
    ],
    [
      "a dirent nid past the end",
      () => patched([[DIRENTS + 24, 2 ** 40, 8]]),
      "directory 36 entry nid expected a nid below 512, got 1099511627776",
    ],
    [
      "names out of bytewise order",
      () => {
        const b = rootOnly();
        b[DIRENTS + 0xc1b] = 0x31; // names start at 0xc18: ".", "..", then "00" becomes "10"
        return b;
      },
      'directory 36 entry order expected names sorted bytewise after "10", got "01"',
    ],
  ];
  it.each(cases)("%s", (_, make, message) => {
    expect(errorOf(make())).toBe(P + message);
  });
});

describe("readErofs() decodes what libcomposefs writes", () => {
  it("reads root-only.cfs: the whiteout stubs are dropped and trusted.overlay.opaque hidden", () => {
    const img = readErofs(rootOnly());
    expect(img.header).toEqual({ version: 1, flags: 0, formatVersion: 0 });
    expect(img.superblock).toEqual({
      featureCompat: 6,
      rootNid: 36,
      inodeCount: 257n,
      buildTimeSec: 0n,
      buildTimeNsec: 0,
      blocks: 4,
      metaBlkaddr: 0,
      xattrBlkaddr: 2,
    });
    expect(img.root).toEqual({
      mode: 0o40755,
      uid: 0,
      gid: 0,
      nlink: 2,
      rdev: 0,
      mtime: { sec: 0, nsec: 0 },
      size: 4096,
      xattrs: [],
      children: [],
    });
    expect(img.nids.get(img.root)).toBe(36);
  });

  it("marks every entry of a hardlinked inode but the first in depth-first order as a hardlink", () => {
    const img = readErofs(new Uint8Array(readFileSync(join(COMPOSEFS, "hardlinks.cfs"))));
    const flags: string[] = [];
    const walk = (dir: Inode, path: string) => {
      for (const d of dir.children) {
        const p = `${path}/${Buffer.from(d.name).toString("latin1")}`;
        if (d.inode.nlink > 1 && (d.inode.mode & 0o170000) !== 0o040000) flags.push(`${p}:${d.hardlink}`);
        walk(d.inode, p);
      }
    };
    walk(img.root, "");
    expect(flags).toEqual([
      ...["empty", "fifo", "file", "inline", "null", "sym"].map((n) => `/data/${n}:false`),
      "/early-link:true",
      ...["empty", "fifo", "file-2", "file-3", "inline", "null", "sym"].map((n) => `/links/${n}:true`),
    ]);
    const data = img.root.children.find((d) => Buffer.from(d.name).toString() === "data")!.inode;
    const links = img.root.children.find((d) => Buffer.from(d.name).toString() === "links")!.inode;
    // The links are the very same objects as their targets.
    expect(links.children.every((l) => data.children.some((d) => d.inode === l.inode))).toBe(true);
  });

  it("reads an escaped whiteout back as a char device 0:0 and hides the whiteout markers", () => {
    const img = readErofs(new Uint8Array(readFileSync(join(COMPOSEFS, "whiteouts.cfs"))));
    const etc = img.root.children.find((d) => Buffer.from(d.name).toString() === "etc")!.inode;
    expect(etc.xattrs.map((x) => Buffer.from(x.key).toString())).toEqual([
      "trusted.overlay.opaque",
      "user.overlay.opaque",
    ]);
    expect(
      etc.children.map((d) => [Buffer.from(d.name).toString(), d.inode.mode, d.inode.rdev, d.inode.size]),
    ).toEqual([["removed.conf", 0o20644, 0, 0]]);
  });

  it("chunkBitsFor() picks libcomposefs' chunk size: one block minimum, 2^43 maximum", () => {
    const table: [number, number][] = [
      [1, 12],
      [4096, 12],
      [4097, 13],
      [2 ** 32, 32],
      [2 ** 32 + 1, 33],
      [2 ** 43, 43],
      [2 ** 43 + 1, 43],
      [2 ** 53, 43],
    ];
    expect(table.map(([size]) => [size, chunkBitsFor(size)])).toEqual(table);
  });
});

// Written by the reference mkcomposefs 1.0.8 from this dumpfile (gzip, base64):
//   / 4096 40755 2 0 0 0 0.0 - - -
//   /chunkmap 100 100644 1 0 0 0 0.0 ab/cdefghij - -
//   /nextxattr 100 100644 1 0 0 0 0.0 ab/cdefghiz - - user.x=1
//   /padded 100 100644 1 0 0 0 0.0 ab/cdefghijk - - user.y=2
// sha256 19dfa7f0bd6a3a424f3fa4f75a092fb829fd7cb15939ed163616984e6d017434.
const REDIRECT_QUIRK_CFS = [
  "H4sICGOjBGsCA3EyLmNmcwDt2324z3cdx/FzHPfOcTMzMzMzzGTje3/TJpMkSZskSbLvLWbmZsd2bMkkSZIkySRbSNJaWpKWTNJa",
  "a5kkSQtbS1qSliTT6WW+r3NxdPW6+qM/uvb7XVfXHu2ZM9uuy7l8Xu8eimueKy8rfUqf0uf1+Hnh8MlD5/7YGP+pLOtW1vDf/GLQ",
  "sPhjg//Jz6Bx2bH++Mqtz/+3inq1tvZ4Ld0SP7nJ92bT7opm9J48JZo6PZvx2p9f0+Xin3T9v4X6vYHoFaI3FL2R6I1FbyJ6U9Gb",
  "id5c9BaiV4peJXpL0VuJ3lr0NqJfJnpb0S8XvZ3oV4jeXvQrRe8g+lWidxT9atE7iX6N6J1Fv1b0LqJfJ3pX0buJ3l3060XvIfoN",
  "ovcU/Q2i9xL9RtFvEr236H1EN0Q3RbdEt0V3RHdF90T3RQ9ED0V/o+g3i36L6H1Ff5Po/US/VfT+or9Z9AGiv0X0gaK/VfRBor9N",
  "9MGiv130IaK/Q/Shor9T9NtEv130YaK/S/Thor9b9BGiv0f0kaK/V/RRor9P9NGiv1/0MaJ/QPSxot8heiR6LHoieip6Jnou+jjR",
  "x4s+QfQ7RZ8o+l2iTxL9btEniz5F9KmiTxP9HtGrRZ8u+r2i3yd6jegzRL9f9AdE/6DoM0X/kOizRH9Q9Nmif1j0OaJ/RPS5on9U",
  "9Hmif0z0+aJ/XPQFon9C9IWif1L0RaJ/SvTFon9a9CWif0b0paJ/VvRlon9O9OWiPyT6CtE/L/pK0b8g+irRHxb9EdG/KPpq0deI",
  "vlb0L4m+TvQvi75e9K+IvkH0r4r+qOhfE/0x0b8u+kbRvyH646J/U/RNon9L9M2if1v0LaJ/R/QnRP+u6FtF/57o20R/UvTton9f",
  "9B2i/0D0naL/UPSnRP+R6E+L/mPRnxH9J6I/K/pPRd8l+nMXuGlZ87I1s8sv+j3Z7gtcW3t2Fn90DdC6YWXdhjQtSydMy5LqPlHc",
  "J0mzfNz4CXfW4lMm/vo/E32P6D8Xfa/ovxB9n+i/FH2/6L8S/YDovxb9edF/I/pB0Q+Jflj0F0R/UfTfiv6S6L8T/Yjovxf9qOh/",
  "EP1l0f8o+jHR/yT6cdH/LPoJ0f8i+iui/1X0k6L/TfRTov9d9NOi/0P0M6K/KvpZ0f8peq3o9Q8ELrkfKL/w+0vlJd9fGpRf+P1l",
  "5n/z/eX+cnzxGvPcjzv/faZpWdUlX7/ioq//ar2vX/Ufv39NfO3nX142wzr/12jdsKzufz8pq46SyVPqPw+VPqVP6VP6lD6lT+lT",
  "+pQ+r6MPb9luqWxQ574wb9T6VVbU3aP1h3l7NgDmndlAmDdlg2Dejw2GeSs2BOZd2FCYN2C3wbz3Ggbztms4zDuuETBvtkbCvM8a",
  "BfMWazTMu6sxMG+sxsK8p4pg3k4lMO+kMpg3UeNg3j9NgHnrNBHmXdMkmDdMk2HeK02Fby18D8w7pOkwb47ug3lfNAPmLdEDMO+G",
  "ZsK8EZoF8x5oNszbnzkw73zmwrzpmQfzfmc+zFudBTDvchbCvMFZBPPeZjHM25olMO9olsK8mVkG8z5mOcxbmBUw715WwrxxWQXz",
  "nuURmLcrq2HeqayFeZOyDub9yXqYtyYbYN6VPArzhuQxmPciG+E7Cj8O8w5kE8ybj80w7zu2wPx91xMw7za2wrzR2AbzHmM7zNuL",
  "HTDvLHbCvKl4Cub9xNMwbyWegXkX8SzMG4hdMO8ddsO8bdgD845hL8ybhX0w7xP2w7xFOADz7uB5mDcGB2HeExyGeTvwIszfCL4E",
  "8ybgCMz9/yjMrf9lmLv+MZgb/nGYe/0J+EG+gcDc4U/C3NxPwdzXT8Pc0s/A3M3PwtzIa2Hu4eVVFXXbdwXMnbsRzE27Ccz9uhnM",
  "rboFzF26CuYG3Qrm3twG5rbcFuaO3A7mZtwe5j7cAeYW3BHm7tsJ5sbbGeae2wXmdtsV5k7bHeYm2wPm/toT5tbaC+auehPMDbUP",
  "zL3UhB8ubMPcQV2Ym6cPc98MYW6ZN8PcLfvC3Cj7wdwj+8PcHgfA3BkHwtwUB8HcDwfD3AqHwNwFh8LcAG+DufcNg7ntDYe5442A",
  "udmNhLnPjYK5xY2GubuNgbmxjYW5p0Uwt7ME5k6WwdzExsHcvybA3Lomwty1JsHcsCbD3Kumwk/y13+YO9R0mJvTfTD3pRkwt6QH",
  "YO5GM2FuRLNg7kGzYW4/c2DuPHNhbjrzYO4382FuNQtg7jILYW4wi2DuLYthbitLYO4oS2FuHstg7hvLYW4ZK2DuFithbhSrYO4R",
  "j8DcHlbD3BnWwtwU1sHcD9bD3Ao2wNwFHoW5ATwG871/I3yIv/7DfMffBPPNfjPM9/ktMN/in4D57r4V5hv7Npjv6dthvp3vgPlO",
  "vhPmm/hTMN+/n4b51v0MzHftZ2G+Ye+C+V69G+bb9B6Y79B7Yb4574P5vrwf5lvyAZjvxs/DfCM+WFVe9557BH+eb7dHYb7Tvgzz",
  "TfYYzPfX4zDfWk/AfFd9BeYb6kmY76WnYL6Nnob5jnkG5v+v7CzcqHAt3LhwecuKsiaFK+CmhRvBzQo3gZsXbga3KNwCrixcBVcV",
  "bgW3LNwGblW4Ldy6cDu4TeH28GWFO8BtC3eELy/cCW5XuDN8ReEucPvCXeErC3eHOxTuAV9VuCfcsXAv+OrCN8GdCveBrylswp0L",
  "2/C1hV2Yz9c+fF3hEO5a+Ga4W+G+cPfC/eDrC/eHexQeAN9QeCDcs/Ag/MO8sfDtcO/evQ3DMA3LsA3HcA3P8I3ACI3IiI3ESI3M",
  "yE3DNE3LtE3HdE3P9M3ADM3IjM3ETM3MzC3DMi3Lsi3Hci3P8q3ACq3Iiq3ESq3Mym3DNm3Ltm3Hdm3P9u3ADu3Iju3ETu3Mzh3D",
  "MR3LsR3HcR3P8Z3ACZ3IiZ3ESZ3MyV3DNV3LtV3HdV3P9d3ADd3Ijd3ETd3MzT3DMz3Lsz3Hcz3P873AC73Ii73ES73My33DN33L",
  "t33Hd33P9/3AD/3Ij/3ET/3MzwMjMAMrsAMncAMv8IMgCIMoiIMkSIMsyEMjNEMrtEMndEMv9MMgDMMojMMkTMMszCMjMiMrsiMn",
  "ciMv8qMgCqMoiqMkSqMsymMjNmMrtmMndmMv9uMgDuMojuMkTuMszhMjMRMrsRMncRMv8ZMgCZMoiZMkSZMsyZPx0++eOCmakhqp",
  "mVqpnTqpm3qpnwZpmEZpnCZpmmZpnhmZmVmZnTmZm3mZnwVZmEVZnCVZmmVZnuNfZY5/HTn+keb4x5Ljby3HTy9PcvzgPL87q6mu",
  "iaqrp02Jzn290u+r/18+/wKz9dvEAEAAAA==",
].join("");

describe("trusted.overlay.redirect read-back", () => {
  const image = new Uint8Array(gunzipSync(Buffer.from(REDIRECT_QUIRK_CFS, "base64")));
  const payloads = (quirk: boolean) =>
    readErofs(image, { libcomposefsPayloadQuirk: quirk }).root.children.map((e) => [
      Buffer.from(e.name).toString("latin1"),
      Buffer.from(e.inode.payload!).toString("latin1"),
    ]);

  it("gives the redirect target without its '/' by default", () => {
    expect(payloads(false)).toEqual([
      ["chunkmap", "ab/cdefghij"],
      ["nextxattr", "ab/cdefghiz"],
      ["padded", "ab/cdefghijk"],
    ]);
  });

  it("with libcomposefsPayloadQuirk keeps the two bytes libcomposefs over-reads after an unpadded value", () => {
    expect(payloads(true)).toEqual([
      ["chunkmap", "ab/cdefghij\xff\xff"],
      ["nextxattr", "ab/cdefghiz\x01\x01"],
      ["padded", "ab/cdefghijk"],
    ]);
  });

  it("with the quirk, dumps exactly what the reference composefs-info dump printed", () => {
    expect(dumpTree(readErofs(image, { libcomposefsPayloadQuirk: true }).root)).toBe(
      "/ 4096 40755 2 0 0 0 0.0 - - -\n" +
        "/chunkmap 100 100644 1 0 0 0 0.0 ab/cdefghij\\xff\\xff - -\n" +
        "/nextxattr 100 100644 1 0 0 0 0.0 ab/cdefghiz\\x01\\x01 - - user.x=1\n" +
        "/padded 100 100644 1 0 0 0 0.0 ab/cdefghijk - - user.y=2\n",
    );
  });
});
