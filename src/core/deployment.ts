// Resolves the `ostree=` boot symlink to a deployment directory over the injected FsRead, one path
// component at a time (lstat/readlink), never leaving the sysroot: `..` above it, absolute links outside
// it and link loops are refused, and the result must be `ostree/deploy/<os>/deploy/<commit>.<serial>`.
// Pure: it names the repo, image and stateroot paths; it reads no object and trusts nothing it names.

import { IntegrityError, NotFoundError, q, UsageError } from "../base/errors.ts";
import { type FsRead, kindName } from "../base/fs.ts";
import { type Commit, decodeCommit, loosePath, validateCommit } from "../formats/ostree/objects.ts";
import type { OstreeRepo } from "../formats/ostree/repo.ts";

/** Linux's MAXSYMLINKS: the kernel gives ELOOP after this many links in one lookup. */
export const MAX_SYMLINK_HOPS = 40;

export interface Deployment {
  /** The sysroot as given (absolute, canonical). */
  sysroot: string;
  /** The `ostree=` value. */
  target: string;
  /** Absolute path of the deployment directory. */
  path: string;
  /** The same, relative to the sysroot: `ostree/deploy/<stateroot>/deploy/<commit>.<serial>`. */
  relPath: string;
  stateroot: string;
  /** 64 lowercase hex digits, from the directory name (not yet checked against the commit bytes). */
  commit: string;
  serial: number;
  /** The symbolic links followed, in order, as absolute paths with their targets. */
  links: { path: string; target: string }[];
  /** `<sysroot>/ostree/repo`. */
  repo: string;
  /** `<repo>/objects/<aa>/<rest>.commit` and `.commitmeta`. */
  commitObject: string;
  commitmetaObject: string;
  /** `<deployment>/.ostree.cfs`, the composefs image. */
  composefsImage: string;
  /** `<sysroot>/ostree/deploy/<stateroot>/var`, bound to /var. */
  varDir: string;
  /** `<deployment>/etc`. */
  etcDir: string;
}

type Refusal = "escape" | "loop" | "not-symlink" | "not-directory" | "layout" | "sysroot";

function refuse(
  target: string,
  observed: string,
  expected: string,
  reason: Refusal,
  data = {},
): IntegrityError {
  return new IntegrityError(`Cannot resolve ostree target ${q(target)}: ${observed}, expected ${expected}`, {
    target,
    reason,
    ...data,
  });
}

function components(p: string): string[] {
  return p.split("/").filter((c) => c.length > 0);
}

interface Pending {
  name: string;
  /** The last component of the `ostree=` value itself: ostree requires it to be a symlink. */
  bootLink: boolean;
}

/**
 * Follows `target` (the `ostree=` value, relative to `sysroot`) to its deployment. `sysroot` must be an
 * absolute path without symlinks (the caller realpaths it, as ostree does). Relative links resolve
 * against their directory; absolute links resolve from the real root, as ostree's realpath() does, and
 * must land inside the sysroot.
 */
export function resolveDeployment(fs: FsRead, sysroot: string, target: string): Deployment {
  const rootParts = components(sysroot);
  if (!sysroot.startsWith("/") || rootParts.some((c) => c === "." || c === "..")) {
    throw refuse(
      target,
      `sysroot ${q(sysroot)} is not a canonical absolute path`,
      "an absolute path",
      "sysroot",
    );
  }
  const root = rootParts.length === 0 ? "" : `/${rootParts.join("/")}`;
  const rootStat = fs.lstatIfExists(root || "/");
  if (!rootStat)
    throw new NotFoundError(`Cannot find sysroot ${q(root || "/")}: it does not exist, expected a directory`);
  if (rootStat.kind !== "dir") {
    throw refuse(target, `sysroot ${q(root || "/")} is ${kindName(rootStat.kind)}`, "a directory", "sysroot");
  }

  // ostree lstat()s "<sysroot>/<target>": a trailing "/", "." or ".." makes that a directory, not a link.
  const raw = target.split("/");
  const lastRaw = raw[raw.length - 1] ?? "";
  const bootLinkPath = `${root}/${components(target).join("/")}`;
  if (lastRaw === "" || lastRaw === "." || lastRaw === "..") {
    throw refuse(target, `${q(bootLinkPath)} does not name a symbolic link`, "a boot symlink", "not-symlink");
  }

  const targetParts = components(target);
  const pending: Pending[] = targetParts.map((name, i) => ({ name, bootLink: i === targetParts.length - 1 }));
  const resolved: string[] = [];
  const links: { path: string; target: string }[] = [];
  const here = () => `${root}/${resolved.join("/")}`;

  for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
    const { name, bootLink } = next;
    if (name === ".") continue;
    if (name === "..") {
      if (resolved.length === 0) {
        throw refuse(
          target,
          `".." leads above the sysroot ${q(root || "/")}`,
          "a path inside the sysroot",
          "escape",
        );
      }
      resolved.pop();
      continue;
    }
    const path = resolved.length === 0 ? `${root}/${name}` : `${here()}/${name}`;
    const st = fs.lstatIfExists(path);
    if (!st) {
      throw new NotFoundError(
        `Cannot resolve ostree target ${q(target)}: ${q(path)} does not exist, expected the boot symlink's chain to a deployment`,
        { target, path },
      );
    }
    if (bootLink && st.kind !== "symlink") {
      throw refuse(
        target,
        `${q(path)} is ${kindName(st.kind)}`,
        "a symbolic link (as ostree requires)",
        "not-symlink",
        { path },
      );
    }
    if (st.kind === "symlink") {
      if (links.length >= MAX_SYMLINK_HOPS) {
        throw refuse(
          target,
          `more than ${MAX_SYMLINK_HOPS} symbolic links (a loop?) at ${q(path)}`,
          "a finite chain",
          "loop",
          {
            path,
          },
        );
      }
      const link = fs.readlink(path);
      links.push({ path, target: link });
      if (link.length === 0)
        throw refuse(target, `${q(path)} is an empty symbolic link`, "a link target", "layout", { path });
      const parts = components(link);
      if (link.startsWith("/")) {
        if (parts.length < rootParts.length || rootParts.some((c, i) => parts[i] !== c)) {
          throw refuse(
            target,
            `${q(path)} is an absolute symbolic link to ${q(link)} outside the sysroot ${q(root || "/")}`,
            "a target inside the sysroot",
            "escape",
            { path, link },
          );
        }
        resolved.length = 0;
        pending.unshift(...parts.slice(rootParts.length).map((n) => ({ name: n, bootLink: false })));
      } else {
        pending.unshift(...parts.map((n) => ({ name: n, bootLink: false })));
      }
      continue;
    }
    if (st.kind !== "dir") {
      throw refuse(target, `${q(path)} is ${kindName(st.kind)}`, "a directory", "not-directory", { path });
    }
    resolved.push(name);
  }

  const relPath = resolved.join("/");
  const m = /^ostree\/deploy\/([^/]+)\/deploy\/([0-9a-f]{64})\.([0-9]+)$/.exec(relPath);
  if (!m) {
    throw refuse(
      target,
      `it resolves to ${q(here())}`,
      `${q(`${root}/ostree/deploy/<stateroot>/deploy/<64 hex commit>.<serial>`)}`,
      "layout",
      { resolved: here() },
    );
  }
  const [, stateroot, commit, serial] = m as unknown as [string, string, string, string];
  const path = here();
  const repo = `${root}/ostree/repo`;

  return {
    sysroot: root || "/",
    target,
    path,
    relPath,
    stateroot,
    commit,
    serial: Number.parseInt(serial, 10),
    links,
    repo,
    commitObject: `${repo}/objects/${loosePath(commit, "commit")}`,
    commitmetaObject: `${repo}/objects/${loosePath(commit, "commitmeta")}`,
    composefsImage: `${path}/.ostree.cfs`,
    varDir: `${root}/ostree/deploy/${stateroot}/var`,
    etcDir: `${path}/etc`,
  };
}

/**
 * Largest `.commit` read at boot. ostree allows 128 MiB of metadata, but a commit is a few KiB (an
 * rpm-ostree package list a few hundred): the bytes are read and hashed before anything vouches for them.
 */
export const MAX_BOOT_COMMIT_SIZE = 16 << 20;

export interface DeploymentCommit {
  checksum: string;
  /** The `.commit` bytes, hashed to `checksum`: what signatures cover. Not decoded yet. */
  bytes: Uint8Array;
  path: string;
  /** The detached metadata's signatures, or `undefined` when there is no `.commitmeta`. */
  commitmeta: ReturnType<OstreeRepo["readCommitmetaSignatures"]>;
}

/**
 * Loads the deployment's commit from `<sysroot>/ostree/repo` (opened by the caller, which injects
 * decompression): the `.commit` bytes are re-hashed and must equal the commit id in the deployment's
 * directory name (ostree never compares them), then decoded. ostree's bootc base-commit fallback for
 * the detached metadata is not applied here.
 */
export function loadDeploymentCommit(
  repo: Pick<OstreeRepo, "path" | "readMetadataObject" | "readCommitmetaSignatures">,
  d: Deployment,
): DeploymentCommit {
  if (repo.path.replace(/\/+$/, "") !== d.repo) {
    throw new UsageError(
      `Cannot load the commit of ${q(d.path)} from ${q(repo.path)}: another repository, expected ${q(d.repo)}`,
    );
  }
  const bytes = repo.readMetadataObject(d.commit, "commit", MAX_BOOT_COMMIT_SIZE);
  return {
    checksum: d.commit,
    bytes,
    path: d.commitObject,
    commitmeta: repo.readCommitmetaSignatures(d.commit),
  };
}

/** The loaded commit's fields, decoded and checked: once its signatures verified, when they are asked for. */
export function decodeDeploymentCommit(c: DeploymentCommit): Commit {
  const commit = decodeCommit(c.bytes);
  validateCommit(commit, `commit ${q(c.path)}`);
  return commit;
}
