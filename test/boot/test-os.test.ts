// The test OS and its disks (qemu/build-test-os.ts), built from a cold cache in CI: both builds' commits
// verify with their own key only, `sealroot verify` predicts a boot of each deployment with its build's key
// and a refusal with the other's, the secret keys are gone, the provisioning boot measured every fs-verity
// digest the boot matrix relies on, each tamper variant has its property, every disk's physical root has
// the top-level directories an installer makes, and one boot of the good disk through `sealroot init`
// reaches the OS's pass marker with every file read.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEALROOT_BIN } from "../../initrd/build.ts";
import { buildSealrootInitramfs } from "../../initrd/sealroot.ts";
import { fetchKernel } from "../../qemu/lib/kernel.ts";
import { bootVm, formatTimings, qemuAvailable, type VmResult } from "../../qemu/lib/qemu.ts";
import { ROOT } from "../helpers/fixtures.ts";
import {
  bootArgs,
  build,
  newest,
  type OsReport,
  parseOsReport,
  RELEASE_FILE,
  type TestOsBuild,
  type TestOsManifest,
  testOs,
  variant,
} from "./lib/test-os.ts";

const available = qemuAvailable();
const BIN = SEALROOT_BIN;
const haveOstree = spawnSync("ostree", ["--version"]).status === 0;

function run(cmd: string, ...args: string[]) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(available !== true || !existsSync(BIN) || !haveOstree)(
  `test OS (${available === true ? (haveOstree ? "qemu, ostree" : "no ostree CLI") : available})`,
  () => {
    let os: TestOsManifest;
    let work: string;
    let b1: TestOsBuild;
    let b2: TestOsBuild;
    /** A root with only the key file prepare-root reads, as the initramfs has it. */
    const keyRoot = (b: TestOsBuild): string => {
      const dir = join(work, `keyroot-${b.version}`);
      mkdirSync(join(dir, "etc/ostree"), { recursive: true });
      execFileSync("cp", [b.keyPub, join(dir, "etc/ostree/initramfs-root-binding.key")]);
      return dir;
    };
    const verify = (sysroot: string, cmdline: string | undefined, b: TestOsBuild) =>
      run(
        BIN,
        "verify",
        "--sysroot",
        sysroot,
        "--root",
        keyRoot(b),
        "--config",
        join(work, "signed.conf"),
        ...(cmdline === undefined ? [] : ["--cmdline", cmdline]),
      );

    beforeAll(async () => {
      const t = performance.now();
      os = await testOs();
      console.log(
        `test OS ${os.cached ? "reused" : "built"} in ${((performance.now() - t) / 1000).toFixed(1)} s: ${os.dir}` +
          (os.cached ? "" : ` ${JSON.stringify(os.timings)}; provisioning ${os.provision.timings}`),
      );
      work = mkdtempSync(join(tmpdir(), "sealroot-test-os-"));
      writeFileSync(join(work, "signed.conf"), os.signedConf);
      b1 = build(os, 1);
      b2 = build(os, 2);
    }, 1_200_000);

    afterAll(() => {
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it("keeps each build's public key and no secret key", () => {
      expect(readdirSync(join(os.dir, "keys")).sort()).toEqual([
        "build-1.pub",
        "build-2.pub",
        "stranger.pub",
      ]);
      expect(new Set([b1.keyHex, b2.keyHex]).size).toBe(2);
    });

    it("commits version 1 then 2 on the ref, each sealed (a new commit) with its signed image digest", () => {
      expect(os.builds.map((b) => b.version)).toEqual([1, 2]);
      for (const b of os.builds) {
        expect(b.commit).not.toBe(b.unsealedCommit);
        const show = run(BIN, "show", "--repo", os.repo, "--commit", b.commit);
        expect(show.code, show.stderr).toBe(0);
        expect(show.stdout).toContain(b.digest);
      }
      const ref = run("ostree", `--repo=${os.repo}`, "rev-parse", os.ref);
      expect(ref.stdout.trim()).toBe(b2.commit);
      const parent = run("ostree", `--repo=${os.repo}`, "rev-parse", `${b2.commit}^`);
      expect(parent.stdout.trim()).toBe(b1.commit);
    });

    it.each([
      ["/usr/lib/os-release", (v: number) => expect.stringContaining(`VERSION_ID=${v}\n`)],
      ["/usr/lib/ostree/prepare-root.conf", () => "[composefs]\nenabled = signed\n"],
      [RELEASE_FILE, (v: number) => `sealroot test OS release ${v}\n`],
    ])("the committed tree has %s", (path, expected) => {
      for (const b of os.builds) {
        const r = run("ostree", `--repo=${os.repo}`, "cat", b.commit, path);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toEqual(expected(b.version));
      }
    });

    it("the committed tree has the ostree layout: /usr holds everything, /bin and /sbin link into it", () => {
      const ls = run("ostree", `--repo=${os.repo}`, "ls", b2.commit, "/");
      const entries = ls.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(/\s+/).slice(4).join(" "));
      expect(entries).toEqual(
        expect.arrayContaining([
          "/bin -> usr/bin",
          "/sbin -> usr/sbin",
          "/lib -> usr/lib",
          "/ostree -> sysroot/ostree",
          "/usr",
          // mount points of the booted root
          "/dev",
          "/proc",
          "/run",
          "/sys",
          "/tmp",
        ]),
      );
      expect(entries).not.toContain("/etc");
      const init = run("ostree", `--repo=${os.repo}`, "cat", b2.commit, "/usr/sbin/init");
      expect(init.stdout.startsWith("#!/bin/sh\n")).toBe(true);
      const kernel = run(
        "ostree",
        `--repo=${os.repo}`,
        "ls",
        b2.commit,
        `/usr/lib/modules/${os.kernelRelease}`,
      );
      expect(kernel.stdout).toMatch(/vmlinuz\n/);
      expect(kernel.stdout).toMatch(/initramfs\.img\n/);
    });

    it.each([
      [1, 1, 0],
      [1, 2, 1],
      [2, 2, 0],
      [2, 1, 1],
    ])("verify-commit: build %i's commit with build %i's key exits %i", (commitOf, keyOf, code) => {
      const r = run(
        BIN,
        "verify-commit",
        "--repo",
        os.repo,
        "--commit",
        build(os, commitOf).commit,
        "--keys",
        build(os, keyOf).keyPub,
      );
      expect(r.code, r.stderr).toBe(code);
      if (code === 0)
        expect(r.stdout).toBe(
          `ed25519: Signature verified successfully with key '${build(os, keyOf).keyHex}'\n`,
        );
      else
        expect(r.stderr).toBe(
          `sealroot: Cannot verify commit ${build(os, commitOf).commit}: none of 1 signature verifies with the trusted key\n`,
        );
    });

    it("the physical root has an installer's top-level directories (dracut's shell /init needs proc, sys, dev)", () => {
      for (const v of os.variants)
        expect(readdirSync(v.tree).sort(), v.name).toEqual([
          "boot",
          "dev",
          "home",
          "ostree",
          "proc",
          "root",
          "run",
          "sys",
          "tmp",
        ]);
    });

    it("deploys both builds into one sysroot: deployment 0 = version 2, 1 = version 1, each with ostree= and its image", () => {
      const good = variant(os, "good");
      expect(good.deployments.map((d) => [d.index, d.version, d.commit, d.ostree, d.path])).toEqual([
        [0, 2, b2.commit, b2.ostree, b2.deployment],
        [1, 1, b1.commit, b1.ostree, b1.deployment],
      ]);
      for (const b of os.builds)
        expect(b.ostree).toMatch(/^\/ostree\/boot\.[01]\/sealroot-test\/[0-9a-f]{64}\/0$/);
    });

    it.each([1, 2])("sealroot verify: deployment of build %i would boot with its own key", (v) => {
      const b = build(os, v);
      const r = verify(os.sysroot, bootArgs(b), b);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(
        `would boot deployment ${join(os.sysroot, b.deployment)} on composefs, verity=require, signed by ${b.keyHex} (/etc/ostree/initramfs-root-binding.key in the root "${keyRoot(b)}"), image digest ${b.digest}\n`,
      );
    });

    it.each([
      [1, 2],
      [2, 1],
    ])("sealroot verify: deployment of build %i is refused with build %i's key", (v, k) => {
      const r = verify(os.sysroot, bootArgs(build(os, v)), build(os, k));
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `sealroot: refused (signature): Cannot verify commit ${build(os, v).commit} with the keys in "/etc/ostree/initramfs-root-binding.key": none of 1 signature verifies with the trusted key, expected an ed25519 signature by one of them\n`,
      );
    });

    it("the provisioning boot enabled fs-verity on every object of the good disk and measured both images = signed digests", () => {
      const good = variant(os, "good");
      expect(good.objects.total).toBeGreaterThan(10);
      expect(good.objects.verity).toBe(good.objects.total);
      expect(good.deployments.map((d) => d.image)).toEqual([`sha256:${b2.digest}`, `sha256:${b1.digest}`]);
      expect(os.provision.markers.exit).toBe("0");
    });

    // Kernel-measured state of the newer deployment's image per variant, and the object count with verity.
    const flippedOrWrong = (os: TestOsManifest) => expect.not.stringMatching(`^sha256:${newest(os).digest}$`);
    it.each<[string, "all" | "none", (os: TestOsManifest) => unknown]>([
      ["good", "all", (os) => `sha256:${newest(os).digest}`],
      ["cfs-flipped", "all", flippedOrWrong],
      ["sig-corrupt", "all", (os) => `sha256:${newest(os).digest}`],
      ["sig-other", "all", (os) => `sha256:${newest(os).digest}`],
      ["sig-truncated", "all", (os) => `sha256:${newest(os).digest}`],
      ["digest-wrong", "all", (os) => `sha256:${newest(os).digest}`],
      ["cfs-missing", "all", () => "absent"],
      ["cfs-noverity", "all", () => "noverity"],
      ["objects-noverity", "none", (os) => `sha256:${newest(os).digest}`],
      ["object-swapped", "all", (os) => `sha256:${newest(os).digest}`],
    ])(
      "provisioned %s: objects with fs-verity %s, default deployment's image as measured",
      (name, objects, image) => {
        const v = variant(os, name);
        expect(v.objects.verity).toBe(objects === "all" ? v.objects.total : 0);
        expect(v.deployments[0]?.image).toEqual(image(os));
        expect(v.deployments.at(-1)?.image).toBe(`sha256:${b1.digest}`); // the older build is untouched
        expect(existsSync(v.disk)).toBe(true);
        expect(v.description.length).toBeGreaterThan(10);
      },
    );

    it("digest-wrong: the default deployment is a third commit of the newer tree, signed by the newer key, claiming another digest", () => {
      const v = variant(os, "digest-wrong");
      const bad = v.deployments[0];
      expect(v.deployments.map((d) => d.commit)).toEqual([v.tamper.commit, b2.commit, b1.commit]);
      const ok = run(
        BIN,
        "verify-commit",
        "--repo",
        os.repo,
        "--commit",
        bad?.commit ?? "",
        "--keys",
        b2.keyPub,
      );
      expect(ok.code, ok.stderr).toBe(0);
      const show = run(BIN, "show", "--repo", os.repo, "--commit", bad?.commit ?? "");
      const wrong = `${b2.digest.slice(0, 62)}${(Number.parseInt(b2.digest.slice(62), 16) ^ 0xff).toString(16).padStart(2, "0")}`;
      expect(show.stdout).toContain(wrong);
    });

    // What the offline predictor says of each variant's default entry with the newer build's key.
    it.each<[string, number, (os: TestOsManifest) => string]>([
      ["good", 0, () => "would boot deployment "],
      ["cfs-flipped", 1, () => "sealroot: refused (image): Cannot verify composefs image "],
      [
        "sig-corrupt",
        1,
        (os) =>
          `sealroot: refused (signature): Cannot verify commit ${newest(os).commit} with the keys in "/etc/ostree/initramfs-root-binding.key": none of 1 signature verifies with the trusted key, expected an ed25519 signature by one of them\n`,
      ],
      [
        "sig-other",
        1,
        (os) =>
          `sealroot: refused (signature): Cannot verify commit ${newest(os).commit} with the keys in "/etc/ostree/initramfs-root-binding.key": none of 1 signature verifies with the trusted key, expected an ed25519 signature by one of them\n`,
      ],
      [
        "sig-truncated",
        1,
        (os) =>
          `sealroot: refused (signature): Cannot verify commit ${newest(os).commit} with the keys in "/etc/ostree/initramfs-root-binding.key": no ostree.sign.ed25519 signatures in the commit's detached metadata, expected an ed25519 signature by one of them\n`,
      ],
      ["digest-wrong", 1, () => "sealroot: refused (image): Cannot verify composefs image "],
      ["cfs-missing", 1, () => "sealroot: refused (image): Cannot find composefs image "],
      // fs-verity and object contents are the kernel's to check: offline these look bootable
      ["cfs-noverity", 0, () => "would boot deployment "],
      ["objects-noverity", 0, () => "would boot deployment "],
      ["object-swapped", 0, () => "would boot deployment "],
    ])("sealroot verify on the %s tree (default entry, newer key) exits %i", (name, code, start) => {
      const r = verify(variant(os, name).tree, undefined, b2);
      expect(r.code, r.stderr).toBe(code);
      expect((code === 0 ? r.stdout : r.stderr).startsWith(start(os)), r.stdout + r.stderr).toBe(true);
      if (code === 1) expect(variant(os, name).expect).toBe("refuse");
    });

    it("a second build reuses the cache (< 10 s, same directory)", () => {
      const t = performance.now();
      const out = execFileSync(join(ROOT, "node_modules/.bin/bun"), [join(ROOT, "qemu/build-test-os.ts")], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      expect(out.trim()).toBe(os.dir);
      expect(performance.now() - t).toBeLessThan(10_000);
    });

    describe("one boot of the good disk through sealroot init (the newer build's key, signed)", () => {
      let r: VmResult;
      let report: OsReport;
      beforeAll(async () => {
        const kernel = fetchKernel();
        const initrd = buildSealrootInitramfs({
          bin: BIN,
          modules: { dir: kernel.modulesDir, names: kernel.modules },
          keys: [{ src: b2.keyPub }],
          config: os.signedConf,
        });
        r = await bootVm({
          kernel: kernel.vmlinuz,
          initrd: initrd.path,
          disks: [{ path: variant(os, "good").disk, snapshot: true }],
          append: bootArgs(b2),
          memMiB: 2048,
          timeoutMs: 240_000,
          serialLog: join(work, "good.log"),
        });
        report = parseOsReport(r.serial);
        console.log(`test OS boot: ${formatTimings(r.timings)}, kernel→OS init ${report.tOs} s`);
      }, 300_000);

      it("reaches the OS init, which reads every file of version 2 and passes", () => {
        expect(report.pass, r.serial.slice(-3000)).toBe(true);
        expect(report.version).toBe("2");
        expect(report.readErrors).toEqual([]);
        expect(report.files).toBe(b2.files.length);
        expect(report.content).toBe(b2.content);
        expect(report.values.pid).toBe("1");
      });

      it("sees / as the composefs overlay with verity=require, /run/ostree-booted and the decision record", () => {
        expect(report.root).toMatch(
          /^composefs \/ overlay ro,.*datadir\+=\/sysroot\/ostree\/repo\/objects,.*verity=require/,
        );
        expect(report.rootVerity).toBe("require");
        expect(report.ostreeBooted).toBe(true);
        expect(report.decision).toBe(true);
        expect(report.decisionJson).toMatchObject({ decision: { verdict: "boot" } });
      });
    });
  },
);
