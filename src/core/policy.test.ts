import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { C2_DIGEST } from "../../test/helpers/golden.ts";
import { UsageError } from "../base/errors.ts";
import { parseCmdline, readKernelCmdline } from "./cmdline.ts";
import { DEFAULT_KEYPATH, emptyConfig, type PrepareRootConfig, parsePrepareRootConfig } from "./config.ts";
import { emergencyShellRefusal, resolvePolicy, type TrustPolicy } from "./policy.ts";

const B = "2ecd2f0b169d05c56fe21321ce67b67328aa703ed78825174f9b3d437697c08f";
const CFG = "/etc/ostree/prepare-root.conf";

function config(text: string | undefined): PrepareRootConfig {
  return text === undefined ? emptyConfig() : parsePrepareRootConfig(text, CFG);
}

function policy(cmdline: string, cfgText?: string): TrustPolicy {
  return resolvePolicy(parseCmdline(cmdline), config(cfgText));
}

/** Compact form of the decision: mode, V (verity), D (digest), K:<key sets>, ro/rw, then overruled tokens. */
function summary(p: TrustPolicy): string {
  const parts: string[] = [p.composefs];
  if (p.verityRequired) parts.push("V");
  if (p.expectedDigest) parts.push(p.expectedDigest.hex === C2_DIGEST ? "D" : `D:${p.expectedDigest.hex}`);
  if (p.keySets.length)
    parts.push(`K:${p.keySets.map((k) => (k.path === DEFAULT_KEYPATH ? "default" : k.path)).join(",")}`);
  parts.push(p.sysrootReadonly ? "ro" : "rw");
  const over = p.overruled.map((o) => o.token);
  return over.length ? `${parts.join(" ")} | ${over.join(",")}` : parts.join(" ");
}

// The policy table (docs/policy.md): every kernel argument × every config mode.
const KARGS = [
  "",
  "ot-composefs=off",
  "ot-composefs=maybe",
  "ot-composefs=on",
  `ot-composefs=digest=${C2_DIGEST}`,
  "ot-composefs=signed=/k",
  "ot-signed=/k",
  "ostree.prepare-root.composefs=0",
  "ostree.prepare-root.composefs=maybe",
  "ostree.prepare-root.composefs=1",
  "ostree.prepare-root.composefs=signed",
] as const;
const P0 = "ostree.prepare-root.composefs=0";
const PM = "ostree.prepare-root.composefs=maybe";
const P1 = "ostree.prepare-root.composefs=1";

const CONFIGS: [string, string | undefined][] = [
  ["no file", undefined],
  ["file without enabled", "[sysroot]\n"],
  ["enabled=no", "[composefs]\nenabled=no\n"],
  ["enabled=maybe", "[composefs]\nenabled=maybe\n"],
  ["enabled=yes", "[composefs]\nenabled=yes\n"],
  ["enabled=verity", "[composefs]\nenabled=verity\n"],
  ["enabled=signed", "[composefs]\nenabled=signed\n"],
];

// Rows follow CONFIGS; columns follow KARGS.
const TABLE: string[][] = [
  // no file
  [
    "maybe rw",
    "off rw",
    "maybe rw",
    "on ro",
    "on V D ro",
    "on V K:/k ro",
    "on V K:/k ro",
    "off rw",
    "maybe rw",
    "on ro",
    "on V K:default ro",
  ],
  // file without enabled: the same (an absent key is no input)
  [
    "maybe rw",
    "off rw",
    "maybe rw",
    "on ro",
    "on V D ro",
    "on V K:/k ro",
    "on V K:/k ro",
    "off rw",
    "maybe rw",
    "on ro",
    "on V K:default ro",
  ],
  // enabled=no: every stronger karg wins and the config is recorded as overruled
  [
    "off rw",
    "off rw",
    "maybe rw | enabled=no",
    "on ro | enabled=no",
    "on V D ro | enabled=no",
    "on V K:/k ro | enabled=no",
    "on V K:/k ro | enabled=no",
    "off rw",
    "maybe rw | enabled=no",
    "on ro | enabled=no",
    "on V K:default ro | enabled=no",
  ],
  // enabled=maybe
  [
    "maybe rw",
    "maybe rw | ot-composefs=off",
    "maybe rw",
    "on ro | enabled=maybe",
    "on V D ro | enabled=maybe",
    "on V K:/k ro | enabled=maybe",
    "on V K:/k ro | enabled=maybe",
    `maybe rw | ${P0}`,
    "maybe rw",
    "on ro | enabled=maybe",
    "on V K:default ro | enabled=maybe",
  ],
  // enabled=yes
  [
    "on ro",
    "on ro | ot-composefs=off",
    "on ro | ot-composefs=maybe",
    "on ro",
    "on V D ro",
    "on V K:/k ro",
    "on V K:/k ro",
    `on ro | ${P0}`,
    `on ro | ${PM}`,
    "on ro",
    "on V K:default ro",
  ],
  // enabled=verity: ostree's tristate karg keeps verity in ostree too
  [
    "on V ro",
    "on V ro | ot-composefs=off",
    "on V ro | ot-composefs=maybe",
    "on V ro",
    "on V D ro",
    "on V K:/k ro",
    "on V K:/k ro",
    `on V ro | ${P0}`,
    `on V ro | ${PM}`,
    "on V ro",
    "on V K:default ro",
  ],
  // enabled=signed: no karg weakens it; a karg key set is a further requirement
  [
    "on V K:default ro",
    "on V K:default ro | ot-composefs=off",
    "on V K:default ro | ot-composefs=maybe",
    "on V K:default ro",
    "on V D K:default ro",
    "on V K:default,/k ro",
    "on V K:default,/k ro",
    `on V K:default ro | ${P0}`,
    `on V K:default ro | ${PM}`,
    `on V K:default ro | ${P1}`,
    "on V K:default ro",
  ],
];

describe("resolvePolicy(): every kernel argument × every config mode", () => {
  const rows = CONFIGS.flatMap(([name, text], r) =>
    KARGS.map(
      (karg, c) => [name, karg || "(none)", text, karg, (TABLE[r] as string[])[c] as string] as const,
    ),
  );
  it.each(rows)("config %s + karg %s", (_n, _k, text, karg, want) => {
    expect(summary(policy(karg, text))).toBe(want);
  });
});

describe("resolvePolicy() records why an input was overruled", () => {
  it("a weaker karg under a signed config names the config", () => {
    const p = policy("ot-composefs=off", "[composefs]\nenabled=signed\n");
    expect(p.overruled).toEqual([
      { source: "karg", token: "ot-composefs=off", reason: "weaker than config enabled=signed" },
    ]);
    expect(p.applied).toEqual([
      {
        source: "config",
        token: "enabled=signed",
        file: CFG,
        effect:
          "composefs on; fs-verity required; commit signed by a key in /etc/ostree/initramfs-root-binding.key; image digest must equal the signed ostree.composefs.digest.v0",
      },
    ]);
  });

  it("ostree's =1 cannot drop the signature a signed config requires (ostree would boot unsigned)", () => {
    const p = policy(P1, "[composefs]\nenabled=signed\n");
    expect(p.overruled).toEqual([
      { source: "karg", token: P1, reason: "cannot drop the signature required by config enabled=signed" },
    ]);
    expect(p.keySets).toEqual([
      {
        path: DEFAULT_KEYPATH,
        pathFrom: "default-keypath",
        requiredBy: [{ source: "config", token: "enabled=signed", file: CFG }],
      },
    ]);
  });

  it("ostree's =0 under a signed config keeps composefs, signatures and a read-only sysroot", () => {
    const p = policy(P0, "[composefs]\nenabled=signed\n");
    expect(p).toMatchObject({ composefs: "on", verityRequired: true, sysrootReadonly: true });
    expect(p.overruled).toEqual([{ source: "karg", token: P0, reason: "weaker than config enabled=signed" }]);
  });

  it("names the strongest input when several are stronger", () => {
    const p = policy(`ot-composefs=on ot-composefs=off ot-composefs=digest=${C2_DIGEST}`);
    expect(p.overruled).toEqual([
      {
        source: "karg",
        token: "ot-composefs=off",
        reason: `weaker than karg ot-composefs=digest=${C2_DIGEST}`,
      },
    ]);
  });

  it("=1 is overruled by a karg key set too", () => {
    expect(policy(`ot-signed=/k ${P1}`).overruled).toEqual([
      { source: "karg", token: P1, reason: "cannot drop the signature required by karg ot-signed=/k" },
    ]);
  });

  it("records the /usr/lib config replaced by /etc and the ostree= arguments after the first", () => {
    const cfg = { ...config("[composefs]\nenabled=yes\n"), replaced: "/usr/lib/ostree/prepare-root.conf" };
    const p = resolvePolicy(parseCmdline("ostree=/a ostree=/b"), cfg);
    expect(p.target).toEqual({ path: "/a", token: "ostree=/a", android: false });
    expect(p.overruled).toEqual([
      {
        source: "config",
        token: "/usr/lib/ostree/prepare-root.conf",
        file: "/usr/lib/ostree/prepare-root.conf",
        reason:
          "replaced as a whole by /etc/ostree/prepare-root.conf (ostree reads only the last file present)",
      },
      { source: "karg", token: "ostree=/b", reason: "only the first ostree= is used (ostree=/a)" },
    ]);
  });
});

describe("resolvePolicy() combines repeated arguments", () => {
  it("the strictest repeated mode wins, whatever the order", () => {
    expect(summary(policy("ot-composefs=on ot-composefs=off"))).toBe("on ro | ot-composefs=off");
    expect(summary(policy(`${P0} ${P1}`))).toBe(`on ro | ${P0}`);
    expect(summary(policy("ostree.prepare-root.composefs=signed ostree.prepare-root.composefs=0"))).toBe(
      `on V K:default ro | ${P0}`,
    );
  });

  it("the same digest twice is one condition with two sources", () => {
    const p = policy(`ot-composefs=digest=${C2_DIGEST} ot-composefs=digest=${C2_DIGEST.toUpperCase()}`);
    expect(p.expectedDigest).toEqual({
      hex: C2_DIGEST,
      requiredBy: [
        { source: "karg", token: `ot-composefs=digest=${C2_DIGEST}` },
        { source: "karg", token: `ot-composefs=digest=${C2_DIGEST.toUpperCase()}` },
      ],
    });
  });

  it("two different digests cannot both hold: refused", () => {
    expect(() => policy(`ot-composefs=digest=${C2_DIGEST} ot-composefs=digest=${B}`)).toThrow(UsageError);
    expect(() => policy(`ot-composefs=digest=${C2_DIGEST} ot-composefs=digest=${B}`)).toThrow(
      `Cannot combine "ot-composefs=digest=${B}" with "ot-composefs=digest=${C2_DIGEST}": two different expected composefs digests, expected one image digest (every digest given must hold, so these cannot both)`,
    );
  });

  it("a digest karg and a signed config must both hold", () => {
    const p = policy(`ot-composefs=digest=${C2_DIGEST}`, "[composefs]\nenabled=signed\n");
    expect(p.expectedDigest?.hex).toBe(C2_DIGEST);
    expect(p.keySets.map((k) => k.path)).toEqual([DEFAULT_KEYPATH]);
    expect(p.overruled).toEqual([]);
  });
});

describe("resolvePolicy(): signed=<path> versus the config's keypath", () => {
  it("a different path is a second key set: both must be satisfied, config first", () => {
    const p = policy("ot-composefs=signed=/k", "[composefs]\nenabled=signed\nkeypath=/etc/cfg.pub\n");
    expect(p.keySets).toEqual([
      {
        path: "/etc/cfg.pub",
        pathFrom: "config-keypath",
        requiredBy: [{ source: "config", token: "enabled=signed", file: CFG }],
      },
      { path: "/k", pathFrom: "karg", requiredBy: [{ source: "karg", token: "ot-composefs=signed=/k" }] },
    ]);
  });

  it("the same path is one key set required by both", () => {
    const p = policy("ot-signed=/etc/cfg.pub", "[composefs]\nenabled=signed\nkeypath=/etc/cfg.pub\n");
    expect(p.keySets).toEqual([
      {
        path: "/etc/cfg.pub",
        pathFrom: "config-keypath",
        requiredBy: [
          { source: "config", token: "enabled=signed", file: CFG },
          { source: "karg", token: "ot-signed=/etc/cfg.pub" },
        ],
      },
    ]);
  });

  it("ostree's =signed karg uses the config's keypath even when the config is not signed", () => {
    const p = policy(
      "ostree.prepare-root.composefs=signed",
      "[composefs]\nenabled=yes\nkeypath=/etc/cfg.pub\n",
    );
    expect(p.keySets).toEqual([
      {
        path: "/etc/cfg.pub",
        pathFrom: "config-keypath",
        requiredBy: [{ source: "karg", token: "ostree.prepare-root.composefs=signed" }],
      },
    ]);
  });

  it("a config keypath is ignored while nothing asks for signatures", () => {
    expect(policy("", "[composefs]\nenabled=yes\nkeypath=relative\n").keySets).toEqual([]);
  });

  it("a relative config keypath is refused when used", () => {
    expect(() => policy("", "[composefs]\nenabled=signed\nkeypath=keys/k.pub\n")).toThrow(
      'Cannot use "/etc/ostree/prepare-root.conf": [composefs] keypath = "keys/k.pub" is not an absolute path, expected an absolute path inside the initramfs',
    );
  });
});

describe("resolvePolicy(): defaults and the other config keys", () => {
  it("no argument and no config: composefs maybe, recorded as the default", () => {
    const p = policy("ostree=/ostree/boot.0/x/y/0");
    expect(p).toEqual({
      target: { path: "/ostree/boot.0/x/y/0", token: "ostree=/ostree/boot.0/x/y/0", android: false },
      composefs: "maybe",
      verityRequired: false,
      keySets: [],
      sysrootReadonly: false,
      sysrootReadonlyFrom: { source: "default", token: "sysroot.readonly=false" },
      legacyReadonlyFallback: true,
      etcTransient: false,
      rootTransient: false,
      rootTransientRo: false,
      applied: [{ source: "default", token: "composefs=maybe", effect: "composefs maybe" }],
      overruled: [],
    });
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });

  const readonly: [string, string, boolean, string, boolean][] = [
    ["", "", false, "default", true],
    ["ot-composefs=on", "", true, "default", false],
    ["", "[sysroot]\nreadonly=false\n", false, "config", true],
    ["ot-composefs=on", "[sysroot]\nreadonly=false\n", false, "config", false],
    ["ot-composefs=off", "[sysroot]\nreadonly=true\n", true, "config", false],
    ["", "[composefs]\nenabled=maybe\n", false, "default", true],
  ];
  it.each(readonly)(
    "karg %j config %j: sysroot readonly %s from %s, legacy repo fallback %s",
    (k, c, ro, from, fb) => {
      const p = policy(k, c);
      expect(p.sysrootReadonly).toBe(ro);
      expect(p.sysrootReadonlyFrom.source).toBe(from);
      expect(p.legacyReadonlyFallback).toBe(fb);
    },
  );

  it("passes transient settings through", () => {
    const p = policy("", "[composefs]\nenabled=yes\n[etc]\ntransient=true\n[root]\ntransient-ro=true\n");
    expect([p.etcTransient, p.rootTransient, p.rootTransientRo]).toEqual([true, true, true]);
    expect(p.applied.map((a) => a.token)).toEqual([
      "enabled=yes",
      "root.transient-ro=true",
      "etc.transient=true",
    ]);
  });

  it("refuses a transient root when composefs resolves to off", () => {
    expect(() => policy("", "[composefs]\nenabled=no\n[root]\ntransient=true\n")).toThrow(
      'Cannot use [root] transient from "/etc/ostree/prepare-root.conf": composefs is off, expected composefs maybe or on (a transient root is an overlay on the composefs mount)',
    );
    // a karg that turns composefs on makes it valid again (conditions only add up)
    expect(policy("ot-composefs=on", "[composefs]\nenabled=no\n[root]\ntransient=true\n").rootTransient).toBe(
      true,
    );
  });
});

describe("resolvePolicy() is monotonic: no input removes a condition", () => {
  const rank = { off: 0, maybe: 1, on: 2 } as const;
  it("adding any kernel argument never weakens the policy", () => {
    const karg = fc.constantFrom(
      ...KARGS.filter((k) => k !== ""),
      `ot-composefs=digest=${B}`,
      "ot-signed=/j",
    );
    const cfg = fc.constantFrom(...CONFIGS.map(([, t]) => t));
    fc.assert(
      fc.property(cfg, fc.array(karg, { maxLength: 5 }), karg, (text, before, extra) => {
        let p: TrustPolicy;
        let q: TrustPolicy;
        try {
          p = policy(before.join(" "), text);
          q = policy([...before, extra].join(" "), text);
        } catch (e) {
          if (e instanceof UsageError && /two different expected composefs digests/.test(e.message)) return;
          throw e;
        }
        // The default (maybe) is not an input: the first explicit mode, even off, replaces it.
        const defaulted = p.applied.some((a) => a.source === "default");
        if (!defaulted) expect(rank[q.composefs]).toBeGreaterThanOrEqual(rank[p.composefs]);
        if (p.verityRequired) expect(q.verityRequired).toBe(true);
        if (p.expectedDigest) expect(q.expectedDigest?.hex).toBe(p.expectedDigest.hex);
        for (const k of p.keySets) expect(q.keySets.map((s) => s.path)).toContain(k.path);
        if (p.sysrootReadonly) expect(q.sysrootReadonly).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("emergencyShellRefusal(): rd.shell in a verifying boot needs the initramfs's opt-in", () => {
  const REFUSED =
    "the boot verifies its root and the initramfs's prepare-root.conf has no [sealroot] emergency-shell = yes";
  const cfg = (text: string) => parsePrepareRootConfig(text, CFG);
  const cases: [string, string | undefined, string | undefined][] = [
    ["ostree=/ostree/boot.0/x/y/0", undefined, undefined],
    ["ot-composefs=off", undefined, undefined],
    ["ot-composefs=on", undefined, undefined],
    [`ot-composefs=digest=${C2_DIGEST}`, undefined, REFUSED],
    ["ot-composefs=signed=/k.pub", undefined, REFUSED],
    ["", "[composefs]\nenabled = verity\n", REFUSED],
    ["", "[composefs]\nenabled = signed\n", REFUSED],
    ["ot-composefs=off", "[composefs]\nenabled = signed\n", REFUSED],
    ["", "[composefs]\nenabled = signed\n[sealroot]\nemergency-shell = yes\n", undefined],
    ["ot-composefs=signed=/k.pub", "[sealroot]\nemergency-shell = true\n", undefined],
  ];
  it.each(cases)("%j with config %j", (karg, text, want) => {
    expect(
      emergencyShellRefusal(readKernelCmdline(karg), text === undefined ? emptyConfig() : cfg(text)),
    ).toBe(want);
  });

  it("counts a command line that does not resolve to a policy as verifying", () => {
    expect(emergencyShellRefusal(readKernelCmdline("ot-composefs=bogus"), emptyConfig())).toBe(REFUSED);
    const contradiction = `ot-composefs=digest=${C2_DIGEST} ot-composefs=digest=${B}`;
    expect(emergencyShellRefusal(readKernelCmdline(contradiction), emptyConfig())).toBe(REFUSED);
  });
});
