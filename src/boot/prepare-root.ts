// prepare-root: the imperative shell over the pure decision and plan. Phases in order — decide (policy,
// target, commit, signatures), plan, then each step of the plan over the injected Sys — with every change
// recorded in an undo log, so a failure at any step leaves SYSROOT's mounts and /run as they were and a
// rerun works. The image is opened once: its fs-verity digest is measured on that fd, compared, and the
// same fd is mounted. One structured event per phase goes to `log`; the caller prints the refusal line.

import { messageOf, q, SealrootError, SysError } from "../base/errors.ts";
import { type PrepareRootConfig, parseLegacyRepoReadonly } from "../core/config.ts";
import {
  completeMeasurement,
  type Decision,
  decideTrust,
  imageDigestProblem,
  rootAnchors,
  type Stage,
} from "../core/decision.ts";
import { formatMeasureRecord } from "../core/measure.ts";
import { type BootPlan, type PlanFacts, planBoot, type Step } from "../core/plan.ts";
import { encodeOstreeBooted } from "../core/records.ts";
import { toHex } from "../formats/bytes.ts";
import { MAX_KEYFILE_BYTES } from "../formats/keyfile.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import {
  AT_FDCWD,
  MNT_DETACH,
  MS_BIND,
  MS_MOVE,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  MS_SILENT,
} from "../sys/ffi/libc.ts";
import {
  AT_RECURSIVE,
  MOVE_MOUNT_F_EMPTY_PATH,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
} from "../sys/ffi/syscalls.ts";
import type { CompatForce } from "../sys/kernel-compat.ts";
import { mountComposefs, openImage, probeRead } from "../sys/mount.ts";
import type { Sys } from "../sys/types.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { type LogEvent, runPhase } from "./phase.ts";

export type { LogEvent };

export interface PrepareRootOptions {
  /** The physical root, mounted: absolute, no symlinks. */
  sysroot: string;
  cmdline: string;
  config: PrepareRootConfig;
  /** Where key paths resolve ("/" in the initramfs). */
  keyRoot: string;
  /** "/run" at boot. */
  run: string;
  /** Bind the stateroot's var onto /var; default: only without systemd (no `<run>/systemd/system`). */
  mountVar?: boolean;
  /** The random part of `transient-etc.XXXXXX`. */
  etcSuffix: string;
  force?: CompatForce;
  dryRun?: boolean;
  log: (e: LogEvent) => void;
  /** Milliseconds, monotonic; injected for tests. */
  now: () => number;
}

export interface PrepareRootResult {
  decision: Decision;
  plan?: BootPlan;
  /** The refused or failed stage (a refusal of the decision, or a step of the plan). */
  failed?: { stage: Stage | "setup" | "mount" | "record" | "move"; reason: string };
  timings: Record<string, number>;
}

/** A refusal raised while executing the plan (image digest, verity probe). */
class Refusal extends SealrootError {
  constructor(
    readonly stage: Stage,
    message: string,
  ) {
    super("EREFUSED", message);
  }
}

interface Undo {
  what: string;
  run: () => void;
}

export function prepareRoot(sys: Sys, o: PrepareRootOptions): PrepareRootResult {
  const timings: Record<string, number> = {};
  const phase = <T>(name: string, fn: () => T, fields?: (r: T) => Record<string, unknown>): T =>
    runPhase(o, name, fn, fields, (ms) => {
      timings[name] = ms;
    });

  let trust: ReturnType<typeof decideTrust>;
  try {
    trust = phase(
      "decide",
      () =>
        decideTrust({
          fs: sys,
          sysroot: o.sysroot,
          cmdline: o.cmdline,
          config: o.config,
          anchors: rootAnchors(sys, o.keyRoot, o.sysroot),
          openRepo: (path) => OstreeRepo.open(sys, path, { inflateRaw }),
        }),
      (t) => ({
        verdict: t.decision.verdict,
        stage: t.decision.stage,
        deployment: t.decision.deployment?.path,
        expected: t.decision.expectedDigests,
        keySets: t.decision.keySets.map((k) => ({ path: k.path, verifiedBy: k.verifiedBy })),
      }),
    );
  } catch (e) {
    // a read that fails outside the decision's own checks (e.g. lstat of the image): nothing is changed
    // yet, so this is a refusal like any other, not a crash
    if (!(e instanceof SealrootError)) throw e;
    const decision: Decision = {
      verdict: "refuse",
      cmdline: o.cmdline,
      keySets: [],
      expectedDigests: [],
      applied: [],
      overruled: [],
    };
    return refuseAfter(decision, "setup", e.message, timings);
  }
  const decision = trust.decision;
  if (decision.verdict === "refuse" || !trust.deployment) {
    return {
      decision,
      failed: { stage: decision.stage ?? "policy", reason: decision.reason ?? "refused" },
      timings,
    };
  }

  let plan: BootPlan;
  try {
    plan = phase(
      "plan",
      () =>
        planBoot(
          decision,
          gatherFacts(sys, o, trust.deployment!.path, trust.policy?.legacyReadonlyFallback === true),
        ),
      (p) => ({ steps: p.steps.length, composefs: p.composefs }),
    );
  } catch (e) {
    if (!(e instanceof SealrootError)) throw e;
    return refuseAfter(decision, "setup", e.message, timings);
  }
  if (o.dryRun) return { decision, plan, timings };

  const undo: Undo[] = [];
  let current: Step | undefined;
  try {
    for (const step of plan.steps) {
      current = step;
      phase(
        step.op,
        () => execute(sys, o, step, plan, decision, undo, timings),
        (r) => ({ ...describe(step), ...r }),
      );
    }
  } catch (e) {
    // undone whatever the error: a bug (a non-SealrootError, rethrown) must not leave mounts behind either
    rollback(undo, o);
    if (!(e instanceof SealrootError)) throw e;
    const stage = e instanceof Refusal ? e.stage : stageOf(current);
    return refuseAfter(decision, stage, e.message, timings, plan);
  }
  return { decision, plan, timings };
}

function refuseAfter(
  decision: Decision,
  stage: NonNullable<PrepareRootResult["failed"]>["stage"],
  reason: string,
  timings: Record<string, number>,
  plan?: BootPlan,
): PrepareRootResult {
  decision.verdict = "refuse";
  decision.reason = reason;
  delete decision.measurement;
  if (
    stage === "policy" ||
    stage === "target" ||
    stage === "commit" ||
    stage === "keys" ||
    stage === "signature" ||
    stage === "image" ||
    stage === "measure"
  ) {
    decision.stage = stage;
  }
  const r: PrepareRootResult = { decision, failed: { stage, reason }, timings };
  if (plan) r.plan = plan;
  return r;
}

function stageOf(step: Step | undefined): NonNullable<PrepareRootResult["failed"]>["stage"] {
  switch (step?.op) {
    case "composefs":
    case "probe":
      return "image";
    case "measure":
      return "measure";
    case "write-ostree-booted":
    case "write-decision":
      return "record";
    case "move-into-place":
      return "move";
    case "mkdir":
    case "make-rprivate":
      return "setup";
    default:
      return "mount";
  }
}

function describe(step: Step): Record<string, unknown> {
  const { op: _op, ...rest } = step;
  return rest;
}

/** Facts about the running system that the pure plan needs. */
function gatherFacts(
  sys: Sys,
  o: PrepareRootOptions,
  deployment: string,
  legacyFallback: boolean,
): PlanFacts {
  if (sys.lstatIfExists(`${o.run}/ostree`)) {
    throw new SysError(
      "EEXIST",
      `Cannot prepare the root: ${q(`${o.run}/ostree`)} exists, expected a root not yet prepared`,
    );
  }
  const dep = sys.stat(deployment);
  const root = sys.stat(o.sysroot);
  return {
    sysroot: o.sysroot,
    run: o.run,
    deploymentDev: String(dep.dev),
    deploymentIno: String(dep.ino),
    sysrootDevice: `${major(root.dev)}:${minor(root.dev)}`,
    mountVar: o.mountVar ?? !sys.lstatIfExists(`${o.run}/systemd/system`),
    etcSuffix: o.etcSuffix,
    legacyRepoReadonly: legacyFallback
      ? parseLegacyRepoReadonly(
          sys.readFileIfExists(`${o.sysroot}/ostree/repo/config`, MAX_KEYFILE_BYTES, "repository config"),
          `${o.sysroot}/ostree/repo/config`,
        )
      : false,
    runSealrootExists: sys.lstatIfExists(`${o.run}/sealroot`) !== undefined,
  };
}

/** Linux dev_t (new_encode_dev): major in bits 8–19 and 32+, minor in bits 0–7 and 20–31. */
function major(dev: number): number {
  return Number(((BigInt(dev) >> 8n) & 0xfffn) | ((BigInt(dev) >> 32n) & ~0xfffn));
}
function minor(dev: number): number {
  return Number((BigInt(dev) & 0xffn) | ((BigInt(dev) >> 12n) & ~0xffn));
}

function execute(
  sys: Sys,
  o: PrepareRootOptions,
  step: Step,
  plan: BootPlan,
  decision: Decision,
  undo: Undo[],
  timings: Record<string, number>,
): Record<string, unknown> {
  switch (step.op) {
    case "mkdir":
      sys.mkdir(step.path, step.mode);
      undo.push({ what: `rmdir ${step.path}`, run: () => sys.rmdir(step.path) });
      return {};
    case "make-rprivate":
      // MS_MOVE fails under a shared parent (systemd makes / shared); propagation is not undone
      sys.mount(null, step.path, null, MS_REC | MS_PRIVATE, null);
      return {};
    case "composefs":
      return stageComposefs(sys, o, step, decision, undo);
    case "probe":
      return probe(sys, step.root);
    case "bind":
      sys.mount(step.source, step.target, null, MS_BIND | MS_SILENT, null);
      undo.push({ what: `umount ${step.target}`, run: () => sys.umount2(step.target, MNT_DETACH) });
      if (step.readonly)
        sys.mount(null, step.target, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_SILENT, null);
      return {};
    case "remount-ro":
      sys.mount(null, step.target, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_SILENT, null);
      return {};
    case "overlay":
      sys.mount(
        "overlay",
        step.target,
        "overlay",
        MS_SILENT,
        `lowerdir=${step.lowerdir},upperdir=${step.upperdir},workdir=${step.workdir}`,
      );
      undo.push({ what: `umount ${step.target}`, run: () => sys.umount2(step.target, MNT_DETACH) });
      return {};
    case "symlink":
      return volatileRoot(sys, step, undo);
    case "measure":
      return measureBoot(sys, step, decision);
    case "write-ostree-booted": {
      const b = plan.ostreeBooted;
      const rec = {
        ...b,
        deploymentDev: BigInt(b.deploymentDev),
        deploymentIno: BigInt(b.deploymentIno),
      };
      sys.writeFile(step.path, encodeOstreeBooted(rec), 0o644);
      undo.push({ what: `rm ${step.path}`, run: () => sys.unlink(step.path) });
      return {};
    }
    case "write-decision": {
      const record = { decision, plan: { ...plan, steps: plan.steps.map((s) => s.op) }, timings };
      sys.writeFile(step.path, `${JSON.stringify(record, null, 2)}\n`, 0o644);
      undo.push({ what: `rm ${step.path}`, run: () => sys.unlink(step.path) });
      return {};
    }
    case "move-into-place":
      return moveIntoPlace(sys, step.staging, step.sysroot, o);
  }
}

/** Open once, measure on that fd, compare, mount that fd. */
function stageComposefs(
  sys: Sys,
  o: PrepareRootOptions,
  step: Extract<Step, { op: "composefs" }>,
  decision: Decision,
  undo: Undo[],
): Record<string, unknown> {
  const fd = openImage(sys, step.image);
  try {
    let digest: string | undefined;
    if (step.requireVerity || step.expectedDigests.length > 0) {
      let measured: ReturnType<Sys["measureVerity"]>;
      try {
        measured = sys.measureVerity(fd, step.image);
      } catch (e) {
        if (e instanceof SysError) throw new Refusal("image", e.message);
        throw e;
      }
      if (measured) {
        digest = toHex(measured.digest);
        if (decision.image) {
          decision.image.digest = digest;
          decision.image.measuredBy = "kernel";
        }
      }
      const problem = imageDigestProblem(step.image, digest, step.expectedDigests);
      if (problem !== undefined) throw new Refusal("image", problem);
    }
    const mountOpts: Parameters<typeof mountComposefs>[1] = {
      imageFd: fd,
      imagePath: step.image,
      target: step.target,
      objectDirs: step.objectDirs,
      imageMountDir: step.imageMountDir,
      requireVerity: step.requireVerity,
      readonly: step.readonly,
    };
    if (step.upperdir !== undefined) mountOpts.upperdir = step.upperdir;
    if (step.workdir !== undefined) mountOpts.workdir = step.workdir;
    if (o.force) mountOpts.force = o.force;
    // Registered before mounting: a failure after the overlay or the EROFS is attached (a close or the
    // final detach inside mountComposefs) must still take them down. EINVAL = nothing mounted there.
    undo.push({ what: `umount ${step.target}`, run: () => umountIfMounted(sys, step.target) });
    undo.push({ what: `umount ${step.imageMountDir}`, run: () => umountIfMounted(sys, step.imageMountDir) });
    const result = mountComposefs(sys, mountOpts);
    return { digest, erofs: result.erofs, overlay: result.overlay, fallbacks: result.fallbacks };
  } finally {
    sys.close(fd);
  }
}

/**
 * Extends the PCR with the boot's event (its composefs digest is the one just measured) and appends the
 * record to the userspace log. No TPM: the boot goes on and says why, unless the policy requires one. A
 * TPM that fails refuses the boot. A PCR extend cannot be undone: a later failure leaves it (and its
 * log record) in place, and a rerun extends again, which the log still replays.
 */
function measureBoot(sys: Sys, step: Extract<Step, { op: "measure" }>, d: Decision): Record<string, unknown> {
  const m = d.measurement;
  if (!m) throw new Refusal("measure", "Cannot measure the boot: the decision has no measurement");
  completeMeasurement(d);
  if (m.event === undefined)
    throw new Refusal("measure", `Cannot measure the boot: no event yet, expected ${m.pending}`);
  const where = `PCR ${step.pcr}`;
  let done: ReturnType<Sys["tpmMeasure"]>;
  try {
    done = sys.tpmMeasure(step.pcr, m.event);
  } catch (e) {
    if (e instanceof SealrootError)
      throw new Refusal("measure", `${e.message} (measuring the boot into ${where})`);
    throw e;
  }
  if (!done) {
    const none = `no TPM (${sys.tpmDevices.join(", ")})`;
    if (m.tpm === "required")
      throw new Refusal(
        "measure",
        `Cannot measure the boot into ${where}: ${none}, expected a TPM (${m.setBy.join(", ")})`,
      );
    m.skipped = `${none}: the boot is not measured`;
    return { skipped: m.skipped, event: m.event };
  }
  m.device = done.device;
  m.digests = done.digests.map((b) => ({ bank: b.bank, digest: toHex(b.digest) }));
  if (done.unsupported.length > 0) m.unsupported = done.unsupported;
  try {
    const stamp = sys.measureLogStamp();
    sys.appendMeasureLog(
      step.log,
      formatMeasureRecord({ pcr: step.pcr, digests: done.digests, event: m.event, ...stamp }),
    );
  } catch (e) {
    if (e instanceof SealrootError)
      throw new Refusal("measure", `${e.message} (after extending ${where} of ${q(done.device)})`);
    throw e;
  }
  m.log = step.log;
  return { device: done.device, banks: done.digests.map((b) => b.bank), event: m.event };
}

/** umount2(MNT_DETACH) for an undo step that may find nothing mounted (EINVAL: not a mount point). */
function umountIfMounted(sys: Sys, target: string): void {
  try {
    sys.umount2(target, MNT_DETACH);
  } catch (e) {
    if (e instanceof SysError && e.errno === "EINVAL") return;
    throw e;
  }
}

/** Reads the first non-empty regular file under `root` (breadth-first) through the verity overlay. */
function probe(sys: Sys, root: string): Record<string, unknown> {
  const queue = [""];
  let seen = 0;
  while (queue.length > 0 && seen < 100_000) {
    const rel = queue.shift() as string;
    for (const name of sys.readdir(rel ? `${root}/${rel}` : root).sort()) {
      seen++;
      const path = rel ? `${rel}/${name}` : name;
      const st = sys.lstat(`${root}/${path}`);
      if (st.kind === "file" && st.size > 0) {
        try {
          probeRead(sys, root, path);
        } catch (e) {
          if (e instanceof SysError) throw new Refusal("image", e.message);
          throw e;
        }
        return { probed: path };
      }
      if (st.kind === "dir") queue.push(path);
    }
  }
  return { probed: null };
}

/** `/run/systemd/volatile-root` → the sysroot's block device; best effort, as in ostree. */
function volatileRoot(
  sys: Sys,
  step: Extract<Step, { op: "symlink" }>,
  undo: Undo[],
): Record<string, unknown> {
  const dir = step.path.slice(0, step.path.lastIndexOf("/"));
  try {
    if (!sys.lstatIfExists(dir)) {
      sys.mkdir(dir, 0o755);
      undo.push({ what: `rmdir ${dir}`, run: () => sys.rmdir(dir) });
    }
    if (sys.lstatIfExists(step.path)) return { skipped: "exists" };
    sys.symlink(step.target, step.path);
    undo.push({ what: `rm ${step.path}`, run: () => sys.unlink(step.path) });
    return {};
  } catch (e) {
    if (e instanceof SysError) return { skipped: e.message };
    throw e;
  }
}

/**
 * The one step that changes SYSROOT: detach the physical root's mount there (it lives on inside the new
 * root as /sysroot) and move the staged root onto it. A detached clone of SYSROOT's mount tree is taken
 * first (open_tree, Linux 5.2) and attached back if the move fails, so SYSROOT keeps its exact mount and
 * flags; the staged /sysroot bind cannot stand in for it (it is read-only and carries the var bind).
 */
function moveIntoPlace(
  sys: Sys,
  staging: string,
  sysroot: string,
  o: PrepareRootOptions,
): Record<string, unknown> {
  const saved = cloneMountTree(sys, sysroot);
  try {
    sys.umount2(sysroot, MNT_DETACH);
    try {
      sys.mount(staging, sysroot, null, MS_MOVE, null);
    } catch (e) {
      try {
        if (saved === undefined) sys.mount(`${staging}/sysroot`, sysroot, null, MS_BIND, null);
        else sys.moveMount(saved, "", AT_FDCWD, sysroot, MOVE_MOUNT_F_EMPTY_PATH);
      } catch (restoreError) {
        // the move's error is the refusal's reason; the failed restore is logged as rollback() logs its own
        o.log({
          phase: "rollback",
          ok: false,
          ms: 0,
          what: `restore ${sysroot}`,
          error: messageOf(restoreError),
        });
      }
      throw e;
    }
  } finally {
    if (saved !== undefined) closeBestEffort(sys, saved, o);
  }
  try {
    sys.rmdir(staging);
  } catch (e) {
    // the staging directory is empty now; leaving it is harmless
    o.log({ phase: "cleanup", ok: false, ms: 0, error: messageOf(e) });
  }
  return {};
}

/** open_tree(OPEN_TREE_CLONE|AT_RECURSIVE); `undefined` before Linux 5.2 (ENOSYS), where the move's undo
 * can only bind the staged /sysroot back. */
function cloneMountTree(sys: Sys, path: string): number | undefined {
  try {
    return sys.openTree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  } catch (e) {
    if (e instanceof SysError && e.errno === "ENOSYS") return undefined;
    throw e;
  }
}

/** The clone's fd: once the move is done (or undone) nothing depends on it, so a failed close is logged. */
function closeBestEffort(sys: Sys, fd: number, o: PrepareRootOptions): void {
  try {
    sys.close(fd);
  } catch (e) {
    o.log({ phase: "cleanup", ok: false, ms: 0, error: messageOf(e) });
  }
}

function rollback(undo: Undo[], o: PrepareRootOptions): void {
  for (const u of undo.reverse()) {
    try {
      u.run();
    } catch (e) {
      o.log({
        phase: "rollback",
        ok: false,
        ms: 0,
        what: u.what,
        error: messageOf(e),
      });
    }
  }
}
