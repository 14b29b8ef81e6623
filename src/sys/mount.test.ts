// mountComposefs() over the recording kernel of test/helpers/kernel-sys.ts: the exact system calls of
// each kernel path, each automatic fallback by the kernel's version (no file-backed EROFS → loop, no new
// mount API → mount(2), no lowerdir+ → `A::B`, an overlayfs that accepts unknown keys → mount(2)), forced
// paths that do not fall back, and a fault injected at every call: it always surfaces as the error thrown
// and never leaves an fd open or the staging EROFS attached.

import { describe, expect, it } from "vitest";
import { KernelSys, type KernelSysOptions } from "../../test/helpers/kernel-sys.ts";
import { failKth, failNth } from "../../test/helpers/recorder.ts";
import { FormatError, SysError, UsageError } from "../base/errors.ts";
import type { CompatForce } from "./kernel-compat.ts";
import { type ComposefsMountOptions, mountComposefs } from "./mount.ts";

const IMAGE = "/sysroot/deploy/.ostree.cfs";
const LOWER = "/run/ostree/.private/cfsroot-lower";
const HEADER = (flags = 0) => {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xd078629a, true);
  v.setUint32(4, 1, true);
  v.setUint32(8, flags, true);
  return b;
};

/** A kernel (Linux 6.12 unless `o` says otherwise) with the image open on fd 3. */
function kernel(o: KernelSysOptions = {}, header = HEADER()) {
  const k = new KernelSys({ files: { [IMAGE]: header }, ...o });
  const fd = k.openFile(IMAGE);
  return { k, opts: { ...BASE, imageFd: fd } };
}

const BASE: ComposefsMountOptions = {
  imageFd: 3,
  imagePath: IMAGE,
  target: "/sysroot.tmp",
  objectDirs: ["/sysroot/ostree/repo/objects"],
  imageMountDir: LOWER,
  requireVerity: true,
};

const READ_HEADER = "pread(3, 32, 0)";
/** EROFS from the image fd itself (Linux 6.12), new mount API. */
const EROFS_FILE_NEW = [
  "fsopen(erofs, FSOPEN_CLOEXEC) = 4",
  "fsconfig(4, source=/proc/self/fd/3)",
  "fsconfig(4, ro)",
  "fsconfig(4, noacl)",
  "fsconfig(4, create)",
  "fsmount(4, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY) = 5",
  `moveMount(5, "", AT_FDCWD, ${LOWER}, MOVE_MOUNT_F_EMPTY_PATH)`,
  "close(5)",
  "close(4)",
];
/** EROFS on a loop device bound to the image fd (before Linux 6.12), new mount API. */
const EROFS_LOOP_NEW = [
  `loopAttach(3, ${IMAGE}) = /dev/loop0 fd 4`,
  "fsopen(erofs, FSOPEN_CLOEXEC) = 5",
  "fsconfig(5, source=/dev/loop0)",
  "fsconfig(5, ro)",
  "fsconfig(5, noacl)",
  "fsconfig(5, create)",
  "fsmount(5, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY) = 6",
  `moveMount(6, "", AT_FDCWD, ${LOWER}, MOVE_MOUNT_F_EMPTY_PATH)`,
  "close(6)",
  "close(5)",
  "close(4)",
];
/** The overlay's fsconfig calls up to its layers: the probe (refused since 6.5), source, options. */
const overlayHead = (verity = true) => [
  "fsopen(overlay, FSOPEN_CLOEXEC) = 4",
  "fsconfig(4, sealroot-probe-unsupported=1) → EINVAL",
  "fsconfig(4, source=composefs)",
  "fsconfig(4, metacopy=on)",
  "fsconfig(4, redirect_dir=on)",
  ...(verity ? ["fsconfig(4, verity=require)"] : []),
];
const OVERLAY_APPEND = [
  `fsconfig(4, lowerdir+=${LOWER})`,
  "fsconfig(4, datadir+=/sysroot/ostree/repo/objects)",
];
const OVERLAY_LEGACY_LAYERS = `fsconfig(4, lowerdir=${LOWER}::/sysroot/ostree/repo/objects)`;
const overlayTail = (attr = "MOUNT_ATTR_RDONLY") => [
  "fsconfig(4, create)",
  `fsmount(4, FSMOUNT_CLOEXEC, ${attr}) = 5`,
  `moveMount(5, "", AT_FDCWD, /sysroot.tmp, MOVE_MOUNT_F_EMPTY_PATH)`,
  "close(5)",
  "close(4)",
];
const DETACH = `umount2(${LOWER}, MNT_DETACH)`;
const ENOTBLK_FILE = [
  "fsopen(erofs, FSOPEN_CLOEXEC) = 4",
  "fsconfig(4, source=/proc/self/fd/3)",
  "fsconfig(4, ro)",
  "fsconfig(4, noacl)",
  "fsconfig(4, create) → ENOTBLK",
  "close(4)",
];

describe("mountComposefs() call sequence", () => {
  it("on Linux 6.12: file-backed EROFS and an overlay with lowerdir+/datadir+, all by the new mount API", () => {
    const { k, opts } = kernel();
    const r = mountComposefs(k.sys(), opts);
    expect(k.calls).toEqual([
      READ_HEADER,
      ...EROFS_FILE_NEW,
      ...overlayHead(),
      ...OVERLAY_APPEND,
      ...overlayTail(),
      DETACH,
    ]);
    expect(r).toEqual({
      erofs: { api: "new", source: "file", device: "/proc/self/fd/3", options: ["ro", "noacl"] },
      overlay: {
        api: "new",
        layers: "append",
        options: [
          "metacopy=on",
          "redirect_dir=on",
          "verity=require",
          `lowerdir+=${LOWER}`,
          "datadir+=/sysroot/ostree/repo/objects",
        ],
      },
      fallbacks: [],
    });
    expect(k.openFds()).toEqual([3]);
    expect(k.mounted).toEqual(["/sysroot.tmp"]);
  });

  it("falls back to a loop device when EROFS cannot mount a file (ENOTBLK, Linux < 6.12)", () => {
    const { k, opts } = kernel({ fileBackedErofs: false });
    const r = mountComposefs(k.sys(), opts);
    expect(k.calls).toEqual([
      READ_HEADER,
      ...ENOTBLK_FILE,
      ...EROFS_LOOP_NEW,
      ...overlayHead(),
      ...OVERLAY_APPEND,
      ...overlayTail(),
      DETACH,
    ]);
    expect(r.erofs).toEqual({ api: "new", source: "loop", device: "/dev/loop0", options: ["ro", "noacl"] });
    expect(r.fallbacks).toEqual([
      {
        name: "erofsSource",
        errno: "ENOTBLK",
        why: "file-backed EROFS needs Linux 6.12 (CONFIG_EROFS_FS_BACKED_BY_FILE)",
      },
    ]);
    expect(k.openFds()).toEqual([3]);
  });

  it("falls back to mount(2) without the new mount API (fsopen ENOSYS, Linux < 5.2), with the A::B layer string after EINVAL", () => {
    const { k, opts } = kernel({ newMountApi: false, overlayAppend: false });
    const r = mountComposefs(k.sys(), { ...opts, requireVerity: false });
    expect(k.calls).toEqual([
      READ_HEADER,
      "fsopen(erofs, FSOPEN_CLOEXEC) → ENOSYS",
      `mount(/proc/self/fd/3, ${LOWER}, erofs, MS_RDONLY, noacl)`,
      "fsopen(overlay, FSOPEN_CLOEXEC) → ENOSYS",
      `mount(composefs, /sysroot.tmp, overlay, MS_RDONLY, metacopy=on,redirect_dir=on,lowerdir+=${LOWER},datadir+=/sysroot/ostree/repo/objects) → EINVAL`,
      `mount(composefs, /sysroot.tmp, overlay, MS_RDONLY, metacopy=on,redirect_dir=on,lowerdir=${LOWER}::/sysroot/ostree/repo/objects)`,
      DETACH,
    ]);
    expect(r.fallbacks.map((x) => `${x.name}:${x.errno}`)).toEqual([
      "mountApi:ENOSYS",
      "mountApi:ENOSYS",
      "overlayLayers:EINVAL",
    ]);
    expect(r.overlay.api).toBe("legacy");
    expect(r.overlay.layers).toBe("legacy");
  });

  it("uses the A::B layer string through fsconfig when lowerdir+ is refused (EINVAL, Linux < 6.8)", () => {
    const { k, opts } = kernel({ overlayAppend: false });
    const r = mountComposefs(k.sys(), opts);
    expect(k.calls.slice(1 + EROFS_FILE_NEW.length)).toEqual([
      ...overlayHead(),
      `fsconfig(4, lowerdir+=${LOWER}) → EINVAL`,
      "close(4)",
      ...overlayHead(),
      OVERLAY_LEGACY_LAYERS,
      ...overlayTail(),
      DETACH,
    ]);
    expect(r.overlay.layers).toBe("legacy");
    expect(r.fallbacks.map((x) => x.name)).toEqual(["overlayLayers"]);
  });

  it("treats an overlayfs that accepts an unknown fsconfig key as having no new-API parser (Linux < 6.5)", () => {
    const { k, opts } = kernel({ overlayChecksKeys: false });
    const r = mountComposefs(k.sys(), opts);
    expect(k.calls.slice(1 + EROFS_FILE_NEW.length)).toEqual([
      "fsopen(overlay, FSOPEN_CLOEXEC) = 4",
      "fsconfig(4, sealroot-probe-unsupported=1)",
      "close(4)",
      `mount(composefs, /sysroot.tmp, overlay, MS_RDONLY, metacopy=on,redirect_dir=on,verity=require,lowerdir+=${LOWER},datadir+=/sysroot/ostree/repo/objects)`,
      DETACH,
    ]);
    expect(r.erofs.api).toBe("new");
    expect(r.overlay.api).toBe("legacy");
  });

  it.each([
    {
      name: "erofsSource=loop attaches a loop device to the image fd even where a file would do",
      force: { erofsSource: "loop" as const },
      calls: [READ_HEADER, ...EROFS_LOOP_NEW, ...overlayHead(), ...OVERLAY_APPEND, ...overlayTail(), DETACH],
    },
    {
      name: "mountApi=legacy mounts both with mount(2) and escaped option strings",
      force: { mountApi: "legacy" as const },
      calls: [
        READ_HEADER,
        `mount(/proc/self/fd/3, ${LOWER}, erofs, MS_RDONLY, noacl)`,
        `mount(composefs, /sysroot.tmp, overlay, MS_RDONLY, metacopy=on,redirect_dir=on,verity=require,lowerdir+=${LOWER},datadir+=/sysroot/ostree/repo/objects)`,
        DETACH,
      ],
    },
    {
      name: "overlayLayers=legacy gives the overlay one lowerdir=IMAGE::OBJECTS (data-only layer)",
      force: { overlayLayers: "legacy" as const },
      calls: [
        READ_HEADER,
        ...EROFS_FILE_NEW,
        ...overlayHead(),
        OVERLAY_LEGACY_LAYERS,
        ...overlayTail(),
        DETACH,
      ],
    },
    {
      name: "every fallback at once (a Linux 6.5 kernel's paths): loop, mount(2), lowerdir=A::B, verity=require",
      force: { erofsSource: "loop" as const, mountApi: "legacy" as const, overlayLayers: "legacy" as const },
      calls: [
        READ_HEADER,
        `loopAttach(3, ${IMAGE}) = /dev/loop0 fd 4`,
        `mount(/dev/loop0, ${LOWER}, erofs, MS_RDONLY, noacl)`,
        "close(4)",
        `mount(composefs, /sysroot.tmp, overlay, MS_RDONLY, metacopy=on,redirect_dir=on,verity=require,lowerdir=${LOWER}::/sysroot/ostree/repo/objects)`,
        DETACH,
      ],
    },
  ])("forced $name", (c) => {
    const { k, opts } = kernel();
    const r = mountComposefs(k.sys(), { ...opts, force: c.force });
    expect(k.calls).toEqual(c.calls);
    expect(r.fallbacks).toEqual([]);
    expect(k.openFds()).toEqual([3]);
    expect(k.mounted).toEqual(["/sysroot.tmp"]);
  });

  it("does not fall back on a forced path: ENOTBLK with erofsSource=file is the error", () => {
    const { k, opts } = kernel({ fileBackedErofs: false });
    expect(() => mountComposefs(k.sys(), { ...opts, force: { erofsSource: "file" } })).toThrow(
      'Cannot mount erofs from "/proc/self/fd/3": ENOTBLK',
    );
    expect(k.calls.some((c) => c.startsWith("loopAttach"))).toBe(false);
    expect(k.openFds()).toEqual([3]);
  });

  it("does not fall back on an errno that means something else (ENOENT stays ENOENT)", () => {
    const { k, opts } = kernel({ fault: failNth("fsconfig(4, datadir+=", "ENOENT") });
    expect(() => mountComposefs(k.sys(), opts)).toThrow(
      "Cannot fsconfig(4, datadir+=/sysroot/ostree/repo/objects): ENOENT (injected fault)",
    );
    expect(k.calls.at(-1)).toBe(DETACH);
    expect(k.openFds()).toEqual([3]);
    expect(k.mounted).toEqual([]);
  });

  it("names both attempts when the fallback fails too", () => {
    const { k, opts } = kernel({ fileBackedErofs: false, fault: failNth("loopAttach", "ENXIO") });
    expect(() => mountComposefs(k.sys(), opts)).toThrow(
      `Cannot loopAttach(3, ${IMAGE}): ENXIO (injected fault) (fallback file→loop because file-backed EROFS needs Linux 6.12 (CONFIG_EROFS_FS_BACKED_BY_FILE); first attempt: Cannot mount erofs from "/proc/self/fd/3": ENOTBLK)`,
    );
  });

  it("keeps ACLs when the image header says it has them (no noacl)", () => {
    const { k, opts } = kernel({}, HEADER(1));
    const r = mountComposefs(k.sys(), opts);
    expect(k.calls.filter((c) => c.includes("noacl"))).toEqual([]);
    expect(r.erofs.options).toEqual(["ro"]);
  });

  it("mounts a transient root writable with upperdir and workdir, or read-only when asked (transient-ro)", () => {
    const upper = { upperdir: "/run/ostree/.private/root/upper", workdir: "/run/ostree/.private/root/work" };
    const { k, opts } = kernel();
    const r = mountComposefs(k.sys(), { ...opts, ...upper });
    expect(r.overlay.options.slice(-2)).toEqual([
      "upperdir=/run/ostree/.private/root/upper",
      "workdir=/run/ostree/.private/root/work",
    ]);
    expect(k.calls).toContain("fsmount(4, FSMOUNT_CLOEXEC, 0) = 5");
    const ro = kernel();
    mountComposefs(ro.k.sys(), { ...ro.opts, ...upper, readonly: true });
    expect(ro.k.calls).toContain("fsmount(4, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY) = 5");
  });

  it("escapes ',', ':' and '\\' in paths of the legacy layer string", () => {
    const { k, opts } = kernel({ newMountApi: false });
    mountComposefs(k.sys(), {
      ...opts,
      requireVerity: false,
      imageMountDir: "/run/a,b",
      objectDirs: ["/objs:1", "/o\\2"],
      upperdir: "/up,per",
      workdir: "/work",
      force: { overlayLayers: "legacy" },
    });
    expect(k.calls).toContain(
      "mount(composefs, /sysroot.tmp, overlay, 0, metacopy=on,redirect_dir=on,lowerdir=/run/a\\,b::/objs\\:1::/o\\\\2,upperdir=/up\\,per,workdir=/work)",
    );
  });

  it("rejects bad options and a file that is not a composefs image before any mount call", () => {
    const { k, opts } = kernel();
    expect(() => mountComposefs(k.sys(), { ...opts, objectDirs: [] })).toThrow(UsageError);
    expect(() => mountComposefs(k.sys(), { ...opts, upperdir: "/u" })).toThrow(
      `Cannot mount composefs image "${IMAGE}": upperdir and workdir must be given together`,
    );
    const bad = kernel({}, new Uint8Array(32));
    expect(() => mountComposefs(bad.k.sys(), bad.opts)).toThrow(FormatError);
    expect(() => mountComposefs(bad.k.sys(), bad.opts)).toThrow(
      `Cannot mount composefs image "${IMAGE}": magic 0x00000000, expected 0xd078629a`,
    );
    const short = kernel({}, new Uint8Array(7));
    expect(() => mountComposefs(short.k.sys(), short.opts)).toThrow(
      "7 bytes, expected a 32-byte composefs header",
    );
    expect([...k.calls, ...bad.k.calls, ...short.k.calls].every((c) => c.startsWith("pread"))).toBe(true);
  });
});

describe("mountComposefs() under fault injection", () => {
  const paths: { name: string; facts: KernelSysOptions; force: CompatForce }[] = [
    { name: "modern", facts: {}, force: {} },
    { name: "loop", facts: {}, force: { erofsSource: "loop" } },
    { name: "mount(2)", facts: {}, force: { mountApi: "legacy" } },
    { name: "every fallback taken", facts: { fileBackedErofs: false, overlayAppend: false }, force: {} },
  ];
  it.each(paths)(
    "fails with the injected error at every call of the $name path, leaving no fd open and nothing on the staging dir",
    (p) => {
      const good = kernel(p.facts);
      mountComposefs(good.k.sys(), { ...good.opts, force: p.force });
      const n = good.k.calls.length;
      expect(n).toBeGreaterThanOrEqual(4);
      for (let k = 1; k <= n; k++) {
        const failed = good.k.calls[k - 1] ?? "";
        // the probe's refusal is the kernel's answer, and an injected EIO there is read the same way
        if (failed.includes("sealroot-probe")) continue;
        const { k: f, opts } = kernel({ ...p.facts, fault: failKth(k, "EIO") });
        let error: unknown;
        try {
          mountComposefs(f.sys(), { ...opts, force: p.force });
        } catch (e) {
          error = e;
        }
        expect([k, f.calls[k - 1]]).toEqual([k, `${failed.split(/ = | → /)[0]} → EIO`]);
        expect([k, error instanceof SysError && error.errno]).toEqual([k, "EIO"]);
        // a failed close keeps its fd: it must still surface, and nothing else stays open
        const leftOpen = failed.startsWith("close(") ? [3, Number(/\d+/.exec(failed)?.[0])] : [3];
        expect([k, f.openFds().sort()]).toEqual([k, leftOpen.sort()]);
        if (!failed.startsWith("umount2")) expect([k, f.mounted.includes(LOWER)]).toEqual([k, false]);
      }
    },
  );
});
