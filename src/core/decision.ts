// The boot decision: from the kernel command line, prepare-root.conf and the sysroot to one verdict and
// the record that explains it. `decideTrust` runs every check that needs no image bytes (policy, target,
// commit re-hash, signatures, signed digest); `checkImage` compares the image's fs-verity digest, which
// the boot measures with the kernel on the fd it mounts and `sealroot verify` computes in userspace.
// Pure over the injected FsRead and repository opener; a refusal is a verdict, never a throw. A decision
// is frozen once made: what the boot finds out later (the kernel's digest, the TPM) makes a new record.

import { IntegrityError, q, SealrootError, UsageError } from "../base/errors.ts";
import { type FsRead, kindName, notRegularFile } from "../base/fs.ts";
import { toHex } from "../formats/bytes.ts";
import { lookup } from "../formats/gvariant.ts";
import { COMPOSEFS_DIGEST_KEY, composefsDigest, OSTREE_VERSION_KEY } from "../formats/ostree/objects.ts";
import type { OstreeRepo } from "../formats/ostree/repo.ts";
import { eventDigests, PCR_BANKS, type PcrBank } from "../formats/tpm2.ts";
import { MAX_KEY_FILE_BYTES, parsePublicKeyFile } from "../verify/keys.ts";
import { verifyCommitSignatures } from "../verify/signature.ts";
import { bootArgs, type KernelCmdline, requireTarget } from "./cmdline.ts";
import type { MeasureConfig, PrepareRootConfig, TpmMode } from "./config.ts";
import {
  type Deployment,
  decodeDeploymentCommit,
  loadDeploymentCommit,
  resolveDeployment,
} from "./deployment.ts";
import { floorViolation, raiseFloor } from "./floor.ts";
import { measurementEvent } from "./measure.ts";
import { type ComposefsMode, type InputRef, resolvePolicy, type TrustPolicy } from "./policy.ts";

/** The check that refused the boot; each failure names one. */
export type Stage = "policy" | "target" | "commit" | "keys" | "signature" | "image" | "measure";

export interface KeySetRecord {
  path: string;
  requiredBy: string[];
  keys: number;
  /** Malformed lines of the key file, skipped (they do not disable the other keys). */
  problems: string[];
  /** The key (hex) that verified a signature, once verified. */
  verifiedBy?: string;
}

export interface DigestRequirement {
  hex: string;
  /** `karg ot-composefs=digest=…`, or `signed ostree.composefs.digest.v0 (keys <path>)`. */
  source: string;
}

export interface Decision {
  verdict: "boot" | "refuse";
  stage?: Stage;
  /** One line, plain words: what failed and why. */
  reason?: string;
  cmdline: string;
  config?: string;
  composefs?: ComposefsMode;
  /** Whether the root will be the composefs image (false: ostree's legacy bind mount). */
  useComposefs?: boolean;
  verityRequired?: boolean;
  deployment?: { path: string; stateroot: string; commit: string; serial: number };
  /** True once the `.commit` bytes hashed to the commit id in the deployment's name. */
  commitVerified?: boolean;
  image?: { path: string; present: boolean; digest?: string; measuredBy?: "kernel" | "userspace" };
  keySets: KeySetRecord[];
  expectedDigests: DigestRequirement[];
  applied: { source: string; token: string; effect: string }[];
  overruled: { source: string; token: string; reason: string }[];
  /** The anti-rollback floor a signed commit was held to (unix seconds as a decimal string). */
  floor?: { minTimestamp?: string; minVersion?: string };
  /** Measured boot: the event extended (or to be extended) into the TPM, and what became of it. */
  measurement?: MeasurementRecord;
  sysrootReadonly?: boolean;
  etcTransient?: boolean;
  rootTransient?: boolean;
  rootTransientRo?: boolean;
}

/** The measurement step of a boot, as the decision records it (core/measure.ts has the format). */
export interface MeasurementRecord {
  /** The PCR extended. */
  pcr: number;
  /** `[sealroot] tpm`, raised to `required` by `sealroot.tpm=required`. */
  tpm: TpmMode;
  /** What set the mode, when not the default: `prepare-root.conf [sealroot] tpm`, the karg. */
  setBy: string[];
  /** The event string; absent while the image's digest is still to be measured by the kernel. */
  event?: string;
  /** Why `event` is absent. */
  pending?: string;
  /** The event's digest per bank: every bank sealroot knows before the TPM is asked, then the banks
   * extended. Hex. */
  digests?: { bank: PcrBank; digest: string }[];
  /** The TPM the event was extended in. */
  device?: string;
  /** Why nothing was extended (no TPM, `tpm = off`). */
  skipped?: string;
  /** Active banks of the PCR that sealroot cannot hash for, left unextended. */
  unsupported?: string[];
  /** The userspace log the record was appended to. */
  log?: string;
}

export interface TrustInputs {
  fs: FsRead;
  /** The physical root filesystem, mounted (absolute, no symlinks). */
  sysroot: string;
  /** Read once by the caller (core/cmdline.ts readKernelCmdline). */
  cmdline: KernelCmdline;
  config: PrepareRootConfig;
  /** Where key paths from kargs and config are read: the initramfs at boot. */
  anchors: AnchorSource;
  openRepo: (path: string) => Pick<OstreeRepo, "path" | "readMetadataObject" | "readCommitmetaSignatures">;
}

/** What `decideTrust` hands on to the image step (and to the mount, at boot). */
export interface Trust {
  decision: Decision;
  policy?: TrustPolicy;
  deployment?: Deployment;
}

const refs = (r: InputRef[]) => r.map((x) => `${x.source} ${x.token}`);

/** Marks the decision being built refused at `stage` with `reason` (a refused boot measures nothing). */
function refuse(d: Decision, stage: Stage, reason: string): Decision {
  d.verdict = "refuse";
  delete d.measurement;
  d.stage = stage;
  d.reason = reason;
  return d;
}

/**
 * A copy of the decision, refused with `reason`: at `stage` when a check refused it, or with the stage
 * left as it was when a step of the boot failed (setup, a mount, a record, the move).
 */
export function refused(d: Decision, stage: Stage | undefined, reason: string): Decision {
  const { measurement: _, ...rest } = d;
  return freezeDeep({ ...rest, verdict: "refuse", reason, ...(stage ? { stage } : {}) });
}

/** Freezes `v` and everything it holds: a decision is made once and never patched afterwards. */
function freezeDeep<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) freezeDeep(x);
  }
  return v;
}

/** Runs `step`; a SealrootError becomes a refusal at `stage` with its message. Other errors are bugs. */
function attempt<T>(d: Decision, stage: Stage, step: () => T): T | undefined {
  try {
    return step();
  } catch (e) {
    if (e instanceof SealrootError) {
      refuse(d, stage, e.message);
      return undefined;
    }
    throw e;
  }
}

/**
 * Where the trust anchors (public key files) named by kargs and prepare-root.conf are read: the
 * initramfs at boot; `--root` or the commit's own tree in `sealroot verify`.
 */
export interface AnchorSource {
  /** Where key paths resolve, for messages: `the initramfs "/"`, … */
  where: string;
  /** The file's bytes, at most `cap`; throws a SealrootError naming the path when it cannot be used. */
  read(path: string, cap: number, what: string): Uint8Array;
}

/** `path` with "." and ".." folded and slashes collapsed (absolute in, absolute out; no file access). */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return `/${out.join("/")}`;
}

/** Whether the normalized absolute `path` is `dir` or below it. */
export function isInside(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

/**
 * Key files under a directory standing for the initramfs (`root`, "/" at boot). A key path that lands
 * inside the physical root `sysroot` is refused: that disk is what the keys are to verify.
 */
export function rootAnchors(fs: FsRead, root: string, sysroot: string): AnchorSource {
  const base = normalizePath(root);
  const physical = normalizePath(sysroot);
  return {
    where: base === "/" ? "the initramfs" : `the root ${q(base)}`,
    read(path, cap, what) {
      const full = normalizePath(`${base}/${path}`);
      if (isInside(full, physical)) {
        throw new UsageError(
          `Cannot use ${what} ${q(path)}: it resolves to ${q(full)} inside the physical root ${q(physical)}, which is what it is to verify, expected a key file in ${base === "/" ? "the initramfs" : q(base)}`,
          { path, resolved: full, sysroot: physical },
        );
      }
      return fs.readFile(full, cap, what);
    },
  };
}

/** Every check that needs no image bytes, in the boot's order; the decision comes back frozen. */
export function decideTrust(inp: TrustInputs): Trust {
  const trust = decide(inp);
  freezeDeep(trust.decision);
  return trust;
}

function decide(inp: TrustInputs): Trust {
  const d: Decision = {
    verdict: "boot",
    cmdline: inp.cmdline.text,
    keySets: [],
    expectedDigests: [],
    applied: [],
    overruled: [],
  };
  if (inp.config.file !== undefined) d.config = inp.config.file;

  // an argument that does not parse is a refusal at the policy stage
  const parsed = attempt(d, "policy", () => {
    const cmdline = bootArgs(inp.cmdline);
    return { cmdline, policy: resolvePolicy(cmdline, inp.config) };
  });
  if (!parsed) return { decision: d };
  const { cmdline, policy } = parsed;
  d.composefs = policy.composefs;
  d.verityRequired = policy.verityRequired;
  d.applied = policy.applied.map(({ source, token, effect }) => ({ source, token, effect }));
  d.overruled = policy.overruled.map(({ source, token, reason }) => ({ source, token, reason }));
  d.sysrootReadonly = policy.sysrootReadonly;
  d.etcTransient = policy.etcTransient;
  d.rootTransient = policy.rootTransient;
  d.rootTransientRo = policy.rootTransientRo;
  if (policy.expectedDigest) {
    d.expectedDigests.push({
      hex: policy.expectedDigest.hex,
      source: refs(policy.expectedDigest.requiredBy).join(", "),
    });
  }

  const deployment = attempt(d, "target", () =>
    resolveDeployment(inp.fs, inp.sysroot, requireTarget(cmdline).path),
  );
  if (!deployment) return { decision: d, policy };
  d.deployment = {
    path: deployment.path,
    stateroot: deployment.stateroot,
    commit: deployment.commit,
    serial: deployment.serial,
  };
  if (attempt(d, "target", () => checkBindSources(inp.fs, deployment)) === undefined) {
    return { decision: d, policy };
  }
  const image = attempt(d, "image", () => ({ kind: inp.fs.lstatIfExists(deployment.composefsImage)?.kind }));
  if (image === undefined) return { decision: d, policy };
  d.image = { path: deployment.composefsImage, present: image.kind !== undefined };
  const trust: Trust = { decision: d, policy, deployment };
  if (image.kind !== undefined && image.kind !== "file" && policy.composefs !== "off") {
    refuse(d, "image", notRegularFile("composefs image", deployment.composefsImage, image.kind).message);
    return trust;
  }

  const measure = measureSettings(inp.config.measure, cmdline.tpmRequired, inp.config.file);
  const needsCommit = policy.keySets.length > 0;
  if (!needsCommit) return decideComposefs(trust, measure);

  // the exact bytes are checked against every key set before they are decoded at all
  const loaded = attempt(d, "commit", () => loadDeploymentCommit(inp.openRepo(deployment.repo), deployment));
  if (!loaded) return trust;
  d.commitVerified = true;
  const signatures = loaded.commitmeta?.signatures;

  for (const set of policy.keySets) {
    const rec: KeySetRecord = { path: set.path, requiredBy: refs(set.requiredBy), keys: 0, problems: [] };
    d.keySets.push(rec);
    const file = attempt(d, "keys", () =>
      parsePublicKeyFile(inp.anchors.read(set.path, MAX_KEY_FILE_BYTES, "public key file"), set.path),
    );
    if (!file) return trust;
    rec.keys = file.keys.length;
    rec.problems = file.problems.map((p) => `line ${p.line}: ${p.reason}`);
    const verdict = verifyCommitSignatures(loaded.bytes, signatures, file.keys);
    if (!verdict.ok) {
      const none = loaded.commitmeta === undefined ? " (no .commitmeta)" : "";
      refuse(
        d,
        "signature",
        `Cannot verify commit ${deployment.commit} with the keys in ${q(set.path)}: ${verdict.reason}${none}, expected ${verdict.expected ?? "an ed25519 signature by one of them"}`,
      );
      return trust;
    }
    rec.verifiedBy = verdict.keyHex;
  }

  const commit = attempt(d, "commit", () => decodeDeploymentCommit(loaded));
  if (!commit) return trust;
  // the anti-rollback floor: the initramfs's, raised (never lowered) by the command line; only a signed
  // commit's timestamp and version mean anything
  const floor = raiseFloor(inp.config.floor, cmdline.floor);
  if (floor.minTimestamp !== undefined || floor.minVersion !== undefined) {
    d.floor = {
      ...(floor.minTimestamp === undefined ? {} : { minTimestamp: String(floor.minTimestamp) }),
      ...(floor.minVersion === undefined ? {} : { minVersion: floor.minVersion }),
    };
    const version = lookup(commit.metadata, OSTREE_VERSION_KEY, "s")?.value as string | undefined;
    const below = floorViolation(
      { checksum: deployment.commit, timestamp: commit.timestamp, version },
      floor,
    );
    if (below !== undefined) {
      refuse(d, "commit", below);
      return trust;
    }
  }
  const signed = composefsDigest(commit);
  if (signed?.length !== 32) {
    refuse(
      d,
      "signature",
      `Commit ${deployment.commit} carries no 32-byte ${COMPOSEFS_DIGEST_KEY}, expected the signed composefs digest`,
    );
    return trust;
  }
  d.expectedDigests.push({
    hex: toHex(signed),
    source: `signed ${COMPOSEFS_DIGEST_KEY} (keys ${policy.keySets.map((s) => s.path).join(", ")})`,
  });
  return decideComposefs(trust, measure);
}

/**
 * The deployment's `etc` and its stateroot's `var` are bound into the new root: each must be a real
 * directory (a symbolic link there would bind whatever it names, e.g. the initramfs's own root). The
 * directories above them were walked as directories when the target was resolved.
 */
function checkBindSources(fs: FsRead, dep: Deployment): true {
  for (const [path, role] of [
    [dep.etcDir, "the deployment's /etc"],
    [dep.varDir, "the stateroot's /var"],
  ] as const) {
    const st = fs.lstatIfExists(path);
    if (st?.kind !== "dir") {
      throw new IntegrityError(
        `Cannot bind ${role} from ${q(path)}: ${st ? kindName(st.kind) : "it does not exist"}, expected a directory inside the physical root`,
        { path },
      );
    }
  }
  return true;
}

/** Chooses composefs or the legacy bind from the mode and whether the image exists; a boot that goes
 * ahead is given its measurement. */
function decideComposefs(trust: Trust, measure: MeasurementRecord): Trust {
  chooseComposefs(trust);
  const d = trust.decision;
  if (d.verdict === "boot") d.measurement = withEvent(d, measure);
  return trust;
}

function measureSettings(
  config: MeasureConfig,
  karg: string | undefined,
  file: string | undefined,
): MeasurementRecord {
  const setBy: string[] = [];
  if (config.tpm !== "auto") setBy.push(`${file ?? "prepare-root.conf"} [sealroot] tpm = ${config.tpm}`);
  let tpm = config.tpm;
  if (karg !== undefined && tpm !== "required") {
    tpm = "required";
    setBy.push(`karg ${karg}`);
  }
  const m: MeasurementRecord = { pcr: config.pcr, tpm, setBy };
  if (tpm === "off") m.skipped = `measurement is off (${setBy.join(", ")})`;
  return m;
}

/** The policy word of the event: the strongest check the boot made. */
export function policyMode(d: Decision): string {
  if (d.keySets.length > 0) return "signed";
  if (d.expectedDigests.length > 0) return "digest";
  if (d.verityRequired === true) return "verity";
  return d.composefs ?? "off";
}

/**
 * The measurement with its event and per-bank digests, from what the decision knows: the commit, the key
 * that verified it, the policy and the composefs image's digest — the one it was held to (an expected
 * digest, which the kernel's measurement must equal), else the one measured when verity is required
 * (`pending` until then), else none. `digests` covers every bank sealroot knows until the TPM says which
 * are active.
 */
function withEvent(d: Decision, m: MeasurementRecord): MeasurementRecord {
  const { event: _e, pending: _p, digests: _d, ...rest } = m;
  if (!d.deployment) return rest;
  let composefs: string | undefined;
  if (d.useComposefs === true) {
    if (d.expectedDigests.length > 0) composefs = d.image?.digest ?? d.expectedDigests[0]?.hex;
    else if (d.verityRequired === true) {
      composefs = d.image?.digest;
      if (composefs === undefined) {
        return {
          ...rest,
          pending: "the composefs image's fs-verity digest, which the kernel measures when it is mounted",
        };
      }
    }
  }
  const event = measurementEvent({
    commit: d.deployment.commit,
    composefs,
    key: d.keySets[0]?.verifiedBy,
    policy: policyMode(d),
  });
  const digests = eventDigests(event, PCR_BANKS).map((b) => ({ bank: b.bank, digest: toHex(b.digest) }));
  return { ...rest, event, digests };
}

/** What the boot's steps found out, which the decision did not know when it was made. */
export interface BootOutcome {
  /** The composefs image's fs-verity digest (hex), measured by the kernel on the fd it mounted. */
  imageDigest?: string;
  /** What the measure step did: the TPM, the banks it extended, or why it did not. */
  measured?: Pick<MeasurementRecord, "digests" | "device" | "skipped" | "unsupported" | "log">;
}

/** A copy of the decision with the image's measured digest and the event it completes. */
export function withImageDigest(d: Decision, hex: string, by: "kernel" | "userspace"): Decision {
  if (!d.image) return d;
  const next: Decision = { ...d, image: { ...d.image, digest: hex, measuredBy: by } };
  if (d.measurement) next.measurement = withEvent(next, d.measurement);
  return freezeDeep(next);
}

/** The record of a boot: the decision as made, completed with what its steps found out. */
export function bootRecord(d: Decision, o: BootOutcome): Decision {
  const withDigest = o.imageDigest === undefined ? d : withImageDigest(d, o.imageDigest, "kernel");
  if (!o.measured || !withDigest.measurement) return withDigest;
  return freezeDeep({ ...withDigest, measurement: { ...withDigest.measurement, ...o.measured } });
}

function chooseComposefs(trust: Trust): void {
  const { decision: d, policy } = trust;
  if (!policy || !d.image) return;
  if (policy.composefs === "off") {
    d.useComposefs = false;
    if (policy.rootTransient) refuse(d, "policy", "root.transient needs composefs, but composefs is off");
    return;
  }
  if (!d.image.present) {
    if (policy.composefs === "maybe" && !policy.rootTransient) {
      d.useComposefs = false;
      return;
    }
    const why = policy.composefs === "maybe" ? "root.transient needs composefs" : "composefs is required";
    refuse(d, "image", `Cannot find composefs image ${q(d.image.path)}: no such file, ${why}`);
    return;
  }
  d.useComposefs = true;
}

/**
 * The image step: `digest` is the image's fs-verity digest (32 bytes) or `undefined` when the image has
 * none (no fs-verity in the kernel's eyes). Every expected digest must equal it; a required verity needs
 * one. Returns the decision completed with the digest, or refused.
 */
export function checkImage(
  trust: Trust,
  digest: Uint8Array | undefined,
  measuredBy: "kernel" | "userspace",
): Decision {
  const d0 = trust.decision;
  if (d0.verdict === "refuse" || !d0.useComposefs || !d0.image) return d0;
  const hex = digest === undefined ? undefined : toHex(digest);
  const d = hex === undefined ? d0 : withImageDigest(d0, hex, measuredBy);
  const needed = d.expectedDigests.length > 0 || d.verityRequired === true;
  if (!needed) return d;
  const problem = imageDigestProblem(d0.image.path, hex, d.expectedDigests);
  return problem === undefined ? d : refused(d, "image", problem);
}

/**
 * The one comparison of a measured image digest (hex; `undefined` when the image has no fs-verity) with
 * what the boot requires, shared by checkImage and the boot's kernel measurement: why it fails, or
 * `undefined` when it has a digest equal to every expected one.
 */
export function imageDigestProblem(
  path: string,
  digestHex: string | undefined,
  expected: readonly DigestRequirement[],
): string | undefined {
  if (digestHex === undefined) {
    return `Cannot measure composefs image ${q(path)}: fs-verity is not enabled on it, expected a verity-protected image`;
  }
  for (const e of expected) {
    if (e.hex !== digestHex) {
      return `Cannot verify composefs image ${q(path)}: fs-verity digest ${digestHex}, expected ${e.hex} (${e.source})`;
    }
  }
  return undefined;
}
