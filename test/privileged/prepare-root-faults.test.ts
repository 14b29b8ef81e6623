// Fault injection on the real system: prepareRoot() over the real Sys wrapped to throw a SysError at its
// k-th call, for every k of a good run (counted first), each scenario in one private mount namespace
// (run-prepare-root.ts loops over k, resetting SYSROOT and /run between runs). A failed run must leave
// SYSROOT's mounts, the mounts under /run and /run's listing (paths, modes, owners) exactly as before,
// and the next run without a fault must succeed with the good run's tree. The only calls whose failure may
// let the boot go on are the best-effort ones, and then the tree must be the good run's.

import { afterAll, describe, expect, it } from "vitest";
import {
  BASE_CMDLINE,
  freshCopy,
  inNamespace,
  removeCopies,
  TARGET,
  unavailable,
} from "./prepare-root-env.ts";
import type { FaultCase, Report, Scenario } from "./run-prepare-root.ts";

const why = unavailable();

/**
 * Calls whose failure does not stop a boot: the volatile-root symlink (lstat, mkdir /run/systemd, lstat,
 * symlink — best effort, as in ostree), the overlay's fsconfig probe with an unknown key (a failure is
 * its expected outcome), closing the clone of SYSROOT's mount once the move is done, removing the empty
 * staging directory.
 */
const BEST_EFFORT = new Set(["lstatIfExists", "mkdir", "symlink", "fsconfig", "close", "rmdir"]);

interface Case {
  name: string;
  scenario: Scenario;
  /** Stages a failed run may report. */
  stages: string[];
  /** Best-effort calls expected among the cases that still boot. */
  okCalls: string[];
}

const CASES: Case[] = [
  {
    name: "composefs on, modern kernel paths",
    scenario: { cmdline: `${BASE_CMDLINE} ot-composefs=on` },
    stages: ["target", "setup", "image", "mount", "measure", "record", "move"],
    okCalls: ["fsconfig", "lstatIfExists", "mkdir", "lstatIfExists", "symlink", "close", "rmdir"],
  },
  {
    name: "composefs on, loop device + mount(2) + lowerdir=A::B",
    scenario: {
      cmdline: `${BASE_CMDLINE} ot-composefs=on`,
      force: { erofsSource: "loop", mountApi: "legacy", overlayLayers: "legacy" },
    },
    stages: ["target", "setup", "image", "mount", "measure", "record", "move"],
    okCalls: ["lstatIfExists", "mkdir", "lstatIfExists", "symlink", "close", "rmdir"],
  },
  {
    name: "legacy bind mount (ot-composefs=off)",
    scenario: { cmdline: `${BASE_CMDLINE} ot-composefs=off` },
    stages: ["target", "image", "setup", "mount", "measure", "record", "move"], // image: reading whether .ostree.cfs exists
    okCalls: ["close", "rmdir"],
  },
];

const summary: string[] = [];

describe.skipIf(why !== undefined)(
  `prepare-root with one failing Sys call, for every call${why ? ` (skipped: ${why})` : ""}`,
  () => {
    afterAll(() => {
      removeCopies();
      process.stdout.write(`fault injection: ${summary.join("; ")}\n`);
    });

    describe.each(CASES)("$name", (c) => {
      let r: Report;
      let cases: FaultCase[];

      it("runs a good boot and then one faulted boot per call of it", () => {
        const copy = freshCopy();
        r = inNamespace({
          copy: copy.copy,
          phys: copy.phys,
          target: TARGET,
          scenario: c.scenario,
          faults: true,
        });
        expect(r.outcome.ok).toBe(true);
        cases = r.faults?.cases ?? [];
        expect(cases.length).toBe(r.faults?.calls.length);
        expect(cases.length).toBeGreaterThan(30);
        const by = new Map<string, number>();
        for (const x of cases) {
          const key = x.outcome === "refused" ? `refused at ${x.stage}` : x.outcome;
          by.set(key, (by.get(key) ?? 0) + 1);
        }
        summary.push(`${c.name}: ${cases.length} calls (${[...by].map(([k, n]) => `${n} ${k}`).join(", ")})`);
      });

      it("never throws out of prepareRoot(): every fault is a refusal or a best-effort step", () => {
        expect(cases.filter((x) => x.outcome === "threw")).toEqual([]);
      });

      it("leaves SYSROOT's mounts and /run exactly as before when it refuses, and the rerun boots", () => {
        const bad = cases
          .filter((x) => x.outcome === "refused")
          .filter((x) => !x.stateAsExpected || !x.rerunOk || !x.rerunTreeAsGood);
        expect(bad).toEqual([]);
        for (const x of cases.filter((x) => x.outcome === "refused")) {
          expect(c.stages).toContain(x.stage);
          expect(x.reason).toContain(`Cannot ${x.call}: EIO (injected fault)`);
        }
      });

      it("boots with the good run's tree when only a best-effort call failed", () => {
        const ok = cases.filter((x) => x.outcome === "ok");
        expect(ok.map((x) => x.call)).toEqual(c.okCalls);
        for (const x of ok) {
          expect(BEST_EFFORT.has(x.call)).toBe(true);
          expect(x.stateAsExpected).toBe(true);
        }
      });
    });
  },
);
