import { describe, expect, it } from "vitest";
import type { Decision } from "./decision.ts";
import { type PlanFacts, planBoot } from "./plan.ts";

// The boot plan as a table: for each kind of decision, the exact step sequence (op and target) that
// prepare-root will run, in ostree-prepare-root 2026.4's order, ending with the move into place.
const DEP = "/sysroot/ostree/deploy/os/deploy/c.0";
const facts: PlanFacts = {
  sysroot: "/sysroot",
  run: "/run",
  deploymentDev: "65024",
  deploymentIno: "42",
  sysrootDevice: "254:0",
  mountVar: true,
  etcSuffix: "abc123",
  legacyRepoReadonly: false,
  runSealrootExists: false,
};

function decision(over: Partial<Decision>): Decision {
  return {
    verdict: "boot",
    cmdline: "",
    keySets: [],
    expectedDigests: [],
    applied: [],
    overruled: [],
    useComposefs: true,
    verityRequired: false,
    sysrootReadonly: true,
    etcTransient: false,
    rootTransient: false,
    rootTransientRo: false,
    deployment: { path: DEP, stateroot: "os", commit: "c", serial: 0 },
    image: { path: `${DEP}/.ostree.cfs`, present: true },
    ...over,
  };
}

const S = "/run/sealroot/staging";
const HEAD = [
  "mkdir /run/ostree",
  "mkdir /run/ostree/.private",
  "mkdir /run/sealroot",
  `mkdir ${S}`,
  "make-rprivate /",
];
const TAIL = [
  "write-ostree-booted /run/ostree-booted",
  "write-decision /run/sealroot/decision.json",
  `move-into-place ${S}`,
];
const COMPOSEFS = ["mkdir /run/ostree/.private/cfsroot-lower", `composefs ${S}`];
const SYSROOT_RO = [
  `bind ${S}/sysroot`,
  `bind ${S}/sysroot/ostree/deploy/os/var`,
  `bind ${S}/var`,
  `remount-ro ${S}/sysroot`,
];

function ops(d: Decision, f: Partial<PlanFacts> = {}): string[] {
  return planBoot(d, { ...facts, ...f }).steps.map((s) => {
    const where =
      s.op === "symlink"
        ? s.path
        : "target" in s
          ? s.target
          : "path" in s
            ? s.path
            : "staging" in s
              ? s.staging
              : "root" in s
                ? s.root
                : "";
    return `${s.op} ${where}`;
  });
}

describe("planBoot()", () => {
  const rows: [string, Decision, Partial<PlanFacts>, string[]][] = [
    [
      "composefs, signed (verity + digest): probe after the mount, /etc bound, sysroot read-only",
      decision({
        verityRequired: true,
        expectedDigests: [{ hex: "ab", source: "signed" }],
        keySets: [{ path: "/k", requiredBy: [], keys: 1, problems: [] }],
      }),
      {},
      [
        ...HEAD,
        ...COMPOSEFS,
        `probe ${S}`,
        "symlink /run/systemd/volatile-root",
        `bind ${S}/etc`,
        ...SYSROOT_RO,
        ...TAIL,
      ],
    ],
    [
      "composefs, unsigned: no probe",
      decision({}),
      {},
      [...HEAD, ...COMPOSEFS, "symlink /run/systemd/volatile-root", `bind ${S}/etc`, ...SYSROOT_RO, ...TAIL],
    ],
    [
      "legacy bind, writable sysroot: no /etc bind (as ostree), /usr read-only, no var self-bind",
      decision({ useComposefs: false, sysrootReadonly: false }),
      {},
      [...HEAD, `bind ${S}`, `bind ${S}/usr`, `bind ${S}/sysroot`, `bind ${S}/var`, ...TAIL],
    ],
    [
      "legacy bind with the repo's legacy readonly flag: /etc bound, sysroot read-only",
      decision({ useComposefs: false, sysrootReadonly: false }),
      { legacyRepoReadonly: true },
      [...HEAD, `bind ${S}`, `bind ${S}/etc`, `bind ${S}/usr`, ...SYSROOT_RO, ...TAIL],
    ],
    [
      "transient root and transient /etc, systemd initramfs (no /var mount), /run/sealroot present",
      decision({ rootTransient: true, etcTransient: true }),
      { mountVar: false, runSealrootExists: true },
      [
        "mkdir /run/ostree",
        "mkdir /run/ostree/.private",
        `mkdir ${S}`,
        "make-rprivate /",
        "mkdir /run/ostree/.private/cfsroot-lower",
        "mkdir /run/ostree/.private/root",
        "mkdir /run/ostree/.private/root/upper",
        "mkdir /run/ostree/.private/root/work",
        `composefs ${S}`,
        "symlink /run/systemd/volatile-root",
        "mkdir /run/ostree/transient-etc.abc123",
        "mkdir /run/ostree/transient-etc.abc123/upper",
        "mkdir /run/ostree/transient-etc.abc123/work",
        `overlay ${S}/etc`,
        `bind ${S}/sysroot`,
        `bind ${S}/sysroot/ostree/deploy/os/var`,
        `remount-ro ${S}/sysroot`,
        ...TAIL,
      ],
    ],
  ];
  for (const [name, d, f, want] of rows) {
    it(name, () => expect(ops(d, f)).toEqual(want));
  }

  it("requires verity=require on the overlay whenever a digest is expected", () => {
    const plan = planBoot(decision({ expectedDigests: [{ hex: "ab", source: "karg" }] }), facts);
    expect(plan.steps.find((s) => s.op === "composefs")).toMatchObject({
      requireVerity: true,
      readonly: true,
    });
  });

  it("records /run/ostree-booted as ostree does: keypath when signed, composefs keys only when mounted", () => {
    const signed = planBoot(
      decision({
        verityRequired: true,
        keySets: [{ path: "/etc/k.pub", requiredBy: [], keys: 1, problems: [] }],
      }),
      facts,
    );
    expect(signed.ostreeBooted).toEqual({
      deploymentDev: "65024",
      deploymentIno: "42",
      rootTransient: false,
      rootTransientRo: false,
      signedKeypath: "/etc/k.pub",
      composefs: { verity: true },
      sysrootRo: true,
    });
    expect(planBoot(decision({ useComposefs: false, sysrootReadonly: false }), facts).ostreeBooted).toEqual({
      deploymentDev: "65024",
      deploymentIno: "42",
      rootTransient: false,
      rootTransientRo: false,
      sysrootRo: false,
    });
  });

  it.each([
    [
      "a refused decision",
      decision({ verdict: "refuse", reason: "no" }),
      "Cannot plan a boot that was refused: no",
    ],
    [
      "a transient root without composefs",
      decision({ useComposefs: false, rootTransient: true }),
      "root.transient needs the composefs mount",
    ],
    [
      "a legacy bind under an expected digest",
      decision({ useComposefs: false, expectedDigests: [{ hex: "ab", source: "karg" }] }),
      "Cannot plan the legacy bind mount",
    ],
  ])("refuses to plan %s", (_name, d, message) => {
    expect(() => planBoot(d, facts)).toThrow(message);
  });
});
