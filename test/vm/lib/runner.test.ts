// Fast checks of the VM tier's host-side pieces (no boot): the console marker parser, QEMU's argv, the
// initramfs writer (listed back with GNU cpio) and the ldd-based library collection.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildInitramfs, sharedLibs } from "../../../initrd/build.ts";
import { parseMarkers, qemuArgv, sealrootEvents } from "../../../qemu/lib/qemu.ts";

const work = mkdtempSync(join(tmpdir(), "sealroot-vm-lib-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("parseMarkers()", () => {
  it("reads key=value lines, strips \\r, keeps order and tolerates kernel noise before the marker", () => {
    const serial = [
      "[    3.275842] Run /init as init process\r",
      "SEALROOT-VM: t_init=3.31\r",
      "[    3.66] loop: module loaded SEALROOT-VM: verity_digest=sha256:ab cd",
      "SEALROOT-VM: bad key=x",
      "sealroot-vm: lower=1",
      "SEALROOT-VM: empty=",
    ].join("\n");
    expect(parseMarkers(serial)).toEqual([
      { key: "t_init", value: "3.31" },
      { key: "verity_digest", value: "sha256:ab cd" },
      { key: "empty", value: "" },
    ]);
  });
});

describe("sealrootEvents()", () => {
  it("reads one event per JSON line, after a systemd prefix too", () => {
    const serial =
      '{"level":30,"phase":"a","ok":true}\n[ 1.0] sealroot[9]: {"level":30,"phase":"b","ok":true}\n';
    expect(sealrootEvents(serial).map((e) => e.phase)).toEqual(["a", "b"]);
  });

  it("mends an event the kernel's printing of a /dev/kmsg record cut in two (seen on a CI boot)", () => {
    const serial = [
      '{"level":50,"phase":"boot","ok":false,"error":"prepare-root refused (image): needs the overlay[    5.729306] sealroot: prepare-root refused (image): needs the overlayfs fix',
      'fs fix","next":"poweroff","msg":"boot"}',
      "[    5.748891] reboot: Power down",
    ].join("\n");
    expect(sealrootEvents(serial)).toEqual([
      {
        level: 50,
        phase: "boot",
        ok: false,
        error: "prepare-root refused (image): needs the overlayfs fix",
        next: "poweroff",
        msg: "boot",
      },
    ]);
  });

  it("still throws on any other malformed event", () => {
    expect(() => sealrootEvents('{"level":30,"phase":"a"\n')).toThrow(SyntaxError);
  });
});

describe("qemuArgv()", () => {
  const argv = qemuArgv({
    kernel: "/k/vmlinuz",
    initrd: "/k/initrd",
    disks: [{ path: "/d/a.img" }, { path: "/d/b.img", snapshot: true, readOnly: true }],
    append: "sealroot.x=1",
  });
  const argOf = (flag: string): string[] =>
    argv.flatMap((a, i) => (a === flag ? [argv[i + 1] as string] : []));

  it("asks for TCG with -cpu max (AVX2 for Bun), no reboot and the serial console on stdio", () => {
    expect(argOf("-machine")).toEqual(["q35,accel=tcg"]);
    expect(argOf("-cpu")).toEqual(["max"]);
    expect(argOf("-serial")).toEqual(["stdio"]);
    expect(argv).toContain("-no-reboot");
    expect(argv).toContain("-nographic");
  });

  it("builds the kernel command line with console=ttyS0 and panic=-1 before the caller's words", () => {
    expect(argOf("-append")).toEqual(["console=ttyS0 panic=-1 loglevel=4 sealroot.x=1"]);
  });

  it("attaches disks in order as virtio-blk with snapshot/readonly flags", () => {
    expect(argOf("-drive")).toEqual([
      "file=/d/a.img,format=raw,if=none,id=d0,cache=unsafe",
      "file=/d/b.img,format=raw,if=none,id=d1,cache=unsafe,snapshot=on,readonly=on",
    ]);
    expect(argOf("-device")).toEqual(["virtio-blk-pci,drive=d0", "virtio-blk-pci,drive=d1"]);
  });
});

describe("buildInitramfs()", () => {
  const spec = {
    init: "#!/bin/sh\necho hi\n",
    binaries: [{ src: "/usr/bin/fsverity", dest: "/usr/bin/fsverity" }],
    files: [{ dest: "/etc/sealroot/key.pub", content: "KEY\n", mode: 0o600 }],
    symlinks: [{ path: "/sbin/init", target: "/init" }],
    compression: "none" as const,
  };
  const a = buildInitramfs(spec, join(work, "a.cpio"));
  const b = buildInitramfs(spec, join(work, "b.cpio"));
  const listing = execFileSync("cpio", ["-itv", "--quiet", "-F", a.path], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean);
  const line = (name: string): string | undefined => listing.find((l) => l.endsWith(` ${name}`));

  it("writes a newc archive GNU cpio lists, with device nodes, modes and symlinks as asked", () => {
    expect(line("dev/console")).toMatch(/^crw------- +1 root +root +5, +1 /);
    expect(line("dev/null")).toMatch(/^crw-rw-rw- +1 root +root +1, +3 /);
    expect(line("tmp")).toMatch(/^drwxrwxrwt /);
    expect(line("init")).toMatch(/^-rwxr-xr-x +1 root +root +18 /);
    expect(line("etc/sealroot/key.pub")).toMatch(/^-rw------- +1 root +root +4 /);
    expect(listing.find((l) => l.includes(" sbin/init -> "))).toMatch(/sbin\/init -> \/init$/);
    expect(listing.find((l) => l.includes(" bin/sh -> "))).toMatch(/bin\/sh -> \/bin\/busybox$/);
  });

  it("creates every parent directory before its entries", () => {
    const names = listing.map((l) => l.split(" ").at(-1) as string);
    const i = names.indexOf("etc/sealroot");
    expect(i).toBeGreaterThan(names.indexOf("etc"));
    expect(i).toBeLessThan(names.indexOf("etc/sealroot/key.pub"));
  });

  it("copies a binary's shared libraries (and the loader) to the paths ldd names", () => {
    const libs = sharedLibs("/usr/bin/fsverity");
    expect(libs).toContain("/lib64/ld-linux-x86-64.so.2");
    expect(libs.some((l) => l.endsWith("/libfsverity.so.0"))).toBe(true);
    for (const lib of libs) expect(line(lib.slice(1)), lib).toBeDefined();
  });

  it("treats busybox-static as having no shared libraries", () => {
    expect(sharedLibs("/bin/busybox")).toEqual([]);
  });

  it("is deterministic: the same spec gives the same bytes", () => {
    expect(b.cpioBytes).toBe(a.cpioBytes);
    expect(readFileSync(b.path).equals(readFileSync(a.path))).toBe(true);
  });

  it("reuses the image when the spec and inputs are unchanged", () => {
    expect(a.cached).toBe(false);
    expect(buildInitramfs(spec, a.path).cached).toBe(true);
  });
});
