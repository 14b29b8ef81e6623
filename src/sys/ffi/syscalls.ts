// System calls made through libc's `syscall()`: the new mount API (fsopen, fsconfig, fsmount, move_mount,
// open_tree, mount_setattr), pivot_root and finit_module (glibc 2.36 wraps neither), with their numbers for x86_64 and aarch64 (both from
// <asm/unistd.h>; the mount-API numbers are shared by every architecture since 5.2) and the flag values
// of <linux/mount.h>. Wrappers return the raw CResult; typed errors are built by src/sys/.

import { type CResult, syscall } from "./libc.ts";

type Arch = "x64" | "arm64";

/** <asm/unistd_64.h> (x86_64) and <asm-generic/unistd.h> (aarch64). */
export const SYSCALLS: Record<Arch, Record<string, number>> = {
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
};

function nr(name: string): number {
  const table = SYSCALLS[process.arch as Arch];
  const n = table?.[name];
  if (n === undefined)
    throw new Error(`Cannot call ${name}: architecture ${process.arch}, expected x64 or arm64`);
  return n;
}

// ---- <linux/mount.h> ----
export const FSOPEN_CLOEXEC = 0x1;
export const FSMOUNT_CLOEXEC = 0x1;
export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_SET_FD = 5;
export const FSCONFIG_CMD_CREATE = 6;
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const OPEN_TREE_CLONE = 0x1;
export const OPEN_TREE_CLOEXEC = 0o2000000;
export const AT_EMPTY_PATH = 0x1000;
export const AT_RECURSIVE = 0x8000;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR_IDMAP = 0x100000;

/** int fsopen(const char *fsname, unsigned int flags); */
export function fsopen(fsname: string, flags: number): CResult {
  return syscall(nr("fsopen"), fsname, flags);
}

/** int fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux); */
export function fsconfig(
  fd: number,
  cmd: number,
  key: string | null,
  value: string | null,
  aux: number,
): CResult {
  return syscall(nr("fsconfig"), fd, cmd, key, value, aux);
}

/** int fsmount(int fsfd, unsigned int flags, unsigned int attr_flags); */
export function fsmount(fsfd: number, flags: number, attrFlags: number): CResult {
  return syscall(nr("fsmount"), fsfd, flags, attrFlags);
}

/** int move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
 * unsigned int flags); */
export function moveMount(
  fromDfd: number,
  fromPath: string,
  toDfd: number,
  toPath: string,
  flags: number,
): CResult {
  return syscall(nr("move_mount"), fromDfd, fromPath, toDfd, toPath, flags);
}

/** int open_tree(int dirfd, const char *path, unsigned int flags); */
export function openTree(dfd: number, path: string, flags: number): CResult {
  return syscall(nr("open_tree"), dfd, path, flags);
}

/** int mount_setattr(int dirfd, const char *path, unsigned int flags, struct mount_attr *attr, size_t size); */
export function mountSetattr(dfd: number, path: string, flags: number, attr: Uint8Array): CResult {
  return syscall(nr("mount_setattr"), dfd, path, flags, attr, attr.length);
}

/** int pivot_root(const char *new_root, const char *put_old); */
export function pivotRoot(newRoot: string, putOld: string): CResult {
  return syscall(nr("pivot_root"), newRoot, putOld);
}

/** int finit_module(int fd, const char *param_values, int flags); */
export function finitModule(fd: number, params: string, flags: number): CResult {
  return syscall(nr("finit_module"), fd, params, flags);
}
