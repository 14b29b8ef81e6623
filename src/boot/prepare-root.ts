// prepare-root, as a script: decide (policy, target, commit, signatures), plan, then run the plan's steps
// (boot/execute.ts) over the injected BootSys, whose undo log leaves SYSROOT's mounts and /run as they
// were when anything fails. The decision is made once and never changed: the record of the boot is the
// decision completed with what the steps found out. One structured event per phase goes to `log`; the
// caller prints the refusal line.

import { q, SealrootError, SysError } from "../base/errors.ts";
import type { KernelCmdline } from "../core/cmdline.ts";
import { type PrepareRootConfig, parseLegacyRepoReadonly } from "../core/config.ts";
import {
  bootRecord,
  type Decision,
  decideTrust,
  refused,
  rootAnchors,
  type Trust,
} from "../core/decision.ts";
import { type BootPlan, type PlanFacts, planBoot } from "../core/plan.ts";
import { MAX_KEYFILE_BYTES } from "../formats/keyfile.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import type { BootSys } from "../sys/types.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { executePlan, type FailedStage } from "./execute.ts";
import { type LogEvent, runPhase } from "./phase.ts";

export type { LogEvent };

export interface PrepareRootOptions {
  /** The physical root, mounted: absolute, no symlinks. */
  sysroot: string;
  /** The kernel command line, read once by the caller (core/cmdline.ts readKernelCmdline). */
  cmdline: KernelCmdline;
  config: PrepareRootConfig;
  /** Where key paths resolve ("/" in the initramfs). */
  keyRoot: string;
  /** "/run" at boot. */
  run: string;
  /** Bind the stateroot's var onto /var; default: only without systemd (no `<run>/systemd/system`). */
  mountVar?: boolean;
  /** The random part of `transient-etc.XXXXXX`. */
  etcSuffix: string;
  dryRun?: boolean;
  log: (e: LogEvent) => void;
  /** Milliseconds, monotonic; injected for tests. */
  now: () => number;
}

export interface PrepareRootResult {
  decision: Decision;
  plan?: BootPlan;
  /** The refused or failed stage (a refusal of the decision, or a step of the plan). */
  failed?: { stage: FailedStage; reason: string };
  timings: Record<string, number>;
}

export function prepareRoot(sys: BootSys, o: PrepareRootOptions): PrepareRootResult {
  const timings: Record<string, number> = {};
  const phase = <T>(name: string, fn: () => T, fields?: (r: T) => Record<string, unknown>): T =>
    runPhase(o, name, fn, fields, (ms) => {
      timings[name] = ms;
    });
  const stop = (decision: Decision, stage: FailedStage, reason: string, plan?: BootPlan) => {
    const r: PrepareRootResult = {
      decision: refused(decision, asStage(stage), reason),
      failed: { stage, reason },
      timings,
    };
    if (plan) r.plan = plan;
    return r;
  };

  // 1. decide: every check that needs no image bytes
  let trust: Trust;
  try {
    trust = phase("decide", () => decide(sys, o), logDecision);
  } catch (e) {
    // a read that fails outside the decision's own checks (e.g. lstat of the image): nothing is changed
    // yet, so this is a refusal like any other, not a crash
    if (!(e instanceof SealrootError)) throw e;
    return stop(emptyDecision(o.cmdline.text), "setup", e.message);
  }
  const { decision, deployment } = trust;
  if (decision.verdict === "refuse" || !deployment) {
    return {
      decision,
      failed: { stage: decision.stage ?? "policy", reason: decision.reason ?? "refused" },
      timings,
    };
  }

  // 2. plan: the exact steps, from the decision and a few facts about this system
  let plan: BootPlan;
  try {
    const legacy = trust.policy?.legacyReadonlyFallback === true;
    plan = phase(
      "plan",
      () => planBoot(decision, gatherFacts(sys, o, deployment.path, legacy)),
      (p) => ({ steps: p.steps.length, composefs: p.composefs }),
    );
  } catch (e) {
    if (!(e instanceof SealrootError)) throw e;
    return stop(decision, "setup", e.message);
  }
  if (o.dryRun) return { decision, plan, timings };

  // 3. run it: measure and mount the image, bind /etc, /sysroot and /var, measure, record, move
  const run = executePlan(sys, plan, decision, { phase, log: o.log, timings });
  if (run.failed) return stop(decision, run.failed.stage, run.failed.reason, plan);
  return { decision: bootRecord(decision, run.outcome), plan, timings };
}

function decide(sys: BootSys, o: PrepareRootOptions): Trust {
  return decideTrust({
    fs: sys,
    sysroot: o.sysroot,
    cmdline: o.cmdline,
    config: o.config,
    anchors: rootAnchors(sys, o.keyRoot, o.sysroot),
    openRepo: (path) => OstreeRepo.open(sys, path, { inflateRaw }),
  });
}

function logDecision(t: Trust): Record<string, unknown> {
  const d = t.decision;
  return {
    verdict: d.verdict,
    stage: d.stage,
    deployment: d.deployment?.path,
    expected: d.expectedDigests,
    keySets: d.keySets.map((k) => ({ path: k.path, verifiedBy: k.verifiedBy })),
  };
}

function emptyDecision(cmdline: string): Decision {
  return { verdict: "refuse", cmdline, keySets: [], expectedDigests: [], applied: [], overruled: [] };
}

/** The decision's own stage for a refusal by one of its checks; a failed step leaves it unset. */
function asStage(stage: FailedStage): Decision["stage"] {
  return stage === "setup" || stage === "mount" || stage === "record" || stage === "move" ? undefined : stage;
}

/** Facts about the running system that the pure plan needs. */
function gatherFacts(
  sys: BootSys,
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
