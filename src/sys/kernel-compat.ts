// The one place that knows which kernel features a composefs mount needs and what to do without them.
// Like libcomposefs, sealroot tries the modern way first and falls back only on the specific errno a
// kernel without the feature returns (never by comparing version numbers: distribution kernels backport),
// and each fallback can be forced either way so tests cover every path on any kernel. Pure: the callers
// in src/sys/mount.ts perform the calls.

import { q, SysError, UsageError } from "../base/errors.ts";

/** A fallback sealroot knows: when it applies and the kernel version that makes it unnecessary. */
interface Fallback {
  /** errno names (as in SysError.errno) of the preferred path that mean "this kernel lacks it". */
  errnos: readonly string[];
  preferred: string;
  fallback: string;
  why: string;
}

export const FALLBACKS = {
  /** The new mount API (fsopen/fsconfig/fsmount/move_mount) exists since Linux 5.2; overlayfs parses its
   * options through it only since 6.5 (before, fsconfig accepts any key, so sealroot probes with an unknown
   * key and treats acceptance as ENOSYS). Older kernels: mount(2) with an option string. */
  mountApi: {
    errnos: ["ENOSYS"],
    preferred: "new",
    fallback: "legacy",
    why: "fsopen() needs Linux 5.2 (overlayfs options through fsconfig: 6.5)",
  },
  /** EROFS mounts a regular file (source /proc/self/fd/N) since Linux 6.12 with
   * CONFIG_EROFS_FS_BACKED_BY_FILE; earlier kernels answer ENOTBLK and need a loop device. */
  erofsSource: {
    errnos: ["ENOTBLK"],
    preferred: "file",
    fallback: "loop",
    why: "file-backed EROFS needs Linux 6.12 (CONFIG_EROFS_FS_BACKED_BY_FILE)",
  },
  /** overlayfs `lowerdir+=`/`datadir+=` (appending one layer per option, no escaping) since Linux 6.7
   * (lowerdir+) and 6.8 (datadir+); earlier kernels answer EINVAL and get the single string
   * `lowerdir=IMAGE::OBJECTS` (data-only `::` layers: Linux 6.5, the floor for composefs). */
  overlayLayers: {
    errnos: ["EINVAL"],
    preferred: "append",
    fallback: "legacy",
    why: "overlayfs lowerdir+=/datadir+= need Linux 6.8",
  },
} as const satisfies Record<string, Fallback>;

export type MountApi = "new" | "legacy";
export type ErofsSource = "file" | "loop";
export type OverlayLayers = "append" | "legacy";

/** Forced choices (tests, or an operator working around a kernel bug); absent = try preferred, then fall back. */
export interface CompatForce {
  mountApi?: MountApi;
  erofsSource?: ErofsSource;
  overlayLayers?: OverlayLayers;
}

export type FallbackName = keyof typeof FALLBACKS;

/** A fallback that was taken, for the structured log. */
export interface FallbackTaken {
  name: FallbackName;
  why: string;
  errno: string;
}

/**
 * Runs `preferred`, or `fallback` when it fails with an errno that means the kernel lacks the feature.
 * `forced` names the one path to run (no fallback). A fallback that fails too throws its own SysError with
 * the first attempt in the message, so one line tells both stories.
 */
export function withFallback<T>(
  name: FallbackName,
  forced: string | undefined,
  preferred: () => T,
  fallback: () => T,
  taken: FallbackTaken[],
): T {
  const f: Fallback = FALLBACKS[name];
  if (forced === f.preferred) return preferred();
  if (forced === f.fallback) return fallback();
  if (forced !== undefined)
    throw new UsageError(
      `Cannot force ${name} ${q(forced)}: an unknown choice, expected ${f.preferred} or ${f.fallback}`,
    );
  let first: SysError;
  try {
    return preferred();
  } catch (e) {
    if (!(e instanceof SysError) || !f.errnos.includes(e.errno)) throw e;
    first = e;
  }
  taken.push({ name, why: f.why, errno: first.errno });
  try {
    return fallback();
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    throw new SysError(
      e.errno,
      `${e.message} (fallback ${f.preferred}→${f.fallback} because ${f.why}; first attempt: ${first.message})`,
      e.data,
      { cause: first },
    );
  }
}

/** The legacy overlay layer string `IMAGE::OBJ1::OBJ2` (data-only layers after `::`), escaping `\`, `,`
 * and `:` with a backslash as overlayfs's option parser expects. */
export function legacyLowerdir(imageMount: string, objectDirs: readonly string[]): string {
  return [imageMount, ...objectDirs].map(escapeOverlayPath).join("::");
}

export function escapeOverlayPath(p: string): string {
  return p.replace(/[\\,:]/g, (c) => `\\${c}`);
}
