// errno numbers (Linux, x86_64 and aarch64 share them) to symbolic names, and the one constructor of
// SysError used by src/sys/. Pure.

import { q, SysError } from "../base/errors.ts";

const NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  15: "ENOTBLK",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  26: "ETXTBSY",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  34: "ERANGE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  61: "ENODATA",
  74: "EBADMSG",
  75: "EOVERFLOW",
  84: "EILSEQ",
  95: "EOPNOTSUPP",
  110: "ETIMEDOUT",
  116: "ESTALE",
  122: "EDQUOT",
  124: "EMEDIUMTYPE",
  126: "ENOKEY",
  129: "EKEYREJECTED",
};

/** The errno numbers src/sys/ compares against (the names above are for messages). */
export const EBUSY = 16;
export const EEXIST = 17;
export const ERANGE = 34;
export const ENODATA = 61;

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}

/** `Cannot <action> "<path>": <ERRNO>[ (<detail>)][, expected <expected>]`. `detail` carries what the kernel
 * said (the new mount API's fs-context log); `expected` names what would have made the call succeed. */
export function sysError(
  action: string,
  path: string,
  errno: number | string,
  extra: { detail?: string; expected?: string } = {},
): SysError {
  const name = typeof errno === "number" ? errnoName(errno) : errno;
  const detail = extra.detail ? ` (${extra.detail})` : "";
  const expected = extra.expected ? `, expected ${extra.expected}` : "";
  return new SysError(name, `Cannot ${action} ${q(path)}: ${name}${detail}${expected}`, {
    path,
    action,
    ...(extra.detail ? { detail: extra.detail } : {}),
  });
}
