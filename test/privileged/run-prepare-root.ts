// Child program for the prepare-root acceptance tests, run as root inside `unshare -m --propagation
// private` under Bun. argv[2] is a JSON Spec: it binds the sysroot copy on SYSROOT, mounts a fresh tmpfs on
// /run, runs one prepare-root (the compiled binary, or prepareRoot() in this process over the real Sys),
// and prints one JSON Report line: the mount table under SYSROOT and /run and a listing of /run before and
// after, the records written, and the files asked for. With `faults`, it then reruns the scenario once per
// Sys call of a good run with that call failing. Everything it mounts dies with the namespace.

import { spawnSync } from "node:child_process";
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type LogEvent, type PrepareRootResult, prepareRoot } from "../../src/boot/prepare-root.ts";
import { readKernelCmdline } from "../../src/core/cmdline.ts";
import { emptyConfig, parsePrepareRootConfig } from "../../src/core/config.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { bootSys } from "../../src/sys/boot-sys.ts";
import { MNT_DETACH, MS_BIND } from "../../src/sys/ffi/libc.ts";
import type { CompatForce } from "../../src/sys/kernel-compat.ts";
import { realSys } from "../../src/sys/real.ts";
import type { Sys } from "../../src/sys/types.ts";
import { failKth, Recorder } from "../helpers/recorder.ts";
import { type Entry, walk } from "./tree-walk.ts";

export interface Scenario {
  /** The kernel command line of an in-process run (a binary run passes its own in `exec`). */
  cmdline?: string;
  /** A prepare-root.conf (`--config`); none: no config file at all. */
  config?: string;
  force?: CompatForce;
  mountVar?: boolean;
  /** Run this program (the binary, or a link to it) with these arguments ("SYSROOT" is replaced) instead
   * of prepareRoot() in this process. */
  exec?: { program: string; args: string[] };
  /** Bound over /proc/cmdline (in this namespace) before `exec` runs: the kernel command line of a run
   * that reads it, as the initramfs's `sealroot prepare-root /sysroot` does. */
  procCmdline?: string;
}

export interface Spec {
  /** The directory holding the physical root (a copy of the extracted sysroot). */
  copy: string;
  /** SYSROOT: where `copy` is bound before each run. */
  phys: string;
  /** `ostree=` path, to report the deployment directory's stat. */
  target: string;
  scenario: Scenario;
  /** Paths relative to SYSROOT listed (tree-walk) after the run. */
  inspect?: string[];
  /** Walk SYSROOT/usr after the run. */
  walkUsr?: boolean;
  /** Fault injection: every call of a good in-process run, failing one at a time. */
  faults?: boolean;
}

/** One mount under SYSROOT or /run, from /proc/self/mountinfo, without the numbers that change per mount. */
export interface MountLine {
  target: string;
  parent: string;
  root: string;
  options: string;
  fstype: string;
  source: string;
  superOptions: string;
  /** major:minor, except anonymous devices (0:N, new for every tmpfs/overlay mount). */
  dev: string;
}

export interface Snapshot {
  mounts: MountLine[];
  run: Entry[];
}

export interface Outcome {
  ok: boolean;
  failed?: PrepareRootResult["failed"];
  /** prepareRoot() threw instead of returning (a bug: it must return a refusal). */
  threw?: string;
  exit?: number | null;
  stdout?: string;
  stderr?: string;
  /** In-process runs: the phases logged, in order. */
  phases?: string[];
}

export interface FaultCase {
  k: number;
  call: string;
  outcome: "refused" | "ok" | "threw";
  stage?: string;
  reason?: string;
  /** Refused: SYSROOT's mounts and /run equal to before the run. Ok: the tree equals a good run's. */
  stateAsExpected: boolean;
  diff?: { before: Snapshot; after: Snapshot };
  /** The run after it, without a fault. */
  rerunOk: boolean;
  rerunTreeAsGood: boolean;
}

export interface FaultReport {
  calls: string[];
  cases: FaultCase[];
}

export interface Report {
  deployment: { path: string; dev: number; ino: number };
  before: Snapshot;
  outcome: Outcome;
  after: Snapshot;
  ostreeBooted?: string;
  decision?: unknown;
  /** /run/log/systemd/tpm2-measure.log after the run, when there is one. */
  measureLog?: string;
  entries?: Entry[];
  usr?: Entry[];
  faults?: FaultReport;
}

const RUN = "/run";

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

export function mounts(roots: string[]): MountLine[] {
  const lines = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean);
  const byId = new Map<string, string>();
  for (const line of lines) {
    const f = line.split(" ");
    byId.set(f[0] as string, f[4] as string);
  }
  const out: MountLine[] = [];
  for (const line of lines) {
    const f = line.split(" ");
    const target = f[4] as string;
    if (!roots.some((r) => under(target, r))) continue;
    const dash = f.indexOf("-");
    const dev = f[2] as string;
    out.push({
      target,
      parent: byId.get(f[1] as string) ?? "?",
      root: f[3] as string,
      options: f[5] as string,
      fstype: f[dash + 1] as string,
      source: f[dash + 2] as string,
      superOptions: f[dash + 3] as string,
      dev: dev.startsWith("0:") ? "anon" : dev,
    });
  }
  return out.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
}

function snapshot(phys: string): Snapshot {
  return { mounts: mounts([phys, RUN]), run: walk(RUN) };
}

function detachAll(point: string): void {
  for (let i = 0; mounts([point]).some((m) => m.target === point); i++) {
    if (i > 64) throw new Error(`cannot clear the mounts at ${point}`);
    realSys.umount2(point, MNT_DETACH);
  }
}

/** SYSROOT = a bind of the copy, /run = an empty tmpfs; whatever a previous run left is detached. */
function reset(spec: Spec): void {
  detachAll(spec.phys);
  detachAll(RUN);
  realSys.mount("tmpfs", RUN, "tmpfs", 0, "mode=0755");
  realSys.mount(spec.copy, spec.phys, null, MS_BIND, null);
}

function runInProcess(spec: Spec, sys: Sys): Outcome {
  const s = spec.scenario;
  if (s.cmdline === undefined) throw new Error("an in-process scenario needs a cmdline");
  const phases: string[] = [];
  const log = (e: LogEvent) => {
    phases.push(e.ok ? e.phase : `${e.phase}!`);
  };
  try {
    const r = prepareRoot(bootSys(sys, s.force ? { force: s.force } : {}), {
      sysroot: spec.phys,
      cmdline: readKernelCmdline(s.cmdline),
      config:
        s.config !== undefined ? parsePrepareRootConfig(readFileSync(s.config), s.config) : emptyConfig(),
      keyRoot: "/",
      run: RUN,
      ...(s.mountVar !== undefined ? { mountVar: s.mountVar } : {}),
      etcSuffix: "000000",
      log,
      now: () => performance.now(),
    });
    return r.failed ? { ok: false, failed: r.failed, phases } : { ok: true, phases };
  } catch (e) {
    return { ok: false, threw: e instanceof Error ? `${e.name}: ${e.message}` : String(e), phases };
  }
}

function runExec(spec: Spec): Outcome {
  const x = spec.scenario.exec as NonNullable<Scenario["exec"]>;
  if (spec.scenario.procCmdline !== undefined) {
    const file = join(spec.copy, "..", "proc-cmdline");
    writeFileSync(file, `${spec.scenario.procCmdline}\n`);
    realSys.mount(file, "/proc/cmdline", null, MS_BIND, null);
  }
  const r = spawnSync(
    x.program,
    x.args.map((a) => (a === "SYSROOT" ? spec.phys : a)),
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  return { ok: r.status === 0, exit: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The real Sys with each call recorded by its name (test/helpers/recorder.ts) and the `k`-th (1-based)
 * failing with EIO before it runs; none fails for k = 0. */
export function faultySys(k: number): { sys: Sys; calls: string[] } {
  const recorder = new Recorder(k > 0 ? failKth(k, "EIO") : undefined);
  const sys = new Proxy(realSys, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) =>
        recorder.rec(String(prop), () => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
  return { sys, calls: recorder.calls };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function faultLoop(spec: Spec): FaultReport {
  reset(spec);
  const { sys, calls } = faultySys(0);
  const good = runInProcess(spec, sys);
  if (!good.ok) throw new Error(`the good run failed: ${JSON.stringify(good)}`);
  const goodTree = mounts([spec.phys, RUN]);
  const cases: FaultCase[] = [];
  for (let k = 1; k <= calls.length; k++) {
    reset(spec);
    const before = snapshot(spec.phys);
    const faulty = faultySys(k);
    const r = runInProcess(spec, faulty.sys);
    const after = snapshot(spec.phys);
    const outcome = r.threw !== undefined ? "threw" : r.ok ? "ok" : "refused";
    const stateAsExpected = r.ok ? sameJson(after.mounts, goodTree) : sameJson(before, after);
    let rerunOk = r.ok;
    let rerunTreeAsGood = r.ok && stateAsExpected;
    if (!r.ok) {
      const again = runInProcess(spec, realSys);
      rerunOk = again.ok;
      rerunTreeAsGood = sameJson(mounts([spec.phys, RUN]), goodTree);
    }
    // the recorded line is `name` or `name → ERRNO`
    const call = faulty.calls[k - 1]?.split(" ")[0] ?? "?";
    const c: FaultCase = { k, call, outcome, stateAsExpected, rerunOk, rerunTreeAsGood };
    if (r.failed) {
      c.stage = r.failed.stage;
      c.reason = r.failed.reason;
    }
    if (r.threw !== undefined) c.reason = r.threw;
    if (!stateAsExpected) c.diff = { before, after };
    cases.push(c);
  }
  return { calls, cases };
}

export function run(spec: Spec): Report {
  reset(spec);
  const depPath = realpathSync(join(spec.phys, spec.target));
  const st = realSys.stat(depPath);
  const before = snapshot(spec.phys);
  const outcome = spec.scenario.exec ? runExec(spec) : runInProcess(spec, realSys);
  const after = snapshot(spec.phys);
  const report: Report = {
    deployment: { path: depPath, dev: st.dev, ino: st.ino },
    before,
    outcome,
    after,
  };
  const booted = realSys.readFileIfExists(`${RUN}/ostree-booted`, 1 << 20);
  if (booted) report.ostreeBooted = toHex(booted);
  const decision = realSys.readFileIfExists(`${RUN}/sealroot/decision.json`, 1 << 20);
  if (decision) report.decision = JSON.parse(new TextDecoder().decode(decision));
  const measureLog = realSys.readFileIfExists(`${RUN}/log/systemd/tpm2-measure.log`, 1 << 20);
  if (measureLog) report.measureLog = new TextDecoder().decode(measureLog);
  if (spec.inspect) {
    report.entries = spec.inspect.flatMap((rel) =>
      walk(join(spec.phys, rel)).map((e) => ({ ...e, path: e.path === "." ? rel : `${rel}/${e.path}` })),
    );
  }
  if (spec.walkUsr && outcome.ok) report.usr = walk(join(spec.phys, "usr"));
  if (spec.faults) report.faults = faultLoop(spec);
  return report;
}

// Bun sets import.meta.main for the entry module; vitest imports this file for its types.
if ((import.meta as { main?: boolean }).main) {
  const arg = process.argv[2];
  if (arg === undefined) throw new Error("usage: run-prepare-root.ts SPEC_JSON");
  process.stdout.write(`${JSON.stringify(run(JSON.parse(arg) as Spec))}\n`);
}
