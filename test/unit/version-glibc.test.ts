// Differential test of compareOstreeVersions() against glibc's strverscmp(3) — what libostree sorts
// versions with — called through ffi-rs on random version-like and arbitrary strings (fixed seed).
// Test-only binding; src/ never imports ffi-rs outside src/sys/ffi/.

import fc from "fast-check";
import { DataType, load, open } from "ffi-rs";
import { describe, expect, it } from "vitest";
import { compareOstreeVersions } from "../../src/core/version.ts";

open({ library: "libc", path: "" });
/** int strverscmp(const char *s1, const char *s2); */
function strverscmp(a: string, b: string): number {
  const r = load({
    library: "libc",
    funcName: "strverscmp",
    retType: DataType.I32,
    paramsType: [DataType.String, DataType.String],
    paramsValue: [a, b],
  }) as number;
  return Math.sign(r);
}

const versionish = fc.stringMatching(/^[0-9.a~_+-]{0,12}$/);
// C strings end at NUL, so NUL is left out; any other code point (as UTF-8) is fair.
const anything = fc.string({ maxLength: 10, unit: "grapheme" }).map((s) => s.replaceAll("\0", ""));

describe("compareOstreeVersions() = glibc strverscmp(3)", () => {
  it("agrees on the sign for random version-like strings", () => {
    fc.assert(
      fc.property(versionish, versionish, (a, b) => {
        expect([a, b, compareOstreeVersions(a, b)]).toEqual([a, b, strverscmp(a, b)]);
      }),
      { seed: 20260412, numRuns: 20_000 },
    );
  });

  it("agrees on a string and its edited copy (long common prefixes)", () => {
    const pair = fc
      .tuple(versionish, versionish, versionish, versionish)
      .map(([p, x, y, s]) => [p + x + s, p + y + s] as const);
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect([a, b, compareOstreeVersions(a, b)]).toEqual([a, b, strverscmp(a, b)]);
      }),
      { seed: 20260413, numRuns: 20_000 },
    );
  });

  it("agrees on arbitrary UTF-8 strings (bytes compare unsigned)", () => {
    fc.assert(
      fc.property(anything, anything, (a, b) => {
        expect([a, b, compareOstreeVersions(a, b)]).toEqual([a, b, strverscmp(a, b)]);
      }),
      { seed: 20260414, numRuns: 5_000 },
    );
  });
});
