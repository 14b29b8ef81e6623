// The ioctl numbers, struct sizes and syscall numbers pinned to the values in anchors.md §4 (checked there
// with gcc; test/privileged/kernel-abi.test.ts re-checks them against this machine's headers), and the
// decoder of struct fsverity_digest refusing a size the buffer cannot hold.

import { describe, expect, it } from "vitest";
import { FormatError } from "../../base/errors.ts";
import { toHex } from "../../formats/bytes.ts";
import {
  decodeFsverityDigest,
  decodeTimespecUsec,
  encodeFsverityEnableArg,
  encodeLoopConfig,
  encodeMountAttr,
  encodeSockaddrUn,
  FS_IOC_ENABLE_VERITY,
  FS_IOC_GETFLAGS,
  FS_IOC_MEASURE_VERITY,
  FS_IOC_SETFLAGS,
  fsverityDigestBuffer,
  LOOP_CONFIGURE,
  LOOP_CTL_GET_FREE,
} from "./structs.ts";
import { SYSCALLS } from "./syscalls.ts";

describe("kernel ABI constants", () => {
  it("has the ioctl request numbers of anchors.md §4", () => {
    expect([
      FS_IOC_ENABLE_VERITY,
      FS_IOC_MEASURE_VERITY,
      FS_IOC_GETFLAGS,
      FS_IOC_SETFLAGS,
      LOOP_CTL_GET_FREE,
      LOOP_CONFIGURE,
    ]).toEqual([0x40806685, 0xc0046686, 0x80086601, 0x40086602, 0x4c82, 0x4c0a]);
  });

  it("has the struct sizes of anchors.md §4", () => {
    expect([
      encodeFsverityEnableArg().length,
      encodeLoopConfig({ fd: 0 }).length,
      encodeMountAttr({}).length,
      fsverityDigestBuffer().length,
    ]).toEqual([128, 304, 32, 4 + 64]);
  });

  it("has the syscall numbers of anchors.md §4 (finit_module: the kernel headers) for x86_64 and aarch64", () => {
    expect(SYSCALLS).toEqual({
      x64: {
        pivot_root: 155,
        finit_module: 313,
        open_tree: 428,
        move_mount: 429,
        fsopen: 430,
        fsconfig: 431,
        fsmount: 432,
        mount_setattr: 442,
      },
      arm64: {
        pivot_root: 41,
        finit_module: 273,
        open_tree: 428,
        move_mount: 429,
        fsopen: 430,
        fsconfig: 431,
        fsmount: 432,
        mount_setattr: 442,
      },
    });
  });

  it("encodes fsverity_enable_arg as version 1, SHA-256, 4096-byte blocks, no salt, no signature", () => {
    expect(toHex(encodeFsverityEnableArg().subarray(0, 40))).toBe(
      `01000000010000000010000000000000${"00".repeat(24)}`,
    );
  });

  it("encodes loop_config with libcomposefs's flags READ_ONLY|DIRECT_IO|AUTOCLEAR and block size 4096", () => {
    const c = encodeLoopConfig({ fd: 3, fileName: "x".repeat(80) });
    const v = new DataView(c.buffer);
    expect([v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8 + 52, true)]).toEqual([
      3,
      4096,
      1 | 16 | 4,
    ]);
    // lo_file_name keeps 63 bytes and a NUL
    expect(c.subarray(8 + 56, 8 + 56 + 64)).toEqual(new Uint8Array([...new Array(63).fill(0x78), 0]));
  });
});

describe("decodeFsverityDigest()", () => {
  it("reads the algorithm and exactly digest_size bytes", () => {
    const b = fsverityDigestBuffer();
    const v = new DataView(b.buffer);
    v.setUint16(0, 1, true);
    v.setUint16(2, 32, true);
    b.fill(0xab, 4, 36);
    expect(decodeFsverityDigest(b)).toEqual({ algorithm: 1, digest: new Uint8Array(32).fill(0xab) });
  });

  it("refuses a digest_size larger than the buffer and a buffer shorter than the header", () => {
    const b = fsverityDigestBuffer(32);
    new DataView(b.buffer).setUint16(2, 33, true);
    expect(() => decodeFsverityDigest(b)).toThrow(
      new FormatError("Cannot decode struct fsverity_digest: digest_size 33, expected at most 32"),
    );
    expect(() => decodeFsverityDigest(new Uint8Array(3))).toThrow(FormatError);
  });
});

describe("encodeSockaddrUn() and decodeTimespecUsec()", () => {
  it("puts AF_UNIX and the NUL-terminated path in a 110-byte sockaddr_un", () => {
    const a = encodeSockaddrUn("/tmp/s");
    expect(a.length).toBe(110);
    expect(toHex(a.subarray(0, 10))).toBe("01002f746d702f730000");
    expect(encodeSockaddrUn("x".repeat(107)).length).toBe(110);
  });

  it("refuses a path with no room for its NUL, an empty path and an embedded NUL", () => {
    for (const p of ["x".repeat(108), "", "a\0b"]) expect(() => encodeSockaddrUn(p)).toThrow(FormatError);
  });

  it("reads tv_sec and tv_nsec as microseconds", () => {
    const ts = new Uint8Array(16);
    const v = new DataView(ts.buffer);
    v.setBigInt64(0, 12n, true);
    v.setBigInt64(8, 345_678_999n, true);
    expect(decodeTimespecUsec(ts)).toBe(12_345_678);
    expect(() => decodeTimespecUsec(new Uint8Array(8))).toThrow(FormatError);
  });
});
