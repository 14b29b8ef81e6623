// Kernel fs-verity: measure a file's digest on an open fd (FS_IOC_MEASURE_VERITY) and enable verity on a
// file (FS_IOC_ENABLE_VERITY, SHA-256, 4096-byte blocks, no salt — what ostree and `fsverity enable`
// use). The userspace computation of the same digest is src/verify/fsverity.ts; this module only asks the
// kernel. Errors are SysErrors whose message says what the file system or kernel lacks.

import type { SysError } from "../base/errors.ts";
import { EEXIST, ENODATA, errnoName, sysError } from "./errno.ts";
import { close, ioctl, O_CLOEXEC, O_RDONLY, open } from "./ffi/libc.ts";
import {
  decodeFsverityDigest,
  encodeFsverityEnableArg,
  FS_IOC_ENABLE_VERITY,
  FS_IOC_MEASURE_VERITY,
  FS_VERITY_HASH_ALG_SHA256,
  FS_VERITY_HASH_ALG_SHA512,
  fsverityDigestBuffer,
} from "./ffi/structs.ts";
import type { VerityDigest } from "./types.ts";

const ALGORITHMS: Record<number, string> = {
  [FS_VERITY_HASH_ALG_SHA256]: "sha256",
  [FS_VERITY_HASH_ALG_SHA512]: "sha512",
};

/** What a failing verity ioctl's errno means, as the `expected …` part of the message. A kernel built
 * without CONFIG_FS_VERITY answers EOPNOTSUPP (the fsverity_ioctl_* stubs); a file system with no verity
 * support at all answers ENOTTY (unknown ioctl); ext4 without the `verity` feature refuses enabling with
 * EOPNOTSUPP. */
const EXPECTED: Record<"measure" | "enable", Record<string, string>> = {
  measure: {
    EOPNOTSUPP: "a kernel with fs-verity (CONFIG_FS_VERITY)",
    ENOTTY: "a file system that supports fs-verity (ext4, f2fs, btrfs)",
    EOVERFLOW: "a digest of at most 64 bytes",
  },
  enable: {
    EOPNOTSUPP:
      "fs-verity in the kernel (CONFIG_FS_VERITY) and in the file system (mkfs.ext4 -O verity or tune2fs -O verity)",
    ENOTTY: "a file system that supports fs-verity (ext4, f2fs, btrfs)",
    ETXTBSY: "no process holding the file open for writing",
    EINVAL: "a file system block size of 4096 bytes (the Merkle tree block size)",
    EROFS: "a writable file system",
    EACCES: "read access to the file",
    EPERM: "a regular file the caller owns",
    EKEYREJECTED: "no fs-verity built-in signature policy rejecting the file",
  },
};

function verityError(op: "measure" | "enable", path: string, errno: number): SysError {
  const expected = EXPECTED[op][errnoName(errno)];
  const action = op === "measure" ? "measure fs-verity of" : "enable fs-verity on";
  return sysError(action, path, errno, expected ? { expected } : {});
}

/** FS_IOC_MEASURE_VERITY on an open fd. `undefined` when the file has no fs-verity (ENODATA); throws a
 * SysError for ENOTTY/EOPNOTSUPP (no fs-verity in the kernel or file system) and anything else. */
export function measureVerity(fd: number, path: string): VerityDigest | undefined {
  const buf = fsverityDigestBuffer();
  const r = ioctl(fd, FS_IOC_MEASURE_VERITY, buf);
  if (r.value < 0) {
    if (r.errno === ENODATA) return undefined;
    throw verityError("measure", path, r.errno);
  }
  const { algorithm, digest } = decodeFsverityDigest(buf);
  return { algorithm: ALGORITHMS[algorithm] ?? `alg${algorithm}`, digest };
}

/** Opens `path` read-only and measures it (see measureVerity). */
export function measureVerityPath(path: string): VerityDigest | undefined {
  const fd = openReadOnly(path);
  try {
    return measureVerity(fd, path);
  } finally {
    close(fd);
  }
}

/** FS_IOC_ENABLE_VERITY with SHA-256 and 4096-byte blocks. Returns false when verity was already enabled
 * (EEXIST). The file must not be open for writing anywhere (ETXTBSY). */
export function enableVerity(path: string): boolean {
  const fd = openReadOnly(path);
  try {
    const r = ioctl(fd, FS_IOC_ENABLE_VERITY, encodeFsverityEnableArg());
    if (r.value < 0) {
      if (r.errno === EEXIST) return false;
      throw verityError("enable", path, r.errno);
    }
    return true;
  } finally {
    close(fd);
  }
}

function openReadOnly(path: string): number {
  const r = open(path, O_RDONLY | O_CLOEXEC);
  if (r.value < 0) throw sysError("open", path, r.errno);
  return r.value;
}
