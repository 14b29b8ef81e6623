import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/base/errors.ts";
import { dumpTree } from "../../src/formats/composefs/dump-print.ts";
import type { Inode } from "../../src/formats/composefs/tree.ts";
import { readErofs } from "../../src/formats/erofs/read.ts";
import { COMPOSEFS, OSTREE } from "../helpers/fixtures.ts";

// Hostile-input property: mutants of real composefs images (byte flips, field overwrites with boundary
// values, truncations, insertions and deletions at structure offsets) either read and print, or throw
// FormatError — never another exception, never a hang. Fixed seeds; 4 × 26,000 = 104,000 mutants.

const SEED_IMAGES = [
  "root-only",
  "hardlinks",
  "whiteouts",
  "xattrs-many",
  "xattrs-shared",
  "symlinks",
  "inline-small",
  "inline-limits",
  "devices-fifos-sockets",
  "payload-files",
  "large-files",
  "ids-large",
  "mtimes",
  "overlay-xattrs",
  "utf8-names",
  "mixed-types-dir",
  "dir-tail-boundaries",
  "symlink-block-boundary",
].map((n) => join(COMPOSEFS, `${n}.cfs`));
SEED_IMAGES.push(join(OSTREE, "cfs/c2.cfs"));

interface Seed {
  bytes: Uint8Array;
  /** Offsets of header, superblock, inode and directory-block fields. */
  offsets: number[];
}

function structureOffsets(bytes: Uint8Array): number[] {
  const img = readErofs(bytes);
  const out = new Set<number>();
  for (let i = 0; i < 32; i++) out.add(i);
  for (let i = 1024; i < 1152; i++) out.add(i);
  const meta = img.superblock.metaBlkaddr * 4096;
  const stack: Inode[] = [img.root];
  const seen = new Set<Inode>();
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (let k = 0; k < 96; k++) out.add(meta + img.nids.get(n)! * 32 + k);
    for (const e of n.children) stack.push(e.inode);
  }
  for (let b = img.superblock.xattrBlkaddr * 4096; b < bytes.length; b += 4096) {
    for (let k = 0; k < 64; k++) out.add(b + k);
  }
  return [...out].filter((o) => o < bytes.length).sort((a, b) => a - b);
}

const seeds: Seed[] = SEED_IMAGES.map((p) => {
  const bytes = new Uint8Array(readFileSync(p));
  return { bytes, offsets: structureOffsets(bytes) };
});

const INTERESTING = [
  0, 1, 2, 3, 4, 11, 12, 13, 24, 31, 32, 36, 255, 256, 2047, 2048, 4095, 4096, 4097, 0x7fff, 0xffff,
];

type Op =
  | { kind: "flip"; pick: number; structural: boolean; bit: number }
  | { kind: "set"; pick: number; width: 1 | 2 | 4 | 8; value: number; negate: boolean }
  | { kind: "truncate"; pick: number; aligned: boolean }
  | { kind: "insert"; pick: number; data: Uint8Array }
  | { kind: "delete"; pick: number; count: number };

const pick = fc.nat({ max: 0x7fffffff });
const flip = fc.record({
  kind: fc.constant("flip" as const),
  pick,
  structural: fc.boolean(),
  bit: fc.nat(7),
});
const set = fc.record({
  kind: fc.constant("set" as const),
  pick,
  width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
  value: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat()),
  negate: fc.boolean(),
});
const truncate = fc.record({ kind: fc.constant("truncate" as const), pick, aligned: fc.boolean() });
const insert = fc.record({
  kind: fc.constant("insert" as const),
  pick,
  data: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.constant(new Uint8Array(4096))),
});
const del = fc.record({
  kind: fc.constant("delete" as const),
  pick,
  count: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(4096)),
});

function apply(seed: Seed, ops: Op[]): Uint8Array {
  let b = seed.bytes.slice();
  const at = (p: number) => seed.offsets[p % seed.offsets.length]! % Math.max(1, b.length);
  for (const op of ops) {
    if (op.kind === "flip") {
      const i = op.structural ? at(op.pick) : op.pick % Math.max(1, b.length);
      if (i < b.length) b[i]! ^= 1 << op.bit;
    } else if (op.kind === "set") {
      const i = at(op.pick);
      const v = new DataView(b.buffer);
      if (i + op.width > b.length) continue;
      if (op.width === 1) v.setUint8(i, op.value & 0xff);
      else if (op.width === 2) v.setUint16(i, op.value & 0xffff, true);
      else if (op.width === 4) v.setUint32(i, op.negate ? ~op.value >>> 0 : op.value >>> 0, true);
      else v.setBigUint64(i, op.negate ? ~BigInt(op.value) & 0xffffffffffffffffn : BigInt(op.value), true);
    } else if (op.kind === "truncate") {
      const len = op.pick % (b.length + 1);
      b = b.slice(0, op.aligned ? len - (len % 4096) : len);
    } else if (op.kind === "insert") {
      const i = at(op.pick);
      const next = new Uint8Array(b.length + op.data.length);
      next.set(b.subarray(0, i));
      next.set(op.data, i);
      next.set(b.subarray(i), i + op.data.length);
      b = next;
    } else {
      const i = at(op.pick);
      const end = Math.min(b.length, i + op.count);
      const next = new Uint8Array(b.length - (end - i));
      next.set(b.subarray(0, i));
      next.set(b.subarray(end), i);
      b = next;
    }
  }
  return b;
}

const stats = { runs: 0, accepted: 0, slowestMs: 0 };

/** Reads and prints; only FormatError may escape. Returns whether the mutant was accepted. */
function survive(bytes: Uint8Array): boolean {
  const t = performance.now();
  let accepted: boolean;
  try {
    dumpTree(readErofs(bytes, { libcomposefsPayloadQuirk: true }).root);
    accepted = true;
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    expect(e.message.startsWith("Cannot read composefs image: ")).toBe(true);
    accepted = false;
  }
  let ms = performance.now() - t;
  // once more when slow: a GC pause or a busy machine is not the input's doing, and the read is
  // deterministic
  if (ms >= SLOW_MS) ms = Math.min(ms, timed(bytes));
  stats.runs++;
  stats.slowestMs = Math.max(stats.slowestMs, ms);
  return accepted;
}

const SLOW_MS = 1000;

/** How long reading and printing `bytes` takes (its outcome was judged by survive()). */
function timed(bytes: Uint8Array): number {
  const t = performance.now();
  try {
    dumpTree(readErofs(bytes, { libcomposefsPayloadQuirk: true }).root);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
  }
  return performance.now() - t;
}

const RUNS = 26_000;
const property = (op: fc.Arbitrary<Op>) =>
  fc.property(fc.nat(seeds.length - 1), fc.array(op, { minLength: 1, maxLength: 4 }), (s, ops) => {
    if (survive(apply(seeds[s]!, ops))) stats.accepted++;
  });

describe("readErofs() on mutated composefs images returns or throws FormatError", () => {
  it("byte flips anywhere and at structure offsets", () => {
    fc.assert(property(flip), { seed: 0x5ea1, numRuns: RUNS });
  });
  it("field overwrites with boundary values at structure offsets", () => {
    fc.assert(property(set), { seed: 0x5ea2, numRuns: RUNS });
  });
  it("truncations, insertions and deletions at structure offsets", () => {
    fc.assert(property(fc.oneof(truncate, insert, del)), { seed: 0x5ea3, numRuns: RUNS });
  });
  it("mixed mutations", () => {
    fc.assert(property(fc.oneof(flip, set, truncate, insert, del)), { seed: 0x5ea4, numRuns: RUNS });
  });
  it("ran at least 100,000 mutants, accepted some, and none was slow", () => {
    expect(stats.runs).toBeGreaterThanOrEqual(100_000);
    expect(stats.accepted).toBeGreaterThan(stats.runs / 20);
    expect(stats.accepted).toBeLessThan(stats.runs);
    expect(stats.slowestMs).toBeLessThan(SLOW_MS);
  });
});
