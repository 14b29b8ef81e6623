// Public ed25519 vectors against src/verify/ed25519.ts: RFC 8032 §7.1, Wycheproof, and the 12 "Taming the
// many EdDSAs" edge cases, whose expected verdicts are libsodium 1.0.18's (see test/vectors/README.md).
// The same vectors are replayed against libsodium itself in ed25519-libsodium.test.ts.

import * as ed from "@noble/ed25519";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/base/errors.ts";
import { fromHex, toHex } from "../../src/formats/bytes.ts";
import { generateKeyPair, publicFromSeed, sign, verifyDetached } from "../../src/verify/ed25519.ts";
import {
  rfc8032,
  SPECCHECK_LIBSODIUM,
  type SpeccheckCase,
  speccheck,
  wycheproof,
} from "../vectors/vectors.ts";

const rfc = rfc8032();
const wycheproofFile = wycheproof();
const wycheproofTests = wycheproofFile.tests;
const cases = speccheck();

const pattern = (f: (c: SpeccheckCase) => boolean) => cases.map((c) => (f(c) ? "V" : "X")).join("");

describe("RFC 8032 §7.1", () => {
  it("has the five vectors", () => {
    expect(rfc.map((v) => v.name)).toEqual(["TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)"]);
  });

  it.each(rfc)("$name: publicFromSeed, sign and verifyDetached give the RFC's bytes", (v) => {
    const seed = fromHex(v.secretKey);
    const msg = fromHex(v.message);
    expect(toHex(publicFromSeed(seed))).toBe(v.publicKey);
    expect(toHex(sign(msg, generateKeyPair(seed).secretKey))).toBe(v.signature);
    expect(verifyDetached(fromHex(v.signature), msg, fromHex(v.publicKey))).toBe(true);
  });

  it.each(rfc)("$name: verifyDetached rejects the signature over a changed message", (v) => {
    const msg = Uint8Array.from([...fromHex(v.message), 0]);
    expect(verifyDetached(fromHex(v.signature), msg, fromHex(v.publicKey))).toBe(false);
  });
});

describe("Wycheproof ed25519_test.json", () => {
  it("has 151 tests: 88 valid, 63 invalid, none acceptable", () => {
    expect(wycheproofTests).toHaveLength(wycheproofFile.numberOfTests);
    expect(wycheproofTests).toHaveLength(151);
    expect(wycheproofTests.filter((t) => t.result === "valid")).toHaveLength(88);
    expect(wycheproofTests.filter((t) => t.result === "invalid")).toHaveLength(63);
  });

  const full = wycheproofTests.filter((t) => t.sig.length === 128);
  const wrongSize = wycheproofTests.filter((t) => t.sig.length !== 128);

  it.each(full)("$label: verdict is $result", (t) => {
    expect(t.result).not.toBe("acceptable");
    expect(verifyDetached(fromHex(t.sig), fromHex(t.msg), fromHex(t.pk))).toBe(t.result === "valid");
  });

  it.each(wrongSize)("$label: a $sig.length-hex-digit signature is a FormatError", (t) => {
    expect(t.result).toBe("invalid");
    const call = () => verifyDetached(fromHex(t.sig), fromHex(t.msg), fromHex(t.pk));
    expect(call).toThrow(FormatError);
    expect(call).toThrow(`ed25519 signature is ${t.sig.length / 2} bytes, expected 64`);
  });
});

describe("Taming the many EdDSAs (ed25519-speccheck)", () => {
  it("verifyDetached accepts only vector 3, as libsodium does", () => {
    expect(cases).toHaveLength(12);
    expect(pattern((c) => verifyDetached(fromHex(c.signature), fromHex(c.message), fromHex(c.pub_key)))).toBe(
      SPECCHECK_LIBSODIUM,
    );
  });

  // Why noble is wrapped and not called: both of its modes accept vectors libsodium (and so ostree) rejects.
  it.each([
    ["default (ZIP-215)", {}, "VVVVVVXXXVVV"],
    ["zip215: false", { zip215: false }, "XXVVVVXXXXXX"],
  ])("@noble/ed25519 verify() %s differs: %s", (_name, opts, expected) => {
    expect(
      pattern((c) => ed.verify(fromHex(c.signature), fromHex(c.message), fromHex(c.pub_key), opts)),
    ).toBe(expected);
    expect(expected).not.toBe(SPECCHECK_LIBSODIUM);
  });
});
