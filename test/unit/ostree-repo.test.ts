// Acceptance of the ostree repository reader against the golden repositories: bare-user, archive-z2 and
// the deployment sysroot's bare repo. Every object decodes and re-hashes; `ls -R` equals the reference
// `ostree ls -RCX` output line by line; `show` gives the pinned composefs digests.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import yargs from "yargs";
import type { CliContext } from "../../src/cli/context.ts";
import type { CommandModule } from "../../src/cli/index.ts";
import { lsCommand, lsLine } from "../../src/cli/ls.ts";
import { showCommand } from "../../src/cli/show.ts";
import { OstreeRepo } from "../../src/formats/ostree/repo.ts";
import { realFs } from "../../src/sys/fs.ts";
import { inflateRaw } from "../../src/sys/zlib.ts";
import { extracted, OSTREE, ostreeExpected } from "../helpers/fixtures.ts";

type ExpectedCommit = {
  checksum: string;
  parent: string | null;
  timestamp: number;
  composefs_digest_v0: string;
  metadata_keys: string[];
  detached_metadata_keys: string[];
  ed25519_signatures_hex: string[];
  content_checksum: string;
  root_dirtree: string;
  root_dirmeta: string;
};
const COMMITS = (ostreeExpected() as { commits: ExpectedCommit[] }).commits;

const REPOS: Array<[string, () => string, string]> = [
  ["bare-user", () => extracted("ostree/repo-bare-user.tar"), "bare-user"],
  ["archive-z2", () => extracted("ostree/repo-archive-z2.tar"), "archive"],
  ["sysroot bare", () => `${extracted("ostree/sysroot.tar")}/ostree/repo`, "bare"],
];

/** The `ostree ls -RCX <commit>` output recorded in logs/commands.log. */
function referenceLs(commit: string): string[] {
  const log = readFileSync(join(OSTREE, "logs/commands.log"), "utf8");
  const cmd = `$ ostree ls --repo=repo-bare-user -RCX ${commit}\n`;
  const start = log.indexOf(cmd);
  expect(start).toBeGreaterThanOrEqual(0);
  const body = log.slice(start + cmd.length, log.indexOf("[exit 0]", start));
  return body.trimEnd().split("\n");
}

function allObjects(repoDir: string): Array<{ checksum: string; ext: string }> {
  const out: Array<{ checksum: string; ext: string }> = [];
  const dir = join(repoDir, "objects");
  for (const xx of readdirSync(dir)) {
    for (const f of readdirSync(join(dir, xx))) {
      const [rest, ext] = f.split(".") as [string, string];
      out.push({ checksum: xx + rest, ext });
    }
  }
  return out;
}

async function runCommand(cmd: CommandModule, argv: string[]): Promise<{ out: string; code: number }> {
  let out = "";
  let code = -1;
  const ctx: CliContext = { fs: realFs, out: (t) => (out += t), err: (t) => (out += t) };
  await cmd(
    yargs(argv)
      .strict()
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      }),
    ctx,
    (c) => (code = c),
  ).parseAsync();
  return { out, code };
}

describe.each(REPOS)("ostree repository (%s)", (_name, dir, mode) => {
  it(`opens as mode ${mode}`, () => {
    expect(OstreeRepo.open(realFs, dir(), { inflateRaw }).mode).toBe(mode);
  });

  it("every commit, dirtree, dirmeta and content object decodes and re-hashes to its name", () => {
    const repo = OstreeRepo.open(realFs, dir(), { inflateRaw });
    const counts: Record<string, number> = {};
    for (const { checksum, ext } of allObjects(dir())) {
      counts[ext] = (counts[ext] ?? 0) + 1;
      if (ext === "commit") repo.readCommit(checksum);
      else if (ext === "dirtree") repo.readDirtree(checksum);
      else if (ext === "dirmeta") repo.readDirmeta(checksum);
      else if (ext === "file" || ext === "filez") expect(repo.readContent(checksum).checksum).toBe(checksum);
      else if (ext === "commitmeta") expect(repo.readCommitmeta(checksum)?.entries.length).toBe(1);
      else throw new Error(`unexpected object ${checksum}.${ext}`);
    }
    expect(counts).toEqual({
      commit: 2,
      commitmeta: 2,
      dirmeta: 3,
      dirtree: 27,
      [mode === "archive" ? "filez" : "file"]: 55,
    });
  });

  it.each(COMMITS.map((c) => [c.checksum] as const))(
    "ls -R of %s equals `ostree ls -RCX` line by line",
    (commit) => {
      const repo = OstreeRepo.open(realFs, dir(), { inflateRaw });
      const lines = repo.listTree(commit).map(lsLine);
      const reference = referenceLs(commit);
      expect(lines).toHaveLength(reference.length);
      for (const [i, l] of lines.entries()) expect(l, `line ${i + 1}`).toBe(reference[i]);
    },
  );

  it.each(COMMITS.map((c) => [c.checksum, c] as const))(
    "show --json of %s gives the pinned fields and composefs digest",
    async (commit, c) => {
      const { out, code } = await runCommand(showCommand, [
        "show",
        "--repo",
        dir(),
        "--commit",
        commit,
        "--json",
      ]);
      expect(code).toBe(0);
      const s = JSON.parse(out);
      expect(s).toMatchObject({
        checksum: c.checksum,
        parent: c.parent,
        timestamp: c.timestamp,
        rootDirtree: c.root_dirtree,
        rootDirmeta: c.root_dirmeta,
        contentChecksum: c.content_checksum,
        metadataKeys: c.metadata_keys,
        detachedMetadataKeys: c.detached_metadata_keys,
        ed25519Signatures: c.ed25519_signatures_hex,
        composefsDigestV0: c.composefs_digest_v0,
      });
      expect(s.metadata["ostree.composefs.digest.v0"]).toEqual({
        type: "ay",
        value: c.composefs_digest_v0,
        text: expect.stringMatching(/^\[byte 0x/),
      });
    },
  );
});

describe("sealroot show / ls commands", () => {
  const dir = () => extracted("ostree/repo-bare-user.tar");

  it("show --ref resolves the ref and prints ostree's header lines", async () => {
    const { out } = await runCommand(showCommand, ["show", "--repo", dir(), "--ref", "refos/x86_64/stable"]);
    expect(out).toContain(`commit ${COMMITS[1]!.checksum}\nParent:  ${COMMITS[0]!.checksum}\n`);
    expect(out).toContain(
      "Date:  2025-01-02 00:00:00 +0000\nVersion: 2\n\n    Reference commit 2 (public)\n",
    );
  });

  it("ls -R prints the ostree ls -RCX text; without -R only the root and its children", async () => {
    const c = COMMITS[0]!.checksum;
    const full = await runCommand(lsCommand, ["ls", "--repo", dir(), "--commit", c, "-R"]);
    expect(full.out.trimEnd().split("\n")).toEqual(referenceLs(c));
    const top = await runCommand(lsCommand, ["ls", "--repo", dir(), "--commit", c]);
    expect(
      top.out
        .trimEnd()
        .split("\n")
        .map((l) => l.split(" ").at(-1)),
    ).toEqual(["/", "usr/bin", "usr/lib", "sysroot/ostree", "/boot", "/sysroot", "/usr", "/var"]);
  });

  it("ls -R --json gives type, mode, ownership, size, checksum, target and xattrs of every path", async () => {
    const { out } = await runCommand(lsCommand, [
      "ls",
      "--repo",
      dir(),
      "--ref",
      "refos/x86_64/stable",
      "-R",
      "--json",
    ]);
    const entries = JSON.parse(out) as Array<Record<string, unknown>>;
    expect(entries).toHaveLength(72);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get("/usr/share/owned/by-4242")).toEqual({
      path: "/usr/share/owned/by-4242",
      type: "file",
      mode: 0o100600,
      perms: "0600",
      uid: 4242,
      gid: 4343,
      size: 19,
      checksum: "8514d37f9dce12e44faa949cf83340ca391eb248f14788b4c5ecff25e25228e8",
      xattrs: [],
    });
    expect(byPath.get("/usr/share/data/rel-link")).toMatchObject({
      type: "symlink",
      size: 0,
      symlinkTarget: "small.txt",
    });
    expect(byPath.get("/usr/share/xattrs/file-xattr")).toMatchObject({
      xattrs: [
        { name: "security.ref-test", value: "7365630076616c" },
        { name: "user.ref.bin", value: "000102ff" },
        { name: "user.ref.text", value: "68656c6c6f" },
      ],
    });
  });

  it("refuses both --commit and --ref, and a non-checksum --commit", async () => {
    await expect(
      runCommand(showCommand, ["show", "--repo", dir(), "--commit", "x", "--ref", "y"]),
    ).rejects.toThrow();
    await expect(runCommand(showCommand, ["show", "--repo", dir(), "--commit", "abc"])).rejects.toThrow(
      /64 lowercase hex/,
    );
  });
});
