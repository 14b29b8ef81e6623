// The real Sys's mount primitives on the host kernel, in a private mount namespace (run-sys.ts under
// Bun): mount(2) and umount2, fsopen/fsconfig/fsmount/move_mount with mount_setattr, open_tree clones,
// pivot_root + chroot, exact directory modes, and error messages that carry the kernel's own words.

import { spawnSync } from "node:child_process";
import { rmdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/fixtures.ts";

const why =
  process.getuid?.() !== 0
    ? "not root"
    : spawnSync("unshare", ["--version"]).status !== 0
      ? "no unshare"
      : undefined;

describe.skipIf(why !== undefined)(`real Sys mount primitives${why ? ` (skipped: ${why})` : ""}`, () => {
  let o: Record<string, unknown>;
  beforeAll(() => {
    const r = spawnSync(
      "unshare",
      [
        "-m",
        "--propagation",
        "private",
        join(ROOT, "node_modules/.bin/bun"),
        join(ROOT, "test/privileged/run-sys.ts"),
      ],
      { encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(`run-sys exited ${r.status}: ${r.stderr}`);
    o = JSON.parse(r.stdout) as Record<string, unknown>;
    // the namespace took its mounts along; only the empty mount point is left on the host
    rmdirSync(o.base as string);
  });

  it("mounts with mount(2) and creates directories with the exact mode asked (0000), whatever the umask", () => {
    expect(o.tmpfs).toBe("rw,relatime tmpfs sealroot-test rw,mode=755");
    expect(o.privateMode).toBe("0");
    expect(o.statOfLink).toBe("dir");
  });

  it("mounts through fsopen/fsconfig/fsmount, makes it read-only with mount_setattr, attaches it with move_mount", () => {
    expect(o.newApi).toBe("ro,relatime tmpfs sealroot-new rw,mode=700");
    expect(o.writeToReadOnly).toMatch(/^Error: EROFS: read-only file system/);
  });

  it("puts the kernel's fs-context log in the error message", () => {
    expect(o.unknownOption).toBe(
      "Cannot set overlay option \"no-such-option=1\": EINVAL (kernel: e overlay: Unknown parameter 'no-such-option')",
    );
    expect(o.fsconfigError).toBe('Cannot set overlay option "lowerdir+=/nonexistent/lower": ENOENT');
    expect(o.unknownFs).toBe('Cannot open a filesystem context for "no-such-fs": ENODEV');
  });

  it("binds with open_tree(OPEN_TREE_CLONE) + move_mount and detaches with umount2(MNT_DETACH)", () => {
    expect(o.bindSeesMarker).toBe("bound");
    expect(o.umountedBind).toBe("none");
    expect(o.umountNotMounted).toBe(`Cannot unmount "${o.base}/bind": EINVAL`);
  });

  it("pivots into a new root, chroots there and detaches the old root", () => {
    expect(o.afterPivot).toBe(true);
    expect(o.oldRootGone).toBe(true);
    expect(o.pivotBadPath).toBe('Cannot pivot root (old root to "/also-not") to "/does-not-exist": ENOENT');
  });
});
