// PID-1 mode against a fake InitSys that records every side effect: the kernel-argument parser and the
// ext4 superblock reader with tables, then whole boots — the exact call sequence of a good boot, and the
// fail-closed paths (refusal, missing root, missing init, an unexpected exception, rd.shell) that must end
// in power-off or a shell and never in switch_root. The real kernel runs it in test/vm/prepare-root.test.ts.

import { describe, expect, it } from "vitest";
import { fakeStat } from "../../test/helpers/fake-stat.ts";
import { KernelSys } from "../../test/helpers/kernel-sys.ts";
import type { FaultRule } from "../../test/helpers/recorder.ts";
import { SysError } from "../base/errors.ts";
import type { Stat } from "../base/fs.ts";
import { readKernelCmdline } from "../core/cmdline.ts";
import { parseExt4Superblock } from "../formats/ext4.ts";
import { initMounts } from "../sys/init-sys.ts";
import type { InitSys, Sys } from "../sys/types.ts";
import { type InitCmdline, parseInitCmdline, refusalLine, runInit } from "./init.ts";
import type { PrepareRootResult } from "./prepare-root.ts";

describe("parseInitCmdline()", () => {
  const base: InitCmdline = { readonly: true, init: "/sbin/init", shell: false, rootTimeoutMs: 30_000 };
  it.each<[string, Partial<InitCmdline>]>([
    ["", {}],
    [
      "root=/dev/vda rw",
      { root: { kind: "path", path: "/dev/vda", token: "root=/dev/vda" }, readonly: false },
    ],
    ["rw ro", {}],
    ["ro rw", { readonly: false }],
    ["root=LABEL=root", { root: { kind: "label", label: "root", token: "root=LABEL=root" } }],
    [
      "root=UUID=5EA1F00D-0000-4000-8000-000000000001",
      {
        root: {
          kind: "uuid",
          uuid: "5ea1f00d-0000-4000-8000-000000000001",
          token: "root=UUID=5EA1F00D-0000-4000-8000-000000000001",
        },
      },
    ],
    ["root=/dev/vda root=/dev/vdb", { root: { kind: "path", path: "/dev/vdb", token: "root=/dev/vdb" } }],
    [
      "rootfstype=ext4 rootflags=noatime,errors=remount-ro",
      { rootfstype: "ext4", rootflags: "noatime,errors=remount-ro" },
    ],
    ["init=/usr/lib/systemd/systemd", { init: "/usr/lib/systemd/systemd" }],
    ["rd.shell", { shell: true }],
    ["rd.shell=1", { shell: true }],
    ["rd.shell rd.shell=0", {}],
    ["rd.sealroot.modules=loop,,overlay", { modules: ["loop", "overlay"] }],
    ["rd.sealroot.modules=", { modules: [] }],
    ["rd.sealroot.root-timeout=2.5", { rootTimeoutMs: 2500 }],
    ["rw=1 init rd.shellx quiet", {}],
  ])("%j", (text, want) => {
    expect(parseInitCmdline(readKernelCmdline(text))).toEqual({ ...base, ...want });
  });

  it.each([
    [
      "root=PARTUUID=1234",
      'Cannot parse kernel argument "root=PARTUUID=1234": unknown value "PARTUUID=1234", expected /dev/<name>, LABEL=<ext4 label> or UUID=<ext4 uuid>',
    ],
    [
      "root=UUID=nope",
      'Cannot parse kernel argument "root=UUID=nope": unknown value "UUID=nope", expected /dev/<name>, LABEL=<ext4 label> or UUID=<ext4 uuid>',
    ],
    [
      "init=sbin/init",
      'Cannot parse kernel argument "init=sbin/init": not an absolute path, expected init=/path/to/init in the new root',
    ],
    [
      "rd.shell=maybe",
      'Cannot parse kernel argument "rd.shell=maybe": unknown value "maybe", expected 1/yes/true/on or 0/no/false/off',
    ],
    [
      "rd.sealroot.root-timeout=-1",
      'Cannot parse kernel argument "rd.sealroot.root-timeout=-1": unknown value "-1", expected seconds from 0 to 3600',
    ],
  ])("rejects %j", (text, message) => {
    expect(() => parseInitCmdline(readKernelCmdline(text))).toThrow(message);
  });
});

/** 1024 bytes of superblock (the device's bytes 1024..2047) with a label and UUID; the offsets are
 * retyped from fs/ext4/ext4.h on purpose, as a check of formats/ext4.ts's. */
function superblock(label: string, uuidHex: string, magic = 0xef53): Uint8Array {
  const b = new Uint8Array(1024);
  b[0x38] = magic & 0xff;
  b[0x39] = magic >> 8;
  for (let i = 0; i < 16; i++) b[0x68 + i] = Number.parseInt(uuidHex.slice(2 * i, 2 * i + 2), 16);
  b.set(new TextEncoder().encode(label), 0x78);
  return b;
}
const UUID_HEX = "5ea1f00d000040008000000000000001";
const UUID = "5ea1f00d-0000-4000-8000-000000000001";

describe("parseExt4Superblock()", () => {
  it("reads the label (NUL-terminated) and the UUID in 8-4-4-4-12 form", () => {
    expect(parseExt4Superblock(superblock("sealroot-vm", UUID_HEX))).toEqual({
      label: "sealroot-vm",
      uuid: UUID,
    });
  });
  it("reads a 16-byte label without a terminating NUL", () => {
    expect(parseExt4Superblock(superblock("0123456789abcdef", UUID_HEX))?.label).toBe("0123456789abcdef");
  });
  it.each([
    ["another file system's magic", superblock("x", UUID_HEX, 0x1234)],
    ["a short read", new Uint8Array(512)],
    ["zeros", new Uint8Array(1024)],
  ])("says undefined for %s", (_name, bytes) => {
    expect(parseExt4Superblock(bytes)).toBeUndefined();
  });
});

// ---- the fake system ----

class Stop extends Error {
  constructor(readonly how: string) {
    super(how);
  }
}

interface FakeOptions {
  cmdline: string;
  /** Block devices present from the start, or appearing after `after` sleeps. */
  disks?: { name: string; label: string; after?: number }[];
  /** Paths that exist in the prepared root (relative to /sysroot). */
  newRoot?: string[];
  failModule?: string;
  /** More files of the initramfs (e.g. /usr/lib/ostree/prepare-root.conf). */
  files?: Record<string, string>;
  /** Fails kernel calls by their recorded line (test/helpers/recorder.ts). */
  fault?: FaultRule;
}

/** InitSys over the recording kernel (test/helpers/kernel-sys.ts), with the real intents of
 * sys/init-sys.ts: its mounts (flags named) and module loads are recorded there; block devices
 * (appearing after some sleeps, with an ext4 superblock) are this fake's and their reads not recorded. */
function fakeInit(f: FakeOptions) {
  let sleeps = 0;
  /** The first exec or power-off ends the process: later calls (only reachable in a fake) are not recorded. */
  let ended: Stop | undefined;
  const dirs = new Set(["/", "/proc", "/sys", "/dev", "/run", "/sysroot", "/etc", "/lib/modules"]);
  const k = new KernelSys({
    files: {
      "/proc/cmdline": `${f.cmdline}\n`,
      "/proc/filesystems": "nodev\tsysfs\nnodev\tproc\n\text4\n\tvfat\n",
      "/etc/modules-load": "loop\n# comment\noverlay\n",
      "/proc/uptime": "3.25 5.00\n",
      "/sys/class/block/loop1/size": "0\n",
      ...f.files,
    },
    mounted: ["/proc"], // the /init wrapper mounted it
    ...(f.fault ? { fault: f.fault } : {}),
  });
  const end = (how: string, line: string): never => {
    if (!ended) {
      k.rec(line, () => {});
      ended = new Stop(how);
    }
    throw ended;
  };
  const disks = () => (f.disks ?? []).filter((d) => sleeps >= (d.after ?? 0));
  const st = (kind: Stat["kind"], dev: number): Stat => fakeStat(kind, { dev, ino: 1 });
  const lookup = (path: string): Stat | undefined => {
    if (path === "/proc") return st("dir", 99);
    if (dirs.has(path)) return st("dir", 1);
    if (path === "/sys/class/block") return st("dir", 2);
    const d = disks().find((x) => `/dev/${x.name}` === path);
    if (d) return st("blk", 3);
    if (path === "/dev/loop0" || path === "/dev/loop1") return st("blk", 3);
    if (path.startsWith("/sysroot/") && (f.newRoot ?? []).includes(path.slice(8))) return st("file", 4);
    return undefined;
  };
  /** Block devices opened to read their superblock (not recorded). */
  const fds = new Map<number, string>();
  const kernel = k.sys();
  const base: Sys = {
    ...kernel,
    lstatIfExists: lookup,
    stat: (p) => {
      const s = lookup(p);
      if (!s) throw new Error(`fake: stat ${p}`);
      return s;
    },
    readdir: (p) => (p === "/sys/class/block" ? ["loop0", "loop1", ...disks().map((d) => d.name)] : []),
    mkdir: (p, mode) => {
      kernel.mkdir(p, mode);
      dirs.add(p);
    },
    open: (p) => {
      if (p === "/dev/loop0") throw new SysError("ENXIO", `Cannot open "${p}": ENXIO`);
      const fd = 10 + fds.size;
      fds.set(fd, p);
      return fd;
    },
    pread: (fd) => {
      const name = (fds.get(fd) ?? "").slice(5);
      const d = disks().find((x) => x.name === name);
      return d ? superblock(d.label, UUID_HEX) : new Uint8Array(1024);
    },
    close: (fd) => {
      fds.delete(fd);
    },
  };
  const sys: InitSys = {
    ...base,
    ...initMounts(base),
    loadModule: (p) =>
      k.rec(`loadModule(${p})`, () => {
        if (f.failModule && p.includes(f.failModule))
          throw new SysError("ENOEXEC", `Cannot load kernel module "${p}": ENOEXEC`);
        return true;
      }),
    sleep: () => {
      sleeps++;
    },
    writeDevice: (p, text) => {
      if (!ended) k.rec(`writeDevice(${p}, ${JSON.stringify(text)})`, () => {});
    },
    exec: (p, argv) => end(`exec ${argv[0]}`, `exec(${p}, ${argv.join(" ")})`),
    powerOff: () => end("poweroff", "powerOff()"),
  };
  return { sys, calls: k.calls, sleeps: () => sleeps, ended: () => ended !== undefined };
}

const ok = (): PrepareRootResult => ({ decision: { verdict: "boot" } as never, timings: {} });
const refused = (stage: string, reason: string): PrepareRootResult => ({
  decision: { verdict: "refuse" } as never,
  failed: { stage: stage as never, reason },
  timings: {},
});

function boot(f: FakeOptions, prepare: () => PrepareRootResult = ok) {
  const fake = fakeInit(f);
  const err: string[] = [];
  const events: Record<string, unknown>[] = [];
  const prepared: { sysroot: string; mountVar: boolean | undefined; cmdline: string }[] = [];
  let t = 0;
  let stop: Stop | undefined;
  try {
    runInit(fake.sys, {
      // what a fake "process" says after its exec or power-off is not real output
      log: (e) => {
        if (!fake.ended()) events.push(e);
      },
      err: (l) => {
        if (!fake.ended()) err.push(l);
      },
      now: () => (t += 10),
      etcSuffix: "abcdef",
      prepare: (_s, o) => {
        prepared.push({ sysroot: o.sysroot, mountVar: o.mountVar, cmdline: o.cmdline.text });
        return prepare();
      },
    });
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    stop = e;
  }
  return { ...fake, err, events, prepared, stop };
}

describe("runInit()", () => {
  const disks = [{ name: "vda", label: "sealroot-vm", after: 3 }];

  it("mounts what the wrapper did not, loads the modules, waits for LABEL=, prepares and switch-roots", () => {
    const r = boot({
      cmdline: "root=LABEL=sealroot-vm rw ostree=/ostree/boot.0/x/y/0 init=/sysroot/t/init",
      disks,
      newRoot: ["/sysroot/t/init", "/dev"],
    });
    expect(r.stop?.how).toBe("exec switch_root");
    expect(r.sleeps()).toBe(3);
    expect(r.calls).toEqual([
      "mount(sysfs, /sys, sysfs, MS_NOSUID|MS_NODEV|MS_NOEXEC, null)",
      "mount(devtmpfs, /dev, devtmpfs, MS_NOSUID, mode=0755)",
      "mount(tmpfs, /run, tmpfs, MS_NOSUID|MS_NODEV, mode=0755)",
      "loadModule(/lib/modules/loop.ko)",
      "loadModule(/lib/modules/overlay.ko)",
      "mount(/dev/vda, /sysroot, ext4, 0, null)",
      "umount2(/dev, MNT_DETACH)",
      "umount2(/proc, MNT_DETACH)",
      "umount2(/sys, MNT_DETACH)",
      "umount2(/run, MNT_DETACH)",
      "exec(/bin/busybox, switch_root /sysroot /sysroot/t/init)",
    ]);
    expect(r.prepared).toEqual([
      {
        sysroot: "/sysroot",
        mountVar: true,
        cmdline: "root=LABEL=sealroot-vm rw ostree=/ostree/boot.0/x/y/0 init=/sysroot/t/init",
      },
    ]);
    expect(r.err).toEqual([]);
    expect(r.events.map((e) => `${e.phase} ${e.ok}`)).toEqual([
      "api-mounts true",
      "cmdline true",
      "modules true",
      "root-device true",
      "mount-root true",
      "prepare-root true",
      "switch-root true",
    ]);
  });

  it("moves /dev /proc /sys /run into a new root that has them, and tries each block file system without rootfstype=", () => {
    const f = fakeInit({
      cmdline: "root=/dev/vda ro rd.sealroot.modules=erofs",
      disks: [{ name: "vda", label: "x" }],
      newRoot: ["/sbin/init"],
      fault: (line) => (line.includes(", ext4,") ? "EINVAL" : undefined),
    });
    const lstat = f.sys.lstatIfExists;
    f.sys.lstatIfExists = (p) =>
      ["/sysroot/dev", "/sysroot/proc", "/sysroot/sys", "/sysroot/run"].includes(p)
        ? lstat("/dev")
        : lstat(p);
    expect(() =>
      runInit(f.sys, { log: () => {}, err: () => {}, now: () => 0, etcSuffix: "x", prepare: ok }),
    ).toThrow(Stop);
    const r = f.calls;
    expect(r.slice(3)).toEqual([
      "loadModule(/lib/modules/erofs.ko)",
      "mount(/dev/vda, /sysroot, ext4, MS_RDONLY, null) → EINVAL",
      "mount(/dev/vda, /sysroot, vfat, MS_RDONLY, null)",
      "mount(/dev, /sysroot/dev, null, MS_MOVE, null)",
      "mount(/proc, /sysroot/proc, null, MS_MOVE, null)",
      "mount(/sys, /sysroot/sys, null, MS_MOVE, null)",
      "mount(/run, /sysroot/run, null, MS_MOVE, null)",
      "exec(/bin/busybox, switch_root /sysroot /sbin/init)",
    ]);
  });

  it("prints a refusal once on stderr and /dev/kmsg and powers off, without switching root", () => {
    const reason =
      'Cannot verify composefs image "/sysroot/x/.ostree.cfs": fs-verity digest 42, expected e9 (signed)';
    const r = boot({ cmdline: "root=/dev/vda rw", disks, newRoot: ["/sbin/init"] }, () =>
      refused("image", reason),
    );
    const line = `sealroot: prepare-root refused (image): ${reason}`;
    expect(r.stop?.how).toBe("poweroff");
    expect(r.err).toEqual([`${line}\n`]);
    expect(r.calls.slice(-2)).toEqual([
      `writeDevice(/dev/kmsg, ${JSON.stringify(`<2>${line}\n`)})`,
      "powerOff()",
    ]);
    expect(r.calls.some((c) => c.includes("switch_root"))).toBe(false);
    expect(r.events.at(-1)).toEqual({
      phase: "boot",
      ok: false,
      ms: 0,
      error: line.slice(10),
      next: "poweroff",
    });
  });

  it("starts busybox sh instead of powering off when rd.shell is set", () => {
    const r = boot({ cmdline: "root=/dev/vda rw rd.shell", disks }, () =>
      refused("signature", "No valid signature"),
    );
    expect(r.stop?.how).toBe("exec sh");
    expect(r.err).toEqual([
      "sealroot: prepare-root refused (signature): No valid signature\n",
      "sealroot: rd.shell: starting a shell; the root was NOT switched to\n",
    ]);
    expect(r.calls.at(-1)).toBe("exec(/bin/busybox, sh)");
  });

  const SIGNED_CONF = { "/usr/lib/ostree/prepare-root.conf": "[composefs]\nenabled = signed\n" };
  const shellIgnored =
    "sealroot: rd.shell ignored: the boot verifies its root and the initramfs's prepare-root.conf has no [sealroot] emergency-shell = yes\n";

  it("powers off despite rd.shell when the initramfs's config requires signatures and does not opt in", () => {
    const r = boot({ cmdline: "root=/dev/vda rw rd.shell", disks, files: SIGNED_CONF }, () =>
      refused("signature", "No valid signature"),
    );
    expect(r.stop?.how).toBe("poweroff");
    expect(r.err).toEqual(["sealroot: prepare-root refused (signature): No valid signature\n", shellIgnored]);
    expect(r.calls.some((c) => c.startsWith("exec(/bin/busybox, sh"))).toBe(false);
  });

  it("powers off despite rd.shell when the unverified command line itself asks for verity", () => {
    const r = boot({ cmdline: "root=/dev/vda rw rd.shell ot-composefs=signed=/k.pub", disks }, () =>
      refused("keys", "no key"),
    );
    expect(r.stop?.how).toBe("poweroff");
    expect(r.err.at(-1)).toBe(shellIgnored);
  });

  it("starts the shell in a signed boot when the initramfs's config says [sealroot] emergency-shell = yes", () => {
    const files = {
      "/usr/lib/ostree/prepare-root.conf":
        "[composefs]\nenabled = signed\n[sealroot]\nemergency-shell = yes\n",
    };
    const r = boot({ cmdline: "root=/dev/vda rw rd.shell", disks, files }, () =>
      refused("signature", "No valid signature"),
    );
    expect(r.stop?.how).toBe("exec sh");
    expect(r.calls.at(-1)).toBe("exec(/bin/busybox, sh)");
  });

  it("gives up on a root device that never appears after rd.sealroot.root-timeout=, naming what it saw", () => {
    const r = boot({
      cmdline: "root=LABEL=nope rd.sealroot.root-timeout=1",
      disks: [{ name: "vda", label: "other" }],
    });
    expect(r.stop?.how).toBe("poweroff");
    expect(r.sleeps()).toBe(99); // the fake clock advances 10 ms a call: polls until 1000 ms have passed
    expect(r.err).toEqual([
      'sealroot: Cannot find the root device "root=LABEL=nope": not present after 1 s (block devices seen: /dev/loop0, /dev/vda), expected a block device matching it (rd.sealroot.root-timeout= to wait longer; modules for its controller)\n',
    ]);
    expect(r.prepared).toEqual([]);
  });

  it("refuses before moving anything when init= is absent in the prepared root", () => {
    const r = boot({ cmdline: "root=/dev/vda rw init=/nope", disks: [{ name: "vda", label: "x" }] });
    expect(r.stop?.how).toBe("poweroff");
    expect(r.err[0]).toBe(
      'sealroot: Cannot switch root to "/nope": absent in the prepared root "/sysroot", expected the OS init (init=)\n',
    );
    expect(r.calls.some((c) => c.startsWith("umount2") || c.includes("MS_MOVE"))).toBe(false);
  });

  it("fails closed on an unexpected exception inside prepare-root", () => {
    const r = boot(
      { cmdline: "root=/dev/vda rw", disks: [{ name: "vda", label: "x" }], newRoot: ["/sbin/init"] },
      () => {
        throw new TypeError("x is undefined");
      },
    );
    expect(r.stop?.how).toBe("poweroff");
    expect(r.err).toEqual(["sealroot: TypeError: x is undefined\n"]);
  });

  it("fails closed on a bad kernel argument and on a module that does not load", () => {
    const bad = boot({ cmdline: "root=PARTUUID=1 rd.shell" });
    expect(bad.stop?.how).toBe("poweroff"); // rd.shell comes from the same unparsable command line
    expect(bad.err[0]).toMatch(/^sealroot: Cannot parse kernel argument "root=PARTUUID=1"/);
    const mod = boot({ cmdline: "root=/dev/vda", disks, failModule: "overlay" });
    expect(mod.stop?.how).toBe("poweroff");
    expect(mod.err).toEqual(['sealroot: Cannot load kernel module "/lib/modules/overlay.ko": ENOEXEC\n']);
  });

  it("words the refusal as the prepare-root command does", () => {
    expect(refusalLine(refused("keys", "no key"))).toBe("prepare-root refused (keys): no key");
  });
});
