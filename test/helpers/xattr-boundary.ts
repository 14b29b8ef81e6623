// Dumpfiles at and around libcomposefs 1.0.8's per-inode xattr limits, for the pinned-digest test
// (test/unit/composefs-xattr-limit.test.ts) and the differential test against the real mkcomposefs
// (test/unit/mkcomposefs-differential.test.ts). Two limits meet here: the dumpfile parser caps an inode's
// own xattrs at 32767 budget bytes (12 + Σ(7 + key + value)); the writer works on a copy of the tree whose
// budget restarts at 0, so the overlay xattrs it adds are counted only among themselves, and replacing an
// own xattr of the same name subtracts from that 0 (a size_t that wraps: ERANGE unless the add brings it back).

/** LCFS_INODE_EXTERNAL_XATTR_MAX and the budget of one xattr: 12 (header, once) + 7 + |key| + |value|. */
export const LIMIT = 32767;
const HEADER = 12;
const PER_ENTRY = 7;

/** The value length that brings `keys` (each with that many bytes but the last) exactly to `LIMIT + over`. */
export function fill(keys: string[], others: number[] = [], over = 0): number {
  const used =
    HEADER + keys.reduce((n, k) => n + PER_ENTRY + k.length, 0) + others.reduce((a, c) => a + c, 0);
  return LIMIT + over - used;
}

export const ROOT_LINE = "/ 0 40755 2 0 0 0 0.0 - - -";
const DIGEST = "0123456789abcdef".repeat(4);
const v = (n: number, c = "v") => c.repeat(n);
/** `user.a` alone at the limit: 12 + 7 + 6 + 32742 = 32767. */
const AT = `user.a=${v(fill(["user.a"]))}`;
const OVER = `user.a=${v(fill(["user.a"], [], 1))}`;

export interface BoundaryCase {
  name: string;
  /** What the case exercises and how mkcomposefs 1.0.8 answers. */
  about: string;
  dump: string;
}

const dump = (...lines: string[]) => `${[ROOT_LINE, ...lines].join("\n")}\n`;
const file = (size: number, payload: string, digest: string, xattrs: string) =>
  `/f ${size} 100644 1 0 0 0 0.0 ${payload} - ${digest} ${xattrs}`;

export const BOUNDARY_CASES: BoundaryCase[] = [
  {
    name: "at-limit-payload-digest",
    about: "own xattrs at 32767 on a payload file with a digest: + 36-byte metacopy + redirect, accepted",
    dump: dump(file(10, "ab/cd", DIGEST, AT)),
  },
  {
    name: "at-limit-payload",
    about: "own xattrs at 32767 on a payload file without digest: + empty metacopy + redirect, accepted",
    dump: dump(file(10, "ab/cd", "-", AT)),
  },
  {
    name: "at-limit-digest-only",
    about: "own xattrs at 32767 on a non-empty file with a digest and no payload: + metacopy only, accepted",
    dump: dump(file(10, "-", DIGEST, AT)),
  },
  {
    name: "at-limit-no-digest",
    about: "own xattrs at 32767 on a non-empty file with neither: + empty metacopy, accepted",
    dump: dump(file(10, "-", "-", AT)),
  },
  {
    name: "at-limit-long-redirect",
    about: "own xattrs at 32767 and a 4095-byte payload: + a 4096-byte redirect, accepted",
    dump: dump(file(10, v(4095, "p"), DIGEST, AT)),
  },
  {
    name: "at-limit-two-xattrs",
    about: "two own xattrs summing to 32767 on a payload file, accepted",
    dump: dump(
      file(10, "ab/cd", DIGEST, `user.a=${v(16000)} user.b=${v(fill(["user.a", "user.b"], [16000]))}`),
    ),
  },
  {
    name: "at-limit-escaped",
    about:
      "an own trusted.overlay.* at 32767 on a payload file: renamed 8 bytes longer, + metacopy, accepted",
    dump: dump(file(10, "ab/cd", DIGEST, `trusted.overlay.x=${v(fill(["trusted.overlay.x"]))}`)),
  },
  {
    name: "at-limit-escaped-dir",
    about: "an own trusted.overlay.* at 32767 on a directory: renamed 8 bytes longer, accepted",
    dump: dump(`/d 0 40755 2 0 0 0 0.0 - - - trusted.overlay.x=${v(fill(["trusted.overlay.x"]))}`),
  },
  {
    name: "at-limit-inline",
    about: "own xattrs at 32767 on an inline file (no overlay xattrs added), accepted",
    dump: dump(`/f 3 100644 1 0 0 0 0.0 - abc - ${AT}`),
  },
  {
    name: "at-limit-empty-file",
    about: "own xattrs at 32767 on an empty file (no metacopy), accepted",
    dump: dump(file(0, "-", "-", AT)),
  },
  {
    name: "at-limit-whiteout",
    about: "own xattrs at 32767 on a whiteout: + both escaped whiteout xattrs, accepted",
    dump: dump(`/w 0 20644 1 0 0 0 0.0 - - - ${AT}`),
  },
  {
    name: "at-limit-whiteout-parent",
    about: "own xattrs at 32767 on a directory holding a whiteout: + whiteouts (and opaque in v1), accepted",
    dump: dump(`/d 0 40755 2 0 0 0 0.0 - - - ${AT}`, "/d/w 0 20644 1 0 0 0 0.0 - - -"),
  },
  {
    name: "at-limit-root",
    about: "own xattrs at 32767 on the root: + trusted.overlay.opaque, accepted",
    dump: `/ 0 40755 2 0 0 0 0.0 - - - ${AT}\n`,
  },
  {
    name: "at-limit-root-whiteout",
    about: "own xattrs at 32767 on the root holding a whiteout: + opaque, whiteouts, accepted",
    dump: `/ 0 40755 2 0 0 0 0.0 - - - ${AT}\n/w 0 20644 1 0 0 0 0.0 - - -\n`,
  },
  {
    name: "at-limit-root-selinux",
    about: "a 32732-byte security.selinux on the root at 32767, copied to the 256 whiteout stubs, accepted",
    dump: `/ 0 40755 2 0 0 0 0.0 - - - security.selinux=${v(fill(["security.selinux"]))}\n`,
  },
  {
    name: "at-limit-after-duplicate",
    about: "a long user.a replaced by a later user.a at 32767 on the same line (last wins), accepted",
    dump: dump(file(10, "ab/cd", DIGEST, `user.a=${v(20000)} ${AT}`)),
  },
  {
    name: "over-limit-payload",
    about: "own xattrs at 32768 on a payload file: refused by the parser",
    dump: dump(file(10, "ab/cd", DIGEST, OVER)),
  },
  {
    name: "over-limit-empty-file",
    about: "own xattrs at 32768 on an empty file: refused by the parser",
    dump: dump(file(0, "-", "-", OVER)),
  },
  {
    name: "over-limit-before-duplicate",
    about: "a user.a at 32768 later replaced by a short one: refused at the long one (no look-ahead)",
    dump: dump(file(0, "-", "-", `${OVER} user.a=1`)),
  },
  {
    name: "whiteout-own-escaped-whiteout",
    about:
      "a whiteout with its own trusted.overlay.whiteout=abc and another xattr: replacing the escaped one " +
      "takes 42 from a budget of 0, adding back 39 leaves it below 0: refused (ERANGE)",
    dump: dump("/w 0 20644 1 0 0 0 0.0 - - - trusted.overlay.whiteout=abc user.z=1"),
  },
  {
    name: "whiteout-own-escaped-whiteout-empty",
    about: "the same with an empty own value: the budget returns to exactly 0, accepted",
    dump: dump("/w 0 20644 1 0 0 0 0.0 - - - trusted.overlay.whiteout= user.z=1"),
  },
  {
    name: "whiteout-own-escaped-whiteout-alone",
    about: "the same as its only xattr: removing the last one resets the budget, accepted",
    dump: dump("/w 0 20644 1 0 0 0 0.0 - - - trusted.overlay.whiteout=abc"),
  },
  {
    name: "whiteout-own-user-whiteout",
    about:
      "a whiteout with its own user.overlay.whiteout=abc: replaced after the escaped one was added, accepted",
    dump: dump("/w 0 20644 1 0 0 0 0.0 - - - user.overlay.whiteout=abc user.z=1"),
  },
  {
    name: "whiteout-parent-own-whiteouts",
    about: "a directory with its own trusted.overlay.whiteouts=abc holding a whiteout: refused (ERANGE)",
    dump: dump(
      "/d 0 40755 2 0 0 0 0.0 - - - trusted.overlay.whiteouts=abc user.z=1",
      "/d/w 0 20644 1 0 0 0 0.0 - - -",
    ),
  },
  {
    name: "whiteout-parent-own-user-opaque-108",
    about:
      "a directory with its own 108-byte user.overlay.opaque holding a whiteout: in v1 the budget is " +
      "40 + 29 + 38 = 107 when it is replaced, 107 - 134 + 27 = 0: accepted",
    dump: dump(
      `/d 0 40755 2 0 0 0 0.0 - - - user.overlay.opaque=${v(108)} user.z=1`,
      "/d/w 0 20644 1 0 0 0 0.0 - - -",
    ),
  },
  {
    name: "whiteout-parent-own-user-opaque-109",
    about: "the same with 109 bytes: below 0 in v1 (refused, ERANGE); v0 adds no opaque xattrs (accepted)",
    dump: dump(
      `/d 0 40755 2 0 0 0 0.0 - - - user.overlay.opaque=${v(109)} user.z=1`,
      "/d/w 0 20644 1 0 0 0 0.0 - - -",
    ),
  },
  {
    name: "whiteout-parent-own-user-opaque-109-twice",
    about: "the 109-byte case with two whiteouts in the directory: refused at the first one in v1",
    dump: dump(
      `/d 0 40755 2 0 0 0 0.0 - - - user.overlay.opaque=${v(109)} user.z=1`,
      "/d/a 0 20644 1 0 0 0 0.0 - - -",
      "/d/b 0 20644 1 0 0 0 0.0 - - -",
    ),
  },
  {
    name: "whiteout-root-own-user-opaque-109",
    about: "the root with its own 109-byte user.overlay.opaque holding a whiteout: refused in v1",
    dump: `/ 0 40755 2 0 0 0 0.0 - - - user.overlay.opaque=${v(109)} user.z=1\n/w 0 20644 1 0 0 0 0.0 - - -\n`,
  },
  {
    name: "root-own-opaque",
    about:
      "the root with its own trusted.overlay.opaque: escaped, then the writer's opaque=y added, accepted",
    dump: "/ 0 40755 2 0 0 0 0.0 - - - trusted.overlay.opaque=abc user.z=1\n",
  },
];

/** The format-version options of the golden variants: v0, v1, and the default range 0..1. */
export const VERSIONS = [
  { name: "v0", args: ["--min-version=0", "--max-version=0"], version: 0, maxVersion: 0 },
  { name: "v1", args: ["--min-version=1", "--max-version=1"], version: 1, maxVersion: 1 },
  { name: "default", args: [], version: 0, maxVersion: 1 },
] as const;
