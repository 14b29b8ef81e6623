// `sealroot seal --repo DIR --ref REF --secret-key FILE`: replaces the commit at REF by its sealed twin —
// the same commit with `ostree.composefs.digest.v0` (the fs-verity digest of its composefs image with
// per-file digests, as `ostree commit --generate-composefs-metadata` computes it) — signs that, and moves
// REF to it. Writes happen in the order commit object → signature → ref, so a crash never leaves REF on
// an unsigned commit.
//
// What the sealed commit keeps: parent, subject, body, timestamp, related objects, root tree and every
// metadata entry of the original (an existing digest is replaced in its slot; the key order is GLib's
// GVariantDict order, as ostree's own commit writes it). It is an amend, not a child commit: history
// stays as the author made it, the result depends only on the input (sealing the same commit twice gives
// the same checksum and, ed25519 being deterministic, the same signature), and a commit made with
// `ostree commit … --generate-composefs-metadata` in one step comes out byte-identical. The unsealed
// commit stays in the repository, no longer referenced by REF, until `ostree prune` removes it. A commit
// that already carries the right digest is not rewritten; it is only signed if no signature of this key
// already verifies.

import { NotFoundError, q, UsageError } from "../base/errors.ts";
import { bytesEqual, toHex } from "../formats/bytes.ts";
import { sealCommit } from "../formats/ostree/commit-write.ts";
import { COMPOSEFS_DIGEST_KEY } from "../formats/ostree/objects.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { realSys } from "../sys/real.ts";
import { writeFileAtomic } from "../sys/write.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { publicFromSeed } from "../verify/ed25519.ts";
import { MAX_KEY_FILE_BYTES, parseSecretKeyFile } from "../verify/keys.ts";
import { verifyCommitSignatures } from "../verify/signature.ts";
import { buildComposefsImage } from "./composefs-image.ts";
import { type CliContext, type CommandModule, readArgFile } from "./context.ts";
import { appendSignatures } from "./sign.ts";

/** Writes a commit object (content-addressed: an existing one is left alone, the reader re-hashes it). */
export function writeCommitObject(
  ctx: CliContext,
  repo: OstreeRepo,
  checksum: string,
  bytes: Uint8Array,
): void {
  const path = repo.objectPath(checksum, "commit");
  if (ctx.fs.lstatIfExists(path)) return;
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (!ctx.fs.lstatIfExists(dir)) realSys.mkdir(dir, 0o755);
  writeFileAtomic(path, bytes, 0o644);
}

export interface SealResult {
  from: string;
  to: string;
  digest: Uint8Array;
  rewritten: boolean;
  signedWith: string[];
}

export function sealRef(ctx: CliContext, repoPath: string, ref: string, secrets: Uint8Array[]): SealResult {
  const repo = OstreeRepo.open(ctx.fs, repoPath, { inflateRaw });
  const from = repo.resolveRev(ref);
  const refPath = `${repo.path}/refs/heads/${ref}`;
  if (ctx.fs.lstatIfExists(refPath)?.kind !== "file") {
    throw new UsageError(
      `Cannot seal ${q(ref)} in ${q(repo.path)}: no ${q(refPath)}, expected a local branch (refs/heads) to move`,
    );
  }
  const { commit } = repo.readCommit(from);
  const built = buildComposefsImage(repo, from, "full");
  let to = from;
  let rewritten = false;
  if (!built.expected || !bytesEqual(built.expected, built.digest)) {
    const sealed = sealCommit(commit, built.digest);
    writeCommitObject(ctx, repo, sealed.checksum, sealed.bytes);
    to = sealed.checksum;
    rewritten = true;
  }
  // Sign with the keys that have no verifying signature on the sealed commit yet.
  const { bytes } = repo.readCommit(to);
  const existing = repo.readCommitmetaSignatures(to)?.signatures ?? [];
  const needed = secrets.filter(
    (s) => !verifyCommitSignatures(bytes, existing, [publicFromSeed(s.subarray(0, 32))]).ok,
  );
  if (needed.length > 0) appendSignatures(repo, to, needed);
  if (to !== from) writeFileAtomic(refPath, `${to}\n`, 0o644);
  return { from, to, digest: built.digest, rewritten, signedWith: needed.map((s) => toHex(s.subarray(32))) };
}

export const sealCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "seal",
    "Add ostree.composefs.digest.v0 to the commit at REF (same tree and fields), sign it, move REF to it",
    (a) =>
      a
        .option("repo", { type: "string", demandOption: true, describe: "ostree repository directory" })
        .option("ref", { type: "string", demandOption: true, describe: "local branch to seal and move" })
        .option("secret-key", {
          type: "string",
          demandOption: true,
          describe: "file with one base64 secret key per line (seed ‖ public), as ostree sign --keys-file",
        }),
    (argv) => {
      const secrets = parseSecretKeyFile(
        readArgFile(ctx.fs, argv.secretKey, MAX_KEY_FILE_BYTES, "secret key file"),
        argv.secretKey,
      );
      if (secrets.length === 0) {
        throw new NotFoundError(
          `Cannot seal with ${q(argv.secretKey)}: no keys in it, expected at least one`,
        );
      }
      const r = sealRef(ctx, argv.repo, argv.ref, secrets);
      ctx.out(`${COMPOSEFS_DIGEST_KEY}: ${toHex(r.digest)}\n`);
      ctx.out(r.rewritten ? `Sealed ${r.from} as ${r.to}\n` : `Commit ${r.to} is already sealed\n`);
      for (const key of r.signedWith) ctx.out(`Signed ${r.to} with key ${key}\n`);
      if (r.to !== r.from) ctx.out(`Moved ${argv.ref} to ${r.to}\n`);
      setExit(0);
    },
  );
