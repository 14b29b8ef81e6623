// The immutable inode flag (`chattr +i`) that ostree sets on every deployment directory once it is
// written: FS_IOC_GETFLAGS / FS_IOC_SETFLAGS through ffi-rs. `withMutableDir` lifts it around one write
// and puts it back, as ostree itself does when it has to change a deployment (needs CAP_LINUX_IMMUTABLE).

import { errnoName, sysError } from "./errno.ts";
import { close, ioctl, O_CLOEXEC, O_RDONLY, open } from "./ffi/libc.ts";
import { FS_IMMUTABLE_FL, FS_IOC_GETFLAGS, FS_IOC_SETFLAGS } from "./ffi/structs.ts";

/** The inode flags word (the kernel reads and writes an int; the buffer has the `long` the macro names). */
function flagsBuffer(flags = 0): Uint8Array {
  const buf = new Uint8Array(8);
  new DataView(buf.buffer).setUint32(0, flags >>> 0, true);
  return buf;
}

/** The flags, or `undefined` on a file system without inode flags (ENOTTY, EOPNOTSUPP). */
function getFlags(fd: number, path: string): number | undefined {
  const buf = flagsBuffer();
  const r = ioctl(fd, FS_IOC_GETFLAGS, buf);
  if (r.value < 0) {
    if (["ENOTTY", "EOPNOTSUPP"].includes(errnoName(r.errno))) return undefined;
    throw sysError("read the inode flags of", path, r.errno);
  }
  return new DataView(buf.buffer).getUint32(0, true);
}

function setFlags(fd: number, path: string, flags: number, action: string): void {
  const r = ioctl(fd, FS_IOC_SETFLAGS, flagsBuffer(flags));
  if (r.value < 0)
    throw sysError(action, path, r.errno, {
      expected: "CAP_LINUX_IMMUTABLE (root) on a file system with inode flags",
    });
}

/**
 * Runs `write` with `dir`'s immutable flag lifted, then sets it again (also when `write` fails); a
 * directory without the flag, or on a file system without inode flags (ENOTTY), is written as it is.
 */
export function withMutableDir(dir: string, write: () => void): void {
  const o = open(dir, O_RDONLY | O_CLOEXEC);
  if (o.value < 0) throw sysError("open", dir, o.errno);
  const fd = o.value;
  try {
    const flags = getFlags(fd, dir);
    if (flags === undefined || (flags & FS_IMMUTABLE_FL) === 0) {
      write();
      return;
    }
    setFlags(fd, dir, flags & ~FS_IMMUTABLE_FL, "lift the immutable flag of");
    try {
      write();
    } finally {
      setFlags(fd, dir, flags, "set the immutable flag again on");
    }
  } finally {
    close(fd);
  }
}
