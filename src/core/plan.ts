// The boot plan: from a `boot` decision and a few facts about the running system to the exact list of
// steps that prepare the new root, in ostree-prepare-root 2026.4's order (anchors.md §1.6) but built under
// a staging mount point and moved onto SYSROOT only at the end. Pure and serializable: `--dry-run` prints
// it, the executor in src/boot/ runs it step by step and undoes what it did when a step fails.

import { q, UsageError } from "../base/errors.ts";
import type { Decision } from "./decision.ts";
import { MEASURE_LOG_PATH } from "./measure.ts";
import type { OstreeBootedRecord } from "./records.ts";

export interface PlanFacts {
  /** The physical root, mounted (absolute, no symlinks). */
  sysroot: string;
  /** Where runtime records go: "/run" at boot. */
  run: string;
  /** st_dev / st_ino of the deployment directory (decimal strings: 64-bit). */
  deploymentDev: string;
  deploymentIno: string;
  /** major:minor of the device holding SYSROOT, for /run/systemd/volatile-root. */
  sysrootDevice: string;
  /** Bind the stateroot's var onto /var (non-systemd initramfs; systemd's generator does it otherwise). */
  mountVar: boolean;
  /** The random part of `transient-etc.XXXXXX`. */
  etcSuffix: string;
  /** `[sysroot] readonly` of `<sysroot>/ostree/repo/config`, read when the policy falls back to it. */
  legacyRepoReadonly: boolean;
  /** Whether `<run>/sealroot` exists already (then it is not created, nor removed on failure). */
  runSealrootExists: boolean;
}

export type Step =
  | { op: "mkdir"; path: string; mode: number }
  | { op: "make-rprivate"; path: string }
  | {
      op: "composefs";
      image: string;
      target: string;
      objectDirs: string[];
      imageMountDir: string;
      requireVerity: boolean;
      expectedDigests: { hex: string; source: string }[];
      upperdir?: string;
      workdir?: string;
      readonly: boolean;
    }
  | { op: "probe"; root: string }
  | { op: "bind"; source: string; target: string; readonly: boolean }
  | { op: "remount-ro"; target: string }
  | { op: "overlay"; target: string; lowerdir: string; upperdir: string; workdir: string }
  | { op: "symlink"; target: string; path: string; bestEffort: true }
  | { op: "measure"; pcr: number; log: string }
  | { op: "write-ostree-booted"; path: string }
  | { op: "write-decision"; path: string }
  | { op: "move-into-place"; staging: string; sysroot: string };

export interface BootPlan {
  sysroot: string;
  staging: string;
  deployment: string;
  composefs: boolean;
  sysrootReadonly: boolean;
  /** `/run/ostree-booted`'s content, dev/ino as decimal strings (JSON); the executor encodes it. */
  ostreeBooted: Omit<OstreeBootedRecord, "deploymentDev" | "deploymentIno"> & {
    deploymentDev: string;
    deploymentIno: string;
  };
  steps: Step[];
}

export function planBoot(d: Decision, f: PlanFacts): BootPlan {
  if (d.verdict !== "boot" || !d.deployment || d.useComposefs === undefined) {
    throw new UsageError(`Cannot plan a boot that was refused: ${d.reason ?? "no decision"}`);
  }
  const deploy = d.deployment.path;
  const runOstree = `${f.run}/ostree`;
  const priv = `${runOstree}/.private`;
  const runSealroot = `${f.run}/sealroot`;
  const staging = `${runSealroot}/staging`;
  const composefs = d.useComposefs;
  const transient = d.rootTransient === true || d.rootTransientRo === true;
  if (transient && !composefs) {
    throw new UsageError(
      "Cannot make a transient root without composefs: root.transient needs the composefs mount",
    );
  }
  if (!composefs && (d.expectedDigests.length > 0 || d.verityRequired === true)) {
    throw new UsageError(
      "Cannot plan the legacy bind mount: the decision requires an image digest or fs-verity, expected the composefs mount (the only one that checks them)",
    );
  }
  const readonly = d.sysrootReadonly === true || (!composefs && f.legacyRepoReadonly);
  // an expected digest vouches for the image only; overlayfs verity=require extends it to the backing
  // objects, so a digest implies it whatever the decision says (the policy already pairs them)
  const verity = d.verityRequired === true || d.expectedDigests.length > 0;

  const steps: Step[] = [
    { op: "mkdir", path: runOstree, mode: 0o755 },
    { op: "mkdir", path: priv, mode: 0o000 },
  ];
  if (!f.runSealrootExists) steps.push({ op: "mkdir", path: runSealroot, mode: 0o755 });
  steps.push({ op: "mkdir", path: staging, mode: 0o755 }, { op: "make-rprivate", path: "/" });

  if (composefs) {
    const lower = `${priv}/cfsroot-lower`;
    steps.push({ op: "mkdir", path: lower, mode: 0o700 });
    const layers: { upperdir?: string; workdir?: string } = {};
    if (transient) {
      steps.push(
        { op: "mkdir", path: `${priv}/root`, mode: 0o755 },
        { op: "mkdir", path: `${priv}/root/upper`, mode: 0o755 },
        { op: "mkdir", path: `${priv}/root/work`, mode: 0o700 },
      );
      layers.upperdir = `${priv}/root/upper`;
      layers.workdir = `${priv}/root/work`;
    }
    steps.push({
      op: "composefs",
      image: d.image?.path ?? `${deploy}/.ostree.cfs`,
      target: staging,
      objectDirs: [`${f.sysroot}/ostree/repo/objects`],
      imageMountDir: lower,
      requireVerity: verity,
      expectedDigests: d.expectedDigests,
      ...layers,
      readonly: !transient || d.rootTransientRo === true,
    });
    if (verity) steps.push({ op: "probe", root: staging });
    steps.push({
      op: "symlink",
      target: `/dev/block/${f.sysrootDevice}`,
      path: `${f.run}/systemd/volatile-root`,
      bestEffort: true,
    });
  } else {
    steps.push({ op: "bind", source: deploy, target: staging, readonly: false });
  }

  // /etc: only when something makes the root differ from a plain writable deployment (as ostree)
  let transientEtc: string | undefined;
  if (readonly || composefs || transient) {
    if (d.etcTransient) {
      transientEtc = `${runOstree}/transient-etc.${f.etcSuffix}`;
      steps.push(
        { op: "mkdir", path: transientEtc, mode: 0o700 },
        { op: "mkdir", path: `${transientEtc}/upper`, mode: 0o755 },
        { op: "mkdir", path: `${transientEtc}/work`, mode: 0o755 },
        {
          op: "overlay",
          target: `${staging}/etc`,
          lowerdir: `${staging}/usr/etc`,
          upperdir: `${transientEtc}/upper`,
          workdir: `${transientEtc}/work`,
        },
      );
    } else {
      steps.push({ op: "bind", source: `${deploy}/etc`, target: `${staging}/etc`, readonly: false });
    }
  }
  if (!composefs)
    steps.push({ op: "bind", source: `${staging}/usr`, target: `${staging}/usr`, readonly: true });

  // the physical root inside the new one; the stateroot's var stays writable when the sysroot is read-only
  const stagedSysroot = `${staging}/sysroot`;
  const varDir = `${stagedSysroot}/${relativeVar(d, f)}`;
  steps.push({ op: "bind", source: f.sysroot, target: stagedSysroot, readonly: false });
  if (readonly) steps.push({ op: "bind", source: varDir, target: varDir, readonly: false });
  if (f.mountVar) steps.push({ op: "bind", source: varDir, target: `${staging}/var`, readonly: false });
  if (readonly) steps.push({ op: "remount-ro", target: stagedSysroot });

  const ostreeBooted: BootPlan["ostreeBooted"] = {
    deploymentDev: f.deploymentDev,
    deploymentIno: f.deploymentIno,
    rootTransient: transient,
    rootTransientRo: d.rootTransientRo === true,
    sysrootRo: readonly,
  };
  const signedBy = d.keySets[0];
  if (signedBy) ostreeBooted.signedKeypath = signedBy.path;
  if (composefs) ostreeBooted.composefs = { verity };
  if (transientEtc !== undefined) ostreeBooted.transientEtc = transientEtc;

  // every check has passed: measure what boots, then record it and move it into place
  const m = d.measurement;
  if (m && m.tpm !== "off") {
    steps.push({ op: "measure", pcr: m.pcr, log: `${f.run}/${MEASURE_LOG_PATH.slice("/run/".length)}` });
  }
  steps.push(
    { op: "write-ostree-booted", path: `${f.run}/ostree-booted` },
    { op: "write-decision", path: `${runSealroot}/decision.json` },
    { op: "move-into-place", staging, sysroot: f.sysroot },
  );
  return {
    sysroot: f.sysroot,
    staging,
    deployment: deploy,
    composefs,
    sysrootReadonly: readonly,
    ostreeBooted,
    steps,
  };
}

/** `ostree/deploy/<stateroot>/var`, relative to the sysroot. */
function relativeVar(d: Decision, f: PlanFacts): string {
  const dep = d.deployment;
  if (!dep?.path.startsWith(`${f.sysroot}/`)) {
    throw new UsageError(`Cannot place /var: deployment ${q(dep?.path ?? "")} is not inside ${q(f.sysroot)}`);
  }
  return `ostree/deploy/${dep.stateroot}/var`;
}
