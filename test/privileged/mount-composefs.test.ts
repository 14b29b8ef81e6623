// mountComposefs() on the real kernel, as root, each scenario in its own private mount namespace
// (`unshare -m --propagation private`, so the host mount table is never touched) running
// test/privileged/run-mount.ts under Bun. Deployment 0 of the golden sysroot (commit 2's .ostree.cfs over
// ostree/repo/objects) must give the same tree as the deployment directory, through every kernel path:
// new mount API or mount(2), file-backed EROFS or loop, `lowerdir+=`/`datadir+=` or `lowerdir=A::B`.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { CompatForce } from "../../src/sys/kernel-compat.ts";
import { extracted, ROOT } from "../helpers/fixtures.ts";
import { C2, C2_DIGEST } from "../helpers/golden.ts";
import type { Report, Spec } from "./run-mount.ts";
import { type Entry, walk } from "./tree-walk.ts";

const BUN = join(ROOT, "node_modules/.bin/bun");
const DEPLOY_C2 = `ostree/deploy/refos/deploy/${C2}.0`;

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root";
  if (spawnSync("unshare", ["--version"]).status !== 0) return "no unshare";
  const fss = readFileSync("/proc/filesystems", "utf8");
  for (const fs of ["overlay", "erofs"])
    if (!new RegExp(`\\b${fs}\\n`).test(fss)) return `no ${fs} in /proc/filesystems`;
  if (!existsSync("/dev/loop-control")) return "no /dev/loop-control";
  return undefined;
}
const why = unavailable();

/** Runs one scenario in a fresh private mount namespace. */
function inNamespace(spec: Spec): Report {
  const r = spawnSync(
    "unshare",
    ["-m", "--propagation", "private", BUN, join(ROOT, "test/privileged/run-mount.ts"), JSON.stringify(spec)],
    { encoding: "utf8", maxBuffer: 1 << 26 },
  );
  if (r.status !== 0) throw new Error(`run-mount exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

function magicOf(path: string): string {
  return `0x${readFileSync(path).readUInt32LE(0).toString(16).padStart(8, "0")}`;
}

/** Every combination of the three kernel paths, forced. */
const FORCED: CompatForce[] = [];
for (const mountApi of ["new", "legacy"] as const)
  for (const erofsSource of ["file", "loop"] as const)
    for (const overlayLayers of ["append", "legacy"] as const)
      FORCED.push({ mountApi, erofsSource, overlayLayers });

describe.skipIf(why !== undefined)(
  `mountComposefs on the host kernel${why ? ` (skipped: ${why})` : ""}`,
  () => {
    let sysroot: string;
    let image: string;
    let objects: string;
    let expected: Entry[];

    beforeAll(() => {
      sysroot = extracted("ostree/sysroot.tar");
      image = join(sysroot, DEPLOY_C2, ".ostree.cfs");
      objects = join(sysroot, "ostree/repo/objects");
      // The deployment dir holds the same tree as hard links to the objects, plus the image itself and a
      // populated /etc (the image's /etc is empty: ostree merges /etc at deploy time).
      expected = walk(join(sysroot, DEPLOY_C2), (rel) => rel === ".ostree.cfs" || rel.startsWith("etc/"));
    });

    function layersOption(r: Report, layers: "append" | "legacy"): string {
      return layers === "append"
        ? `lowerdir+=${r.imageMountDir},datadir+=${objects}`
        : `lowerdir=${r.imageMountDir}::${objects}`;
    }

    it.each(
      FORCED.map((f) => [`${f.mountApi} API, ${f.erofsSource}-backed EROFS, ${f.overlayLayers} layers`, f]),
    )("mounts deployment 0 with %s and reads back the deployment's exact tree", (_name, force) => {
      const r = inNamespace({ image, objects: [objects], force, walk: true });
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      const res = r.result;
      expect(res?.erofs.api).toBe(force.mountApi);
      expect(res?.erofs.source).toBe(force.erofsSource);
      expect(res?.erofs.options).toEqual(["ro", "noacl"]);
      expect(res?.overlay).toEqual({
        api: force.mountApi,
        layers: force.overlayLayers,
        options: [
          "metacopy=on",
          "redirect_dir=on",
          ...(force.overlayLayers === "append"
            ? [`lowerdir+=${r.imageMountDir}`, `datadir+=${objects}`]
            : [`lowerdir=${r.imageMountDir}::${objects}`]),
        ],
      });
      expect(res?.fallbacks).toEqual([]);
      // exactly one mount on the target, with exactly these options; the staging EROFS is detached
      expect(r.targetMounts).toEqual([
        {
          mountOptions: "ro,relatime",
          fstype: "overlay",
          source: "composefs",
          superOptions: `ro,${layersOption(r, force.overlayLayers ?? "append")},redirect_dir=on,metacopy=on`,
        },
      ]);
      expect(r.stagingMounts).toEqual([]);
      if (force.erofsSource === "loop") {
        expect(res?.erofs.device).toMatch(/^\/dev\/loop\d+$/);
        expect(r.loop).toEqual({
          "loop/backing_file": image,
          "loop/autoclear": "1",
          "loop/dio": "1",
          ro: "1",
        });
      } else {
        expect(res?.erofs.device).toMatch(/^\/proc\/self\/fd\/\d+$/);
        expect(r.loop).toBeUndefined();
      }
      expect(r.tree).toEqual(expected);
    });

    it("mounts with the modern paths when nothing is forced on this kernel (6.12+)", () => {
      const r = inNamespace({ image, objects: [objects] });
      expect(r.error).toBeUndefined();
      expect(r.result?.erofs.api).toBe("new");
      expect(r.result?.erofs.source).toBe("file");
      expect(r.result?.overlay.layers).toBe("append");
      expect(r.result?.fallbacks).toEqual([]);
    });

    it("gives the files' modes, owners, xattrs and symlinks as committed", () => {
      const byPath = new Map(expected.map((e) => [e.path, e]));
      const pick = (p: string) => {
        const e = byPath.get(p);
        return e && { mode: e.mode, uid: e.uid, gid: e.gid, target: e.target, xattrs: e.xattrs };
      };
      expect(pick("usr/bin/setuid-tool")).toMatchObject({ mode: "4755", uid: 0, gid: 0 });
      expect(pick("usr/share/owned/by-4242")).toMatchObject({ mode: "0600", uid: 4242, gid: 4343 });
      expect(pick("usr/share/owned/sticky-exec")).toMatchObject({ mode: "1755" });
      expect(pick("usr/share/data/block-4095.bin")).toMatchObject({ mode: "0600" });
      expect(pick("usr/share/xattrs/file-xattr")?.xattrs).toEqual({
        "security.ref-test": "7365630076616c", // "sec\0val"
        "user.ref.bin": "000102ff",
        "user.ref.text": "68656c6c6f",
      });
      expect(pick("usr/share/data/abs-link")?.target).toBe("/usr/lib/os-release");
      expect(pick("usr/share/data/rel-link")?.target).toBe("small.txt");
      expect(pick("bin")?.target).toBe("usr/bin");
      // and the mounted tree equals this listing (checked per path above); here, one direct read
      const r = inNamespace({
        image,
        objects: [objects],
        read: ["usr/share/owned/by-4242", "usr/lib/os-release"],
      });
      expect(r.reads).toEqual({
        "usr/share/owned/by-4242": byPath.get("usr/share/owned/by-4242")?.sha256,
        "usr/lib/os-release": byPath.get("usr/lib/os-release")?.sha256,
      });
    });

    it("leaves no loop device behind: autoclear frees it when the namespace's mounts go", () => {
      const r = inNamespace({ image, objects: [objects], force: { erofsSource: "loop" } });
      expect(r.error).toBeUndefined();
      const dev = (r.result?.erofs.device ?? "").replace("/dev/", "");
      const backing = join("/sys/block", dev, "loop/backing_file");
      // the namespace is gone; the kernel clears an autoclear device when its last user closes it
      expect(existsSync(backing) ? readFileSync(backing, "utf8").trim() : "").not.toBe(image);
    });

    it("refuses to measure the image on this kernel without fs-verity, naming what is missing", () => {
      const r = inNamespace({ image, objects: [objects], requireVerity: true, expectedDigest: C2_DIGEST });
      expect(r.ok).toBe(false);
      expect(r.result).toBeUndefined();
      expect(r.error).toEqual({
        name: "SysError",
        code: "ESYS",
        errno: "EOPNOTSUPP",
        message: `Cannot measure fs-verity of "${image}": EOPNOTSUPP, expected a kernel with fs-verity (CONFIG_FS_VERITY)`,
      });
    });

    it("mounts with verity=require, then the read probe fails closed with EIO and a hint", () => {
      const r = inNamespace({
        image,
        objects: [objects],
        requireVerity: true,
        probe: "usr/share/data/small.txt",
      });
      expect(r.targetMounts?.[0]?.superOptions).toBe(
        `ro,lowerdir+=${r.imageMountDir},datadir+=${objects},redirect_dir=on,metacopy=on,verity=require`,
      );
      const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
      expect(r.error).toEqual({
        name: "SysError",
        code: "ESYS",
        errno: "EIO",
        message:
          `Cannot read "${r.target}/usr/share/data/small.txt": EIO (through the composefs overlay with verity=require on Linux ${release}), ` +
          "expected every backing object with fs-verity enabled and matching the image (kernel with CONFIG_FS_VERITY; Linux 7.0.x needs the overlayfs fix for bootc#2174)",
      });
    });

    it("refuses a file that is not a composefs image before mounting anything", () => {
      const notImage = join(sysroot, DEPLOY_C2, "usr/lib/os-release");
      const r = inNamespace({ image: notImage, objects: [objects] });
      expect(r.error).toEqual({
        name: "FormatError",
        code: "EFORMAT",
        message: `Cannot mount composefs image "${notImage}": magic ${magicOf(notImage)}, expected 0xd078629a`,
      });
      expect(r.targetMounts).toBeUndefined();
    });
  },
);
