// A listing of a directory tree as data, to compare a mounted composefs with the deployment directory it
// was built from: kind, mode (permission and special bits), owner, size, SHA-256 of contents, symlink
// target and every readable extended attribute. Used by the privileged tests and by run-mount.ts (which
// also runs inside the VM, compiled with Bun).

import { join } from "node:path";
import { sha256 } from "../../src/base/hash.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { realFs } from "../../src/sys/fs.ts";

export interface Entry {
  path: string;
  kind: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
  xattrs: Record<string, string>;
}

/** Every entry under `root` (root itself as "."), sorted by path. */
export function walk(root: string, skip: (rel: string) => boolean = () => false): Entry[] {
  const out: Entry[] = [];
  const visit = (rel: string) => {
    if (rel !== "." && skip(rel)) return;
    const p = rel === "." ? root : join(root, rel);
    const st = realFs.lstat(p);
    const xattrs: Record<string, string> = {};
    for (const name of realFs.llistxattr(p).sort()) {
      const v = realFs.lgetxattr(p, name);
      if (v !== undefined) xattrs[name] = toHex(v);
    }
    const e: Entry = {
      path: rel,
      kind: st.kind,
      mode: (st.mode & 0o7777).toString(8).padStart(4, "0"),
      uid: st.uid,
      gid: st.gid,
      xattrs,
    };
    if (st.kind === "file") {
      const data = realFs.readFile(p, 1 << 30);
      e.size = data.length;
      e.sha256 = toHex(sha256(data));
    }
    if (st.kind === "symlink") e.target = realFs.readlink(p);
    out.push(e);
    if (st.kind === "dir") {
      for (const name of realFs.readdir(p).sort()) visit(rel === "." ? name : `${rel}/${name}`);
    }
  };
  visit(".");
  return out;
}
