// The overlay rewrite of libcomposefs 1.0.8's lcfs_write_to(), on the writer's view (write-tree.ts):
// trusted.overlay.* xattrs escaped as trusted.overlay.overlay.*, metacopy and redirect xattrs for payload
// files, whiteouts (char 0:0) turned into escaped whiteout files with their directory marked, an opaque
// root, "." and "..", the whiteout stubs 00..ff in the root, and the format version the whiteouts ask for.
// Its xattr budget counts only the xattrs it adds, as on libcomposefs's copy of the tree. Pure.

import { FormatError, q, UsageError } from "../../base/errors.ts";
import { utf8 } from "../bytes.ts";
import {
  fileType,
  newInode,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  showBytes,
  XATTR_BUDGET_HEADER,
  XATTR_BUDGET_PER_ENTRY,
  XATTR_EXTERNAL_BUDGET,
  XATTR_NAME_MAX,
  XATTR_VALUE_MAX,
} from "../composefs/tree.ts";
import {
  FS_VERITY_HASH_ALG_SHA256,
  LCFS_MAX_NONINLINE_CHUNKS,
  LCFS_VERSION_MAX,
  OVL_METACOPY,
  OVL_METACOPY_HEADER_SIZE,
} from "./layout.ts";
import { chunkBitsOf, chunkCountOf } from "./write-emit.ts";
import {
  cannot,
  findEntry,
  getXattr,
  insertEntry,
  isPayloadFile,
  pathOf,
  sameBytes,
  startsWith,
  WNode,
} from "./write-tree.ts";

export interface WriteOptions {
  /** Minimum composefs format version (default 0, as ostree). */
  version?: number;
  /** Maximum format version (default 1, as ostree): whiteouts raise the version up to this. */
  maxVersion?: number;
}

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
export const XATTR_ACL_ACCESS = b("system.posix_acl_access");
export const XATTR_ACL_DEFAULT = b("system.posix_acl_default");
const DOT = b(".");
const DOTDOT = b("..");
const SLASH = 0x2f;
const EMPTY = new Uint8Array(0);
const VALUE_Y = b("y");
const VALUE_X = b("x");
/** The whiteout stubs' names "00".."ff". */
const STUB_NAMES = Array.from({ length: 256 }, (_, i) => b(i.toString(16).padStart(2, "0")));

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
  const xattrs = node.ownXattrs();
  let replacedValue = -1;
  let i = xattrs.length - 1;
  while (i >= 0 && !sameBytes(xattrs[i]!.key, key)) i--;
  if (i >= 0) {
    const replaced = xattrs[i]!;
    xattrs.splice(i, 1);
    replacedValue = replaced.value.length;
    node.budget =
      xattrs.length > 0
        ? node.budget - (XATTR_BUDGET_PER_ENTRY + replaced.key.length + replaced.value.length)
        : 0;
  }
  let entry = XATTR_BUDGET_PER_ENTRY + key.length + value.length;
  if (xattrs.length === 0) entry += XATTR_BUDGET_HEADER;
  const next = node.budget + entry;
  if (next < 0 && replacedValue >= 0) {
    // The add brings the budget back to 0 only if the old value was at most this long.
    const most = replacedValue + next;
    const path = pathOf(node);
    const written = startsWith(key, OVERLAY_ESCAPE_PREFIX)
      ? ` (written as ${q(showBytes(unescaped(key)))})`
      : "";
    throw new FormatError(
      `Cannot write composefs image for ${q(path)}: replacing its xattr ${q(showBytes(key))}${written} of ` +
        `${replacedValue} bytes takes the writer's xattr budget below 0, which libcomposefs 1.0.8 ` +
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
  xattrs.push({ key, value });
  node.budget = next;
}

/** trusted.overlay.X for trusted.overlay.overlay.X (how the kernel shows an escaped name). */
function unescaped(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length - OVERLAY_ESCAPE_PREFIX.length + OVERLAY_PREFIX.length);
  out.set(OVERLAY_PREFIX);
  out.set(key.subarray(OVERLAY_ESCAPE_PREFIX.length), OVERLAY_PREFIX.length);
  return out;
}

/** trusted.overlay.overlay.X for an own trusted.overlay.X, so overlayfs shows it rather than obeys it. */
function escaped(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length - OVERLAY_PREFIX.length + OVERLAY_ESCAPE_PREFIX.length);
  out.set(OVERLAY_ESCAPE_PREFIX);
  out.set(key.subarray(OVERLAY_PREFIX.length), OVERLAY_ESCAPE_PREFIX.length);
  return out;
}

/** The metacopy xattr value: struct ovl_metacopy with the fs-verity digest, or empty without one. */
function metacopy(digest: Uint8Array | undefined): Uint8Array {
  if (digest === undefined) return EMPTY;
  const meta = new Uint8Array(OVL_METACOPY_HEADER_SIZE + digest.length);
  meta[OVL_METACOPY.len] = meta.length;
  meta[OVL_METACOPY.digestAlgo] = FS_VERITY_HASH_ALG_SHA256;
  meta.set(digest, OVL_METACOPY_HEADER_SIZE);
  return meta;
}

function redirect(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + payload.length);
  out[0] = SLASH;
  out.set(payload, 1);
  return out;
}

const isWhiteout = (n: WNode): boolean => fileType(n.mode) === S_IFCHR && n.rdev === 0;

/** lcfs_write_update_version(): a whiteout needs format version 1 when the caller allows it. */
function hasWhiteout(n: WNode): boolean {
  if (isWhiteout(n)) return true;
  for (const c of n.entries) if (!c.link && hasWhiteout(c.node)) return true;
  return false;
}

/** Resolves the format version exactly as lcfs_write_to() does. */
export function resolveVersion(root: WNode, opts: WriteOptions): number {
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

/** rewrite_tree_node_for_erofs(): validate, add overlay xattrs, add "." and "..", recurse. */
function rewriteNode(node: WNode, parent: WNode, version: number): void {
  const inode = node.inode;
  const payloadFile = isPayloadFile(node);
  if (payloadFile) {
    const chunkCount = chunkCountOf(node.size, chunkBitsOf(node.size));
    if (chunkCount > LCFS_MAX_NONINLINE_CHUNKS) {
      throw cannot(
        pathOf(node),
        `a ${node.size}-byte file needs ${chunkCount} chunks (File too large)`,
        `at most ${LCFS_MAX_NONINLINE_CHUNKS} chunks (${2 ** 53} bytes)`,
      );
    }
  }
  const type = fileType(node.mode);
  if (type === S_IFREG && inode.content !== undefined && inode.content.length !== node.size) {
    throw cannot(
      pathOf(node),
      `${inode.content.length} bytes of inline content`,
      `size (${node.size}) bytes`,
    );
  }
  const own = node.xattrs;
  for (let i = 0; i < own.length; i++) {
    if (startsWith(own[i]!.key, OVERLAY_PREFIX)) {
      const xattrs = node.ownXattrs();
      xattrs[i] = { key: escaped(xattrs[i]!.key), value: xattrs[i]!.value };
    }
  }
  if (payloadFile) {
    setXattr(node, XATTR_METACOPY, metacopy(inode.digest));
    if (inode.payload !== undefined && inode.payload.length > 0) {
      setXattr(node, XATTR_REDIRECT, redirect(inode.payload));
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
      setXattr(dir, XATTR_ESCAPED_OPAQUE, VALUE_X);
      setXattr(dir, XATTR_USER_OPAQUE, VALUE_X);
    }
  }
  if (type === S_IFDIR) {
    insertEntry(node, { name: DOT, node, link: true });
    insertEntry(node, { name: DOTDOT, node: parent, link: true });
    for (const c of node.entries) if (!c.link) rewriteNode(c.node, node, version);
  }
}

/** add_overlay_whiteouts(): char 0:0 stubs 00..ff in the root, except names already present. */
function addWhiteoutStubs(root: WNode): void {
  const selinux = getXattr(root, XATTR_SELINUX);
  const { uid, gid, mtime } = root.inode;
  for (const name of STUB_NAMES) {
    if (findEntry(root, name) >= 0) continue;
    const inode = newInode(S_IFCHR | 0o644, { uid, gid, mtime: { sec: mtime.sec, nsec: mtime.nsec } });
    const stub = new WNode(inode, name, root, inode.mode, 0);
    if (selinux !== undefined) setXattr(stub, XATTR_SELINUX, selinux);
    insertEntry(root, { name, node: stub, link: false });
  }
}

/** The whole overlay rewrite of the view rooted at `root`, for format `version` (resolveVersion). */
export function rewriteForOverlay(root: WNode, version: number): void {
  rewriteNode(root, root, version);
  setXattr(root, XATTR_OPAQUE, VALUE_Y);
  addWhiteoutStubs(root);
}
