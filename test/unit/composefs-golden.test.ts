import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sha256 } from "../../src/base/hash.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { parseDumpfile } from "../../src/formats/composefs/dumpfile.ts";
import { effectiveVersion, type WriteOptions, writeErofs } from "../../src/formats/erofs/write.ts";
import { fsverityDigest } from "../../src/verify/fsverity.ts";
import { COMPOSEFS, composefsExpected } from "../helpers/fixtures.ts";

// Every public dumpfile case, in every variant mkcomposefs was run with, must give the pinned image bytes
// (sha256 of the whole image and its fs-verity digest) and the same composefs format version.

interface Variant {
  sha256?: string;
  fsverity_digest?: string;
  size?: number;
  image?: string;
  info_dump?: string;
  roundtrip_from_info_dump_identical?: boolean;
  options: string[];
  composefs_header?: { composefs_version: number };
}
interface Case {
  kind: string;
  input: string;
  variants?: Record<string, Variant>;
}

const VARIANT_OPTIONS: Record<string, WriteOptions> = {
  default: { version: 0, maxVersion: 1 },
  ostree: { version: 0, maxVersion: 1 },
  v0: { version: 0, maxVersion: 0 },
  v1: { version: 1, maxVersion: 1 },
};

const cases = Object.entries((composefsExpected() as { cases: Record<string, Case> }).cases).filter(
  ([, c]) => c.kind === "dumpfile",
);

const rows = cases.flatMap(([name, c]) =>
  Object.entries(c.variants ?? {}).map(([variant, v]) => ({ name, variant, input: c.input, v })),
);

describe("writeErofs() reproduces mkcomposefs 1.0.8 byte for byte", () => {
  it("covers every dumpfile case of the golden set", () => {
    expect(cases.length).toBe(37);
    expect(rows.length).toBe(37 * 4);
  });

  it.each(rows)("$name ($variant)", ({ input, variant, v }) => {
    const tree = parseDumpfile(readFileSync(join(COMPOSEFS, input)), { path: input });
    const opts = VARIANT_OPTIONS[variant];
    expect(opts).toBeDefined();
    const image = writeErofs(tree, opts);
    if (v.size !== undefined) expect(image.length).toBe(v.size);
    expect(toHex(sha256(image))).toBe(v.sha256);
    if (v.fsverity_digest !== undefined) expect(toHex(fsverityDigest(image))).toBe(v.fsverity_digest);
    if (v.composefs_header) expect(effectiveVersion(tree, opts)).toBe(v.composefs_header.composefs_version);
  });

  const infoDumps = rows.filter((r) => r.v.info_dump !== undefined && r.v.roundtrip_from_info_dump_identical);

  it("covers every `composefs-info dump` output that mkcomposefs turns back into the same image", () => {
    expect(infoDumps.length).toBe(74);
  });

  it.each(infoDumps)(
    "$name ($variant): parsing its composefs-info dump gives the same image",
    ({ variant, v }) => {
      const tree = parseDumpfile(readFileSync(join(COMPOSEFS, v.info_dump!)), {
        path: v.info_dump!,
        strict: true,
      });
      expect(toHex(sha256(writeErofs(tree, VARIANT_OPTIONS[variant])))).toBe(v.sha256);
    },
  );
});
