// What every CLI command is handed: the real or fake system, and where its output goes. Commands format
// all human and JSON output here in src/cli/; they return an exit code instead of calling process.exit.

import type { Argv } from "yargs";
import { SealrootError } from "../base/errors.ts";
import type { FsRead } from "../base/fs.ts";
import { realpath, streamRegular } from "../sys/fs.ts";

export interface CliContext {
  fs: FsRead;
  /** Standard output, one call per chunk (a trailing newline is the caller's). */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
}

/** A command's handler result: the process exit code. */
export type ExitCode = number;

/** A command registers itself on the yargs tree; handlers report their exit code through `setExit`. */
export type CommandModule = (y: Argv, ctx: CliContext, setExit: (code: ExitCode) => void) => Argv;

/**
 * Reads a file the user named on the command line: a symbolic link they typed is followed (FsRead
 * itself never follows a last component), then the file must be regular and at most `cap` bytes.
 */
export function readArgFile(fs: FsRead, path: string, cap: number, what: string): Uint8Array {
  return fs.readFile(fs.lstatIfExists(path)?.kind === "symlink" ? realpath(path) : path, cap, what);
}

/** The one-line form of any error: typed errors keep their message; others get their name. */
export function errorLine(e: unknown): string {
  if (e instanceof SealrootError) return e.message;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** readArgFile() of the real file system in chunks handed to `sink` (each valid only for the call). */
export function streamArgFile(
  fs: FsRead,
  path: string,
  cap: number,
  what: string,
  sink: (chunk: Uint8Array) => void,
): void {
  streamRegular(fs.lstatIfExists(path)?.kind === "symlink" ? realpath(path) : path, cap, what, sink);
}
