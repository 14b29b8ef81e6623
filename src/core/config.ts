// prepare-root.conf as ostree-prepare-root 2026.4 reads it from the initramfs: `/usr/lib/ostree/…` then
// `/etc/ostree/…`, where a present `/etc` file replaces the whole `/usr/lib` file (not a key merge), and
// GLib's value rules. Values are whitespace-stripped consistently (ostree fails on `enabled = signed `).
// Pure except for the injected FsRead; errors are UsageError in sealroot's wording. No policy here.

import { FormatError, q, UsageError } from "../base/errors.ts";
import type { FsRead } from "../base/fs.ts";
import { asciiStrip, type KeyFile, MAX_KEYFILE_BYTES, parseKeyFile } from "../formats/keyfile.ts";
import { PCR_COUNT } from "../formats/tpm2.ts";
import { parseMinTimestamp, type RollbackFloor } from "./floor.ts";
import { DEFAULT_MEASURE_PCR } from "./measure.ts";

export const USR_CONFIG_PATH = "/usr/lib/ostree/prepare-root.conf";
export const ETC_CONFIG_PATH = "/etc/ostree/prepare-root.conf";
/** Read in this order; the last one present wins as a whole. */
export const CONFIG_PATHS = [USR_CONFIG_PATH, ETC_CONFIG_PATH] as const;
export const DEFAULT_KEYPATH = "/etc/ostree/initramfs-root-binding.key";

/** `[composefs] enabled` after parsing: the tristate spellings are folded (yes/true/1 → yes, …). */
export type ConfigComposefs = "no" | "maybe" | "yes" | "verity" | "signed";

export interface PrepareRootConfig {
  /** The file whose keys are in effect; `undefined` when neither file exists. */
  file?: string;
  /** `/usr/lib/…` when it existed but `/etc/…` replaced it. */
  replaced?: string;
  /** `[composefs] enabled`; `undefined` when the key (or the file) is absent. */
  composefs?: { value: ConfigComposefs; raw: string };
  /** `[composefs] keypath`, stripped; the default when unset. Only used when signatures are required. */
  keypath: string;
  keypathFromConfig: boolean;
  /** `[sysroot] readonly`; `undefined` when unset (the policy then applies ostree's default). */
  sysrootReadonly?: boolean;
  /** `[etc] transient`. */
  etcTransient: boolean;
  /** `[root] transient`, also true for `transient-ro` (as ostree: "callers can test for just transient"). */
  rootTransient: boolean;
  /** `[root] transient-ro`. */
  rootTransientRo: boolean;
  /** `[sealroot] emergency-shell`: `rd.shell` may give a shell after a refusal even when the boot verifies. */
  emergencyShell: boolean;
  /** `[sealroot] min-timestamp` / `min-version`: the anti-rollback floor of a signed boot (core/floor.ts). */
  floor: RollbackFloor;
  /** `[sealroot] tpm` and `pcr`: whether and where the boot is measured (core/measure.ts). */
  measure: MeasureConfig;
}

/** `auto`: measure when a TPM exists, else say so and boot; `required`: refuse without one; `off`. */
export type TpmMode = "auto" | "required" | "off";

export interface MeasureConfig {
  tpm: TpmMode;
  /** The PCR extended, 0…23; DEFAULT_MEASURE_PCR when unset. */
  pcr: number;
}

const TPM_MODES: readonly TpmMode[] = ["auto", "required", "off"];

const TRISTATE: Record<string, ConfigComposefs> = {
  signed: "signed",
  verity: "verity",
  maybe: "maybe",
  yes: "yes",
  true: "yes",
  "1": "yes",
  no: "no",
  false: "no",
  "0": "no",
};
const ENABLED_EXPECTED = "signed, verity, maybe, yes, true, 1, no, false or 0";

function asUsage(e: unknown): never {
  if (e instanceof FormatError) throw new UsageError(e.message, e.data, { cause: e });
  throw e;
}

function bool(kf: KeyFile, group: string, key: string): boolean | undefined {
  try {
    return kf.getBoolean(group, key);
  } catch (e) {
    return asUsage(e);
  }
}

const YES_NO: Record<string, boolean> = {
  yes: true,
  true: true,
  "1": true,
  no: false,
  false: false,
  "0": false,
};

/** A key of sealroot's own `[sealroot]` group: yes/true/1 or no/false/0 (ostree's keys keep GLib's rules). */
function yesNo(kf: KeyFile, group: string, key: string): boolean | undefined {
  const raw = kf.getValue(group, key);
  if (raw === undefined) return undefined;
  const v = YES_NO[asciiStrip(raw)];
  if (v === undefined) {
    throw new UsageError(
      `Cannot parse ${q(kf.name)}: [${group}] ${key} = ${q(raw)} (line ${kf.lineOf(group, key)}) is not a valid value, expected yes, true, 1, no, false or 0`,
      { path: kf.name, group, key, value: raw },
    );
  }
  return v;
}

/** Interprets one parsed prepare-root.conf (the keys ostree 2026.4 reads, with ostree's errors). */
export function interpretConfig(kf: KeyFile): PrepareRootConfig {
  const file = kf.name;
  const transient = bool(kf, "root", "transient") ?? false;
  const transientRo = bool(kf, "root", "transient-ro") ?? false;
  if (transient && transientRo) {
    throw new UsageError(
      `Cannot use ${q(file)}: [root] transient and [root] transient-ro are both true, expected at most one of them`,
      { path: file },
    );
  }

  // Keys are read in ostree's order, so the first error reported is the one ostree reports.
  const cfg: PrepareRootConfig = {
    file,
    keypath: DEFAULT_KEYPATH,
    keypathFromConfig: false,
    etcTransient: false,
    rootTransient: transient || transientRo,
    rootTransientRo: transientRo,
    emergencyShell: false,
    floor: {},
    measure: defaultMeasure(),
  };

  const rawEnabled = kf.getValue("composefs", "enabled");
  if (rawEnabled !== undefined) {
    const value = TRISTATE[asciiStrip(rawEnabled)];
    if (value === undefined) {
      throw new UsageError(
        `Cannot parse ${q(file)}: [composefs] enabled = ${q(rawEnabled)} (line ${kf.lineOf("composefs", "enabled")}) is not a valid value, expected ${ENABLED_EXPECTED}`,
        { path: file, group: "composefs", key: "enabled", value: rawEnabled },
      );
    }
    cfg.composefs = { value, raw: rawEnabled };
  }

  // ostree reads keypath with g_key_file_get_value (no escape decoding); sealroot also strips it.
  const rawKeypath = kf.getValue("composefs", "keypath");
  if (rawKeypath !== undefined) {
    cfg.keypath = asciiStrip(rawKeypath);
    cfg.keypathFromConfig = true;
  }

  const ro = bool(kf, "sysroot", "readonly");
  if (ro !== undefined) cfg.sysrootReadonly = ro;
  // ostree parses [etc] transient only when it mounts /etc; sealroot always parses it (fails earlier).
  cfg.etcTransient = bool(kf, "etc", "transient") ?? false;
  cfg.emergencyShell = yesNo(kf, "sealroot", "emergency-shell") ?? false;
  const minTimestamp = kf.getValue("sealroot", "min-timestamp");
  if (minTimestamp !== undefined) {
    try {
      cfg.floor.minTimestamp = parseMinTimestamp(asciiStrip(minTimestamp), `${q(file)} [sealroot]`);
    } catch (e) {
      asUsage(e);
    }
  }
  const minVersion = kf.getValue("sealroot", "min-version");
  if (minVersion !== undefined) {
    const v = asciiStrip(minVersion);
    if (v === "") {
      throw new UsageError(
        `Cannot parse ${q(file)}: [sealroot] min-version is empty (line ${kf.lineOf("sealroot", "min-version")}), expected an ostree.version string`,
        { path: file },
      );
    }
    cfg.floor.minVersion = v;
  }
  const tpm = kf.getValue("sealroot", "tpm");
  if (tpm !== undefined) {
    const v = asciiStrip(tpm);
    if (!(TPM_MODES as readonly string[]).includes(v)) {
      throw new UsageError(
        `Cannot parse ${q(file)}: [sealroot] tpm = ${q(tpm)} (line ${kf.lineOf("sealroot", "tpm")}) is not a valid value, expected ${TPM_MODES.join(", ")}`,
        { path: file, group: "sealroot", key: "tpm", value: tpm },
      );
    }
    cfg.measure.tpm = v as TpmMode;
  }
  const pcr = kf.getValue("sealroot", "pcr");
  if (pcr !== undefined) {
    const v = asciiStrip(pcr);
    if (!/^[0-9]{1,2}$/.test(v) || Number(v) >= PCR_COUNT) {
      throw new UsageError(
        `Cannot parse ${q(file)}: [sealroot] pcr = ${q(pcr)} (line ${kf.lineOf("sealroot", "pcr")}) is not a PCR index, expected 0…${PCR_COUNT - 1}`,
        { path: file, group: "sealroot", key: "pcr", value: pcr },
      );
    }
    cfg.measure.pcr = Number(v);
  }
  return cfg;
}

function defaultMeasure(): MeasureConfig {
  return { tpm: "auto", pcr: DEFAULT_MEASURE_PCR };
}

/** No config file at all: ostree's defaults. */
export function emptyConfig(): PrepareRootConfig {
  return {
    keypath: DEFAULT_KEYPATH,
    keypathFromConfig: false,
    etcTransient: false,
    rootTransient: false,
    rootTransientRo: false,
    emergencyShell: false,
    floor: {},
    measure: defaultMeasure(),
  };
}

/** Parses one prepare-root.conf given its bytes; `file` names it in messages and in the result. */
export function parsePrepareRootConfig(data: Uint8Array | string, file: string): PrepareRootConfig {
  let kf: KeyFile;
  try {
    kf = parseKeyFile(data, file);
  } catch (e) {
    return asUsage(e);
  }
  return interpretConfig(kf);
}

/**
 * Reads the configuration of the initramfs rooted at `root` ("/" at boot; a directory in tests):
 * both files are parsed (a syntax error in either is fatal, as in ostree), and the `/etc` file, if
 * present, replaces the `/usr/lib` one as a whole.
 */
export function readPrepareRootConfig(fs: FsRead, root = "/"): PrepareRootConfig {
  const prefix = root.replace(/\/+$/, "");
  return readPrepareRootConfigWith((path) =>
    fs.readFileIfExists(prefix + path, MAX_KEYFILE_BYTES, "prepare-root.conf"),
  );
}

/** The same over any reader of the two paths (`undefined` = absent), e.g. a commit's own tree. */
export function readPrepareRootConfigWith(read: (path: string) => Uint8Array | undefined): PrepareRootConfig {
  let result: PrepareRootConfig | undefined;
  for (const path of CONFIG_PATHS) {
    const data = read(path);
    if (data === undefined) continue;
    const cfg = parsePrepareRootConfig(data, path);
    if (result?.file !== undefined) cfg.replaced = result.file;
    result = cfg;
  }
  return result ?? emptyConfig();
}

/**
 * The legacy `[sysroot] readonly` of `<sysroot>/ostree/repo/config`, which ostree consults only when
 * prepare-root.conf leaves readonly false and composefs is not on. As in ostree, an unreadable or
 * unparsable file, or a value that is not a boolean, counts as false.
 */
export function parseLegacyRepoReadonly(data: Uint8Array | undefined, file: string): boolean {
  if (data === undefined) return false;
  try {
    return parseKeyFile(data, file).getBoolean("sysroot", "readonly") ?? false;
  } catch (e) {
    if (e instanceof FormatError) return false;
    throw e;
  }
}
