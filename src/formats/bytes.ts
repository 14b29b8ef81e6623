// The one bounds-checked byte reader and the byte writer every decoder and encoder goes through.
// Endianness is in each accessor's name. Any read past the end, or over a caller's size cap, throws a
// FormatError naming what was being read, so decoders never see RangeError/TypeError on hostile input.

import { FormatError } from "../base/errors.ts";

export class Reader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;
  /** `what` names the structure being decoded, for error messages. */
  constructor(
    bytes: Uint8Array,
    readonly what = "data",
    pos = 0,
  ) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }

  get length(): number {
    return this.bytes.length;
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throws unless `n` bytes are available at `at` (default: the cursor). */
  need(n: number, field: string, at = this.pos): void {
    if (!Number.isInteger(n) || n < 0 || at < 0 || at + n > this.bytes.length) {
      throw new FormatError(
        `Cannot read ${this.what}: ${field} needs ${n} bytes at offset ${at}, ${Math.max(0, this.bytes.length - at)} available`,
        { what: this.what, field, offset: at, need: n, length: this.bytes.length },
      );
    }
  }

  seek(at: number, field = "offset"): this {
    this.need(0, field, at);
    this.pos = at;
    return this;
  }

  skip(n: number, field = "padding"): this {
    this.need(n, field);
    this.pos += n;
    return this;
  }

  /** A view (no copy) of the next `n` bytes. */
  bytesN(n: number, field = "bytes"): Uint8Array {
    this.need(n, field);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(field = "u8"): number {
    this.need(1, field);
    return this.bytes[this.pos++]!;
  }
  u16le(field = "u16"): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u16be(field = "u16"): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, false);
    this.pos += 2;
    return v;
  }
  u32le(field = "u32"): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u32be(field = "u32"): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, false);
    this.pos += 4;
    return v;
  }
  u64le(field = "u64"): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64be(field = "u64"): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos, false);
    this.pos += 8;
    return v;
  }
}

/** Growable little buffer for encoders. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v;
    return this;
  }
  u16le(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
    return this;
  }
  u16be(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.length, v, false);
    this.length += 2;
    return this;
  }
  u32le(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
    return this;
  }
  u32be(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, v, false);
    this.length += 4;
    return this;
  }
  u64le(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.length, v, true);
    this.length += 8;
    return this;
  }
  u64be(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.length, v, false);
    this.length += 8;
    return this;
  }
  /** Write `v` as unsigned little-endian of `size` bytes at an earlier position (for back-patching). */
  patchU32le(at: number, v: number): this {
    this.view.setUint32(at, v, true);
    return this;
  }

  patchU32be(at: number, v: number): this {
    this.view.setUint32(at, v, false);
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Parses lowercase or uppercase hex; throws FormatError on odd length or a non-hex digit. */
export function fromHex(s: string, what = "hex string"): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new FormatError(`Cannot parse ${what} ${JSON.stringify(s)}: not an even-length hex string`);
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The parts one after another, in a new array (a list, not arguments: a caller may have 100,000). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: false });
const utf8Encoder = new TextEncoder();
export const utf8 = {
  encode: (s: string): Uint8Array => utf8Encoder.encode(s),
  decode: (b: Uint8Array): string => utf8Decoder.decode(b),
};
