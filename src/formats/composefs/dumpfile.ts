// Parser for the composefs-dump(5) text format into a composefs tree, accepting exactly what
// `mkcomposefs --from-file` of libcomposefs 1.0.8 accepts (lenient by default, CFS_PARSE_STRICT-like with
// `strict`), except inputs for which mkcomposefs's output is undefined or silently wrong (a digest whose
// first 64 characters are not all hex, an unparsable GID/RDEV after a non-zero UID, a hardlink to a
// directory): those are rejected, deliberately (README.md, "mkcomposefs"). A hardlink cycle both reject.
// Every error is a FormatError naming the line and field. The printer lives in dump-print.ts. Pure.

import { FormatError, q } from "../../base/errors.ts";
import { concat, utf8 } from "../bytes.ts";
import {
  addChild,
  compareBytes,
  DIGEST_SIZE,
  type Dirent,
  fileType,
  INLINE_CONTENT_MAX,
  type Inode,
  isDir,
  lookupChild,
  MAX_NAME_LENGTH,
  type Mtime,
  newInode,
  PATH_MAX,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  showBytes,
  VALID_FILE_TYPES,
  XATTR_EXTERNAL_BUDGET,
  XATTR_NAME_MAX,
  XATTR_VALUE_MAX,
  type Xattr,
  xattrBudgetUse,
} from "./tree.ts";

export interface ParseOptions {
  /** Like CFS_PARSE_STRICT=1: trailing newline required, rdev only on devices, symlink SIZE must match. */
  strict?: boolean;
  /** Name of the input for error messages. */
  path?: string;
}

/** The fixed fields of a line, in order (composefs-dump(5)). */
export const DUMP_FIELDS = [
  "PATH",
  "SIZE",
  "MODE",
  "NLINK",
  "UID",
  "GID",
  "RDEV",
  "MTIME",
  "PAYLOAD",
  "CONTENT",
  "DIGEST",
] as const;
type Field = (typeof DUMP_FIELDS)[number] | "XATTR" | "LINE";

/** Indexes into DUMP_FIELDS, and the reused field-boundary arrays of parseLine(). */
const F_SIZE = 1;
const F_MODE = 2;
const F_NLINK = 3;
const F_UID = 4;
const F_GID = 5;
const F_RDEV = 6;
const F_MTIME = 7;
const F_PAYLOAD = 8;
const F_CONTENT = 9;
const F_DIGEST = 10;
const FIELD_STARTS = new Int32Array(DUMP_FIELDS.length);
const FIELD_ENDS = new Int32Array(DUMP_FIELDS.length);

/** mkcomposefs caps the xattr part of a line (its duplicate check is quadratic). */
export const MAX_XATTR_TEXT = 0xffff;
/** Largest regular-file size libcomposefs can describe: 1024 chunks of 2^43 bytes. */
export const MAX_FILE_SIZE = 2 ** 53;
const MAX_FILE_SIZE_BIG = BigInt(MAX_FILE_SIZE);

const NL = 0x0a;
const SP = 0x20;
const BACKSLASH = 0x5c;
const U64_MAX = (1n << 64n) - 1n;

/** Thrown inside one line; turned into a FormatError with the line number by the caller. */
class FieldError {
  constructor(
    readonly field: Field,
    readonly observed: string,
    readonly expected: string,
  ) {}
}

function show(b: Uint8Array, max = 80): string {
  const s = showBytes(b);
  return q(s.length > max ? `${s.slice(0, max)}…` : s);
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Undoes the dumpfile escapes: \\ \n \r \t \xHH. Without a backslash the field itself is returned. */
function unescapeField(field: Field, s: Uint8Array): Uint8Array {
  let backslash = s.indexOf(BACKSLASH);
  if (backslash < 0) return s;
  // Exact output size first (\xHH is 4 bytes for 1, the others 2 for 1), so one array is allocated.
  let size = s.length;
  while (backslash >= 0 && backslash + 1 < s.length) {
    const e = s[backslash + 1];
    const skip = e === 0x78 ? 4 : 2;
    size -= skip - 1;
    backslash = s.indexOf(BACKSLASH, backslash + skip);
  }
  const out = new Uint8Array(Math.max(size, 0));
  let n = 0;
  for (let i = 0; i < s.length; ) {
    const c = s[i++]!;
    if (c !== BACKSLASH) {
      out[n++] = c;
      continue;
    }
    if (i >= s.length)
      throw new FieldError(field, `${show(s)} ends in a lone backslash`, "a character after '\\'");
    const e = s[i++]!;
    if (e === BACKSLASH) out[n++] = BACKSLASH;
    else if (e === 0x6e) out[n++] = 0x0a;
    else if (e === 0x72) out[n++] = 0x0d;
    else if (e === 0x74) out[n++] = 0x09;
    else if (e === 0x78) {
      if (i + 2 > s.length)
        throw new FieldError(field, `${show(s)} has a truncated \\x escape`, "two hex digits");
      const h = hexDigit(s[i]!);
      const l = hexDigit(s[i + 1]!);
      if (h < 0 || l < 0) {
        throw new FieldError(field, `${show(s)} has invalid hex digits after \\x`, "two hex digits");
      }
      out[n++] = (h << 4) | l;
      i += 2;
    } else {
      throw new FieldError(
        field,
        `${show(s)} has unsupported escape \\${String.fromCharCode(e)}`,
        "one of \\\\ \\n \\r \\t \\xHH",
      );
    }
  }
  return n === out.length ? out : out.slice(0, n);
}

/**
 * unescapeField() for what the tree keeps (payloads, contents, xattr names and values): always bytes of
 * its own, never a view into the input, so the caller can drop the dumpfile text once it is parsed.
 */
function unescapeOwned(field: Field, s: Uint8Array): Uint8Array {
  const out = unescapeField(field, s);
  return out === s ? s.slice() : out;
}

/**
 * unescapeField() then cString() of a field of a line, which holds no NUL (parseLine refuses one): only an
 * escape (\x00) can bring a NUL, so a field without escapes needs no scan. `own` as unescapeOwned().
 */
function unescapeCString(field: Field, s: Uint8Array, own: boolean): Uint8Array {
  const out = unescapeField(field, s);
  if (out !== s) return cString(out);
  return own ? s.slice() : s;
}

/** libcomposefs keeps paths, payloads, digests and xattr names as C strings: they end at a NUL. */
function cString(b: Uint8Array): Uint8Array {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

/** Up to this many digits a value stays below 2^53 (octal 17, decimal 15): plain numbers suffice. */
const FAST_DIGITS = 15;

/**
 * The common case of parseInteger() without BigInt: s[start..end) is 1..15 digits and nothing else.
 * Returns -1 for anything else (signs, spaces, more digits, junk), which parseInteger() then handles.
 */
function plainInteger(s: Uint8Array, start: number, end: number, base: 8 | 10): number {
  if (end <= start || end - start > FAST_DIGITS) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = s[i]! - 0x30;
    if (d < 0 || d >= base) return -1;
    v = v * base + d;
  }
  return v;
}

/** parseInteger() truncated to 32 bits (the C code stores these fields in uint32_t). */
function parseU32(field: Field, s: Uint8Array, base: 8 | 10): number {
  const v = plainInteger(s, 0, s.length, base);
  return v >= 0 ? v % 0x100000000 : u32(parseInteger(field, s, base));
}

/** strtoull() with a full-match check, as mkcomposefs's parse_int_field: sign wraps, overflow saturates. */
function parseInteger(field: Field, s: Uint8Array, base: 8 | 10): bigint {
  let i = 0;
  while (i < s.length && (s[i] === SP || (s[i]! >= 0x09 && s[i]! <= 0x0d))) i++;
  let neg = false;
  if (i < s.length && (s[i] === 0x2b || s[i] === 0x2d)) neg = s[i++] === 0x2d;
  const start = i;
  let v = 0n;
  const big = BigInt(base);
  while (i < s.length && s[i]! >= 0x30 && s[i]! < 0x30 + base) {
    v = v * big + BigInt(s[i]! - 0x30);
    i++;
  }
  if (i === start || i !== s.length) {
    throw new FieldError(
      field,
      `${show(s)} is not ${base === 8 ? "an octal" : "a decimal"} integer`,
      "digits only",
    );
  }
  if (v > U64_MAX) return U64_MAX;
  return neg ? (U64_MAX + 1n - v) & U64_MAX : v;
}

const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));

/** The MTIME field line[start..end). */
function parseMtime(line: Uint8Array, start: number, end: number): { sec: number; nsec: number } {
  const at = line.indexOf(0x2e, start);
  if (at >= 0 && at < end) {
    const fastSec = plainInteger(line, start, at, 10);
    const fastNsec = plainInteger(line, at + 1, end, 10);
    if (fastSec >= 0 && fastNsec >= 0) return { sec: fastSec, nsec: fastNsec % 0x100000000 };
  }
  const s = line.subarray(start, end);
  const dot = s.indexOf(0x2e);
  if (dot < 0) throw new FieldError("MTIME", `${show(s)} has no '.'`, "SECONDS.NANOSECONDS");
  const sec = BigInt.asIntN(64, parseInteger("MTIME", s.subarray(0, dot), 10));
  const nsec = parseInteger("MTIME", s.subarray(dot + 1), 10);
  if (sec > BigInt(Number.MAX_SAFE_INTEGER) || sec < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new FieldError(
      "MTIME",
      `seconds ${sec} are out of range`,
      `at most ${Number.MAX_SAFE_INTEGER} in magnitude`,
    );
  }
  return { sec: Number(sec), nsec: u32(nsec) };
}

/** The DIGEST field `s` (unescaped), and `text`, the same as a C string (up to a NUL). */
function parseDigest(s: Uint8Array, text: Uint8Array, strict: boolean): Uint8Array {
  const want = DIGEST_SIZE * 2;
  if (text.length < want || (strict && text.length !== want)) {
    throw new FieldError("DIGEST", `${show(s)} is ${text.length} characters`, `${want} hex digits`);
  }
  const out = new Uint8Array(DIGEST_SIZE);
  for (let i = 0; i < DIGEST_SIZE; i++) {
    const h = hexDigit(text[2 * i]!);
    const l = hexDigit(text[2 * i + 1]!);
    if (h < 0 || l < 0) throw new FieldError("DIGEST", `${show(s)} is not hex`, `${want} hex digits`);
    out[i] = (h << 4) | l;
  }
  return out;
}

/** Adds or replaces an xattr within libcomposefs's external-input budget (the last duplicate wins). */
function setXattr(inode: Inode, xattr: Xattr): void {
  const { key, value } = xattr;
  if (key.length === 0 || key.length > XATTR_NAME_MAX) {
    throw new FieldError("XATTR", `a ${key.length}-byte name ${show(key)}`, `1..${XATTR_NAME_MAX} bytes`);
  }
  if (value.length > XATTR_VALUE_MAX) {
    throw new FieldError(
      "XATTR",
      `value of ${show(key)} is ${value.length} bytes`,
      `at most ${XATTR_VALUE_MAX}`,
    );
  }
  const xattrs = inode.xattrs;
  let dup = false;
  for (const x of xattrs) if (bytesEq(x.key, key)) dup = true;
  // The list is this line's own once it has an entry: without a duplicate it grows in place, else a new
  // list replaces it. (Before the first entry it is the shared frozen NO_XATTRS.)
  let next: Xattr[];
  if (dup) next = [...xattrs.filter((x) => !bytesEq(x.key, key)), xattr];
  else if (xattrs.length === 0) next = [xattr];
  else {
    next = xattrs;
    next.push(xattr);
  }
  const use = xattrBudgetUse(next);
  if (use > XATTR_EXTERNAL_BUDGET) {
    throw new FieldError(
      "XATTR",
      `${show(key)} brings the inode's xattrs to ${use} bytes (12 + Σ(7 + key + value))`,
      `at most ${XATTR_EXTERNAL_BUDGET}`,
    );
  }
  inode.xattrs = next;
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Path components as libcomposefs splits them: leading and repeated '/' are skipped. */
function components(path: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < path.length) {
    while (i < path.length && path[i] === 0x2f) i++;
    const start = i;
    while (i < path.length && path[i] !== 0x2f) i++;
    if (i > start) out.push(path.subarray(start, i));
  }
  return out;
}

const NO_DIR = newInode(0);

/**
 * The entries of every non-directory the parser makes: one frozen empty list (addChild() refuses
 * non-directories; anything else trying to add to one throws instead of going unnoticed).
 */
const NO_CHILDREN = Object.freeze([]) as unknown as Dirent[];
const NO_MTIME = Object.freeze({ sec: 0, nsec: 0 });
const NO_XATTRS = Object.freeze([]) as unknown as Xattr[];

/** newInode(mode) for a line: the same fields, the line sets the rest. */
function lineInode(mode: number): Inode {
  return {
    mode,
    uid: 0,
    gid: 0,
    nlink: 1,
    rdev: 0,
    mtime: NO_MTIME,
    size: 0,
    xattrs: NO_XATTRS,
    children: fileType(mode) === S_IFDIR ? [] : NO_CHILDREN,
  };
}

interface PendingLink {
  dirent: Dirent;
  target: Uint8Array | undefined;
  line: number;
}

interface State {
  root: Inode | undefined;
  links: PendingLink[];
  /** Placeholder inodes of '@' lines, until their targets are resolved. */
  placeholders: Map<Inode, PendingLink>;
  strict: boolean;
  /** The last parent looked up (addToTree): the raw path bytes before the last '/', and what they name. */
  dirKey: Uint8Array | undefined;
  dir: Inode;
  /** Recently parsed xattrs by their exact text (recentXattr), replaced round robin. */
  recent: { raw: Uint8Array; xattr: Xattr }[];
  recentNext: number;
  /** Recent lines' xattr lists, frozen, to share with a line listing the same xattr objects. */
  lists: Xattr[][];
  listsNext: number;
  /** Whole-second mtimes already met, frozen, to share (sharedMtime). */
  mtimes: Map<number, Mtime>;
}

/**
 * Parses a composefs-dump(5) file into a tree; returns the root directory. The tree holds no views into
 * `input`: every name, payload, content and xattr is copied out, so `input` can be dropped once parsed.
 */
export function parseDumpfile(input: Uint8Array, opts: ParseOptions = {}): Inode {
  const parser = dumpfileParser(opts);
  parser.push(input);
  return parser.end();
}

/** A dumpfile parser fed in chunks (split anywhere), so a file need not be read whole. */
export interface DumpfileParser {
  /** Parses the lines `chunk` completes; the chunk is not kept (its bytes may be reused after). */
  push(chunk: Uint8Array): void;
  /** Parses the last line (without a newline) and resolves the hardlinks; returns the root. */
  end(): Inode;
}

export function dumpfileParser(opts: ParseOptions = {}): DumpfileParser {
  const strict = opts.strict ?? false;
  const src = opts.path ?? "dumpfile";
  const st: State = {
    root: undefined,
    links: [],
    placeholders: new Map(),
    strict,
    dirKey: undefined,
    dir: NO_DIR,
    recent: [],
    recentNext: 0,
    lists: [],
    listsNext: 0,
    mtimes: new Map(),
  };
  const fail = (line: number, e: FieldError): never => {
    throw new FormatError(
      `Cannot parse ${q(src)} line ${line}, field ${e.field}: ${e.observed}, expected ${e.expected}`,
      {
        path: src,
        line,
        field: e.field,
      },
    );
  };
  let lineNo = 0;
  const line = (bytes: Uint8Array): void => {
    lineNo++;
    try {
      parseLine(st, bytes, lineNo);
    } catch (e) {
      if (e instanceof FieldError) fail(lineNo, e);
      throw e;
    }
  };
  /** The start of a line the chunks so far have not finished: copies, joined once the line ends (a
   * line spread over many chunks costs its length once, not once per chunk). */
  let carry: Uint8Array[] = [];
  const joinCarry = (tail: Uint8Array): Uint8Array => {
    carry.push(tail);
    const joined = concat(carry);
    carry = [];
    return joined;
  };

  return {
    push(input) {
      // A plain Uint8Array view (not a Buffer subclass), so every field carved out of it is one too.
      const chunk = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      let pos = 0;
      if (carry.length > 0) {
        const nl = chunk.indexOf(NL);
        if (nl < 0) {
          carry.push(chunk.slice());
          return;
        }
        line(joinCarry(chunk.subarray(0, nl)));
        pos = nl + 1;
      }
      for (;;) {
        const nl = chunk.indexOf(NL, pos);
        if (nl < 0) break;
        line(chunk.subarray(pos, nl));
        pos = nl + 1;
      }
      if (pos < chunk.length) carry.push(chunk.slice(pos));
    },
    end() {
      if (carry.length > 0) {
        if (strict) {
          fail(lineNo + 1, new FieldError("LINE", "the last line has no trailing newline", "a newline"));
        }
        line(joinCarry(new Uint8Array(0)));
      }
      if (st.root === undefined) {
        throw new FormatError(
          `Cannot parse ${q(src)}: no entries, expected at least the root directory "/"`,
          { path: src },
        );
      }
      for (const link of st.links) {
        try {
          link.dirent.inode = resolveLink(st, link);
        } catch (e) {
          if (e instanceof FieldError) fail(link.line, e);
          throw e;
        }
      }
      return st.root;
    },
  };
}

function resolveLink(st: State, link: PendingLink): Inode {
  const seen = new Set<PendingLink>();
  let cur = link;
  for (;;) {
    if (seen.has(cur))
      throw new FieldError("PAYLOAD", "the hardlink chain loops", "a chain ending at a file");
    seen.add(cur);
    if (cur.target === undefined)
      throw new FieldError("PAYLOAD", "'-' (no target) on a hardlink", "the path of its target");
    let node: Inode | undefined = st.root;
    for (const c of components(cur.target)) {
      node = node === undefined ? undefined : lookupChild(node, c)?.inode;
    }
    if (node === undefined) {
      throw new FieldError("PAYLOAD", `no entry at ${show(cur.target)}`, "the path of an entry in the file");
    }
    if (node === cur.dirent.inode && cur === link) {
      throw new FieldError("PAYLOAD", `${show(cur.target)} is the hardlink itself`, "another entry");
    }
    if (isDir(node)) throw new FieldError("PAYLOAD", `${show(cur.target)} is a directory`, "a non-directory");
    const next = st.placeholders.get(node);
    if (next === undefined) return node;
    cur = next;
  }
}

function parseLine(st: State, line: Uint8Array, lineNo: number): void {
  const nul = line.indexOf(0);
  if (nul >= 0)
    throw new FieldError("LINE", `a NUL byte at position ${nul}`, "text without NUL (escape it as \\x00)");

  // Field boundaries only: numeric fields are read in place, the others carved out when used.
  const starts = FIELD_STARTS;
  const ends = FIELD_ENDS;
  let p = 0;
  for (let i = 0; i < DUMP_FIELDS.length; i++) {
    const sp = line.indexOf(SP, p);
    starts[i] = p;
    if (sp < 0) {
      ends[i] = line.length;
      p = line.length;
    } else {
      ends[i] = sp;
      p = sp + 1;
    }
  }
  const xattrStart = p; // the xattrs are line[xattrStart..]
  const f = (name: (typeof DUMP_FIELDS)[number]): Uint8Array => {
    const i = DUMP_FIELDS.indexOf(name);
    return line.subarray(starts[i], ends[i]);
  };
  /** A 32-bit numeric field, without carving it out when it is plain digits. */
  const u32Field = (i: number, base: 8 | 10): number => {
    const v = plainInteger(line, starts[i]!, ends[i]!, base);
    return v >= 0 ? v % 0x100000000 : parseU32(DUMP_FIELDS[i]!, line.subarray(starts[i], ends[i]), base);
  };
  /** "-" (absent) in an optional field. */
  const dash = (i: number): boolean => ends[i]! - starts[i]! === 1 && line[starts[i]!] === 0x2d;

  const path = unescapeCString("PATH", f("PATH"), false);
  if (path.length === 0) throw new FieldError("PATH", "the path is empty", "an absolute path");

  const isLink = ends[F_MODE]! > starts[F_MODE]! && line[starts[F_MODE]!] === 0x40;
  if (isLink) starts[F_MODE]!++;
  const mode = u32Field(F_MODE, 8);
  if (isLink) starts[F_MODE]!--;
  const type = fileType(mode);
  if (!VALID_FILE_TYPES.includes(type)) {
    throw new FieldError(
      "MODE",
      `${show(f("MODE"))} has file type 0${type.toString(8)}`,
      "a valid S_IFMT type",
    );
  }

  const inode = lineInode(mode);
  const dirent = addToTree(st, path, inode);

  if (isLink) {
    if (isDir(inode)) throw new FieldError("MODE", "a hardlink with directory mode", "a non-directory");
    if (dirent === undefined) throw new FieldError("MODE", "the root as a hardlink", "a directory root");
    const target = dash(F_PAYLOAD) ? undefined : unescapeCString("PAYLOAD", f("PAYLOAD"), true);
    dirent.hardlink = true;
    const link: PendingLink = { dirent, target, line: lineNo };
    st.links.push(link);
    st.placeholders.set(inode, link);
    return;
  }

  const sizeFast = plainInteger(line, starts[F_SIZE]!, ends[F_SIZE]!, 10);
  const sizeBig = sizeFast >= 0 ? BigInt(sizeFast) : parseInteger("SIZE", f("SIZE"), 10);
  const nlink = u32Field(F_NLINK, 10);
  const uid = u32Field(F_UID, 10);
  const gid = u32Field(F_GID, 10);
  const rdev = u32Field(F_RDEV, 10);
  const mtime = parseMtime(line, starts[F_MTIME]!, ends[F_MTIME]!);
  // A C string: mkcomposefs keeps payloads (backing paths, symlink targets) as such.
  const payload = dash(F_PAYLOAD) ? undefined : unescapeCString("PAYLOAD", f("PAYLOAD"), true);
  const content = dash(F_CONTENT) ? undefined : unescapeOwned("CONTENT", f("CONTENT"));
  if (content !== undefined && BigInt(content.length) !== sizeBig) {
    throw new FieldError("CONTENT", `${content.length} bytes of content`, `exactly SIZE (${sizeBig}) bytes`);
  }
  const digestRaw = dash(F_DIGEST) ? undefined : f("DIGEST");
  const digestText = digestRaw && unescapeField("DIGEST", digestRaw);

  if (type === S_IFREG && sizeBig > MAX_FILE_SIZE_BIG && content === undefined) {
    throw new FieldError(
      "SIZE",
      `${sizeBig} bytes needs more than 1024 chunks`,
      `at most ${MAX_FILE_SIZE} (2^53)`,
    );
  }
  inode.size = Number(sizeBig);
  inode.nlink = nlink;
  inode.uid = uid;
  inode.gid = gid;
  if (type === S_IFCHR || type === S_IFBLK) inode.rdev = rdev;
  else if (st.strict && rdev !== 0) throw new FieldError("RDEV", `${rdev} on a non-device`, "0");
  inode.mtime = sharedMtime(st, mtime);

  if (type === S_IFLNK) {
    const target = payload;
    if (target === undefined || target.length === 0 || target.length >= PATH_MAX) {
      throw new FieldError(
        "PAYLOAD",
        target === undefined ? "no symlink target" : `a ${target.length}-byte symlink target`,
        `1..${PATH_MAX - 1} bytes`,
      );
    }
    if (st.strict && BigInt(target.length) !== sizeBig) {
      throw new FieldError(
        "SIZE",
        `${sizeBig} for a ${target.length}-byte symlink target`,
        "the target length",
      );
    }
    if (st.strict && content !== undefined && content.length > 0) {
      throw new FieldError("CONTENT", "content on a symlink", "'-'");
    }
    inode.payload = target;
    inode.size = target.length;
  } else {
    const backing = payload;
    if (backing !== undefined && backing.length >= PATH_MAX) {
      throw new FieldError("PAYLOAD", `a ${backing.length}-byte payload`, `at most ${PATH_MAX - 1} bytes`);
    }
    if (content !== undefined && content.length > INLINE_CONTENT_MAX) {
      throw new FieldError(
        "CONTENT",
        `${content.length} bytes of inline content`,
        `at most ${INLINE_CONTENT_MAX}`,
      );
    }
    if (type === S_IFREG) {
      if (backing !== undefined) inode.payload = backing;
      if (content !== undefined && content.length > 0) inode.content = content;
    }
  }
  if (digestText !== undefined) {
    // Without an escape the field has no NUL (parseLine refuses one): it is its own C string.
    const digest = parseDigest(
      digestText,
      digestText === digestRaw ? digestText : cString(digestText),
      st.strict,
    );
    if (type === S_IFREG) inode.digest = digest;
  }

  if (line.length - xattrStart > MAX_XATTR_TEXT) {
    throw new FieldError("XATTR", `${line.length - xattrStart} bytes of xattrs`, `at most ${MAX_XATTR_TEXT}`);
  }
  let x = xattrStart;
  while (x < line.length) {
    let sp = line.indexOf(SP, x);
    if (sp < 0) sp = line.length;
    let xattr = recentXattr(st, line, x, sp);
    if (xattr === undefined) {
      const eq = line.indexOf(0x3d, x);
      if (eq < 0 || eq >= sp) {
        throw new FieldError("XATTR", `${show(line.subarray(x, sp))} has no '='`, "KEY=VALUE");
      }
      const key = unescapeCString("XATTR", line.subarray(x, eq), true);
      const value = unescapeOwned("XATTR", line.subarray(eq + 1, sp));
      xattr = { key, value };
      remember(st, line.slice(x, sp), xattr); // a copy: the line's bytes may be reused
    }
    x = sp + 1;
    setXattr(inode, xattr);
  }
  inode.xattrs = sharedXattrs(st, inode.xattrs);
}

/** How many whole-second mtimes sharedMtime() keeps (an ostree commit has one: 0). */
const SHARED_MTIMES = 4096;

/** An equal whole-second mtime met before, shared; a new one is kept while there is room. */
function sharedMtime(st: State, mtime: Mtime): Mtime {
  if (mtime.nsec !== 0) return mtime;
  const seen = st.mtimes.get(mtime.sec);
  if (seen !== undefined) return seen;
  if (st.mtimes.size < SHARED_MTIMES) st.mtimes.set(mtime.sec, Object.freeze(mtime));
  return mtime;
}

/** How many recent xattr lists sharedXattrs() compares with. */
const RECENT_LISTS = 8;

/**
 * The line's xattr list, or a recent line's frozen list of the very same xattr objects (recentXattr
 * shares them), so inodes with the same labels share one list. Lists are never changed in place once
 * parsed: the writer copies before it changes one.
 */
function sharedXattrs(st: State, xattrs: Xattr[]): Xattr[] {
  if (xattrs.length === 0) return NO_XATTRS;
  for (const list of st.lists) {
    if (list.length !== xattrs.length) continue;
    let i = 0;
    while (i < list.length && list[i] === xattrs[i]) i++;
    if (i === list.length) return list;
  }
  Object.freeze(xattrs);
  if (st.lists.length < RECENT_LISTS) st.lists.push(xattrs);
  else st.lists[st.listsNext] = xattrs;
  st.listsNext = (st.listsNext + 1) % RECENT_LISTS;
  return xattrs;
}

/** How many distinct recent xattr texts are remembered (an OS tree has a handful of selinux labels). */
const RECENT_XATTRS = 16;

/**
 * The xattr a recent line spelled exactly as text[start..end), if any: inodes with the same label share
 * one key/value pair instead of each holding a copy (xattrs are never changed in place).
 */
function recentXattr(st: State, text: Uint8Array, start: number, end: number): Xattr | undefined {
  const n = end - start;
  for (const r of st.recent) {
    const raw = r.raw;
    if (raw.length !== n) continue;
    let i = n - 1;
    while (i >= 0 && raw[i] === text[start + i]) i--;
    if (i < 0) return r.xattr;
  }
  return undefined;
}

function remember(st: State, raw: Uint8Array, xattr: Xattr): void {
  if (st.recent.length < RECENT_XATTRS) st.recent.push({ raw, xattr });
  else st.recent[st.recentNext] = { raw, xattr };
  st.recentNext = (st.recentNext + 1) % RECENT_XATTRS;
}

/** Places `inode` at `path`; returns its dirent (undefined for the root). */
function addToTree(st: State, path: Uint8Array, inode: Inode): Dirent | undefined {
  if (path.length === 1 && path[0] === 0x2f) {
    if (!isDir(inode)) throw new FieldError("MODE", "a root that is not a directory", "a directory (040000)");
    if (st.root !== undefined) throw new FieldError("PATH", 'a second root "/"', "one root line");
    st.root = inode;
    return undefined;
  }
  if (st.root === undefined)
    throw new FieldError("PATH", `${show(path)} before the root`, 'the root "/" first');
  // Mirror libcomposefs: the name is what follows the last '/', after skipping leading slashes of each part.
  // Consecutive lines mostly share a parent: the raw bytes before the last '/' resolve as they did last
  // time (entries are only ever added), so that resolution is reused.
  const last = path.lastIndexOf(0x2f);
  let parent: Inode = st.root;
  let start = 0;
  if (last >= 0 && st.dirKey !== undefined && sameRange(st.dirKey, path, last)) {
    parent = st.dir;
    start = last + 1;
  } else {
    let i = 0;
    while (i < path.length && path[i] === 0x2f) i++;
    for (;;) {
      start = i;
      while (i < path.length && path[i] !== 0x2f) i++;
      if (i === path.length) break;
      const child = lookupChild(parent, path.subarray(start, i));
      if (child === undefined) {
        throw new FieldError(
          "PATH",
          `the parent directory of ${show(path)} is missing`,
          "parents listed first",
        );
      }
      parent = child.inode;
      while (i < path.length && path[i] === 0x2f) i++;
    }
    if (last >= 0) {
      st.dirKey = path.slice(0, last); // a copy: the line's bytes may be reused
      st.dir = parent;
    }
  }
  const name = path.slice(start); // the dirent's own copy
  if (!isDir(parent))
    throw new FieldError("PATH", `the parent of ${show(path)} is not a directory`, "a directory");
  if (
    (name.length === 1 && name[0] === 0x2e) ||
    (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)
  ) {
    throw new FieldError("PATH", `${show(path)} ends in "." or ".."`, "a file name");
  }
  if (name.length === 0)
    throw new FieldError("PATH", `${show(path)} has an empty file name`, "a name after '/'");
  if (name.length > MAX_NAME_LENGTH) {
    throw new FieldError(
      "PATH",
      `the file name in ${show(path)} is ${name.length} bytes`,
      `at most ${MAX_NAME_LENGTH}`,
    );
  }
  const lastChild = parent.children[parent.children.length - 1];
  const afterLast = lastChild === undefined || compareBytes(lastChild.name, name) < 0; // sorted input
  if (!afterLast && lookupChild(parent, name) !== undefined)
    throw new FieldError("PATH", `${show(path)} is listed twice`, "each path once");
  return addChild(parent, name, inode);
}

/** a[0..n) equals b[0..n), and a has length n. */
function sameRange(a: Uint8Array, b: Uint8Array, n: number): boolean {
  if (a.length !== n) return false;
  for (let i = n - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The line number of the entry at `path` (as the writer names entries: "/" or "/a/b", bytes shown as
 * UTF-8) in a dumpfile that parsed, for pointing a writer's refusal at its line. Undefined when no line,
 * or more than one, names that path.
 */
export function dumpfileLineOf(input: Uint8Array, path: string): number | undefined {
  let found: number | undefined;
  let lineNo = 0;
  for (let pos = 0; pos < input.length; ) {
    lineNo++;
    let end = input.indexOf(NL, pos);
    if (end < 0) end = input.length;
    let sp = input.indexOf(SP, pos);
    if (sp < 0 || sp > end) sp = end;
    const field = input.subarray(pos, sp);
    pos = end + 1;
    let shown: string;
    try {
      const parts = components(cString(unescapeField("PATH", field)));
      shown = `/${parts.map(showBytes).join("/")}`;
    } catch (e) {
      if (e instanceof FieldError) continue; // not an entry line of a parsed file: nothing to point at
      throw e;
    }
    if (shown !== path) continue;
    if (found !== undefined) return undefined;
    found = lineNo;
  }
  return found;
}

/** Convenience for tests and tools: parse UTF-8 text. */
export function parseDumpfileText(text: string, opts: ParseOptions = {}): Inode {
  return parseDumpfile(utf8.encode(text), opts);
}
