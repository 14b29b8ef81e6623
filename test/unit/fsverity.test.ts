// fs-verity digests of real files, read by the streaming reader: every golden composefs image against the
// digest pinned in its expected.json and against `fsverity digest` (Debian package fsverity) run live,
// generated files on both sides of each Merkle level, and a 1 GiB file.

import { execFileSync } from "node:child_process";
import { closeSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SysError } from "../../src/base/errors.ts";
import { fsverityDigestOfFile } from "../../src/cli/fsverity-digest.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { streamFd, streamFile } from "../../src/sys/file-stream.ts";
import { COMPOSEFS, composefsExpected, OSTREE, ostreeExpected } from "../helpers/fixtures.ts";
import { patternBytes, patternFile } from "../helpers/pattern-file.ts";

const BLOCK = 4096;
const GIB = 1 << 30;

/** `fsverity digest FILE...` output as path → hex; fails the test (never skips) when the tool is missing. */
function referenceDigests(paths: string[]): Map<string, string> {
  let out: string;
  try {
    out = execFileSync("fsverity", ["digest", "--hash-alg=sha256", "--block-size=4096", ...paths], {
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
  } catch (e) {
    throw new Error(`\`fsverity digest\` failed (install the Debian package fsverity): ${String(e)}`);
  }
  const map = new Map<string, string>();
  for (const line of out.trim().split("\n")) {
    const m = /^sha256:([0-9a-f]{64}) (.*)$/.exec(line);
    if (!m) throw new Error(`unexpected \`fsverity digest\` line: ${line}`);
    map.set(m[2] as string, m[1] as string);
  }
  return map;
}

interface Variant {
  image?: string;
  fsverity_digest?: string;
}

/** Every image named in the two expected.json files with its pinned fs-verity digest. */
function pinnedImages(): [string, string][] {
  const rows: [string, string][] = [];
  const cases = composefsExpected().cases as Record<string, { variants?: Record<string, Variant> }>;
  for (const c of Object.values(cases)) {
    for (const v of Object.values(c.variants ?? {})) {
      if (v.image && v.fsverity_digest) rows.push([join(COMPOSEFS, v.image), v.fsverity_digest]);
    }
  }
  const checkouts = ostreeExpected().composefs_checkouts as Record<string, { fsverity_sha256: string }>;
  for (const [name, v] of Object.entries(checkouts))
    rows.push([join(OSTREE, "cfs", name), v.fsverity_sha256]);
  return rows;
}

const cfsFiles = [
  ...readdirSync(COMPOSEFS).map((n) => join(COMPOSEFS, n)),
  ...readdirSync(join(OSTREE, "cfs")).map((n) => join(OSTREE, "cfs", n)),
].filter((p) => p.endsWith(".cfs"));

describe("fs-verity digest of the golden composefs images", () => {
  const pinned = pinnedImages();

  it("has a pinned digest for every .cfs fixture (79 composefs + 4 ostree)", () => {
    expect(cfsFiles.length).toBe(83);
    expect(new Set(pinned.map(([p]) => p))).toEqual(new Set(cfsFiles));
  });

  it.each(pinned.map(([p, d]) => [p.slice(p.indexOf("test/fixtures/")), p, d]))(
    "%s matches expected.json",
    (_, path, digest) => {
      expect(toHex(fsverityDigestOfFile(path))).toBe(digest);
    },
  );

  it("matches `fsverity digest` run on every .cfs fixture", () => {
    const ref = referenceDigests(cfsFiles);
    expect(ref.size).toBe(cfsFiles.length);
    for (const p of cfsFiles) expect([p, toHex(fsverityDigestOfFile(p))]).toEqual([p, ref.get(p)]);
  });
});

describe("fs-verity digest of generated files", () => {
  const sizes = [0, 1, 4095, BLOCK, BLOCK + 1, 128 * BLOCK, 128 * BLOCK + 1, 129 * BLOCK, 129 * BLOCK + 1];

  it("matches `fsverity digest` on both sides of each block and Merkle-level boundary", () => {
    const paths = sizes.map((s) => patternFile(s));
    const ref = referenceDigests(paths);
    for (const p of paths) expect([p, toHex(fsverityDigestOfFile(p))]).toEqual([p, ref.get(p)]);
  });

  it("matches `fsverity digest` and the pinned digest on a 1 GiB file", () => {
    const path = patternFile(GIB);
    const pinned = "501aee0514cce0d4e1cc0212ea932a83f5e9e29903fab80a43056f526e5a7b58";
    expect(referenceDigests([path]).get(path)).toBe(pinned);
    expect(toHex(fsverityDigestOfFile(path))).toBe(pinned);
  }, 300_000);
});

describe("streamFile() / streamFd()", () => {
  it("hands over the whole file in order, in chunks of at most the chunk size", () => {
    const size = 129 * BLOCK + 1;
    const got = new Uint8Array(size);
    const lengths: number[] = [];
    const n = streamFile(
      patternFile(size),
      (c) => {
        got.set(
          c,
          lengths.reduce((a, b) => a + b, 0),
        );
        lengths.push(c.length);
      },
      200_000,
    );
    expect(n).toBe(size);
    expect(lengths).toEqual([200_000, 200_000, 128_385]);
    expect(got).toEqual(patternBytes(size));
  });

  it("reads from offset 0 whatever the descriptor's offset, and leaves that offset alone", () => {
    const path = patternFile(BLOCK + 1);
    const fd = openSync(path, "r");
    try {
      readSync(fd, new Uint8Array(100), 0, 100, null);
      let total = 0;
      expect(streamFd(fd, path, (c) => (total += c.length))).toBe(BLOCK + 1);
      expect(total).toBe(BLOCK + 1);
      const next = new Uint8Array(1);
      readSync(fd, next, 0, 1, null);
      expect(next[0]).toBe(patternBytes(101)[100]);
    } finally {
      closeSync(fd);
    }
  });

  it.each([
    ["/nonexistent/sealroot-missing", 'Cannot open "/nonexistent/sealroot-missing": ENOENT', "ENOENT"],
    ["/tmp", 'Cannot read "/tmp": EISDIR', "EISDIR"],
  ])("throws SysError naming %s", (path, message, errno) => {
    const err = (() => {
      try {
        streamFile(path, () => {});
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(SysError);
    expect((err as SysError).message).toBe(message);
    expect((err as SysError).errno).toBe(errno);
  });
});
