// GVariant serialisation (GLib's binary format, the one ostree stores its objects in): a type-string
// parser, a decoder that reads untrusted bytes exactly the way GLib does, an encoder that produces GLib's
// normal form byte for byte, and a text printer matching g_variant_print(). Pure; no ostree knowledge.
//
// Leniency (GLib's rules for non-normal data, which ostree relies on, e.g. a truncated `.commitmeta` reads
// as an empty dictionary): a fixed-size value of the wrong size reads as zeros; a container whose framing
// offsets are out of bounds, unordered or overlapping yields empty/zero children from that point; an
// invalid string reads as ""; a variant without a valid definite type reads as the unit `()`. Decoding
// never throws for bad data; only misuse (a bad type string or a JS value of the wrong shape given to the
// encoder) throws, and then always a FormatError. Children are read as a fresh GVariant would read them
// (GLib does not persist its offset-ordering cache between g_variant_get_child_value() calls).
//
// Values as plain JS: b → boolean; y n q i u h → number; x t → bigint; d → number; s o g → string;
// ay → Uint8Array; other arrays → arrays; tuples and dict entries → arrays of members; maybe → [] (nothing)
// or [x] (just x); v → Variant {type, value}.

import { FormatError, q } from "../base/errors.ts";
import { bytesEqual, Writer } from "./bytes.ts";

/** GLib's G_VARIANT_MAX_RECURSION_DEPTH. */
export const MAX_DEPTH = 128;
/** Longest type string this module parses (GLib has no separate cap; the depth limit bounds nesting). */
export const MAX_TYPE_STRING = 65536;

export class Variant {
  constructor(
    readonly type: string,
    readonly value: GVariantValue,
  ) {}
}

export type GVariantValue = boolean | number | bigint | string | Uint8Array | Variant | GVariantValue[];

type Kind =
  | "b"
  | "y"
  | "n"
  | "q"
  | "i"
  | "u"
  | "x"
  | "t"
  | "h"
  | "d"
  | "s"
  | "o"
  | "g"
  | "v"
  | "a"
  | "m"
  | "("
  | "{";

interface Member {
  type: GType;
  /** Index of the framing offset that precedes this member, or -1 (start of the tuple). */
  i: number;
  /** start = alignDown(prevEnd + a, b) + c, b being the alignment mask (one less than the alignment). */
  a: number;
  b: number;
  c: number;
  ending: "fixed" | "last" | "offset";
}

export interface GType {
  readonly str: string;
  readonly kind: Kind;
  /** Alignment in GLib's "one less than" form: 0, 1, 3 or 7. */
  readonly align: number;
  /** Fixed serialised size, 0 for variable-size types. */
  readonly fixed: number;
  /** GLib's type depth (basic = 1, container = 1 + deepest child, `()` = 0). */
  readonly depth: number;
  readonly elem?: GType;
  readonly members?: Member[];
}

const BASIC: Record<string, { align: number; fixed: number }> = {
  b: { align: 0, fixed: 1 },
  y: { align: 0, fixed: 1 },
  n: { align: 1, fixed: 2 },
  q: { align: 1, fixed: 2 },
  i: { align: 3, fixed: 4 },
  u: { align: 3, fixed: 4 },
  h: { align: 3, fixed: 4 },
  x: { align: 7, fixed: 8 },
  t: { align: 7, fixed: 8 },
  d: { align: 7, fixed: 8 },
  s: { align: 0, fixed: 0 },
  o: { align: 0, fixed: 0 },
  g: { align: 0, fixed: 0 },
  v: { align: 7, fixed: 0 },
};

const alignUp = (x: number, mask: number) => x + ((mask + 1 - (x % (mask + 1))) % (mask + 1));
const alignDown = (x: number, mask: number) => x - (x % (mask + 1));

/** Scans one definite type at `pos`; returns it and the end position, or undefined when not valid. */
function scan(s: string, pos: number, depthLeft: number): { t: GType; end: number } | undefined {
  if (pos >= s.length || depthLeft <= 0) return undefined;
  const ch = s[pos]!;
  const basic = BASIC[ch];
  if (basic) return { t: { str: ch, kind: ch as Kind, depth: 1, ...basic }, end: pos + 1 };
  if (ch === "a" || ch === "m") {
    const e = scan(s, pos + 1, depthLeft - 1);
    if (!e) return undefined;
    const str = s.slice(pos, e.end);
    const t: GType =
      ch === "a"
        ? { str, kind: "a", align: e.t.align, fixed: 0, depth: e.t.depth + 1, elem: e.t }
        : { str, kind: "m", align: e.t.align, fixed: 0, depth: e.t.depth + 1, elem: e.t };
    return { t, end: e.end };
  }
  if (ch === "(" || ch === "{") {
    const close = ch === "(" ? ")" : "}";
    const items: GType[] = [];
    let p = pos + 1;
    while (p < s.length && s[p] !== close) {
      const e = scan(s, p, depthLeft - 1);
      if (!e) return undefined;
      items.push(e.t);
      p = e.end;
    }
    if (p >= s.length) return undefined;
    if (ch === "{" && (items.length !== 2 || !isBasic(items[0]!))) return undefined;
    return { t: tupleType(s.slice(pos, p + 1), ch, items), end: p + 1 };
  }
  return undefined;
}

function isBasic(t: GType): boolean {
  return t.kind !== "v" && t.kind in BASIC;
}

function tupleType(str: string, kind: "(" | "{", items: GType[]): GType {
  const members: Member[] = [];
  let i = -1;
  let a = 0;
  let b = 0;
  let c = 0;
  items.forEach((t, idx) => {
    const d = t.align;
    if (d <= b) c = alignUp(c, d);
    else {
      a += alignUp(c, b);
      b = d;
      c = 0;
    }
    // GLib's tuple_table_append: move the aligned part of c into a.
    const aa = a + (c - (c & b));
    const cc = c & b;
    const ending = t.fixed ? "fixed" : idx === items.length - 1 ? "last" : "offset";
    members.push({ type: t, i, a: aa + b, b, c: cc, ending });
    if (t.fixed === 0) {
      i++;
      a = 0;
      b = 0;
      c = 0;
    } else c += t.fixed;
  });
  let align = 0;
  for (const t of items) align |= t.align;
  let fixed = 0;
  if (items.length === 0) fixed = 1;
  else {
    const last = members[members.length - 1]!;
    if (last.i === -1 && last.type.fixed) {
      fixed = alignUp(alignDown(last.a, last.b) + last.c + last.type.fixed, align);
    }
  }
  const depth = items.length ? 1 + Math.max(...items.map((t) => t.depth)) : 0;
  return { str, kind, align, fixed, depth, members };
}

const typeCache = new Map<string, GType>();

/** Parses a complete definite type string; undefined when it is not one (the lenient, data-facing form). */
export function tryParseType(s: string): GType | undefined {
  const hit = typeCache.get(s);
  if (hit) return hit;
  if (s.length === 0 || s.length > MAX_TYPE_STRING) return undefined;
  const r = scan(s, 0, MAX_DEPTH);
  if (!r || r.end !== s.length) return undefined;
  if (typeCache.size > 512) typeCache.clear();
  typeCache.set(s, r.t);
  return r.t;
}

/** Parses a type string given by code; a bad one is a FormatError. */
export function parseType(s: string): GType {
  const t = tryParseType(s);
  if (!t)
    throw new FormatError(`Cannot parse GVariant type ${JSON.stringify(s)}: not a definite type string`);
  return t;
}

const asType = (t: GType | string): GType => (typeof t === "string" ? parseType(t) : t);

// ---------------------------------------------------------------------------------------------------
// Decoding

function offsetSize(size: number): number {
  if (size > 0xffffffff) return 8;
  if (size > 0xffff) return 4;
  if (size > 0xff) return 2;
  if (size > 0) return 1;
  return 0;
}

function readOffset(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let k = n - 1; k >= 0; k--) v = v * 256 + b[at + k]!;
  return v;
}

function totalSize(body: number, n: number): number {
  if (body + n <= 0xff) return body + n;
  if (body + 2 * n <= 0xffff) return body + 2 * n;
  if (body + 4 * n <= 0xffffffff) return body + 4 * n;
  return body + 8 * n;
}

const EMPTY: Uint8Array = new Uint8Array(0);

/** Bytes of a child that GLib reports as missing: zeros for a fixed-size type, nothing otherwise. */
const missing = (t: GType) => (t.fixed ? new Uint8Array(t.fixed) : EMPTY);

/**
 * Work allowed per decode, in values produced plus zero bytes filled in for missing fixed-size children,
 * as a multiple of the input size. GLib reads lazily, so a small hostile input whose framing makes every
 * array element a missing copy of a large fixed-size tuple costs it nothing until accessed; an eager
 * decoder would amplify it quadratically. Over budget is a FormatError, never reached by ostree's
 * objects: each byte is counted once per nesting level (len / 8 per value), and they take 0.4–0.7 per byte
 * (the golden repositories, a 100,000-file dirtree, 10,000 signatures, 50,000 a{sv} entries). Eight
 * bounds a 1 MiB hostile `.commitmeta` fully decoded (`sealroot show`) to ~0.7 s and ~150 MB.
 */
export const DECODE_WORK_PER_BYTE = 8;
const DECODE_WORK_MIN = 1 << 20;
let work = 0;
/** What the running decode was given, for the over-budget message. */
let input = { type: "", size: 0 };

function startWork(t: GType, size: number): void {
  work = DECODE_WORK_MIN + DECODE_WORK_PER_BYTE * size;
  // a type string can be 64 KiB long; the message stays one short line
  input = { type: t.str.length > 40 ? `${t.str.slice(0, 40)}…` : t.str, size };
}

/** Decodes `bytes` as `type` with GLib's reading rules for untrusted data (see the module comment). */
export function decode(type: GType | string, bytes: Uint8Array): GVariantValue {
  const t = asType(type);
  const data = t.fixed && bytes.length !== t.fixed ? new Uint8Array(t.fixed) : bytes;
  startWork(t, bytes.length);
  return dec(t, data, 0);
}

function spend(n: number): void {
  work -= n;
  if (work < 0) {
    throw new FormatError(
      `Cannot decode ${input.size} bytes as GVariant ${q(input.type)}: framing that expands past the work cap, expected at most ${DECODE_WORK_PER_BYTE} values per byte`,
      { ...input, cap: DECODE_WORK_PER_BYTE },
    );
  }
}

function dec(t: GType, d: Uint8Array, depth: number): GVariantValue {
  spend(1 + (d.length >> 3));
  const dv = () => new DataView(d.buffer, d.byteOffset, d.byteLength);
  switch (t.kind) {
    case "b":
      return d[0] !== 0;
    case "y":
      return d[0]!;
    case "n":
      return dv().getInt16(0, true);
    case "q":
      return dv().getUint16(0, true);
    case "i":
    case "h":
      return dv().getInt32(0, true);
    case "u":
      return dv().getUint32(0, true);
    case "x":
      return dv().getBigInt64(0, true);
    case "t":
      return dv().getBigUint64(0, true);
    case "d":
      return dv().getFloat64(0, true);
    case "s":
      return isString(d) ? utf8Strict(d.subarray(0, d.length - 1)) : "";
    case "o":
      return isObjectPath(d) ? utf8Strict(d.subarray(0, d.length - 1)) : "/";
    case "g":
      return isSignature(d) ? utf8Strict(d.subarray(0, d.length - 1)) : "";
    case "v":
      return decVariant(d, depth);
    case "m":
      return decMaybe(t, d, depth);
    case "a":
      return decArray(t, d, depth);
    case "(":
    case "{":
      return decTuple(t, d, depth);
  }
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();
function utf8Strict(b: Uint8Array): string {
  return strictDecoder.decode(b);
}

/** GLib's g_variant_serialiser_is_string: NUL-terminated, no inner NUL, valid UTF-8. */
function isString(d: Uint8Array): boolean {
  if (d.length === 0 || d[d.length - 1] !== 0) return false;
  const body = d.subarray(0, d.length - 1);
  if (body.includes(0)) return false;
  try {
    strictDecoder.decode(body);
    return true;
  } catch {
    // TextDecoder with fatal:true signals invalid UTF-8 only by throwing; that is the "not a string" answer.
    return false;
  }
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

function isObjectPath(d: Uint8Array): boolean {
  if (!isString(d)) return false;
  const s = latin1(d.subarray(0, d.length - 1));
  return /^\/$|^(\/[A-Za-z0-9_]+)+$/.test(s);
}

function isSignature(d: Uint8Array): boolean {
  if (!isString(d)) return false;
  let s = latin1(d.subarray(0, d.length - 1));
  if (!/^[ybnqiuxthdvasog(){}]*$/.test(s)) return false;
  while (s.length) {
    const r = scan(s, 0, MAX_DEPTH);
    if (!r) return false;
    s = s.slice(r.end);
  }
  return true;
}

/** A variant's child type and bytes (g_variant_get_variant), or undefined when GLib reads it as `()`. */
function variantParts(d: Uint8Array, depth: number): { type: GType; child: Uint8Array } | undefined {
  if (d.length === 0) return undefined;
  let nul = d.length - 1;
  while (nul > 0 && d[nul] !== 0) nul--;
  if (d[nul] !== 0) return undefined;
  const typeBytes = d.subarray(nul + 1);
  if (typeBytes.length === 0 || typeBytes.length > MAX_TYPE_STRING) return undefined;
  let typeStr = "";
  for (const c of typeBytes) {
    if (c === 0 || c > 0x7e) return undefined;
    typeStr += String.fromCharCode(c);
  }
  const ct = tryParseType(typeStr);
  if (!ct) return undefined;
  const child = d.subarray(0, nul);
  if (ct.fixed && ct.fixed !== child.length) return undefined;
  if (depth >= MAX_DEPTH - ct.depth) return undefined;
  return { type: ct, child };
}

function decVariant(d: Uint8Array, depth: number): GVariantValue {
  const p = variantParts(d, depth);
  return p ? new Variant(p.type.str, dec(p.type, p.child, depth + 1)) : new Variant("()", []);
}

function decMaybe(t: GType, d: Uint8Array, depth: number): GVariantValue {
  const e = t.elem!;
  if (e.fixed) return d.length === e.fixed ? [dec(e, d, depth + 1)] : [];
  return d.length > 0 ? [dec(e, d.subarray(0, d.length - 1), depth + 1)] : [];
}

function decArray(t: GType, d: Uint8Array, depth: number): GVariantValue {
  const e = t.elem!;
  if (e.fixed) {
    if (e.kind === "y") return d.slice();
    if (d.length % e.fixed !== 0) return [];
    const out: GVariantValue[] = [];
    for (let at = 0; at < d.length; at += e.fixed) out.push(dec(e, d.subarray(at, at + e.fixed), depth + 1));
    return out;
  }
  const children = new VariableArrayChildren(e, d);
  const out: GVariantValue[] = [];
  for (let k = 0; k < children.length; k++) out.push(dec(e, children.next(), depth + 1));
  return out;
}

/**
 * The elements of an array of variable-size `e`, read in order without decoding them
 * (gvs_variable_sized_array_get_child): an element is read only while the offsets up to it are in order;
 * from the first decrease on, every element is empty.
 */
class VariableArrayChildren {
  readonly length: number;
  private readonly table: number;
  private readonly size: number;
  private k = 0;
  private prevEnd = 0;
  private ordered = true;

  constructor(
    private readonly e: GType,
    private readonly d: Uint8Array,
  ) {
    const fr = frameOffsets(d);
    this.length = fr.length;
    this.table = fr.table;
    this.size = fr.size;
  }

  /** The bytes of the next element (EMPTY when GLib reads it as empty). */
  next(): Uint8Array {
    const { d, k } = this;
    const end = readOffset(d, this.table + k * this.size, this.size);
    if (k > 0 && end < this.prevEnd) this.ordered = false;
    const start = k > 0 ? alignUp(this.prevEnd, this.e.align) : 0;
    this.prevEnd = end;
    this.k++;
    return this.ordered && start < end && end <= d.length && end <= this.table
      ? d.subarray(start, end)
      : EMPTY;
  }
}

/** gvs_variable_sized_array_get_frame_offsets: where the offset table starts, its entry size and count. */
function frameOffsets(d: Uint8Array): { table: number; size: number; length: number } {
  const none = { table: 0, size: 0, length: 0 };
  if (d.length === 0) return none;
  const size = offsetSize(d.length);
  const lastEnd = readOffset(d, d.length - size, size);
  if (lastEnd > d.length) return none;
  const tableBytes = d.length - lastEnd;
  if (tableBytes % size !== 0) return none;
  // A non-minimal offset size is not normal form, but GLib still reads the children.
  return { table: lastEnd, size, length: tableBytes / size };
}

function decTuple(t: GType, d: Uint8Array, depth: number): GVariantValue {
  const members = t.members!;
  return tupleChildren(t, d).map((child, k) => dec(members[k]!.type, child, depth + 1));
}

/** The bytes of each member of a tuple or dict entry (gvs_tuple_get_child); a missing one is `missing()`. */
function tupleChildren(t: GType, d: Uint8Array): Uint8Array[] {
  const members = t.members!;
  const n = members.length;
  if (n === 0) return [];
  const os = offsetSize(d.length);
  const bounds = (m: Member): [number, number] => {
    let start = 0;
    if (m.i !== -1 && os * (m.i + 1) <= d.length)
      start = os ? readOffset(d, d.length - os * (m.i + 1), os) : 0;
    start = alignDown(start + m.a, m.b) + m.c;
    let end: number;
    if (m.ending === "last" && os * (m.i + 1) <= d.length) end = d.length - os * (m.i + 1);
    else if (m.ending === "fixed") end = start + m.type.fixed;
    else if (m.ending === "offset" && os * (m.i + 2) <= d.length)
      end = os ? readOffset(d, d.length - os * (m.i + 2), os) : 0;
    else end = Number.POSITIVE_INFINITY;
    return [start, end];
  };
  const all = members.map(bounds);
  // gvs_tuple_get_child with fresh state: member k > 0 is read only if members 0..k are in order and in
  // bounds — except that a bad member 0 disables the check entirely (GLib's ordered_offsets_up_to wraps).
  let firstBad = n;
  let prevEnd = 0;
  for (let k = 0; k < n; k++) {
    const [s, e] = all[k]!;
    if (s > e || s < prevEnd || e > d.length) {
      firstBad = k;
      break;
    }
    prevEnd = e;
  }
  const lastEnd = all[n - 1]![1];
  return members.map((m, k) => {
    const orderedOk = k === 0 || firstBad === 0 || k < firstBad;
    const tableOk = os * (m.i + (m.ending === "offset" ? 2 : 1)) <= d.length;
    if (orderedOk && tableOk) {
      const [s, e] = all[k]!;
      if (s < e && e <= d.length && e <= lastEnd) return d.subarray(s, e);
    }
    return missing(m.type);
  });
}

// ---------------------------------------------------------------------------------------------------
// Reading without decoding everything (what GLib's lazy accessors cost)

/**
 * g_variant_n_children() of an array, from its framing alone: nothing is decoded, so a caller can refuse
 * a container that claims too many elements before building them.
 */
export function arrayLength(type: GType | string, bytes: Uint8Array): number {
  const t = asType(type);
  if (t.kind !== "a")
    throw new FormatError(`Cannot count the elements of GVariant ${q(t.str)}: not an array`);
  const e = t.elem!;
  if (e.fixed) return bytes.length % e.fixed === 0 ? bytes.length / e.fixed : 0;
  return frameOffsets(bytes).length;
}

/** The serialised bytes of each member of a tuple (g_variant_get_child_value), none decoded. */
export function tupleMemberBytes(type: GType | string, bytes: Uint8Array): Uint8Array[] {
  const t = asType(type);
  if (t.kind !== "(") throw new FormatError(`Cannot split GVariant ${q(t.str)}: not a tuple`);
  return tupleChildren(t, t.fixed && bytes.length !== t.fixed ? new Uint8Array(t.fixed) : bytes);
}

const VARDICT = parseType("a{sv}");

/**
 * g_variant_lookup_value(dict, key, type) on the serialised `a{sv}` bytes, lazily: walks the array's
 * framing and compares each entry's key bytes, decoding no other entry; the first entry named `key`
 * decides (GLib stops there): its value when the variant holds exactly `type`, undefined otherwise (or
 * when no entry has the key). Scanning and decoding share decode()'s work budget, so the cost is bounded
 * by the input's size, never by what its framing claims.
 */
export function lookupVardict(bytes: Uint8Array, key: string, type: string): GVariantValue | undefined {
  const want = parseType(type);
  // g_variant_get_string() reads a key that is not a valid string as "": an exact byte match is equal
  // to `key`, and only an invalid key can equal "".
  const keyNul = textEncoder.encode(`${key}\0`);
  startWork(VARDICT, bytes.length);
  const entry = VARDICT.elem!;
  const entries = new VariableArrayChildren(entry, bytes);
  for (let k = 0; k < entries.length; k++) {
    const e = entries.next();
    spend(1);
    const [kb, vb] = tupleChildren(entry, e) as [Uint8Array, Uint8Array];
    const matches = key === "" ? kb.length === 1 || !isString(kb) : bytesEqual(kb, keyNul);
    if (!matches) continue;
    // depths as in decode(): array 0, entry 1, variant 2, its child 3
    const v = variantParts(vb, 2);
    if (!v || v.type.str !== want.str) return undefined;
    return dec(v.type, v.child, 3);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Encoding (GLib's normal form)

/** Serialises `value` as `type` in normal form, byte-identical to GLib's serialiser. */
export function encode(type: GType | string, value: GVariantValue): Uint8Array {
  return enc(asType(type), value);
}

function bad(t: GType, value: unknown): FormatError {
  const shown = typeof value === "bigint" ? `${value}n` : typeof value;
  return new FormatError(
    `Cannot encode GVariant ${JSON.stringify(t.str)}: got a JS ${shown}, expected a matching value`,
  );
}

function fixedBytes(n: number, fill: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(n);
  fill(new DataView(b.buffer));
  return b;
}

function int(t: GType, v: GVariantValue, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw bad(t, v);
  return v;
}

function enc(t: GType, v: GVariantValue): Uint8Array {
  switch (t.kind) {
    case "b":
      if (typeof v !== "boolean") throw bad(t, v);
      return Uint8Array.of(v ? 1 : 0);
    case "y":
      return Uint8Array.of(int(t, v, 0, 0xff));
    case "n":
      return fixedBytes(2, (dv) => dv.setInt16(0, int(t, v, -0x8000, 0x7fff), true));
    case "q":
      return fixedBytes(2, (dv) => dv.setUint16(0, int(t, v, 0, 0xffff), true));
    case "i":
    case "h":
      return fixedBytes(4, (dv) => dv.setInt32(0, int(t, v, -0x80000000, 0x7fffffff), true));
    case "u":
      return fixedBytes(4, (dv) => dv.setUint32(0, int(t, v, 0, 0xffffffff), true));
    case "x":
      if (typeof v !== "bigint" || v < -(1n << 63n) || v >= 1n << 63n) throw bad(t, v);
      return fixedBytes(8, (dv) => dv.setBigInt64(0, v, true));
    case "t":
      if (typeof v !== "bigint" || v < 0n || v >= 1n << 64n) throw bad(t, v);
      return fixedBytes(8, (dv) => dv.setBigUint64(0, v, true));
    case "d":
      if (typeof v !== "number") throw bad(t, v);
      return fixedBytes(8, (dv) => dv.setFloat64(0, v, true));
    case "s":
    case "o":
    case "g": {
      if (typeof v !== "string") throw bad(t, v);
      const body = textEncoder.encode(v);
      const out = new Uint8Array(body.length + 1);
      out.set(body);
      if (!(t.kind === "s" ? isString : t.kind === "o" ? isObjectPath : isSignature)(out)) throw bad(t, v);
      return out;
    }
    case "v": {
      if (!(v instanceof Variant)) throw bad(t, v);
      const ct = parseType(v.type);
      const child = enc(ct, v.value);
      const w = new Writer(child.length + 1 + ct.str.length);
      w.bytes(child).u8(0);
      for (let k = 0; k < ct.str.length; k++) w.u8(ct.str.charCodeAt(k));
      return w.finish();
    }
    case "m": {
      if (!Array.isArray(v) || v.length > 1) throw bad(t, v);
      if (v.length === 0) return EMPTY;
      const child = enc(t.elem!, v[0]!);
      if (t.elem!.fixed) return child;
      const out = new Uint8Array(child.length + 1);
      out.set(child);
      return out;
    }
    case "a":
      return encArray(t, v);
    case "(":
    case "{":
      return encTuple(t, v);
  }
}

function writeOffset(w: Writer, v: number, size: number): void {
  let x = v;
  for (let k = 0; k < size; k++) {
    w.u8(x % 256);
    x = Math.floor(x / 256);
  }
}

function encArray(t: GType, v: GVariantValue): Uint8Array {
  const e = t.elem!;
  if (e.kind === "y") {
    if (!(v instanceof Uint8Array)) throw bad(t, v);
    return v.slice();
  }
  if (!Array.isArray(v)) throw bad(t, v);
  if (v.length === 0) return EMPTY;
  const w = new Writer(64);
  if (e.fixed) {
    for (const x of v) w.bytes(enc(e, x));
    return w.finish();
  }
  const ends: number[] = [];
  for (const x of v) {
    w.zeros(alignUp(w.length, e.align) - w.length);
    w.bytes(enc(e, x));
    ends.push(w.length);
  }
  const os = offsetSize(totalSize(w.length, ends.length));
  for (const end of ends) writeOffset(w, end, os);
  return w.finish();
}

function encTuple(t: GType, v: GVariantValue): Uint8Array {
  const members = t.members!;
  if (!Array.isArray(v) || v.length !== members.length) throw bad(t, v);
  if (members.length === 0) return Uint8Array.of(0);
  const w = new Writer(64);
  const ends: number[] = [];
  members.forEach((m, k) => {
    w.zeros(alignUp(w.length, m.type.align) - w.length);
    w.bytes(enc(m.type, v[k]!));
    if (m.ending === "offset") ends.push(w.length);
  });
  if (t.fixed) {
    w.zeros(t.fixed - w.length);
    return w.finish();
  }
  const os = offsetSize(totalSize(w.length, ends.length));
  for (let k = ends.length - 1; k >= 0; k--) writeOffset(w, ends[k]!, os);
  return w.finish();
}

/** True when `bytes` is GLib's normal form for `type` (what ostree's fsck and pull insist on). */
export function isNormalForm(type: GType | string, bytes: Uint8Array): boolean {
  const t = asType(type);
  if (t.fixed && bytes.length !== t.fixed) return false;
  return bytesEqual(encode(t, decode(t, bytes)), bytes);
}

// ---------------------------------------------------------------------------------------------------
// Dictionaries (a{sv}) as ostree uses them

export type DictEntries = Array<[string, Variant]>;

/** g_variant_lookup_value(): the first entry with `key`; undefined when absent or of another type. */
export function lookup(entries: DictEntries, key: string, type?: string): Variant | undefined {
  for (const [k, v] of entries) {
    if (k !== key) continue;
    return type === undefined || v.type === type ? v : undefined;
  }
  return undefined;
}

/** Decodes an `a{sv}` into entries, in stored order. */
export function decodeVardict(bytes: Uint8Array): DictEntries {
  return decode("a{sv}", bytes) as DictEntries;
}

export function encodeVardict(entries: DictEntries): Uint8Array {
  return encode("a{sv}", entries);
}

// ---------------------------------------------------------------------------------------------------
// Text form (g_variant_print)

/** g_variant_print(value, annotate): the text `ostree show --raw` and `ostree ls -X` print. */
export function print(type: GType | string, value: GVariantValue, annotate = true): string {
  return prn(asType(type), value, annotate);
}

const BYTE_ESC: Record<number, string> = {
  8: "\\b",
  12: "\\f",
  10: "\\n",
  13: "\\r",
  9: "\\t",
  11: "\\v",
  92: "\\\\",
  34: '\\"',
};

/** g_strescape over the bytes before the terminating NUL. */
function strescape(b: Uint8Array): string {
  let s = "";
  for (const c of b) {
    const esc = BYTE_ESC[c];
    if (esc) s += esc;
    else if (c < 0x20 || c >= 0x7f) s += `\\${c.toString(8).padStart(3, "0")}`;
    else s += String.fromCharCode(c);
  }
  return s;
}

const STR_ESC: Record<string, string> = {
  "\x07": "a",
  "\b": "b",
  "\f": "f",
  "\n": "n",
  "\r": "r",
  "\t": "t",
  "\v": "v",
};
const NONPRINT = /[\p{Cc}\p{Cf}\p{Cn}\p{Cs}]/u;

function printString(s: string): string {
  const quote = s.includes("'") ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === "\\") out += "\\";
    if (!NONPRINT.test(ch)) out += ch;
    else {
      const cp = ch.codePointAt(0)!;
      const e = STR_ESC[ch];
      if (e) out += `\\${e}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, "0")}`;
      else out += `\\U${cp.toString(16).padStart(8, "0")}`;
    }
  }
  return out + quote;
}

function prn(t: GType, v: GVariantValue, ann: boolean): string {
  switch (t.kind) {
    case "m": {
      const head = ann ? `@${t.str} ` : "";
      const arr = v as GVariantValue[];
      if (arr.length === 0) return `${head}nothing`;
      let depth = 0;
      let bt: GType = t;
      while (bt.kind === "m") {
        depth++;
        bt = bt.elem!;
      }
      let el: GVariantValue | undefined = v;
      let i = 0;
      for (; i < depth && el !== undefined; i++) {
        const a = el as GVariantValue[];
        el = a.length ? a[0] : undefined;
      }
      if (el === undefined) return `${head}${"just ".repeat(Math.max(0, i - 1))}nothing`;
      return head + prn(bt, el, false);
    }
    case "a": {
      const e = t.elem!;
      if (e.kind === "y") {
        const b = v as Uint8Array;
        const firstNul = b.indexOf(0);
        if (b.length > 0 && firstNul === b.length - 1) {
          const body = b.subarray(0, b.length - 1);
          return body.includes(39) ? `b"${strescape(body)}"` : `b'${strescape(body)}'`;
        }
        const items = Array.from(
          b,
          (x, k) => `${k === 0 && ann ? "byte " : ""}0x${x.toString(16).padStart(2, "0")}`,
        );
        if (items.length === 0) return `${ann ? `@${t.str} ` : ""}[]`;
        return `[${items.join(", ")}]`;
      }
      const arr = v as GVariantValue[];
      if (e.kind === "{") {
        if (arr.length === 0) return `${ann ? `@${t.str} ` : ""}{}`;
        const [kt, vt] = e.members!.map((m) => m.type) as [GType, GType];
        let a = ann;
        const parts = arr.map((entry) => {
          const [k, x] = entry as GVariantValue[];
          const s = `${prn(kt, k!, a)}: ${prn(vt, x!, a)}`;
          a = false;
          return s;
        });
        return `{${parts.join(", ")}}`;
      }
      if (arr.length === 0) return `${ann ? `@${t.str} ` : ""}[]`;
      return `[${arr.map((x, k) => prn(e, x, ann && k === 0)).join(", ")}]`;
    }
    case "(": {
      const arr = v as GVariantValue[];
      const parts = arr.map((x, k) => prn(t.members![k]!.type, x, ann));
      return parts.length === 1 ? `(${parts[0]},)` : `(${parts.join(", ")})`;
    }
    case "{": {
      const arr = v as GVariantValue[];
      return `{${prn(t.members![0]!.type, arr[0]!, ann)}, ${prn(t.members![1]!.type, arr[1]!, ann)}}`;
    }
    case "v": {
      const x = v as Variant;
      return `<${prn(parseType(x.type), x.value, true)}>`;
    }
    case "b":
      return v ? "true" : "false";
    case "s":
      return printString(v as string);
    case "o":
      return `${ann ? "objectpath " : ""}${printString(v as string)}`;
    case "g":
      return `${ann ? "signature " : ""}${printString(v as string)}`;
    case "y":
      return `${ann ? "byte " : ""}0x${(v as number).toString(16).padStart(2, "0")}`;
    case "n":
      return `${ann ? "int16 " : ""}${v}`;
    case "q":
      return `${ann ? "uint16 " : ""}${v}`;
    case "i":
      return `${v}`;
    case "h":
      return `${ann ? "handle " : ""}${v}`;
    case "u":
      return `${ann ? "uint32 " : ""}${v}`;
    case "x":
      return `${ann ? "int64 " : ""}${v}`;
    case "t":
      return `${ann ? "uint64 " : ""}${v}`;
    case "d": {
      const s = String(v);
      return /[.eEnN]/.test(s) ? s : `${s}.0`;
    }
  }
}

/** g_variant_byteswap(): every number swapped (ostree prints its big-endian fields this way). */
export function byteswap(type: GType | string, value: GVariantValue): GVariantValue {
  const t = asType(type);
  if (t.fixed && t.kind in BASIC && t.kind !== "b" && t.kind !== "y") {
    const b = encode(t, value).reverse();
    return decode(t, b);
  }
  switch (t.kind) {
    case "a":
      if (t.elem!.kind === "y") return value;
      return (value as GVariantValue[]).map((x) => byteswap(t.elem!, x));
    case "m":
      return (value as GVariantValue[]).map((x) => byteswap(t.elem!, x));
    case "(":
    case "{":
      return (value as GVariantValue[]).map((x, k) => byteswap(t.members![k]!.type, x));
    case "v": {
      const x = value as Variant;
      return new Variant(x.type, byteswap(x.type, x.value));
    }
    default:
      return value;
  }
}
