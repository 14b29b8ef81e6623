// Writes a composefs tree as a composefs EROFS image byte-identical to libcomposefs 1.0.8's
// lcfs_write_to(): the overlay rewrite (whiteout stubs 00..ff, opaque root, escaped trusted.overlay.*,
// metacopy/redirect for payload files, user whiteouts as escaped files; its xattr budget counts only the
// xattrs it adds, as on libcomposefs's copy of the tree), breadth-first inode order,
// compact/extended inodes, tail packing with libcomposefs's padding rules, shared xattr table and chunk
// maps. One emit routine runs twice: first into a counting sink to measure the layout (nids, block
// addresses, table sizes), then into the output buffer with those values. Pure and deterministic.

import { FormatError, q, UsageError } from "../../base/errors.ts";
import { utf8 } from "../bytes.ts";
import {
  compareBytes,
  DIGEST_SIZE,
  fileType,
  INLINE_CONTENT_MAX,
  type Inode,
  MAX_NAME_LENGTH,
  type Mtime,
  PATH_MAX,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  showBytes,
  VALID_FILE_TYPES,
  XATTR_BUDGET_HEADER,
  XATTR_BUDGET_PER_ENTRY,
  XATTR_EXTERNAL_BUDGET,
  XATTR_NAME_MAX,
  XATTR_VALUE_MAX,
  xattrBudgetUse,
} from "../composefs/tree.ts";
import {
  CFS_HEADER_SIZE,
  DIRENT_SIZE,
  EROFS_BLKSIZ,
  EROFS_BLKSIZ_BITS,
  EROFS_CHUNK_FORMAT_BLKBITS_MASK,
  EROFS_FEATURE_COMPAT_MTIME,
  EROFS_FEATURE_COMPAT_XATTR_FILTER,
  EROFS_FT_BLKDEV,
  EROFS_FT_CHRDEV,
  EROFS_FT_DIR,
  EROFS_FT_FIFO,
  EROFS_FT_REG_FILE,
  EROFS_FT_SOCK,
  EROFS_FT_SYMLINK,
  EROFS_FT_UNKNOWN,
  EROFS_I_DATALAYOUT_BIT,
  EROFS_I_VERSION_BIT,
  EROFS_INLINE_TAIL_MAX,
  EROFS_INODE_CHUNK_BASED,
  EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_FLAT_PLAIN,
  EROFS_INODE_LAYOUT_COMPACT,
  EROFS_INODE_LAYOUT_EXTENDED,
  EROFS_NULL_ADDR,
  EROFS_SLOTSIZE,
  EROFS_SUPER_MAGIC_V1,
  EROFS_SUPER_OFFSET,
  EROFS_SUPER_SIZE,
  EROFS_XATTR_FILTER_BITS,
  EROFS_XATTR_FILTER_DEFAULT,
  EROFS_XATTR_FILTER_SEED,
  EROFS_XATTR_LONG_PREFIX,
  INODE_COMPACT_SIZE,
  INODE_EXTENDED_SIZE,
  LCFS_EROFS_FLAGS_HAS_ACL,
  LCFS_EROFS_MAGIC,
  LCFS_EROFS_VERSION,
  LCFS_MAX_NONINLINE_CHUNKS,
  LCFS_VERSION_MAX,
  WRITER_XATTR_PREFIXES,
  XATTR_ALIGN,
  XATTR_ENTRY_SIZE,
  XATTR_IBODY_HEADER_SIZE,
  XATTR_SHARED_ID_SIZE,
} from "./layout.ts";

export interface WriteOptions {
  /** Minimum composefs format version (default 0, as ostree). */
  version?: number;
  /** Maximum format version (default 1, as ostree): whiteouts raise the version up to this. */
  maxVersion?: number;
}

/** fs-verity hash algorithm number for SHA-256 (linux/fsverity.h), in the metacopy xattr. */
const FS_VERITY_HASH_ALG_SHA256 = 1;
/** Metacopy xattr: version 0, length, flags 0, algorithm, digest. */
const METACOPY_HEADER_SIZE = 4;

const b = (s: string): Uint8Array => utf8.encode(s);
const OVERLAY_PREFIX = b("trusted.overlay.");
const OVERLAY_ESCAPE_PREFIX = b("trusted.overlay.overlay.");
const XATTR_METACOPY = b("trusted.overlay.metacopy");
const XATTR_REDIRECT = b("trusted.overlay.redirect");
const XATTR_OPAQUE = b("trusted.overlay.opaque");
const XATTR_ESCAPED_WHITEOUT = b("trusted.overlay.overlay.whiteout");
const XATTR_ESCAPED_WHITEOUTS = b("trusted.overlay.overlay.whiteouts");
const XATTR_ESCAPED_OPAQUE = b("trusted.overlay.overlay.opaque");
const XATTR_USER_WHITEOUT = b("user.overlay.whiteout");
const XATTR_USER_WHITEOUTS = b("user.overlay.whiteouts");
const XATTR_USER_OPAQUE = b("user.overlay.opaque");
const XATTR_SELINUX = b("security.selinux");
const XATTR_ACL_ACCESS = b("system.posix_acl_access");
const XATTR_ACL_DEFAULT = b("system.posix_acl_default");
const PREFIXES = WRITER_XATTR_PREFIXES.map(([p, index]) => [b(p), index] as const);
const DOT = b(".");
const DOTDOT = b("..");
const EMPTY = new Uint8Array(0);

const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

// ---------------------------------------------------------------------------------------------------
// Working tree: a deep copy of the input that the overlay rewrite may change.

interface WXattr {
  key: Uint8Array;
  value: Uint8Array;
  /** Offset in the shared xattr table, or -1 when stored in the inode. */
  shared: number;
  /** EROFS name index of `key`'s prefix and that prefix's length (xattrIndex(key), kept with the key). */
  index: number;
  prefixLen: number;
}

function wxattr(key: Uint8Array, value: Uint8Array): WXattr {
  const { index, prefixLen } = xattrIndex(key);
  return { key, value, shared: -1, index, prefixLen };
}

interface WEntry {
  name: Uint8Array;
  node: WNode;
  /** "." / ".." and secondary hardlinks: the inode is laid out elsewhere. */
  link: boolean;
}

interface WNode {
  /** Name in the parent ("" for the root); with `parent` it gives the path for messages (pathOf). */
  name: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: number;
  mtime: Mtime;
  size: number;
  payload: Uint8Array | undefined;
  digest: Uint8Array | undefined;
  content: Uint8Array | undefined;
  xattrs: WXattr[];
  /**
   * libcomposefs's running xattr budget (node->xattr_size) of the copy the writer rewrites. It starts at 0
   * whatever the node's own xattrs: lcfs_write_to() works on lcfs_node_clone_deep() of the tree, and
   * lcfs_node_clone() copies the xattrs but not xattr_size. So the overlay xattrs the writer adds count
   * only among themselves (the parser already held the own ones to the limit). Negative while a
   * replacement has taken more than it held: the C size_t has wrapped (see setXattr).
   */
  budget: number;
  children: WEntry[];
  parent: WNode | undefined;
  ino: number;
  nid: number;
  /** The xattr name filter, computed once the xattrs are final (-1 before). */
  filter: number;
}

/** The node's path for messages, built only when one is needed. */
function pathOf(n: WNode): string {
  return n.parent === undefined || n.parent === n ? "/" : childPath(pathOf(n.parent), n.name);
}

function sameBytes(a: Uint8Array, c: Uint8Array): boolean {
  if (a.length !== c.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== c[i]) return false;
  return true;
}

function startsWith(a: Uint8Array, prefix: Uint8Array): boolean {
  if (a.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function cannot(path: string, observed: string, expected: string): FormatError {
  return new FormatError(`Cannot write composefs image for ${q(path)}: ${observed}, expected ${expected}`, {
    path,
  });
}

function isDot(name: Uint8Array): boolean {
  return (
    (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)
  );
}

/** Bytes as a string, one char per byte: windows-1252 maps the 256 byte values to 256 distinct chars. */
const byteDecoder = new TextDecoder("latin1");

/** What libcomposefs's setters would have refused: a tree built by hand must hold the same limits. */
function validateData(inode: Inode, pathFn: () => string): void {
  if (inode.digest !== undefined && inode.digest.length !== DIGEST_SIZE) {
    throw cannot(pathFn(), `a ${inode.digest.length}-byte fs-verity digest`, `${DIGEST_SIZE} bytes`);
  }
  if (inode.payload !== undefined && inode.payload.length >= PATH_MAX) {
    throw cannot(pathFn(), `a ${inode.payload.length}-byte payload`, `at most ${PATH_MAX - 1} bytes`);
  }
  if (inode.content !== undefined && inode.content.length > INLINE_CONTENT_MAX) {
    throw cannot(
      pathFn(),
      `${inode.content.length} bytes of inline content`,
      `at most ${INLINE_CONTENT_MAX}`,
    );
  }
  if (!Number.isInteger(inode.size) || inode.size < 0) {
    throw cannot(pathFn(), `size ${inode.size}`, "a non-negative integer");
  }
  const keys = inode.xattrs.length > 1 ? new Set<string>() : undefined;
  for (const x of inode.xattrs) {
    const shown = () => q(showBytes(x.key));
    if (x.key.length === 0 || x.key.length > XATTR_NAME_MAX || x.key.includes(0)) {
      throw cannot(pathFn(), `xattr name ${shown()} of ${x.key.length} bytes`, "1..255 bytes without NUL");
    }
    if (x.value.length > XATTR_VALUE_MAX) {
      throw cannot(
        pathFn(),
        `a ${x.value.length}-byte value for xattr ${shown()}`,
        `at most ${XATTR_VALUE_MAX}`,
      );
    }
    if (keys !== undefined) {
      const k = byteDecoder.decode(x.key);
      if (keys.has(k)) throw cannot(pathFn(), `xattr ${shown()} twice`, "unique xattr names");
      keys.add(k);
    }
  }
  const use = xattrBudgetUse(inode.xattrs);
  if (use > XATTR_EXTERNAL_BUDGET) {
    throw cannot(
      pathFn(),
      `xattrs using ${use} bytes (12 + Σ(7 + key + value))`,
      `at most ${XATTR_EXTERNAL_BUDGET}`,
    );
  }
}

function childPath(parent: string, name: Uint8Array): string {
  return `${parent === "/" ? "" : parent}/${showBytes(name)}`;
}

function isSorted(children: readonly { name: Uint8Array }[]): boolean {
  for (let i = 1; i < children.length; i++) {
    if (compareBytes(children[i - 1]!.name, children[i]!.name) > 0) return false;
  }
  return true;
}

function cloneTree(root: Inode): WNode {
  const clones = new Map<Inode, WNode>();
  const links: { entry: WEntry; target: Inode; path: () => string }[] = [];
  const placeholder = {} as WNode;

  const cloneNode = (inode: Inode, name: Uint8Array, parent: WNode | undefined): WNode => {
    const pathFn = () => (parent === undefined ? "/" : childPath(pathOf(parent), name));
    if (!VALID_FILE_TYPES.includes(fileType(inode.mode))) {
      throw cannot(
        pathFn(),
        `mode 0${inode.mode.toString(8)} has an invalid file type`,
        "a valid S_IFMT type",
      );
    }
    if (fileType(inode.mode) !== S_IFDIR && inode.children.length > 0) {
      throw cannot(pathFn(), "a non-directory has entries", "entries only in directories");
    }
    let size = inode.size;
    if (fileType(inode.mode) === S_IFLNK) {
      const len = inode.payload?.length ?? 0;
      if (len === 0 || len >= PATH_MAX)
        throw cannot(pathFn(), `a ${len}-byte symlink target`, `1..${PATH_MAX - 1} bytes`);
      size = len;
    }
    validateData(inode, pathFn);
    const n: WNode = {
      name,
      mode: inode.mode >>> 0,
      uid: inode.uid,
      gid: inode.gid,
      nlink: inode.nlink,
      rdev: inode.rdev,
      mtime: { sec: inode.mtime.sec, nsec: inode.mtime.nsec },
      size,
      payload: inode.payload,
      digest: inode.digest,
      content: inode.content,
      xattrs: inode.xattrs.map((x) => wxattr(x.key, x.value)),
      budget: 0,
      children: [],
      parent,
      ino: 0,
      nid: 0,
      filter: -1,
    };
    clones.set(inode, n);
    const sorted = isSorted(inode.children)
      ? inode.children
      : [...inode.children].sort((x, y) => compareBytes(x.name, y.name));
    for (let i = 0; i < sorted.length; i++) {
      const d = sorted[i]!;
      const dPath = () => childPath(pathOf(n), d.name);
      if (
        d.name.length === 0 ||
        d.name.length > MAX_NAME_LENGTH ||
        d.name.includes(0x2f) ||
        d.name.includes(0)
      ) {
        throw cannot(dPath(), `a ${d.name.length}-byte name`, "1..255 bytes without '/' or NUL");
      }
      if (isDot(d.name)) throw cannot(dPath(), 'an explicit "." or ".." entry', "other names");
      if (i > 0 && compareBytes(sorted[i - 1]!.name, d.name) === 0) {
        throw cannot(dPath(), "a duplicate name", "unique names");
      }
      if (d.hardlink || clones.has(d.inode)) {
        const entry: WEntry = { name: d.name, node: placeholder, link: true };
        links.push({ entry, target: d.inode, path: dPath });
        n.children.push(entry);
      } else {
        n.children.push({ name: d.name, node: cloneNode(d.inode, d.name, n), link: false });
      }
    }
    return n;
  };

  if (fileType(root.mode) !== S_IFDIR) throw cannot("/", "a root that is not a directory", "a directory");
  const top = cloneNode(root, EMPTY, undefined);
  for (const l of links) {
    const target = clones.get(l.target);
    if (target === undefined)
      throw cannot(l.path(), "a hardlink to an inode outside the tree", "a target in the tree");
    if (fileType(target.mode) === S_IFDIR)
      throw cannot(l.path(), "a hardlink to a directory", "a non-directory");
    l.entry.node = target;
  }
  return top;
}

function findChild(dir: WNode, name: Uint8Array): number {
  let lo = 0;
  let hi = dir.children.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(dir.children[mid]!.name, name);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -lo - 1;
}

function insertChild(dir: WNode, entry: WEntry): void {
  const i = findChild(dir, entry.name);
  if (i >= 0) throw cannot(pathOf(dir), `a duplicate entry ${q(showBytes(entry.name))}`, "unique names");
  dir.children.splice(-i - 1, 0, entry);
}

/**
 * lcfs_node_set_xattr() on the writer's copy: replace or add, within the external-input budget, with
 * libcomposefs's accounting. Replacing subtracts the old entry from the budget, which starts at 0 on the
 * copy (WNode.budget): replacing an own xattr can take it below 0, a wrapped size_t in C, and the add is
 * then refused (ERANGE) unless it brings the budget back to 0 or more.
 */
function setXattr(node: WNode, key: Uint8Array, value: Uint8Array): void {
  if (key.length === 0 || key.length > XATTR_NAME_MAX || value.length > XATTR_VALUE_MAX) {
    throw cannot(pathOf(node), `xattr ${q(showBytes(key))} of ${value.length} bytes`, "a 1..255-byte name");
  }
  let replaced: WXattr | undefined;
  const i = node.xattrs.findIndex((x) => sameBytes(x.key, key));
  if (i >= 0) {
    replaced = node.xattrs[i]!;
    node.xattrs.splice(i, 1);
    node.budget =
      node.xattrs.length > 0
        ? node.budget - (XATTR_BUDGET_PER_ENTRY + replaced.key.length + replaced.value.length)
        : 0;
  }
  let entry = XATTR_BUDGET_PER_ENTRY + key.length + value.length;
  if (node.xattrs.length === 0) entry += XATTR_BUDGET_HEADER;
  const next = node.budget + entry;
  if (next < 0 && replaced !== undefined) {
    // The add brings the budget back to 0 only if the old value was at most this long.
    const most = replaced.value.length + next;
    const path = pathOf(node);
    const written = startsWith(key, OVERLAY_ESCAPE_PREFIX)
      ? ` (written as ${q(showBytes(concat(OVERLAY_PREFIX, key.subarray(OVERLAY_ESCAPE_PREFIX.length))))})`
      : "";
    throw new FormatError(
      `Cannot write composefs image for ${q(path)}: replacing its xattr ${q(showBytes(key))}${written} of ` +
        `${replaced.value.length} bytes takes the writer's xattr budget below 0, which libcomposefs 1.0.8 ` +
        `refuses (ERANGE), expected a value of at most ${most} bytes`,
      { path, field: "XATTR", xattr: showBytes(key) },
    );
  }
  if (next > XATTR_EXTERNAL_BUDGET) {
    throw cannot(
      pathOf(node),
      `adding xattr ${q(showBytes(key))} brings its xattrs to ${next} bytes`,
      `at most ${XATTR_EXTERNAL_BUDGET}`,
    );
  }
  node.xattrs.push(wxattr(key, value));
  node.budget = next;
}

function getXattr(node: WNode, key: Uint8Array): Uint8Array | undefined {
  for (const x of node.xattrs) if (sameBytes(x.key, key)) return x.value;
  return undefined;
}

const isWhiteout = (n: WNode): boolean => fileType(n.mode) === S_IFCHR && n.rdev === 0;

/** lcfs_write_update_version(): a whiteout needs format version 1 when the caller allows it. */
function hasWhiteout(n: WNode): boolean {
  if (isWhiteout(n)) return true;
  return n.children.some((c) => !c.link && hasWhiteout(c.node));
}

/** erofs_compute_chunking(): the smallest power-of-two chunk (≥ 1 block, ≤ 2^43) covering the file. */
export function chunking(size: number): { chunkBits: number; chunkCount: number } {
  let chunkBits = size <= 1 ? 1 : Math.ceil(Math.log2(size));
  // Math.log2 can be off by one ulp near powers of two; settle on the exact ilog2(size - 1) + 1.
  while (chunkBits > 1 && 2 ** (chunkBits - 1) >= size) chunkBits--;
  while (2 ** chunkBits < size) chunkBits++;
  if (chunkBits < EROFS_BLKSIZ_BITS) chunkBits = EROFS_BLKSIZ_BITS;
  if (chunkBits - EROFS_BLKSIZ_BITS > EROFS_CHUNK_FORMAT_BLKBITS_MASK) {
    chunkBits = EROFS_CHUNK_FORMAT_BLKBITS_MASK + EROFS_BLKSIZ_BITS;
  }
  return { chunkBits, chunkCount: Math.ceil(size / 2 ** chunkBits) };
}

const isPayloadFile = (n: WNode): boolean =>
  fileType(n.mode) === S_IFREG && n.size > 0 && n.content === undefined;

/** rewrite_tree_node_for_erofs(): validate, add overlay xattrs, add "." and "..", recurse. */
function rewriteNode(node: WNode, parent: WNode, version: number): void {
  if (isPayloadFile(node)) {
    const { chunkCount } = chunking(node.size);
    if (chunkCount > LCFS_MAX_NONINLINE_CHUNKS) {
      throw cannot(
        pathOf(node),
        `a ${node.size}-byte file needs ${chunkCount} chunks (File too large)`,
        `at most ${LCFS_MAX_NONINLINE_CHUNKS} chunks (${2 ** 53} bytes)`,
      );
    }
  }
  if (fileType(node.mode) === S_IFREG && node.content !== undefined && node.content.length !== node.size) {
    throw cannot(pathOf(node), `${node.content.length} bytes of inline content`, `size (${node.size}) bytes`);
  }
  const type = fileType(node.mode);
  for (const x of node.xattrs) {
    if (startsWith(x.key, OVERLAY_PREFIX)) {
      x.key = concat(OVERLAY_ESCAPE_PREFIX, x.key.subarray(OVERLAY_PREFIX.length));
      ({ index: x.index, prefixLen: x.prefixLen } = xattrIndex(x.key));
    }
  }
  if (isPayloadFile(node)) {
    let meta = EMPTY;
    if (node.digest !== undefined) {
      meta = new Uint8Array(METACOPY_HEADER_SIZE + node.digest.length);
      meta[1] = meta.length;
      meta[3] = FS_VERITY_HASH_ALG_SHA256;
      meta.set(node.digest, METACOPY_HEADER_SIZE);
    }
    setXattr(node, XATTR_METACOPY, meta);
    if (node.payload !== undefined && node.payload.length > 0) {
      setXattr(node, XATTR_REDIRECT, concat(b("/"), node.payload));
    }
  }
  if (type === S_IFCHR && node.rdev === 0) {
    node.size = 0;
    node.mode = (S_IFREG | (node.mode & ~S_IFMT)) >>> 0;
    setXattr(node, XATTR_ESCAPED_WHITEOUT, EMPTY);
    setXattr(node, XATTR_USER_WHITEOUT, EMPTY);
    const dir = node.parent ?? parent;
    setXattr(dir, XATTR_ESCAPED_WHITEOUTS, EMPTY);
    setXattr(dir, XATTR_USER_WHITEOUTS, EMPTY);
    if (version >= 1) {
      setXattr(dir, XATTR_ESCAPED_OPAQUE, b("x"));
      setXattr(dir, XATTR_USER_OPAQUE, b("x"));
    }
  }
  if (type === S_IFDIR) {
    insertChild(node, { name: DOT, node, link: true });
    insertChild(node, { name: DOTDOT, node: parent, link: true });
    for (const c of node.children) if (!c.link) rewriteNode(c.node, node, version);
  }
}

/** add_overlay_whiteouts(): char 0:0 stubs 00..ff in the root, except names already present. */
function addWhiteoutStubs(root: WNode): void {
  const selinux = getXattr(root, XATTR_SELINUX);
  for (let i = 0; i < 256; i++) {
    const name = b(i.toString(16).padStart(2, "0"));
    if (findChild(root, name) >= 0) continue;
    const stub: WNode = {
      name,
      mode: S_IFCHR | 0o644,
      uid: root.uid,
      gid: root.gid,
      nlink: 1,
      rdev: 0,
      mtime: { sec: root.mtime.sec, nsec: root.mtime.nsec },
      size: 0,
      payload: undefined,
      digest: undefined,
      content: undefined,
      xattrs: [],
      budget: 0,
      children: [],
      parent: root,
      ino: 0,
      nid: 0,
      filter: -1,
    };
    if (selinux !== undefined) setXattr(stub, XATTR_SELINUX, selinux);
    insertChild(root, { name, node: stub, link: false });
  }
}

interface TreeInfo {
  order: WNode[];
  minMtime: Mtime;
  hasAcl: boolean;
}

function mtimeLess(a: Mtime, c: Mtime): boolean {
  return a.sec < c.sec || (a.sec === c.sec && a.nsec < c.nsec);
}

/** lcfs_compute_tree(): breadth-first order, inode numbers, dir nlink, sorted xattrs, min mtime, ACL flag. */
function computeTree(root: WNode): TreeInfo {
  const order: WNode[] = [root];
  let minMtime = root.mtime;
  let hasAcl = false;
  for (let i = 0; i < order.length; i++) {
    const n = order[i]!;
    if (fileType(n.mode) === S_IFDIR) {
      n.nlink = 2 + n.children.filter((c) => !c.link && fileType(c.node.mode) === S_IFDIR).length;
    }
    n.xattrs.sort((x, y) => compareBytes(x.key, y.key));
    if (mtimeLess(n.mtime, minMtime)) minMtime = n.mtime;
    n.ino = i;
    if (getXattr(n, XATTR_ACL_ACCESS) !== undefined || getXattr(n, XATTR_ACL_DEFAULT) !== undefined)
      hasAcl = true;
    for (const c of n.children) if (!c.link) order.push(c.node);
  }
  return { order, minMtime: { sec: minMtime.sec, nsec: minMtime.nsec }, hasAcl };
}

// ---------------------------------------------------------------------------------------------------
// xattr encoding

function xattrIndex(key: Uint8Array): { index: number; prefixLen: number } {
  for (const [prefix, index] of PREFIXES) {
    if (startsWith(key, prefix)) return { index, prefixLen: prefix.length };
  }
  return { index: 0, prefixLen: 0 };
}

const roundUp = (x: number, to: number): number => Math.ceil(x / to) * to;

function xattrEntrySize(x: WXattr): number {
  return roundUp(XATTR_ENTRY_SIZE + x.key.length - x.prefixLen + x.value.length, XATTR_ALIGN);
}

interface SharedUse {
  x: WXattr;
  count: number;
  offset: number;
}

/** FNV-1a over key and value: buckets for finding equal key/value pairs without building strings. */
function pairHash(x: WXattr): number {
  let h = 0x811c9dc5;
  const { key, value } = x;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ value[i]!, 0x01000193);
  return h >>> 2; // 30 bits: a small integer, the fast kind of Map key
}

const samePair = (a: WXattr, c: WXattr): boolean => sameBytes(a.key, c.key) && sameBytes(a.value, c.value);

/** compute_erofs_shared_xattrs(): key/value pairs used by more than one inode go to the shared table. */
function computeSharedXattrs(order: WNode[]): { table: WXattr[]; size: number } {
  const buckets = new Map<number, SharedUse | SharedUse[]>();
  const all: SharedUse[] = [];
  const refs: SharedUse[] = [];
  for (const n of order) {
    for (const x of n.xattrs) {
      const h = pairHash(x);
      const b = buckets.get(h);
      let e: SharedUse | undefined;
      if (b === undefined) {
        e = { x, count: 0, offset: -1 };
        buckets.set(h, e);
        all.push(e);
      } else if (!Array.isArray(b)) {
        if (samePair(b.x, x)) e = b;
        else {
          e = { x, count: 0, offset: -1 };
          buckets.set(h, [b, e]);
          all.push(e);
        }
      } else {
        e = b.find((u) => samePair(u.x, x));
        if (e === undefined) {
          e = { x, count: 0, offset: -1 };
          b.push(e);
          all.push(e);
        }
      }
      e.count++;
      refs.push(e);
    }
  }
  // Canonical order of the shared ones: key descending, then value length descending, then value bytes
  // descending. Pairs used once never reach the table, so they need no sorting.
  const shared = all.filter((e) => e.count > 1);
  shared.sort((p, r) => {
    const c = compareBytes(r.x.key, p.x.key);
    if (c !== 0) return c;
    if (p.x.value.length !== r.x.value.length) return r.x.value.length - p.x.value.length;
    return compareBytes(r.x.value, p.x.value);
  });
  const table: WXattr[] = [];
  let offset = 0;
  for (const e of shared) {
    e.offset = offset;
    table.push(e.x);
    offset += xattrEntrySize(e.x);
  }
  let k = 0;
  for (const n of order) {
    let nShared = 0;
    for (const x of n.xattrs) {
      const e = refs[k++]!;
      if (e.offset >= 0 && nShared < EROFS_XATTR_LONG_PREFIX) {
        x.shared = e.offset;
        nShared++;
      } else {
        x.shared = -1;
      }
    }
  }
  return { table, size: offset };
}

/** xxHash32 (the kernel's lib/xxhash.c) of data[start..], used for the EROFS xattr name filter. */
export function xxh32(data: Uint8Array, seed: number, start = 0): number {
  const P1 = 2654435761;
  const P2 = 2246822519;
  const P3 = 3266489917;
  const P4 = 668265263;
  const P5 = 374761393;
  const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
  const le32 = (i: number) =>
    (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
  const round = (v: number, input: number) => Math.imul(rotl((v + Math.imul(input, P2)) >>> 0, 13), P1) >>> 0;
  const end = data.length;
  const len = end - start;
  let p = start;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) >>> 0;
    let v2 = (seed + P2) >>> 0;
    let v3 = seed >>> 0;
    let v4 = (seed - P1) >>> 0;
    do {
      v1 = round(v1, le32(p));
      v2 = round(v2, le32(p + 4));
      v3 = round(v3, le32(p + 8));
      v4 = round(v4, le32(p + 12));
      p += 16;
    } while (p <= end - 16);
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0;
  } else {
    h = (seed + P5) >>> 0;
  }
  h = (h + len) >>> 0;
  while (p + 4 <= end) {
    h = Math.imul(rotl((h + Math.imul(le32(p), P3)) >>> 0, 17), P4) >>> 0;
    p += 4;
  }
  while (p < end) {
    h = Math.imul(rotl((h + Math.imul(data[p]!, P5)) >>> 0, 11), P1) >>> 0;
    p++;
  }
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, P2) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, P3) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h;
}

function xattrNameFilter(n: WNode): number {
  let filter = 0;
  for (const x of n.xattrs) {
    const bit = xxh32(x.key, EROFS_XATTR_FILTER_SEED + x.index, x.prefixLen) & (EROFS_XATTR_FILTER_BITS - 1);
    filter = (filter | (1 << bit)) >>> 0;
  }
  return (EROFS_XATTR_FILTER_DEFAULT & ~filter) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// Output sinks: the same emit code measures (CountSink) and writes (BufferSink).

interface Sink {
  pos: number;
  bytes(b: Uint8Array): void;
  /** b[start..] */
  bytesFrom(b: Uint8Array, start: number): void;
  zeros(n: number): void;
  u8(v: number): void;
  u16(v: number): void;
  u32(v: number): void;
  /** A safe integer (negative ones in two's complement). */
  u64(v: number): void;
}

class CountSink implements Sink {
  pos = 0;
  bytes(x: Uint8Array): void {
    this.pos += x.length;
  }
  bytesFrom(b: Uint8Array, start: number): void {
    this.pos += b.length - start;
  }
  zeros(n: number): void {
    this.pos += n;
  }
  u8(): void {
    this.pos += 1;
  }
  u16(): void {
    this.pos += 2;
  }
  u32(): void {
    this.pos += 4;
  }
  u64(): void {
    this.pos += 8;
  }
}

class BufferSink implements Sink {
  pos = 0;
  readonly out: Uint8Array;
  private readonly view: DataView;
  constructor(size: number) {
    this.out = new Uint8Array(size);
    this.view = new DataView(this.out.buffer);
  }
  bytes(x: Uint8Array): void {
    if (x.length > 64) {
      this.out.set(x, this.pos);
      this.pos += x.length;
    } else this.bytesFrom(x, 0); // a loop beats set() on short arrays
  }
  bytesFrom(b: Uint8Array, start: number): void {
    const out = this.out;
    let pos = this.pos;
    for (let i = start; i < b.length; i++) out[pos++] = b[i]!;
    this.pos = pos;
  }
  zeros(n: number): void {
    this.pos += n; // the buffer starts zeroed
  }
  u8(v: number): void {
    this.out[this.pos++] = v & 0xff;
  }
  u16(v: number): void {
    this.view.setUint16(this.pos, v & U16_MAX, true);
    this.pos += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
  }
  u64(v: number): void {
    this.view.setUint32(this.pos, v >>> 0, true);
    this.view.setUint32(this.pos + 4, Math.floor(v / 0x100000000) >>> 0, true);
    this.pos += 8;
  }
}

function alignTo(s: Sink, to: number): void {
  const end = roundUp(s.pos, to);
  if (end > s.pos) s.zeros(end - s.pos);
}

// ---------------------------------------------------------------------------------------------------
// Layout and emit

/** Values only known after a full pass (forward references), measured by the first pass. */
interface Measured {
  inodesEnd: number;
  sharedXattrSize: number;
  nDataBlocks: number;
  size: number;
}

interface Plan {
  version: number;
  info: TreeInfo;
  shared: { table: WXattr[]; size: number };
}

interface NodeLayout {
  nBlocks: number;
  tail: number;
}

function dirSize(n: WNode): NodeLayout {
  let nBlocks = 0;
  let block = 0;
  for (const c of n.children) {
    const len = DIRENT_SIZE + c.name.length;
    if (block + len > EROFS_BLKSIZ) {
      nBlocks++;
      block = 0;
    }
    block += len;
  }
  if (block > EROFS_INLINE_TAIL_MAX) {
    nBlocks++;
    block = 0;
  }
  return { nBlocks, tail: block };
}

/** compute_erofs_inode_size(): data blocks and inline tail before padding decisions. */
function initialLayout(n: WNode): NodeLayout {
  const type = fileType(n.mode);
  if (type === S_IFDIR) return dirSize(n);
  if (type === S_IFLNK) return { nBlocks: 0, tail: n.payload?.length ?? 0 };
  if (type === S_IFREG && n.size > 0) {
    if (n.content !== undefined) {
      let nBlocks = Math.floor(n.size / EROFS_BLKSIZ);
      let tail = n.size % EROFS_BLKSIZ;
      if (tail > EROFS_INLINE_TAIL_MAX) {
        nBlocks++;
        tail = 0;
      }
      return { nBlocks, tail };
    }
    return { nBlocks: 0, tail: chunking(n.size).chunkCount * 4 };
  }
  return { nBlocks: 0, tail: 0 };
}

function fitsCompact(n: WNode, lay: NodeLayout, minMtime: Mtime): boolean {
  if (n.mtime.sec !== minMtime.sec || n.mtime.nsec !== minMtime.nsec) return false;
  if (n.nlink > U16_MAX || n.uid > U16_MAX || n.gid > U16_MAX) return false;
  const size = fileType(n.mode) === S_IFDIR ? lay.nBlocks * EROFS_BLKSIZ + lay.tail : n.size;
  return size <= U32_MAX;
}

/** compute_erofs_inode_padding_for_tail(): padding so an inline tail never straddles a block. */
function tailPadding(n: WNode, lay: NodeLayout, pos: number, inodeSize: number, xattrSize: number): number {
  const nonTail = inodeSize + xattrSize;
  if (fileType(n.mode) === S_IFLNK) {
    const total = nonTail + lay.tail;
    const posBlock = Math.floor(pos / EROFS_BLKSIZ);
    const endBlock = Math.floor((pos + total - 1) / EROFS_BLKSIZ);
    if (Math.floor(total / EROFS_BLKSIZ) > 0) {
      lay.nBlocks++;
      lay.tail = 0;
    }
    return posBlock !== endBlock ? roundUp(pos, EROFS_BLKSIZ) - pos : 0;
  }
  let remainder = EROFS_BLKSIZ - ((pos + nonTail) % EROFS_BLKSIZ);
  if (remainder < lay.tail) {
    const extra = roundUp(remainder, EROFS_SLOTSIZE);
    remainder = EROFS_BLKSIZ - ((pos + nonTail + extra) % EROFS_BLKSIZ);
    if (lay.tail <= remainder) return extra;
    lay.nBlocks++;
    lay.tail = 0;
    return roundUp(pos, EROFS_BLKSIZ) - pos;
  }
  return 0;
}

function direntType(n: WNode): number {
  switch (fileType(n.mode)) {
    case S_IFLNK:
      return EROFS_FT_SYMLINK;
    case S_IFDIR:
      return EROFS_FT_DIR;
    case S_IFREG:
      return EROFS_FT_REG_FILE;
    case S_IFBLK:
      return EROFS_FT_BLKDEV;
    case S_IFCHR:
      return EROFS_FT_CHRDEV;
    case S_IFSOCK:
      return EROFS_FT_SOCK;
    case S_IFIFO:
      return EROFS_FT_FIFO;
    default:
      return EROFS_FT_UNKNOWN;
  }
}

function emitDirentChunk(s: Sink, entries: WEntry[], align: number): void {
  let nameoff = entries.length * DIRENT_SIZE;
  for (const e of entries) {
    s.u64(e.node.nid);
    s.u16(nameoff);
    s.u8(direntType(e.node));
    s.u8(0);
    nameoff += e.name.length;
  }
  for (const e of entries) s.bytes(e.name);
  alignTo(s, align);
}

/** write_erofs_dentries(): full blocks (data area) and/or the inline tail (inode area). */
function emitDirents(s: Sink, n: WNode, lay: NodeLayout, blocks: boolean, tail: boolean): void {
  let block = 0;
  let written = 0;
  let first = 0;
  const kids = n.children;
  for (let i = 0; i < kids.length; i++) {
    const len = DIRENT_SIZE + kids[i]!.name.length;
    if (block + len > EROFS_BLKSIZ) {
      if (blocks) emitDirentChunk(s, kids.slice(first, i), EROFS_BLKSIZ);
      written++;
      block = 0;
      first = i;
    }
    block += len;
  }
  if (written < lay.nBlocks) {
    if (blocks) emitDirentChunk(s, kids.slice(first), EROFS_BLKSIZ);
    written++;
    block = 0;
    first = kids.length;
  }
  if (tail && block > 0) emitDirentChunk(s, kids.slice(first), 1);
}

function emitNullChunks(s: Sink, count: number): void {
  for (let i = 0; i < count; i++) s.u32(EROFS_NULL_ADDR);
}

/** The whole image; `m` holds the first pass's measurements (zeros while measuring). */
function emit(s: Sink, plan: Plan, m: Measured): Measured {
  const { info, shared } = plan;
  const root = info.order[0]!;
  const dataBlockStart = roundUp(m.inodesEnd + m.sharedXattrSize, EROFS_BLKSIZ);

  // composefs header
  s.u32(LCFS_EROFS_MAGIC);
  s.u32(LCFS_EROFS_VERSION);
  s.u32(info.hasAcl ? LCFS_EROFS_FLAGS_HAS_ACL : 0);
  s.u32(plan.version);
  s.zeros(CFS_HEADER_SIZE - (s.pos - 0)); // unused[4]
  s.zeros(EROFS_SUPER_OFFSET - s.pos);

  // superblock
  const sbStart = s.pos;
  s.u32(EROFS_SUPER_MAGIC_V1);
  s.u32(0); // checksum
  s.u32(EROFS_FEATURE_COMPAT_MTIME | EROFS_FEATURE_COMPAT_XATTR_FILTER);
  s.u8(EROFS_BLKSIZ_BITS);
  s.u8(0); // sb_extslots
  s.u16(root.nid);
  s.u64(info.order.length);
  s.u64(info.minMtime.sec);
  s.u32(info.minMtime.nsec);
  s.u32(dataBlockStart / EROFS_BLKSIZ + m.nDataBlocks);
  s.u32(Math.floor((EROFS_SUPER_OFFSET + EROFS_SUPER_SIZE) / EROFS_BLKSIZ)); // meta_blkaddr
  s.u32(Math.floor(m.inodesEnd / EROFS_BLKSIZ)); // xattr_blkaddr
  s.zeros(EROFS_SUPER_SIZE - (s.pos - sbStart));

  // inodes, breadth-first; nids are slot offsets from block 0
  const layouts = new Map<WNode, NodeLayout>();
  let currentEnd = dataBlockStart;
  let nDataBlocks = 0;
  for (const n of info.order) {
    const type = fileType(n.mode);
    const lay = initialLayout(n);
    const compact = fitsCompact(n, lay, info.minMtime);
    const inodeSize = compact ? INODE_COMPACT_SIZE : INODE_EXTENDED_SIZE;
    let nShared = 0;
    let unsharedSize = 0;
    for (const x of n.xattrs) {
      if (x.shared >= 0) nShared++;
      else unsharedSize += xattrEntrySize(x);
    }
    const xattrSize =
      nShared === 0 && unsharedSize === 0
        ? 0
        : roundUp(XATTR_IBODY_HEADER_SIZE + nShared * XATTR_SHARED_ID_SIZE + unsharedSize, XATTR_ALIGN);
    const icount = xattrSize === 0 ? 0 : (xattrSize - XATTR_IBODY_HEADER_SIZE) / 4 + 1;
    if (icount > U16_MAX) throw cannot(pathOf(n), `${icount} xattr slots`, `at most ${U16_MAX}`);

    alignTo(s, EROFS_SLOTSIZE);
    s.zeros(tailPadding(n, lay, s.pos, inodeSize, xattrSize));
    layouts.set(n, lay);
    n.nid = s.pos / EROFS_SLOTSIZE;
    nDataBlocks += lay.nBlocks;

    let layout = lay.tail > 0 ? EROFS_INODE_FLAT_INLINE : EROFS_INODE_FLAT_PLAIN;
    let size = 0;
    let chunkFormat = -1;
    let chunkCount = 0;
    if (type === S_IFDIR) size = lay.nBlocks * EROFS_BLKSIZ + lay.tail;
    else if (type === S_IFREG) {
      size = n.size;
      if (isPayloadFile(n)) {
        const c = chunking(n.size);
        chunkCount = c.chunkCount;
        layout = EROFS_INODE_CHUNK_BASED;
        chunkFormat = c.chunkBits - EROFS_BLKSIZ_BITS;
      }
    } else if (type === S_IFLNK) size = lay.nBlocks === 0 ? lay.tail : n.size;

    // i_u: block address, device number, or chunk format (low 16 bits of the same word)
    let iu = 0;
    if (type === S_IFCHR || type === S_IFBLK) iu = n.rdev;
    else if ((type === S_IFDIR || type === S_IFREG || type === S_IFLNK) && lay.nBlocks > 0) {
      iu = currentEnd / EROFS_BLKSIZ;
      currentEnd += EROFS_BLKSIZ * lay.nBlocks;
    }
    if (chunkFormat >= 0) iu = ((iu & 0xffff0000) | chunkFormat) >>> 0;

    const format =
      (layout << EROFS_I_DATALAYOUT_BIT) |
      ((compact ? EROFS_INODE_LAYOUT_COMPACT : EROFS_INODE_LAYOUT_EXTENDED) << EROFS_I_VERSION_BIT);
    if (compact) {
      s.u16(format);
      s.u16(icount);
      s.u16(n.mode);
      s.u16(n.nlink);
      s.u32(size);
      s.u32(0);
      s.u32(iu);
      s.u32(n.ino);
      s.u16(n.uid);
      s.u16(n.gid);
      s.u32(0);
    } else {
      s.u16(format);
      s.u16(icount);
      s.u16(n.mode);
      s.u16(0);
      s.u64(size);
      s.u32(iu);
      s.u32(n.ino);
      s.u32(n.uid);
      s.u32(n.gid);
      s.u64(n.mtime.sec);
      s.u32(n.mtime.nsec);
      s.u32(n.nlink);
      s.zeros(16);
    }

    if (xattrSize > 0) {
      if (n.filter < 0) n.filter = xattrNameFilter(n);
      s.u32(n.filter);
      s.u8(nShared);
      s.zeros(7);
      for (const x of n.xattrs) {
        if (x.shared >= 0) s.u32(((m.inodesEnd % EROFS_BLKSIZ) + x.shared) / 4);
      }
      for (const x of n.xattrs) if (x.shared < 0) emitXattr(s, x);
    }

    if (type === S_IFDIR) emitDirents(s, n, lay, false, true);
    else if (type === S_IFLNK) {
      if (lay.nBlocks === 0) s.bytes(n.payload ?? EMPTY);
    } else if (type === S_IFREG && lay.tail > 0) {
      if (n.content !== undefined) s.bytes(n.content.subarray(n.size - lay.tail));
      else emitNullChunks(s, chunkCount);
    }
  }
  alignTo(s, EROFS_SLOTSIZE);
  const inodesEnd = s.pos;

  for (const x of shared.table) emitXattr(s, x);
  const sharedXattrSize = s.pos - inodesEnd;
  alignTo(s, EROFS_BLKSIZ);

  // data blocks, in inode order
  for (const n of info.order) {
    const lay = layouts.get(n)!;
    emitDirents(s, n, lay, true, false);
    if (lay.nBlocks === 0) continue;
    const type = fileType(n.mode);
    if (type === S_IFREG) {
      if (n.content === undefined) {
        emitNullChunks(s, LCFS_MAX_NONINLINE_CHUNKS);
        continue;
      }
      // libcomposefs writes only the first block (content is at most 5000 bytes: one block + tail)
      s.bytes(n.content.subarray(0, Math.min(n.size, EROFS_BLKSIZ)));
      alignTo(s, EROFS_BLKSIZ);
    } else if (type === S_IFLNK) {
      const target = n.payload ?? EMPTY;
      s.bytes(target.subarray(0, Math.min(n.size, EROFS_BLKSIZ)));
      alignTo(s, EROFS_BLKSIZ);
    }
  }
  return { inodesEnd, sharedXattrSize, nDataBlocks, size: s.pos };
}

function emitXattr(s: Sink, x: WXattr): void {
  s.u8(x.key.length - x.prefixLen);
  s.u8(x.index);
  s.u16(x.value.length);
  s.bytesFrom(x.key, x.prefixLen);
  s.bytes(x.value);
  alignTo(s, XATTR_ALIGN);
}

/** Resolves the format version exactly as lcfs_write_to() does. */
function resolveVersion(root: WNode, opts: WriteOptions): number {
  let version = opts.version ?? 0;
  let maxVersion = opts.maxVersion ?? 1;
  for (const [name, v] of [
    ["version", version],
    ["maxVersion", maxVersion],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > LCFS_VERSION_MAX) {
      throw new UsageError(`Cannot write composefs image: ${name} ${v}, expected 0..${LCFS_VERSION_MAX}`, {
        [name]: v,
      });
    }
  }
  if (maxVersion < version) maxVersion = version;
  if (version < 1 && maxVersion >= 1 && hasWhiteout(root)) version = 1;
  return version;
}

/** The format version writeErofs() will record for `tree` with `opts` (whiteouts raise 0 to 1). */
export function effectiveVersion(tree: Inode, opts: WriteOptions = {}): number {
  return resolveVersion(cloneTree(tree), opts);
}

/** Encodes `tree` as a composefs EROFS image, byte-identical to libcomposefs 1.0.8. */
export function writeErofs(tree: Inode, opts: WriteOptions = {}): Uint8Array {
  const root = cloneTree(tree);
  const version = resolveVersion(root, opts);
  rewriteNode(root, root, version);
  setXattr(root, XATTR_OPAQUE, b("y"));
  addWhiteoutStubs(root);
  const info = computeTree(root);
  const plan: Plan = { version, info, shared: computeSharedXattrs(info.order) };

  const zero: Measured = { inodesEnd: 0, sharedXattrSize: 0, nDataBlocks: 0, size: 0 };
  const measured = emit(new CountSink(), plan, zero);
  const sink = new BufferSink(measured.size);
  const written = emit(sink, plan, measured);
  if (
    written.size !== measured.size ||
    written.inodesEnd !== measured.inodesEnd ||
    written.nDataBlocks !== measured.nDataBlocks
  ) {
    throw new Error("writeErofs: layout changed between the measuring and the writing pass");
  }
  return sink.out;
}
