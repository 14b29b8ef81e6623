// `sealroot measure FILE...`: asks the kernel for each file's fs-verity digest (FS_IOC_MEASURE_VERITY) and
// prints it exactly as `fsverity measure` (fsverity-utils) does — `sha256:<hex> <path>` per line. Like
// fsverity-utils it stops at the first file it cannot measure (no verity, no kernel support): the lines
// before stay printed, the reason goes to stderr as one line, and the exit code is 1.

import { toHex } from "../formats/bytes.ts";
import { sysError } from "../sys/errno.ts";
import { measureVerityPath } from "../sys/verity.ts";
import type { CommandModule } from "./context.ts";

export const measureCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "measure <files..>",
    "Print the fs-verity digest the kernel has for each FILE, as `fsverity measure`",
    (a) =>
      a.positional("files", {
        type: "string",
        array: true,
        demandOption: true,
        describe: "files with fs-verity enabled",
      }),
    (argv) => {
      for (const path of argv.files as string[]) {
        const m = measureVerityPath(path);
        if (m === undefined)
          throw sysError("measure fs-verity of", path, "ENODATA", {
            expected: "a file with fs-verity enabled (sealroot enable-verity)",
          });
        ctx.out(`${m.algorithm}:${toHex(m.digest)} ${path}\n`);
      }
      setExit(0);
    },
  );
