// Files of a commit's own tree, read through the repository with every dirtree and content object
// re-hashed against its name: the trust anchors (prepare-root.conf, key files) `sealroot verify` uses
// without --root, since a deployment's checkout and its writable /etc are covered by nothing. ostree keeps
// a commit's /etc as /usr/etc; a path under /etc is looked up there first. Pure over the injected repo.

import { NotFoundError, q } from "../base/errors.ts";
import { notRegularFile, overCap } from "../base/fs.ts";
import { toHex } from "../formats/bytes.ts";
import type { Commit } from "../formats/ostree/objects.ts";
import type { OstreeRepo } from "../formats/ostree/repo.ts";
import type { AnchorSource } from "./decision.ts";

export type TreeRepo = Pick<OstreeRepo, "readDirtree" | "readContent">;

/** The regular file at absolute `path` in the tree, at most `cap` bytes; `undefined` when absent. */
export function readTreeFile(
  repo: TreeRepo,
  commit: Commit,
  path: string,
  cap: number,
  what: string,
): Uint8Array | undefined {
  const parts = path.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..") || parts.length === 0) return undefined;
  let tree = toHex(commit.rootDirtree);
  for (const name of parts.slice(0, -1)) {
    const dir = repo.readDirtree(tree).dirs.find((d) => d.name === name);
    if (!dir) return undefined;
    tree = toHex(dir.dirtree);
  }
  const last = parts[parts.length - 1];
  const file = repo.readDirtree(tree).files.find((f) => f.name === last);
  if (!file) return undefined;
  const obj = repo.readContent(toHex(file.checksum));
  if (obj.kind !== "file") throw notRegularFile(what, path, "symlink");
  if (obj.size > cap) throw overCap(what, path, obj.size, cap);
  return obj.content ?? new Uint8Array(0);
}

/** `/etc/x` is looked up as `/usr/etc/x` (ostree's place for a commit's /etc), then as `/etc/x`. */
export function commitFile(
  repo: TreeRepo,
  commit: Commit,
  path: string,
  cap: number,
  what: string,
): Uint8Array | undefined {
  const etc = /^\/+etc(\/|$)/.test(path) ? `/usr${path.replace(/^\/+/, "/")}` : undefined;
  return (
    (etc === undefined ? undefined : readTreeFile(repo, commit, etc, cap, what)) ??
    readTreeFile(repo, commit, path, cap, what)
  );
}

/** Key files from the commit `checksum`'s own tree (what an initramfs built from it would hold). */
export function commitAnchors(repo: TreeRepo, commit: Commit, checksum: string): AnchorSource {
  const where = `commit ${checksum}'s own tree (/etc as /usr/etc)`;
  return {
    where,
    read(path, cap, what) {
      const b = commitFile(repo, commit, path, cap, what);
      if (b === undefined) {
        throw new NotFoundError(
          `Cannot read ${what} ${q(path)}: not in ${where}, expected the key file an initramfs built from it would hold (or --root naming the initramfs)`,
          { path },
        );
      }
      return b;
    },
  };
}
