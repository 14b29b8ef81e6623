// A Stat for fake file systems in unit tests: every field zero (nlink 1) but the kind and what is given.

import type { FileKind, Stat } from "../../src/base/fs.ts";

export function fakeStat(kind: FileKind, fields: Partial<Stat> = {}): Stat {
  return {
    kind,
    mode: 0,
    uid: 0,
    gid: 0,
    size: 0,
    rdev: 0,
    mtimeSec: 0,
    mtimeNsec: 0,
    dev: 0,
    ino: 0,
    nlink: 1,
    ...fields,
  };
}
