// `sealroot ls --repo DIR (--commit SHA | --ref REF) [-R] [--json]`: every path of a commit's tree with
// type, mode, ownership, size, checksums, symlink target and xattrs. The text form is the line format of
// `ostree ls -CX` (with -R: `ostree ls -RCX`), so the two can be diffed.

import { toHex } from "../formats/bytes.ts";
import { print } from "../formats/gvariant.ts";
import { xattrName } from "../formats/ostree/objects.ts";
import type { TreeEntry } from "../formats/ostree/repo.ts";
import type { CommandModule } from "./context.ts";
import { openRepoAndCommit, repoOptions } from "./show.ts";

const TYPE_CHAR = { dir: "d", file: "-", symlink: "l" } as const;

/** One `ostree ls -CX` line. */
export function lsLine(e: TreeEntry): string {
  const perms = (e.mode & 0o7777).toString(8).padStart(4, "0");
  let s = `${TYPE_CHAR[e.type]}0${perms} ${e.uid} ${e.gid} ${String(e.size).padStart(6)} `;
  s += e.type === "dir" ? `${e.dirtree} ${e.dirmeta} ` : `${e.checksum} `;
  s += `{ ${print(
    "a(ayay)",
    e.xattrs.map((x) => [x.name, x.value]),
    true,
  )} } `;
  s += e.path;
  if (e.type === "symlink") s += ` -> ${e.symlinkTarget}`;
  return s;
}

export function lsJson(e: TreeEntry) {
  return {
    path: e.path,
    type: e.type,
    mode: e.mode,
    perms: (e.mode & 0o7777).toString(8).padStart(4, "0"),
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    ...(e.checksum !== undefined ? { checksum: e.checksum } : {}),
    ...(e.dirtree !== undefined ? { dirtree: e.dirtree, dirmeta: e.dirmeta } : {}),
    ...(e.symlinkTarget !== undefined ? { symlinkTarget: e.symlinkTarget } : {}),
    xattrs: e.xattrs.map((x) => ({ name: xattrName(x), value: toHex(x.value) })),
  };
}

export const lsCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "ls",
    "List an ostree commit's tree (ostree ls -CX format, or JSON)",
    (b) =>
      repoOptions(b)
        .option("R", { alias: "recursive", type: "boolean", default: false, describe: "list recursively" })
        .option("json", { type: "boolean", default: false, describe: "print JSON" }),
    (a) => {
      const { repo, checksum } = openRepoAndCommit(ctx, a);
      const entries = repo.listTree(checksum, { recursive: a.R });
      if (a.json) ctx.out(`${JSON.stringify(entries.map(lsJson), null, 2)}\n`);
      else ctx.out(entries.map((e) => `${lsLine(e)}\n`).join(""));
      setExit(0);
    },
  );
