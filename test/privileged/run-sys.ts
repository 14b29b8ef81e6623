// Child program for sys-primitives.test.ts, run under Bun inside `unshare -m --propagation private`:
// exercises the real Sys's mount primitives (mount(2), the new mount API, open_tree, mount_setattr,
// pivot_root, chroot) on tmpfs and prints one JSON object of observations. Mounts die with the namespace.

import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SysError } from "../../src/base/errors.ts";
import { AT_FDCWD, MNT_DETACH, MS_PRIVATE, MS_REC } from "../../src/sys/ffi/libc.ts";
import {
  AT_EMPTY_PATH,
  FSMOUNT_CLOEXEC,
  FSOPEN_CLOEXEC,
  MOUNT_ATTR_RDONLY,
  MOVE_MOUNT_F_EMPTY_PATH,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
} from "../../src/sys/ffi/syscalls.ts";
import { realSys as sys } from "../../src/sys/real.ts";

const out: Record<string, unknown> = {};
const errOf = (f: () => unknown): string => {
  try {
    f();
    return "ok";
  } catch (e) {
    return e instanceof SysError ? e.message : String(e);
  }
};
const optionsOf = (point: string): string | undefined =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f[4] === point)
    .map((f) => `${f[5]} ${f.slice(f.indexOf("-") + 1).join(" ")}`)
    .at(-1);

const base = mkdtempSync("/tmp/sealroot-sys-");
out.base = base;
sys.mount(null, "/", null, MS_REC | MS_PRIVATE, null);
sys.mount("sealroot-test", base, "tmpfs", 0, "mode=0755");
out.tmpfs = optionsOf(base);

sys.mkdir(join(base, "private"), 0o000);
out.privateMode = (statSync(join(base, "private")).mode & 0o7777).toString(8);
sys.mkdir(join(base, "target"), 0o755);
sys.symlink("target", join(base, "link"));
out.statOfLink = sys.stat(join(base, "link")).kind === "dir" ? "dir" : "other";

// new mount API: a tmpfs, made read-only with mount_setattr, attached with move_mount
const fsfd = sys.fsopen("tmpfs", FSOPEN_CLOEXEC);
sys.fsconfig(fsfd, { kind: "string", key: "source", value: "sealroot-new" });
sys.fsconfig(fsfd, { kind: "string", key: "mode", value: "0700" });
sys.fsconfig(fsfd, { kind: "create" });
const mfd = sys.fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
sys.mountSetattr(mfd, "", AT_EMPTY_PATH, { attrSet: MOUNT_ATTR_RDONLY });
sys.mkdir(join(base, "new"), 0o755);
sys.moveMount(mfd, "", AT_FDCWD, join(base, "new"), MOVE_MOUNT_F_EMPTY_PATH);
sys.close(mfd);
sys.close(fsfd);
out.newApi = optionsOf(join(base, "new"));
out.writeToReadOnly = errOf(() => writeFileSync(join(base, "new/x"), "x"));

// the kernel's own words come with a failing fsconfig
const bad = sys.fsopen("overlay", FSOPEN_CLOEXEC);
out.fsconfigError = errOf(() =>
  sys.fsconfig(bad, { kind: "string", key: "lowerdir+", value: "/nonexistent/lower" }),
);
out.unknownOption = errOf(() => sys.fsconfig(bad, { kind: "string", key: "no-such-option", value: "1" }));
out.createError = errOf(() => sys.fsconfig(bad, { kind: "create" }));
sys.close(bad);
out.unknownFs = errOf(() => sys.fsopen("no-such-fs", FSOPEN_CLOEXEC));

// open_tree clone of a directory, attached elsewhere: a bind mount
writeFileSync(join(base, "target/marker"), "bound");
sys.mkdir(join(base, "bind"), 0o755);
const tree = sys.openTree(AT_FDCWD, join(base, "target"), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
sys.moveMount(tree, "", AT_FDCWD, join(base, "bind"), MOVE_MOUNT_F_EMPTY_PATH);
sys.close(tree);
out.bindSeesMarker = readFileSync(join(base, "bind/marker"), "utf8");
sys.umount2(join(base, "bind"), MNT_DETACH);
out.umountedBind = optionsOf(join(base, "bind")) ?? "none";
out.umountNotMounted = errOf(() => sys.umount2(join(base, "bind"), 0));

// pivot_root into a new tmpfs root, then chroot/chdir inside it
const newRoot = join(base, "newroot");
sys.mkdir(newRoot, 0o755);
sys.mount("sealroot-root", newRoot, "tmpfs", 0, null);
sys.mkdir(join(newRoot, "oldroot"), 0o755);
writeFileSync(join(newRoot, "i-am-new-root"), "");
sys.chdir(newRoot);
sys.pivotRoot(".", "oldroot");
sys.chroot(".");
sys.chdir("/");
out.afterPivot = existsSync("/i-am-new-root") && existsSync("/oldroot/proc/self");
sys.umount2("/oldroot", MNT_DETACH);
out.oldRootGone = !existsSync("/oldroot/proc/self");
out.pivotBadPath = errOf(() => sys.pivotRoot("/does-not-exist", "/also-not"));

process.stdout.write(`${JSON.stringify(out)}\n`);
