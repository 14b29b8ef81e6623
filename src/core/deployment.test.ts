import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fakeStat } from "../../test/helpers/fake-stat.ts";
import { extracted } from "../../test/helpers/fixtures.ts";
import { C1, C2 } from "../../test/helpers/golden.ts";
import { IntegrityError, NotFoundError } from "../base/errors.ts";
import type { FileKind, FsRead, Stat } from "../base/fs.ts";
import { sha256 } from "../base/hash.ts";
import { BOOT_ENTRIES_DIR, parseBootEntry } from "../formats/boot-entry.ts";
import { toHex } from "../formats/bytes.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { realFs } from "../sys/fs.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { parseCmdline } from "./cmdline.ts";
import { loadDeploymentCommit, resolveDeployment } from "./deployment.ts";

const BOOT1 = "b0d948d23ff829a8ccc9b2f90d9b055a40896951f3d65ae8b2b8fe17125eeb25";
const BOOT2 = "e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82";

describe("resolveDeployment() on the conformance sysroot", () => {
  const sysroot = extracted("ostree/sysroot.tar");
  const entries = join(sysroot, BOOT_ENTRIES_DIR);
  const targets = Object.fromEntries(
    readdirSync(entries).map((f) => {
      const options = parseBootEntry(readFileSync(join(entries, f), "utf8")).get("options") ?? "";
      return [f, parseCmdline(options).target?.path];
    }),
  );

  it("finds the ostree= value of both boot entries", () => {
    expect(targets).toEqual({
      "ostree-1.conf": `/ostree/boot.0/refos/${BOOT1}/0`,
      "ostree-2.conf": `/ostree/boot.0/refos/${BOOT2}/0`,
    });
  });

  it("resolves deployment 0 (ostree-2.conf, commit 2)", () => {
    const d = resolveDeployment(realFs, sysroot, targets["ostree-2.conf"] as string);
    expect(d).toEqual({
      sysroot,
      target: `/ostree/boot.0/refos/${BOOT2}/0`,
      path: `${sysroot}/ostree/deploy/refos/deploy/${C2}.0`,
      relPath: `ostree/deploy/refos/deploy/${C2}.0`,
      stateroot: "refos",
      commit: C2,
      serial: 0,
      links: [
        { path: `${sysroot}/ostree/boot.0`, target: "boot.0.1" },
        {
          path: `${sysroot}/ostree/boot.0.1/refos/${BOOT2}/0`,
          target: `../../../deploy/refos/deploy/${C2}.0`,
        },
      ],
      repo: `${sysroot}/ostree/repo`,
      commitObject: `${sysroot}/ostree/repo/objects/59/${C2.slice(2)}.commit`,
      commitmetaObject: `${sysroot}/ostree/repo/objects/59/${C2.slice(2)}.commitmeta`,
      composefsImage: `${sysroot}/ostree/deploy/refos/deploy/${C2}.0/.ostree.cfs`,
      varDir: `${sysroot}/ostree/deploy/refos/var`,
      etcDir: `${sysroot}/ostree/deploy/refos/deploy/${C2}.0/etc`,
    });
    expect(realFs.lstat(d.composefsImage).size).toBe(28672);
    expect(realFs.lstat(d.commitObject).size).toBe(348);
  });

  it("resolves deployment 1 (ostree-1.conf, commit 1)", () => {
    const d = resolveDeployment(realFs, sysroot, targets["ostree-1.conf"] as string);
    expect([d.commit, d.serial, d.stateroot, d.relPath]).toEqual([
      C1,
      0,
      "refos",
      `ostree/deploy/refos/deploy/${C1}.0`,
    ]);
    expect(realFs.lstat(d.composefsImage).size).toBe(24576);
    expect(realFs.lstat(d.commitObject).size).toBe(316);
  });

  it("accepts a relative ostree= value and a sysroot given with a trailing slash", () => {
    const d = resolveDeployment(realFs, `${sysroot}/`, `ostree/boot.0/refos/${BOOT2}/0`);
    expect(d.path).toBe(`${sysroot}/ostree/deploy/refos/deploy/${C2}.0`);
  });

  it("refuses a boot entry path that is a directory, as ostree does", () => {
    expect(() => resolveDeployment(realFs, sysroot, `/ostree/deploy/refos/deploy/${C2}.0`)).toThrow(
      `Cannot resolve ostree target "/ostree/deploy/refos/deploy/${C2}.0": "${sysroot}/ostree/deploy/refos/deploy/${C2}.0" is a directory, expected a symbolic link (as ostree requires)`,
    );
  });

  it("refuses a missing bootcsum", () => {
    expect(() => resolveDeployment(realFs, sysroot, "/ostree/boot.0/refos/nope/0")).toThrow(NotFoundError);
    expect(() => resolveDeployment(realFs, sysroot, "/ostree/boot.0/refos/nope/0")).toThrow(
      `Cannot resolve ostree target "/ostree/boot.0/refos/nope/0": "${sysroot}/ostree/boot.0.1/refos/nope" does not exist, expected the boot symlink's chain to a deployment`,
    );
  });
});

// An in-memory tree: "dir", a link target string, or file contents.
type Node = { dir: true } | { link: string } | { file: string };

function fakeFs(tree: Record<string, Node>): FsRead {
  const stat = (kind: FileKind): Stat => fakeStat(kind);
  const no = () => {
    throw new Error("not used");
  };
  const lstatIfExists = (p: string): Stat | undefined => {
    const n = tree[p];
    if (!n) return undefined;
    return stat("dir" in n ? "dir" : "link" in n ? "symlink" : "file");
  };
  return {
    readFile: no,
    readFileIfExists: no,
    lstat: (p) => lstatIfExists(p) ?? no(),
    lstatIfExists,
    readlink: (p) => {
      const n = tree[p];
      if (!n || !("link" in n)) throw new Error(`not a link: ${p}`);
      return n.link;
    },
    readdir: no,
    lgetxattr: no,
    llistxattr: no,
  };
}

const dir = { dir: true } as const;
const link = (l: string) => ({ link: l });
const DEP = `/sysroot/ostree/deploy/os/deploy/${C2}.3`;

/** A well-formed sysroot at /sysroot plus `extra` entries. */
function sysrootFs(extra: Record<string, Node> = {}): FsRead {
  return fakeFs({
    "/": dir,
    "/sysroot": dir,
    "/sysroot/ostree": dir,
    "/sysroot/ostree/deploy": dir,
    "/sysroot/ostree/deploy/os": dir,
    "/sysroot/ostree/deploy/os/deploy": dir,
    [DEP]: dir,
    "/sysroot/ostree/boot.1": link("boot.1.0"),
    "/sysroot/ostree/boot.1.0": dir,
    "/sysroot/ostree/boot.1.0/os": dir,
    "/sysroot/ostree/boot.1.0/os/abc": dir,
    "/sysroot/ostree/boot.1.0/os/abc/0": link(`../../../deploy/os/deploy/${C2}.3`),
    "/etc": dir,
    ...extra,
  });
}

describe("resolveDeployment() over a fake FsRead", () => {
  it("follows the chain and reads the serial", () => {
    const d = resolveDeployment(sysrootFs(), "/sysroot", "/ostree/boot.1/os/abc/0");
    expect([d.path, d.serial, d.stateroot, d.varDir]).toEqual([
      DEP,
      3,
      "os",
      "/sysroot/ostree/deploy/os/var",
    ]);
  });

  it("follows an absolute link that stays inside the sysroot (ostree's realpath() would too)", () => {
    const fs = sysrootFs({ "/sysroot/ostree/boot.1.0/os/abc/1": link(DEP) });
    expect(resolveDeployment(fs, "/sysroot", "/ostree/boot.1/os/abc/1").path).toBe(DEP);
  });

  it("works with the sysroot at / (PID-1 mode)", () => {
    const fs = fakeFs({
      "/": dir,
      "/ostree": dir,
      "/ostree/deploy": dir,
      "/ostree/deploy/os": dir,
      "/ostree/deploy/os/deploy": dir,
      [`/ostree/deploy/os/deploy/${C1}.0`]: dir,
      "/ostree/b": link(`/ostree/deploy/os/deploy/${C1}.0`),
    });
    const d = resolveDeployment(fs, "/", "/ostree/b");
    expect([d.sysroot, d.path, d.repo]).toEqual(["/", `/ostree/deploy/os/deploy/${C1}.0`, "/ostree/repo"]);
  });

  const refusals: [string, Record<string, Node>, string, string][] = [
    [
      "'..' in the ostree= value above the sysroot",
      {},
      "/../etc/x",
      'Cannot resolve ostree target "/../etc/x": ".." leads above the sysroot "/sysroot", expected a path inside the sysroot',
    ],
    [
      "a relative link climbing out with '..'",
      { "/sysroot/ostree/boot.1.0/os/abc/9": link("../../../../../etc") },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": ".." leads above the sysroot "/sysroot", expected a path inside the sysroot',
    ],
    [
      "an absolute link pointing out of the sysroot",
      { "/sysroot/ostree/boot.1.0/os/abc/9": link("/etc") },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": "/sysroot/ostree/boot.1.0/os/abc/9" is an absolute symbolic link to "/etc" outside the sysroot "/sysroot", expected a target inside the sysroot',
    ],
    [
      "an absolute link that re-enters through '..'",
      { "/sysroot/ostree/boot.1.0/os/abc/9": link(`/sysroot/../sysroot/ostree/deploy/os/deploy/${C2}.3`) },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": ".." leads above the sysroot "/sysroot", expected a path inside the sysroot',
    ],
    [
      "an absolute link naming a sibling with the sysroot as prefix",
      { "/sysroot/ostree/boot.1.0/os/abc/9": link("/sysroot2/x") },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": "/sysroot/ostree/boot.1.0/os/abc/9" is an absolute symbolic link to "/sysroot2/x" outside the sysroot "/sysroot", expected a target inside the sysroot',
    ],
    [
      "a link loop",
      { "/sysroot/ostree/boot.1.0/os/abc/9": link("9") },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": more than 40 symbolic links (a loop?) at "/sysroot/ostree/boot.1.0/os/abc/9", expected a finite chain',
    ],
    [
      "a two-link loop",
      { "/sysroot/ostree/boot.1.0/os/abc/8": link("9"), "/sysroot/ostree/boot.1.0/os/abc/9": link("./8") },
      "/ostree/boot.1/os/abc/8",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/8": more than 40 symbolic links (a loop?) at "/sysroot/ostree/boot.1.0/os/abc/9", expected a finite chain',
    ],
    [
      "a boot entry that is a regular file",
      { "/sysroot/ostree/boot.1.0/os/abc/9": { file: "" } },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": "/sysroot/ostree/boot.1.0/os/abc/9" is a regular file, expected a symbolic link (as ostree requires)',
    ],
    [
      "a trailing slash (ostree's lstat would see the directory)",
      {},
      "/ostree/boot.1/os/abc/0/",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/0/": "/sysroot/ostree/boot.1/os/abc/0" does not name a symbolic link, expected a boot symlink',
    ],
    [
      "an empty ostree= value",
      {},
      "",
      'Cannot resolve ostree target "": "/sysroot/" does not name a symbolic link, expected a boot symlink',
    ],
    [
      "a link to a file",
      { "/sysroot/ostree/f": { file: "" }, "/sysroot/ostree/boot.1.0/os/abc/9": link("../../../f") },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": "/sysroot/ostree/f" is a regular file, expected a directory',
    ],
    [
      "a link to a directory outside ostree/deploy",
      { "/sysroot/ostree/boot.1.0/os/abc/9": link("../../..") },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": it resolves to "/sysroot/ostree", expected "/sysroot/ostree/deploy/<stateroot>/deploy/<64 hex commit>.<serial>"',
    ],
    [
      "a deployment name without a 64-hex commit",
      {
        "/sysroot/ostree/deploy/os/deploy/abc.0": dir,
        "/sysroot/ostree/boot.1.0/os/abc/9": link("../../../deploy/os/deploy/abc.0"),
      },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": it resolves to "/sysroot/ostree/deploy/os/deploy/abc.0", expected "/sysroot/ostree/deploy/<stateroot>/deploy/<64 hex commit>.<serial>"',
    ],
    [
      "an empty link",
      { "/sysroot/ostree/boot.1.0/os/abc/9": link("") },
      "/ostree/boot.1/os/abc/9",
      'Cannot resolve ostree target "/ostree/boot.1/os/abc/9": "/sysroot/ostree/boot.1.0/os/abc/9" is an empty symbolic link, expected a link target',
    ],
  ];
  it.each(refusals)("refuses %s", (_name, extra, target, message) => {
    const fs = sysrootFs(extra);
    expect(() => resolveDeployment(fs, "/sysroot", target)).toThrow(IntegrityError);
    expect(() => resolveDeployment(fs, "/sysroot", target)).toThrow(message);
  });

  it("refuses a sysroot that is not a canonical absolute path", () => {
    expect(() => resolveDeployment(sysrootFs(), "sysroot", "/x")).toThrow(
      'Cannot resolve ostree target "/x": sysroot "sysroot" is not a canonical absolute path, expected an absolute path',
    );
    expect(() => resolveDeployment(sysrootFs(), "/sysroot/../etc", "/x")).toThrow(
      "is not a canonical absolute path",
    );
  });

  it("records the refusal reason as data", () => {
    try {
      resolveDeployment(
        sysrootFs({ "/sysroot/ostree/boot.1.0/os/abc/9": link("/etc") }),
        "/sysroot",
        "/ostree/boot.1/os/abc/9",
      );
      expect.unreachable();
    } catch (e) {
      expect((e as IntegrityError).data).toMatchObject({ reason: "escape", link: "/etc" });
    }
  });
});

describe("resolveDeployment() over a real directory tree", () => {
  const tmp = mkdtempSync(join(tmpdir(), "sealroot-deploy-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const root = join(tmp, "sysroot");
  const dep = join(root, `ostree/deploy/os/deploy/${C1}.1`);
  mkdirSync(dep, { recursive: true });
  mkdirSync(join(root, "ostree/boot.0.1/os/csum"), { recursive: true });
  mkdirSync(join(tmp, "outside/ostree/deploy/os/deploy", `${C1}.1`), { recursive: true });
  writeFileSync(join(tmp, "secret"), "x");
  symlinkSync("boot.0.1", join(root, "ostree/boot.0"));
  symlinkSync(`../../../deploy/os/deploy/${C1}.1`, join(root, "ostree/boot.0.1/os/csum/0"));
  symlinkSync(
    join(tmp, "outside/ostree/deploy/os/deploy", `${C1}.1`),
    join(root, "ostree/boot.0.1/os/csum/1"),
  );
  symlinkSync(
    `../../../../../outside/ostree/deploy/os/deploy/${C1}.1`,
    join(root, "ostree/boot.0.1/os/csum/2"),
  );
  symlinkSync("3", join(root, "ostree/boot.0.1/os/csum/3"));

  it("resolves a well-formed chain", () => {
    expect(resolveDeployment(realFs, root, "/ostree/boot.0/os/csum/0").path).toBe(dep);
  });

  const bad: [string, string][] = [
    ["/ostree/boot.0/os/csum/1", "is an absolute symbolic link to"],
    ["/ostree/boot.0/os/csum/2", "leads above the sysroot"],
    ["/ostree/boot.0/os/csum/3", "more than 40 symbolic links"],
    ["/ostree/boot.0/../../../secret", "leads above the sysroot"],
    ["/ostree/boot.0/../../secret", "does not exist"],
  ];
  it.each(bad)("refuses %s", (target, message) => {
    expect(() => resolveDeployment(realFs, root, target)).toThrow(message);
  });
});

describe("loadDeploymentCommit() on the conformance sysroot", () => {
  const sysroot = extracted("ostree/sysroot.tar");
  const repo = OstreeRepo.open(realFs, `${sysroot}/ostree/repo`, { inflateRaw });

  it("reads and re-hashes the commit of deployment 0 and its detached metadata", () => {
    const d = resolveDeployment(realFs, sysroot, `/ostree/boot.0/refos/${BOOT2}/0`);
    const c = loadDeploymentCommit(repo, d);
    expect([c.checksum, c.bytes.length, c.path]).toEqual([C2, 348, d.commitObject]);
    expect(toHex(sha256(c.bytes))).toBe(C2);
    expect(c.commitmeta?.bytes.length).toBe(95);
    expect(c.commitmeta?.path).toBe(d.commitmetaObject);
  });

  it("refuses a deployment whose commit object does not hash to the id in its name", () => {
    // Swap commit 2's bytes in for commit 1's object: the id comes from the deployment name, the bytes don't match.
    const c1 = `${sysroot}/ostree/repo/objects/2a/${C1.slice(2)}.commit`;
    const c2 = `${sysroot}/ostree/repo/objects/59/${C2.slice(2)}.commit`;
    const swap = (p: string) => (p === c1 ? c2 : p);
    const fs: FsRead = {
      ...realFs,
      readFile: (p, cap, what) => realFs.readFile(swap(p), cap, what),
      readFileIfExists: (p, cap, what) => realFs.readFileIfExists(swap(p), cap, what),
      lstat: (p) => realFs.lstat(swap(p)),
      lstatIfExists: (p) => realFs.lstatIfExists(swap(p)),
    };
    const d = resolveDeployment(realFs, sysroot, `/ostree/boot.0/refos/${BOOT1}/0`);
    const swapped = OstreeRepo.open(fs, `${sysroot}/ostree/repo`, { inflateRaw });
    expect(() => loadDeploymentCommit(swapped, d)).toThrow(IntegrityError);
    expect(() => loadDeploymentCommit(swapped, d)).toThrow(`content hashes to ${C2}, expected ${C1}`);
    expect(loadDeploymentCommit(repo, d).bytes.length).toBe(316);
  });

  it("refuses a repository other than the sysroot's", () => {
    const d = resolveDeployment(realFs, sysroot, `/ostree/boot.0/refos/${BOOT2}/0`);
    const other = {
      path: "/elsewhere",
      readMetadataObject: () => expect.unreachable(),
      readCommitmetaSignatures: () => undefined,
    };
    expect(() => loadDeploymentCommit(other, d)).toThrow(
      `Cannot load the commit of "${d.path}" from "/elsewhere": another repository, expected "${d.repo}"`,
    );
  });
});
