// Runs a boot plan (core/plan.ts) step by step over the intents of `BootSys`, each step one logged
// phase, every change recorded in an undo log: when a step fails, the log is run in reverse so SYSROOT's
// mounts and /run are as they were and a rerun works. Steps hand values on in a `BootOutcome` (the
// image's digest measured by the kernel, what the TPM did) instead of patching the decision, which stays
// as it was made; the record written and returned is `bootRecord(decision, outcome)`.

import { messageOf, q, SealrootError, SysError } from "../base/errors.ts";
import {
  type BootOutcome,
  bootRecord,
  type Decision,
  imageDigestProblem,
  type Stage,
} from "../core/decision.ts";
import { formatMeasureRecord } from "../core/measure.ts";
import type { BootPlan, Step } from "../core/plan.ts";
import { encodeOstreeBooted } from "../core/records.ts";
import { toHex } from "../formats/bytes.ts";
import type { BootSys } from "../sys/types.ts";
import type { LogEvent } from "./phase.ts";

/** Where a boot stopped: a check of the decision, or a step of the plan. */
export type FailedStage = Stage | "setup" | "mount" | "record" | "move";

export interface ExecuteContext {
  /** Runs one step as a logged, timed phase (boot/phase.ts). */
  phase: <T>(name: string, fn: () => T, fields?: (r: T) => Record<string, unknown>) => T;
  log: (e: LogEvent) => void;
  /** The phases' durations so far, for the decision record. */
  timings: Record<string, number>;
}

export interface Execution {
  outcome: BootOutcome;
  failed?: { stage: FailedStage; reason: string };
}

/** A refusal raised by a step (image digest, verity probe, TPM): its stage is the check's. */
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

/** Everything one step needs: the system, the plan and decision, what earlier steps found, the undo log. */
interface Run {
  sys: BootSys;
  plan: BootPlan;
  decision: Decision;
  outcome: BootOutcome;
  undo: Undo[];
  ctx: ExecuteContext;
}

export function executePlan(
  sys: BootSys,
  plan: BootPlan,
  decision: Decision,
  ctx: ExecuteContext,
): Execution {
  const run: Run = { sys, plan, decision, outcome: {}, undo: [], ctx };
  let current: Step | undefined;
  try {
    for (const step of plan.steps) {
      current = step;
      ctx.phase(
        step.op,
        () => runStep(run, step),
        (r) => ({ ...describe(step), ...r }),
      );
    }
  } catch (e) {
    // undone whatever the error: a bug (a non-SealrootError, rethrown) must not leave mounts behind either
    rollback(run.undo, ctx);
    if (!(e instanceof SealrootError)) throw e;
    const stage = e instanceof Refusal ? e.stage : stageOf(current);
    return { outcome: run.outcome, failed: { stage, reason: e.message } };
  }
  return { outcome: run.outcome };
}

function runStep(r: Run, step: Step): Record<string, unknown> {
  const { sys, undo } = r;
  switch (step.op) {
    case "mkdir":
      sys.mkdir(step.path, step.mode);
      undo.push({ what: `rmdir ${step.path}`, run: () => sys.rmdir(step.path) });
      return {};
    case "make-rprivate":
      sys.makePrivate(step.path);
      return {};
    case "composefs":
      return mountImage(r, step);
    case "probe":
      return probe(sys, step.root);
    case "bind":
      sys.bind(step.source, step.target);
      undo.push({ what: `umount ${step.target}`, run: () => sys.unmount(step.target) });
      if (step.readonly) sys.remountReadonly(step.target);
      return {};
    case "remount-ro":
      sys.remountReadonly(step.target);
      return {};
    case "overlay":
      sys.mountOverlay(step.target, {
        lowerdir: step.lowerdir,
        upperdir: step.upperdir,
        workdir: step.workdir,
      });
      undo.push({ what: `umount ${step.target}`, run: () => sys.unmount(step.target) });
      return {};
    case "symlink":
      return volatileRoot(sys, step, undo);
    case "measure":
      return measureBoot(r, step);
    case "write-ostree-booted": {
      const b = r.plan.ostreeBooted;
      const rec = { ...b, deploymentDev: BigInt(b.deploymentDev), deploymentIno: BigInt(b.deploymentIno) };
      writeRecord(r, step.path, encodeOstreeBooted(rec));
      return {};
    }
    case "write-decision": {
      const record = {
        decision: bootRecord(r.decision, r.outcome),
        plan: { ...r.plan, steps: r.plan.steps.map((s) => s.op) },
        timings: r.ctx.timings,
      };
      writeRecord(r, step.path, `${JSON.stringify(record, null, 2)}\n`);
      return {};
    }
    case "move-into-place":
      sys.replaceMount(step.staging, step.sysroot, (phase, what, e) =>
        r.ctx.log({ phase, ok: false, ms: 0, what, error: messageOf(e) }),
      );
      try {
        sys.rmdir(step.staging);
      } catch (e) {
        // the staging directory is empty now; leaving it is harmless
        r.ctx.log({ phase: "cleanup", ok: false, ms: 0, error: messageOf(e) });
      }
      return {};
  }
}

function writeRecord(r: Run, path: string, data: Uint8Array | string): void {
  r.sys.writeFile(path, data, 0o644);
  r.undo.push({ what: `rm ${path}`, run: () => r.sys.unlink(path) });
}

/** Open once, measure on that fd, compare, mount that fd. The digest is the step's value. */
function mountImage(r: Run, step: Extract<Step, { op: "composefs" }>): Record<string, unknown> {
  const { sys, undo } = r;
  const fd = sys.openImage(step.image);
  try {
    let digest: string | undefined;
    if (step.requireVerity || step.expectedDigests.length > 0) {
      let measured: ReturnType<BootSys["measureVerity"]>;
      try {
        measured = sys.measureVerity(fd, step.image);
      } catch (e) {
        if (e instanceof SysError) throw new Refusal("image", e.message);
        throw e;
      }
      if (measured) {
        digest = toHex(measured.digest);
        r.outcome.imageDigest = digest;
      }
      const problem = imageDigestProblem(step.image, digest, step.expectedDigests);
      if (problem !== undefined) throw new Refusal("image", problem);
    }
    // Registered before mounting: a failure after the overlay or the EROFS is attached (a close or the
    // final detach inside the mount) must still take them down.
    undo.push({ what: `umount ${step.target}`, run: () => sys.unmount(step.target) });
    undo.push({ what: `umount ${step.imageMountDir}`, run: () => sys.unmount(step.imageMountDir) });
    const { op: _op, image, expectedDigests: _e, ...layers } = step;
    const result = sys.mountComposefs({ ...layers, imageFd: fd, imagePath: image });
    return { digest, erofs: result.erofs, overlay: result.overlay, fallbacks: result.fallbacks };
  } finally {
    sys.close(fd);
  }
}

/**
 * Extends the PCR with the boot's event (its composefs digest is the one the composefs step measured)
 * and appends the record to the userspace log. No TPM: the boot goes on and says why, unless the policy
 * requires one. A TPM that fails refuses the boot. A PCR extend cannot be undone: a later failure leaves
 * it (and its log record) in place, and a rerun extends again, which the log still replays.
 */
function measureBoot(r: Run, step: Extract<Step, { op: "measure" }>): Record<string, unknown> {
  const { sys } = r;
  const m = bootRecord(r.decision, r.outcome).measurement;
  if (!m) throw new Refusal("measure", "Cannot measure the boot: the decision has no measurement");
  if (m.event === undefined)
    throw new Refusal("measure", `Cannot measure the boot: no event yet, expected ${m.pending}`);
  const where = `PCR ${step.pcr}`;
  let done: ReturnType<BootSys["tpmMeasure"]>;
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
    r.outcome.measured = { skipped: `${none}: the boot is not measured` };
    return { skipped: r.outcome.measured.skipped, event: m.event };
  }
  const measured: NonNullable<BootOutcome["measured"]> = {
    device: done.device,
    digests: done.digests.map((b) => ({ bank: b.bank, digest: toHex(b.digest) })),
  };
  if (done.unsupported.length > 0) measured.unsupported = done.unsupported;
  r.outcome.measured = measured;
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
  measured.log = step.log;
  return { device: done.device, banks: done.digests.map((b) => b.bank), event: m.event };
}

/** Reads the first non-empty regular file under `root` (breadth-first) through the verity overlay. */
function probe(sys: BootSys, root: string): Record<string, unknown> {
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
          sys.probeRead(root, path);
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
  sys: BootSys,
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

function stageOf(step: Step | undefined): FailedStage {
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

function rollback(undo: Undo[], ctx: ExecuteContext): void {
  for (const u of undo.reverse()) {
    try {
      u.run();
    } catch (e) {
      ctx.log({ phase: "rollback", ok: false, ms: 0, what: u.what, error: messageOf(e) });
    }
  }
}
