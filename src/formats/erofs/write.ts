// Writes a composefs tree as a composefs EROFS image byte-identical to libcomposefs 1.0.8's
// lcfs_write_to(). The steps, one module each: the writer's view of the tree, validated, without copying
// it (write-tree.ts); the overlay rewrite (write-overlay.ts); breadth-first inode numbers and sorted
// xattrs (write-tree.ts); the xattr layout and shared table (write-xattrs.ts); the EROFS emit, measured
// then written into one buffer or streamed in chunks (write-emit.ts). The input tree is left unchanged.
// Pure and deterministic.

import type { Inode } from "../composefs/tree.ts";
import { type EmitPlan, emitImage, type MeasuredImage, measureImage } from "./write-emit.ts";
import {
  resolveVersion,
  rewriteForOverlay,
  type WriteOptions,
  XATTR_ACL_ACCESS,
  XATTR_ACL_DEFAULT,
} from "./write-overlay.ts";
import { computeTree, viewTree } from "./write-tree.ts";
import { planXattrs } from "./write-xattrs.ts";

export type { ChunkOut, MeasuredImage } from "./write-emit.ts";
export type { WriteOptions };

/** The format version writeErofs() will record for `tree` with `opts` (whiteouts raise 0 to 1). */
export function effectiveVersion(tree: Inode, opts: WriteOptions = {}): number {
  return resolveVersion(viewTree(tree), opts);
}

/** Encodes `tree` as a composefs EROFS image, byte-identical to libcomposefs 1.0.8. */
export function writeErofs(tree: Inode, opts: WriteOptions = {}): Uint8Array {
  return emitImage(plan(tree, opts));
}

/**
 * writeErofs() up to the writing pass: the tree validated, rewritten and measured. Its writeTo() then
 * streams the same bytes in chunks, so a caller writing a file needs no buffer of the image's size.
 */
export function measureErofs(tree: Inode, opts: WriteOptions = {}): MeasuredImage {
  return measureImage(plan(tree, opts));
}

function plan(tree: Inode, opts: WriteOptions): EmitPlan {
  const root = viewTree(tree);
  const version = resolveVersion(root, opts);
  rewriteForOverlay(root, version);
  const info = computeTree(root, XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT);
  return { version, info, xattrs: planXattrs(info.order) };
}
