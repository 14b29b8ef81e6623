// The kernel fs-verity paths of src/sys/, in the VM (Debian 13's 6.12 kernel has CONFIG_FS_VERITY; the
// host has not): `sealroot enable-verity` and `sealroot measure` against fsverity-utils on a verity ext4
// disk, with the golden image digest; then mountComposefs() over objects with verity enabled, with
// `verity=require` and the digest measured on the image fd, through the file-backed and the loop path;
// and one object left without verity, which the read probe must refuse with EIO.

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildInitramfs, SEALROOT_BIN } from "../../initrd/build.ts";
import { ffiRsAddon } from "../../qemu/lib/bun.ts";
import { makeExt4Disk } from "../../qemu/lib/disk.ts";
import { initScript } from "../../qemu/lib/init.ts";
import { fetchKernel } from "../../qemu/lib/kernel.ts";
import { bootVm, formatTimings, qemuAvailable, type VmResult } from "../../qemu/lib/qemu.ts";
import { extracted, OSTREE, ROOT } from "../helpers/fixtures.ts";
import { C2, C2_DIGEST } from "../helpers/golden.ts";
import type { Report } from "../privileged/run-mount.ts";

const available = qemuAvailable();
const BIN = SEALROOT_BIN;
/** Objects of commit 2 and their fs-verity digests, from test/fixtures/ostree/cfs/c2.cfs.dump. */
const OBJ = {
  small: [
    "f1/1fd5c0516475198401c07583d7ae1d5649284645d133e6821798cc38d6fa03.file",
    "4b88a85c3430ca9e347ff919b4105c6fc2c4834c567b9924cb4cb3fa5c8812f3",
  ],
  twoLevel: [
    "75/fa7de92d9f01f8e5ecc93f480f1a49ff8f6f9c3eb83188e14a49d38b6bf770.file",
    "8bd7ab88a2e5cebba14c4dfe56a5c7afae64113290aff6ce50e0dfded11becac",
  ],
  setuid: [
    "31/cefd84efbb611cc124e85fa15d4879e92069e7ff9a4d53b97fcb88bf8c6d80.file",
    "89ad7e5faec1fa8a63a49563fa3e66e38218297753b6f7d6c3abf3b472c58202",
  ],
} as const;
const READS = [
  "usr/share/data/two-level.bin",
  "usr/bin/setuid-tool",
  "usr/share/owned/by-4242",
  "usr/lib/os-release",
];

const spec = (extra: object) =>
  JSON.stringify({
    image: "/mnt/disk/images/c2.cfs",
    objects: ["/mnt/disk/objects"],
    requireVerity: true,
    expectedDigest: C2_DIGEST,
    read: READS,
    ...extra,
  });

const BODY = `
mkdir -p /mnt/disk
mount -t ext4 /dev/vda /mnt/disk
D=/mnt/disk
rc_of() { out=$("$@" 2>&1) && rc=0 || rc=$?; echo "$out rc=$rc"; }
mark measure_before "$(rc_of sealroot measure $D/images/c2.cfs)"
sealroot enable-verity $D/images/c2.cfs
mark enable_again "$(rc_of sealroot enable-verity $D/images/c2.cfs)"
mark sealroot_measure "$(sealroot measure $D/images/c2.cfs)"
mark fsverity_measure "$(fsverity measure $D/images/c2.cfs)"
# every object but small.txt's gets verity through sealroot; the rest of the checks read them back
find $D/objects -name '*.file' ! -name '${OBJ.small[0].slice(3)}' | xargs sealroot enable-verity
mark objects_measured "$(find $D/objects -name '*.file' ! -name '${OBJ.small[0].slice(3)}' | xargs sealroot measure | wc -l)"
mark objects_fsverity "$(find $D/objects -name '*.file' ! -name '${OBJ.small[0].slice(3)}' | xargs fsverity measure | md5sum | cut -c1-32)"
mark objects_sealroot "$(find $D/objects -name '*.file' ! -name '${OBJ.small[0].slice(3)}' | xargs sealroot measure | md5sum | cut -c1-32)"
mark two_level "$(sealroot measure $D/objects/${OBJ.twoLevel[0]})"
mark setuid "$(sealroot measure $D/objects/${OBJ.setuid[0]})"
mark small_noverity "$(rc_of sealroot measure $D/objects/${OBJ.small[0]})"
mark mount_file "$(run-mount '${spec({})}')"
mark mount_loop "$(run-mount '${spec({ force: { erofsSource: "loop" } })}')"
mark mount_probe "$(run-mount '${spec({ read: [], probe: "usr/share/data/small.txt" })}')"
umount /mnt/disk
`;

describe.skipIf(available !== true || !existsSync(BIN))(
  `VM fs-verity (${available === true ? (existsSync(BIN) ? "qemu" : `no ${BIN}`) : available})`,
  () => {
    let work: string;
    let result: VmResult;
    let hostShas: Record<string, string>;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), "sealroot-vm-verity-"));
      const kernel = fetchKernel();
      // Compiled fresh: compileBun's cache key covers only the entry file, not the src/ modules it bundles.
      const runMount = join(work, "run-mount");
      execFileSync(
        join(ROOT, "node_modules/.bin/bun"),
        ["build", "--compile", join(ROOT, "test/privileged/run-mount.ts"), "--outfile", runMount],
        { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
      );

      const sysroot = extracted("ostree/sysroot.tar");
      const tree = join(work, "tree");
      mkdirSync(join(tree, "images"), { recursive: true });
      copyFileSync(join(OSTREE, "cfs/c2.cfs"), join(tree, "images/c2.cfs"));
      const objects = join(sysroot, "ostree/repo/objects");
      for (const dir of readdirSync(objects)) {
        for (const name of readdirSync(join(objects, dir))) {
          // regular files only: symlink objects are not payloads (the image stores link targets inline)
          if (!name.endsWith(".file") || !lstatSync(join(objects, dir, name)).isFile()) continue;
          mkdirSync(join(tree, "objects", dir), { recursive: true });
          copyFileSync(join(objects, dir, name), join(tree, "objects", dir, name));
        }
      }
      const deploy = join(sysroot, "ostree/deploy/refos/deploy");
      const dep = join(deploy, readdirSync(deploy).find((n) => n.startsWith(C2) && n.endsWith(".0")) ?? "");
      hostShas = Object.fromEntries(
        READS.map((r) => [
          r,
          execFileSync("sha256sum", [join(dep, r)], { encoding: "utf8" }).split(" ")[0] as string,
        ]),
      );
      const disk = makeExt4Disk(join(work, "disk.img"), { tree, sizeMiB: 64 });

      const initrd = buildInitramfs({
        init: initScript(BODY),
        binaries: [
          { src: "/usr/bin/fsverity", dest: "/usr/bin/fsverity" },
          { src: BIN, dest: "/usr/bin/sealroot" },
          { src: runMount, dest: "/usr/bin/run-mount" },
        ],
        libsOf: [ffiRsAddon()],
        modules: { dir: kernel.modulesDir, names: kernel.modules },
      });
      result = await bootVm({
        kernel: kernel.vmlinuz,
        initrd: initrd.path,
        disks: [{ path: disk }],
        memMiB: 2048,
        timeoutMs: 300_000,
        serialLog: join(work, "serial.log"),
      });
      console.log(`VM verity: ${formatTimings(result.timings)}`);
    }, 900_000);

    afterAll(() => {
      if (work && result?.status === 0) rmSync(work, { recursive: true, force: true });
      else if (work) console.log(`VM verity: kept ${work} (serial.log) for inspection`);
    });

    const report = (key: string): Report => JSON.parse(result.markers[key] ?? "{}") as Report;

    it("runs the whole init body to exit 0", () => {
      expect(result.timedOut, result.serial).toBe(false);
      expect(result.status, result.serial).toBe(0);
    });

    it("`sealroot measure` says the image has no verity yet, as one line and exit 1", () => {
      expect(result.markers.measure_before).toBe(
        'sealroot: Cannot measure fs-verity of "/mnt/disk/images/c2.cfs": ENODATA, expected a file with fs-verity enabled (sealroot enable-verity) rc=1',
      );
    });

    it("`sealroot enable-verity` then `sealroot measure` equals `fsverity measure` and the golden digest", () => {
      expect(result.markers.sealroot_measure).toBe(`sha256:${C2_DIGEST} /mnt/disk/images/c2.cfs`);
      expect(result.markers.fsverity_measure).toBe(result.markers.sealroot_measure);
    });

    it("`sealroot enable-verity` on a file that already has verity says so and succeeds", () => {
      expect(result.markers.enable_again).toBe(
        'sealroot: fs-verity already enabled on "/mnt/disk/images/c2.cfs" rc=0',
      );
    });

    it("enables and measures every object as fsverity-utils does, with the digests the image records", () => {
      expect(result.markers.objects_measured).toBe("47");
      expect(result.markers.objects_sealroot).toBe(result.markers.objects_fsverity);
      expect(result.markers.two_level).toBe(`sha256:${OBJ.twoLevel[1]} /mnt/disk/objects/${OBJ.twoLevel[0]}`);
      expect(result.markers.setuid).toBe(`sha256:${OBJ.setuid[1]} /mnt/disk/objects/${OBJ.setuid[0]}`);
      expect(result.markers.small_noverity).toBe(
        `sealroot: Cannot measure fs-verity of "/mnt/disk/objects/${OBJ.small[0]}": ENODATA, expected a file with fs-verity enabled (sealroot enable-verity) rc=1`,
      );
    });

    it.each([
      ["mount_file", "file"],
      ["mount_loop", "loop"],
    ])(
      "%s: mounts with verity=require after measuring the image fd, and reads verified files",
      (key, source) => {
        const r = report(key);
        expect(r.error).toBeUndefined();
        expect(r.measured).toBe(`sha256:${C2_DIGEST}`);
        expect(r.result?.erofs.source).toBe(source);
        expect(r.result?.fallbacks).toEqual([]);
        expect(r.targetMounts).toEqual([
          {
            mountOptions: "ro,relatime",
            fstype: "overlay",
            source: "composefs",
            superOptions: `ro,lowerdir+=${r.imageMountDir},datadir+=/mnt/disk/objects,redirect_dir=on,metacopy=on,verity=require`,
          },
        ]);
        expect(r.reads).toEqual(hostShas);
      },
    );

    it("refuses, through the read probe, a backing object without verity (EIO under verity=require)", () => {
      const r = report("mount_probe");
      expect(r.ok).toBe(false);
      expect(r.error?.errno).toBe("EIO");
      expect(r.error?.message).toBe(
        `Cannot read "${r.target}/usr/share/data/small.txt": EIO (through the composefs overlay with verity=require on Linux ${result.markers.kernel}), ` +
          "expected every backing object with fs-verity enabled and matching the image (kernel with CONFIG_FS_VERITY; Linux 7.0.x needs the overlayfs fix for bootc#2174)",
      );
    });
  },
);
