// A commit's tree as the composefs tree ostree 2026.4 builds for it (`_ostree_repo_checkout_composefs`,
// `checkout_composefs_recurse`, `checkout_one_composefs_file_at` in src/libostree/ostree-repo-composefs.c),
// ready for the EROFS writer with ostree's options (`ostree_composefs_target_write`: version 0, max
// version 1). Every object is read through the verifying repository reader, each content object once; the
// tree is measured and refused past the repository's entry cap before any inode is built. Per-file
// fs-verity digests come from an injected function (the kernel's measurement or a userspace
// computation); pure otherwise.

import { FormatError, q } from "../../base/errors.ts";
import { toHex, utf8 } from "../bytes.ts";
import { addChild, type Inode, lookupChild, newInode, S_IFDIR, type Xattr } from "../composefs/tree.ts";
import type { WriteOptions } from "../erofs/write.ts";
import { loosePath, type Xattr as OstreeXattr } from "./objects.ts";
import { ContentBudget, type ContentObject, type OstreeRepo, refuseLargeTree } from "./repo.ts";

/** `ostree_composefs_target_write`: `options.version = 0; options.max_version = 1`. */
export const OSTREE_COMPOSEFS_WRITE_OPTIONS: Readonly<Required<WriteOptions>> = { version: 0, maxVersion: 1 };

/** Directories ostree adds to the image root when the tree lacks them ("to use as bind-mounts"), mode 0755. */
export const COMPOSEFS_ROOT_DIRS = ["usr", "etc", "boot", "var", "sysroot"] as const;
const ROOT_DIR_MODE = S_IFDIR | 0o755;

/**
 * ostree's `verity` tristate for the checkout: `none` = `--composefs-noverity` (no file digests),
 * `kernel` = only digests the kernel already has for the object (`verity=1`), `full` = the kernel's or
 * else computed from the content (`ostree checkout --composefs`, commit-time metadata, signed deploys).
 */
export type ComposefsVerity = "none" | "kernel" | "full";

/**
 * The fs-verity digest for one non-empty regular file object, or `undefined` for none. ostree asks the
 * kernel first (FS_IOC_MEASURE_VERITY on the object, sha256 only) and, in `full` mode, computes it
 * from the content when the kernel has none; the caller implements that for its mode.
 */
export type FileVerityDigest = (object: ContentObject) => Uint8Array | undefined;

/** The repository operations the tree walk needs (OstreeRepo provides them, verifying every object). */
export type ComposefsRepo = Pick<
  OstreeRepo,
  "readCommit" | "readDirtree" | "readDirmeta" | "readContent" | "treeEntries" | "limits"
>;

/** `_ostree_loose_path(…, OSTREE_OBJECT_TYPE_FILE, OSTREE_REPO_MODE_BARE)`: the payload, relative to objects/. */
export function objectPayload(checksum: string): string {
  return loosePath(checksum, "file");
}

/** ostree xattr names are C strings stored with their NUL; lcfs_node_set_xattr reads up to the first NUL. */
function composefsXattrs(xattrs: readonly OstreeXattr[], where: string): Xattr[] {
  const out: Xattr[] = [];
  for (const x of xattrs) {
    const nul = x.name.indexOf(0);
    const key = nul >= 0 ? x.name.subarray(0, nul) : x.name;
    if (key.length === 0)
      throw new FormatError(`Cannot map the xattrs of ${where}: an empty xattr name, expected a name`);
    // lcfs_node_set_xattr replaces an existing value of the same name.
    const i = out.findIndex((e) => e.key.length === key.length && e.key.every((b, k) => b === key[k]));
    if (i >= 0) out.splice(i, 1);
    out.push({ key, value: x.value });
  }
  return out;
}

interface Walk {
  repo: ComposefsRepo;
  digestOf: FileVerityDigest | undefined;
  depth: number;
  maxDepth: number;
  /** Content objects already turned into an inode, by checksum: each is read and measured once. */
  files: Map<string, Inode>;
  budget: ContentBudget;
}

function fileNode(w: Walk, checksum: string, path: string): Inode {
  const hit = w.files.get(checksum);
  if (hit) return copyInode(hit);
  const obj = w.repo.readContent(checksum, w.budget);
  const node = newInode(obj.mode, {
    uid: obj.uid,
    gid: obj.gid,
    xattrs: composefsXattrs(obj.xattrs, q(path)),
  });
  if (obj.kind === "symlink") {
    const target = utf8.encode(obj.symlinkTarget ?? "");
    node.payload = target;
    node.size = target.length;
  } else {
    node.size = obj.size;
    // Empty files get no payload and no digest (`else if (source_size != 0)`).
    if (obj.size !== 0) {
      node.payload = utf8.encode(objectPayload(checksum));
      const digest = w.digestOf?.(obj);
      if (digest !== undefined) node.digest = digest;
    }
  }
  w.files.set(checksum, node);
  return copyInode(node);
}

/** Hard-linked objects are separate inodes, as in ostree: each path gets its own copy of the fields. */
const copyInode = (n: Inode): Inode => ({ ...n, mtime: { ...n.mtime }, xattrs: [...n.xattrs], children: [] });

function dirNode(w: Walk, dirtree: string, dirmeta: string, path: string): Inode {
  if (w.depth > w.maxDepth) {
    throw new FormatError(
      `Cannot build the composefs tree at ${q(path)}: deeper than ${w.maxDepth} levels, expected at most ${w.maxDepth}`,
    );
  }
  const meta = w.repo.readDirmeta(dirmeta);
  const tree = w.repo.readDirtree(dirtree);
  const dir = newInode(meta.mode, {
    uid: meta.uid,
    gid: meta.gid,
    xattrs: composefsXattrs(meta.xattrs, q(path)),
  });
  const prefix = path === "/" ? "" : path;
  const add = (name: string, child: Inode) => {
    const bytes = utf8.encode(name);
    if (lookupChild(dir, bytes)) {
      throw new FormatError(
        `Cannot build the composefs tree at ${q(`${prefix}/${name}`)}: the dirtree names it twice, expected unique names ("Target checkout … already exist" in ostree)`,
      );
    }
    addChild(dir, bytes, child);
  };
  for (const f of tree.files) add(f.name, fileNode(w, toHex(f.checksum), `${prefix}/${f.name}`));
  for (const d of tree.dirs) {
    w.depth++;
    add(d.name, dirNode(w, toHex(d.dirtree), toHex(d.dirmeta), `${prefix}/${d.name}`));
    w.depth--;
  }
  return dir;
}

/**
 * The composefs tree of `commitChecksum`: root directory from the root dirmeta, every entry with its
 * mode, uid, gid and xattrs, mtimes 0, regular files with the object path as payload (and a digest from
 * `digestOf` when given, asked once per object), symlinks with their target, hard-linked objects as
 * separate inodes (as ostree), then `usr etc boot var sysroot` added to the root when missing. A tree of
 * more than the repository's maxTreeEntries paths is refused before any inode is built.
 */
export function commitComposefsTree(
  repo: ComposefsRepo,
  commitChecksum: string,
  digestOf?: FileVerityDigest,
  opts: { maxDepth?: number } = {},
): Inode {
  const { commit } = repo.readCommit(commitChecksum);
  refuseLargeTree(repo, toHex(commit.rootDirtree), "build the composefs tree");
  const w: Walk = {
    repo,
    digestOf,
    depth: 1,
    maxDepth: opts.maxDepth ?? 256,
    files: new Map(),
    budget: new ContentBudget(repo.limits.maxTreeContentBytes),
  };
  const root = dirNode(w, toHex(commit.rootDirtree), toHex(commit.rootDirmeta), "/");
  for (const name of COMPOSEFS_ROOT_DIRS) {
    const bytes = utf8.encode(name);
    if (!lookupChild(root, bytes)) addChild(root, bytes, newInode(ROOT_DIR_MODE));
  }
  return root;
}
