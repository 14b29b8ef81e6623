// bootSys() over the recording kernel of test/helpers/kernel-sys.ts: the exact system calls behind each of
// the boot's intents (the flags of a bind, a read-only remount, a private tree; how an image is opened and
// probed; how the staged root replaces SYSROOT and is put back when the move fails, with and without
// open_tree), so the boot's own tests (boot/prepare-root.test.ts) can speak in intents alone.

import { describe, expect, it } from "vitest";
import { KernelSys, type KernelSysOptions } from "../../test/helpers/kernel-sys.ts";
import { failNth } from "../../test/helpers/recorder.ts";
import { FormatError, SysError } from "../base/errors.ts";
import { bootSys } from "./boot-sys.ts";

const STAGING = "/run/sealroot/staging";
const CFS = "/sysroot/ostree/deploy/refos/deploy/c.0/.ostree.cfs";

function boot(o: KernelSysOptions = {}, force?: Parameters<typeof bootSys>[1]) {
  const k = new KernelSys({ mounted: ["/", "/sysroot"], ...o });
  return { k, sys: bootSys(k.sys(), force) };
}

describe("bootSys() mounts", () => {
  it.each<[string, (s: ReturnType<typeof bootSys>) => unknown, string]>([
    ["makePrivate", (s) => s.makePrivate("/"), "mount(null, /, null, MS_REC|MS_PRIVATE, null)"],
    [
      "bind",
      (s) => s.bind("/sysroot", `${STAGING}/sysroot`),
      `mount(/sysroot, ${STAGING}/sysroot, null, MS_BIND|MS_SILENT, null)`,
    ],
    [
      "remountReadonly",
      (s) => s.remountReadonly("/sysroot"),
      "mount(null, /sysroot, null, MS_RDONLY|MS_REMOUNT|MS_BIND|MS_SILENT, null)",
    ],
    [
      "mountOverlay",
      (s) => s.mountOverlay(`${STAGING}/etc`, { lowerdir: "/l", upperdir: "/u", workdir: "/w" }),
      `mount(overlay, ${STAGING}/etc, overlay, MS_SILENT, lowerdir=/l,upperdir=/u,workdir=/w)`,
    ],
    ["unmount", (s) => s.unmount("/sysroot"), "umount2(/sysroot, MNT_DETACH)"],
  ])("%s is one mount call with its flags", (_name, run, call) => {
    const { k, sys } = boot();
    run(sys);
    expect(k.calls).toEqual([call]);
  });

  it("unmount() says false when nothing is mounted there (EINVAL) and throws any other errno", () => {
    const { k, sys } = boot();
    expect(sys.unmount(STAGING)).toBe(false);
    expect(k.calls).toEqual([`umount2(${STAGING}, MNT_DETACH) → EINVAL`]);
    const busy = boot({ fault: failNth("umount2", "EBUSY") });
    expect(() => busy.sys.unmount("/sysroot")).toThrow("Cannot umount2(/sysroot, MNT_DETACH): EBUSY");
  });

  it("mountComposefs() takes the kernel path bootSys was told to force", () => {
    const files = { [CFS]: header() };
    const plain = boot({ files });
    const forced = boot({ files }, { force: { mountApi: "legacy" } });
    for (const { k, sys } of [plain, forced]) {
      const fd = k.openFile(CFS);
      sys.mountComposefs({
        imageFd: fd,
        imagePath: CFS,
        target: STAGING,
        objectDirs: ["/sysroot/ostree/repo/objects"],
        imageMountDir: "/run/ostree/.private/cfsroot-lower",
        requireVerity: true,
      });
    }
    expect(plain.k.calls.filter((c) => c.startsWith("mount("))).toEqual([]);
    expect(forced.k.calls.filter((c) => c.startsWith("fsopen("))).toEqual([]);
    expect(forced.k.calls.filter((c) => c.startsWith("mount("))).toHaveLength(2);
  });
});

describe("bootSys() opens and probes", () => {
  it("openImage() opens without following a symlink or blocking, and checks the fd is a regular file", () => {
    const { k, sys } = boot({ files: { [CFS]: header() } });
    expect(sys.openImage(CFS)).toBe(3);
    expect(k.calls).toEqual([`open(${CFS}, O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK) = 3`, "fstat(3)"]);
  });

  it.each([
    ["a symlink (ELOOP)", { symlinks: { [CFS]: "/etc/shadow" } }, "a symbolic link", []],
    ["a directory", { dirs: [CFS] }, "a directory", ["fstat(3)", "close(3)"]],
  ])("openImage() refuses %s and leaves no fd open", (_name, o, kind, after) => {
    const { k, sys } = boot(o);
    expect(() => sys.openImage(CFS)).toThrow(FormatError);
    expect(() => boot(o).sys.openImage(CFS)).toThrow(
      `Cannot read composefs image "${CFS}": ${kind}, expected a regular file`,
    );
    expect(k.calls.slice(1)).toEqual(after);
    expect(k.openFds()).toEqual([]);
  });

  it("probeRead() reads one fs-verity block and closes the file", () => {
    const { k, sys } = boot({ files: { [`${STAGING}/usr/bin/hello`]: "hello" } });
    sys.probeRead(STAGING, "usr/bin/hello");
    expect(k.calls).toEqual([
      `open(${STAGING}/usr/bin/hello, O_RDONLY|O_CLOEXEC) = 3`,
      "pread(3, 4096, 0)",
      "close(3)",
    ]);
  });

  it("probeRead() explains an EIO as a verity failure of the overlay, naming the kernel", () => {
    const { k, sys } = boot({
      release: "7.0.1-test",
      files: { [`${STAGING}/usr/bin/hello`]: "hello" },
      fault: failNth("pread", "EIO"),
    });
    expect(() => sys.probeRead(STAGING, "usr/bin/hello")).toThrow(
      `Cannot read "${STAGING}/usr/bin/hello": EIO (through the composefs overlay with verity=require on Linux 7.0.1-test), ` +
        "expected every backing object with fs-verity enabled and matching the image (kernel with CONFIG_FS_VERITY; Linux 7.0.x needs the overlayfs fix for bootc#2174)",
    );
    expect(k.openFds()).toEqual([]);
  });

  it("probeRead() passes any other errno on as it is", () => {
    const { sys } = boot({ files: { [`${STAGING}/x`]: "x" }, fault: failNth("pread", "ENOMEM") });
    expect(() => sys.probeRead(STAGING, "x")).toThrow(SysError);
    expect(() => boot({ files: {} }).sys.probeRead(STAGING, "x")).toThrow("ENOENT");
  });
});

describe("bootSys() replaceMount()", () => {
  const CLONE = "openTree(AT_FDCWD, /sysroot, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE) = 3";
  const DETACH = "umount2(/sysroot, MNT_DETACH)";
  const MOVE = `mount(${STAGING}, /sysroot, null, MS_MOVE, null)`;
  const warned: string[] = [];
  const warn = (phase: string, what: string, e: unknown) =>
    warned.push(`${phase} ${what}: ${e instanceof Error ? e.message : e}`);
  const staged = (o: KernelSysOptions = {}) => boot({ mounted: ["/", "/sysroot", STAGING], ...o });

  it("keeps a clone of SYSROOT's mount tree, detaches it, moves the staged root on, and closes the clone", () => {
    const { k, sys } = staged();
    sys.replaceMount(STAGING, "/sysroot", warn);
    expect(k.calls).toEqual([CLONE, DETACH, MOVE, "close(3)"]);
    expect(k.mounted).toEqual(["/", "/sysroot"]);
    expect(k.openFds()).toEqual([]);
  });

  it("puts the clone back when the move fails, and throws the move's error", () => {
    const { k, sys } = staged({ fault: failNth(MOVE, "EBUSY") });
    expect(() => sys.replaceMount(STAGING, "/sysroot", warn)).toThrow(`Cannot ${MOVE}: EBUSY`);
    expect(k.calls).toEqual([
      CLONE,
      DETACH,
      `${MOVE} → EBUSY`,
      'moveMount(3, "", AT_FDCWD, /sysroot, MOVE_MOUNT_F_EMPTY_PATH)',
      "close(3)",
    ]);
    expect(k.mounted).toEqual(["/", STAGING, "/sysroot"]);
    expect(k.openFds()).toEqual([]);
  });

  it("before Linux 5.2 (no open_tree) puts back only the staged /sysroot bind", () => {
    const { k, sys } = staged({ newMountApi: false, fault: failNth(MOVE, "EBUSY") });
    expect(() => sys.replaceMount(STAGING, "/sysroot", warn)).toThrow("EBUSY");
    expect(k.calls).toEqual([
      "openTree(AT_FDCWD, /sysroot, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE) → ENOSYS",
      DETACH,
      `${MOVE} → EBUSY`,
      `mount(${STAGING}/sysroot, /sysroot, null, MS_BIND, null)`,
    ]);
  });

  it("warns, and still throws the move's error, when SYSROOT cannot be put back; warns when the clone cannot be closed", () => {
    warned.length = 0;
    const restore = staged({
      fault: (line) =>
        line.startsWith(MOVE) ? "EBUSY" : line.startsWith("moveMount") ? "ENOMEM" : undefined,
    });
    expect(() => restore.sys.replaceMount(STAGING, "/sysroot", warn)).toThrow(`Cannot ${MOVE}: EBUSY`);
    const close = staged({ fault: failNth("close(3)", "EIO") });
    close.sys.replaceMount(STAGING, "/sysroot", warn);
    expect(warned).toEqual([
      'rollback restore /sysroot: Cannot moveMount(3, "", AT_FDCWD, /sysroot, MOVE_MOUNT_F_EMPTY_PATH): ENOMEM (injected fault)',
      "cleanup close the clone of /sysroot: Cannot close(3): EIO (injected fault)",
    ]);
  });

  it("refuses before detaching anything when SYSROOT is not a mount point it can clone", () => {
    const { k, sys } = boot({ mounted: ["/", STAGING] });
    expect(() => sys.replaceMount(STAGING, "/sysroot", warn)).toThrow("EINVAL");
    expect(k.calls).toEqual([
      "openTree(AT_FDCWD, /sysroot, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE) → EINVAL",
    ]);
  });
});

/** A composefs header (magic, version 1, no ACLs). */
function header(): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xd078629a, true);
  v.setUint32(4, 1, true);
  return b;
}
