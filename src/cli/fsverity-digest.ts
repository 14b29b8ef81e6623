// `sealroot fsverity-digest FILE...`: prints each file's fs-verity digest exactly as `fsverity digest FILE`
// (fsverity-utils) does — `sha256:<hex> <path>` per line, SHA-256, 4096-byte blocks, no salt — computed in
// userspace, so it works on any file system and kernel. Like fsverity-utils it stops at the first file it
// cannot read: the lines before stay printed, the error goes to stderr as one line, and the exit code is 1.

import { toHex } from "../formats/bytes.ts";
import { streamFile } from "../sys/file-stream.ts";
import { FsVerityHasher } from "../verify/fsverity.ts";
import type { CommandModule } from "./context.ts";

/** Streams the file at `path` through the fs-verity hasher in large chunks (constant memory). */
export function fsverityDigestOfFile(path: string): Uint8Array {
  const hasher = new FsVerityHasher();
  streamFile(path, (chunk) => hasher.update(chunk));
  return hasher.digest();
}

export const fsverityDigestCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "fsverity-digest <files..>",
    "Print the fs-verity digest of each FILE (SHA-256, 4096-byte blocks, no salt), as `fsverity digest`",
    (a) =>
      a.positional("files", {
        type: "string",
        array: true,
        demandOption: true,
        describe: "files to measure",
      }),
    (argv) => {
      for (const path of argv.files as string[]) {
        ctx.out(`sha256:${toHex(fsverityDigestOfFile(path))} ${path}\n`);
      }
      setExit(0);
    },
  );
