// `sealroot composefs dump IMAGE`: prints a composefs (EROFS) image in the text form of libcomposefs'
// `composefs-info dump`, byte for byte. Reading goes through the strict reader; a malformed image is one
// FormatError line on stderr and exit 1 (mapped by runCli). Only I/O and output live here.

import type { Argv } from "yargs";
import { FormatError, q } from "../base/errors.ts";
import { dumpTree } from "../formats/composefs/dump-print.ts";
import { MAX_IMAGE_BYTES, readErofs } from "../formats/erofs/read.ts";
import { type CliContext, type CommandModule, readArgFile } from "./context.ts";

/** Reads IMAGE through ctx.fs and returns its dump text; errors name the image path. */
export function composefsDumpText(ctx: CliContext, image: string): string {
  const bytes = readArgFile(ctx.fs, image, MAX_IMAGE_BYTES, "composefs image");
  try {
    return dumpTree(readErofs(bytes, { libcomposefsPayloadQuirk: true }).root);
  } catch (e) {
    if (e instanceof FormatError) {
      const detail = e.message.replace(/^Cannot read composefs image: /, "");
      throw new FormatError(
        `Cannot read composefs image ${q(image)}: ${detail}`,
        { ...e.data, path: image },
        { cause: e },
      );
    }
    throw e;
  }
}

/** Registers `dump <image>` on a `composefs` command's builder (for merging with other subcommands). */
export function composefsDumpSubcommand(y: Argv, ctx: CliContext, setExit: (code: number) => void): Argv {
  return y.command(
    "dump <image>",
    "Print a composefs image as `composefs-info dump` does",
    (b) => b.positional("image", { type: "string", demandOption: true, describe: "composefs (EROFS) image" }),
    (argv) => {
      ctx.out(composefsDumpText(ctx, String(argv.image)));
      setExit(0);
    },
  );
}

/** `sealroot composefs dump IMAGE` as a top-level `composefs` command. */
export const composefsDumpCommand: CommandModule = (y, ctx, setExit) =>
  y.command("composefs", "Inspect composefs images", (c) =>
    composefsDumpSubcommand(c, ctx, setExit).demandCommand(1, "Name a composefs subcommand"),
  );
