// The CI-sized slice of the fuzz tier (test/fuzz/README.md): every target of test/fuzz/harness.ts with a
// fixed seed for a few thousand inputs — the seeds verbatim, then mutants — asserting no finding (an
// exception other than the target's FormatError/UsageError, or an input over the 1 s cap). `npm run fuzz`
// runs the same table for ≥1,000,000 inputs per target. Also checks the harness itself.

import { describe, expect, it } from "vitest";
import { FormatError, UsageError } from "../../src/base/errors.ts";
import {
  b64,
  type Finding,
  inputFor,
  minimize,
  prepare,
  runRange,
  TARGETS,
  type Target,
} from "../fuzz/harness.ts";
import { bytes } from "../fuzz/mutate.ts";

const SEED = 20260601;
const INPUTS = 2500;

describe("fuzz slice: each parser returns or refuses with its typed error", () => {
  it.each(TARGETS.map((t) => [t.name, t] as const))(`%s: ${INPUTS} inputs, no finding`, (_name, target) => {
    const findings: Finding[] = [];
    const p = prepare(target);
    const s = runRange(p, {
      seed: SEED,
      from: 0,
      to: INPUTS,
      capMs: 1000,
      onFinding: (f) => findings.push(f),
    });
    expect(findings.map((f) => `${f.kind} #${f.iteration}: ${f.detail} — input ${f.input}`)).toEqual([]);
    expect(s.inputs).toBe(INPUTS);
    // the mutants reach past the first check: some inputs are accepted, and (except for the lenient
    // GVariant decoders, which never refuse data) some refused
    expect(s.returned).toBeGreaterThan(INPUTS / 50);
    if (!target.name.startsWith("commitmeta")) expect(s.refused).toBeGreaterThan(INPUTS / 50);
  });
});

describe("fuzz harness", () => {
  const FAKE: Target = {
    name: "fake",
    calls: "fake",
    seeds: () => [new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])],
    mutator: (s) => bytes(s),
    run: (b) => {
      if (b[0] === 0xff) throw new TypeError("boom");
      if (b[0] === 0xfe) throw new UsageError("Cannot fake: usage");
      if (b[0] === 0xfd) {
        const t = performance.now();
        while (performance.now() - t < 30) {
          // a slow input
        }
      }
      if (b.length < 4) throw new FormatError("Cannot fake: short");
    },
    refuses: [FormatError],
  };

  it("inputFor() gives the seeds first, then mutants that depend only on (seed, target, iteration)", () => {
    const p = prepare(TARGETS.find((t) => t.name === "commit")!);
    expect(inputFor(p, 1, 0)).toEqual(p.seeds[0]);
    expect(b64(inputFor(p, 1, 1234))).toBe(b64(inputFor(prepare(p.target), 1, 1234)));
    expect(b64(inputFor(p, 1, 1234))).not.toBe(b64(inputFor(p, 2, 1234)));
  });

  it("runRange() reports a crash, a wrong error class and a slow input once each, with the input", () => {
    const findings: Finding[] = [];
    const s = runRange(prepare(FAKE), {
      seed: 7,
      from: 0,
      to: 4000,
      capMs: 20,
      onFinding: (f) => findings.push(f),
    });
    const kinds = new Map(findings.map((f) => [f.kind, f]));
    expect([...kinds.keys()].sort()).toEqual(["crash", "slow", "wrong-error"]);
    expect(kinds.get("crash")!.detail).toBe("TypeError: boom");
    expect(kinds.get("wrong-error")!.detail).toBe("UsageError: Cannot fake: usage");
    expect(findings).toHaveLength(3);
    expect(s.findings).toBeGreaterThan(3);
    expect(s.refusedBy.FormatError).toBeGreaterThan(0);
    for (const f of findings) {
      expect(b64(inputFor(prepare(FAKE), 7, f.iteration))).toBe(f.input);
    }
    const crash = Buffer.from(kinds.get("crash")!.input, "base64");
    expect([...minimize(FAKE, new Uint8Array(crash))]).toEqual([0xff]);
  });
});
