import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError, UsageError } from "../../src/base/errors.ts";
import { parseDumpfile } from "../../src/formats/composefs/dumpfile.ts";
import { writeErofs } from "../../src/formats/erofs/write.ts";
import { COMPOSEFS } from "../helpers/fixtures.ts";

// Issue 5: mutated dumpfiles give a clean error, never a crash or a hang. Seeds are the golden dumpfiles
// up to 8 KiB (every should-fail input among them); mutations are byte flips, bytes from the dumpfile
// alphabet (separators, escapes, digits), truncations, and lines duplicated, dropped or swapped. Each
// mutant is parsed leniently and strictly, and what parses is written to an image: every outcome is a
// value, a FormatError or (an impossible version option) a UsageError.
const seeds = readdirSync(COMPOSEFS)
  .filter((n) => n.endsWith(".dump") && !n.endsWith(".cfs.dump"))
  .map((n) => readFileSync(join(COMPOSEFS, n)))
  .filter((b) => b.length <= 8192)
  .map((b) => new Uint8Array(b));

const ALPHABET = [..." \n\t\\=-@/.0123456789abcdefx"].map((c) => c.charCodeAt(0));

function mutate(seed: Uint8Array, kind: number, at: number, value: number, span: number): Uint8Array {
  const b = new Uint8Array(seed);
  const i = seed.length === 0 ? 0 : at % seed.length;
  switch (kind) {
    case 0:
      b[i] = (b[i] ?? 0) ^ (1 << (value % 8));
      return b;
    case 1:
      b[i] = ALPHABET[value % ALPHABET.length] ?? 0;
      return b;
    case 2:
      return b.subarray(0, i);
    default: {
      const lines = new TextDecoder("latin1").decode(seed).split("\n");
      const j = at % Math.max(1, lines.length);
      const k = (at + span) % Math.max(1, lines.length);
      if (kind === 3) lines.splice(j, 0, lines[j] ?? "");
      else if (kind === 4) lines.splice(j, 1);
      else [lines[j], lines[k]] = [lines[k] ?? "", lines[j] ?? ""];
      return Uint8Array.from(lines.join("\n"), (c) => c.charCodeAt(0) & 0xff);
    }
  }
}

function outcome(run: () => unknown): void {
  try {
    run();
  } catch (e) {
    if (!(e instanceof FormatError || e instanceof UsageError)) throw e;
  }
}

describe("dumpfile parser and writer on hostile input", () => {
  it("give a value or a FormatError for 100,000 mutated dumpfiles", () => {
    expect(seeds.length).toBeGreaterThan(40);
    let parsed = 0;
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.nat(5),
        fc.nat(),
        fc.nat(255),
        fc.nat(7),
        fc.boolean(),
        (s, kind, at, value, span, strict) => {
          const input = mutate(seeds[s] as Uint8Array, kind, at, value, span);
          outcome(() => {
            const tree = parseDumpfile(input, { strict, path: "fuzz.dump" });
            parsed++;
            outcome(() => writeErofs(tree, { version: 0, maxVersion: 1 }));
          });
        },
      ),
      { seed: 424243, numRuns: 100_000 },
    );
    expect(parsed).toBeGreaterThan(10_000);
  }, 600_000);
});
