// Each dracut initramfs kind (systemd, no systemd) built with Debian's dracut and dracut-module/ boots the
// Debian 13 kernel in QEMU and runs sealroot. The disk is the conformance sysroot (ostree/sysroot.tar) on an
// ext4 `-O verity` disk labelled `root`, with the top-level directories `ostree admin init-fs` makes (the
// tar has none, and dracut's shell /init refuses a root without proc, sys and dev). fs-verity is not
// provisioned, so the good boot is unsigned (`ot-composefs=on`). The fixture's deployment has no init,
// so the probe module (test/boot/lib/dracut.ts) reports after sealroot and powers off. Cases per kind:
// the unsigned boot mounts composefs on /sysroot; a commit signed by another key ends in emergency with
// sealroot's reason; without `ostree=` sealroot does not run; without the probe a refusal never reaches
// switch-root (the image as shipped). Sizes and timings are printed at the end.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CACHE, SEALROOT_BIN } from "../../initrd/build.ts";
import { makeExt4Disk } from "../../qemu/lib/disk.ts";
import { bootVm, qemuAvailable, sealrootEvents, type VmResult } from "../../qemu/lib/qemu.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C2 } from "../helpers/golden.ts";
import {
  type DracutImage,
  type DracutKind,
  dracutAvailable,
  dracutInitramfs,
  dracutLogDir,
  PROBE_KARGS,
  refusalLines,
} from "./lib/dracut.ts";

const BIN = SEALROOT_BIN;
const KINDS: DracutKind[] = ["systemd", "nosystemd"];
const DEP0 = "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const BASE_KARGS = `root=LABEL=root rw ${PROBE_KARGS}`;
const KEY = join(OSTREE, "keys/ed25519.pub");
const OTHER_KEY = join(OSTREE, "keys/ed25519-other.pub");
const REASON =
  `sealroot: prepare-root refused (signature): Cannot verify commit ${C2} with the keys in ` +
  '"/etc/ostree/initramfs-root-binding.key": none of 1 signature verifies with the trusted key' +
  ", expected an ed25519 signature by one of them";
/** /proc/mounts under /sysroot after the unsigned boot; without systemd sealroot also binds /var. */
const MOUNTS: Record<DracutKind, string[]> = {
  systemd: [
    "composefs /sysroot overlay ro,relatime,lowerdir+=/run/ostree/.private/cfsroot-lower,datadir+=/sysroot/ostree/repo/objects,redirect_dir=on,metacopy=on",
    "/dev/vda /sysroot/etc ext4 rw,relatime",
    "/dev/vda /sysroot/sysroot ext4 ro,relatime",
    "/dev/vda /sysroot/sysroot/ostree/deploy/refos/var ext4 rw,relatime",
  ],
  nosystemd: [
    "composefs /sysroot overlay ro,relatime,lowerdir+=/run/ostree/.private/cfsroot-lower,datadir+=/sysroot/ostree/repo/objects,redirect_dir=on,metacopy=on",
    "/dev/vda /sysroot/etc ext4 rw,relatime",
    "/dev/vda /sysroot/sysroot ext4 ro,relatime",
    "/dev/vda /sysroot/sysroot/ostree/deploy/refos/var ext4 rw,relatime",
    "/dev/vda /sysroot/var ext4 rw,relatime",
  ],
};

const skipReason = ((): string | undefined => {
  const q = qemuAvailable();
  if (q !== true) return q;
  const d = dracutAvailable();
  if (d !== true) return d;
  if (!existsSync(BIN)) return `${BIN} absent (npm run build)`;
  return undefined;
})();

interface Row {
  kind: DracutKind;
  name: string;
  image: DracutImage;
  r: VmResult;
}
const rows: Row[] = [];
let work = "";
let disk = "";
let signedConf = "";
/** Signed, and the emergency shell allowed after a refusal. */
let signedShellConf = "";
/** What `sealroot fail-closed` prints before powering off a refused verifying boot. */
const FAIL_CLOSED =
  "sealroot: no emergency shell after the refusal: the boot verifies its root and the initramfs's prepare-root.conf has no [sealroot] emergency-shell = yes; powering off";

async function boot(kind: DracutKind, name: string, image: DracutImage & { kernel: string }, append: string) {
  const r = await bootVm({
    kernel: image.kernel,
    initrd: image.path,
    disks: [{ path: disk, snapshot: true }],
    append: `${BASE_KARGS} ${append}`,
    timeoutMs: 300_000,
    serialLog: join(dracutLogDir(CACHE), `${kind}-${name}.log`),
  });
  rows.push({ kind, name, image, r });
  expect(r.timedOut, `${kind} ${name}: QEMU timed out`).toBe(false);
  return r;
}

/** The console without terminal escapes (systemd's status lines colour unit names). */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");
const plain = (serial: string): string => serial.replace(ANSI, "");
const values = (r: VmResult, key: string): string[] =>
  r.markerList.filter((m) => m.key === key).map((m) => m.value);

describe.skipIf(skipReason !== undefined)("dracut initramfs kinds boot sealroot", () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "sealroot-dracut-"));
    const tree = join(work, "tree");
    execFileSync("cp", ["-a", extracted("ostree/sysroot.tar"), tree]);
    for (const d of ["dev", "proc", "sys", "run", "tmp"]) mkdirSync(join(tree, d));
    disk = makeExt4Disk(join(work, "root.img"), { tree, sizeMiB: 64, label: "root" });
    signedConf = join(work, "signed.conf");
    writeFileSync(signedConf, "[composefs]\nenabled = signed\n");
    signedShellConf = join(work, "signed-shell.conf");
    writeFileSync(signedShellConf, "[composefs]\nenabled = signed\n[sealroot]\nemergency-shell = yes\n");
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    if (rows.length === 0) return;
    const s = (v: string | undefined): string =>
      v === undefined ? "   -  " : Number(v).toFixed(2).padStart(6);
    const lines = rows.map(({ kind, name, image, r }) => {
      const start = r.markers.t_sealroot_start;
      const end = r.markers.t_sealroot_end ?? r.markers.emergency;
      const run = start !== undefined && end !== undefined ? (Number(end) - Number(start)).toFixed(2) : "-";
      return (
        `${`${kind} ${name}`.padEnd(28)} ${(image.bytes / 1e6).toFixed(1).padStart(5)} MB` +
        `  initrd ${s(r.markers.t_initrd)}  sealroot ${s(start)} → ${s(end)} (${run} s)` +
        `  wall ${(r.timings.wallMs / 1000).toFixed(1)} s`
      );
    });
    process.stderr.write(`dracut boots (guest uptime, s):\n${lines.join("\n")}\n`);
  });

  for (const kind of KINDS) {
    it(`${kind}: the unsigned boot (ot-composefs=on) mounts composefs on /sysroot and records its decision`, async () => {
      const image = dracutInitramfs({ kind, key: KEY });
      expect(image.dracutModules).toContain("sealroot");
      expect(image.dracutModules.includes("systemd")).toBe(kind === "systemd");
      const r = await boot(kind, "unsigned", image, `ostree=${DEP0} ot-composefs=on`);

      expect(r.markers.exit).toBe("0");
      expect(values(r, "mount")).toEqual(MOUNTS[kind]);
      expect(r.markers.ostree_booted).toBe("present");
      expect(r.markers.hello).toBe("present");
      const record = JSON.parse(r.markers.decision ?? "null") as {
        decision: { verdict: string; composefs: string; deployment: { commit: string }; applied: unknown[] };
        plan: { steps: string[] };
      };
      expect(record.decision.verdict).toBe("boot");
      expect(record.decision.composefs).toBe("on");
      expect(record.decision.deployment.commit).toBe(C2);
      expect(record.decision.applied).toEqual([
        { source: "karg", token: "ot-composefs=on", effect: "composefs on" },
      ]);
      // every plan step logged one event, in order, after decide and plan; all succeeded
      const events = sealrootEvents(r.serial);
      expect(events.map((e) => e.phase)).toEqual(["decide", "plan", ...record.plan.steps]);
      expect(events.every((e) => e.ok === true)).toBe(true);
      expect(refusalLines(r.serial)).toEqual([]);
      expect(Number(r.markers.t_sealroot_start)).toBeLessThan(Number(r.markers.t_sealroot_end));
    });

    it(`${kind}: a commit signed by another key powers off with sealroot's reason, no emergency shell`, async () => {
      const image = dracutInitramfs({ kind, key: OTHER_KEY, config: signedConf });
      const r = await boot(kind, "other-key", image, `ostree=${DEP0}`);

      expect(refusalLines(r.serial)).toEqual([REASON]);
      expect(plain(r.serial)).toContain(FAIL_CLOSED);
      expect(r.markers.emergency).toBeUndefined(); // dracut's emergency path never ran
      expect(r.markers.t_report).toBeUndefined(); // pre-pivot 99 never ran: no switch-root
      expect(r.serial).not.toContain("dracut: FATAL");
      expect(r.panicked).toBe(false);
      if (kind === "systemd") expect(r.markers.sealroot_result).toBe("exit-code/exited/1");
    });

    it(`${kind}: with [sealroot] emergency-shell = yes the same refusal goes to dracut's emergency path`, async () => {
      const image = dracutInitramfs({ kind, key: OTHER_KEY, config: signedShellConf });
      const r = await boot(kind, "other-key-shell", image, `ostree=${DEP0}`);

      expect(refusalLines(r.serial)).toEqual([REASON]);
      expect(r.markers.emergency).toBeDefined();
      expect(r.markers.exit).toBe("1");
      expect(r.markers.decision).toBe("absent");
      expect(r.markers.t_report).toBeUndefined(); // pre-pivot 99 never ran: no switch-root
      const events = sealrootEvents(r.serial);
      expect(events.map((e) => [e.phase, e.verdict, e.stage])).toEqual([["decide", "refuse", "signature"]]);
      if (kind === "systemd") {
        expect(values(r, "failed_unit")).toEqual(["sealroot-prepare-root.service"]);
        expect(r.markers.sealroot_result).toBe("exit-code/exited/1");
      } else {
        expect(r.serial).toContain(
          "dracut: FATAL: sealroot: refused to prepare /sysroot, see the reason above",
        );
      }
    });

    it(`${kind}: without an ostree= argument sealroot does not run and /sysroot stays the physical root`, async () => {
      const image = dracutInitramfs({ kind, key: KEY });
      const r = await boot(kind, "no-ostree", image, "ot-composefs=on");

      expect(r.markers.exit).toBe("0");
      expect(values(r, "mount")).toEqual(["/dev/vda /sysroot ext4 rw,relatime"]);
      expect(r.markers.decision).toBe("absent");
      expect(r.markers.ostree_booted).toBe("absent");
      expect(sealrootEvents(r.serial)).toEqual([]);
      if (kind === "systemd") expect(r.markers.t_sealroot_start).toBeUndefined(); // the unit's condition
    });

    it(`${kind}: as shipped (no probe), a refused signed boot powers off before switch-root`, async () => {
      const image = dracutInitramfs({ kind, key: OTHER_KEY, config: signedConf, probe: false });
      const r = await boot(kind, "shipped-refusal", image, `ostree=${DEP0} rd.emergency=poweroff`);

      expect(refusalLines(r.serial)).toEqual([REASON]);
      expect(plain(r.serial)).toContain(FAIL_CLOSED);
      expect(r.serial).not.toMatch(/Switching root|initrd-switch-root\.service/);
      expect(plain(r.serial)).not.toContain("Reached target emergency.target");
      expect(r.panicked).toBe(false);
    });

    it(`${kind}: as shipped (no probe), a refusal the config lets reach emergency ends the boot before switch-root`, async () => {
      const image = dracutInitramfs({ kind, key: OTHER_KEY, config: signedShellConf, probe: false });
      // systemd: dracut's emergency service powers off with rd.emergency=poweroff; without systemd dracut's
      // die() exits /init and the kernel panics (panic=-1 and -no-reboot end QEMU)
      const r = await boot(kind, "shipped-refusal-shell", image, `ostree=${DEP0} rd.emergency=poweroff`);

      expect(refusalLines(r.serial)).toEqual([REASON]);
      expect(r.serial).not.toMatch(/Switching root|initrd-switch-root\.service/);
      if (kind === "systemd") {
        expect(plain(r.serial)).toContain("Reached target emergency.target");
        expect(r.panicked).toBe(false);
      } else {
        expect(r.serial).toContain("Attempted to kill init! exitcode=0x00000100");
        expect(r.panicked).toBe(true);
      }
    });
  }
});
