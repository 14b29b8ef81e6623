// ostree's object formats over the GVariant codec: commit, dirtree, dirmeta, detached metadata
// (`.commitmeta`), the content-object headers (bare-user `user.ostreemeta`, archive `.filez` framing) and
// the content checksum. Pure: bytes in, typed values out, and back to identical bytes. ostree stores
// uid/gid/mode, the commit timestamp and archive sizes big-endian inside little-endian GVariant
// containers; the values here are the real numbers. Reading repositories is repo.ts's job.

import { FormatError, q } from "../../base/errors.ts";
import { createSha256 } from "../../base/hash.ts";
import { Reader, Writer } from "../bytes.ts";
import {
  arrayLength,
  type DictEntries,
  decode,
  encode,
  type GVariantValue,
  lookup,
  lookupVardict,
  tupleMemberBytes,
  Variant,
} from "../gvariant.ts";

export const COMMIT_TYPE = "(a{sv}aya(say)sstayay)";
export const DIRTREE_TYPE = "(a(say)a(sayay))";
export const DIRMETA_TYPE = "(uuua(ayay))";
/** bare-user `user.ostreemeta` xattr. */
export const FILEMETA_TYPE = "(uuua(ayay))";
/** The uncompressed content header hashed into every content checksum. */
export const FILE_HEADER_TYPE = "(uuuusa(ayay))";
/** The header at the start of an archive-mode `.filez` object. */
export const ZLIB_FILE_HEADER_TYPE = "(tuuuusa(ayay))";
export const COMMITMETA_TYPE = "a{sv}";

export const COMPOSEFS_DIGEST_KEY = "ostree.composefs.digest.v0";
export const ED25519_SIGNATURE_KEY = "ostree.sign.ed25519";
/** The commit's version string (`ostree commit --add-metadata-string=version=…`, `s`). */
export const OSTREE_VERSION_KEY = "version";

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFDIR = 0o040000;

/** An extended attribute as ostree stores it: the name is a bytestring WITH its trailing NUL. */
export interface Xattr {
  name: Uint8Array;
  value: Uint8Array;
}

export type MetadataEntries = DictEntries;

export interface Commit {
  metadata: MetadataEntries;
  /** 32-byte parent checksum, or empty for a root commit. */
  parent: Uint8Array;
  related: Array<[string, Uint8Array]>;
  subject: string;
  body: string;
  /** Seconds since the epoch (stored big-endian). */
  timestamp: bigint;
  rootDirtree: Uint8Array;
  rootDirmeta: Uint8Array;
}

export interface DirtreeFile {
  name: string;
  checksum: Uint8Array;
}
export interface DirtreeDir {
  name: string;
  dirtree: Uint8Array;
  dirmeta: Uint8Array;
}
export interface Dirtree {
  files: DirtreeFile[];
  dirs: DirtreeDir[];
}

/** dirmeta and bare-user file metadata share this shape. */
export interface FileMeta {
  uid: number;
  gid: number;
  /** Full st_mode, type bits included. */
  mode: number;
  xattrs: Xattr[];
}

export interface FileHeader extends FileMeta {
  /** Symlink target; "" for regular files. */
  symlinkTarget: string;
  /** Must be 0; ostree refuses anything else ("Corrupted archive file; invalid rdev"). */
  rdev: number;
}

export interface ZlibFileHeader extends FileHeader {
  /** Uncompressed content size. */
  size: bigint;
}

const swap32 = (v: number) =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
const swap64 = (v: bigint) => {
  let r = 0n;
  let x = v;
  for (let k = 0; k < 8; k++) {
    r = (r << 8n) | (x & 0xffn);
    x >>= 8n;
  }
  return r;
};

const xattrsFrom = (v: GVariantValue): Xattr[] =>
  (v as GVariantValue[]).map((e) => {
    const [name, value] = e as [Uint8Array, Uint8Array];
    return { name, value };
  });
const xattrsTo = (x: Xattr[]): GVariantValue => x.map((e) => [e.name, e.value]);

// --- commit -------------------------------------------------------------------------------------------

export function decodeCommit(bytes: Uint8Array): Commit {
  const [metadata, parent, related, subject, body, ts, tree, meta] = decode(COMMIT_TYPE, bytes) as [
    MetadataEntries,
    Uint8Array,
    Array<[string, Uint8Array]>,
    string,
    string,
    bigint,
    Uint8Array,
    Uint8Array,
  ];
  return {
    metadata,
    parent,
    related,
    subject,
    body,
    timestamp: swap64(ts),
    rootDirtree: tree,
    rootDirmeta: meta,
  };
}

export function encodeCommit(c: Commit): Uint8Array {
  return encode(COMMIT_TYPE, [
    c.metadata,
    c.parent,
    c.related,
    c.subject,
    c.body,
    swap64(c.timestamp),
    c.rootDirtree,
    c.rootDirmeta,
  ]);
}

/** ostree_commit_get_content_checksum: sha256(root dirtree ‖ root dirmeta) — `ContentChecksum` in `ostree show`. */
export function commitContentChecksum(c: Commit): Uint8Array {
  return createSha256().update(c.rootDirtree).update(c.rootDirmeta).digest();
}

/** The commit's `ostree.composefs.digest.v0` (32 bytes), or undefined when absent or not an `ay` of 32. */
export function composefsDigest(c: Commit): Uint8Array | undefined {
  const v = lookup(c.metadata, COMPOSEFS_DIGEST_KEY, "ay");
  return v && (v.value as Uint8Array).length === 32 ? (v.value as Uint8Array) : undefined;
}

// --- detached metadata ----------------------------------------------------------------------------------

/** `.commitmeta` → entries. Non-normal data reads as GLib reads it (a truncated file is an empty dict). */
export function decodeCommitmeta(bytes: Uint8Array): MetadataEntries {
  return decode(COMMITMETA_TYPE, bytes) as MetadataEntries;
}

export function encodeCommitmeta(entries: MetadataEntries): Uint8Array {
  return encode(COMMITMETA_TYPE, entries);
}

/** The `ostree.sign.ed25519` signatures (`aay`) of detached metadata; [] when absent or of another type. */
export function ed25519Signatures(entries: MetadataEntries): Uint8Array[] {
  const v = lookup(entries, ED25519_SIGNATURE_KEY, "aay");
  return v ? (v.value as Uint8Array[]) : [];
}

/**
 * ed25519Signatures() straight from the `.commitmeta` bytes, as ostree's g_variant_lookup_value() finds
 * them: only the first `ostree.sign.ed25519` entry's value is decoded, no other entry is (the file is
 * unverified until a signature in it verifies, and an eager decode of crafted framing is unbounded).
 */
export function commitmetaSignatures(bytes: Uint8Array): Uint8Array[] {
  return (lookupVardict(bytes, ED25519_SIGNATURE_KEY, "aay") as Uint8Array[] | undefined) ?? [];
}

/**
 * Sets (replaces or appends) an entry, keeping the order of the others — what ostree does when it
 * adds a signature: g_variant_dict round-trips through a hash table, so callers wanting ostree's exact
 * order for several keys should build the list themselves.
 */
export function setEntry(entries: MetadataEntries, key: string, value: Variant): MetadataEntries {
  const out = entries.filter(([k]) => k !== key);
  out.push([key, value]);
  return out;
}

export const ayay = (sigs: Uint8Array[]) => new Variant("aay", sigs);

// --- dirtree / dirmeta ----------------------------------------------------------------------------------

export function decodeDirtree(bytes: Uint8Array): Dirtree {
  const [files, dirs] = decode(DIRTREE_TYPE, bytes) as [
    Array<[string, Uint8Array]>,
    Array<[string, Uint8Array, Uint8Array]>,
  ];
  return {
    files: files.map(([name, checksum]) => ({ name, checksum })),
    dirs: dirs.map(([name, dirtree, dirmeta]) => ({ name, dirtree, dirmeta })),
  };
}

/** How many files and subdirectories a dirtree's framing lists, nothing decoded (g_variant_n_children). */
export function dirtreeEntryCount(bytes: Uint8Array): number {
  const [files, dirs] = tupleMemberBytes(DIRTREE_TYPE, bytes) as [Uint8Array, Uint8Array];
  return arrayLength("a(say)", files) + arrayLength("a(sayay)", dirs);
}

export function encodeDirtree(t: Dirtree): Uint8Array {
  return encode(DIRTREE_TYPE, [
    t.files.map((f) => [f.name, f.checksum]),
    t.dirs.map((d) => [d.name, d.dirtree, d.dirmeta]),
  ]);
}

function decodeMeta(type: string, bytes: Uint8Array): FileMeta {
  const [uid, gid, mode, xattrs] = decode(type, bytes) as [number, number, number, GVariantValue];
  return { uid: swap32(uid), gid: swap32(gid), mode: swap32(mode), xattrs: xattrsFrom(xattrs) };
}

function encodeMeta(type: string, m: FileMeta): Uint8Array {
  return encode(type, [swap32(m.uid), swap32(m.gid), swap32(m.mode), xattrsTo(m.xattrs)]);
}

export const decodeDirmeta = (bytes: Uint8Array): FileMeta => decodeMeta(DIRMETA_TYPE, bytes);
export const encodeDirmeta = (m: FileMeta): Uint8Array => encodeMeta(DIRMETA_TYPE, m);
/** bare-user `user.ostreemeta`. */
export const decodeFilemeta = (bytes: Uint8Array): FileMeta => decodeMeta(FILEMETA_TYPE, bytes);
export const encodeFilemeta = (m: FileMeta): Uint8Array => encodeMeta(FILEMETA_TYPE, m);

// --- content headers -------------------------------------------------------------------------------------

export function decodeFileHeader(bytes: Uint8Array): FileHeader {
  const [uid, gid, mode, rdev, target, xattrs] = decode(FILE_HEADER_TYPE, bytes) as [
    number,
    number,
    number,
    number,
    string,
    GVariantValue,
  ];
  return {
    uid: swap32(uid),
    gid: swap32(gid),
    mode: swap32(mode),
    rdev: swap32(rdev),
    symlinkTarget: target,
    xattrs: xattrsFrom(xattrs),
  };
}

export function encodeFileHeader(h: Omit<FileHeader, "rdev"> & { rdev?: number }): Uint8Array {
  return encode(FILE_HEADER_TYPE, [
    swap32(h.uid),
    swap32(h.gid),
    swap32(h.mode),
    swap32(h.rdev ?? 0),
    h.symlinkTarget,
    xattrsTo(h.xattrs),
  ]);
}

export function decodeZlibFileHeader(bytes: Uint8Array): ZlibFileHeader {
  const [size, uid, gid, mode, rdev, target, xattrs] = decode(ZLIB_FILE_HEADER_TYPE, bytes) as [
    bigint,
    number,
    number,
    number,
    number,
    string,
    GVariantValue,
  ];
  return {
    size: swap64(size),
    uid: swap32(uid),
    gid: swap32(gid),
    mode: swap32(mode),
    rdev: swap32(rdev),
    symlinkTarget: target,
    xattrs: xattrsFrom(xattrs),
  };
}

/** ostree's length-prefixed framing: u32be size, 4 NUL bytes (8-byte alignment), then the variant. */
export function lenPrefixed(variant: Uint8Array): Uint8Array {
  return new Writer(variant.length + 8).u32be(variant.length).zeros(4).bytes(variant).finish();
}

/** Splits a length-prefixed header off `bytes` (ostree_content_stream_parse); the rest is the payload. */
export function splitLenPrefixed(bytes: Uint8Array, what: string): { header: Uint8Array; rest: Uint8Array } {
  const r = new Reader(bytes, what);
  const size = r.u32be("header size");
  if (size === 0 || size > bytes.length) {
    throw new FormatError(`Cannot read ${what}: file header size ${size}, expected 1..${bytes.length}`);
  }
  r.skip(4, "header padding");
  const header = r.bytesN(size, "file header");
  return { header, rest: bytes.subarray(r.pos) };
}

/** strcmp() over NUL-terminated byte names (a missing NUL ends the name at the array's end). */
export function strcmpBytes(a: Uint8Array, b: Uint8Array): number {
  for (let k = 0; ; k++) {
    const x = k < a.length ? a[k]! : 0;
    const y = k < b.length ? b[k]! : 0;
    if (x !== y) return x - y;
    if (x === 0) return 0;
  }
}

/** ostree's xattr canonical order: sorted by name (strcmp), stable. */
export function canonicalXattrs(x: Xattr[]): Xattr[] {
  return [...x].sort((a, b) => strcmpBytes(a.name, b.name));
}

/** A content object's metadata as hashed: type, ownership, mode, xattrs and (for symlinks) the target. */
export interface ContentMeta extends FileMeta {
  symlinkTarget: string;
}

/**
 * ostree's content checksum (ostree_checksum_file_from_input): sha256 over the length-prefixed
 * `(uuuusa(ayay))` header — xattrs sorted — followed by the content of a regular file.
 */
export function contentChecksum(meta: ContentMeta, content: Uint8Array | undefined): Uint8Array {
  const isLink = (meta.mode & S_IFMT) === S_IFLNK;
  const header = encodeFileHeader({
    uid: meta.uid,
    gid: meta.gid,
    mode: meta.mode,
    symlinkTarget: isLink ? meta.symlinkTarget : "",
    xattrs: canonicalXattrs(meta.xattrs),
  });
  const h = createSha256().update(lenPrefixed(header));
  if (!isLink && content) h.update(content);
  return h.digest();
}

// --- structure checks (ostree_validate_structureof_*) ------------------------------------------------------

const HEX64 = /^[0-9a-f]{64}$/;
export const isChecksum = (s: string): boolean => HEX64.test(s);

/** The extension of a loose object's file (`ostree_loose_path`); `filez` is an archive repo's content. */
export type LooseObjectExt = "commit" | "commitmeta" | "dirtree" | "dirmeta" | "file" | "filez";

/**
 * Where a loose object lives relative to the repository's `objects/` (`_ostree_loose_path`):
 * `<2 hex>/<62 hex>.<ext>`. Without `ext`, the same split names a file of composefs's digest store
 * (libcomposefs `digest_to_path`). `checksum` must be 64 lowercase hex digits (FormatError otherwise).
 */
export function loosePath(checksum: string, ext?: LooseObjectExt): string {
  if (!isChecksum(checksum)) {
    throw new FormatError(`Cannot name an object: ${q(checksum)}, expected 64 lowercase hex digits`, {
      checksum,
    });
  }
  return `${checksum.slice(0, 2)}/${checksum.slice(2)}${ext === undefined ? "" : `.${ext}`}`;
}

function csum(b: Uint8Array, what: string, where: string): void {
  if (b.length !== 32) {
    throw new FormatError(`Cannot use ${where}: ${what} is ${b.length} bytes, expected a 32-byte checksum`);
  }
}

/** ot_util_filename_validate, plus refusing "" (which ostree never writes). */
export function validateFilename(name: string, where: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new FormatError(
      `Cannot use ${where}: file name ${JSON.stringify(name)}, expected a single path component`,
    );
  }
}

export function validateCommit(c: Commit, where: string): void {
  for (const [k] of c.metadata) {
    if (k === "") throw new FormatError(`Cannot use ${where}: empty metadata key, expected a name`);
  }
  if (c.parent.length) csum(c.parent, "parent", where);
  csum(c.rootDirtree, "root dirtree", where);
  csum(c.rootDirmeta, "root dirmeta", where);
}

export function validateDirtree(t: Dirtree, where: string): void {
  for (const f of t.files) {
    validateFilename(f.name, where);
    csum(f.checksum, `checksum of ${JSON.stringify(f.name)}`, where);
  }
  for (const d of t.dirs) {
    validateFilename(d.name, where);
    csum(d.dirtree, `dirtree of ${JSON.stringify(d.name)}`, where);
    csum(d.dirmeta, `dirmeta of ${JSON.stringify(d.name)}`, where);
  }
}

const PERM_BITS = 0o7777;

/** _ostree_validate_structureof_xattrs: names non-empty, sorted, unique. */
export function validateXattrs(x: Xattr[], where: string): void {
  x.forEach((e, k) => {
    if (e.name.length === 0 || e.name[0] === 0) {
      throw new FormatError(
        `Cannot use ${where}: xattr ${k} has an empty name, expected a NUL-terminated name`,
      );
    }
    if (k > 0 && strcmpBytes(x[k - 1]!.name, e.name) >= 0) {
      throw new FormatError(
        `Cannot use ${where}: xattr ${k} is out of order or duplicated, expected names sorted and unique`,
      );
    }
  });
}

export function validateDirmeta(m: FileMeta, where: string): void {
  if ((m.mode & S_IFMT) !== S_IFDIR || (m.mode & ~(S_IFMT | PERM_BITS)) !== 0) {
    throw new FormatError(`Cannot use ${where}: mode 0${m.mode.toString(8)}, expected a directory mode`);
  }
  validateXattrs(m.xattrs, where);
}

export function validateFileMode(mode: number, where: string): void {
  const type = mode & S_IFMT;
  if ((type !== S_IFREG && type !== S_IFLNK) || (mode & ~(S_IFMT | PERM_BITS)) !== 0) {
    throw new FormatError(
      `Cannot use ${where}: mode 0${mode.toString(8)}, expected a regular file or symlink mode`,
    );
  }
}

/** Name of an xattr as text (bytes before the first NUL; Latin-1 for non-UTF-8 never occurs in practice). */
export function xattrName(x: Xattr): string {
  const end = x.name.indexOf(0);
  return new TextDecoder().decode(end < 0 ? x.name : x.name.subarray(0, end));
}
