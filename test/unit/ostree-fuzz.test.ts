// Property tests (fast-check, fixed seeds) for the GVariant codec and the ostree object decoders over
// hostile input: mutated and truncated real commits, commitmeta, dirtrees, dirmeta and file headers, and
// random bytes. Each input must decode to a value or throw FormatError — never another exception, never
// hang — and whatever decodes must re-encode to normal form that decodes to the same value.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/base/errors.ts";
import { decode, encode, type GVariantValue, isNormalForm, print } from "../../src/formats/gvariant.ts";
import {
  COMMIT_TYPE,
  COMMITMETA_TYPE,
  DIRMETA_TYPE,
  DIRTREE_TYPE,
  decodeCommit,
  decodeCommitmeta,
  decodeDirmeta,
  decodeDirtree,
  decodeFileHeader,
  decodeFilemeta,
  decodeZlibFileHeader,
  FILE_HEADER_TYPE,
  splitLenPrefixed,
  validateCommit,
  validateDirmeta,
  validateDirtree,
  ZLIB_FILE_HEADER_TYPE,
} from "../../src/formats/ostree/objects.ts";
import { extracted } from "../helpers/fixtures.ts";

const SEED = 20260401;
const RUNS = 14_000;

function samples(ext: string, limit = 12): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const tar of ["ostree/repo-bare-user.tar", "ostree/repo-archive-z2.tar"]) {
    const dir = join(extracted(tar), "objects");
    for (const xx of readdirSync(dir).sort()) {
      for (const f of readdirSync(join(dir, xx)).sort()) {
        if (f.endsWith(`.${ext}`) && out.length < limit)
          out.push(new Uint8Array(readFileSync(join(dir, xx, f))));
      }
    }
  }
  return out;
}

type Op =
  | { k: "flip"; at: number; bit: number }
  | { k: "set"; at: number; v: number }
  | { k: "cut"; at: number }
  | { k: "ins"; at: number; b: Uint8Array }
  | { k: "del"; at: number; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    k: fc.constant("set" as const),
    at: fc.nat(),
    v: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x28, 0x29, 0x61, 0x7b),
  }),
  fc.record({ k: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("ins" as const), at: fc.nat(), b: fc.uint8Array({ maxLength: 6 }) }),
  fc.record({ k: fc.constant("del" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(base: Uint8Array, ops: Op[]): Uint8Array {
  let b = base.slice();
  for (const o of ops) {
    const at = b.length ? o.at % (b.length + 1) : 0;
    if (o.k === "flip" && at < b.length) b[at] = b[at]! ^ (1 << o.bit);
    else if (o.k === "set" && at < b.length) b[at] = o.v;
    else if (o.k === "cut") b = b.slice(0, at);
    else if (o.k === "ins") b = Uint8Array.from([...b.subarray(0, at), ...o.b, ...b.subarray(at)]);
    else if (o.k === "del") b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + o.n)]);
  }
  return b;
}

/** Runs `fn`; only FormatError may escape. */
function onlyFormatError(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof FormatError) return true;
    throw e;
  }
}

/**
 * Decodes leniently, then checks the value re-encodes to normal form (encode(decode(normal)) === normal,
 * so decoding it gives the same value back), and that it prints.
 */
function roundTrips(type: string, bytes: Uint8Array): void {
  const v: GVariantValue = decode(type, bytes);
  const normal = encode(type, v);
  if (!isNormalForm(type, normal)) throw new Error(`re-encoded ${type} is not normal form`);
  print(type, v);
}

const TARGETS: Array<[string, string, string, (b: Uint8Array) => void]> = [
  ["commit", "commit", COMMIT_TYPE, (b) => validateCommit(decodeCommit(b), "fuzz")],
  ["commitmeta", "commitmeta", COMMITMETA_TYPE, (b) => void decodeCommitmeta(b)],
  ["dirtree", "dirtree", DIRTREE_TYPE, (b) => validateDirtree(decodeDirtree(b), "fuzz")],
  ["dirmeta", "dirmeta", DIRMETA_TYPE, (b) => validateDirmeta(decodeDirmeta(b), "fuzz")],
  [
    "archive file header",
    "filez",
    ZLIB_FILE_HEADER_TYPE,
    (b) => {
      const { header } = splitLenPrefixed(b, "fuzz");
      decodeZlibFileHeader(header);
    },
  ],
];

describe("ostree decoders on mutated and truncated objects", () => {
  it.each(TARGETS)(
    `%s: ${RUNS} mutations give a value or FormatError, and values round-trip`,
    (_n, ext, type, decodeFn) => {
      const base = samples(ext).map((b) => (ext === "filez" ? b.subarray(0, Math.min(b.length, 256)) : b));
      expect(base.length).toBeGreaterThan(0);
      fc.assert(
        fc.property(fc.nat(base.length - 1), fc.array(op, { minLength: 1, maxLength: 6 }), (i, ops) => {
          const bytes = mutate(base[i]!, ops);
          onlyFormatError(() => decodeFn(bytes));
          if (ext === "filez")
            onlyFormatError(() => roundTrips(type, splitLenPrefixed(bytes, "fuzz").header));
          else roundTrips(type, bytes);
        }),
        { seed: SEED, numRuns: RUNS },
      );
    },
  );
});

describe("GVariant decode() on random bytes", () => {
  const TYPES = [
    COMMIT_TYPE,
    COMMITMETA_TYPE,
    DIRTREE_TYPE,
    DIRMETA_TYPE,
    FILE_HEADER_TYPE,
    ZLIB_FILE_HEADER_TYPE,
    "v",
    "av",
    "a{sv}",
    "mv",
    "(yv)",
    "aay",
    "as",
    "(ss)",
    "ao",
    "ag",
    "md",
    "a(y)",
    "a()",
  ];
  it(`${RUNS * 2} random inputs for ${TYPES.length} types give a value or FormatError, and values round-trip`, () => {
    fc.assert(
      fc.property(fc.constantFrom(...TYPES), fc.uint8Array({ maxLength: 300 }), (type, bytes) => {
        onlyFormatError(() => roundTrips(type, bytes));
      }),
      { seed: SEED + 1, numRuns: RUNS * 2 },
    );
  });

  it(`${RUNS} random variants with random type strings give a value or FormatError`, () => {
    const typeChar = fc.constantFrom(..."bynqiuxthdsogvam(){}".split(""));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.array(typeChar, { minLength: 1, maxLength: 24 }),
        (body, chars) => {
          const t = new TextEncoder().encode(chars.join(""));
          const bytes = new Uint8Array(body.length + 1 + t.length);
          bytes.set(body);
          bytes.set(t, body.length + 1);
          onlyFormatError(() => roundTrips("v", bytes));
          onlyFormatError(() => decodeFileHeader(bytes));
          onlyFormatError(() => decodeFilemeta(bytes));
        },
      ),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });
});
