// The real `Sys`: node:fs for directories, links and atomic writes, libc through sys/ffi for everything
// Node cannot do (fds with exact flags, ioctls, mount(2), the new mount API, pivot_root). Each failure
// becomes a SysError naming the call, the path and the errno; new-mount-API failures also carry the
// kernel's own fs-context log text, which says far more than the errno.

import {
  chmodSync,
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { release } from "node:os";
import { q } from "../base/errors.ts";
import { EBUSY, EEXIST, ENODATA, errnoName, sysError } from "./errno.ts";
import * as libc from "./ffi/libc.ts";
import { encodeLoopConfig, encodeMountAttr, LOOP_CONFIGURE, LOOP_CTL_GET_FREE } from "./ffi/structs.ts";
import * as sc from "./ffi/syscalls.ts";
import { nodeErr, realFs, realpath, toStat } from "./fs.ts";
import { initMounts } from "./init-sys.ts";
import { describeFsConfigOp } from "./mount.ts";
import { appendMeasureLog, bootId, boottimeUsec, measureOnTpm, TPM_DEVICES } from "./tpm.ts";
import type { FsConfigOp, InitSys, LoopDevice, Sys } from "./types.ts";
import { enableVerity, measureVerity } from "./verity.ts";
import { writeFileAtomic } from "./write.ts";

/** LOOP_CTL_GET_FREE hands the same free device to racing callers; LOOP_CONFIGURE then says EBUSY. */
const LOOP_ATTEMPTS = 8;

function nodeCall<T>(action: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw nodeErr(action, path, e);
  }
}

function check(r: libc.CResult, action: string, path: string, detail?: string): number {
  if (r.value < 0) throw sysError(action, path, r.errno, detail ? { detail } : {});
  return r.value;
}

/** Names of the filesystem contexts opened by fsopen, for messages. */
const fsNames = new Map<number, string>();

/** The kernel's messages queued on a filesystem context ("e overlay: …"), read until ENODATA. */
function fsContextLog(fsfd: number): string {
  const lines: string[] = [];
  const buf = new Uint8Array(4096);
  for (let i = 0; i < 16; i++) {
    const r = libc.read(fsfd, buf);
    if (r.value < 0) {
      if (r.errno !== ENODATA) lines.push(`(reading the log: ${errnoName(r.errno)})`);
      break;
    }
    lines.push(new TextDecoder().decode(buf.subarray(0, r.value)).trim());
  }
  return lines.length > 0 ? `kernel: ${lines.join("; ")}` : "";
}

function fsconfigArgs(op: FsConfigOp): [number, string | null, string | null, number] {
  switch (op.kind) {
    case "flag":
      return [sc.FSCONFIG_SET_FLAG, op.key, null, 0];
    case "string":
      return [sc.FSCONFIG_SET_STRING, op.key, op.value, 0];
    case "fd":
      return [sc.FSCONFIG_SET_FD, op.key, null, op.fd];
    case "create":
      return [sc.FSCONFIG_CMD_CREATE, null, null, 0];
  }
}

function loopAttach(fd: number, fileName: string): LoopDevice {
  for (let attempt = 1; ; attempt++) {
    const ctl = check(
      libc.open("/dev/loop-control", libc.O_RDWR | libc.O_CLOEXEC),
      "open",
      "/dev/loop-control",
    );
    const nr = libc.ioctl(ctl, LOOP_CTL_GET_FREE);
    libc.close(ctl);
    check(nr, "get a free loop device from", "/dev/loop-control");
    const device = `/dev/loop${nr.value}`;
    const lfd = check(libc.open(device, libc.O_RDWR | libc.O_CLOEXEC), "open", device);
    const r = libc.ioctl(lfd, LOOP_CONFIGURE, encodeLoopConfig({ fd, fileName }));
    if (r.value >= 0) return { device, fd: lfd };
    libc.close(lfd);
    if (r.errno !== EBUSY || attempt >= LOOP_ATTEMPTS)
      throw sysError(`attach ${q(fileName)} to loop device`, device, r.errno);
  }
}

export const realSys: Sys = {
  ...realFs,

  stat(path) {
    return realFs.lstat(realpath(path));
  },
  mkdir(path, mode) {
    nodeCall("create directory", path, () => mkdirSync(path));
    // exact mode, whatever the umask (ostree's /run/ostree/.private is 0000)
    nodeCall("set mode of", path, () => chmodSync(path, mode));
  },
  rmdir(path) {
    nodeCall("remove directory", path, () => rmdirSync(path));
  },
  unlink(path) {
    nodeCall("remove", path, () => unlinkSync(path));
  },
  symlink(target, path) {
    nodeCall(`create symlink to ${q(target)} at`, path, () => symlinkSync(target, path));
  },
  writeFile(path, data, mode) {
    writeFileAtomic(path, data, mode);
  },
  open(path, flags) {
    return check(libc.open(path, flags), "open", path);
  },
  fstat(fd, path) {
    try {
      return toStat(fstatSync(fd, { bigint: true }));
    } catch (e) {
      throw nodeErr("stat", path, e);
    }
  },
  close(fd) {
    fsNames.delete(fd);
    check(libc.close(fd), "close", `fd ${fd}`);
  },
  pread(fd, length, offset) {
    const buf = new Uint8Array(length);
    const n = check(libc.pread(fd, buf, offset), "read", `fd ${fd}`);
    return buf.subarray(0, n);
  },

  measureVerity,
  enableVerity,
  loopAttach,

  mount(source, target, fstype, flags, data) {
    check(
      libc.mount(source, target, fstype, flags, data),
      `mount ${fstype ?? "(no type)"} ${q(source ?? "(none)")} on`,
      target,
      data ?? undefined,
    );
  },
  umount2(target, flags) {
    check(libc.umount2(target, flags), "unmount", target);
  },
  fsopen(fsname, flags) {
    const fd = check(sc.fsopen(fsname, flags), "open a filesystem context for", fsname);
    fsNames.set(fd, fsname);
    return fd;
  },
  fsconfig(fsfd, op) {
    const [cmd, key, value, aux] = fsconfigArgs(op);
    const r = sc.fsconfig(fsfd, cmd, key, value, aux);
    if (r.value < 0) {
      const log = fsContextLog(fsfd);
      const fsname = fsNames.get(fsfd) ?? `fs context ${fsfd}`;
      const action = op.kind === "create" ? "create the superblock of" : `set ${fsname} option`;
      throw sysError(
        action,
        op.kind === "create" ? fsname : describeFsConfigOp(op),
        r.errno,
        log ? { detail: log } : {},
      );
    }
  },
  fsmount(fsfd, flags, attrFlags) {
    const r = sc.fsmount(fsfd, flags, attrFlags);
    if (r.value < 0) {
      const log = fsContextLog(fsfd);
      throw sysError(
        "create a mount of",
        fsNames.get(fsfd) ?? `fs context ${fsfd}`,
        r.errno,
        log ? { detail: log } : {},
      );
    }
    return r.value;
  },
  moveMount(fromDfd, fromPath, toDfd, toPath, flags) {
    check(
      sc.moveMount(fromDfd, fromPath, toDfd, toPath, flags),
      `move mount fd ${fromDfd} ${q(fromPath)} to`,
      toPath,
    );
  },
  openTree(dfd, path, flags) {
    return check(sc.openTree(dfd, path, flags), "open mount tree", path);
  },
  mountSetattr(dfd, path, flags, attr) {
    check(sc.mountSetattr(dfd, path, flags, encodeMountAttr(attr)), "set mount attributes of", path);
  },
  pivotRoot(newRoot, putOld) {
    check(sc.pivotRoot(newRoot, putOld), `pivot root (old root to ${q(putOld)}) to`, newRoot);
  },
  chroot(path) {
    check(libc.chroot(path), "change root to", path);
  },
  chdir(path) {
    check(libc.chdir(path), "change directory to", path);
  },
  tpmDevices: TPM_DEVICES,
  tpmMeasure(pcr, event) {
    return measureOnTpm(pcr, event);
  },
  appendMeasureLog(path, record) {
    appendMeasureLog(path, record);
  },
  measureLogStamp() {
    const id = bootId((p) => new TextDecoder().decode(realFs.readFile(p, 64, "boot ID")));
    return { bootId: id, timestampUsec: boottimeUsec() };
  },
  kernelRelease() {
    return release();
  },
};

/** The real Sys measuring into the TPM at `path` (a device or a simulator's socket) instead of the
 * kernel's devices: `prepare-root --tpm`. */
export function realSysWithTpm(path: string): Sys {
  return { ...realSys, tpmDevices: [path], tpmMeasure: (pcr, event) => measureOnTpm(pcr, event, path) };
}

/** The real system for the PID-1 mode: `realSys` plus its mounts, module loading, exec, power-off and
 * device writes. */
export const realInitSys: InitSys = {
  ...realSys,
  ...initMounts(realSys),
  loadModule(path) {
    const fd = check(libc.open(path, libc.O_RDONLY | libc.O_CLOEXEC), "open", path);
    try {
      const r = sc.finitModule(fd, "", 0);
      if (r.value < 0 && r.errno === EEXIST) return false;
      check(r, "load kernel module", path);
      return true;
    } finally {
      libc.close(fd);
    }
  },
  exec(path, argv) {
    const r = libc.execl(path, argv);
    throw sysError(`execute (argv ${q(argv.join(" "))})`, path, r.errno);
  },
  powerOff() {
    libc.sync();
    const r = libc.reboot(libc.RB_POWER_OFF);
    throw sysError("power off (reboot RB_POWER_OFF)", "/", r.errno);
  },
  writeDevice(path, text) {
    const fd = nodeCall("open", path, () => openSync(path, "w"));
    try {
      nodeCall("write", path, () => writeSync(fd, text));
    } finally {
      closeSync(fd);
    }
  },
  sleep(ms) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  },
};
