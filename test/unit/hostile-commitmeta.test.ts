import { describe, expect, it } from "vitest";
import { MAX_SIGNATURES, verifyCommitSignatures } from "../../src/verify/signature.ts";
import { timed } from "../helpers/hostile.ts";

// Issue 11, items 1 and 2: a `.commitmeta` is unverified until a signature in it verifies, so what it
// holds must not make the boot crash, hang or run out of memory: at most 256 signatures are tried.
// Times are asserted loosely (CI machines vary; bench/hostile.ts measures the compiled binary).
describe("verifyCommitSignatures() caps the signatures it tries (item 2)", () => {
  const commit = new Uint8Array(348);
  const key = new Uint8Array(32).fill(7);
  const junk = (n: number) => Array.from({ length: n }, () => new Uint8Array(64));

  it("refuses 10,000 signatures before any ed25519 work", () => {
    const r = timed(() => verifyCommitSignatures(commit, junk(10_000), [key]));
    expect(r.value).toEqual({ ok: false, reason: "10000 signatures, expected at most 256", tried: 0 });
    expect(r.s).toBeLessThan(1);
  });

  it("still tries every one of 256", () => {
    expect(MAX_SIGNATURES).toBe(256);
    expect(verifyCommitSignatures(commit, junk(256), [key])).toEqual({
      ok: false,
      reason: "none of 256 signatures verifies with the trusted key",
      tried: 256,
    });
    expect(verifyCommitSignatures(commit, junk(257), [key])).toMatchObject({
      reason: "257 signatures, expected at most 256",
    });
  });
});
