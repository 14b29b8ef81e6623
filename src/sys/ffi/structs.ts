// The kernel structs sealroot passes to ioctl() and mount_setattr(), encoded and decoded with DataView at
// named offsets, and the ioctl request numbers, each with the header and _IO* macro that defines it. Pure
// (no ffi-rs): the bytes are handed to ./libc.ts. Offsets, sizes and numbers are checked against the
// machine's kernel headers by test/privileged/kernel-abi.test.ts (gcc) and pinned in structs.test.ts.

import { FormatError } from "../../base/errors.ts";

// ---- ioctl request encoding: <asm-generic/ioctl.h>, used by both x86_64 and aarch64 ----
const IOC_WRITE = 1;
const IOC_READ = 2;
/** `_IOC(dir, type, nr, size)`: dir in bits 30–31, size in 16–29, type in 8–15, nr in 0–7. */
export function ioc(dir: number, type: string, nr: number, size: number): number {
  return ((dir << 30) >>> 0) + (size << 16) + (type.charCodeAt(0) << 8) + nr;
}

/** <linux/fsverity.h> `_IOW('f', 133, struct fsverity_enable_arg)` = 0x40806685. */
export const FS_IOC_ENABLE_VERITY = ioc(IOC_WRITE, "f", 133, 128);
/** <linux/fsverity.h> `_IOWR('f', 134, struct fsverity_digest)` = 0xC0046686 (size of the 4-byte header). */
export const FS_IOC_MEASURE_VERITY = ioc(IOC_READ | IOC_WRITE, "f", 134, 4);
/** <linux/fs.h> `_IOR('f', 1, long)` = 0x80086601 on 64-bit; the kernel reads and writes an int through it. */
export const FS_IOC_GETFLAGS = ioc(IOC_READ, "f", 1, 8);
/** <linux/fs.h> `_IOW('f', 2, long)` = 0x40086602 on 64-bit. */
export const FS_IOC_SETFLAGS = ioc(IOC_WRITE, "f", 2, 8);
/** <linux/fs.h> inode flag `FS_IMMUTABLE_FL` (`chattr +i`): no entry may be added, removed or renamed. */
export const FS_IMMUTABLE_FL = 0x10;
/** <linux/loop.h> `#define LOOP_CTL_GET_FREE 0x4C82` (plain number, no _IO macro); on /dev/loop-control. */
export const LOOP_CTL_GET_FREE = 0x4c82;
/** <linux/loop.h> `#define LOOP_CONFIGURE 0x4C0A` (plain number, Linux 5.8+); on /dev/loopN. */
export const LOOP_CONFIGURE = 0x4c0a;

// ---- struct fsverity_digest { __u16 digest_algorithm; __u16 digest_size; __u8 digest[]; } ----
export const FS_VERITY_HASH_ALG_SHA256 = 1;
export const FS_VERITY_HASH_ALG_SHA512 = 2;
/** The largest digest any fs-verity algorithm produces (SHA-512), as libcomposefs sizes its buffer. */
export const FSVERITY_MAX_DIGEST_SIZE = 64;
const FSVERITY_DIGEST = { digestAlgorithm: 0, digestSize: 2, digest: 4 } as const;

/** The in/out buffer for FS_IOC_MEASURE_VERITY: digest_size set to the room available. */
export function fsverityDigestBuffer(room = FSVERITY_MAX_DIGEST_SIZE): Uint8Array {
  const buf = new Uint8Array(FSVERITY_DIGEST.digest + room);
  new DataView(buf.buffer).setUint16(FSVERITY_DIGEST.digestSize, room, true);
  return buf;
}

/** Reads what the kernel wrote back; a digest_size larger than the buffer is a FormatError. */
export function decodeFsverityDigest(buf: Uint8Array): { algorithm: number; digest: Uint8Array } {
  if (buf.length < FSVERITY_DIGEST.digest)
    throw new FormatError(`Cannot decode struct fsverity_digest: ${buf.length} bytes, expected at least 4`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const algorithm = v.getUint16(FSVERITY_DIGEST.digestAlgorithm, true);
  const size = v.getUint16(FSVERITY_DIGEST.digestSize, true);
  if (size > buf.length - FSVERITY_DIGEST.digest)
    throw new FormatError(
      `Cannot decode struct fsverity_digest: digest_size ${size}, expected at most ${buf.length - FSVERITY_DIGEST.digest}`,
    );
  return { algorithm, digest: buf.slice(FSVERITY_DIGEST.digest, FSVERITY_DIGEST.digest + size) };
}

// ---- struct fsverity_enable_arg (128 bytes) ----
export const FSVERITY_ENABLE_ARG_SIZE = 128;
export const FSVERITY_ENABLE_ARG = {
  version: 0, // u32, must be 1
  hashAlgorithm: 4, // u32, FS_VERITY_HASH_ALG_*
  blockSize: 8, // u32
  saltSize: 12, // u32
  saltPtr: 16, // u64 (a user pointer; sealroot never salts, so 0)
  sigSize: 24, // u32
  reserved1: 28, // u32
  sigPtr: 32, // u64 (a user pointer; no builtin signatures, so 0)
  reserved2: 40, // u64[11]
} as const;

/** What `fsverity enable` uses by default and what ostree/composefs expect: SHA-256, 4096-byte blocks,
 * no salt, no signature. */
export function encodeFsverityEnableArg(
  opts: { hashAlgorithm?: number; blockSize?: number } = {},
): Uint8Array {
  const buf = new Uint8Array(FSVERITY_ENABLE_ARG_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(FSVERITY_ENABLE_ARG.version, 1, true);
  v.setUint32(FSVERITY_ENABLE_ARG.hashAlgorithm, opts.hashAlgorithm ?? FS_VERITY_HASH_ALG_SHA256, true);
  v.setUint32(FSVERITY_ENABLE_ARG.blockSize, opts.blockSize ?? 4096, true);
  return buf;
}

// ---- struct loop_config { __u32 fd; __u32 block_size; struct loop_info64 info; __u64 __reserved[8]; } ----
export const LOOP_CONFIG_SIZE = 304;
export const LOOP_CONFIG = { fd: 0, blockSize: 4, info: 8, reserved: 240 } as const;
/** struct loop_info64 (232 bytes), offsets relative to its start. */
export const LOOP_INFO64 = { loFlags: 52, loFileName: 56 } as const;
export const LO_NAME_SIZE = 64;
export const LO_FLAGS_READ_ONLY = 1;
export const LO_FLAGS_AUTOCLEAR = 4;
export const LO_FLAGS_PARTSCAN = 8;
export const LO_FLAGS_DIRECT_IO = 16;

/** A read-only, autoclear loop over `fd`, as libcomposefs 1.0.8 `setup_loopback` configures it: block size
 * 4096 (the EROFS block size) and flags READ_ONLY|DIRECT_IO|AUTOCLEAR. `fileName` (shown by losetup) is
 * truncated to 63 bytes plus NUL. */
export function encodeLoopConfig(opts: {
  fd: number;
  blockSize?: number;
  flags?: number;
  fileName?: string;
}): Uint8Array {
  const buf = new Uint8Array(LOOP_CONFIG_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(LOOP_CONFIG.fd, opts.fd, true);
  v.setUint32(LOOP_CONFIG.blockSize, opts.blockSize ?? 4096, true);
  v.setUint32(
    LOOP_CONFIG.info + LOOP_INFO64.loFlags,
    opts.flags ?? LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR,
    true,
  );
  if (opts.fileName !== undefined) {
    const name = new TextEncoder().encode(opts.fileName).subarray(0, LO_NAME_SIZE - 1);
    buf.set(name, LOOP_CONFIG.info + LOOP_INFO64.loFileName);
  }
  return buf;
}

// ---- struct mount_attr { __u64 attr_set; __u64 attr_clr; __u64 propagation; __u64 userns_fd; } ----
export const MOUNT_ATTR_SIZE = 32;
export const MOUNT_ATTR = { attrSet: 0, attrClr: 8, propagation: 16, usernsFd: 24 } as const;

export interface MountAttr {
  attrSet?: number;
  attrClr?: number;
  /** MS_PRIVATE, MS_SLAVE, MS_SHARED or 0 (unchanged). */
  propagation?: number;
  usernsFd?: number;
}

export function encodeMountAttr(a: MountAttr): Uint8Array {
  const buf = new Uint8Array(MOUNT_ATTR_SIZE);
  const v = new DataView(buf.buffer);
  v.setBigUint64(MOUNT_ATTR.attrSet, BigInt(a.attrSet ?? 0), true);
  v.setBigUint64(MOUNT_ATTR.attrClr, BigInt(a.attrClr ?? 0), true);
  v.setBigUint64(MOUNT_ATTR.propagation, BigInt(a.propagation ?? 0), true);
  v.setBigUint64(MOUNT_ATTR.usernsFd, BigInt(a.usernsFd ?? 0), true);
  return buf;
}

// ---- struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; } (<sys/un.h>), for connect() ----
export const AF_UNIX = 1;
export const SOCKADDR_UN_SIZE = 110;
export const SOCKADDR_UN = { family: 0, path: 2 } as const;
const SUN_PATH_SIZE = 108;

/** A filesystem AF_UNIX address; the path (UTF-8) must leave room for its NUL in sun_path[108]. */
export function encodeSockaddrUn(path: string): Uint8Array {
  const name = new TextEncoder().encode(path);
  if (name.length === 0 || name.length >= SUN_PATH_SIZE || name.includes(0))
    throw new FormatError(
      `Cannot encode struct sockaddr_un for ${JSON.stringify(path)}: ${name.length} bytes, expected 1…${SUN_PATH_SIZE - 1} without NUL`,
    );
  const buf = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(buf.buffer).setUint16(SOCKADDR_UN.family, AF_UNIX, true);
  buf.set(name, SOCKADDR_UN.path);
  return buf;
}

// ---- struct timespec { time_t tv_sec; long tv_nsec; } (64-bit), for clock_gettime() ----
export const TIMESPEC_SIZE = 16;

/** Microseconds of a struct timespec the kernel wrote. */
export function decodeTimespecUsec(buf: Uint8Array): number {
  if (buf.length !== TIMESPEC_SIZE)
    throw new FormatError(`Cannot decode struct timespec: ${buf.length} bytes, expected ${TIMESPEC_SIZE}`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return Number(v.getBigInt64(0, true)) * 1_000_000 + Math.floor(Number(v.getBigInt64(8, true)) / 1000);
}
