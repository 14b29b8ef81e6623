// The boot in QEMU with real fs-verity: `sealroot init` as PID 1 of the sealroot initramfs (initrd/sealroot.ts)
// on the conformance sysroot, and `sealroot prepare-root` against every tampered disk. Design:
// * Disks: the extracted `ostree/sysroot.tar`, one ext4 verity disk per variant (good, and the tampers
//   applied to the host tree before mke2fs), plus `/sealroot-test/{busybox,init}` on the physical root — the
//   "OS init" of the good boots, reached through the real switch_root as init=/sysroot/sealroot-test/init
//   (the deployment itself is the fixture's, untouched and without a shell). fs-verity can only be enabled
//   by a kernel that has it, so one provisioning boot runs `sealroot enable-verity` on every repo object and
//   `.ostree.cfs` of each disk (images only on `objects-noverity`); the provisioned images are cached by
//   the hash of their recipe and attached with `snapshot=on` afterwards, so no boot changes them.
// * One batch boot (a busybox /init) runs `sealroot prepare-root` once per refusal case, each on its own
//   disk or command line: exit status, the one-line reason, and nothing left mounted or in /run.
// * Four PID-1 boots: signed (prepare-root.conf `enabled = signed`, root=UUID=) and digest
//   (`ot-composefs=digest=`, no config, root=LABEL=) switch root and the OS init reads every file; a
//   refusal (objects without fs-verity) and a missing root device must print the reason and power off.
// `sealroot measure` against `fsverity measure` and the signed digest is test/vm/verity.test.ts's job.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildInitramfs, CACHE, SEALROOT_BIN } from "../../initrd/build.ts";
import { buildSealrootInitramfs, ffiRsAddon } from "../../initrd/sealroot.ts";
import { makeExt4Disk } from "../../qemu/lib/disk.ts";
import { initScript } from "../../qemu/lib/init.ts";
import { fetchKernel, type Kernel } from "../../qemu/lib/kernel.ts";
import { bootVm, formatTimings, qemuAvailable, sealrootEvents, type VmResult } from "../../qemu/lib/qemu.ts";
import { extracted, OSTREE } from "../helpers/fixtures.ts";
import { C1, C1_DIGEST, C2, C2_DIGEST } from "../helpers/golden.ts";

const available = qemuAvailable();
const KERNEL_RELEASE = () => fetchKernel().release;
const BIN = SEALROOT_BIN;

const C1_IMAGE_DIGEST = "2ecd2f0b169d05c56fe21321ce67b67328aa703ed78825174f9b3d437697c08f";
/** The kernel's digest of bad/deploy-c2.ostree.cfs.flipped (the reference boot measured the same). */
const FLIPPED_DIGEST = "4237f161e29ed2ac4746623f3e643e6d985011179f8a6086aae0f94a8911e221";
const WRONG_DIGEST = `${C2_DIGEST.slice(0, 63)}0`;
/** Boot links of deployment 0 (commit 2, good) and 1 (commit 1, image ≠ signed digest). */
const DEP0 = "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const DEP1 = "/ostree/boot.0/refos/b0d948d23ff829a8ccc9b2f90d9b055a40896951f3d65ae8b2b8fe17125eeb25/0";
const DEP0_DIR = `ostree/deploy/refos/deploy/${C2}.0`;
const COMMITMETA = `ostree/repo/objects/59/${C2.slice(2)}.commitmeta`;
/** makeExt4Disk's fixed UUID and default label. */
const DISK_UUID = "5ea1f00d-0000-4000-8000-000000000001";
const DISK_LABEL = "sealroot-vm";
const SIGNED_CONF = "[composefs]\nenabled = signed\n";
const OS_INIT = "/sysroot/sealroot-test/init";
/** Serial logs of the last run, kept for inspection. */
const LOGS = join(CACHE, "vm/prepare-root-logs");

/** The OS init on the physical root (`/sysroot/...` once switched): proves PID 1 switched root, then reads
 * every file of the composefs root, prints the mounts and powers off. */
const TEST_OS_INIT = `#!/sysroot/sealroot-test/busybox sh
B=/sysroot/sealroot-test/busybox
m() { $B echo "SEALROOT-VM: $1=$2"; }
m newroot_pid $$
$B mkdir -p /var/sealroot-proc
$B mount -t proc proc /var/sealroot-proc
P=/var/sealroot-proc
m t_newroot "$($B cut -d' ' -f1 $P/uptime)"
while read -r l; do m mount "$l"; done <$P/mounts
m run_dir "$($B ls -d /run 2>&1)"
m hostname "$($B cat /etc/hostname)"
cd /
$B find / -xdev -type f | $B sort | while read -r f; do
  # no /dev in this root (the fixture has no /dev directory): no 2>/dev/null
  if s=$($B sha256sum "$f" 2>&1); then m read "$s"; else m readerr "$s"; fi
done
m exit 0
$B umount /var/sealroot-proc
$B sync
$B poweroff -f
`;

interface Variant {
  name: string;
  tamper?: (tree: string) => void;
  /** Provision fs-verity on the repo objects too (always on the images). */
  objects: boolean;
}
const replaceWith = (fixture: string, rel: string) => (tree: string) => {
  rmSync(join(tree, rel)); // never write through a hard link
  copyFileSync(join(OSTREE, fixture), join(tree, rel));
};
const VARIANTS: Variant[] = [
  { name: "good", objects: true },
  {
    name: "cfs-flipped",
    objects: true,
    tamper: replaceWith("bad/deploy-c2.ostree.cfs.flipped", `${DEP0_DIR}/.ostree.cfs`),
  },
  {
    name: "sig-corrupt",
    objects: true,
    tamper: replaceWith("bad/c2.commitmeta.corrupt-signature", COMMITMETA),
  },
  { name: "sig-other", objects: true, tamper: replaceWith("bad/c2.commitmeta.signed-by-other", COMMITMETA) },
  { name: "sig-truncated", objects: true, tamper: replaceWith("bad/c2.commitmeta.truncated", COMMITMETA) },
  { name: "cfs-missing", objects: true, tamper: (t) => rmSync(join(t, DEP0_DIR, ".ostree.cfs")) },
  { name: "objects-noverity", objects: false },
];
const dev = (name: string): string =>
  `vd${String.fromCharCode(97 + VARIANTS.findIndex((v) => v.name === name))}`;

/** Provisioning: enable fs-verity on every disk in one `sealroot enable-verity` (each run of the Bun binary
 * costs seconds under TCG), measure in one more, report per disk what has verity and the image's digest. */
const mnt = (v: Variant): string => `/mnt/${v.name}`;
const verityPaths = (v: Variant): string =>
  `find ${mnt(v)}/ostree/deploy/refos/deploy -maxdepth 2 -name .ostree.cfs -type f` +
  (v.objects ? `; find ${mnt(v)}/ostree/repo/objects -name '*.file' -type f` : "");
const PROVISION = `
${VARIANTS.map((v) => `mkdir -p ${mnt(v)}; mount -t ext4 /dev/${dev(v.name)} ${mnt(v)}`).join("\n")}
{ ${VARIANTS.map(verityPaths).join("; ")}; } >/tmp/verity-paths
xargs sealroot enable-verity </tmp/verity-paths >/dev/null
xargs sealroot measure </tmp/verity-paths >/tmp/measured
${VARIANTS.map(
  (v) => `n=$(grep -c " ${mnt(v)}/ostree/repo/objects/" /tmp/measured || true)
d0=$(grep " ${mnt(v)}/${DEP0_DIR}/.ostree.cfs$" /tmp/measured | cut -d' ' -f1 || true)
mark prov_${v.name.replace(/-/g, "_")} "objects=$n dep0=\${d0:-none}"`,
).join("\n")}
one=$(find /mnt/objects-noverity/ostree/repo/objects -name '*.file' -type f | head -1)
out=$(sealroot measure "$one" 2>&1) && rc=0 || rc=$?
mark noverity_object "rc=$rc $out"
${VARIANTS.map((v) => `umount ${mnt(v)}`).join("\n")}
`;

/** Batch: prepare-root once per case; stdout (events) to a file, stderr (the reason) and the status as a marker. */
interface Case {
  name: string;
  disk: string;
  target: string;
  config: "signed" | "none";
  kargs?: string;
}
const CASES: Case[] = [
  { name: "cfs_flipped", disk: "cfs-flipped", target: DEP0, config: "signed" },
  { name: "sig_corrupt", disk: "sig-corrupt", target: DEP0, config: "signed" },
  { name: "sig_other", disk: "sig-other", target: DEP0, config: "signed" },
  { name: "sig_truncated", disk: "sig-truncated", target: DEP0, config: "signed" },
  { name: "signed_digest_wrong", disk: "good", target: DEP1, config: "signed" },
  { name: "cfs_missing", disk: "cfs-missing", target: DEP0, config: "signed" },
  { name: "objects_noverity", disk: "objects-noverity", target: DEP0, config: "signed" },
  {
    name: "karg_digest_wrong",
    disk: "good",
    target: DEP0,
    config: "none",
    kargs: `ot-composefs=digest=${WRONG_DIGEST}`,
  },
  // the control: the same harness boots the good disk (last, as it leaves its mounts)
  { name: "good_signed", disk: "good", target: DEP0, config: "signed" },
];
const BATCH = `
mkdir -p /sysroot
i=0
while [ ! -b /dev/${dev(VARIANTS.at(-1)?.name ?? "")} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
run_case() {
  name=$1; disk=$2; conf=$3; shift 3
  mount -t ext4 -o rw /dev/$disk /sysroot
  before=$(wc -l </proc/mounts)
  err=$(sealroot prepare-root /sysroot --config /etc/vm/$conf.conf --cmdline "root=/dev/$disk rw $*" 2>&1 >/tmp/$name.events) && rc=0 || rc=$?
  after=$(wc -l </proc/mounts)
  mark "case_$name" "rc=$rc mounts=$((after - before)) run=$(ls -A /run | tr '\\n' ' ')"
  mark "reason_$name" "$err"
  [ $rc -ne 0 ] && umount /sysroot
  return 0
}
${CASES.map((c) => `run_case ${c.name} ${dev(c.disk)} ${c.config} ostree=${c.target} ${c.kargs ?? ""}`).join("\n")}
mark good_root "$(grep ' /sysroot ' /proc/mounts | head -1)"
mark good_ostree_booted "$(od -An -tx1 /run/ostree-booted | tr -d ' \\n' | cut -c1-16)"
`;

/** Host sha256 of every regular file the composefs root serves (the deployment minus etc/ and var/). */
function expectedReads(sysroot: string): string[] {
  const dep = join(sysroot, DEP0_DIR);
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, name.name);
      const rel = `/${relative(dep, p)}`;
      if (rel === "/etc" || rel === "/var" || rel === "/.ostree.cfs") continue;
      if (name.isDirectory()) walk(p);
      else if (name.isFile())
        out.push(`${createHash("sha256").update(readFileSync(p)).digest("hex")}  ${rel}`);
    }
  };
  walk(dep);
  return out.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1));
}

/** Builds and provisions the variant disks, or reuses them from the cache (keyed by the recipe's inputs). */
async function provisionedDisks(
  kernel: Kernel,
  toolsInitrd: string,
  work: string,
): Promise<{ dir: string; boot?: VmResult }> {
  const h = createHash("sha256").update("v1\n").update(TEST_OS_INIT).update(PROVISION);
  for (const v of VARIANTS) h.update(`${v.name} ${v.objects} ${v.tamper?.toString() ?? ""}\n`);
  for (const f of [
    "sysroot.tar",
    "bad/deploy-c2.ostree.cfs.flipped",
    "bad/c2.commitmeta.corrupt-signature",
    "bad/c2.commitmeta.signed-by-other",
    "bad/c2.commitmeta.truncated",
  ])
    h.update(readFileSync(join(OSTREE, f)));
  h.update(`${statSync("/bin/busybox").size} ${kernel.release}`);
  const dir = join(CACHE, "vm/prepare-root", h.digest("hex").slice(0, 24));
  if (existsSync(join(dir, ".complete"))) return { dir };

  const base = extracted("ostree/sysroot.tar");
  const tmp = join(work, "disks");
  mkdirSync(tmp, { recursive: true });
  for (const v of VARIANTS) {
    const tree = join(work, "trees", v.name);
    mkdirSync(join(work, "trees"), { recursive: true });
    execFileSync("cp", ["-a", base, tree]);
    v.tamper?.(tree);
    mkdirSync(join(tree, "sealroot-test"));
    copyFileSync("/bin/busybox", join(tree, "sealroot-test/busybox"));
    chmodSync(join(tree, "sealroot-test/busybox"), 0o755);
    writeFileSync(join(tree, "sealroot-test/init"), TEST_OS_INIT, { mode: 0o755 });
    makeExt4Disk(join(tmp, `${v.name}.img`), { tree, sizeMiB: 64, label: DISK_LABEL });
  }
  const boot = await bootVm({
    kernel: kernel.vmlinuz,
    initrd: toolsInitrd,
    disks: VARIANTS.map((v) => ({ path: join(tmp, `${v.name}.img`) })),
    append: "sealroot.vm-script=provision",
    memMiB: 2048,
    timeoutMs: 300_000,
    serialLog: join(LOGS, "provision.log"),
  });
  if (boot.status !== 0)
    throw new Error(
      `Cannot provision the disks: exit ${String(boot.status)}, see ${join(LOGS, "provision.log")}`,
    );
  const parent = join(CACHE, "vm/prepare-root");
  mkdirSync(parent, { recursive: true });
  // one recipe at a time: older provisioned sets (120 MB each) go
  for (const old of readdirSync(parent)) rmSync(join(parent, old), { recursive: true, force: true });
  renameSync(tmp, dir);
  writeFileSync(join(dir, ".complete"), JSON.stringify(boot.markers));
  return { dir, boot };
}

/** PID-1 boots: guest uptime when sealroot started, when prepare-root ended, when the new root's init ran. */
function initTimings(r: VmResult): string {
  const ev = sealrootEvents(r.serial);
  const at = (phase: string) => ev.find((e) => e.phase === phase);
  const prep = at("prepare-root");
  if (!at("api-mounts")) return "";
  const done =
    prep && typeof prep.ms === "number"
      ? `, prepare-root done ${String(prep.uptime)} s (it took ${prep.ms.toFixed(0)} ms)`
      : "";
  const newRoot = r.markers.t_newroot ? `, new root's init ${r.markers.t_newroot} s` : "";
  return `; guest uptime: sealroot up ${String(at("api-mounts")?.uptime)} s${done}${newRoot}`;
}

describe.skipIf(available !== true || !existsSync(BIN))(
  `VM prepare-root and PID-1 init (${available === true ? (existsSync(BIN) ? "qemu" : `no ${BIN}`) : available})`,
  () => {
    let work: string;
    let kernel: Kernel;
    let diskDir: string;
    let provision: Record<string, string>;
    let batch: VmResult;
    const boots: Record<string, VmResult> = {};
    let reads: string[];
    const disk = (name: string) => ({ path: join(diskDir, `${name}.img`), snapshot: true });

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), "sealroot-vm-prepare-"));
      kernel = fetchKernel();
      const modules = { dir: kernel.modulesDir, names: kernel.modules };
      const key = join(OSTREE, "keys/ed25519.pub");
      const tools = buildInitramfs({
        init: initScript(
          ". \"/etc/vm/$(sed -n 's/.*sealroot.vm-script=\\([a-z]*\\).*/\\1/p' /proc/cmdline).sh\"",
        ),
        binaries: [{ src: BIN, dest: "/usr/bin/sealroot" }],
        libsOf: [ffiRsAddon()],
        modules,
        files: [
          { dest: "/etc/ostree/initramfs-root-binding.key", src: key },
          { dest: "/etc/vm/signed.conf", content: SIGNED_CONF },
          { dest: "/etc/vm/none.conf", content: "" },
          { dest: "/etc/vm/provision.sh", content: PROVISION },
          { dest: "/etc/vm/batch.sh", content: BATCH },
        ],
      });
      const signed = buildSealrootInitramfs({ bin: BIN, modules, keys: [{ src: key }], config: SIGNED_CONF });
      const unconfigured = buildSealrootInitramfs({ bin: BIN, modules, keys: [{ src: key }] });
      console.log(
        `initramfs: tools ${tools.bytes} B, sealroot signed ${signed.bytes} B, unconfigured ${unconfigured.bytes} B`,
      );

      const p = await provisionedDisks(kernel, tools.path, work);
      diskDir = p.dir;
      provision = JSON.parse(readFileSync(join(diskDir, ".complete"), "utf8")) as Record<string, string>;
      if (p.boot) console.log(`VM provision: ${formatTimings(p.boot.timings)}`);
      reads = expectedReads(extracted("ostree/sysroot.tar"));

      const boot = async (name: string, initrd: string, disks: ReturnType<typeof disk>[], append: string) => {
        const r = await bootVm({
          kernel: kernel.vmlinuz,
          initrd,
          disks,
          append,
          memMiB: 2048,
          timeoutMs: 240_000,
          serialLog: join(LOGS, `${name}.log`),
        });
        console.log(`VM ${name}: ${formatTimings(r.timings)}${initTimings(r)}`);
        return r;
      };
      batch = await boot(
        "batch",
        tools.path,
        VARIANTS.map((v) => disk(v.name)),
        "sealroot.vm-script=batch",
      );
      boots.signed = await boot(
        "init-signed",
        signed.path,
        [disk("good")],
        `root=UUID=${DISK_UUID} rw ostree=${DEP0} init=${OS_INIT}`,
      );
      boots.digest = await boot(
        "init-digest",
        unconfigured.path,
        [disk("good")],
        `root=LABEL=${DISK_LABEL} rw ostree=${DEP0} ot-composefs=digest=${C2_DIGEST} init=${OS_INIT}`,
      );
      boots.refused = await boot(
        "init-refused",
        signed.path,
        [disk("objects-noverity")],
        `root=/dev/vda rw ostree=${DEP0} init=${OS_INIT}`,
      );
      boots.noroot = await boot(
        "init-noroot",
        signed.path,
        [disk("good")],
        `root=LABEL=absent rd.sealroot.root-timeout=1 rw ostree=${DEP0}`,
      );
    }, 1_500_000);

    afterAll(() => {
      const ok = batch?.status === 0 && boots.signed?.markers.exit === "0";
      if (work) rmSync(work, { recursive: true, force: true });
      if (!ok) console.log(`VM prepare-root: serial logs in ${LOGS}`);
    });

    it("provisions fs-verity in the VM: every object (images only on objects-noverity), the kernel's digest of each deployment-0 image", () => {
      const objects = provision.prov_good?.split(" ")[0];
      expect(objects).toBe("objects=48"); // every regular .file object of the bare repo (symlinks are not files)
      expect(provision).toMatchObject({
        prov_good: `${objects} dep0=sha256:${C2_DIGEST}`,
        prov_cfs_flipped: `${objects} dep0=sha256:${FLIPPED_DIGEST}`,
        prov_sig_corrupt: `${objects} dep0=sha256:${C2_DIGEST}`,
        prov_sig_other: `${objects} dep0=sha256:${C2_DIGEST}`,
        prov_sig_truncated: `${objects} dep0=sha256:${C2_DIGEST}`,
        prov_cfs_missing: `${objects} dep0=none`,
        prov_objects_noverity: `objects=0 dep0=sha256:${C2_DIGEST}`,
        noverity_object: expect.stringMatching(
          /^rc=1 sealroot: Cannot measure fs-verity of "\/mnt\/objects-noverity\/ostree\/repo\/objects\/[0-9a-f]{2}\/[0-9a-f]{62}\.file": ENODATA, expected a file with fs-verity enabled \(sealroot enable-verity\)$/,
        ),
      });
    });

    it("runs the batch of prepare-root cases to the end", () => {
      expect(batch.timedOut, batch.serial).toBe(false);
      expect(batch.status, batch.serial).toBe(0);
    });

    const image = (commit: string) => `"/sysroot/ostree/deploy/refos/deploy/${commit}.0/.ostree.cfs"`;
    const signedBy = "signed ostree.composefs.digest.v0 (keys /etc/ostree/initramfs-root-binding.key)";
    const notSigned = `Cannot verify commit ${C2} with the keys in "/etc/ostree/initramfs-root-binding.key"`;
    it.each<[string, string]>([
      [
        "cfs_flipped",
        `(image): Cannot verify composefs image ${image(C2)}: fs-verity digest ${FLIPPED_DIGEST}, expected ${C2_DIGEST} (${signedBy})`,
      ],
      [
        "sig_corrupt",
        `(signature): ${notSigned}: none of 1 signature verifies with the trusted key, expected an ed25519 signature by one of them`,
      ],
      [
        "sig_other",
        `(signature): ${notSigned}: none of 1 signature verifies with the trusted key, expected an ed25519 signature by one of them`,
      ],
      [
        "sig_truncated",
        `(signature): ${notSigned}: no ostree.sign.ed25519 signatures in the commit's detached metadata, expected an ed25519 signature by one of them`,
      ],
      [
        "signed_digest_wrong",
        `(image): Cannot verify composefs image ${image(C1)}: fs-verity digest ${C1_IMAGE_DIGEST}, expected ${C1_DIGEST} (${signedBy})`,
      ],
      [
        "cfs_missing",
        `(image): Cannot find composefs image ${image(C2)}: no such file, composefs is required`,
      ],
      [
        "objects_noverity",
        `(image): Cannot read "/run/sealroot/staging/usr/bin/hello": EIO (through the composefs overlay with verity=require on Linux ${KERNEL_RELEASE()}), expected every backing object with fs-verity enabled and matching the image (kernel with CONFIG_FS_VERITY; Linux 7.0.x needs the overlayfs fix for bootc#2174)`,
      ],
      [
        "karg_digest_wrong",
        `(image): Cannot verify composefs image ${image(C2)}: fs-verity digest ${C2_DIGEST}, expected ${WRONG_DIGEST} (karg ot-composefs=digest=${WRONG_DIGEST})`,
      ],
    ])("%s: refused with exit 1 and its one-line reason, nothing left mounted or in /run", (name, reason) => {
      expect(batch.markers[`case_${name}`]).toBe("rc=1 mounts=0 run=");
      expect(batch.markers[`reason_${name}`]).toBe(`sealroot: prepare-root refused ${reason}`);
    });

    it("boots the good disk in the same harness (the control): exit 0, /sysroot the composefs overlay", () => {
      expect(batch.markers.case_good_signed).toMatch(/^rc=0 mounts=[1-9]\d* run=.*ostree-booted/);
      expect(batch.markers.reason_good_signed).toBe("");
      expect(batch.markers.good_root).toMatch(/^composefs \/sysroot overlay ro,.*verity=require/);
    });

    describe.each([
      ["signed", "prepare-root.conf enabled = signed, root=UUID="],
      ["digest", "ot-composefs=digest=, no config, root=LABEL="],
    ])("PID 1, %s (%s)", (mode) => {
      const r = () => boots[mode] as VmResult;
      it("switches root into the OS init, which runs as PID 1", () => {
        expect(r().timedOut, r().serial).toBe(false);
        expect(r().markers.newroot_pid, r().serial).toBe("1");
        expect(r().markers.exit).toBe("0");
      });
      it("mounts / as the composefs overlay with verity=require over the repo objects, /etc /var /sysroot from the disk", () => {
        const mounts = r()
          .markerList.filter((m) => m.key === "mount")
          .map((m) => m.value);
        expect(mounts.find((m) => m.split(" ")[1] === "/")).toMatch(
          /^composefs \/ overlay ro,relatime,lowerdir\+=\/run\/ostree\/\.private\/cfsroot-lower,datadir\+=\/sysroot\/ostree\/repo\/objects,redirect_dir=on,metacopy=on,verity=require 0 0$/,
        );
        const others = mounts
          .filter((m) => m.startsWith("/dev/vda"))
          .map((m) => m.split(" ").slice(1, 3).join(" "));
        expect(others.sort()).toEqual([
          "/etc ext4",
          "/sysroot ext4",
          "/sysroot/ostree/deploy/refos/var ext4",
          "/var ext4",
        ]);
      });
      it("reads every file of the deployment with the bytes of the signed tree", () => {
        const got = r()
          .markerList.filter((m) => m.key === "read")
          .map((m) => m.value);
        expect(r().markerList.filter((m) => m.key === "readerr")).toEqual([]);
        expect(got.length).toBe(43);
        expect(got).toEqual(reads);
      });
      it("logs each init phase as an event, with the kernel uptime when sealroot started", () => {
        const phases = sealrootEvents(r().serial).map((e) => `${String(e.phase)}:${String(e.ok)}`);
        expect(phases.slice(0, 5)).toEqual([
          "api-mounts:true",
          "cmdline:true",
          "modules:true",
          "root-device:true",
          "mount-root:true",
        ]);
        expect(phases.slice(-2)).toEqual(["prepare-root:true", "switch-root:true"]);
        expect(phases).not.toContain("boot:false");
      });
    });

    it("PID 1 refuses objects without fs-verity: the reason on the console and in the kernel log, then power-off", () => {
      const r = boots.refused as VmResult;
      expect(r.timedOut, r.serial).toBe(false);
      expect(r.panicked, r.serial).toBe(false);
      expect(r.markers.newroot_pid).toBeUndefined();
      const line = `sealroot: prepare-root refused (image): Cannot read "/run/sealroot/staging/usr/bin/hello": EIO (through the composefs overlay with verity=require on Linux ${KERNEL_RELEASE()}), expected every backing object with fs-verity enabled and matching the image (kernel with CONFIG_FS_VERITY; Linux 7.0.x needs the overlayfs fix for bootc#2174)`;
      // stderr, the JSON events on stdout and the kernel's printing of the /dev/kmsg record share the
      // serial port: the kernel's record can land inside another line, so it is found anywhere
      const kmsg = /\[ *\d+\.\d+\] /;
      const stderr = r.serial
        .split("\n")
        .filter((l) => l.startsWith("sealroot: prepare-root refused") && !kmsg.test(l));
      expect(stderr, r.serial).toEqual([line]);
      const records = r.serial.match(/\[ *\d+\.\d+\] sealroot: prepare-root refused[^\n]*/g) ?? [];
      expect(records.map((l) => l.replace(kmsg, ""))).toEqual([line]);
      expect(r.serial).toMatch(/reboot: Power down/);
    });

    it("PID 1 gives up on a root device that never appears, says which, and powers off", () => {
      const r = boots.noroot as VmResult;
      expect(r.timedOut, r.serial).toBe(false);
      expect(r.panicked, r.serial).toBe(false);
      expect(r.serial).toContain(
        'sealroot: Cannot find the root device "root=LABEL=absent": not present after 1 s (block devices seen: /dev/vda), expected a block device matching it (rd.sealroot.root-timeout= to wait longer; modules for its controller)\n',
      );
      expect(r.serial).toMatch(/reboot: Power down/);
    });
  },
);
