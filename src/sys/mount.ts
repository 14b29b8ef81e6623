// Mounting a composefs image the way libcomposefs 1.0.8 `lcfs_mount_fd` does, over the injected `Sys`:
// the image's EROFS from an fd the caller already opened and measured (no re-open by path between check
// and mount), attached on a staging directory, an overlayfs with the EROFS as lower layer and the object
// directories as data-only layers, then the EROFS staging mount detached lazily (the overlay keeps it
// alive). Which kernel path is taken is decided by ./kernel-compat.ts; this module performs the calls.

import { FormatError, q, SysError, UsageError } from "../base/errors.ts";
import { notRegularFile } from "../base/fs.ts";
import { Reader } from "../formats/bytes.ts";
import {
  CFS_HEADER,
  CFS_HEADER_SIZE,
  LCFS_EROFS_FLAGS_HAS_ACL,
  LCFS_EROFS_MAGIC,
} from "../formats/erofs/layout.ts";
import { sysError } from "./errno.ts";
import { AT_FDCWD, MNT_DETACH, MS_RDONLY, O_CLOEXEC, O_NOFOLLOW, O_NONBLOCK, O_RDONLY } from "./ffi/libc.ts";
import {
  FSMOUNT_CLOEXEC,
  FSOPEN_CLOEXEC,
  MOUNT_ATTR_RDONLY,
  MOVE_MOUNT_F_EMPTY_PATH,
} from "./ffi/syscalls.ts";
import {
  type CompatForce,
  type ErofsSource,
  escapeOverlayPath,
  type FallbackTaken,
  legacyLowerdir,
  type MountApi,
  type OverlayLayers,
  withFallback,
} from "./kernel-compat.ts";
import type { FsConfigOp, Sys } from "./types.ts";

/** The overlay's mount source, as ostree-prepare-root and libcomposefs set it (mountinfo shows it). */
export const COMPOSEFS_SOURCE = "composefs";

/** One fsconfig(2) command as text (`key`, `key=value`, `key=fd N`, `create`), for messages and logs. */
export function describeFsConfigOp(op: FsConfigOp): string {
  switch (op.kind) {
    case "flag":
      return op.key;
    case "string":
      return `${op.key}=${op.value}`;
    case "fd":
      return `${op.key}=fd ${op.fd}`;
    case "create":
      return "create";
  }
}

export interface ComposefsMountOptions {
  /** The image, opened with openImage() (O_RDONLY|O_CLOEXEC); the caller measured its digest on this fd. */
  imageFd: number;
  /** For messages and the loop device's file name only; never re-opened. */
  imagePath: string;
  /** Where the overlay (the new root) is mounted. */
  target: string;
  /** Data-only layers holding the backing files (ostree: `<sysroot>/ostree/repo/objects`). At least one. */
  objectDirs: string[];
  /** An existing empty directory where the EROFS is attached while the overlay is built (ostree:
   * `/run/ostree/.private/cfsroot-lower`); it is empty again afterwards. */
  imageMountDir: string;
  /** overlayfs `verity=require`: every backing file must carry the fs-verity digest the image names. */
  requireVerity: boolean;
  /** Writable layers for a transient root; both or neither. */
  upperdir?: string;
  workdir?: string;
  /** Mount the overlay read-only; default true without an upperdir, false with one. */
  readonly?: boolean;
  /** Overlay mount source; default "composefs". */
  source?: string;
  /** Force a kernel path (see kernel-compat.ts); absent = try the modern one, fall back on its errno. */
  force?: CompatForce;
}

/** What was done, for the structured log and for tests. */
export interface ComposefsMountResult {
  erofs: { api: MountApi; source: ErofsSource; device: string; options: string[] };
  overlay: { api: MountApi; layers: OverlayLayers; options: string[] };
  fallbacks: FallbackTaken[];
}

/**
 * Opens the image the one time it is used: measure on this fd, then mount from it. The last component is
 * not followed (O_NOFOLLOW), a FIFO cannot block the open (O_NONBLOCK; no effect on a regular file's
 * reads), and the fd itself must be a regular file (fstat).
 */
export function openImage(sys: Sys, path: string): number {
  let fd: number;
  try {
    fd = sys.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    if (e instanceof SysError && e.errno === "ELOOP") throw notRegularFile(IMAGE, path, "symlink");
    throw e;
  }
  try {
    const st = sys.fstat(fd, path);
    if (st.kind !== "file") throw notRegularFile(IMAGE, path, st.kind);
  } catch (e) {
    sys.close(fd);
    throw e;
  }
  return fd;
}

const IMAGE = "composefs image";

/** The composefs header's flags, checking the magic (libcomposefs refuses other files with EINVAL). */
export function readComposefsHeader(sys: Sys, fd: number, path: string): { flags: number } {
  const bytes = sys.pread(fd, CFS_HEADER_SIZE, 0);
  if (bytes.length < CFS_HEADER_SIZE)
    throw new FormatError(
      `Cannot mount composefs image ${q(path)}: ${bytes.length} bytes, expected a ${CFS_HEADER_SIZE}-byte composefs header`,
      { path },
    );
  const r = new Reader(bytes, "composefs header");
  const magic = r.seek(CFS_HEADER.magic).u32le("magic");
  if (magic !== LCFS_EROFS_MAGIC)
    throw new FormatError(
      `Cannot mount composefs image ${q(path)}: magic ${hex32(magic)}, expected ${hex32(LCFS_EROFS_MAGIC)}`,
      { path },
    );
  return { flags: r.seek(CFS_HEADER.flags).u32le("flags") };
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/** Mounts the composefs image open on `opts.imageFd` at `opts.target`. */
export function mountComposefs(sys: Sys, opts: ComposefsMountOptions): ComposefsMountResult {
  if (opts.objectDirs.length === 0)
    throw new UsageError(
      `Cannot mount composefs image ${q(opts.imagePath)}: no object directory, expected at least one`,
    );
  if ((opts.upperdir === undefined) !== (opts.workdir === undefined))
    throw new UsageError(
      `Cannot mount composefs image ${q(opts.imagePath)}: upperdir and workdir must be given together`,
    );
  const force = opts.force ?? {};
  const fallbacks: FallbackTaken[] = [];
  const { flags } = readComposefsHeader(sys, opts.imageFd, opts.imagePath);
  const noacl = (flags & LCFS_EROFS_FLAGS_HAS_ACL) === 0;

  let erofs: ComposefsMountResult["erofs"];
  let overlay: ComposefsMountResult["overlay"];
  try {
    erofs = mountErofs(sys, opts, noacl, force, fallbacks);
    overlay = mountOverlay(sys, opts, force, fallbacks);
  } catch (e) {
    // the EROFS may be attached (the failure came after move_mount); never leave it on the staging dir
    detachImageMountBestEffort(sys, opts.imageMountDir);
    throw e;
  }
  sys.umount2(opts.imageMountDir, MNT_DETACH);
  return { erofs, overlay, fallbacks };
}

function detachImageMountBestEffort(sys: Sys, dir: string): void {
  try {
    sys.umount2(dir, MNT_DETACH);
  } catch {
    // EINVAL when nothing was attached there; otherwise the error being thrown is the mount failure
    // itself, and a staging mount left behind goes away with the namespace or initramfs
  }
}

// ---- EROFS ----

function mountErofs(
  sys: Sys,
  opts: ComposefsMountOptions,
  noacl: boolean,
  force: CompatForce,
  fallbacks: FallbackTaken[],
): ComposefsMountResult["erofs"] {
  const options = noacl ? ["ro", "noacl"] : ["ro"];
  const withSource = (api: MountApi, mountAt: (device: string) => void) =>
    withFallback<ComposefsMountResult["erofs"]>(
      "erofsSource",
      force.erofsSource,
      () => {
        const device = `/proc/self/fd/${opts.imageFd}`;
        mountAt(device);
        return { api, source: "file", device, options };
      },
      () => {
        const loop = sys.loopAttach(opts.imageFd, opts.imagePath);
        try {
          mountAt(loop.device);
        } finally {
          // autoclear: the device goes away with the last mount of it
          sys.close(loop.fd);
        }
        return { api, source: "loop", device: loop.device, options };
      },
      fallbacks,
    );
  return withFallback(
    "mountApi",
    force.mountApi,
    () => withSource("new", (device) => erofsNewApi(sys, device, opts.imageMountDir, noacl)),
    () =>
      withSource("legacy", (device) =>
        sys.mount(device, opts.imageMountDir, "erofs", MS_RDONLY, noacl ? "noacl" : null),
      ),
    fallbacks,
  );
}

function erofsNewApi(sys: Sys, device: string, dir: string, noacl: boolean): void {
  const ops: FsConfigOp[] = [
    { kind: "string", key: "source", value: device },
    { kind: "flag", key: "ro" },
    ...(noacl ? [{ kind: "flag", key: "noacl" } as const] : []),
    { kind: "create" },
  ];
  attachNewApi(sys, "erofs", ops, MOUNT_ATTR_RDONLY, dir);
}

/** fsopen → (check) → fsconfig… → fsmount → move_mount onto `target`, closing both fds whatever happens. */
function attachNewApi(
  sys: Sys,
  fsname: string,
  ops: FsConfigOp[],
  attrFlags: number,
  target: string,
  check: (fsfd: number) => void = () => {},
): void {
  const fsfd = sys.fsopen(fsname, FSOPEN_CLOEXEC);
  try {
    check(fsfd);
    for (const op of ops) sys.fsconfig(fsfd, op);
    const mfd = sys.fsmount(fsfd, FSMOUNT_CLOEXEC, attrFlags);
    try {
      sys.moveMount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
    } finally {
      sys.close(mfd);
    }
  } finally {
    sys.close(fsfd);
  }
}

// ---- overlayfs ----

/** The overlay options in the order libcomposefs gives them; `layers` picks the layer syntax. */
export function overlayOptions(opts: ComposefsMountOptions, layers: OverlayLayers): [string, string][] {
  const o: [string, string][] = [
    ["metacopy", "on"],
    ["redirect_dir", "on"],
  ];
  if (opts.requireVerity) o.push(["verity", "require"]);
  if (layers === "append") {
    o.push(["lowerdir+", opts.imageMountDir]);
    for (const d of opts.objectDirs) o.push(["datadir+", d]);
  } else {
    o.push(["lowerdir", legacyLowerdir(opts.imageMountDir, opts.objectDirs)]);
  }
  if (opts.upperdir !== undefined && opts.workdir !== undefined) {
    o.push(["upperdir", opts.upperdir], ["workdir", opts.workdir]);
  }
  return o;
}

function mountOverlay(
  sys: Sys,
  opts: ComposefsMountOptions,
  force: CompatForce,
  fallbacks: FallbackTaken[],
): ComposefsMountResult["overlay"] {
  const readonly = opts.readonly ?? opts.upperdir === undefined;
  const source = opts.source ?? COMPOSEFS_SOURCE;
  const withLayers = (api: MountApi, mountWith: (o: [string, string][]) => void) =>
    withFallback<ComposefsMountResult["overlay"]>(
      "overlayLayers",
      force.overlayLayers,
      () => {
        const o = overlayOptions(opts, "append");
        mountWith(o);
        return { api, layers: "append", options: o.map(([k, v]) => `${k}=${v}`) };
      },
      () => {
        const o = overlayOptions(opts, "legacy");
        mountWith(o);
        return { api, layers: "legacy", options: o.map(([k, v]) => `${k}=${v}`) };
      },
      fallbacks,
    );
  return withFallback(
    "mountApi",
    force.mountApi,
    () =>
      withLayers("new", (o) => {
        const ops: FsConfigOp[] = [
          { kind: "string", key: "source", value: source },
          ...o.map(([key, value]) => ({ kind: "string", key, value }) as const),
          { kind: "create" },
        ];
        attachOverlayNewApi(sys, ops, readonly ? MOUNT_ATTR_RDONLY : 0, opts.target);
      }),
    () =>
      withLayers("legacy", (o) => {
        // mount(2) takes one string: values other than the pre-escaped legacy lowerdir are escaped here
        const data = o.map(([k, v]) => `${k}=${k === "lowerdir" ? v : escapeOverlayPath(v)}`).join(",");
        sys.mount(source, opts.target, "overlay", readonly ? MS_RDONLY : 0, data);
      }),
    fallbacks,
  );
}

/** Before Linux 6.5 overlayfs did not parse options through fsconfig and accepted any key; libcomposefs
 * probes with an unknown key and treats acceptance as "no new mount API" (see kernel-compat.ts). */
function attachOverlayNewApi(sys: Sys, ops: FsConfigOp[], attrFlags: number, target: string): void {
  attachNewApi(sys, "overlay", ops, attrFlags, target, (fsfd) => {
    try {
      sys.fsconfig(fsfd, { kind: "string", key: "sealroot-probe-unsupported", value: "1" });
    } catch (e) {
      // the expected outcome (EINVAL): this kernel's overlayfs validates fsconfig keys
      if (e instanceof SysError) return;
      throw e;
    }
    throw overlayIgnoresOptions(target);
  });
}

function overlayIgnoresOptions(target: string): SysError {
  // ENOSYS so that kernel-compat's mountApi fallback applies, as libcomposefs returns -ENOSYS here
  return sysError("configure overlay for", target, "ENOSYS", {
    detail: "overlayfs accepted an unknown fsconfig key",
    expected: "overlayfs parsing options through the new mount API (Linux 6.5)",
  });
}

/** What probeRead() reads: one fs-verity block, which is enough for overlayfs to open the backing object
 * (where it checks the object's verity digest against the image) and for fs-verity to verify a page. */
const PROBE_BYTES = 4096;

/**
 * Reads the start of one file through a freshly mounted composefs root. With `verity=require`, overlayfs
 * accepts the mount even when verification cannot work (kernel without fs-verity, objects without
 * verity, the Linux 7.0 regression of bootc#2174) and then fails every read with EIO; reading one file
 * before switching root turns that into one clear refusal instead of a system that dies after switch-root.
 */
export function probeRead(sys: Sys, root: string, rel: string): void {
  const path = `${root}/${rel}`;
  try {
    const fd = sys.open(path, O_RDONLY | O_CLOEXEC);
    try {
      sys.pread(fd, PROBE_BYTES, 0);
    } finally {
      sys.close(fd);
    }
  } catch (e) {
    if (e instanceof SysError && e.errno === "EIO")
      throw sysError("read", path, "EIO", {
        detail: `through the composefs overlay with verity=require on Linux ${sys.kernelRelease()}`,
        expected:
          "every backing object with fs-verity enabled and matching the image (kernel with CONFIG_FS_VERITY; Linux 7.0.x needs the overlayfs fix for bootc#2174)",
      });
    throw e;
  }
}
