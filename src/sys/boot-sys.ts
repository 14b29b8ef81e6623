// The boot's intents (`BootSys`) over the system calls of a `Sys`: which mount(2) flags make a bind, a
// read-only remount or a private tree, how the composefs mount picks its kernel path, how the staged root
// replaces SYSROOT's mount with a clone of it kept to put back. The real boot wraps the real Sys; the
// fault-injection tier wraps one that fails its k-th call.

import { SysError } from "../base/errors.ts";
import {
  AT_FDCWD,
  MNT_DETACH,
  MS_BIND,
  MS_MOVE,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  MS_SILENT,
} from "./ffi/libc.ts";
import { AT_RECURSIVE, MOVE_MOUNT_F_EMPTY_PATH, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE } from "./ffi/syscalls.ts";
import type { CompatForce } from "./kernel-compat.ts";
import { mountComposefs, openImage, probeRead } from "./mount.ts";
import type { BootSys, Sys } from "./types.ts";

export interface BootSysOptions {
  /** Force a kernel path of the composefs mount (see kernel-compat.ts); absent = the modern one with
   * fallbacks on its errno. */
  force?: CompatForce;
}

export function bootSys(sys: Sys, o: BootSysOptions = {}): BootSys {
  return {
    readFile: (...a) => sys.readFile(...a),
    readFileIfExists: (...a) => sys.readFileIfExists(...a),
    lstat: (p) => sys.lstat(p),
    lstatIfExists: (p) => sys.lstatIfExists(p),
    readlink: (...a) => sys.readlink(...a),
    readdir: (p) => sys.readdir(p),
    lgetxattr: (...a) => sys.lgetxattr(...a),
    llistxattr: (...a) => sys.llistxattr(...a),
    stat: (p) => sys.stat(p),
    mkdir: (p, mode) => sys.mkdir(p, mode),
    rmdir: (p) => sys.rmdir(p),
    unlink: (p) => sys.unlink(p),
    symlink: (t, p) => sys.symlink(t, p),
    writeFile: (p, d, mode) => sys.writeFile(p, d, mode),
    makePrivate: (path) => sys.mount(null, path, null, MS_REC | MS_PRIVATE, null),
    bind: (source, target) => sys.mount(source, target, null, MS_BIND | MS_SILENT, null),
    remountReadonly: (target) =>
      sys.mount(null, target, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_SILENT, null),
    mountOverlay: (target, l) =>
      sys.mount(
        "overlay",
        target,
        "overlay",
        MS_SILENT,
        `lowerdir=${l.lowerdir},upperdir=${l.upperdir},workdir=${l.workdir}`,
      ),
    unmount(target) {
      try {
        sys.umount2(target, MNT_DETACH);
        return true;
      } catch (e) {
        if (e instanceof SysError && e.errno === "EINVAL") return false;
        throw e;
      }
    },
    openImage: (path) => openImage(sys, path),
    measureVerity: (fd, path) => sys.measureVerity(fd, path),
    close: (fd) => sys.close(fd),
    mountComposefs: (opts) => mountComposefs(sys, o.force ? { ...opts, force: o.force } : opts),
    probeRead: (root, rel) => probeRead(sys, root, rel),
    replaceMount: (staging, target, warn) => replaceMount(sys, staging, target, warn),
    tpmMeasure: (pcr, event) => sys.tpmMeasure(pcr, event),
    get tpmDevices() {
      return sys.tpmDevices;
    },
    appendMeasureLog: (path, record) => sys.appendMeasureLog(path, record),
    measureLogStamp: () => sys.measureLogStamp(),
  };
}

/**
 * Detach what is mounted on `target` (it lives on inside the staged root, e.g. as /sysroot) and move the
 * staged mount onto it. A detached clone of `target`'s mount tree is taken first (open_tree, Linux 5.2)
 * and attached back if the move fails, so `target` keeps its exact mount and flags; before Linux 5.2 only
 * the staged `/sysroot` bind can be put back.
 */
function replaceMount(
  sys: Sys,
  staging: string,
  target: string,
  warn: Parameters<BootSys["replaceMount"]>[2],
): void {
  const saved = cloneMountTree(sys, target);
  try {
    sys.umount2(target, MNT_DETACH);
    try {
      sys.mount(staging, target, null, MS_MOVE, null);
    } catch (e) {
      try {
        if (saved === undefined) sys.mount(`${staging}/sysroot`, target, null, MS_BIND, null);
        else sys.moveMount(saved, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
      } catch (restoreError) {
        // the move's error is the one thrown
        warn("rollback", `restore ${target}`, restoreError);
      }
      throw e;
    }
  } finally {
    if (saved !== undefined) {
      // once the move is done (or undone) nothing depends on the clone
      try {
        sys.close(saved);
      } catch (e) {
        warn("cleanup", `close the clone of ${target}`, e);
      }
    }
  }
}

/** open_tree(OPEN_TREE_CLONE|AT_RECURSIVE); `undefined` before Linux 5.2 (ENOSYS). */
function cloneMountTree(sys: Sys, path: string): number | undefined {
  try {
    return sys.openTree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  } catch (e) {
    if (e instanceof SysError && e.errno === "ENOSYS") return undefined;
    throw e;
  }
}
