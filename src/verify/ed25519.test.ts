import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { extracted, OSTREE, ostreeExpected } from "../../test/helpers/fixtures.ts";
import { FormatError } from "../base/errors.ts";
import { fromHex, toHex } from "../formats/bytes.ts";
import { loosePath } from "../formats/ostree/objects.ts";
import {
  checkSecretKey,
  generateKeyPair,
  hasSmallOrderEncoding,
  isCanonicalPointEncoding,
  isCanonicalScalar,
  publicFromSeed,
  sign,
  verifyDetached,
} from "./ed25519.ts";

interface ExpectedKey {
  seed_hex: string;
  public_hex: string;
}
interface ExpectedCommit {
  checksum: string;
  ed25519_signatures_hex: string[];
  signed_by: ("primary" | "other")[];
}
const expected = ostreeExpected() as {
  keys: Record<"primary" | "other", ExpectedKey>;
  commits: ExpectedCommit[];
};
const keyFile = (name: string) => new Uint8Array(readFileSync(join(OSTREE, "keys", name)));

const keys = {
  primary: generateKeyPair(keyFile("ed25519.seed.raw")),
  other: generateKeyPair(keyFile("ed25519-other.seed.raw")),
};
const otherName = (k: "primary" | "other") => (k === "primary" ? "other" : "primary");

function commitBytes(checksum: string): Uint8Array {
  const repo = extracted("ostree/repo-bare-user.tar");
  return new Uint8Array(readFileSync(join(repo, "objects", loosePath(checksum, "commit"))));
}

describe("keys from the ostree fixtures", () => {
  it.each([
    [
      "ed25519.seed.raw",
      "ed25519.pub.raw",
      "143321a046bc6a167a6ec934ed8d75213bd11d8d748fdad147d377bbb63ece9c",
    ],
    [
      "ed25519-other.seed.raw",
      "ed25519-other.pub.raw",
      "7dc729545331aa886c33ef75b16a24fac1fd873a35ebcb82861440ff98ec617b",
    ],
  ])("publicFromSeed(%s) equals %s", (seed, pub, hex) => {
    const derived = publicFromSeed(keyFile(seed));
    expect(toHex(derived)).toBe(hex);
    expect(derived).toEqual(keyFile(pub));
  });

  it("generateKeyPair() returns seed ‖ public as the secret key", () => {
    const seed = keyFile("ed25519.seed.raw");
    const kp = generateKeyPair(seed);
    expect(toHex(kp.secretKey)).toBe(expected.keys.primary.seed_hex + expected.keys.primary.public_hex);
    expect(toHex(kp.publicKey)).toBe(expected.keys.primary.public_hex);
  });
});

describe("signatures over the fixture commits", () => {
  const cases = expected.commits.flatMap((c) =>
    c.signed_by.map((who, i) => ({ checksum: c.checksum, who, sig: c.ed25519_signatures_hex[i] ?? "" })),
  );

  it.each(cases)("sign() reproduces the $who signature of commit $checksum", ({ checksum, who, sig }) => {
    expect(toHex(sign(commitBytes(checksum), keys[who].secretKey))).toBe(sig);
  });

  it.each(cases)(
    "verifyDetached() accepts the $who signature of $checksum only under its key",
    ({ checksum, who, sig }) => {
      const msg = commitBytes(checksum);
      expect(verifyDetached(fromHex(sig), msg, keys[who].publicKey)).toBe(true);
      expect(verifyDetached(fromHex(sig), msg, keys[otherName(who)].publicKey)).toBe(false);
    },
  );

  it("verifyDetached() rejects the signature with one bit flipped (bad/c2.commitmeta.corrupt-signature)", () => {
    const meta = new Uint8Array(readFileSync(join(OSTREE, "bad/c2.commitmeta.corrupt-signature")));
    const corrupt = meta.subarray(24, 88);
    const good = fromHex(expected.commits[1]?.ed25519_signatures_hex[0] ?? "");
    expect(corrupt.map((b, i) => b ^ (good[i] ?? 0)).findIndex((x) => x !== 0)).toBe(10);
    expect(
      verifyDetached(corrupt, commitBytes(expected.commits[1]?.checksum ?? ""), keys.primary.publicKey),
    ).toBe(false);
    expect(
      verifyDetached(good, commitBytes(expected.commits[1]?.checksum ?? ""), keys.primary.publicKey),
    ).toBe(true);
  });

  it("verifyDetached() rejects a signature over other bytes", () => {
    const msg = commitBytes(expected.commits[0]?.checksum ?? "");
    const sig = sign(msg, keys.primary.secretKey);
    const changed = Uint8Array.from(msg);
    changed[changed.length - 1] = (changed[changed.length - 1] ?? 0) ^ 1;
    expect(verifyDetached(sig, changed, keys.primary.publicKey)).toBe(false);
  });

  it("verifies a signature in milliseconds", () => {
    const msg = commitBytes(expected.commits[1]?.checksum ?? "");
    const sig = fromHex(expected.commits[1]?.ed25519_signatures_hex[0] ?? "");
    verifyDetached(sig, msg, keys.primary.publicKey);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) verifyDetached(sig, msg, keys.primary.publicKey);
    expect((performance.now() - t0) / 10).toBeLessThan(50);
  });
});

describe("sizes are checked first, with the sizes in the message", () => {
  const msg = new Uint8Array(3);
  it.each([
    [63, 32, "Cannot verify signature: ed25519 signature is 63 bytes, expected 64"],
    [65, 32, "Cannot verify signature: ed25519 signature is 65 bytes, expected 64"],
    [0, 32, "Cannot verify signature: ed25519 signature is 0 bytes, expected 64"],
    [64, 31, "Cannot verify signature: ed25519 public key is 31 bytes, expected 32"],
    [64, 33, "Cannot verify signature: ed25519 public key is 33 bytes, expected 32"],
  ])("verifyDetached() with a %i-byte signature and %i-byte key throws FormatError", (s, k, message) => {
    const call = () => verifyDetached(new Uint8Array(s), msg, new Uint8Array(k));
    expect(call).toThrow(FormatError);
    expect(call).toThrow(message);
  });

  it.each([
    [
      "publicFromSeed",
      () => publicFromSeed(new Uint8Array(31)),
      "Cannot derive public key: ed25519 seed is 31 bytes, expected 32",
    ],
    [
      "generateKeyPair",
      () => generateKeyPair(new Uint8Array(64)),
      "Cannot generate key pair: ed25519 seed is 64 bytes, expected 32",
    ],
    [
      "sign",
      () => sign(msg, new Uint8Array(32)),
      "Cannot use ed25519 secret key: ed25519 secret key is 32 bytes, expected 64",
    ],
  ])("%s() rejects a wrong-size key", (_name, call, message) => {
    expect(call).toThrow(FormatError);
    expect(call).toThrow(message);
  });

  it("sign() refuses a secret key whose public half is not the seed's", () => {
    const bad = Uint8Array.from(keys.primary.secretKey);
    bad.set(keys.other.publicKey, 32);
    expect(() => sign(msg, bad)).toThrow(
      `Cannot use ed25519 secret key: public half ${expected.keys.other.public_hex} does not match the seed, expected ${expected.keys.primary.public_hex}`,
    );
    expect(toHex(checkSecretKey(keys.primary.secretKey))).toBe(expected.keys.primary.public_hex);
  });
});

describe("libsodium's encoding checks", () => {
  const L = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";
  const leAdd = (hex: string, delta: number) => {
    const b = fromHex(hex);
    let carry = delta;
    for (let i = 0; i < 32 && carry !== 0; i++) {
      const v = (b[i] ?? 0) + carry;
      b[i] = v & 0xff;
      carry = v >> 8;
    }
    return b;
  };

  it.each([
    ["0", new Uint8Array(32), true],
    ["L − 1", leAdd(L, -1), true],
    ["L", fromHex(L), false],
    ["L + 1", leAdd(L, 1), false],
    ["2^256 − 1", new Uint8Array(32).fill(0xff), false],
  ])("isCanonicalScalar(%s) is %s", (_n, s, ok) => {
    expect(isCanonicalScalar(s)).toBe(ok);
  });

  const P = "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
  it.each([
    ["y = p − 1", leAdd(P, -1), true],
    ["y = p", fromHex(P), false],
    ["y = p with sign bit", fromHex(`${P.slice(0, 62)}ff`), false],
    ["y = 2^255 − 1", fromHex(`${"ff".repeat(31)}7f`), false],
    ["y = 1 with sign bit", fromHex(`01${"00".repeat(30)}80`), true],
  ])("isCanonicalPointEncoding(%s) is %s", (_n, e, ok) => {
    expect(isCanonicalPointEncoding(e)).toBe(ok);
  });

  it.each([
    ["identity", `01${"00".repeat(31)}`, true],
    ["identity with sign bit", `01${"00".repeat(30)}80`, true],
    ["order 2 (y = −1)", `ec${"ff".repeat(30)}7f`, true],
    ["order 4 (y = 0)", "00".repeat(32), true],
    ["order 4 with sign bit", `${"00".repeat(31)}80`, true],
    ["order 8", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", true],
    ["order 8, negated", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", true],
    ["order 8", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", true],
    ["order 8, negated", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", true],
    ["y = p (≡ 0)", P, true],
    ["y = p + 1 (≡ 1)", `ee${"ff".repeat(30)}7f`, true],
    ["y = p + 2 (≡ 2, not listed)", `ef${"ff".repeat(30)}7f`, false],
    ["the primary public key", expected.keys.primary.public_hex, false],
  ])("hasSmallOrderEncoding(%s) is %s", (_n, hex, small) => {
    expect(hasSmallOrderEncoding(fromHex(hex))).toBe(small);
  });
});

describe("hostile input", () => {
  it("verifyDetached() returns a boolean or throws FormatError for any sizes and bytes", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 62, maxLength: 66 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ minLength: 30, maxLength: 34 }),
        (sig, msg, pub) => {
          try {
            expect(typeof verifyDetached(sig, msg, pub)).toBe("boolean");
          } catch (e) {
            if (!(e instanceof FormatError)) throw e;
            expect(sig.length !== 64 || pub.length !== 32).toBe(true);
          }
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
});
