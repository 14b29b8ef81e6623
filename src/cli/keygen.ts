// `sealroot keygen --out PREFIX`: a fresh ed25519 key pair in ostree's formats — PREFIX.secret (base64 of
// seed ‖ public, what `ostree sign` reads; mode 0600) and PREFIX.pub (base64 of the public key, what
// `ostree sign --verify --keys-file` and prepare-root read).

import { randomBytes, writeFileAtomic } from "../sys/write.ts";
import { generateKeyPair } from "../verify/ed25519.ts";
import { formatPublicKeyFile, formatSecretKeyFile } from "../verify/keys.ts";
import type { CommandModule } from "./context.ts";

export const keygenCommand: CommandModule = (y, ctx) =>
  y.command(
    "keygen",
    "Make an ed25519 key pair: PREFIX.secret and PREFIX.pub",
    (a) => a.option("out", { type: "string", demandOption: true, describe: "path prefix of the two files" }),
    (argv) => {
      const pair = generateKeyPair(randomBytes(32));
      writeFileAtomic(`${argv.out}.secret`, formatSecretKeyFile(pair.secretKey), 0o600);
      writeFileAtomic(`${argv.out}.pub`, formatPublicKeyFile([pair.publicKey]), 0o644);
      ctx.out(`Wrote ${argv.out}.secret (mode 0600) and ${argv.out}.pub; public key:\n`);
      ctx.out(formatPublicKeyFile([pair.publicKey]));
    },
  );
