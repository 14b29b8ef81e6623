// `Sys`: every side effect the boot orchestrator (src/boot/) may cause, as one interface over the file
// reads of FsRead. The real implementation is src/sys/real.ts; tests hand in a recording fake or wrap the
// real one to fail at the k-th call. Every method either succeeds or throws a SysError naming the call,
// the path and the errno; nothing returns -1. Pure types.

import type { FsRead, Stat } from "../base/fs.ts";
import type { BankDigest } from "../formats/tpm2.ts";
import type { MountAttr } from "./ffi/structs.ts";
import type { ComposefsMountOptions, ComposefsMountResult } from "./mount.ts";

export type { MountAttr };

/** One fs-verity measurement: the kernel's algorithm name and the digest bytes. */
export interface VerityDigest {
  /** "sha256" or "sha512" (FS_VERITY_HASH_ALG_*), as `fsverity measure` prints it. */
  algorithm: string;
  digest: Uint8Array;
}

/** One fsconfig(2) command on a filesystem context from fsopen(). */
export type FsConfigOp =
  | { kind: "flag"; key: string }
  | { kind: "string"; key: string; value: string }
  | { kind: "fd"; key: string; fd: number }
  | { kind: "create" };

/** A loop device bound to a file by LOOP_CONFIGURE; close `fd` once the device is mounted (autoclear). */
export interface LoopDevice {
  device: string;
  fd: number;
}

/** What one TPM measurement did: the TPM, the banks extended with their digests, active banks skipped. */
export interface TpmMeasurement {
  device: string;
  digests: BankDigest[];
  /** Active banks of the PCR sealroot cannot hash for (sm3_256, sha3_*), left unextended. */
  unsupported: string[];
}

export interface Sys extends FsRead {
  // ---- files and directories ----
  /** stat(2), following symlinks. */
  stat(path: string): Stat;
  mkdir(path: string, mode: number): void;
  rmdir(path: string): void;
  /** unlink(2): a file or symlink. */
  unlink(path: string): void;
  symlink(target: string, path: string): void;
  /** Atomic replace (temporary file, fsync, rename) with `mode`. */
  writeFile(path: string, data: Uint8Array | string, mode: number): void;
  /** open(2) with O_* flags from src/sys/ffi/libc.ts; returns the fd. */
  open(path: string, flags: number): number;
  /** fstat(2) of an open fd; `path` is for messages. */
  fstat(fd: number, path: string): Stat;
  close(fd: number): void;
  /** pread(2) of up to `length` bytes; shorter at end of file. */
  pread(fd: number, length: number, offset: number): Uint8Array;

  // ---- fs-verity ----
  /** FS_IOC_MEASURE_VERITY on `fd`; `undefined` when the file has no verity (ENODATA). Throws when the
   * file system or kernel has no fs-verity (ENOTTY/EOPNOTSUPP). `path` is for messages. */
  measureVerity(fd: number, path: string): VerityDigest | undefined;
  /** FS_IOC_ENABLE_VERITY (SHA-256, 4096-byte blocks, no salt); false when it was already enabled. */
  enableVerity(path: string): boolean;

  // ---- block devices ----
  /** LOOP_CTL_GET_FREE + LOOP_CONFIGURE over `fd`: read-only, direct I/O, autoclear, 4096-byte blocks. */
  loopAttach(fd: number, fileName: string): LoopDevice;

  // ---- mounts ----
  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
  ): void;
  umount2(target: string, flags: number): void;
  /** Returns the filesystem context fd. Failures of fsconfig/fsmount carry the kernel's log text. */
  fsopen(fsname: string, flags: number): number;
  fsconfig(fsfd: number, op: FsConfigOp): void;
  /** Returns a detached mount fd. `attrFlags` are MOUNT_ATTR_*. */
  fsmount(fsfd: number, flags: number, attrFlags: number): number;
  moveMount(fromDfd: number, fromPath: string, toDfd: number, toPath: string, flags: number): void;
  openTree(dfd: number, path: string, flags: number): number;
  mountSetattr(dfd: number, path: string, flags: number, attr: MountAttr): void;
  pivotRoot(newRoot: string, putOld: string): void;
  chroot(path: string): void;
  chdir(path: string): void;

  // ---- measured boot ----
  /** TPM2_PCR_Extend of `pcr` in every active bank with the digest of the UTF-8 `event`; `undefined`
   * when the machine has no TPM (none of `tpmDevices` exists). */
  tpmMeasure(pcr: number, event: string): TpmMeasurement | undefined;
  /** Where tpmMeasure looks for the TPM, in order (for messages). */
  readonly tpmDevices: readonly string[];
  /** Appends one formatted record to the userspace measurement log (parents created), as systemd does. */
  appendMeasureLog(path: string, record: string): void;
  /** The boot ID (32 hex digits) and CLOCK_BOOTTIME in µs that a log record carries. */
  measureLogStamp(): { bootId: string; timestampUsec: number };

  // ---- facts ----
  /** uname -r, for messages and logs (fallbacks are chosen by errno, not by version). */
  kernelRelease(): string;
}

/** The measured-boot calls, shared by `Sys` and `BootSys`. */
type MeasuredBoot = Pick<Sys, "tpmMeasure" | "tpmDevices" | "appendMeasureLog" | "measureLogStamp">;

/**
 * What the boot (src/boot/execute.ts) does to the system, stated as intent: a bind, a private mount tree,
 * a composefs mount, a move. src/sys/boot-sys.ts implements it over `Sys`'s system calls, so mount flags,
 * open flags and the kernel's fallbacks stay in sys/. Every method succeeds or throws a SysError.
 */
export interface BootSys
  extends FsRead,
    MeasuredBoot,
    Pick<Sys, "stat" | "mkdir" | "rmdir" | "unlink" | "symlink" | "writeFile" | "measureVerity" | "close"> {
  /** Makes every mount from `path` down private: a move out of a shared parent (systemd makes / shared)
   * is refused. Not undone. */
  makePrivate(path: string): void;
  /** Binds `source` on `target`. */
  bind(source: string, target: string): void;
  /** Remounts the bind at `target` read-only. */
  remountReadonly(target: string): void;
  /** An overlayfs on `target`. */
  mountOverlay(target: string, layers: { lowerdir: string; upperdir: string; workdir: string }): void;
  /** Detaches the mount at `target` (lazily); false when nothing was mounted there. */
  unmount(target: string): boolean;
  /** Opens the composefs image read-only, refusing anything but a regular file (no symlink followed). */
  openImage(path: string): number;
  /** The EROFS of the image on its fd plus the overlay over the object directories (sys/mount.ts), by
   * the kernel path this system has or was forced to. */
  mountComposefs(opts: Omit<ComposefsMountOptions, "force">): ComposefsMountResult;
  /** Reads the start of `root/rel`; an EIO (verity mismatch) is explained. */
  probeRead(root: string, rel: string): void;
  /**
   * Moves the mount at `staging` onto `target`, detaching what was mounted there; when the move fails,
   * the old mount is put back and the move's error thrown. `warn` hears what could not be restored
   * (phase "rollback") or tidied (phase "cleanup") without failing the call.
   */
  replaceMount(
    staging: string,
    target: string,
    warn: (phase: "rollback" | "cleanup", what: string, error: unknown) => void,
  ): void;
}

/** The PID-1 mode's mounts, stated as intent; src/sys/init-sys.ts implements them over `Sys`. */
export interface InitMounts {
  /** Mounts an API file system on `target` with the flags systemd gives it. */
  mountApiFs(fstype: "proc" | "sysfs" | "devtmpfs" | "tmpfs", target: string): void;
  /** Mounts a block device (the root) on `target`. */
  mountDevice(
    device: string,
    target: string,
    fstype: string,
    readonly: boolean,
    options: string | null,
  ): void;
  /** Moves the mount at `from` onto `to`. */
  move(from: string, to: string): void;
  /** Detaches the mount at `target` lazily. */
  detach(target: string): void;
  /** `length` bytes at `offset` of a device or file, opened only for the read. */
  readDevice(path: string, length: number, offset: number): Uint8Array;
}

/** What the PID-1 mode (src/boot/init.ts) needs beyond the orchestrator's `Sys`. */
export interface InitSys extends Sys, InitMounts {
  /** finit_module(2) of a decompressed `.ko`; false when the module was already loaded (EEXIST). */
  loadModule(path: string): boolean;
  /** execv: replaces the process; throws a SysError only when exec fails. */
  exec(path: string, argv: string[]): never;
  /** sync(2), then reboot(2) RB_POWER_OFF; throws a SysError only when the kernel refuses. */
  powerOff(): never;
  /** One write(2) of `text` to an existing file or device (/dev/kmsg takes one record per write). */
  writeDevice(path: string, text: string): void;
  /** Blocks the (single-threaded) boot for `ms` milliseconds. */
  sleep(ms: number): void;
}
