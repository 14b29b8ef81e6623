// `sealroot prepare-root` (the compiled binary) on the golden sysroot, as root, each scenario in its own
// private mount namespace with a fresh tmpfs on /run and a fresh `cp -a` of the sysroot bound on SYSROOT.
// A boot must give the reference's mount tree (logs/prepare-root-karg.log: composefs overlay ro, etc rw,
// sysroot ro, the stateroot var rw, var rw), the reference's /run records, and commit 2's files through
// SYSROOT; a refusal must name its stage and reason in one stderr line and leave SYSROOT and /run as they were.

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/formats/bytes.ts";
import { decodeVardict, print } from "../../src/formats/gvariant.ts";
import { OSTREE } from "../helpers/fixtures.ts";
import {
  BASE_CMDLINE,
  BIN,
  COMMIT2,
  COMMITMETA_C2,
  type Copy,
  cli,
  DEPLOY_C2,
  freshCopy,
  inNamespace,
  physMount,
  type RelMount,
  relTree,
  removeCopies,
  TARGET,
  unavailable,
} from "./prepare-root-env.ts";
import type { MountLine, Report, Scenario } from "./run-prepare-root.ts";
import { type Entry, walk } from "./tree-walk.ts";

const why = unavailable();
const KEYS = join(OSTREE, "keys");
const PRIVATE_LOWER = "/run/ostree/.private/cfsroot-lower";

/** The first `od -A d -t x1 /run/ostree-booted` of the reference's composefs boot (80 bytes: keys 1–2). */
function referenceOstreeBootedHead(): Uint8Array {
  const log = readFileSync(join(OSTREE, "logs/prepare-root-karg.log"), "utf8").split("\n");
  const start = log.indexOf("+ od -A d -t x1 /run/ostree-booted");
  const bytes: number[] = [];
  for (const line of log.slice(start + 1)) {
    const m = /^(\d{7})((?: [0-9a-f]{2})+)$/.exec(line);
    if (!m) break;
    bytes.push(
      ...(m[2] as string)
        .trim()
        .split(" ")
        .map((h) => Number.parseInt(h, 16)),
    );
  }
  return new Uint8Array(bytes);
}

function u64le(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

interface Run {
  c: Copy;
  r: Report;
  tree: RelMount[];
  pm: MountLine;
}

function boot(c: Copy, scenario: Scenario, extra: { inspect?: string[]; walkUsr?: boolean } = {}): Run {
  const r = inNamespace({ copy: c.copy, phys: c.phys, target: TARGET, scenario, ...extra });
  const pm = physMount(r, c.phys);
  return { c, r, pm, tree: relTree(r.after.mounts, c.phys, pm.root) };
}

/** An ext4 bind of the copy (the physical root's file system) as the tree shows it. */
function ext4(run: Run, target: string, parent: string, root: string, ro: boolean): RelMount {
  return {
    target,
    parent,
    fstype: run.pm.fstype,
    source: run.pm.source,
    root,
    options: ro ? run.pm.options.replace(/^rw\b/, "ro") : run.pm.options,
    superOptions: run.pm.superOptions,
  };
}

const STATEROOT_VAR = "ostree/deploy/refos/var";

/** The reference's tree (logs/prepare-root-karg.log), with the layer options of `layers`. */
function composefsTree(run: Run, layers: "append" | "legacy"): RelMount[] {
  const lower =
    layers === "append"
      ? `lowerdir+=${PRIVATE_LOWER},datadir+=SYSROOT/ostree/repo/objects`
      : `lowerdir=${PRIVATE_LOWER}::SYSROOT/ostree/repo/objects`;
  return [
    {
      target: "",
      parent: run.pm.parent,
      fstype: "overlay",
      source: "composefs",
      root: "/",
      options: "ro,relatime",
      superOptions: `ro,${lower},redirect_dir=on,metacopy=on`,
    },
    ext4(run, "etc", "", `${DEPLOY_C2}/etc`, false),
    ext4(run, "sysroot", "", "", true),
    ext4(run, `sysroot/${STATEROOT_VAR}`, "sysroot", STATEROOT_VAR, false),
    ext4(run, "var", "", STATEROOT_VAR, false),
  ];
}

/** ostree's legacy bind mount: the deployment, /usr read-only, /sysroot, var; with readonly also /etc and
 * the stateroot's var, and /sysroot read-only. */
function bindTree(run: Run, readonly: boolean): RelMount[] {
  const t = [
    ext4(run, "", run.pm.parent, DEPLOY_C2, false),
    ...(readonly ? [ext4(run, "etc", "", `${DEPLOY_C2}/etc`, false)] : []),
    ext4(run, "sysroot", "", "", readonly),
    ...(readonly ? [ext4(run, `sysroot/${STATEROOT_VAR}`, "sysroot", STATEROOT_VAR, false)] : []),
    ext4(run, "usr", "", `${DEPLOY_C2}/usr`, true),
    ext4(run, "var", "", STATEROOT_VAR, false),
  ];
  return t;
}

/** /run after a boot: path, kind, mode (and a symlink's target). */
function runListing(r: Report): string[] {
  return r.after.run.map((e) => `${e.path} ${e.kind} ${e.mode}${e.target ? ` -> ${e.target}` : ""}`);
}

function expectUnchanged(r: Report): void {
  expect(r.after).toEqual(r.before);
}

function phasesLogged(stdout: string | undefined): string[] {
  return (stdout ?? "")
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { phase: string }).phase);
}

describe.skipIf(why !== undefined)(
  `sealroot prepare-root on the host kernel${why ? ` (skipped: ${why})` : ""}`,
  () => {
    let deployUsr: Entry[];

    beforeAll(() => {
      const c = freshCopy();
      deployUsr = walk(join(c.copy, DEPLOY_C2, "usr"));
    });
    afterAll(removeCopies);

    describe("composefs boot (unsigned)", () => {
      let run: Run;
      beforeAll(() => {
        run = boot(
          freshCopy(),
          { exec: cli(`${BASE_CMDLINE} ot-composefs=on`) },
          {
            walkUsr: true,
            inspect: [
              "usr/bin/setuid-tool",
              "usr/share/owned",
              "usr/share/xattrs/file-xattr",
              "usr/share/data/abs-link",
              "usr/share/data/rel-link",
              "usr/share/data/dangling",
              "bin",
              "lib",
              "ostree",
            ],
          },
        );
      });

      it("exits 0 and says nothing on stderr", () => {
        expect(run.r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
      });

      it("mounts the reference's tree on SYSROOT: overlay ro from composefs, etc rw, sysroot ro, var rw", () => {
        expect(run.tree).toEqual(composefsTree(run, "append"));
      });

      it("leaves nothing mounted under /run (the EROFS staging mount is detached)", () => {
        expect(run.r.after.mounts.filter((m) => m.target.startsWith("/run"))).toEqual(
          run.r.before.mounts.filter((m) => m.target.startsWith("/run")),
        );
      });

      it("reads commit 2's usr through SYSROOT exactly as the deployment directory holds it", () => {
        expect(run.r.usr).toEqual(deployUsr);
      });

      it("gives the reference's contents for the files its log hashes", () => {
        const sha = (p: string) => run.r.usr?.find((e) => e.path === p)?.sha256;
        // sha256sum lines of logs/prepare-root-karg.log
        expect(sha("share/data/small.txt")).toBe(
          "ce4952924197d964629317127f177f322a19f1cccd310eed70924662808c5c62",
        );
        expect(sha("share/data/two-level.bin")).toBe(
          "3a71ea956452150bb1bf2b9fe7b321caaf6c8278dff53675137119248f2a7a47",
        );
        expect(sha("bin/setuid-tool")).toBe(
          "31a7a4db46f757b617ab8bd6b1ca8d0473239705b46d238690dc32d1ba028002",
        );
      });

      it("keeps setuid, sticky and private modes, owners, xattrs and symlinks", () => {
        const e = new Map((run.r.entries ?? []).map((x) => [x.path, x]));
        const pick = (p: string) => {
          const x = e.get(p);
          return x && [x.kind, x.mode, `${x.uid}:${x.gid}`, x.size ?? x.target].join(" ");
        };
        expect(pick("usr/bin/setuid-tool")).toBe("file 4755 0:0 777");
        expect(pick("usr/share/owned")).toBe("dir 0750 0:1000 ");
        expect(pick("usr/share/owned/by-4242")).toBe("file 0600 4242:4343 19");
        expect(pick("usr/share/owned/by-1000")).toBe("file 0640 1000:1000 19");
        expect(pick("usr/share/owned/sticky-exec")).toBe("file 1755 0:0 10");
        expect(e.get("usr/share/xattrs/file-xattr")?.xattrs).toEqual({
          "security.ref-test": toHex(new TextEncoder().encode("sec\0val")),
          "user.ref.bin": "000102ff",
          "user.ref.text": toHex(new TextEncoder().encode("hello")),
        });
        expect(pick("usr/share/data/abs-link")).toBe("symlink 0777 0:0 /usr/lib/os-release");
        expect(pick("usr/share/data/rel-link")).toBe("symlink 0777 0:0 small.txt");
        expect(pick("usr/share/data/dangling")).toBe("symlink 0777 0:0 does/not/exist");
        expect(pick("bin")).toBe("symlink 0777 0:0 usr/bin");
        expect(pick("lib")).toBe("symlink 0777 0:0 usr/lib");
        expect(pick("ostree")).toBe("symlink 0777 0:0 sysroot/ostree");
      });

      it("writes /run/ostree-booted with the reference's bytes (keys 1–2 of the od dump) and keys 1,2,3,5,6,7", () => {
        const bytes = fromHex(run.r.ostreeBooted ?? "");
        const { dev, ino } = run.r.deployment;
        // the reference's head, with this deployment's (dev, ino) in place of the reference host's
        const expectedHead = referenceOstreeBootedHead();
        expect(expectedHead.length).toBe(80);
        expect(toHex(expectedHead.subarray(32, 40))).toBe("00fe000000000000");
        expectedHead.set(u64le(dev), 32);
        expectedHead.set(u64le(ino), 40);
        expect(toHex(bytes.subarray(0, 80))).toBe(toHex(expectedHead));
        const entries = decodeVardict(bytes);
        expect(entries.map(([k]) => k)).toEqual([
          "backing-root-device-inode",
          "root.transient",
          "root.transient-ro",
          "composefs",
          "composefs.verity",
          "sysroot-ro",
        ]);
        expect(print("a{sv}", entries)).toBe(
          `{'backing-root-device-inode': <(uint64 ${dev}, uint64 ${ino})>, 'root.transient': <false>, ` +
            "'root.transient-ro': <false>, 'composefs': <true>, 'composefs.verity': <false>, 'sysroot-ro': <true>}",
        );
        expect(bytes.length).toBe(194);
      });

      it("leaves /run as the reference does (ostree 0755, .private 0000) plus sealroot's decision record", () => {
        const dev = physMount(run.r, run.c.phys).dev;
        expect(runListing(run.r)).toEqual([
          ". dir 0755",
          "ostree dir 0755",
          "ostree/.private dir 0000",
          "ostree/.private/cfsroot-lower dir 0700",
          "ostree-booted file 0644",
          "sealroot dir 0755",
          "sealroot/decision.json file 0644",
          "systemd dir 0755",
          `systemd/volatile-root symlink 0777 -> /dev/block/${dev}`,
        ]);
        const d = run.r.decision as { decision: Record<string, unknown>; plan: { steps: string[] } };
        expect(d.decision).toMatchObject({
          verdict: "boot",
          useComposefs: true,
          verityRequired: false,
          deployment: { path: run.r.deployment.path, stateroot: "refos", commit: COMMIT2, serial: 0 },
        });
        expect(d.plan.steps).toEqual([
          "mkdir",
          "mkdir",
          "mkdir",
          "mkdir",
          "make-rprivate",
          "mkdir",
          "composefs",
          "symlink",
          "bind",
          "bind",
          "bind",
          "bind",
          "remount-ro",
          "measure",
          "write-ostree-booted",
          "write-decision",
          "move-into-place",
        ]);
      });
    });

    /** Every forced kernel path, alone and combined. */
    const FORCED: string[][] = [
      ["--force-loop"],
      ["--force-mount2"],
      ["--force-legacy-lowerdir"],
      ["--force-loop", "--force-mount2"],
      ["--force-loop", "--force-legacy-lowerdir"],
      ["--force-mount2", "--force-legacy-lowerdir"],
      ["--force-loop", "--force-mount2", "--force-legacy-lowerdir"],
    ];

    it.each(FORCED.map((f) => [f.join(" "), f]))("gives the same tree and files with %s", (_name, flags) => {
      const run = boot(
        freshCopy(),
        { exec: cli(`${BASE_CMDLINE} ot-composefs=on`, ...flags) },
        { walkUsr: true },
      );
      expect(run.r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
      const layers = flags.includes("--force-legacy-lowerdir") ? "legacy" : "append";
      expect(run.tree).toEqual(composefsTree(run, layers));
      expect(run.r.usr).toEqual(deployUsr);
      const composefsEvent = (run.r.outcome.stdout ?? "")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.phase === "composefs") as {
        erofs: { api: string; source: string };
        overlay: { api: string; layers: string };
      };
      const api = flags.includes("--force-mount2") ? "legacy" : "new";
      expect(composefsEvent.erofs).toMatchObject({
        api,
        source: flags.includes("--force-loop") ? "loop" : "file",
      });
      expect(composefsEvent.overlay).toMatchObject({ api, layers });
    });

    it("boots the same with ostree's own karg ostree.prepare-root.composefs=1", () => {
      const run = boot(freshCopy(), { exec: cli(`${BASE_CMDLINE} ostree.prepare-root.composefs=1`) });
      expect(run.r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
      expect(run.tree).toEqual(composefsTree(run, "append"));
    });

    it("works as `ostree-prepare-root SYSROOT CMDLINE` through a link named ostree-prepare-root", () => {
      const c = freshCopy();
      mkdirSync(join(c.dir, "bin"));
      const link = join(c.dir, "bin/ostree-prepare-root");
      symlinkSync(BIN, link);
      // the reference's own invocation (logs/prepare-root-karg.log)
      const run = boot(c, {
        exec: { program: link, args: ["SYSROOT", `${BASE_CMDLINE} ostree.prepare-root.composefs=1`] },
      });
      expect(run.r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
      expect(run.tree).toEqual(composefsTree(run, "append"));
      expect(decodeVardict(fromHex(run.r.ostreeBooted ?? "")).map(([k]) => k)).toContain("composefs");
    });

    it("boots the same as the initramfs runs it, `sealroot prepare-root SYSROOT` reading /proc/cmdline (the path without yargs)", () => {
      const run = boot(freshCopy(), {
        exec: { program: BIN, args: ["prepare-root", "SYSROOT"] },
        procCmdline: `${BASE_CMDLINE} ostree.prepare-root.composefs=1`,
      });
      expect(run.r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
      expect(run.tree).toEqual(composefsTree(run, "append"));
    });

    describe("the legacy bind mount", () => {
      it.each([
        ["ot-composefs=off", (c: Copy) => c],
        [
          "ot-composefs=maybe and no .ostree.cfs",
          (c: Copy) => {
            rmSync(join(c.copy, DEPLOY_C2, ".ostree.cfs"));
            return c;
          },
        ],
        ["ostree.prepare-root.composefs=0", (c: Copy) => c],
      ] as const)("%s: deployment bind, /usr read-only, /sysroot, var; keys 1,2,3,7", (name, prep) => {
        const karg = name.split(" ")[0] as string;
        const run = boot(prep(freshCopy()), { exec: cli(`${BASE_CMDLINE} ${karg}`) }, { walkUsr: true });
        expect(run.r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
        expect(run.tree).toEqual(bindTree(run, false));
        expect(run.r.usr).toEqual(deployUsr);
        const entries = decodeVardict(fromHex(run.r.ostreeBooted ?? ""));
        expect(print("a{sv}", entries)).toBe(
          `{'backing-root-device-inode': <(uint64 ${run.r.deployment.dev}, uint64 ${run.r.deployment.ino})>, ` +
            "'root.transient': <false>, 'root.transient-ro': <false>, 'sysroot-ro': <false>}",
        );
        expect(runListing(run.r)).toEqual([
          ". dir 0755",
          "ostree dir 0755",
          "ostree/.private dir 0000",
          "ostree-booted file 0644",
          "sealroot dir 0755",
          "sealroot/decision.json file 0644",
        ]);
      });

      it("with [sysroot] readonly=true: also /etc rw, /sysroot read-only and the stateroot's var writable", () => {
        const c = freshCopy();
        const conf = join(c.dir, "ro.conf");
        writeFileSync(conf, "[sysroot]\nreadonly=true\n");
        const run = boot(c, { exec: cli(`${BASE_CMDLINE} ot-composefs=off`, "--config", conf) });
        expect(run.r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
        expect(run.tree).toEqual(bindTree(run, true));
        const entries = decodeVardict(fromHex(run.r.ostreeBooted ?? ""));
        expect(entries.map(([k, v]) => `${k}=${print(v.type, v.value)}`).slice(1)).toEqual([
          "root.transient=false",
          "root.transient-ro=false",
          "sysroot-ro=true",
        ]);
      });
    });

    describe("refusals leave SYSROOT and /run unchanged", () => {
      const image = (c: Copy) => `${c.phys}/${DEPLOY_C2}/.ostree.cfs`;
      const noVerity = (c: Copy) =>
        `sealroot: prepare-root refused (image): Cannot measure fs-verity of "${image(c)}": EOPNOTSUPP, expected a kernel with fs-verity (CONFIG_FS_VERITY)\n`;

      it("ot-composefs=on without an image is refused at the image stage", () => {
        const c = freshCopy();
        rmSync(join(c.copy, DEPLOY_C2, ".ostree.cfs"));
        const run = boot(c, { exec: cli(`${BASE_CMDLINE} ot-composefs=on`) });
        expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
        expect(run.r.outcome.stderr).toBe(
          `sealroot: prepare-root refused (image): Cannot find composefs image "${image(c)}": no such file, composefs is required\n`,
        );
        expectUnchanged(run.r);
      });

      it("[composefs] enabled=verity on this kernel without fs-verity: the measurement fails, nothing mounted", () => {
        const c = freshCopy();
        const conf = join(c.dir, "verity.conf");
        writeFileSync(conf, "[composefs]\nenabled=verity\n");
        const run = boot(c, { exec: cli(BASE_CMDLINE, "--config", conf) });
        expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
        expect(run.r.outcome.stderr).toBe(noVerity(c));
        expectUnchanged(run.r);
      });

      /** A signed config whose keypath is a copy of `key` in the test's directory. */
      function signed(c: Copy, key: string): { conf: string; keypath: string } {
        const keypath = join(c.dir, "keys", "root-binding.key");
        mkdirSync(join(c.dir, "keys"));
        copyFileSync(join(KEYS, key), keypath);
        const conf = join(c.dir, "signed.conf");
        writeFileSync(conf, `[composefs]\nenabled=signed\nkeypath=${keypath}\n`);
        return { conf, keypath };
      }

      const notSigned = (keypath: string, why: string) =>
        `sealroot: prepare-root refused (signature): Cannot verify commit ${COMMIT2} with the keys in "${keypath}": ${why}, expected an ed25519 signature by one of them\n`;
      const NONE_VERIFIES = "none of 1 signature verifies with the trusted key";
      const NO_SIGNATURES = "no ostree.sign.ed25519 signatures in the commit's detached metadata";

      it.each([
        ["corrupt-signature", "ed25519.pub", NONE_VERIFIES],
        ["signed-by-other", "ed25519.pub", NONE_VERIFIES],
        ["truncated", "ed25519.pub", NO_SIGNATURES],
        ["(none: .commitmeta removed)", "ed25519.pub", `${NO_SIGNATURES} (no .commitmeta)`],
        ["(the good one)", "ed25519-other.pub", NONE_VERIFIES],
      ])(
        "signed, commitmeta %s, key %s: refused at the signature stage before any verity step",
        (bad, key, reason) => {
          const c = freshCopy();
          const { conf, keypath } = signed(c, key);
          const meta = join(c.copy, COMMITMETA_C2);
          if (bad === "(none: .commitmeta removed)") rmSync(meta);
          else if (!bad.startsWith("(")) copyFileSync(join(OSTREE, "bad", `c2.commitmeta.${bad}`), meta);
          const run = boot(c, { exec: cli(BASE_CMDLINE, "--config", conf) });
          expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
          expect(run.r.outcome.stderr).toBe(notSigned(keypath, reason));
          // the decision refused: no plan, no step (mkdir, composefs, …) ran
          expect(phasesLogged(run.r.outcome.stdout)).toEqual(["decide"]);
          expectUnchanged(run.r);
        },
      );

      // issue 11: a hostile physical root is refused before anything is mounted, and in under a second
      it("a FIFO as the repository config (read for the legacy readonly fallback) is refused, not waited on", () => {
        const c = freshCopy();
        const config = join(c.copy, "ostree/repo/config");
        rmSync(config);
        execFileSync("mkfifo", [config]);
        const t0 = performance.now();
        const run = boot(c, { exec: cli(`${BASE_CMDLINE} ot-composefs=off`) });
        expect(performance.now() - t0).toBeLessThan(30_000);
        expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
        expect(run.r.outcome.stderr).toBe(
          `sealroot: prepare-root refused (setup): Cannot read repository config "${c.phys}/ostree/repo/config": a FIFO, expected a regular file\n`,
        );
        expectUnchanged(run.r);
      });

      it.each([
        ["etc", "the deployment's /etc", `${DEPLOY_C2}/etc`],
        ["var", "the stateroot's /var", "ostree/deploy/refos/var"],
      ])(
        "%s -> / is refused at the target stage instead of binding the initramfs's root",
        (_n, role, rel) => {
          const c = freshCopy();
          rmSync(join(c.copy, rel), { recursive: true });
          symlinkSync("/", join(c.copy, rel));
          const run = boot(c, { exec: cli(`${BASE_CMDLINE} ot-composefs=on`) });
          expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
          expect(run.r.outcome.stderr).toBe(
            `sealroot: prepare-root refused (target): Cannot bind ${role} from "${c.phys}/${rel}": a symbolic link, expected a directory inside the physical root\n`,
          );
          expect(phasesLogged(run.r.outcome.stdout)).toEqual(["decide"]);
          expectUnchanged(run.r);
        },
      );

      it("a composefs image that is a FIFO is named as one and not opened", () => {
        const c = freshCopy();
        rmSync(join(c.copy, DEPLOY_C2, ".ostree.cfs"));
        execFileSync("mkfifo", [join(c.copy, DEPLOY_C2, ".ostree.cfs")]);
        const run = boot(c, { exec: cli(`${BASE_CMDLINE} ot-composefs=on`) });
        expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
        expect(run.r.outcome.stderr).toBe(
          `sealroot: prepare-root refused (image): Cannot read composefs image "${image(c)}": a FIFO, expected a regular file\n`,
        );
        expectUnchanged(run.r);
      });

      it("ot-signed= naming a key inside SYSROOT is refused at the keys stage", () => {
        const c = freshCopy();
        copyFileSync(join(KEYS, "ed25519.pub"), join(c.copy, "planted.pub"));
        const run = boot(c, { exec: cli(`${BASE_CMDLINE} ot-signed=${c.phys}/planted.pub`) });
        expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
        expect(run.r.outcome.stderr).toBe(
          `sealroot: prepare-root refused (keys): Cannot use public key file "${c.phys}/planted.pub": it resolves to "${c.phys}/planted.pub" inside the physical root "${c.phys}", which is what it is to verify, expected a key file in the initramfs\n`,
        );
        expectUnchanged(run.r);
      });

      it.each([
        ["the primary key and the good commitmeta", "ed25519.pub", undefined],
        ["the other key and a commitmeta signed by it", "ed25519-other.pub", "signed-by-other"],
      ])("signed, %s: the signature verifies, then the image cannot be measured here", (_n, key, bad) => {
        const c = freshCopy();
        const { conf } = signed(c, key);
        if (bad) copyFileSync(join(OSTREE, "bad", `c2.commitmeta.${bad}`), join(c.copy, COMMITMETA_C2));
        const run = boot(c, { exec: cli(BASE_CMDLINE, "--config", conf) });
        expect(run.r.outcome).toMatchObject({ ok: false, exit: 1 });
        expect(run.r.outcome.stderr).toBe(noVerity(c));
        expect(phasesLogged(run.r.outcome.stdout).slice(0, 2)).toEqual(["decide", "plan"]);
        expectUnchanged(run.r);
      });
    });
  },
);
