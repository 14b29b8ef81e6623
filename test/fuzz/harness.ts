// The fuzz tier (issue 11): one table of targets — every parser of hostile input, each with its seed
// corpus, its mutator and the call under test — and the loop that runs them. For every input the call
// must return or throw one of the target's refusal classes (FormatError/UsageError); any other throw is
// a finding, and so is an input slower than the per-input cap (timed again once before it counts).
// Inputs are reproducible from (seed, target, iteration) alone (rng.ts). run.ts drives this with Bun
// for ≥1,000,000 inputs per target; test/unit/fuzz-slice.test.ts runs a small fixed slice of the same
// table in CI. Adding a target is one row.

import { FormatError, SealrootError, UsageError } from "../../src/base/errors.ts";
import { type BootCmdline, parseCmdline, requireTarget } from "../../src/core/cmdline.ts";
import {
  ETC_CONFIG_PATH,
  emptyConfig,
  type PrepareRootConfig,
  parseLegacyRepoReadonly,
  parsePrepareRootConfig,
} from "../../src/core/config.ts";
import { resolvePolicy } from "../../src/core/policy.ts";
import { dumpTree } from "../../src/formats/composefs/dump-print.ts";
import { parseDumpfile } from "../../src/formats/composefs/dumpfile.ts";
import { readErofs } from "../../src/formats/erofs/read.ts";
import { parseKeyFile } from "../../src/formats/keyfile.ts";
import {
  COMMIT_TYPE,
  COMMITMETA_TYPE,
  canonicalXattrs,
  commitmetaSignatures,
  composefsDigest,
  DIRMETA_TYPE,
  DIRTREE_TYPE,
  decodeCommit,
  decodeCommitmeta,
  decodeDirmeta,
  decodeDirtree,
  decodeFilemeta,
  decodeZlibFileHeader,
  ed25519Signatures,
  FILEMETA_TYPE,
  splitLenPrefixed,
  validateCommit,
  validateDirmeta,
  validateDirtree,
  validateFileMode,
} from "../../src/formats/ostree/objects.ts";
import {
  encodeBase64,
  parsePublicKeyFile,
  parseSecretKey,
  parseSecretKeyFile,
} from "../../src/verify/keys.ts";
import { verifyCommitSignatures } from "../../src/verify/signature.ts";
import * as corpus from "./corpus.ts";
import { erofs } from "./erofs-mutate.ts";
import { gvariant } from "./gvariant-mutate.ts";
import { bytes, latin1, type Mutator, mix, text } from "./mutate.ts";
import { rngFor } from "./rng.ts";

type ErrorClass = abstract new (...args: never[]) => Error;

export interface Target {
  name: string;
  /** The calls under test, as the README and `--list` show them. */
  calls: string;
  seeds: () => Uint8Array[];
  mutator: (seeds: Uint8Array[]) => Mutator;
  /** The call under test; its return value is ignored. */
  run: (input: Uint8Array) => unknown;
  /** Error classes that count as a clean refusal; anything else thrown is a finding. */
  refuses: readonly ErrorClass[];
  /** Mutants are cut to this many bytes (default MAX_INPUT). */
  maxInput?: number;
}

/**
 * Default size cap of a mutant. The loaders admit more (ostree metadata up to 128 MiB); 4 MiB keeps a
 * million inputs per target within minutes. The GVariant decoder's work is capped per input byte, so
 * bigger inputs add time, not new behaviour; a cost that grows faster than the input needs a generator
 * of its own, not bigger mutants.
 */
export const MAX_INPUT = 4 << 20;

// ---- helpers of the calls under test -------------------------------------------------------------------

const utf8 = new TextDecoder();
const WHERE = "fuzz";

/** The commit the signatures are checked over, and a key of the wrong length: every signature is
 * length-checked and named in the verdict, none costs an ed25519 verification. */
const SIG_MESSAGE = new Uint8Array(100);
const NOT_A_KEY = [new Uint8Array(31)];

const CONFIGS: PrepareRootConfig[] = [
  emptyConfig(),
  parsePrepareRootConfig("[composefs]\nenabled = signed\n", ETC_CONFIG_PATH),
  parsePrepareRootConfig("[composefs]\nenabled = verity\n[root]\ntransient = true\n", ETC_CONFIG_PATH),
  {
    ...parsePrepareRootConfig("[composefs]\nenabled = no\n[etc]\ntransient=1\n", ETC_CONFIG_PATH),
    replaced: "/usr/lib/ostree/prepare-root.conf",
  },
];
const CMDLINES: BootCmdline[] = [
  parseCmdline(""),
  parseCmdline("ostree=/x ot-composefs=signed=/k"),
  parseCmdline(`ostree=/x ostree.prepare-root.composefs=0 ot-composefs=digest=${"ab".repeat(32)}`),
];

/** resolvePolicy() returns a policy or refuses with UsageError; both are fine here. */
function policyOrUsage(cmdline: BootCmdline, config: PrepareRootConfig): void {
  try {
    resolvePolicy(cmdline, config);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
  }
}

// ---- dictionaries of the text mutators -------------------------------------------------------------------

const HEX64 = "0123456789abcdef".repeat(4);
const CMDLINE_WORDS = [
  "ostree",
  "ot-composefs",
  "ot-signed",
  "ostree.prepare-root.composefs",
  "androidboot.slot_suffix",
  "androidboot.",
  "androidboot.mode",
  "root",
  "rw",
  "ro",
  "digest",
  "signed",
  "on",
  "off",
  "maybe",
  "yes",
  "no",
  "true",
  "false",
  "0",
  "1",
  "verity",
  "_a",
  "_b",
  "/",
  "/k",
  "/ostree/boot.0/refos/0/0",
  "..",
  "/../..",
  HEX64,
  HEX64.toUpperCase(),
  `${HEX64}0`,
  HEX64.slice(1),
  "=",
  "==",
  "digest=",
  "signed=",
  "\t",
  "\n",
  "\r",
  "\v",
  "\f",
  "\0",
  "\xff",
  "\xc3\xa9",
  "\xe2\x80\x83",
  "\xa0",
  '"',
  "'",
];
const KEYFILE_WORDS = [
  "[composefs]",
  "[sysroot]",
  "[etc]",
  "[root]",
  "[core]",
  "[",
  "]",
  "[]",
  "enabled",
  "keypath",
  "readonly",
  "transient",
  "transient-ro",
  "Encoding",
  "UTF-8",
  "latin1",
  "k[de]",
  "k[",
  "=",
  " = ",
  "signed",
  "verity",
  "maybe",
  "yes",
  "true",
  "1",
  "no",
  "false",
  "0",
  "/etc/k.pub",
  "relative",
  "#",
  "\n",
  "\r\n",
  "\r",
  "\t",
  " ",
  "\\",
  "\\s",
  "\\n",
  "\\t",
  "\\r",
  "\\\\",
  "\\x",
  "\\;",
  ";",
  "\0",
  "\xff",
  "\xc3\xa9",
  "\xed\xa0\x80",
];
const B64 = (n: number, fill: number) => encodeBase64(new Uint8Array(n).fill(fill));
const KEY_WORDS = [
  B64(32, 7),
  B64(31, 7),
  B64(33, 7),
  B64(64, 7),
  B64(63, 7),
  B64(65, 7),
  B64(32, 7).replace(/=+$/, ""),
  B64(64, 7).replace(/=+$/, ""),
  `${B64(32, 7)}=`,
  "====",
  "=",
  "A",
  "AA==",
  "-_",
  "+/",
  " ",
  "\t",
  "\r",
  "\n",
  "\n\n",
  "\0",
  "\xff",
  "-----BEGIN PUBLIC KEY-----",
];
const DUMP_WORDS = [
  "/",
  "/a",
  "/a/b",
  "/a/../b",
  "//",
  "/.",
  `/${"n".repeat(255)}`,
  `/${"n".repeat(256)}`,
  `/${"d/".repeat(2100)}x`,
  "-",
  "@",
  "@120777",
  "@100644",
  "0",
  "1",
  "40755",
  "100644",
  "120777",
  "20644",
  "60644",
  "10644",
  "140755",
  "170000",
  "4294967295",
  "4294967296",
  "18446744073709551615",
  "18446744073709551616",
  "-1",
  "9007199254740993",
  "0x10",
  "1.5",
  "1.-1",
  "1.999999999",
  "1.1000000000",
  "0.0",
  HEX64,
  `${HEX64}00`,
  HEX64.slice(2),
  "zz".repeat(32),
  "ab/cdef",
  "user.a=b",
  "trusted.overlay.redirect=/x",
  "trusted.overlay.metacopy=",
  "trusted.overlay.opaque=y",
  "user.overlay.whiteout=",
  "security.selinux=system_u:object_r:etc_t:s0",
  `user.${"x".repeat(300)}=v`,
  `user.v=${"v".repeat(70000)}`,
  "=",
  "\\x00",
  "\\x2f",
  "\\xzz",
  "\\",
  "\\\\",
  "\\=",
  "\\n",
  "\\t",
  " ",
  "\n",
  "\t",
  "\0",
  "\xff",
];

// ---- the table ---------------------------------------------------------------------------------------

const textOf =
  (words: readonly string[], split: RegExp, separators: readonly string[]) => (seeds: Uint8Array[]) =>
    mix([3, text(seeds, { split, dictionary: words, separators })], [1, bytes(seeds)]);

export const TARGETS: readonly Target[] = [
  {
    name: "commit",
    calls: "decodeCommit + validateCommit + composefsDigest",
    seeds: () => corpus.ostreeObjects("commit"),
    mutator: (s) => gvariant(COMMIT_TYPE, s),
    run: (b) => {
      const c = decodeCommit(b);
      validateCommit(c, WHERE);
      composefsDigest(c);
    },
    refuses: [FormatError],
  },
  {
    name: "commitmeta",
    calls: "decodeCommitmeta + ed25519Signatures + verifyCommitSignatures (length checks only)",
    seeds: corpus.commitmetas,
    mutator: (s) => gvariant(COMMITMETA_TYPE, s),
    run: (b) => {
      const entries = decodeCommitmeta(b);
      verifyCommitSignatures(SIG_MESSAGE, ed25519Signatures(entries), NOT_A_KEY);
    },
    refuses: [FormatError],
  },
  {
    name: "commitmeta-signatures",
    calls: "commitmetaSignatures (the boot's lookup of ostree.sign.ed25519 alone) + verifyCommitSignatures",
    seeds: corpus.commitmetas,
    mutator: (s) => gvariant(COMMITMETA_TYPE, s),
    run: (b) => {
      verifyCommitSignatures(SIG_MESSAGE, commitmetaSignatures(b), NOT_A_KEY);
    },
    refuses: [FormatError],
  },
  {
    name: "dirtree",
    calls: "decodeDirtree + validateDirtree",
    seeds: () => corpus.ostreeObjects("dirtree"),
    mutator: (s) => gvariant(DIRTREE_TYPE, s),
    run: (b) => validateDirtree(decodeDirtree(b), WHERE),
    refuses: [FormatError],
  },
  {
    name: "dirmeta",
    calls: "decodeDirmeta + validateDirmeta",
    seeds: () => corpus.ostreeObjects("dirmeta"),
    mutator: (s) => gvariant(DIRMETA_TYPE, s),
    run: (b) => validateDirmeta(decodeDirmeta(b), WHERE),
    refuses: [FormatError],
  },
  {
    name: "filemeta",
    calls: "decodeFilemeta + validateFileMode + canonicalXattrs (bare-user user.ostreemeta)",
    seeds: corpus.filemetas,
    mutator: (s) => gvariant(FILEMETA_TYPE, s),
    run: (b) => {
      const m = decodeFilemeta(b);
      validateFileMode(m.mode, WHERE);
      canonicalXattrs(m.xattrs);
    },
    refuses: [FormatError],
  },
  {
    name: "filez-header",
    calls: "splitLenPrefixed + decodeZlibFileHeader + validateFileMode (archive-z2 .filez)",
    seeds: corpus.filezHeaders,
    mutator: (s) => bytes(s),
    run: (b) => validateFileMode(decodeZlibFileHeader(splitLenPrefixed(b, WHERE).header).mode, WHERE),
    refuses: [FormatError],
  },
  {
    name: "cmdline",
    calls: "parseCmdline + requireTarget + resolvePolicy with 4 configs",
    seeds: corpus.cmdlines,
    mutator: textOf(CMDLINE_WORDS, /([ =\t])/, [" ", "=", " ", "\t"]),
    run: (b) => {
      const cmdline = parseCmdline(utf8.decode(b));
      try {
        requireTarget(cmdline);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
      }
      for (const config of CONFIGS) policyOrUsage(cmdline, config);
    },
    refuses: [UsageError],
  },
  {
    name: "prepare-root.conf",
    calls: "parsePrepareRootConfig + resolvePolicy with 3 cmdlines + parseLegacyRepoReadonly",
    seeds: corpus.prepareRootConfs,
    mutator: textOf(KEYFILE_WORDS, /(\n|=|\[|\]| |#)/, ["\n", "=", " ", "\n["]),
    run: (b) => {
      parseLegacyRepoReadonly(b, "config");
      const config = parsePrepareRootConfig(b, ETC_CONFIG_PATH);
      for (const cmdline of CMDLINES) policyOrUsage(cmdline, config);
    },
    refuses: [UsageError],
  },
  {
    name: "glib-keyfile",
    calls: "parseKeyFile + getValue/getString/getBoolean/lineOf of every key",
    seeds: corpus.prepareRootConfs,
    mutator: textOf(KEYFILE_WORDS, /(\n|=|\[|\]| |#|\\)/, ["\n", "=", " ", "\\"]),
    run: (b) => {
      const kf = parseKeyFile(b, "fuzz.conf");
      for (const g of kf.groups()) {
        for (const k of kf.keys(g)) {
          kf.getValue(g, k);
          kf.lineOf(g, k);
          for (const get of [() => kf.getString(g, k), () => kf.getBoolean(g, k)]) {
            try {
              get();
            } catch (e) {
              if (!(e instanceof FormatError)) throw e;
            }
          }
        }
      }
    },
    refuses: [FormatError],
  },
  {
    name: "public-key-file",
    calls: "parsePublicKeyFile",
    seeds: corpus.publicKeyFiles,
    mutator: textOf(KEY_WORDS, /(\n|\r|=)/, ["\n", "\r\n", ""]),
    run: (b) => parsePublicKeyFile(b, "fuzz.pub"),
    refuses: [FormatError],
  },
  {
    name: "secret-key-file",
    calls: "parseSecretKeyFile + parseSecretKey of the whole text",
    seeds: corpus.secretKeyFiles,
    mutator: textOf(KEY_WORDS, /(\n|\r|=)/, ["\n", "\r\n", ""]),
    run: (b) => {
      try {
        parseSecretKey(latin1(b));
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
      }
      parseSecretKeyFile(b, "fuzz.secret");
    },
    refuses: [FormatError],
  },
  {
    name: "erofs",
    calls: "readErofs (libcomposefs payload quirk) + dumpTree, as `sealroot composefs dump`",
    seeds: corpus.composefsImages,
    mutator: (s) => erofs(s),
    run: (b) => dumpTree(readErofs(b, { libcomposefsPayloadQuirk: true }).root),
    refuses: [FormatError],
  },
  {
    name: "dumpfile",
    calls: "parseDumpfile (lenient, as mkcomposefs)",
    seeds: corpus.dumpfiles,
    mutator: textOf(DUMP_WORDS, /( |\n|=|\\)/, [" ", "\n", "="]),
    run: (b) => parseDumpfile(b, { path: "fuzz.dump" }),
    refuses: [FormatError],
  },
  {
    name: "dumpfile-strict",
    calls: "parseDumpfile (strict, as CFS_PARSE_STRICT=1)",
    seeds: corpus.dumpfiles,
    mutator: textOf(DUMP_WORDS, /( |\n|=|\\)/, [" ", "\n", "="]),
    run: (b) => parseDumpfile(b, { path: "fuzz.dump", strict: true }),
    refuses: [FormatError],
  },
];

export function targetNamed(name: string): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (!t)
    throw new Error(
      `no fuzz target ${JSON.stringify(name)}; targets: ${TARGETS.map((x) => x.name).join(", ")}`,
    );
  return t;
}

// ---- running ----------------------------------------------------------------------------------------

export type FindingKind = "crash" | "wrong-error" | "slow" | "hang" | "memory";

export interface Finding {
  target: string;
  seed: number;
  iteration: number;
  kind: FindingKind;
  /** What happened: the error's class and message, or the time taken. */
  detail: string;
  stack?: string;
  ms?: number;
  /** The input, base64. */
  input: string;
}

export interface Stats {
  target: string;
  inputs: number;
  returned: number;
  refused: number;
  /** Refusals by error class. */
  refusedBy: Record<string, number>;
  slowestMs: number;
  slowestIteration: number;
  /** Every finding, also the ones whose signature was already reported. */
  findings: number;
  /** Distinct findings (by kind, error class, message shape and top stack frame). */
  distinctFindings: number;
  elapsedMs: number;
}

export interface Prepared {
  target: Target;
  seeds: Uint8Array[];
  mutator: Mutator;
}

export function prepare(target: Target): Prepared {
  const seeds = target.seeds();
  if (seeds.length === 0) throw new Error(`fuzz target ${target.name} has no seeds`);
  return { target, seeds, mutator: target.mutator(seeds) };
}

/** Input `iteration` of a run seeded with `seed`: the seeds verbatim first, then mutants. */
export function inputFor(p: Prepared, seed: number, iteration: number): Uint8Array {
  if (iteration < p.seeds.length) return p.seeds[iteration]!.slice();
  const b = p.mutator(rngFor(seed, p.target.name, iteration));
  const max = p.target.maxInput ?? MAX_INPUT;
  return b.length > max ? b.slice(0, max) : b;
}

export type Result =
  | { outcome: "returned" }
  | { outcome: "refused"; error: SealrootError }
  | { outcome: "finding"; kind: "crash" | "wrong-error"; error: unknown };

/** Runs the call under test on one input and classifies what it did. */
export function runOne(target: Target, input: Uint8Array): Result {
  try {
    target.run(input);
    return { outcome: "returned" };
  } catch (e) {
    if (target.refuses.some((c) => e instanceof c)) return { outcome: "refused", error: e as SealrootError };
    return { outcome: "finding", kind: e instanceof SealrootError ? "wrong-error" : "crash", error: e };
  }
}

export function describeError(e: unknown): { detail: string; stack?: string } {
  if (e instanceof Error) {
    const out: { detail: string; stack?: string } = { detail: `${e.name}: ${e.message}` };
    if (e.stack) out.stack = e.stack;
    return out;
  }
  return { detail: `non-Error thrown: ${String(e)}` };
}

/** Groups findings of one bug: kind, error class, message with numbers and quoted parts blanked, top frame. */
export function signatureOf(kind: FindingKind, detail: string, stack?: string): string {
  const shape = detail
    .replace(/"[^"]*"/g, '""')
    .replace(/\d+/g, "N")
    .slice(0, 120);
  const frame = stack?.split("\n").find((l) => l.trim().startsWith("at ")) ?? "";
  return `${kind}|${shape}|${frame.trim()}`;
}

export const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
export const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

export interface RunOptions {
  seed: number;
  from: number;
  /** Exclusive. */
  to: number;
  /** Per-input wall-time cap; a slower input is a finding. */
  capMs: number;
  /** Stop at this Date.now(), checked every 256 inputs. */
  deadline?: number;
  /** [0] is set to the iteration being run, for a watchdog in another thread. */
  progress?: Int32Array;
  onFinding?: (f: Finding) => void;
  /** Called about every `progressMs` with the stats so far. */
  onProgress?: (s: Stats) => void;
  progressMs?: number;
  /** Signatures already reported (shared across restarts of one target). */
  seen?: Set<string>;
}

export function emptyStats(target: string): Stats {
  return {
    target,
    inputs: 0,
    returned: 0,
    refused: 0,
    refusedBy: {},
    slowestMs: 0,
    slowestIteration: -1,
    findings: 0,
    distinctFindings: 0,
    elapsedMs: 0,
  };
}

/** Runs iterations [from, to) of one target; findings go to onFinding (each distinct one once). */
export function runRange(p: Prepared, o: RunOptions): Stats {
  const s = emptyStats(p.target.name);
  const seen = o.seen ?? new Set<string>();
  const t0 = Date.now();
  let lastProgress = t0;
  const report = (f: Finding) => {
    s.findings++;
    const sig = signatureOf(f.kind, f.detail, f.stack);
    if (seen.has(sig)) return;
    seen.add(sig);
    s.distinctFindings++;
    o.onFinding?.(f);
  };
  for (let i = o.from; i < o.to; i++) {
    if ((i & 255) === 0) {
      const now = Date.now();
      if (o.deadline !== undefined && now >= o.deadline) break;
      if (o.onProgress && now - lastProgress >= (o.progressMs ?? 2000)) {
        lastProgress = now;
        s.elapsedMs = now - t0;
        o.onProgress(s);
      }
    }
    if (o.progress) Atomics.store(o.progress, 0, i);
    const input = inputFor(p, o.seed, i);
    let start = performance.now();
    const r = runOne(p.target, input);
    let ms = performance.now() - start;
    if (ms > o.capMs) {
      // once more: a GC pause or a busy machine (a VM boot on the other core) is not the input's doing,
      // and the input is the same every time
      start = performance.now();
      runOne(p.target, input);
      ms = Math.min(ms, performance.now() - start);
    }
    s.inputs++;
    if (ms > s.slowestMs) {
      s.slowestMs = ms;
      s.slowestIteration = i;
    }
    const base = { target: p.target.name, seed: o.seed, iteration: i };
    if (r.outcome === "returned") s.returned++;
    else if (r.outcome === "refused") {
      s.refused++;
      const name = r.error.constructor.name;
      s.refusedBy[name] = (s.refusedBy[name] ?? 0) + 1;
    } else report({ ...base, kind: r.kind, ...describeError(r.error), ms, input: b64(input) });
    if (ms > o.capMs) {
      report({
        ...base,
        kind: "slow",
        detail: `took ${ms.toFixed(0)} ms, cap ${o.capMs} ms`,
        ms,
        input: b64(input),
      });
    }
  }
  s.elapsedMs = Date.now() - t0;
  return s;
}

/** Adds `b` into `a` (the stats of one target across worker restarts). */
export function addStats(a: Stats, b: Stats): Stats {
  a.inputs += b.inputs;
  a.returned += b.returned;
  a.refused += b.refused;
  for (const [k, v] of Object.entries(b.refusedBy)) a.refusedBy[k] = (a.refusedBy[k] ?? 0) + v;
  if (b.slowestMs > a.slowestMs) {
    a.slowestMs = b.slowestMs;
    a.slowestIteration = b.slowestIteration;
  }
  a.findings += b.findings;
  a.distinctFindings += b.distinctFindings;
  a.elapsedMs += b.elapsedMs;
  return a;
}

/**
 * Shrinks a crashing input while it still gives the same finding signature: greedy chunk deletion,
 * halving the chunk size, within `budget` attempts; where deleting a chunk loses the finding, zeroing it
 * is tried (formats of whole blocks, such as EROFS, refuse any other size).
 */
export function minimize(target: Target, input: Uint8Array, budget = 4000): Uint8Array {
  const sig = (b: Uint8Array) => {
    const r = runOne(target, b);
    if (r.outcome !== "finding") return undefined;
    const d = describeError(r.error);
    return signatureOf(r.kind, d.detail, d.stack);
  };
  const want = sig(input);
  if (want === undefined) return input;
  let best = input;
  let tries = 0;
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && tries < budget; chunk >>= 1) {
    for (let at = 0; at < best.length && tries < budget; ) {
      const cand = new Uint8Array(best.length - Math.min(chunk, best.length - at));
      cand.set(best.subarray(0, at));
      cand.set(best.subarray(at + chunk), at);
      tries++;
      if (sig(cand) === want) {
        best = cand;
        continue;
      }
      const end = Math.min(best.length, at + chunk);
      if (best.subarray(at, end).some((x) => x !== 0)) {
        const zeroed = best.slice();
        zeroed.fill(0, at, end);
        tries++;
        if (sig(zeroed) === want) best = zeroed;
      }
      at += chunk;
    }
  }
  return best;
}
