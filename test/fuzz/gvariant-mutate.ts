// GVariant-aware mutations for the ostree object targets. framing() maps a normal-form serialisation: the
// position and size of every framing offset (tuple and variable-size array tables), every variant's
// type string. The mutator then sets framing offsets to boundary values, to each other's values, off by
// a little, or swaps them; rewrites variant type strings; or changes the decoded value (strings,
// checksum lengths, array lengths, nested variants of other types, 64 KiB strings that widen offsets)
// and re-encodes it, so the framing stays valid and the validators behind the decoder get exercised.

import { concat } from "../../src/formats/bytes.ts";
import {
  decode,
  encode,
  type GType,
  type GVariantValue,
  parseType,
  tryParseType,
  Variant,
} from "../../src/formats/gvariant.ts";
import { byteOp, fromLatin1, INTERESTING_64, latin1, type Mutator, writeInt } from "./mutate.ts";
import type { Rng } from "./rng.ts";

export interface Slot {
  /** Absolute offset and size (1, 2, 4 or 8) of one framing offset. */
  at: number;
  size: number;
  /** The container it frames: absolute start and length. */
  base: number;
  len: number;
}

export interface Framing {
  slots: Slot[];
  /** [start, end) of each variant's type string. */
  types: Array<[number, number]>;
  /** Position of each string's NUL terminator. */
  nuls: number[];
}

function offsetSize(n: number): number {
  return n > 0xffffffff ? 8 : n > 0xffff ? 4 : n > 0xff ? 2 : n > 0 ? 1 : 0;
}

function readLE(d: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let k = n - 1; k >= 0; k--) v = v * 256 + (d[at + k] ?? 0);
  return v;
}

const alignUp = (x: number, mask: number) => (x + mask) & ~mask;

/** Framing offsets and type strings of `d` read as normal-form `type`; stops where the data is not. */
export function framing(type: GType | string, d: Uint8Array): Framing {
  const out: Framing = { slots: [], types: [], nuls: [] };
  walk(typeof type === "string" ? parseType(type) : type, d, 0, out, 0);
  return out;
}

function walk(t: GType, d: Uint8Array, base: number, out: Framing, depth: number): void {
  if (depth > 64 || out.slots.length > 100_000) return;
  const len = d.length;
  switch (t.kind) {
    case "s":
    case "o":
    case "g":
      if (len > 0) out.nuls.push(base + len - 1);
      return;
    case "v": {
      const nul = d.lastIndexOf(0);
      if (nul < 0) return;
      out.types.push([base + nul + 1, base + len]);
      const ct = tryParseType(latin1(d.subarray(nul + 1)));
      if (ct) walk(ct, d.subarray(0, nul), base, out, depth + 1);
      return;
    }
    case "m": {
      const e = t.elem!;
      if (e.fixed) walk(e, d, base, out, depth + 1);
      else if (len > 0) walk(e, d.subarray(0, len - 1), base, out, depth + 1);
      return;
    }
    case "a": {
      const e = t.elem!;
      if (e.fixed || len === 0) return;
      const os = offsetSize(len);
      const lastEnd = readLE(d, len - os, os);
      if (lastEnd > len || (len - lastEnd) % os !== 0) return;
      let prev = 0;
      for (let at = lastEnd; at < len; at += os) {
        out.slots.push({ at: base + at, size: os, base, len });
        const end = readLE(d, at, os);
        const start = alignUp(prev, e.align);
        if (start <= end && end <= lastEnd) walk(e, d.subarray(start, end), base + start, out, depth + 1);
        prev = end;
      }
      return;
    }
    case "(":
    case "{": {
      if (t.fixed) return;
      const members = (t.members ?? []).map((m) => m.type);
      const os = offsetSize(len);
      const nOff = members.slice(0, -1).filter((m) => !m.fixed).length;
      let pos = 0;
      let k = 0;
      for (let i = 0; i < members.length; i++) {
        const m = members[i]!;
        const start = alignUp(pos, m.align);
        let end: number;
        if (m.fixed) end = start + m.fixed;
        else if (i === members.length - 1) end = len - os * nOff;
        else {
          const at = len - os * (k + 1);
          if (at < 0) return;
          out.slots.push({ at: base + at, size: os, base, len });
          end = readLE(d, at, os);
          k++;
        }
        if (start > end || end > len) return;
        walk(m, d.subarray(start, end), base + start, out, depth + 1);
        pos = end;
      }
      return;
    }
    default:
      return;
  }
}

// ---- framing-offset and type-string mutations --------------------------------------------------------

const TYPE_STRINGS = [
  "ay",
  "aay",
  "s",
  "as",
  "a{sv}",
  "v",
  "b",
  "y",
  "u",
  "t",
  "x",
  "(ss)",
  "a(say)",
  "mv",
  "()",
  "o",
  "g",
  "d",
  "a{ss}",
  "(yv)",
  "ms",
  "(a(say)a(sayay))",
  "(uuua(ayay))",
  "a{sv}a{sv}",
  "a",
  "(",
  "{sv}",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaay",
];

/** One change to the framing of `b` (type `t`); `b` unchanged when it has no framing left to change. */
export function framingOp(rng: Rng, t: GType, b: Uint8Array): Uint8Array {
  const f = framing(t, b);
  const choice = rng.weighted([
    f.slots.length ? 10 : 0,
    f.slots.length > 1 ? 3 : 0,
    f.types.length ? 4 : 0,
    f.nuls.length ? 2 : 0,
    1,
  ]);
  if (choice === 0) {
    const s = rng.pick(f.slots);
    const cur = readLE(b, s.at, s.size);
    const siblings = f.slots.filter((o) => o.base === s.base && o.len === s.len);
    const v = rng.pick([
      0,
      1,
      s.len,
      s.len - 1,
      s.len + 1,
      2 ** (8 * s.size) - 1,
      readLE(b, rng.pick(siblings).at, s.size),
      cur + rng.range(1, 8),
      cur - rng.range(1, 8),
      cur + 1,
      rng.below(s.len + 2),
    ]);
    writeInt(b, s.at, s.size, BigInt(Math.max(0, v)), true);
    return b;
  }
  if (choice === 1) {
    const s = rng.pick(f.slots);
    const o = rng.pick(f.slots.filter((x) => x.size === s.size));
    const a = readLE(b, s.at, s.size);
    writeInt(b, s.at, s.size, readLE(b, o.at, o.size), true);
    writeInt(b, o.at, o.size, a, true);
    return b;
  }
  if (choice === 2) {
    const [start, end] = rng.pick(f.types);
    if (rng.chance(0.5))
      return concat([b.subarray(0, start), fromLatin1(rng.pick(TYPE_STRINGS)), b.subarray(end)]);
    const i = rng.range(start, Math.max(start, end - 1));
    if (i < b.length) b[i] = "ybnqiuxthdsogvam(){}".charCodeAt(rng.below(20));
    return b;
  }
  if (choice === 3) {
    // drop or move a string terminator
    const i = rng.pick(f.nuls);
    b[i] = rng.pick([0x41, 0x2f, 0xff, 0x80]);
    return b;
  }
  // cut at a framing boundary
  const cuts = [...f.slots.map((s) => s.at), ...f.types.map(([s]) => s), ...f.nuls];
  return cuts.length ? b.slice(0, rng.pick(cuts)) : b;
}

// ---- value-level mutations, re-encoded ---------------------------------------------------------------

const STRINGS = [
  "",
  ".",
  "..",
  "/",
  "a/b",
  "a",
  "ostree.composefs.digest.v0",
  "ostree.sign.ed25519",
  "ostree.ref-binding",
  "ostree.collection-binding",
  "version",
  "x".repeat(255),
  "x".repeat(256),
  "x".repeat(70_000),
  "é",
  "\u{10ffff}",
  "-",
  " ",
];

const bswap32 = (v: number) =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
const MODES = [0o40755, 0o100644, 0o120777, 0o170000, 0o20644, 0o40000 | 0o7777, 0o47777, 0];
const U32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, ...MODES, ...MODES.map(bswap32)];
const DUP_BYTES = 1 << 20;
const BYTE_LENGTHS = [0, 1, 20, 31, 32, 33, 63, 64, 65, 256];

function randomBytes(rng: Rng): Uint8Array {
  return rng.bytes(rng.pick(BYTE_LENGTHS));
}

/** A random value of type `t`; nested variants and arrays stay small. */
export function randomValue(t: GType, rng: Rng, depth = 0): GVariantValue {
  switch (t.kind) {
    case "b":
      return rng.chance(0.5);
    case "y":
      return rng.pick([0, 1, 0x7f, 0x80, 0xff]);
    case "n":
      return rng.pick([-32768, -1, 0, 1, 32767]);
    case "q":
      return rng.pick([0, 1, 0x8000, 0xffff]);
    case "i":
    case "h":
      return rng.pick([-(2 ** 31), -1, 0, 1, 2 ** 31 - 1]);
    case "u":
      return rng.pick(U32);
    case "x":
      return BigInt.asIntN(64, rng.pick(INTERESTING_64));
    case "t":
      return BigInt.asUintN(64, rng.pick(INTERESTING_64));
    case "d":
      return rng.pick([0, -0, Number.NaN, Number.POSITIVE_INFINITY, 1e308, 5e-324]);
    case "s":
      return rng.pick(STRINGS);
    case "o":
      return rng.pick(["/", "/a", "/a/b_c"]);
    case "g":
      return rng.pick(["", "s", "a{sv}", "(ii)"]);
    case "v": {
      const vt = depth > 3 ? "ay" : rng.pick(TYPE_STRINGS.slice(0, 22));
      const ct = parseType(vt);
      return new Variant(ct.str, randomValue(ct, rng, depth + 1));
    }
    case "m":
      return rng.chance(0.5) || depth > 4 ? [] : [randomValue(t.elem!, rng, depth + 1)];
    case "a": {
      if (t.elem!.kind === "y") return randomBytes(rng);
      const n = depth > 4 ? 0 : rng.below(4);
      return Array.from({ length: n }, () => randomValue(t.elem!, rng, depth + 1));
    }
    default:
      return (t.members ?? []).map((m) => randomValue(m.type, rng, depth + 1));
  }
}

/** `v` (of type `t`) with one node changed; shared parts are not modified. */
export function mutateValue(t: GType, v: GVariantValue, rng: Rng, depth = 0): GVariantValue {
  const descend = depth < 32 && rng.chance(0.8);
  if (t.kind === "v" && v instanceof Variant && descend) {
    const ct = tryParseType(v.type);
    if (ct) return new Variant(v.type, mutateValue(ct, v.value, rng, depth + 1));
  }
  if ((t.kind === "(" || t.kind === "{") && Array.isArray(v) && v.length > 0 && descend) {
    const k = rng.below(v.length);
    const out = [...v];
    out[k] = mutateValue(t.members![k]!.type, v[k]!, rng, depth + 1);
    return out;
  }
  if ((t.kind === "a" || t.kind === "m") && Array.isArray(v) && v.length > 0 && descend) {
    const k = rng.below(v.length);
    const out = [...v];
    out[k] = mutateValue(t.elem!, v[k]!, rng, depth + 1);
    return out;
  }
  if (t.kind === "a" && v instanceof Uint8Array) {
    if (rng.chance(0.3) && v.length > 0) {
      const c = v.slice();
      const i = rng.below(c.length);
      c[i] = (c[i] ?? 0) ^ (1 << rng.below(8));
      return c;
    }
    return rng.chance(0.3) ? v.slice(0, rng.below(v.length + 1)) : randomBytes(rng);
  }
  if (t.kind === "a" && Array.isArray(v)) {
    const out = [...v];
    const k = rng.below(out.length);
    switch (rng.below(6)) {
      case 0:
        return [];
      case 1:
        out.splice(k, 1);
        return out;
      case 2: {
        const e = out[k];
        if (e === undefined) return out;
        // copies up to about 1 MiB, whatever the element's size
        let size = 1;
        try {
          size += encode(t.elem!, e).length;
        } catch {
          // not encodable: the whole value falls back below anyway
        }
        const n = Math.min(rng.pick([1, 2, 100, 300]), Math.max(1, Math.floor(DUP_BYTES / size)));
        out.splice(k, 0, ...Array.from({ length: n }, () => e));
        return out;
      }
      case 3: {
        const j = rng.below(out.length);
        if (out.length > 1) [out[k], out[j]] = [out[j]!, out[k]!];
        return out;
      }
      case 4:
        out.splice(k, 0, randomValue(t.elem!, rng, depth + 1));
        return out;
      default:
        return out.reverse();
    }
  }
  return randomValue(t, rng, depth + 1);
}

/**
 * The GVariant mutator: byte-level changes, framing-offset and type-string changes, and value changes
 * re-encoded in normal form (then sometimes a framing or byte change on top).
 */
export function gvariant(type: string, seeds: readonly Uint8Array[], maxOps = 6): Mutator {
  const t = parseType(type);
  const values = seeds.map((s) => decode(t, s));
  return (rng) => {
    const k = rng.below(seeds.length);
    let b: Uint8Array = seeds[k]!.slice();
    const kind = rng.weighted([4, 3, 3]);
    if (kind === 2) {
      let v = values[k]!;
      for (let n = rng.count(3); n > 0; n--) v = mutateValue(t, v, rng);
      try {
        b = encode(t, v);
      } catch {
        // a value the encoder refuses (e.g. a string with a NUL): fall back to framing changes
      }
      if (rng.chance(0.7)) return b;
    }
    for (let n = rng.count(maxOps); n > 0; n--) {
      b = kind === 0 || rng.chance(0.3) ? byteOp(rng, b, seeds) : framingOp(rng, t, b);
    }
    return b;
  };
}
