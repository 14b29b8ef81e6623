// Format-blind mutators of the fuzz tier: byte flips, boundary integers at any width and endianness,
// small arithmetic, inserts, deletes, duplications, truncations and splices between seeds (bytes.ts);
// and a token-level mutator for the text formats that swaps, drops, repeats and replaces tokens from a
// dictionary (text()). Format-aware mutators (gvariant-mutate.ts, erofs-mutate.ts) build on these.

import { concat } from "../../src/formats/bytes.ts";
import type { Rng } from "./rng.ts";

/** Makes one input from the generator of its iteration. */
export type Mutator = (rng: Rng) => Uint8Array;

export const INTERESTING_8 = [0, 1, 2, 0x0f, 0x10, 0x20, 0x2f, 0x3d, 0x7f, 0x80, 0x81, 0xfe, 0xff];
export const INTERESTING_16 = [
  0, 1, 2, 0xff, 0x100, 0x101, 0x7ff, 0x800, 0xfff, 0x1000, 0x1001, 0x7fff, 0x8000, 0xfffe, 0xffff,
];
export const INTERESTING_32 = [
  0, 1, 2, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 4095, 4096, 4097,
  0x00100000, 0x01000000,
];
export const INTERESTING_64 = [
  0n,
  1n,
  0xffffffffn,
  0x100000000n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n,
];

export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

export function fromLatin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Writes `value` (number or bigint) as `width` bytes at `at`, little- or big-endian; clipped at the end. */
export function writeInt(
  b: Uint8Array,
  at: number,
  width: number,
  value: number | bigint,
  le: boolean,
): void {
  let v = BigInt.asUintN(width * 8, BigInt(value));
  for (let k = 0; k < width; k++) {
    const i = le ? at + k : at + width - 1 - k;
    if (i >= 0 && i < b.length) b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

export function readInt(b: Uint8Array, at: number, width: number, le: boolean): bigint {
  let v = 0n;
  for (let k = width - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[le ? at + k : at + width - 1 - k] ?? 0);
  return v;
}

/** A boundary value for an integer of `width` bytes; sometimes negated (two's complement). */
export function interesting(rng: Rng, width: number): number | bigint {
  const v =
    width === 1
      ? rng.pick(INTERESTING_8)
      : width === 2
        ? rng.pick(INTERESTING_16)
        : width === 4
          ? rng.pick(INTERESTING_32)
          : rng.pick(INTERESTING_64);
  return rng.chance(0.15) ? -BigInt(v) : v;
}

const WIDTHS = [1, 2, 4, 8];

/** One random byte-level change; `seeds` feeds splices. Returns a new array or `b` changed in place. */
export function byteOp(rng: Rng, b: Uint8Array, seeds: readonly Uint8Array[], at?: number): Uint8Array {
  const pos = () => (at !== undefined && rng.chance(0.7) ? at : rng.below(b.length + 1));
  switch (rng.weighted([10, 8, 6, 4, 5, 5, 4, 3, 3, 3, 2])) {
    case 0: {
      // flip one bit
      const i = Math.min(pos(), b.length - 1);
      if (i >= 0) b[i] = (b[i] as number) ^ (1 << rng.below(8));
      return b;
    }
    case 1: {
      // boundary integer at any width and endianness
      const w = rng.pick(WIDTHS);
      writeInt(b, Math.min(pos(), Math.max(0, b.length - w)), w, interesting(rng, w), rng.chance(0.7));
      return b;
    }
    case 2: {
      // small arithmetic on an integer already there
      const w = rng.pick(WIDTHS);
      const i = Math.min(pos(), Math.max(0, b.length - w));
      const le = rng.chance(0.7);
      const delta = BigInt(rng.range(1, 35)) * (rng.chance(0.5) ? 1n : -1n);
      writeInt(b, i, w, readInt(b, i, w, le) + delta, le);
      return b;
    }
    case 3: {
      // random byte
      const i = Math.min(pos(), b.length - 1);
      if (i >= 0) b[i] = rng.below(256);
      return b;
    }
    case 4: {
      // insert random bytes or a run of one byte
      const i = pos();
      const n = rng.chance(0.8) ? rng.range(1, 16) : rng.range(17, 4096);
      const ins = rng.chance(0.5) ? rng.bytes(n) : new Uint8Array(n).fill(rng.pick(INTERESTING_8));
      return concat([b.subarray(0, i), ins, b.subarray(i)]);
    }
    case 5: {
      // delete a range
      const i = pos();
      const n = rng.chance(0.8) ? rng.range(1, 16) : rng.range(1, Math.max(1, b.length >> 1));
      return concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + n))]);
    }
    case 6: {
      // duplicate a range somewhere else
      const s = rng.below(b.length + 1);
      const n = rng.range(1, Math.max(1, Math.min(256, b.length - s)));
      const chunk = b.slice(s, s + n);
      const i = pos();
      return concat([b.subarray(0, i), chunk, b.subarray(i)]);
    }
    case 7: {
      // overwrite a range with bytes copied from elsewhere in the input
      const s = rng.below(b.length + 1);
      const n = rng.range(1, 64);
      const chunk = b.slice(s, s + n);
      const i = Math.min(pos(), b.length);
      b.set(chunk.subarray(0, b.length - i), i);
      return b;
    }
    case 8:
      // truncate
      return b.slice(0, rng.below(b.length + 1));
    case 9: {
      // splice: a prefix of this input and a suffix of another seed
      const o = rng.pick(seeds);
      return concat([b.subarray(0, pos()), o.subarray(rng.below(o.length + 1))]);
    }
    default: {
      // insert a chunk of another seed
      const o = rng.pick(seeds);
      const s = rng.below(o.length + 1);
      const i = pos();
      return concat([b.subarray(0, i), o.subarray(s, s + rng.range(1, 512)), b.subarray(i)]);
    }
  }
}

/** Stacks 1..maxOps byte-level changes on a copy of a random seed. */
export function bytes(seeds: readonly Uint8Array[], maxOps = 8): Mutator {
  return (rng) => {
    let b: Uint8Array = rng.pick(seeds).slice();
    for (let n = rng.count(maxOps); n > 0; n--) b = byteOp(rng, b, seeds);
    return b;
  };
}

export interface TextOptions {
  /** Splits a text (bytes as latin1) into tokens; separators are kept as their own tokens. */
  split: RegExp;
  /** Tokens to insert or replace with (latin1 strings: one char per byte). */
  dictionary: readonly string[];
  /** Separators to put around an inserted token. */
  separators: readonly string[];
  maxOps?: number;
}

/**
 * Token-level mutations of a text format: replace, insert, duplicate, drop, swap or repeat tokens, take
 * tokens from other seeds, change case; now and then byte-level changes on top.
 */
export function text(seeds: readonly Uint8Array[], o: TextOptions): Mutator {
  const tokenized = seeds.map((s) => latin1(s).split(o.split));
  const all = tokenized.flat().filter((t) => t.length > 0);
  return (rng) => {
    const toks = [...rng.pick(tokenized)];
    for (let n = rng.count(o.maxOps ?? 6); n > 0; n--) {
      const i = rng.below(toks.length + 1);
      const word = () => (rng.chance(0.75) ? rng.pick(o.dictionary) : rng.pick(all));
      switch (rng.weighted([8, 6, 3, 3, 3, 1, 2, 2])) {
        case 0:
          toks[Math.min(i, toks.length - 1)] = word();
          break;
        case 1:
          toks.splice(i, 0, rng.pick(o.separators), word());
          break;
        case 2:
          toks.splice(i, 0, toks[i] ?? word());
          break;
        case 3:
          toks.splice(i, 1);
          break;
        case 4: {
          const j = rng.below(toks.length);
          [toks[i], toks[j]] = [toks[j] ?? "", toks[i] ?? ""];
          break;
        }
        case 5: {
          // one token many times over: long lines, many arguments, many keys
          const t = toks[i] ?? word();
          const sep = rng.chance(0.5) ? rng.pick(o.separators) : "";
          const n = Math.min(rng.range(2, 2000), Math.floor(REPEAT_BYTES / (t.length + sep.length + 1)));
          toks.splice(i, 0, ...Array.from({ length: n }, () => t + sep));
          break;
        }
        case 6: {
          const t = toks[i];
          if (t !== undefined) toks[i] = rng.chance(0.5) ? t.toUpperCase() : t + word();
          break;
        }
        default: {
          const t = toks[i];
          // cut a token short
          if (t !== undefined) toks[i] = t.slice(0, rng.below(t.length + 1));
        }
      }
    }
    let b = fromLatin1(toks.join(""));
    if (rng.chance(0.2)) b = byteOp(rng, b, seeds);
    return b;
  };
}

/** Repetitions stop at about this many bytes, so stacked repeats of long tokens stay small. */
const REPEAT_BYTES = 256 << 10;

/** Chooses among mutators with the given weights. */
export function mix(...parts: Array<[number, Mutator]>): Mutator {
  const weights = parts.map(([w]) => w);
  return (rng) => (parts[rng.weighted(weights)] as [number, Mutator])[1](rng);
}
