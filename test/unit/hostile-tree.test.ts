import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FormatError } from "../../src/base/errors.ts";
import type { FsRead } from "../../src/base/fs.ts";
import { commitComposefsTree } from "../../src/formats/ostree/composefs.ts";
import { loosePath } from "../../src/formats/ostree/objects.ts";
import { OstreeRepo } from "../../src/formats/ostree/repo.ts";
import { realFs } from "../../src/sys/fs.ts";
import { inflateRaw } from "../../src/sys/zlib.ts";
import { extracted } from "../helpers/fixtures.ts";
import { C2 } from "../helpers/golden.ts";
import { dagRepo, framedDirtree, HandMadeRepo, timed } from "../helpers/hostile.ts";

// Issue 11, item 9: dirtrees can share subtrees, so a few valid objects can name billions of paths. The
// tree walks (`ls -R`, the composefs tree) measure the whole tree, each dirtree once, and refuse past
// 1,000,000 paths before expanding anything; each content object is read once; one dirtree's framing
// is counted before it is decoded. Times are asserted loosely (bench/hostile.ts measures the binary).

/** A fresh directory for a hand-made repository, removed when the file's tests are done. */
const made: string[] = [];
const scratch = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `sealroot-${name}-`));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe("tree walks over a dirtree DAG", () => {
  const open = (repo: string, fs: FsRead = realFs) => OstreeRepo.open(fs, repo, { inflateRaw });
  /** realFs counting whole-file reads per path. */
  const counting = () => {
    const reads = new Map<string, number>();
    const count = (p: string) => {
      reads.set(p, (reads.get(p) ?? 0) + 1);
    };
    const fs: FsRead = {
      ...realFs,
      readFile: (p, cap, what) => {
        count(p);
        return realFs.readFile(p, cap, what);
      },
      readFileIfExists: (p, cap, what) => {
        count(p);
        return realFs.readFileIfExists(p, cap, what);
      },
    };
    return { fs, reads };
  };
  const big = () => dagRepo(scratch("dag"));

  it("ls -R: refuses 27 dirtrees that expand to 201,326,591 paths, before listing any", () => {
    const dag = big();
    expect(dag.entries).toBe(201_326_591);
    const r = timed(() => open(dag.repo).listTree(dag.commit));
    expect(r.error).toBeInstanceOf(FormatError);
    expect((r.error as Error).message).toBe(
      `Cannot list tree at "/": more than 1000000 entries, expected at most 1000000`,
    );
    expect(r.s).toBeLessThan(5);
  });

  it("composefs-image: refuses the same DAG before building any inode", () => {
    const dag = big();
    const r = timed(() => commitComposefsTree(open(dag.repo), dag.commit, () => new Uint8Array(32)));
    expect(r.error).toBeInstanceOf(FormatError);
    expect((r.error as Error).message).toBe(
      `Cannot build the composefs tree at "/": more than 1000000 entries, expected at most 1000000`,
    );
    expect(r.s).toBeLessThan(5);
  });

  it("lists a DAG under the cap in full, reading and hashing the shared file once", () => {
    const dag = dagRepo(scratch("dag"), 6, 3);
    const { fs, reads } = counting();
    const entries = open(dag.repo, fs).listTree(dag.commit);
    expect(entries.length).toBe(dag.entries);
    expect(entries.filter((e) => e.type === "file").length).toBe(3 ** 5);
    expect(reads.get(`${dag.repo}/objects/${loosePath(dag.file, "file")}`)).toBe(1);
  });

  it("builds the composefs tree of a DAG under the cap asking one digest per object", () => {
    const dag = dagRepo(scratch("dag"), 6, 3);
    const { fs, reads } = counting();
    let asked = 0;
    const root = commitComposefsTree(open(dag.repo, fs), dag.commit, () => {
      asked++;
      return new Uint8Array(32).fill(1);
    });
    let files = 0;
    const walk = (n: typeof root) => {
      for (const c of n.children) {
        if (c.inode.digest) files++;
        walk(c.inode);
      }
    };
    walk(root);
    expect([files, asked]).toEqual([3 ** 5, 1]);
    expect(reads.get(`${dag.repo}/objects/${loosePath(dag.file, "file")}`)).toBe(1);
  });

  it("refuses one dirtree whose framing claims 1,000,001 entries before decoding them", () => {
    const r = new HandMadeRepo(scratch("dirtree"));
    const tree = r.put(framedDirtree(1_000_001), "dirtree");
    const commit = r.commit(tree);
    const hex = Buffer.from(tree).toString("hex");
    const t = timed(() => open(r.repo).listTree(commit));
    expect((t.error as Error).message).toBe(
      `Cannot read dirtree "${r.repo}/objects/${loosePath(hex, "dirtree")}": 1000001 entries, expected at most 1000000`,
    );
    expect(t.s).toBeLessThan(5);
  });

  it("refuses a chain of 300 dirtrees as deeper than 256 levels, in both walks", () => {
    const dag = dagRepo(scratch("dag"), 300, 1);
    const at = `"${"/d0".repeat(256)}"`;
    expect(() => open(dag.repo).listTree(dag.commit)).toThrow(
      `Cannot list tree at ${at}: deeper than 256 levels, expected at most 256`,
    );
    expect(() => commitComposefsTree(open(dag.repo), dag.commit)).toThrow(
      `Cannot build the composefs tree at ${at}: deeper than 256 levels, expected at most 256`,
    );
  });

  it("stops a walk whose content reaches the byte cap, naming the object and the cap", () => {
    const repo = extracted("ostree/repo-bare-user.tar");
    const small = OstreeRepo.open(realFs, repo, { inflateRaw, limits: { maxTreeContentBytes: 1000 } });
    expect(() => small.listTree(C2)).toThrow(
      /^Cannot read content object ".*\.file": \d+ bytes brings the walk's content to \d+ bytes, expected at most 1000$/,
    );
  });
});
