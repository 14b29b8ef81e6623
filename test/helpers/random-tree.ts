// Random composefs trees for property tests: a list of fast-check "ops" (add an entry of some type,
// or a hardlink to an earlier file, under a random directory) turned into a tree. Shared by the writer's
// "never crashes" property and the write → read → write round trip.

import fc from "fast-check";
import { toHex, utf8 } from "../../src/formats/bytes.ts";
import {
  addChild,
  type Inode,
  newInode,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
} from "../../src/formats/composefs/tree.ts";

const types = [S_IFREG, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK];
export const treeOp = fc.record({
  parent: fc.nat(),
  name: fc
    .uint8Array({ minLength: 1, maxLength: 12 })
    .map((a) => a.map((c) => (c === 0 || c === 0x2f ? 0x61 : c))),
  type: fc.constantFrom(...types),
  perm: fc.integer({ min: 0, max: 0o7777 }),
  size: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 5000 }),
    fc.integer({ min: 0, max: 2 ** 53 + 2 ** 44 }),
  ),
  inline: fc.boolean(),
  ids: fc.constantFrom(0, 1, 65535, 65536, 4294967295),
  rdev: fc.constantFrom(0, 0, 259, 0xffffffff),
  mtime: fc.constantFrom(0, 1, -5, 1700000000),
  nsec: fc.constantFrom(0, 999999999),
  xattrs: fc.array(
    fc.record({
      key: fc.constantFrom(
        "user.a",
        "security.selinux",
        "trusted.overlay.opaque",
        "trusted.overlay.overlay.whiteouts",
        "system.posix_acl_access",
        "odd",
      ),
      len: fc.constantFrom(0, 1, 3, 100, 4000, 16000),
    }),
    { maxLength: 4 },
  ),
  link: fc.option(fc.nat(), { freq: 5 }),
  target: fc.integer({ min: 1, max: 5000 }),
  digest: fc.boolean(),
});

export type TreeOp = typeof treeOp extends fc.Arbitrary<infer T> ? T : never;

/** Builds the tree the ops describe; entries that would collide or be `.`/`..` are skipped. */
export function buildTree(ops: TreeOp[]): Inode {
  const root = newInode(S_IFDIR | 0o755);
  const all: Inode[] = [root];
  for (const o of ops) {
    const dirs = all.filter((i) => (i.mode & 0o170000) === S_IFDIR);
    const parent = dirs[o.parent % dirs.length]!;
    if (parent.children.some((d) => toHex(d.name) === toHex(o.name))) continue;
    if (
      (o.name.length === 1 && o.name[0] === 0x2e) ||
      (o.name.length === 2 && o.name[0] === 0x2e && o.name[1] === 0x2e)
    )
      continue;
    const files = all.filter((i) => (i.mode & 0o170000) !== S_IFDIR);
    if (o.link !== null && files.length > 0) {
      addChild(parent, o.name, files[o.link % files.length]!, true);
      continue;
    }
    const inode = newInode(o.type | o.perm, {
      uid: o.ids,
      gid: o.ids,
      nlink: o.ids || 1,
      mtime: { sec: o.mtime, nsec: o.nsec },
    });
    if (o.type === S_IFCHR || o.type === S_IFBLK) inode.rdev = o.rdev;
    if (o.type === S_IFLNK) {
      inode.payload = new Uint8Array(Math.min(o.target, 4095)).fill(0x78);
      inode.size = inode.payload.length;
    } else if (o.type === S_IFREG) {
      if (o.inline && o.size > 0 && o.size <= 5000) {
        inode.size = o.size;
        inode.content = new Uint8Array(o.size).fill(7);
      } else {
        inode.size = o.size;
        inode.payload = utf8.encode("ab/cdef");
        if (o.digest) inode.digest = new Uint8Array(32).fill(9);
      }
    }
    for (const x of o.xattrs) {
      const key = utf8.encode(x.key);
      if (!inode.xattrs.some((y) => toHex(y.key) === toHex(key))) {
        inode.xattrs.push({ key, value: new Uint8Array(x.len).fill(0x41) });
      }
    }
    addChild(parent, o.name, inode);
    all.push(inode);
  }
  return root;
}
