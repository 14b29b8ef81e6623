// The EROFS writer's view of a composefs tree: one WNode per inode holding only what the writer changes
// or computes (mode, size, nlink, the xattr list, directory entries with "." and "..", inode number, nid)
// and a reference to the input inode for everything else. The input tree is never copied nor changed:
// names, payloads, contents, digests and xattrs are the input's own objects until the overlay rewrite
// replaces one (copy on write). Also validates the tree as libcomposefs's setters would. Pure.

import { FormatError, q } from "../../base/errors.ts";
import {
  compareBytes,
  DIGEST_SIZE,
  fileType,
  INLINE_CONTENT_MAX,
  type Inode,
  MAX_NAME_LENGTH,
  type Mtime,
  PATH_MAX,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  searchByName,
  showBytes,
  VALID_FILE_TYPES,
  XATTR_EXTERNAL_BUDGET,
  XATTR_NAME_MAX,
  XATTR_VALUE_MAX,
  type Xattr,
  xattrBudgetUse,
} from "../composefs/tree.ts";

export interface WEntry {
  name: Uint8Array;
  node: WNode;
  /** "." / ".." and secondary hardlinks: the inode is laid out elsewhere. */
  link: boolean;
}

const NO_ENTRIES: WEntry[] = [];

export class WNode {
  /** st_mode; the overlay rewrite turns a whiteout into a regular file. */
  mode: number;
  /** st_size as written (symlinks: the target length; rewritten whiteouts: 0). */
  size: number;
  nlink: number;
  /** The xattrs as written: the input's own array until the overlay rewrite changes it (see own()). */
  xattrs: Xattr[];
  private ownsXattrs = false;
  /**
   * libcomposefs's running xattr budget (node->xattr_size) of the copy the writer rewrites. It starts at 0
   * whatever the node's own xattrs: lcfs_write_to() works on lcfs_node_clone_deep() of the tree, and
   * lcfs_node_clone() copies the xattrs but not xattr_size. So the overlay xattrs the writer adds count
   * only among themselves (the parser already held the own ones to the limit). Negative while a
   * replacement has taken more than it held: the C size_t has wrapped (write-overlay.ts setXattr).
   */
  budget = 0;
  /** Directory entries in name order ("." and ".." once the overlay rewrite added them). */
  entries: WEntry[];
  /** Position in breadth-first order (st_ino), then the nid (slot offset from block 0). */
  ino = 0;
  nid = 0;

  constructor(
    readonly inode: Inode,
    /** Name in the parent ("" for the root); with `parent` it gives the path for messages (pathOf). */
    readonly name: Uint8Array,
    readonly parent: WNode | undefined,
    mode: number,
    size: number,
  ) {
    this.mode = mode;
    this.size = size;
    this.nlink = inode.nlink;
    this.xattrs = inode.xattrs;
    this.entries = fileType(mode) === S_IFDIR ? [] : NO_ENTRIES;
  }

  /** The xattr list, made the writer's own first (the input's array is never changed). */
  ownXattrs(): Xattr[] {
    if (!this.ownsXattrs) {
      this.xattrs = this.xattrs.slice();
      this.ownsXattrs = true;
    }
    return this.xattrs;
  }

  get uid(): number {
    return this.inode.uid;
  }
  get gid(): number {
    return this.inode.gid;
  }
  get rdev(): number {
    return this.inode.rdev;
  }
  get mtime(): Mtime {
    return this.inode.mtime;
  }
}

/** The node's path for messages, built only when one is needed. */
export function pathOf(n: WNode): string {
  return n.parent === undefined || n.parent === n ? "/" : childPath(pathOf(n.parent), n.name);
}

function childPath(parent: string, name: Uint8Array): string {
  return `${parent === "/" ? "" : parent}/${showBytes(name)}`;
}

/** The path of the entry `name` of `parent` (the root without a parent). */
function entryPath(parent: WNode | undefined, name: Uint8Array): string {
  return parent === undefined ? "/" : childPath(pathOf(parent), name);
}

export function cannot(path: string, observed: string, expected: string): FormatError {
  return new FormatError(`Cannot write composefs image for ${q(path)}: ${observed}, expected ${expected}`, {
    path,
  });
}

export function sameBytes(a: Uint8Array, c: Uint8Array): boolean {
  if (a.length !== c.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== c[i]) return false;
  return true;
}

export function startsWith(a: Uint8Array, prefix: Uint8Array): boolean {
  if (a.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

function isDot(name: Uint8Array): boolean {
  return (
    (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)
  );
}

/** Bytes as a string, one char per byte: windows-1252 maps the 256 byte values to 256 distinct chars. */
const byteDecoder = new TextDecoder("latin1");

/** What libcomposefs's setters would have refused: a tree built by hand must hold the same limits. */
function validateData(inode: Inode, parent: WNode | undefined, name: Uint8Array): void {
  if (inode.digest !== undefined && inode.digest.length !== DIGEST_SIZE) {
    throw cannot(
      entryPath(parent, name),
      `a ${inode.digest.length}-byte fs-verity digest`,
      `${DIGEST_SIZE} bytes`,
    );
  }
  if (inode.payload !== undefined && inode.payload.length >= PATH_MAX) {
    throw cannot(
      entryPath(parent, name),
      `a ${inode.payload.length}-byte payload`,
      `at most ${PATH_MAX - 1} bytes`,
    );
  }
  if (inode.content !== undefined && inode.content.length > INLINE_CONTENT_MAX) {
    throw cannot(
      entryPath(parent, name),
      `${inode.content.length} bytes of inline content`,
      `at most ${INLINE_CONTENT_MAX}`,
    );
  }
  if (!Number.isInteger(inode.size) || inode.size < 0) {
    throw cannot(entryPath(parent, name), `size ${inode.size}`, "a non-negative integer");
  }
  const keys = inode.xattrs.length > 1 ? new Set<string>() : undefined;
  for (const x of inode.xattrs) {
    if (x.key.length === 0 || x.key.length > XATTR_NAME_MAX || x.key.includes(0)) {
      throw cannot(
        entryPath(parent, name),
        `xattr name ${q(showBytes(x.key))} of ${x.key.length} bytes`,
        "1..255 bytes without NUL",
      );
    }
    if (x.value.length > XATTR_VALUE_MAX) {
      throw cannot(
        entryPath(parent, name),
        `a ${x.value.length}-byte value for xattr ${q(showBytes(x.key))}`,
        `at most ${XATTR_VALUE_MAX}`,
      );
    }
    if (keys !== undefined) {
      const k = byteDecoder.decode(x.key);
      if (keys.has(k))
        throw cannot(entryPath(parent, name), `xattr ${q(showBytes(x.key))} twice`, "unique xattr names");
      keys.add(k);
    }
  }
  const use = xattrBudgetUse(inode.xattrs);
  if (use > XATTR_EXTERNAL_BUDGET) {
    throw cannot(
      entryPath(parent, name),
      `xattrs using ${use} bytes (12 + Σ(7 + key + value))`,
      `at most ${XATTR_EXTERNAL_BUDGET}`,
    );
  }
}

function isSorted(children: readonly { name: Uint8Array }[]): boolean {
  for (let i = 1; i < children.length; i++) {
    if (compareBytes(children[i - 1]!.name, children[i]!.name) > 0) return false;
  }
  return true;
}

/**
 * Validates `root` and builds the writer's view of it, depth first as lcfs_node_clone_deep() walks: the
 * first entry met of an inode that no entry marks as a hardlink is its primary one.
 */
export function viewTree(root: Inode): WNode {
  const views = new Map<Inode, WNode>();
  const links: { entry: WEntry; target: Inode; parent: WNode; name: Uint8Array }[] = [];

  const viewNode = (inode: Inode, name: Uint8Array, parent: WNode | undefined): WNode => {
    const type = fileType(inode.mode);
    if (!VALID_FILE_TYPES.includes(type)) {
      throw cannot(
        entryPath(parent, name),
        `mode 0${inode.mode.toString(8)} has an invalid file type`,
        "a valid S_IFMT type",
      );
    }
    if (type !== S_IFDIR && inode.children.length > 0) {
      throw cannot(entryPath(parent, name), "a non-directory has entries", "entries only in directories");
    }
    let size = inode.size;
    if (type === S_IFLNK) {
      const len = inode.payload?.length ?? 0;
      if (len === 0 || len >= PATH_MAX)
        throw cannot(entryPath(parent, name), `a ${len}-byte symlink target`, `1..${PATH_MAX - 1} bytes`);
      size = len;
    }
    validateData(inode, parent, name);
    const n = new WNode(inode, name, parent, inode.mode >>> 0, size);
    views.set(inode, n);
    const sorted = isSorted(inode.children)
      ? inode.children
      : [...inode.children].sort((x, y) => compareBytes(x.name, y.name));
    for (let i = 0; i < sorted.length; i++) {
      const d = sorted[i]!;
      if (
        d.name.length === 0 ||
        d.name.length > MAX_NAME_LENGTH ||
        d.name.includes(0x2f) ||
        d.name.includes(0)
      ) {
        throw cannot(
          childPath(pathOf(n), d.name),
          `a ${d.name.length}-byte name`,
          "1..255 bytes without '/' or NUL",
        );
      }
      if (isDot(d.name))
        throw cannot(childPath(pathOf(n), d.name), 'an explicit "." or ".." entry', "other names");
      if (i > 0 && compareBytes(sorted[i - 1]!.name, d.name) === 0) {
        throw cannot(childPath(pathOf(n), d.name), "a duplicate name", "unique names");
      }
      if (d.hardlink || views.has(d.inode)) {
        const entry: WEntry = { name: d.name, node: n, link: true }; // node: set below
        links.push({ entry, target: d.inode, parent: n, name: d.name });
        n.entries.push(entry);
      } else {
        n.entries.push({ name: d.name, node: viewNode(d.inode, d.name, n), link: false });
      }
    }
    return n;
  };

  if (fileType(root.mode) !== S_IFDIR) throw cannot("/", "a root that is not a directory", "a directory");
  const top = viewNode(root, new Uint8Array(0), undefined);
  for (const l of links) {
    const target = views.get(l.target);
    const path = () => childPath(pathOf(l.parent), l.name);
    if (target === undefined)
      throw cannot(path(), "a hardlink to an inode outside the tree", "a target in the tree");
    if (fileType(target.mode) === S_IFDIR)
      throw cannot(path(), "a hardlink to a directory", "a non-directory");
    l.entry.node = target;
  }
  return top;
}

/** Index of `name` in the node's entries, or `-(insertion point) - 1`. */
export function findEntry(dir: WNode, name: Uint8Array): number {
  return searchByName(dir.entries, name);
}

export function insertEntry(dir: WNode, entry: WEntry): void {
  const i = findEntry(dir, entry.name);
  if (i >= 0) throw cannot(pathOf(dir), `a duplicate entry ${q(showBytes(entry.name))}`, "unique names");
  dir.entries.splice(-i - 1, 0, entry);
}

export function getXattr(node: WNode, key: Uint8Array): Uint8Array | undefined {
  for (const x of node.xattrs) if (sameBytes(x.key, key)) return x.value;
  return undefined;
}

export interface TreeInfo {
  /** Every inode once, breadth first: the order of inode numbers and of the inode area. */
  order: WNode[];
  minMtime: Mtime;
  hasAcl: boolean;
}

function mtimeLess(a: Mtime, c: Mtime): boolean {
  return a.sec < c.sec || (a.sec === c.sec && a.nsec < c.nsec);
}

function xattrsSorted(xattrs: readonly Xattr[]): boolean {
  for (let i = 1; i < xattrs.length; i++) {
    if (compareBytes(xattrs[i - 1]!.key, xattrs[i]!.key) > 0) return false;
  }
  return true;
}

/**
 * lcfs_compute_tree(): breadth-first order, inode numbers, directory nlink, xattrs sorted by key,
 * the oldest mtime, and whether any inode has a POSIX ACL.
 */
export function computeTree(root: WNode, aclAccess: Uint8Array, aclDefault: Uint8Array): TreeInfo {
  const order: WNode[] = [root];
  let minMtime = root.mtime;
  let hasAcl = false;
  for (let i = 0; i < order.length; i++) {
    const n = order[i]!;
    const isDir = fileType(n.mode) === S_IFDIR;
    if (isDir) {
      let subdirs = 0;
      for (const c of n.entries) if (!c.link && fileType(c.node.mode) === S_IFDIR) subdirs++;
      n.nlink = 2 + subdirs;
    }
    if (!xattrsSorted(n.xattrs)) n.ownXattrs().sort((x, y) => compareBytes(x.key, y.key));
    const m = n.mtime;
    if (mtimeLess(m, minMtime)) minMtime = m;
    n.ino = i;
    if (getXattr(n, aclAccess) !== undefined || getXattr(n, aclDefault) !== undefined) hasAcl = true;
    if (isDir) for (const c of n.entries) if (!c.link) order.push(c.node);
  }
  return { order, minMtime: { sec: minMtime.sec, nsec: minMtime.nsec }, hasAcl };
}

export const isPayloadFile = (n: WNode): boolean =>
  fileType(n.mode) === S_IFREG && n.size > 0 && n.inode.content === undefined;
