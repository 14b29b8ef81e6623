// `sealroot verify-commit --repo DIR (--commit SHA | --ref REF) --keys FILE`: like `ostree sign --verify`.
// Exit 0 and the key that verified, or exit 1 and one line saying why. The commit is loaded by checksum and
// re-hashed first, so a tampered `.commit` is refused before any signature is looked at.

import { MAX_KEY_FILE_BYTES, parsePublicKeyFile } from "../verify/keys.ts";
import { verifyCommitSignatures } from "../verify/signature.ts";
import { type CommandModule, readArgFile } from "./context.ts";
import { openRepoAndCommit, repoOptions } from "./show.ts";

export const verifyCommitCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "verify-commit",
    "Verify a commit's ed25519 signatures against trusted public keys",
    (a) =>
      repoOptions(a).option("keys", {
        type: "string",
        demandOption: true,
        describe: "file with one base64 ed25519 public key per line",
      }),
    (argv) => {
      const keyFile = parsePublicKeyFile(
        readArgFile(ctx.fs, argv.keys, MAX_KEY_FILE_BYTES, "public key file"),
        argv.keys,
      );
      for (const p of keyFile.problems) {
        ctx.err(`sealroot: warning: ${argv.keys} line ${p.line}: ${p.reason}; key skipped\n`);
      }
      const { repo, checksum } = openRepoAndCommit(ctx, argv);
      const { bytes } = repo.readCommit(checksum);
      const meta = repo.readCommitmetaSignatures(checksum);
      const verdict = verifyCommitSignatures(bytes, meta?.signatures, keyFile.keys);
      if (verdict.ok) {
        ctx.out(`ed25519: Signature verified successfully with key '${verdict.keyHex}'\n`);
        return;
      }
      const missing = meta === undefined ? " (the commit has no .commitmeta)" : "";
      ctx.err(
        `sealroot: Cannot verify commit ${checksum}: ${verdict.reason}${missing}${verdict.expected ? `, expected ${verdict.expected}` : ""}\n`,
      );
      setExit(1);
    },
  );
