import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMPOSEFS, OSTREE } from "../helpers/fixtures.ts";

// The golden sets are copied verbatim; this proves nobody edited or regenerated them.
describe("golden fixtures", () => {
  for (const set of [OSTREE, COMPOSEFS]) {
    it(`every file of ${set.split("/").pop()} matches its SHA256SUMS`, () => {
      const lines = readFileSync(join(set, "SHA256SUMS"), "utf8").trim().split("\n");
      expect(lines.length).toBeGreaterThan(10);
      for (const line of lines) {
        const [sum, name] = line.split(/\s+\*?/, 2) as [string, string];
        const actual = createHash("sha256")
          .update(readFileSync(join(set, name)))
          .digest("hex");
        expect({ name, sum: actual }).toEqual({ name, sum });
      }
    });
  }
});
