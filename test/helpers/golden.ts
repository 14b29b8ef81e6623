// The golden ostree set's identities, read once from its expected.json (test/fixtures/ostree, made by
// ostree 2026.4; MANIFEST.md describes them) instead of retyped in each test: the two commits, their
// signed composefs digests (= the fs-verity digests of their images), the primary signing key.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OSTREE } from "./fixtures.ts";

interface Expected {
  keys: { primary: { public_hex: string } };
  commits: { checksum: string; composefs_digest_v0: string }[];
}

const expected = JSON.parse(readFileSync(join(OSTREE, "expected.json"), "utf8")) as Expected;
const commit = (i: number) => {
  const c = expected.commits[i];
  if (!c) throw new Error(`Cannot read golden commit ${i + 1}: absent from expected.json`);
  return c;
};

/** Commit 1 (version 1) and commit 2 (version 2, deployment 0 of the golden sysroot). */
export const C1 = commit(0).checksum;
export const C2 = commit(1).checksum;
/** Each commit's signed `ostree.composefs.digest.v0`, the fs-verity digest of its `.ostree.cfs`. */
export const C1_DIGEST = commit(0).composefs_digest_v0;
export const C2_DIGEST = commit(1).composefs_digest_v0;
/** The primary ed25519 public key (keys/ed25519.pub) as hex: what verifies both commits. */
export const PRIMARY_KEY_HEX = expected.keys.primary.public_hex;
