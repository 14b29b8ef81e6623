// The PID-1 mode's mounts (src/boot/init.ts) stated as intent over a `Sys`'s system calls: an API file
// system with the flags systemd mounts it with, the root device, a mount moved into the new root, a lazy
// detach, and the bytes of a block device read without keeping it open. The flags stay here, in sys/;
// the real PID 1 (sys/real.ts realInitSys) and init.test.ts's recording kernel both take them from here.

import {
  MNT_DETACH,
  MS_MOVE,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  O_CLOEXEC,
  O_RDONLY,
} from "./ffi/libc.ts";
import type { InitMounts, Sys } from "./types.ts";

/** The API file systems PID 1 mounts: nosuid everywhere, nodev and noexec where no device node or
 * program belongs (as systemd's mount-setup.c, without its size limits). */
const API_FS = {
  proc: { flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: null },
  sysfs: { flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: null },
  devtmpfs: { flags: MS_NOSUID, data: "mode=0755" },
  tmpfs: { flags: MS_NOSUID | MS_NODEV, data: "mode=0755" },
} as const;

export function initMounts(sys: Sys): InitMounts {
  return {
    mountApiFs(fstype, target) {
      const { flags, data } = API_FS[fstype];
      sys.mount(fstype, target, fstype, flags, data);
    },
    mountDevice: (device, target, fstype, readonly, options) =>
      sys.mount(device, target, fstype, readonly ? MS_RDONLY : 0, options),
    move: (from, to) => sys.mount(from, to, null, MS_MOVE, null),
    detach: (target) => sys.umount2(target, MNT_DETACH),
    readDevice(path, length, offset) {
      const fd = sys.open(path, O_RDONLY | O_CLOEXEC);
      try {
        return sys.pread(fd, length, offset);
      } finally {
        sys.close(fd);
      }
    },
  };
}
