// The combined trust policy: every source (prepare-root.conf, ostree's karg, sealroot's kargs) adds
// conditions and none removes one, so the strictest composefs mode wins, every expected digest and every
// key set must hold, and a weaker input is recorded as overruled instead of weakening the boot (ostree
// lets `ostree.prepare-root.composefs=0` switch a signed config off). Pure; see docs/policy.md.

import { q, SealrootError, UsageError } from "../base/errors.ts";
import {
  type BootCmdline,
  type BootTarget,
  bootArgs,
  type ComposefsKarg,
  type KernelCmdline,
} from "./cmdline.ts";
import { DEFAULT_KEYPATH, type PrepareRootConfig } from "./config.ts";

export type ComposefsMode = "off" | "maybe" | "on";

/** Where an input came from. `token` is the argument or `key=value` as written (value stripped). */
export interface InputRef {
  source: "karg" | "config" | "default";
  token: string;
  /** The config file, for config inputs. */
  file?: string;
}

export interface KeySet {
  /** A public-key file inside the initramfs (base64 ed25519 keys, one per line). */
  path: string;
  /** How the path was named: a kernel argument, the config's `keypath`, or ostree's default path. */
  pathFrom: "karg" | "config-keypath" | "default-keypath";
  /** The inputs that require a valid signature by a key of this set. */
  requiredBy: InputRef[];
}

export interface ExpectedDigest {
  /** fs-verity SHA-256 of the composefs image, 64 lowercase hex digits. */
  hex: string;
  requiredBy: InputRef[];
}

export interface AppliedInput extends InputRef {
  effect: string;
}

export interface OverruledInput extends InputRef {
  reason: string;
}

export interface TrustPolicy {
  target?: BootTarget;
  /** off: legacy bind mount; maybe: composefs when the deployment has an image; on: composefs required. */
  composefs: ComposefsMode;
  /** overlay `verity=require`, and the image's fs-verity digest must be measurable. */
  verityRequired: boolean;
  /** From `ot-composefs=digest=`: the image's fs-verity digest must equal it. */
  expectedDigest?: ExpectedDigest;
  /**
   * Every set must be satisfied: the commit carries a valid ed25519 signature by a key of EACH set,
   * and the image digest must equal the signed `ostree.composefs.digest.v0`.
   */
  keySets: KeySet[];
  sysrootReadonly: boolean;
  sysrootReadonlyFrom: InputRef;
  /** ostree then reads `[sysroot] readonly` from `<sysroot>/ostree/repo/config` (config.parseLegacyRepoReadonly). */
  legacyReadonlyFallback: boolean;
  etcTransient: boolean;
  /** True also for transient-ro. Requires the composefs mount ("Must enable composefs with root.transient"). */
  rootTransient: boolean;
  rootTransientRo: boolean;
  applied: AppliedInput[];
  overruled: OverruledInput[];
}

const RANK: Record<ComposefsMode, number> = { off: 0, maybe: 1, on: 2 };

/** One input's demands, before combining. */
interface Demand {
  ref: InputRef;
  mode: ComposefsMode;
  verity: boolean;
  digest?: string;
  keys?: { path: string; pathFrom: KeySet["pathFrom"] };
  /** ostree semantics of a non-`signed` `ostree.prepare-root.composefs=`: it switches signatures off. */
  dropsSignature: boolean;
}

/** Orders inputs by how much they demand, to name the one that overrules a weaker input. */
function strength(d: Demand): number {
  if (d.keys) return 5;
  if (d.digest) return 4;
  if (d.verity) return 3;
  return RANK[d.mode];
}

function describe(r: InputRef): string {
  return `${r.source} ${r.token}`;
}

function effectOf(d: Demand): string {
  const parts = [`composefs ${d.mode}`];
  if (d.verity) parts.push("fs-verity required");
  if (d.digest) parts.push(`image fs-verity digest must be ${d.digest}`);
  if (d.keys) {
    parts.push(
      `commit signed by a key in ${d.keys.path}`,
      "image digest must equal the signed ostree.composefs.digest.v0",
    );
  }
  return parts.join("; ");
}

function configDemand(config: PrepareRootConfig): Demand[] {
  const c = config.composefs;
  if (!c) return [];
  const ref: InputRef = { source: "config", token: `enabled=${c.value}` };
  if (config.file !== undefined) ref.file = config.file;
  const base = { ref, verity: false, dropsSignature: false };
  switch (c.value) {
    case "no":
      return [{ ...base, mode: "off" }];
    case "maybe":
      return [{ ...base, mode: "maybe" }];
    case "yes":
      return [{ ...base, mode: "on" }];
    case "verity":
      return [{ ...base, mode: "on", verity: true }];
    case "signed":
      return [{ ...base, mode: "on", verity: true, keys: configKeys(config) }];
  }
}

function configKeys(config: PrepareRootConfig): { path: string; pathFrom: KeySet["pathFrom"] } {
  if (!config.keypathFromConfig) return { path: DEFAULT_KEYPATH, pathFrom: "default-keypath" };
  if (!config.keypath.startsWith("/")) {
    throw new UsageError(
      `Cannot use ${q(config.file ?? "prepare-root.conf")}: [composefs] keypath = ${q(config.keypath)} is not an absolute path, expected an absolute path inside the initramfs`,
      { path: config.file, keypath: config.keypath },
    );
  }
  return { path: config.keypath, pathFrom: "config-keypath" };
}

function kargDemand(k: ComposefsKarg, config: PrepareRootConfig): Demand {
  const ref: InputRef = { source: "karg", token: k.token };
  const base = { ref, verity: false, dropsSignature: false };
  switch (k.kind) {
    case "ostree":
      if (k.value === "signed") return { ...base, mode: "on", verity: true, keys: configKeys(config) };
      return {
        ...base,
        mode: k.value === "no" ? "off" : k.value === "yes" ? "on" : "maybe",
        dropsSignature: true,
      };
    case "mode":
      return { ...base, mode: k.mode };
    case "digest":
      return { ...base, mode: "on", verity: true, digest: k.digest };
    case "signed":
      return { ...base, mode: "on", verity: true, keys: { path: k.path, pathFrom: "karg" } };
  }
}

/**
 * Combines the kernel command line and prepare-root.conf into the trust policy. Throws UsageError for
 * contradictions (two different expected digests) and for a transient root with composefs off.
 */
export function resolvePolicy(cmdline: BootCmdline, config: PrepareRootConfig): TrustPolicy {
  const demands = [...configDemand(config), ...cmdline.composefs.map((k) => kargDemand(k, config))];
  const applied: AppliedInput[] = [];
  const overruled: OverruledInput[] = [];

  if (config.replaced !== undefined && config.file !== undefined) {
    overruled.push({
      source: "config",
      token: config.replaced,
      file: config.replaced,
      reason: `replaced as a whole by ${config.file} (ostree reads only the last file present)`,
    });
  }

  let composefs: ComposefsMode = "maybe";
  if (demands.length === 0) {
    applied.push({ source: "default", token: "composefs=maybe", effect: "composefs maybe" });
  } else {
    composefs = demands.reduce<ComposefsMode>((m, d) => (RANK[d.mode] > RANK[m] ? d.mode : m), "off");
  }
  const verityRequired = demands.some((d) => d.verity);

  let expectedDigest: ExpectedDigest | undefined;
  const keySets: KeySet[] = [];
  for (const d of demands) {
    if (d.digest) {
      if (expectedDigest && expectedDigest.hex !== d.digest) {
        const first = expectedDigest.requiredBy[0] as InputRef;
        throw new UsageError(
          `Cannot combine ${q(d.ref.token)} with ${q(first.token)}: two different expected composefs digests, expected one image digest (every digest given must hold, so these cannot both)`,
          { first: first.token, second: d.ref.token },
        );
      }
      if (expectedDigest) expectedDigest.requiredBy.push(d.ref);
      else expectedDigest = { hex: d.digest, requiredBy: [d.ref] };
    }
    if (d.keys) {
      const path = d.keys.path;
      const same = keySets.find((s) => s.path === path);
      if (same) same.requiredBy.push(d.ref);
      else keySets.push({ path, pathFrom: d.keys.pathFrom, requiredBy: [d.ref] });
    }
  }

  const strongest = demands.reduce<Demand | undefined>(
    (s, d) => (!s || strength(d) > strength(s) ? d : s),
    undefined,
  );
  for (const d of demands) {
    if (RANK[d.mode] < RANK[composefs] && strongest) {
      overruled.push({ ...d.ref, reason: `weaker than ${describe(strongest.ref)}` });
    } else if (d.dropsSignature && keySets.length > 0) {
      const by = (keySets[0] as KeySet).requiredBy[0] as InputRef;
      overruled.push({ ...d.ref, reason: `cannot drop the signature required by ${describe(by)}` });
    } else {
      applied.push({ ...d.ref, effect: effectOf(d) });
    }
  }

  for (const t of cmdline.ignoredTargets) {
    overruled.push({
      source: "karg",
      token: t,
      reason: `only the first ostree= is used (${cmdline.target?.token})`,
    });
  }

  const fileRef = (token: string): InputRef =>
    config.file !== undefined ? { source: "config", token, file: config.file } : { source: "config", token };
  let sysrootReadonly: boolean;
  let sysrootReadonlyFrom: InputRef;
  if (config.sysrootReadonly !== undefined) {
    sysrootReadonly = config.sysrootReadonly;
    sysrootReadonlyFrom = fileRef(`sysroot.readonly=${sysrootReadonly}`);
    applied.push({ ...sysrootReadonlyFrom, effect: `sysroot ${sysrootReadonly ? "read-only" : "writable"}` });
  } else {
    // ostree: the default is true only when composefs resolves to YES (not maybe).
    sysrootReadonly = composefs === "on";
    sysrootReadonlyFrom = { source: "default", token: `sysroot.readonly=${sysrootReadonly}` };
  }

  if (config.rootTransient && composefs === "off") {
    const key = config.rootTransientRo ? "transient-ro" : "transient";
    throw new UsageError(
      `Cannot use [root] ${key} from ${q(config.file ?? "prepare-root.conf")}: composefs is off, expected composefs maybe or on (a transient root is an overlay on the composefs mount)`,
      { path: config.file },
    );
  }
  if (config.rootTransientRo)
    applied.push({ ...fileRef("root.transient-ro=true"), effect: "transient read-only root" });
  else if (config.rootTransient)
    applied.push({ ...fileRef("root.transient=true"), effect: "transient root" });
  if (config.etcTransient) applied.push({ ...fileRef("etc.transient=true"), effect: "transient /etc" });

  const policy: TrustPolicy = {
    composefs,
    verityRequired,
    keySets,
    sysrootReadonly,
    sysrootReadonlyFrom,
    // ostree consults the repo config whenever readonly is false (set or defaulted) and composefs is not YES.
    legacyReadonlyFallback: !sysrootReadonly && composefs !== "on",
    etcTransient: config.etcTransient,
    rootTransient: config.rootTransient,
    rootTransientRo: config.rootTransientRo,
    applied,
    overruled,
  };
  if (cmdline.target) policy.target = cmdline.target;
  if (expectedDigest) policy.expectedDigest = expectedDigest;
  return policy;
}

/**
 * Whether `rd.shell` (from the kernel command line, which nothing verifies) may open a root shell after a
 * refusal: always when the boot verifies nothing; in a verifying boot (a key set, an expected digest or
 * verity required) only when the initramfs's own config opts in with `[sealroot] emergency-shell = yes`.
 * A command line that does not even resolve to a policy counts as verifying. `undefined` = allowed,
 * else why not.
 */
export function emergencyShellRefusal(cmdline: KernelCmdline, config: PrepareRootConfig): string | undefined {
  if (config.emergencyShell) return undefined;
  let verifying = true;
  try {
    const p = resolvePolicy(bootArgs(cmdline), config);
    verifying = p.verityRequired || p.keySets.length > 0 || p.expectedDigest !== undefined;
  } catch (e) {
    if (!(e instanceof SealrootError)) throw e;
  }
  return verifying
    ? "the boot verifies its root and the initramfs's prepare-root.conf has no [sealroot] emergency-shell = yes"
    : undefined;
}
