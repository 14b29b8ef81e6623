// `sealroot sign --repo DIR --commit SHA --secret-key FILE`: appends an ed25519 signature over the exact
// `.commit` bytes to the commit's `.commitmeta` (`ostree.sign.ed25519`, `aay`), as `ostree sign` does:
// existing entries and signatures are kept in order, the new signature goes last. The commit is re-hashed
// against its name before it is signed.

import { q } from "../base/errors.ts";
import { toHex } from "../formats/bytes.ts";
import {
  ayay,
  ED25519_SIGNATURE_KEY,
  ed25519Signatures,
  encodeCommitmeta,
  setEntry,
} from "../formats/ostree/objects.ts";
import type { OstreeRepo } from "../formats/ostree/repo.ts";
import { writeFileAtomic } from "../sys/write.ts";
import { sign } from "../verify/ed25519.ts";
import { MAX_KEY_FILE_BYTES, parseSecretKeyFile } from "../verify/keys.ts";
import { type CommandModule, readArgFile } from "./context.ts";
import { openRepoAndCommit, repoOptions } from "./show.ts";

/**
 * Signs the commit's exact `.commit` bytes (re-hashed against its name on read) with each secret key and
 * appends the signatures to its `.commitmeta`, as `ostree sign` does. Returns the `.commitmeta` path.
 */
export function appendSignatures(repo: OstreeRepo, checksum: string, secrets: readonly Uint8Array[]): string {
  const { bytes } = repo.readCommit(checksum);
  let entries = repo.readCommitmeta(checksum)?.entries ?? [];
  const signatures = ed25519Signatures(entries);
  for (const secret of secrets) signatures.push(sign(bytes, secret));
  entries = setEntry(entries, ED25519_SIGNATURE_KEY, ayay(signatures));
  const path = repo.objectPath(checksum, "commitmeta");
  writeFileAtomic(path, encodeCommitmeta(entries), 0o644);
  return path;
}

export const signCommand: CommandModule = (y, ctx) =>
  y.command(
    "sign",
    "Sign a commit with an ed25519 secret key (appends to its .commitmeta)",
    (a) =>
      repoOptions(a).option("secret-key", {
        type: "string",
        demandOption: true,
        describe: "file with one base64 secret key per line (seed ‖ public), as ostree sign --keys-file",
      }),
    (argv) => {
      const { repo, checksum } = openRepoAndCommit(ctx, argv);
      const secrets = parseSecretKeyFile(
        readArgFile(ctx.fs, argv.secretKey, MAX_KEY_FILE_BYTES, "secret key file"),
        argv.secretKey,
      );
      const path = appendSignatures(repo, checksum, secrets);
      for (const secret of secrets) ctx.out(`Signed ${checksum} with key ${toHex(secret.subarray(32))}\n`);
      ctx.out(`Wrote ${q(path)}\n`);
    },
  );
