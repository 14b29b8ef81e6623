// Every libc symbol sealroot calls, declared once through ffi-rs (the only importer of ffi-rs). Each
// wrapper gives the C prototype in a comment and returns the raw result with errno; turning errno into a
// typed error is src/sys/errno.ts's job. Buffers passed as U8Array are written in place by the callee
// (checked under Node and Bun). A `null` pointer argument is passed as a 64-bit zero.

import { constants as fsConstants } from "node:fs";
import { DataType, load, open as openLibrary } from "ffi-rs";

let opened = false;
function libc(): void {
  if (!opened) {
    openLibrary({ library: "libc", path: "" });
    opened = true;
  }
}

export interface CResult {
  value: number;
  errno: number;
}

function call(funcName: string, retType: DataType, paramsType: DataType[], paramsValue: unknown[]): CResult {
  libc();
  const r = load({
    library: "libc",
    funcName,
    retType,
    paramsType,
    paramsValue,
    errno: true,
  } as never) as unknown as { value: number | bigint; errnoCode: number };
  return { value: Number(r.value), errno: r.value === -1 || r.value === -1n ? r.errnoCode : 0 };
}

/** A C argument: integers (int, long, size_t, pointers given as 0), C strings, in/out byte buffers, NULL. */
export type CArg = number | string | Uint8Array | null;

function typeOf(a: CArg): DataType {
  if (typeof a === "string") return DataType.String;
  if (a instanceof Uint8Array) return DataType.U8Array;
  return DataType.I64;
}

/** Calls `funcName` with argument types derived from the values (for variadic and pointer-or-NULL
 * parameters): every integer travels as a 64-bit register value, which is what the ABI does for `int`
 * and `long` arguments on x86_64 and aarch64. */
function callArgs(funcName: string, retType: DataType, args: CArg[]): CResult {
  return call(
    funcName,
    retType,
    args.map(typeOf),
    args.map((a) => (a === null ? 0 : a)),
  );
}

// ---- flags (asm-generic values, identical on x86_64 and aarch64 unless noted) ----
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
/** O_NOFOLLOW and O_NONBLOCK differ between architectures (x86_64 O_NOFOLLOW 0o400000, aarch64
 * 0o100000): taken from the runtime's own <fcntl.h> values. */
export const O_NOFOLLOW = fsConstants.O_NOFOLLOW;
export const O_NONBLOCK = fsConstants.O_NONBLOCK;
/** mount(2) flags, <linux/mount.h> / <sys/mount.h>. */
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_MOVE = 8192;
export const MS_REC = 16384;
export const MS_SILENT = 32768;
export const MS_PRIVATE = 1 << 18;
export const MS_SLAVE = 1 << 19;
export const MS_SHARED = 1 << 20;
/** umount2(2) flags. */
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
/** The "current directory" dirfd for *at() calls. */
export const AT_FDCWD = -100;

/** int open(const char *pathname, int flags, mode_t mode); */
export function open(path: string, flags: number, mode = 0): CResult {
  return call("open", DataType.I32, [DataType.String, DataType.I32, DataType.I32], [path, flags, mode]);
}

/** int close(int fd); */
export function close(fd: number): CResult {
  return call("close", DataType.I32, [DataType.I32], [fd]);
}

/** ssize_t read(int fd, void *buf, size_t count); */
export function read(fd: number, buf: Uint8Array): CResult {
  return call("read", DataType.I64, [DataType.I32, DataType.U8Array, DataType.U64], [fd, buf, buf.length]);
}

/** ssize_t pread(int fd, void *buf, size_t count, off_t offset); */
export function pread(fd: number, buf: Uint8Array, offset: number): CResult {
  return call(
    "pread",
    DataType.I64,
    [DataType.I32, DataType.U8Array, DataType.U64, DataType.I64],
    [fd, buf, buf.length, offset],
  );
}

/** int ioctl(int fd, unsigned long request, ...); — the third argument is a struct buffer (written in
 * place by _IOR/_IOWR requests), an integer, or absent. */
export function ioctl(fd: number, request: number, arg?: Uint8Array | number): CResult {
  return callArgs("ioctl", DataType.I32, arg === undefined ? [fd, request] : [fd, request, arg]);
}

/** int mount(const char *source, const char *target, const char *filesystemtype, unsigned long
 * mountflags, const void *data); */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
): CResult {
  return callArgs("mount", DataType.I32, [source, target, fstype, flags, data]);
}

/** int umount2(const char *target, int flags); */
export function umount2(target: string, flags: number): CResult {
  return call("umount2", DataType.I32, [DataType.String, DataType.I32], [target, flags]);
}

/** int chroot(const char *path); */
export function chroot(path: string): CResult {
  return call("chroot", DataType.I32, [DataType.String], [path]);
}

/** int chdir(const char *path); */
export function chdir(path: string): CResult {
  return call("chdir", DataType.I32, [DataType.String], [path]);
}

/** long syscall(long number, ...); — for system calls glibc 2.36 may lack a wrapper for (the new mount
 * API, pivot_root); numbers in ./syscalls.ts. */
export function syscall(nr: number, ...args: CArg[]): CResult {
  return callArgs("syscall", DataType.I64, [nr, ...args]);
}

/** ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size); */
export function lgetxattr(path: string, name: string, buf: Uint8Array): CResult {
  return call(
    "lgetxattr",
    DataType.I64,
    [DataType.String, DataType.String, DataType.U8Array, DataType.U64],
    [path, name, buf, buf.length],
  );
}

/** ssize_t llistxattr(const char *path, char *list, size_t size); */
export function llistxattr(path: string, buf: Uint8Array): CResult {
  return call(
    "llistxattr",
    DataType.I64,
    [DataType.String, DataType.U8Array, DataType.U64],
    [path, buf, buf.length],
  );
}

// ---- measured boot: a socket to a TPM simulator, the log's lock, CLOCK_BOOTTIME ----

/** <bits/socket_type.h> SOCK_STREAM, and SOCK_CLOEXEC (= O_CLOEXEC) or'ed into the type. */
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0o2000000;
/** <sys/file.h> flock(2) operations. */
export const LOCK_EX = 2;
/** <linux/time.h> CLOCK_BOOTTIME: CLOCK_MONOTONIC plus time suspended; what systemd's log timestamps use. */
export const CLOCK_BOOTTIME = 7;

/** int socket(int domain, int type, int protocol); */
export function socket(domain: number, type: number, protocol: number): CResult {
  return call("socket", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [domain, type, protocol]);
}

/** int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen); */
export function connect(fd: number, addr: Uint8Array): CResult {
  return call(
    "connect",
    DataType.I32,
    [DataType.I32, DataType.U8Array, DataType.I32],
    [fd, addr, addr.length],
  );
}

/** int flock(int fd, int operation); */
export function flock(fd: number, operation: number): CResult {
  return call("flock", DataType.I32, [DataType.I32, DataType.I32], [fd, operation]);
}

/** int clock_gettime(clockid_t clockid, struct timespec *tp); */
export function clockGettime(clock: number, timespec: Uint8Array): CResult {
  return call("clock_gettime", DataType.I32, [DataType.I32, DataType.U8Array], [clock, timespec]);
}

// ---- the PID-1 mode only: hand over the process, power off ----

/** int execl(const char *path, const char *arg, ... /, (char *) NULL /); — returns only on failure. The
 * variadic strings travel as pointers in registers, as for a fixed prototype (x86_64 and aarch64 SysV). */
export function execl(path: string, argv: string[]): CResult {
  return call(
    "execl",
    DataType.I32,
    [DataType.String, ...argv.map(() => DataType.String), DataType.I64],
    [path, ...argv, 0],
  );
}

/** <sys/reboot.h> RB_POWER_OFF (LINUX_REBOOT_CMD_POWER_OFF). */
export const RB_POWER_OFF = 0x4321fedc;

/** int reboot(int op); — returns only on failure. */
export function reboot(op: number): CResult {
  return call("reboot", DataType.I32, [DataType.I32], [op]);
}

/** void sync(void); */
export function sync(): void {
  call("sync", DataType.Void, [], []);
}
