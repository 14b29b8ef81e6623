// The numbers and struct layouts in src/sys/ffi/ against this machine's kernel headers: a C program built
// with gcc fills each struct through the real header definitions and prints its bytes and the request and
// syscall numbers; the TypeScript encoders must give the same bytes. (x86_64 here; the aarch64 syscall
// numbers are pinned in src/sys/ffi/structs.test.ts from anchors.md §4.)

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { toHex } from "../../src/formats/bytes.ts";
import * as libc from "../../src/sys/ffi/libc.ts";
import {
  AF_UNIX,
  encodeFsverityEnableArg,
  encodeLoopConfig,
  encodeMountAttr,
  encodeSockaddrUn,
  FS_IMMUTABLE_FL,
  FS_IOC_ENABLE_VERITY,
  FS_IOC_GETFLAGS,
  FS_IOC_MEASURE_VERITY,
  FS_IOC_SETFLAGS,
  fsverityDigestBuffer,
  LO_FLAGS_AUTOCLEAR,
  LO_FLAGS_DIRECT_IO,
  LO_FLAGS_READ_ONLY,
  LOOP_CONFIGURE,
  LOOP_CTL_GET_FREE,
  TIMESPEC_SIZE,
} from "../../src/sys/ffi/structs.ts";
import * as sc from "../../src/sys/ffi/syscalls.ts";

const PROGRAM = String.raw`
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/fsverity.h>
#include <linux/loop.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/file.h>
#include <time.h>
static void hex(const char *name, const void *p, size_t n) {
  const unsigned char *b = p; printf("%s=", name);
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\n");
}
int main(void) {
  printf("FS_IOC_ENABLE_VERITY=%lu\n", (unsigned long)FS_IOC_ENABLE_VERITY);
  printf("FS_IOC_MEASURE_VERITY=%lu\n", (unsigned long)FS_IOC_MEASURE_VERITY);
  printf("FS_IOC_GETFLAGS=%lu\nFS_IOC_SETFLAGS=%lu\nFS_IMMUTABLE_FL=%d\n", (unsigned long)FS_IOC_GETFLAGS, (unsigned long)FS_IOC_SETFLAGS, FS_IMMUTABLE_FL);
  printf("LOOP_CTL_GET_FREE=%lu\n", (unsigned long)LOOP_CTL_GET_FREE);
  printf("LOOP_CONFIGURE=%lu\n", (unsigned long)LOOP_CONFIGURE);
  printf("pivot_root=%d\nopen_tree=%d\nmove_mount=%d\nfsopen=%d\nfsconfig=%d\nfsmount=%d\nmount_setattr=%d\n",
    SYS_pivot_root, SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_mount_setattr);
  printf("FSOPEN_CLOEXEC=%d\nFSMOUNT_CLOEXEC=%d\nFSCONFIG_SET_FLAG=%d\nFSCONFIG_SET_STRING=%d\nFSCONFIG_SET_FD=%d\n",
    FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_SET_FD);
  printf("FSCONFIG_CMD_CREATE=%d\nMOVE_MOUNT_F_EMPTY_PATH=%d\nOPEN_TREE_CLONE=%d\nOPEN_TREE_CLOEXEC=%d\n",
    FSCONFIG_CMD_CREATE, MOVE_MOUNT_F_EMPTY_PATH, OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC);
  printf("MOUNT_ATTR_RDONLY=%d\nMOUNT_ATTR_IDMAP=%d\n", MOUNT_ATTR_RDONLY, MOUNT_ATTR_IDMAP);
  printf("AT_EMPTY_PATH=%d\nAT_RECURSIVE=%d\nAT_FDCWD=%d\nO_CLOEXEC=%d\nO_RDWR=%d\n", AT_EMPTY_PATH, AT_RECURSIVE, AT_FDCWD, O_CLOEXEC, O_RDWR);
  printf("MS_RDONLY=%d\nMS_BIND=%d\nMS_MOVE=%d\nMS_REC=%d\nMS_SILENT=%d\nMS_PRIVATE=%d\nMS_SLAVE=%d\nMS_SHARED=%d\nMS_REMOUNT=%d\n",
    MS_RDONLY, MS_BIND, MS_MOVE, MS_REC, MS_SILENT, MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_REMOUNT);

  struct fsverity_enable_arg e; memset(&e, 0, sizeof e);
  e.version = 1; e.hash_algorithm = FS_VERITY_HASH_ALG_SHA256; e.block_size = 4096;
  hex("fsverity_enable_arg", &e, sizeof e);

  unsigned char d[sizeof(struct fsverity_digest) + 64]; memset(d, 0, sizeof d);
  ((struct fsverity_digest *)d)->digest_size = 64;
  hex("fsverity_digest", d, sizeof d);

  struct loop_config c; memset(&c, 0, sizeof c);
  c.fd = 7; c.block_size = 4096;
  c.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR;
  strncat((char *)c.info.lo_file_name, "/sysroot/ostree/deploy/os/deploy/0123456789abcdef0123456789abcdef.0/.ostree.cfs", LO_NAME_SIZE - 1);
  hex("loop_config", &c, sizeof c);

  struct mount_attr a; memset(&a, 0, sizeof a);
  a.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_IDMAP; a.attr_clr = MOUNT_ATTR_NOSUID; a.propagation = 1 << 18; a.userns_fd = 9;
  hex("mount_attr", &a, sizeof a);

  printf("AF_UNIX=%d\nSOCK_STREAM=%d\nSOCK_CLOEXEC=%d\nLOCK_EX=%d\nCLOCK_BOOTTIME=%d\n",
    AF_UNIX, SOCK_STREAM, SOCK_CLOEXEC, LOCK_EX, CLOCK_BOOTTIME);
  printf("sizeof_timespec=%zu\n", sizeof(struct timespec));
  struct sockaddr_un u; memset(&u, 0, sizeof u);
  u.sun_family = AF_UNIX; strcpy(u.sun_path, "/run/swtpm/cmd.sock");
  hex("sockaddr_un", &u, sizeof u);
  return 0;
}
`;

const gcc = spawnSync("gcc", ["--version"]).status === 0;
const x64 = process.arch === "x64";

describe.skipIf(!gcc || !x64)("kernel ABI of src/sys/ffi against the system headers (gcc)", () => {
  const dir = mkdtempSync(join(tmpdir(), "sealroot-abi-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const values = (() => {
    writeFileSync(join(dir, "abi.c"), PROGRAM);
    execFileSync("gcc", ["-Wall", "-Werror", "-o", join(dir, "abi"), join(dir, "abi.c")]);
    const out = execFileSync(join(dir, "abi"), { encoding: "utf8" });
    return Object.fromEntries(
      out
        .trim()
        .split("\n")
        .map((l) => l.split("=") as [string, string]),
    );
  })();

  it("uses the ioctl request numbers the headers define", () => {
    expect({
      FS_IOC_ENABLE_VERITY,
      FS_IOC_MEASURE_VERITY,
      FS_IOC_GETFLAGS,
      FS_IOC_SETFLAGS,
      FS_IMMUTABLE_FL,
      LOOP_CTL_GET_FREE,
      LOOP_CONFIGURE,
    }).toEqual({
      FS_IOC_ENABLE_VERITY: Number(values.FS_IOC_ENABLE_VERITY),
      FS_IOC_MEASURE_VERITY: Number(values.FS_IOC_MEASURE_VERITY),
      FS_IOC_GETFLAGS: Number(values.FS_IOC_GETFLAGS),
      FS_IOC_SETFLAGS: Number(values.FS_IOC_SETFLAGS),
      FS_IMMUTABLE_FL: Number(values.FS_IMMUTABLE_FL),
      LOOP_CTL_GET_FREE: Number(values.LOOP_CTL_GET_FREE),
      LOOP_CONFIGURE: Number(values.LOOP_CONFIGURE),
    });
  });

  it("uses the x86_64 syscall numbers the headers define", () => {
    for (const name of [
      "pivot_root",
      "open_tree",
      "move_mount",
      "fsopen",
      "fsconfig",
      "fsmount",
      "mount_setattr",
    ])
      expect([name, sc.SYSCALLS.x64[name]]).toEqual([name, Number(values[name])]);
  });

  it("uses the mount, open and new-mount-API constants the headers define", () => {
    const ours: Record<string, number> = {
      FSOPEN_CLOEXEC: sc.FSOPEN_CLOEXEC,
      FSMOUNT_CLOEXEC: sc.FSMOUNT_CLOEXEC,
      FSCONFIG_SET_FLAG: sc.FSCONFIG_SET_FLAG,
      FSCONFIG_SET_STRING: sc.FSCONFIG_SET_STRING,
      FSCONFIG_SET_FD: sc.FSCONFIG_SET_FD,
      FSCONFIG_CMD_CREATE: sc.FSCONFIG_CMD_CREATE,
      MOVE_MOUNT_F_EMPTY_PATH: sc.MOVE_MOUNT_F_EMPTY_PATH,
      OPEN_TREE_CLONE: sc.OPEN_TREE_CLONE,
      OPEN_TREE_CLOEXEC: sc.OPEN_TREE_CLOEXEC,
      MOUNT_ATTR_RDONLY: sc.MOUNT_ATTR_RDONLY,
      MOUNT_ATTR_IDMAP: sc.MOUNT_ATTR_IDMAP,
      AT_EMPTY_PATH: sc.AT_EMPTY_PATH,
      AT_RECURSIVE: sc.AT_RECURSIVE,
      AT_FDCWD: libc.AT_FDCWD,
      O_CLOEXEC: libc.O_CLOEXEC,
      O_RDWR: libc.O_RDWR,
      MS_RDONLY: libc.MS_RDONLY,
      MS_BIND: libc.MS_BIND,
      MS_MOVE: libc.MS_MOVE,
      MS_REC: libc.MS_REC,
      MS_SILENT: libc.MS_SILENT,
      MS_PRIVATE: libc.MS_PRIVATE,
      MS_SLAVE: libc.MS_SLAVE,
      MS_SHARED: libc.MS_SHARED,
      MS_REMOUNT: libc.MS_REMOUNT,
      AF_UNIX,
      SOCK_STREAM: libc.SOCK_STREAM,
      SOCK_CLOEXEC: libc.SOCK_CLOEXEC,
      LOCK_EX: libc.LOCK_EX,
      CLOCK_BOOTTIME: libc.CLOCK_BOOTTIME,
      sizeof_timespec: TIMESPEC_SIZE,
    };
    for (const [k, v] of Object.entries(ours)) expect([k, v]).toEqual([k, Number(values[k])]);
  });

  it("encodes struct fsverity_enable_arg byte for byte as the header's struct (SHA-256, 4096, no salt)", () => {
    expect(toHex(encodeFsverityEnableArg())).toBe(values.fsverity_enable_arg);
  });

  it("encodes the struct fsverity_digest request buffer byte for byte (64 bytes of room)", () => {
    expect(toHex(fsverityDigestBuffer())).toBe(values.fsverity_digest);
  });

  it("encodes struct loop_config byte for byte, flags and file name included", () => {
    const ours = encodeLoopConfig({
      fd: 7,
      flags: LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR,
      fileName: "/sysroot/ostree/deploy/os/deploy/0123456789abcdef0123456789abcdef.0/.ostree.cfs",
    });
    expect(toHex(ours)).toBe(values.loop_config);
  });

  it("encodes struct mount_attr byte for byte", () => {
    const ours = encodeMountAttr({
      attrSet: sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_IDMAP,
      attrClr: sc.MOUNT_ATTR_NOSUID,
      propagation: 1 << 18,
      usernsFd: 9,
    });
    expect(toHex(ours)).toBe(values.mount_attr);
  });

  it("encodes struct sockaddr_un byte for byte (family, NUL-terminated path, 110 bytes)", () => {
    expect(toHex(encodeSockaddrUn("/run/swtpm/cmd.sock"))).toBe(values.sockaddr_un);
  });
});
