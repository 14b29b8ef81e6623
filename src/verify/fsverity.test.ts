import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { patternBytes } from "../../test/helpers/pattern-file.ts";
import { sha256, sha256Blocks } from "../base/hash.ts";
import { toHex } from "../formats/bytes.ts";
import { FsVerityHasher, fsverityDescriptor, fsverityDigest } from "./fsverity.ts";

const BLOCK = 4096;

/** Digests printed by `fsverity digest` (fsverity-utils 1.5) for the pattern of each size. */
const PATTERN_DIGESTS: [string, number, string][] = [
  ["empty (root hash all zeros)", 0, "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95"],
  ["1 byte", 1, "b803429503d95915829b29fdbc8bbad142f3abfd11b1cadf5526582e685c0551"],
  ["4095 bytes", 4095, "42f727ff8e4def4928dca5abf2d4d66924c9630a8142df530dc98ee5bd4dcc09"],
  ["one block, no tree level", BLOCK, "3b031fe129d64f9ae000e8da4fb9e12248efed3e59b24ec1dcb4e8d47586d1bc"],
  ["one block + 1 byte", BLOCK + 1, "187df60c547a5422ec4c56a8ba6738d1885984d412ba43a5a3dccfc698ca8364"],
  ["two blocks", 2 * BLOCK, "398c95e51c8bb54dc78cda553bb94eadbdb6ea157adee40c8e4abec465cb3b8d"],
  [
    "128 blocks: one full level-1 block",
    128 * BLOCK,
    "382c4a33dff51aaea54cce01b7ed4bd2d5f55de6fe04928a084eebbd492372f1",
  ],
  [
    "128 blocks + 1 byte: second level",
    128 * BLOCK + 1,
    "25472917a23d0a0bef50772187e7b3018104ef9dda983b2ee131931fa0227bd1",
  ],
  [
    "129 blocks + 1 byte",
    129 * BLOCK + 1,
    "dc412988b6edcc333dbd1d8c907a3bf370e6aa4b93b1098c0986d786e7266623",
  ],
  [
    "128² blocks: two full levels",
    128 * 128 * BLOCK,
    "84373980226d8a71918f1a50224825e0db8e44246dab025c0c325c2c1b1a7b47",
  ],
  [
    "128² blocks + 1 byte: third level",
    128 * 128 * BLOCK + 1,
    "52cbceb43f81c015aadd64ec5022ed97df90e58453dfd76c4a174ed799e13bab",
  ],
];

describe("fsverityDigest()", () => {
  it.each(PATTERN_DIGESTS)("equals `fsverity digest` for %s (%i bytes)", (_, size, digest) => {
    expect(toHex(fsverityDigest(patternBytes(size)))).toBe(digest);
  });

  it("hashes the descriptor of an empty file with an all-zero root hash", () => {
    expect(toHex(fsverityDigest(new Uint8Array(0)))).toBe(
      toHex(sha256(fsverityDescriptor(0, new Uint8Array(32)))),
    );
  });

  it("zero-pads the last data block: a 1-byte file's root hash is the hash of that byte + 4095 zeros", () => {
    const block = new Uint8Array(BLOCK);
    block[0] = 0xab;
    const expected = sha256(fsverityDescriptor(1, sha256(block)));
    expect(toHex(fsverityDigest(new Uint8Array([0xab])))).toBe(toHex(expected));
  });

  it("builds one tree level for two blocks: root = hash(hash(b0) ‖ hash(b1) ‖ zeros)", () => {
    const data = patternBytes(2 * BLOCK);
    const level = new Uint8Array(BLOCK);
    level.set(sha256(data.subarray(0, BLOCK)), 0);
    level.set(sha256(data.subarray(BLOCK)), 32);
    expect(toHex(fsverityDigest(data))).toBe(toHex(sha256(fsverityDescriptor(2 * BLOCK, sha256(level)))));
  });
});

describe("fsverityDescriptor()", () => {
  it("lays out struct fsverity_descriptor: v1, SHA-256, log_blocksize 12, le64 size, root hash, zeros", () => {
    const root = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    const d = fsverityDescriptor(0x0102030405, root);
    expect(d.length).toBe(256);
    expect(toHex(d.subarray(0, 16))).toBe("01010c00" + "00000000" + "0504030201000000");
    expect(d.subarray(16, 48)).toEqual(root);
    expect(d.subarray(48).every((b) => b === 0)).toBe(true);
  });
});

describe("FsVerityHasher streaming", () => {
  const data = patternBytes(129 * BLOCK + 1);
  const whole = toHex(fsverityDigest(data));

  function streamed(sizes: (i: number) => number): string {
    const h = new FsVerityHasher();
    for (let at = 0, i = 0; at < data.length; i++) {
      const n = sizes(i);
      h.update(data.subarray(at, at + n));
      at += n;
    }
    return toHex(h.digest());
  }

  it.each([1, 7, 31, 4095, 4096, 4097, 8191, 65536, 1 << 20])(
    "gives the same digest in %i-byte chunks",
    (n) => {
      expect(streamed(() => n)).toBe(whole);
    },
  );

  it("gives the same digest for any split into chunks, empty ones included (fixed seed)", () => {
    const sizes = fc.oneof(
      fc.constantFrom(0, 1, 7, 31, 4095, 4096, 4097, 128 * BLOCK, 128 * BLOCK + 1),
      fc.integer({ min: 0, max: 3 * BLOCK }),
    );
    fc.assert(
      fc.property(fc.array(sizes, { minLength: 1, maxLength: 40 }), (list) => {
        expect(streamed((i) => list[i % list.length] || 1)).toBe(whole);
        const h = new FsVerityHasher();
        h.update(new Uint8Array(0));
        let at = 0;
        for (const n of list) {
          h.update(data.subarray(at, at + n));
          at += n;
          h.update(new Uint8Array(0));
        }
        h.update(data.subarray(at));
        expect(toHex(h.digest())).toBe(whole);
      }),
      { seed: 20260401, numRuns: 60 },
    );
  });

  it("refuses update() and a second digest() after digest()", () => {
    const h = new FsVerityHasher().update(new Uint8Array(1));
    h.digest();
    expect(() => h.update(new Uint8Array(1))).toThrow("FsVerityHasher.update() after digest()");
    expect(() => h.digest()).toThrow("FsVerityHasher.digest() called twice");
  });
});

describe("sha256Blocks()", () => {
  it("writes each block's SHA-256 back to back from the output offset", () => {
    const data = patternBytes(3 * BLOCK);
    const out = new Uint8Array(8 + 3 * 32);
    sha256Blocks(data, BLOCK, out, 8);
    expect(out.subarray(0, 8)).toEqual(new Uint8Array(8));
    for (let i = 0; i < 3; i++) {
      expect(out.subarray(8 + 32 * i, 40 + 32 * i)).toEqual(
        sha256(data.subarray(i * BLOCK, (i + 1) * BLOCK)),
      );
    }
  });

  it.each([
    ["a partial block", 4097, 64],
    ["too small an output", 8192, 63],
  ])("refuses %s", (_, size, outSize) => {
    expect(() => sha256Blocks(new Uint8Array(size), BLOCK, new Uint8Array(outSize))).toThrow(RangeError);
  });
});
