// `sealroot mkcomposefs [OPTIONS] SOURCE IMAGE`, and the binary invoked under the name `mkcomposefs`: a
// drop-in for libcomposefs 1.0.8's mkcomposefs — the same options (parsed like its getopt_long: options
// anywhere, unique prefixes, `--`), inputs (a dumpfile with --from-file, `-` = stdin, or a directory with a
// digest store), output bytes, --print-digest lines and exit codes (0, or 1 for any failure). It differs
// where mkcomposefs is unhelpful: errors name the file, line and field, and a failure leaves no IMAGE.

import { FormatError, q, SealrootError, UsageError } from "../base/errors.ts";
import { toHex, utf8 } from "../formats/bytes.ts";
import { dumpfileLineOf, dumpfileParser, parseDumpfile } from "../formats/composefs/dumpfile.ts";
import type { Inode } from "../formats/composefs/tree.ts";
import { type MeasuredImage, measureErofs } from "../formats/erofs/write.ts";
import { loosePath } from "../formats/ostree/objects.ts";
import {
  collectGarbage,
  type ImageChunks,
  readSourceTree,
  readStdin,
  showPath,
  stdoutIsTty,
  storeObject,
  streamSourceFile,
  writeImage,
  writeStdout,
} from "../sys/composefs-dir.ts";
import { realFs } from "../sys/fs.ts";
import { FsVerityHasher } from "../verify/fsverity.ts";
import { type CliContext, type CommandModule, readArgFile, streamArgFile } from "./context.ts";

/** Regular files up to this size are stored inline in a directory-source image
 * (LCFS_RECOMMENDED_INLINE_CONTENT_MAX); larger ones go to the digest store. */
export const INLINE_SMALL_MAX = 64;

export interface MkcomposefsArgs {
  source: string;
  /** Output path, `-` for stdout; undefined with --print-digest-only. */
  image: string | undefined;
  fromFile: boolean;
  digestStore: string | undefined;
  minVersion: number;
  maxVersion: number;
  useEpoch: boolean;
  skipXattrs: boolean;
  userXattrs: boolean;
  skipDevices: boolean;
  printDigest: boolean;
  printDigestOnly: boolean;
  /** --threads=N: accepted and validated for compatibility; sealroot works in one thread. */
  threads: number | undefined;
}

interface LongOption {
  name: string;
  hasArg: boolean;
}

/** mkcomposefs 1.0.8's long options (plus --help). */
const LONG_OPTIONS: LongOption[] = [
  { name: "skip-xattrs", hasArg: false },
  { name: "user-xattrs", hasArg: false },
  { name: "skip-devices", hasArg: false },
  { name: "use-epoch", hasArg: false },
  { name: "digest-store", hasArg: true },
  { name: "print-digest", hasArg: false },
  { name: "print-digest-only", hasArg: false },
  { name: "from-file", hasArg: false },
  { name: "max-version", hasArg: true },
  { name: "min-version", hasArg: true },
  { name: "threads", hasArg: true },
  { name: "help", hasArg: false },
];

/** LCFS_DEFAULT_VERSION_MIN / LCFS_DEFAULT_VERSION_MAX. */
const DEFAULT_MIN_VERSION = 0;
const DEFAULT_MAX_VERSION = 1;
/** The image is written (and hashed for --print-digest) in chunks of this size, not held whole. */
const IMAGE_CHUNK_SIZE = 1 << 20;
/** Largest dumpfile read (a 100,000-entry one is ~10 MB). */
const MAX_DUMPFILE_BYTES = 1 << 30;

export function usage(prog: string): string {
  return [
    `Usage: ${prog} [OPTIONS] SOURCE IMAGE`,
    "Write a composefs (EROFS) image IMAGE (`-` = stdout) from SOURCE: a directory, or with --from-file",
    "a composefs-dump(5) file (`-` = stdin). Byte-identical to libcomposefs 1.0.8's mkcomposefs.",
    "Options:",
    "  --digest-store=PATH   Store content files in this directory",
    "  --use-epoch           Make all mtimes zero",
    "  --skip-devices        Don't store device nodes",
    "  --skip-xattrs         Don't store file xattrs",
    "  --user-xattrs         Only store user.* xattrs",
    "  --print-digest        Print the digest of the image",
    "  --print-digest-only   Print the digest of the image, don't write image",
    "  --from-file           The source is a dump file, not a directory",
    `  --min-version=N       Use this minimal format version (default=${DEFAULT_MIN_VERSION})`,
    `  --max-version=N       Use this maximum format version (default=${DEFAULT_MAX_VERSION})`,
    "  --threads=N           Accepted for compatibility (sealroot uses one thread)",
    "Environment: CFS_PARSE_STRICT (set to anything) parses the dumpfile strictly.",
    "",
  ].join("\n");
}

/** strtol(s, &end, 10) with mkcomposefs's check that the whole string is a number. */
function parseLong(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(s);
  if (!m) return undefined;
  const v = Number(m[1]);
  return Number.isSafeInteger(v) ? v : undefined;
}

function findLong(spelled: string): LongOption {
  const exact = LONG_OPTIONS.find((o) => o.name === spelled);
  if (exact) return exact;
  const matches = LONG_OPTIONS.filter((o) => o.name.startsWith(spelled));
  if (matches.length === 1) return matches[0] as LongOption;
  if (matches.length === 0) throw new UsageError(`unrecognized option '--${spelled}'`);
  throw new UsageError(
    `option '--${spelled}' is ambiguous; possibilities: ${matches.map((o) => `'--${o.name}'`).join(" ")}`,
  );
}

/**
 * Parses mkcomposefs's command line like glibc getopt_long (permuting; `--name=value` or `--name value`;
 * unique prefixes; `--` ends options; `-` is an operand). Returns "help" for --help; throws UsageError
 * with mkcomposefs's wording for everything it rejects.
 */
export function parseMkcomposefsArgs(args: readonly string[]): MkcomposefsArgs | "help" {
  const operands: string[] = [];
  const a: Omit<MkcomposefsArgs, "source" | "image"> = {
    fromFile: false,
    digestStore: undefined,
    minVersion: 0,
    maxVersion: 0,
    useEpoch: false,
    skipXattrs: false,
    userXattrs: false,
    skipDevices: false,
    printDigest: false,
    printDigestOnly: false,
    threads: undefined,
  };
  let versionSet = false;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      operands.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) {
      throw new UsageError(`invalid option '${arg}', expected the long options listed by --help`);
    }
    const eq = arg.indexOf("=");
    const spelled = arg.slice(2, eq < 0 ? undefined : eq);
    const opt = findLong(spelled);
    let value: string | undefined;
    if (opt.hasArg) {
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (i + 1 < args.length) value = args[++i];
      else throw new UsageError(`option '--${opt.name}' needs a value`);
    } else if (eq >= 0) {
      throw new UsageError(`option '--${opt.name}' doesn't allow an argument`);
    }
    const v = value as string;
    switch (opt.name) {
      case "skip-xattrs":
        a.skipXattrs = true;
        break;
      case "user-xattrs":
        a.userXattrs = true;
        break;
      case "skip-devices":
        a.skipDevices = true;
        break;
      case "use-epoch":
        a.useEpoch = true;
        break;
      case "digest-store":
        a.digestStore = v;
        break;
      case "print-digest":
        a.printDigest = true;
        break;
      case "print-digest-only":
        a.printDigest = true;
        a.printDigestOnly = true;
        break;
      case "from-file":
        a.fromFile = true;
        break;
      case "min-version":
      case "max-version": {
        const n = parseLong(v);
        const which = opt.name === "min-version" ? "min" : "max";
        if (n === undefined) throw new UsageError(`Invalid ${which} version ${v}, expected an integer`);
        versionSet = true;
        if (which === "min") a.minVersion = n;
        else a.maxVersion = n;
        break;
      }
      case "threads": {
        const n = parseLong(v);
        if (n === undefined || n <= 0) {
          throw new UsageError(`Invalid threads count ${v}, expected a positive integer`);
        }
        a.threads = n;
        break;
      }
      case "help":
        help = true;
        break;
    }
  }
  if (help) return "help";
  if (!versionSet) {
    a.minVersion = DEFAULT_MIN_VERSION;
    a.maxVersion = DEFAULT_MAX_VERSION;
  }
  const source = operands[0];
  if (source === undefined) throw new UsageError("No source path specified");
  if (source === "") throw new UsageError("Empty source path specified");
  if (operands.length > 2) {
    throw new UsageError(`Too many arguments: ${operands.length}, expected SOURCE and IMAGE`);
  }
  const image = operands[1];
  if (image === undefined && !a.printDigestOnly) throw new UsageError("No destination path specified");
  if (image !== undefined && a.printDigestOnly) {
    throw new UsageError("Cannot specify destination path with --print-digest-only");
  }
  return { ...a, source, image };
}

/** The digest-store object name of a file: `xx/yyyy…` from its fs-verity digest (digest_to_path). */
export function objectPath(digest: Uint8Array): string {
  return loosePath(toHex(digest));
}

/**
 * Builds the tree of a directory source as mkcomposefs does: every non-empty regular file gets its
 * fs-verity digest; files of at most 64 bytes are inlined, the others reference `xx/yyyy…` by digest and,
 * with a digest store, are copied there.
 */
export function treeFromDirectory(
  a: Pick<
    MkcomposefsArgs,
    "source" | "digestStore" | "useEpoch" | "skipXattrs" | "userXattrs" | "skipDevices"
  >,
): Inode {
  const { root, files } = readSourceTree(a.source, {
    useEpoch: a.useEpoch,
    skipXattrs: a.skipXattrs,
    userXattrs: a.userXattrs,
    skipDevices: a.skipDevices,
  });
  for (const f of files) {
    const size = f.inode.size;
    if (size === 0) continue;
    const hasher = new FsVerityHasher();
    const small = size <= INLINE_SMALL_MAX ? new Uint8Array(size) : undefined;
    let read = 0;
    streamSourceFile(f.path, (chunk) => {
      hasher.update(chunk);
      if (small !== undefined && read + chunk.length <= size) small.set(chunk, read);
      read += chunk.length;
    });
    if (read !== size) {
      throw new FormatError(
        `Cannot read ${q(showPath(f.path))}: ${read} bytes, expected ${size} (the file changed while being read)`,
        { path: showPath(f.path) },
      );
    }
    const digest = hasher.digest();
    if (small !== undefined) {
      f.inode.content = small;
    } else {
      f.inode.digest = digest;
      f.inode.payload = utf8.encode(objectPath(digest));
    }
  }
  if (a.digestStore !== undefined) {
    for (const f of files) {
      if (f.inode.content === undefined && f.inode.payload !== undefined) {
        storeObject(f.path, a.digestStore, utf8.decode(f.inode.payload));
      }
    }
  }
  return root;
}

/** A parsed dumpfile: its name, and its text while it cannot be read again (stdin). */
interface Dumpfile {
  name: string;
  bytes: Uint8Array | undefined;
}

function readDumpfile(path: string): Uint8Array {
  return readArgFile(realFs, path, MAX_DUMPFILE_BYTES, "dumpfile");
}

/**
 * A writer's refusal of an entry, pointed at the dumpfile line of that entry (and the field, when the
 * writer names one): `Cannot write composefs image for "/d" ("x.dump" line 3, field XATTR): …`.
 */
function atDumpfileLine(e: FormatError, dumpfile: Dumpfile): FormatError {
  const path = e.data.path;
  if (typeof path !== "string") return e;
  const prefix = `Cannot write composefs image for ${q(path)}`;
  const line = dumpfileLineOf(dumpfile.bytes ?? readDumpfile(dumpfile.name), path);
  if (line === undefined || !e.message.startsWith(prefix)) return e;
  const field = typeof e.data.field === "string" ? `, field ${e.data.field}` : "";
  const where = `${prefix} (${q(dumpfile.name)} line ${line}${field})`;
  return new FormatError(
    `${where}${e.message.slice(prefix.length)}`,
    { ...e.data, line, input: dumpfile.name },
    {
      cause: e,
    },
  );
}

/** Runs mkcomposefs with its own argument vector; `prog` prefixes error lines. Returns the exit code. */
export function runMkcomposefs(
  args: readonly string[],
  ctx: CliContext,
  prog = "mkcomposefs",
  env: Record<string, string | undefined> = process.env,
): number {
  try {
    const a = parseMkcomposefsArgs(args);
    if (a === "help") {
      ctx.out(usage(prog));
      return 0;
    }
    if (a.image === "-" && stdoutIsTty()) {
      throw new UsageError("Cannot write the image to stdout: it is a terminal, expected a file or a pipe");
    }
    let tree: Inode;
    let dumpfile: Dumpfile | undefined;
    if (a.fromFile) {
      const stdin = a.source === "-";
      const name = stdin ? "<stdin>" : a.source;
      const opts = { strict: env.CFS_PARSE_STRICT !== undefined, path: name };
      if (stdin) {
        const bytes = readStdin();
        tree = parseDumpfile(bytes, opts);
        dumpfile = { name, bytes };
      } else {
        // A file is parsed as it is read, never whole in memory (the tree keeps no views into it); it
        // is read again only to point a writer's refusal at its line.
        const parser = dumpfileParser(opts);
        streamArgFile(realFs, a.source, MAX_DUMPFILE_BYTES, "dumpfile", (chunk) => parser.push(chunk));
        tree = parser.end();
        dumpfile = { name, bytes: undefined };
      }
    } else {
      tree = treeFromDirectory(a);
    }
    collectGarbage(); // the parse's garbage, before the writer's peak
    let image: MeasuredImage;
    try {
      image = measureErofs(tree, { version: a.minVersion, maxVersion: a.maxVersion });
    } catch (e) {
      throw dumpfile !== undefined && e instanceof FormatError ? atDumpfileLine(e, dumpfile) : e;
    }
    // Measured, the image is valid: its bytes now go out chunk by chunk, hashed on the way if asked.
    const hasher = a.printDigest ? new FsVerityHasher() : undefined;
    const produce: ImageChunks = (write) =>
      image.writeTo((chunk) => {
        hasher?.update(chunk);
        write(chunk);
      }, IMAGE_CHUNK_SIZE);
    if (a.image === "-") produce(writeStdout);
    else if (a.image !== undefined) writeImage(a.image, produce);
    else produce(() => {});
    if (hasher !== undefined) ctx.out(`${toHex(hasher.digest())}\n`);
    return 0;
  } catch (e) {
    if (e instanceof SealrootError) {
      ctx.err(`${prog}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

export const mkcomposefsCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "mkcomposefs",
    "Write a composefs image from a directory or a dumpfile, as libcomposefs's mkcomposefs (see --help)",
    (c) =>
      c
        .strict(false)
        .parserConfiguration({
          "unknown-options-as-args": true,
          "parse-positional-numbers": false,
          "populate--": true,
        })
        .usage(usage("sealroot mkcomposefs")),
    (argv) => {
      const rest = (argv["--"] as unknown[] | undefined) ?? [];
      const args = [...argv._.slice(1), ...(rest.length > 0 ? ["--", ...rest] : [])].map(String);
      setExit(runMkcomposefs(args, ctx, "sealroot"));
    },
  );
