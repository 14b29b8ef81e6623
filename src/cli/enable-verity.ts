// `sealroot enable-verity FILE...`: turns on fs-verity for each file (FS_IOC_ENABLE_VERITY, SHA-256,
// 4096-byte blocks, no salt — the parameters of `fsverity enable` and of ostree/composefs). Prints nothing
// for a file it enabled, like `fsverity enable`; a file that already has verity is fine and is reported on
// stderr. Stops at the first failure with one line on stderr and exit code 1.

import { q } from "../base/errors.ts";
import { enableVerity } from "../sys/verity.ts";
import type { CommandModule } from "./context.ts";

export const enableVerityCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "enable-verity <files..>",
    "Enable fs-verity on each FILE (SHA-256, 4096-byte blocks, no salt), as `fsverity enable`",
    (a) =>
      a.positional("files", {
        type: "string",
        array: true,
        demandOption: true,
        describe: "files on a file system with fs-verity (ext4 -O verity)",
      }),
    (argv) => {
      for (const path of argv.files as string[]) {
        if (!enableVerity(path)) ctx.err(`sealroot: fs-verity already enabled on ${q(path)}\n`);
      }
      setExit(0);
    },
  );
