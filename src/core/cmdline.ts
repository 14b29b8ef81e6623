// The kernel command line as ostree-prepare-root 2026.4 tokenises it (spaces only, no quoting, the first
// `key=` match wins for the boot target, androidboot slots), plus the composefs arguments sealroot reads:
// ostree's `ostree.prepare-root.composefs=` and sealroot's own `ot-composefs=` / `ot-signed=`. Pure:
// text in, typed arguments out; invalid values are UsageError. Combining them is policy.ts's job.

import { FormatError, q, SealrootError, UsageError } from "../base/errors.ts";
import { asciiStrip } from "../formats/keyfile.ts";
import { parseMinTimestamp, type RollbackFloor, raiseFloor } from "./floor.ts";

function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FormatError) throw new UsageError(e.message, e.data, { cause: e });
    throw e;
  }
}

/** Largest kernel command line read (the kernel's COMMAND_LINE_SIZE is 2048 on x86, at most 64 KiB). */
export const MAX_CMDLINE_BYTES = 1 << 16;
export const OSTREE_COMPOSEFS_KARG = "ostree.prepare-root.composefs";
export const OT_COMPOSEFS_KARG = "ot-composefs";
export const OT_SIGNED_KARG = "ot-signed";
/** Raise the anti-rollback floor of the initramfs's config (never lower it): see core/floor.ts. */
export const MIN_TIMESTAMP_KARG = "sealroot.min-timestamp";
export const MIN_VERSION_KARG = "sealroot.min-version";
/** `sealroot.tpm=required`: refuse the boot unless it is measured into a TPM. It can only raise the
 * initramfs's `[sealroot] tpm` (auto or off → required), never lower it. */
export const TPM_KARG = "sealroot.tpm";

/** One composefs-related kernel argument, in command-line order. `token` is the argument as written. */
export type ComposefsKarg =
  /** `ostree.prepare-root.composefs=`: ostree's tristate (`maybe`, yes/true/1, no/false/0) or `signed`. */
  | { kind: "ostree"; token: string; value: "no" | "maybe" | "yes" | "signed" }
  /** `ot-composefs=off|maybe|on`. */
  | { kind: "mode"; token: string; mode: "off" | "maybe" | "on" }
  /** `ot-composefs=digest=<64 hex>` (lowercased). */
  | { kind: "digest"; token: string; digest: string }
  /** `ot-composefs=signed=<path>` or `ot-signed=<path>`: a key file inside the initramfs. */
  | { kind: "signed"; token: string; path: string };

export interface BootTarget {
  /** The boot symlink, relative to the sysroot (as written; ostree joins it with "/"). */
  path: string;
  /** The argument that chose it. */
  token: string;
  /** Chosen by an `androidboot.*` argument (ostree's A/B slot support), not by `ostree=`. */
  android: boolean;
}

export interface BootCmdline {
  tokens: string[];
  target?: BootTarget;
  /** `ostree=` arguments after the first, which ostree (and sealroot) ignore. */
  ignoredTargets: string[];
  composefs: ComposefsKarg[];
  /** The highest floor the `sealroot.min-timestamp=` / `sealroot.min-version=` arguments name. */
  floor: RollbackFloor;
  /** The `sealroot.tpm=required` argument, when present. */
  tpmRequired?: string;
}

/**
 * Splits like ostree: on ' ' only (tabs and quotes are ordinary characters), empty tokens dropped.
 * One trailing newline is removed, as ostree does when it reads /proc/cmdline.
 */
export function splitCmdline(text: string): string[] {
  const t = text.endsWith("\n") ? text.slice(0, -1) : text;
  return t.split(" ").filter((s) => s.length > 0);
}

/** Values of every `key=` argument in order (ostree's own lookup takes the first). */
export function kargValues(tokens: readonly string[], key: string): { token: string; value: string }[] {
  const prefix = `${key}=`;
  return tokens
    .filter((t) => t.startsWith(prefix))
    .map((token) => ({ token, value: token.slice(prefix.length) }));
}

const OSTREE_VALUES: Record<string, "no" | "maybe" | "yes" | "signed"> = {
  signed: "signed",
  maybe: "maybe",
  yes: "yes",
  true: "yes",
  "1": "yes",
  no: "no",
  false: "no",
  "0": "no",
};

/** `Cannot parse kernel argument "<token>": unknown value "<value>", expected <expected>`. */
export function badValue(token: string, value: string, expected: string): UsageError {
  return new UsageError(
    `Cannot parse kernel argument ${q(token)}: unknown value ${q(value)}, expected ${expected}`,
    { token, value },
  );
}

function keyPath(token: string, path: string): string {
  if (!path.startsWith("/")) {
    throw new UsageError(
      `Cannot parse kernel argument ${q(token)}: key file ${q(path)} is not an absolute path, expected an absolute path inside the initramfs`,
      { token, path },
    );
  }
  return path;
}

function parseOtComposefs(token: string, value: string): ComposefsKarg {
  if (value === "off" || value === "maybe" || value === "on") return { kind: "mode", token, mode: value };
  if (value.startsWith("digest=")) {
    const hex = asciiStrip(value.slice("digest=".length));
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
      throw new UsageError(
        `Cannot parse kernel argument ${q(token)}: digest ${q(hex)} is not 64 hex digits, expected the image's fs-verity SHA-256 digest`,
        { token, value },
      );
    }
    return { kind: "digest", token, digest: hex.toLowerCase() };
  }
  if (value.startsWith("signed=")) {
    return { kind: "signed", token, path: keyPath(token, asciiStrip(value.slice("signed=".length))) };
  }
  throw badValue(token, value, "off, maybe, on, digest=<64 hex digits> or signed=<key file>");
}

/** ostree's target selection: androidboot.slot_suffix, then any androidboot.*, then the first ostree=. */
function findTarget(tokens: readonly string[]): BootTarget | undefined {
  const slot = kargValues(tokens, "androidboot.slot_suffix")[0];
  if (slot) {
    const v = asciiStrip(slot.value);
    if (v === "_a" || v === "_b")
      return { path: `/ostree/root.${v.slice(1)}`, token: slot.token, android: true };
    throw badValue(slot.token, v, "_a or _b");
  }
  const android = tokens.find((t) => t.startsWith("androidboot."));
  if (android !== undefined) return { path: "/ostree/root.a", token: android, android: true };
  const first = kargValues(tokens, "ostree")[0];
  return first ? { path: asciiStrip(first.value), token: first.token, android: false } : undefined;
}

/** The boot target of a kernel command line alone (its other arguments are not checked), as parseCmdline finds it. */
export function cmdlineTarget(text: string): BootTarget | undefined {
  return findTarget(splitCmdline(text));
}

/**
 * The kernel command line, read once where a boot starts: its text, its tokens (which the PID-1 mode
 * reads its own arguments from) and the boot's arguments, or the UsageError that refuses them (a refusal
 * at the policy stage, once the decision is made).
 */
export interface KernelCmdline {
  text: string;
  tokens: readonly string[];
  boot?: BootCmdline;
  error?: SealrootError;
}

/** Tokenises and parses `text` once; never throws for bad arguments (they are `error`). */
export function readKernelCmdline(text: string): KernelCmdline {
  const tokens = splitCmdline(text);
  try {
    return { text, tokens, boot: parseTokens(tokens) };
  } catch (e) {
    if (!(e instanceof SealrootError)) throw e;
    return { text, tokens, error: e };
  }
}

/** The boot's arguments of `c`, or the error that refuses them. */
export function bootArgs(c: KernelCmdline): BootCmdline {
  if (c.boot) return c.boot;
  throw c.error ?? new UsageError("Cannot parse the kernel command line");
}

/** Parses a kernel command line into the boot target and the composefs arguments. */
export function parseCmdline(text: string): BootCmdline {
  return parseTokens(splitCmdline(text));
}

function parseTokens(tokens: string[]): BootCmdline {
  const composefs: ComposefsKarg[] = [];
  let floor: RollbackFloor = {};
  let tpmRequired: string | undefined;
  for (const token of tokens) {
    const eq = token.indexOf("=");
    if (eq < 0) continue;
    const key = token.slice(0, eq);
    const value = asciiStrip(token.slice(eq + 1));
    if (key === OSTREE_COMPOSEFS_KARG) {
      const v = OSTREE_VALUES[value];
      // ostree 2026.4 rejects `verity` here although its man page lists it; sealroot does the same.
      if (v === undefined) throw badValue(token, value, "signed, maybe, yes, true, 1, no, false or 0");
      composefs.push({ kind: "ostree", token, value: v });
    } else if (key === OT_COMPOSEFS_KARG) {
      composefs.push(parseOtComposefs(token, value));
    } else if (key === OT_SIGNED_KARG) {
      composefs.push({ kind: "signed", token, path: keyPath(token, value) });
    } else if (key === MIN_TIMESTAMP_KARG) {
      floor = raiseFloor(floor, {
        minTimestamp: asUsage(() => parseMinTimestamp(value, `kernel argument ${q(token)}`)),
      });
    } else if (key === MIN_VERSION_KARG) {
      if (value === "") throw badValue(token, value, "an ostree.version string");
      floor = raiseFloor(floor, { minVersion: value });
    } else if (key === TPM_KARG) {
      if (value !== "required") throw badValue(token, value, "required");
      tpmRequired ??= token;
    }
  }
  const target = findTarget(tokens);
  const ostreeArgs = kargValues(tokens, "ostree").map((a) => a.token);
  const ignoredTargets = target && !target.android ? ostreeArgs.slice(1) : ostreeArgs;
  const out: BootCmdline = { tokens, ignoredTargets, composefs, floor };
  if (target) out.target = target;
  if (tpmRequired !== undefined) out.tpmRequired = tpmRequired;
  return out;
}

/** The target or ostree's "No ostree target found" as a UsageError. */
export function requireTarget(cmdline: BootCmdline): BootTarget {
  if (!cmdline.target) {
    throw new UsageError(
      "Cannot find the ostree target on the kernel command line: no ostree= argument, expected ostree=/ostree/boot.N/<os>/<bootcsum>/<serial>",
    );
  }
  return cmdline.target;
}
