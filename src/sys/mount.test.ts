// mountComposefs() against a recording fake Sys: the exact call sequence of each kernel path, each
// automatic fallback (ENOTBLK → loop, ENOSYS → mount(2), EINVAL on lowerdir+ → `A::B`, an overlayfs that
// accepts unknown keys → mount(2)), forced paths that do not fall back, and a fault injected at every
// call: it always surfaces as the error thrown and never leaves an fd open or the staging EROFS attached.

import { describe, expect, it } from "vitest";
import { FormatError, SysError, UsageError } from "../base/errors.ts";
import { mountComposefs } from "./mount.ts";
import type { FsConfigOp, Sys } from "./types.ts";

const IMAGE_FD = 5;
const HEADER = (flags = 0) => {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xd078629a, true);
  v.setUint32(4, 1, true);
  v.setUint32(8, flags, true);
  return b;
};

function op(o: FsConfigOp): string {
  switch (o.kind) {
    case "flag":
      return o.key;
    case "string":
      return `${o.key}=${o.value}`;
    case "fd":
      return `${o.key}=fd${o.fd}`;
    case "create":
      return "create";
  }
}

/** A Sys that records each call as one line and fails the calls `fail` matches with that errno. */
class FakeSys {
  calls: string[] = [];
  open = new Set<number>();
  mounted = new Set<string>();
  private next = 10;
  private names = new Map<number, string>();
  constructor(
    private readonly fail: (call: string) => string | undefined = () => undefined,
    private readonly header = HEADER(),
  ) {}

  private rec(call: string): void {
    this.calls.push(call);
    const errno = this.fail(call);
    if (errno) throw new SysError(errno, `Cannot ${call}: ${errno}`);
  }
  private fd(name: string): number {
    const fd = this.next++;
    this.open.add(fd);
    this.names.set(fd, name);
    return fd;
  }

  sys(): Sys {
    const notUsed = () => {
      throw new Error("not used by mountComposefs");
    };
    return {
      readFile: notUsed,
      readFileIfExists: notUsed,
      lstat: notUsed,
      lstatIfExists: notUsed,
      readlink: notUsed,
      readdir: notUsed,
      lgetxattr: notUsed,
      llistxattr: notUsed,
      stat: notUsed,
      mkdir: notUsed,
      rmdir: notUsed,
      unlink: notUsed,
      symlink: notUsed,
      writeFile: notUsed,
      open: notUsed,
      fstat: notUsed,
      measureVerity: notUsed,
      enableVerity: notUsed,
      openTree: notUsed,
      mountSetattr: notUsed,
      pivotRoot: notUsed,
      chroot: notUsed,
      chdir: notUsed,
      tpmMeasure: notUsed,
      tpmDevices: [],
      appendMeasureLog: notUsed,
      measureLogStamp: notUsed,
      kernelRelease: () => "6.99-fake",
      pread: (fd, length, offset) => {
        this.rec(`pread ${fd} ${length}@${offset}`);
        return this.header.subarray(0, length);
      },
      close: (fd) => {
        this.rec(`close ${this.names.get(fd) ?? fd}`);
        this.open.delete(fd);
      },
      loopAttach: (fd, name) => {
        this.rec(`loopAttach ${fd} ${name}`);
        return { device: "/dev/loop7", fd: this.fd("loop7") };
      },
      mount: (source, target, fstype, flags, data) => {
        this.rec(`mount ${source} ${target} ${fstype} ${flags} ${data}`);
        this.mounted.add(target);
      },
      umount2: (target, flags) => {
        this.rec(`umount2 ${target} ${flags}`);
        this.mounted.delete(target);
      },
      fsopen: (fsname) => {
        this.rec(`fsopen ${fsname}`);
        return this.fd(`fs:${fsname}`);
      },
      fsconfig: (fsfd, o) => {
        this.rec(`fsconfig ${this.names.get(fsfd)} ${op(o)}`);
      },
      fsmount: (fsfd, _flags, attrs) => {
        this.rec(`fsmount ${this.names.get(fsfd)} attrs=${attrs}`);
        return this.fd(`mnt:${this.names.get(fsfd)?.slice(3)}`);
      },
      moveMount: (fromDfd, _fromPath, _toDfd, toPath) => {
        this.rec(`moveMount ${this.names.get(fromDfd)} ${toPath}`);
        this.mounted.add(toPath);
      },
    };
  }
}

const BASE = {
  imageFd: IMAGE_FD,
  imagePath: "/sysroot/deploy/.ostree.cfs",
  target: "/sysroot.tmp",
  objectDirs: ["/sysroot/ostree/repo/objects"],
  imageMountDir: "/run/ostree/.private/cfsroot-lower",
  requireVerity: true,
};

const EROFS_NEW = [
  "pread 5 32@0",
  "fsopen erofs",
  "fsconfig fs:erofs source=/proc/self/fd/5",
  "fsconfig fs:erofs ro",
  "fsconfig fs:erofs noacl",
  "fsconfig fs:erofs create",
  "fsmount fs:erofs attrs=1",
  "moveMount mnt:erofs /run/ostree/.private/cfsroot-lower",
  "close mnt:erofs",
  "close fs:erofs",
];
const OVERLAY_NEW_HEAD = [
  "fsopen overlay",
  "fsconfig fs:overlay sealroot-probe-unsupported=1",
  "fsconfig fs:overlay source=composefs",
  "fsconfig fs:overlay metacopy=on",
  "fsconfig fs:overlay redirect_dir=on",
  "fsconfig fs:overlay verity=require",
];
const OVERLAY_NEW_TAIL = [
  "fsconfig fs:overlay create",
  "fsmount fs:overlay attrs=1",
  "moveMount mnt:overlay /sysroot.tmp",
  "close mnt:overlay",
  "close fs:overlay",
];
const OVERLAY_APPEND = [
  "fsconfig fs:overlay lowerdir+=/run/ostree/.private/cfsroot-lower",
  "fsconfig fs:overlay datadir+=/sysroot/ostree/repo/objects",
];
const DETACH = "umount2 /run/ostree/.private/cfsroot-lower 2";

/** The probe fails with EINVAL on a kernel whose overlayfs parses fsconfig keys (6.5+). */
const modernKernel =
  (extra: (c: string) => string | undefined = () => undefined) =>
  (c: string) =>
    c.includes("sealroot-probe-unsupported") ? "EINVAL" : extra(c);

describe("mountComposefs() call sequence", () => {
  it("on a modern kernel: file-backed EROFS and an overlay with lowerdir+/datadir+, all by the new API", () => {
    const f = new FakeSys(modernKernel());
    const r = mountComposefs(f.sys(), BASE);
    expect(f.calls).toEqual([
      ...EROFS_NEW,
      ...OVERLAY_NEW_HEAD,
      ...OVERLAY_APPEND,
      ...OVERLAY_NEW_TAIL,
      DETACH,
    ]);
    expect(r).toEqual({
      erofs: { api: "new", source: "file", device: "/proc/self/fd/5", options: ["ro", "noacl"] },
      overlay: {
        api: "new",
        layers: "append",
        options: [
          "metacopy=on",
          "redirect_dir=on",
          "verity=require",
          "lowerdir+=/run/ostree/.private/cfsroot-lower",
          "datadir+=/sysroot/ostree/repo/objects",
        ],
      },
      fallbacks: [],
    });
    expect([...f.open]).toEqual([]);
    expect([...f.mounted]).toEqual(["/sysroot.tmp"]);
  });

  it("falls back to a loop device when EROFS cannot mount a file (ENOTBLK, Linux < 6.12)", () => {
    const f = new FakeSys(
      modernKernel((c) => (c.endsWith("source=/proc/self/fd/5") ? "ENOTBLK" : undefined)),
    );
    const r = mountComposefs(f.sys(), BASE);
    expect(f.calls.slice(0, 14)).toEqual([
      "pread 5 32@0",
      "fsopen erofs",
      "fsconfig fs:erofs source=/proc/self/fd/5",
      "close fs:erofs",
      "loopAttach 5 /sysroot/deploy/.ostree.cfs",
      "fsopen erofs",
      "fsconfig fs:erofs source=/dev/loop7",
      "fsconfig fs:erofs ro",
      "fsconfig fs:erofs noacl",
      "fsconfig fs:erofs create",
      "fsmount fs:erofs attrs=1",
      "moveMount mnt:erofs /run/ostree/.private/cfsroot-lower",
      "close mnt:erofs",
      "close fs:erofs",
    ]);
    expect(f.calls[14]).toBe("close loop7");
    expect(r.erofs).toEqual({ api: "new", source: "loop", device: "/dev/loop7", options: ["ro", "noacl"] });
    expect(r.fallbacks).toEqual([
      {
        name: "erofsSource",
        errno: "ENOTBLK",
        why: "file-backed EROFS needs Linux 6.12 (CONFIG_EROFS_FS_BACKED_BY_FILE)",
      },
    ]);
    expect([...f.open]).toEqual([]);
  });

  it("falls back to mount(2) without the new mount API (fsopen ENOSYS, Linux < 5.2), with the A::B layer string after EINVAL", () => {
    const f = new FakeSys((c) => {
      if (c.startsWith("fsopen")) return "ENOSYS";
      if (c.startsWith("mount composefs") && c.includes("lowerdir+=")) return "EINVAL";
      return undefined;
    });
    const r = mountComposefs(f.sys(), { ...BASE, requireVerity: false });
    expect(f.calls).toEqual([
      "pread 5 32@0",
      "fsopen erofs",
      "mount /proc/self/fd/5 /run/ostree/.private/cfsroot-lower erofs 1 noacl",
      "fsopen overlay",
      "mount composefs /sysroot.tmp overlay 1 metacopy=on,redirect_dir=on,lowerdir+=/run/ostree/.private/cfsroot-lower,datadir+=/sysroot/ostree/repo/objects",
      "mount composefs /sysroot.tmp overlay 1 metacopy=on,redirect_dir=on,lowerdir=/run/ostree/.private/cfsroot-lower::/sysroot/ostree/repo/objects",
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
    const f = new FakeSys(modernKernel((c) => (c.includes("lowerdir+=") ? "EINVAL" : undefined)));
    const r = mountComposefs(f.sys(), BASE);
    expect(f.calls.slice(EROFS_NEW.length)).toEqual([
      ...OVERLAY_NEW_HEAD,
      "fsconfig fs:overlay lowerdir+=/run/ostree/.private/cfsroot-lower",
      "close fs:overlay",
      ...OVERLAY_NEW_HEAD,
      "fsconfig fs:overlay lowerdir=/run/ostree/.private/cfsroot-lower::/sysroot/ostree/repo/objects",
      ...OVERLAY_NEW_TAIL,
      DETACH,
    ]);
    expect(r.overlay.layers).toBe("legacy");
    expect(r.fallbacks.map((x) => x.name)).toEqual(["overlayLayers"]);
  });

  it("treats an overlayfs that accepts an unknown fsconfig key as having no new-API parser (Linux < 6.5)", () => {
    const f = new FakeSys(() => undefined);
    const r = mountComposefs(f.sys(), BASE);
    expect(f.calls.slice(EROFS_NEW.length)).toEqual([
      "fsopen overlay",
      "fsconfig fs:overlay sealroot-probe-unsupported=1",
      "close fs:overlay",
      "mount composefs /sysroot.tmp overlay 1 metacopy=on,redirect_dir=on,verity=require,lowerdir+=/run/ostree/.private/cfsroot-lower,datadir+=/sysroot/ostree/repo/objects",
      DETACH,
    ]);
    expect(r.erofs.api).toBe("new");
    expect(r.overlay.api).toBe("legacy");
  });

  it("does not fall back on a forced path: ENOTBLK with erofsSource=file is the error", () => {
    const f = new FakeSys(
      modernKernel((c) => (c.endsWith("source=/proc/self/fd/5") ? "ENOTBLK" : undefined)),
    );
    expect(() => mountComposefs(f.sys(), { ...BASE, force: { erofsSource: "file" } })).toThrow(
      "Cannot fsconfig fs:erofs source=/proc/self/fd/5: ENOTBLK",
    );
    expect(f.calls.some((c) => c.startsWith("loopAttach"))).toBe(false);
  });

  it("does not fall back on an errno that means something else (ENOENT stays ENOENT)", () => {
    const f = new FakeSys(modernKernel((c) => (c.includes("datadir+=") ? "ENOENT" : undefined)));
    expect(() => mountComposefs(f.sys(), BASE)).toThrow(
      "Cannot fsconfig fs:overlay datadir+=/sysroot/ostree/repo/objects: ENOENT",
    );
    expect(f.calls.at(-1)).toBe(DETACH);
    expect([...f.open]).toEqual([]);
  });

  it("names both attempts when the fallback fails too", () => {
    const f = new FakeSys(
      modernKernel((c) => {
        if (c.endsWith("source=/proc/self/fd/5")) return "ENOTBLK";
        if (c.startsWith("loopAttach")) return "ENXIO";
        return undefined;
      }),
    );
    expect(() => mountComposefs(f.sys(), BASE)).toThrow(
      "Cannot loopAttach 5 /sysroot/deploy/.ostree.cfs: ENXIO (fallback file→loop because file-backed EROFS needs Linux 6.12 (CONFIG_EROFS_FS_BACKED_BY_FILE); first attempt: Cannot fsconfig fs:erofs source=/proc/self/fd/5: ENOTBLK)",
    );
  });

  it("keeps ACLs when the image header says it has them (no noacl)", () => {
    const f = new FakeSys(modernKernel(), HEADER(1));
    const r = mountComposefs(f.sys(), BASE);
    expect(f.calls.filter((c) => c.includes("noacl"))).toEqual([]);
    expect(r.erofs.options).toEqual(["ro"]);
  });

  it("mounts a transient root writable with upperdir and workdir, or read-only when asked (transient-ro)", () => {
    const upper = { upperdir: "/run/ostree/.private/root/upper", workdir: "/run/ostree/.private/root/work" };
    const f = new FakeSys(modernKernel());
    const r = mountComposefs(f.sys(), { ...BASE, ...upper });
    expect(r.overlay.options.slice(-2)).toEqual([
      "upperdir=/run/ostree/.private/root/upper",
      "workdir=/run/ostree/.private/root/work",
    ]);
    expect(f.calls).toContain("fsmount fs:overlay attrs=0");
    const ro = new FakeSys(modernKernel());
    mountComposefs(ro.sys(), { ...BASE, ...upper, readonly: true });
    expect(ro.calls).toContain("fsmount fs:overlay attrs=1");
  });

  it("escapes ',', ':' and '\\' in paths of the legacy layer string", () => {
    const f = new FakeSys((c) => (c.startsWith("fsopen") ? "ENOSYS" : undefined));
    mountComposefs(f.sys(), {
      ...BASE,
      requireVerity: false,
      imageMountDir: "/run/a,b",
      objectDirs: ["/objs:1", "/o\\2"],
      upperdir: "/up,per",
      workdir: "/work",
      force: { overlayLayers: "legacy" },
    });
    expect(f.calls).toContain(
      "mount composefs /sysroot.tmp overlay 0 metacopy=on,redirect_dir=on,lowerdir=/run/a\\,b::/objs\\:1::/o\\\\2,upperdir=/up\\,per,workdir=/work",
    );
  });

  it("rejects bad options and a file that is not a composefs image before any mount call", () => {
    const f = new FakeSys(modernKernel());
    expect(() => mountComposefs(f.sys(), { ...BASE, objectDirs: [] })).toThrow(UsageError);
    expect(() => mountComposefs(f.sys(), { ...BASE, upperdir: "/u" })).toThrow(
      'Cannot mount composefs image "/sysroot/deploy/.ostree.cfs": upperdir and workdir must be given together',
    );
    const bad = new FakeSys(modernKernel(), new Uint8Array(32));
    expect(() => mountComposefs(bad.sys(), BASE)).toThrow(FormatError);
    expect(() => mountComposefs(bad.sys(), BASE)).toThrow(
      'Cannot mount composefs image "/sysroot/deploy/.ostree.cfs": magic 0x00000000, expected 0xd078629a',
    );
    const short = new FakeSys(modernKernel(), new Uint8Array(7));
    expect(() => mountComposefs(short.sys(), BASE)).toThrow("7 bytes, expected a 32-byte composefs header");
    expect([...bad.calls, ...short.calls].every((c) => c.startsWith("pread"))).toBe(true);
  });
});

describe("mountComposefs() under fault injection", () => {
  /** The calls of a successful run on each path; a fault at each index must fail cleanly. */
  const paths = [
    { name: "modern", fail: modernKernel(), force: {} },
    { name: "loop", fail: modernKernel(), force: { erofsSource: "loop" as const } },
    { name: "mount(2)", fail: modernKernel(), force: { mountApi: "legacy" as const } },
  ];
  for (const p of paths) {
    it(`fails with the injected error at every call of the ${p.name} path, leaving no fd open and nothing on the staging dir`, () => {
      const n = (() => {
        const f = new FakeSys(p.fail);
        mountComposefs(f.sys(), { ...BASE, force: p.force });
        return f.calls.length;
      })();
      expect(n).toBeGreaterThanOrEqual(4);
      for (let k = 1; k <= n; k++) {
        let seen = 0;
        const f = new FakeSys((c) => {
          seen++;
          if (seen === k && !c.includes("sealroot-probe")) return "EIO";
          return p.fail(c);
        });
        let error: unknown;
        try {
          mountComposefs(f.sys(), { ...BASE, force: p.force });
        } catch (e) {
          error = e;
        }
        const failed = f.calls[k - 1] ?? "";
        if (failed.includes("sealroot-probe")) continue;
        // closing an fd is not a failure a mount can recover from, but it must still surface
        expect([k, error instanceof SysError && (error as SysError).errno]).toEqual([k, "EIO"]);
        expect([k, [...f.open]]).toEqual([k, failed.startsWith("close") ? [...f.open] : []]);
        if (!failed.startsWith("umount2") && !failed.startsWith("close"))
          expect([k, f.mounted.has(BASE.imageMountDir)]).toEqual([k, false]);
      }
    });
  }
});
