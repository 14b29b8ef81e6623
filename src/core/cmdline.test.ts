import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { C2_DIGEST } from "../../test/helpers/golden.ts";
import { UsageError } from "../base/errors.ts";
import { parseCmdline, requireTarget, splitCmdline } from "./cmdline.ts";

describe("splitCmdline() tokenises as ostree does", () => {
  const cases: [string, string[]][] = [
    ["", []],
    ["foo", ["foo"]],
    ["foo=bar baz  sometest", ["foo=bar", "baz", "sometest"]],
    ["  a\tb  c\n", ["a\tb", "c"]],
    ['root="x y" ro', ['root="x', 'y"', "ro"]],
  ];
  it.each(cases)("%j → %j", (text, tokens) => expect(splitCmdline(text)).toEqual(tokens));
});

describe("parseCmdline() finds the target like ostree-prepare-root 2026.4", () => {
  const cases: [string, { path: string; token: string; android: boolean } | undefined, string[]][] = [
    ["", undefined, []],
    ["foo", undefined, []],
    ["xostree foo", undefined, []],
    ["xostree=blah bar", undefined, []],
    ["ostree /x", undefined, []],
    ["ostree=/foo/bar", { path: "/foo/bar", token: "ostree=/foo/bar", android: false }, []],
    ["ostree=/a ostree=/b", { path: "/a", token: "ostree=/a", android: false }, ["ostree=/b"]],
    ["ostree=/a\t", { path: "/a", token: "ostree=/a\t", android: false }, []],
    [
      "androidboot.slot_suffix=_a ostree=/x",
      { path: "/ostree/root.a", token: "androidboot.slot_suffix=_a", android: true },
      ["ostree=/x"],
    ],
    [
      "androidboot.slot_suffix=_b",
      { path: "/ostree/root.b", token: "androidboot.slot_suffix=_b", android: true },
      [],
    ],
    [
      "androidboot.foo ostree=/x",
      { path: "/ostree/root.a", token: "androidboot.foo", android: true },
      ["ostree=/x"],
    ],
  ];
  it.each(cases)("%j", (text, target, ignored) => {
    const c = parseCmdline(text);
    expect(c.target).toEqual(target);
    expect(c.ignoredTargets).toEqual(ignored);
  });

  it("refuses an androidboot slot other than _a/_b", () => {
    expect(() => parseCmdline("androidboot.slot_suffix=_c")).toThrow(
      'Cannot parse kernel argument "androidboot.slot_suffix=_c": unknown value "_c", expected _a or _b',
    );
  });

  it("requireTarget() names the missing ostree= argument", () => {
    expect(() => requireTarget(parseCmdline("root=/dev/sda"))).toThrow(
      "Cannot find the ostree target on the kernel command line: no ostree= argument, expected ostree=/ostree/boot.N/<os>/<bootcsum>/<serial>",
    );
  });
});

describe("parseCmdline() reads the composefs arguments in order", () => {
  it("parses every spelling", () => {
    const c = parseCmdline(
      `ro ot-composefs=off ot-composefs=maybe ot-composefs=on ot-composefs=digest=${C2_DIGEST.toUpperCase()} ot-composefs=signed=/etc/k ot-signed=/etc/j ` +
        "ostree.prepare-root.composefs=0 ostree.prepare-root.composefs=false ostree.prepare-root.composefs=no " +
        "ostree.prepare-root.composefs=maybe ostree.prepare-root.composefs=1 ostree.prepare-root.composefs=true " +
        "ostree.prepare-root.composefs=yes ostree.prepare-root.composefs=signed",
    );
    expect(c.composefs).toEqual([
      { kind: "mode", token: "ot-composefs=off", mode: "off" },
      { kind: "mode", token: "ot-composefs=maybe", mode: "maybe" },
      { kind: "mode", token: "ot-composefs=on", mode: "on" },
      { kind: "digest", token: `ot-composefs=digest=${C2_DIGEST.toUpperCase()}`, digest: C2_DIGEST },
      { kind: "signed", token: "ot-composefs=signed=/etc/k", path: "/etc/k" },
      { kind: "signed", token: "ot-signed=/etc/j", path: "/etc/j" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=0", value: "no" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=false", value: "no" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=no", value: "no" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=maybe", value: "maybe" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=1", value: "yes" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=true", value: "yes" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=yes", value: "yes" },
      { kind: "ostree", token: "ostree.prepare-root.composefs=signed", value: "signed" },
    ]);
  });

  it("strips surrounding whitespace from values (a tab after signed is not an error)", () => {
    expect(parseCmdline("ostree.prepare-root.composefs=signed\t ot-signed=/k\t").composefs).toEqual([
      { kind: "ostree", token: "ostree.prepare-root.composefs=signed\t", value: "signed" },
      { kind: "signed", token: "ot-signed=/k\t", path: "/k" },
    ]);
  });

  const bad: [string, string][] = [
    [
      "ostree.prepare-root.composefs=verity",
      'Cannot parse kernel argument "ostree.prepare-root.composefs=verity": unknown value "verity", expected signed, maybe, yes, true, 1, no, false or 0',
    ],
    [
      "ostree.prepare-root.composefs=YES",
      'Cannot parse kernel argument "ostree.prepare-root.composefs=YES": unknown value "YES", expected signed, maybe, yes, true, 1, no, false or 0',
    ],
    [
      "ostree.prepare-root.composefs=",
      'Cannot parse kernel argument "ostree.prepare-root.composefs=": unknown value "", expected signed, maybe, yes, true, 1, no, false or 0',
    ],
    [
      "ot-composefs=signed",
      'Cannot parse kernel argument "ot-composefs=signed": unknown value "signed", expected off, maybe, on, digest=<64 hex digits> or signed=<key file>',
    ],
    [
      "ot-composefs=yes",
      'Cannot parse kernel argument "ot-composefs=yes": unknown value "yes", expected off, maybe, on, digest=<64 hex digits> or signed=<key file>',
    ],
    [
      "ot-composefs=digest=abcd",
      'Cannot parse kernel argument "ot-composefs=digest=abcd": digest "abcd" is not 64 hex digits, expected the image\'s fs-verity SHA-256 digest',
    ],
    [
      `ot-composefs=digest=${C2_DIGEST}00`,
      `Cannot parse kernel argument "ot-composefs=digest=${C2_DIGEST}00": digest "${C2_DIGEST}00" is not 64 hex digits, expected the image's fs-verity SHA-256 digest`,
    ],
    [
      "ot-composefs=signed=etc/k",
      'Cannot parse kernel argument "ot-composefs=signed=etc/k": key file "etc/k" is not an absolute path, expected an absolute path inside the initramfs',
    ],
    [
      "ot-signed=",
      'Cannot parse kernel argument "ot-signed=": key file "" is not an absolute path, expected an absolute path inside the initramfs',
    ],
  ];
  it.each(bad)("refuses %j", (text, message) => {
    expect(() => parseCmdline(text)).toThrow(UsageError);
    expect(() => parseCmdline(text)).toThrow(message);
  });

  it("ignores arguments that only share a prefix", () => {
    expect(
      parseCmdline("ot-composefs ot-composefsx=on xot-signed=/k ostree.prepare-root.composefsx=1").composefs,
    ).toEqual([]);
  });
});

describe("parseCmdline() reads the anti-rollback floor arguments, keeping the highest", () => {
  it("takes the highest of repeated sealroot.min-timestamp= and sealroot.min-version=", () => {
    expect(
      parseCmdline(
        "sealroot.min-timestamp=100 sealroot.min-timestamp=50 sealroot.min-version=1.10 sealroot.min-version=1.9",
      ).floor,
    ).toEqual({ minTimestamp: 100n, minVersion: "1.10" });
    expect(parseCmdline("ostree=/x").floor).toEqual({});
  });

  it("refuses a timestamp that is not decimal seconds, and an empty version", () => {
    expect(() => parseCmdline("sealroot.min-timestamp=1e9")).toThrow(UsageError);
    expect(() => parseCmdline("sealroot.min-timestamp=1e9")).toThrow(
      'Cannot use kernel argument "sealroot.min-timestamp=1e9" min-timestamp "1e9": not a number, expected unix seconds (decimal digits)',
    );
    expect(() => parseCmdline("sealroot.min-version=")).toThrow(UsageError);
  });
});

describe("parseCmdline() reads sealroot.tpm=required", () => {
  it("keeps the first such argument, and none when absent", () => {
    expect(parseCmdline("ostree=/x sealroot.tpm=required sealroot.tpm=required").tpmRequired).toBe(
      "sealroot.tpm=required",
    );
    expect(parseCmdline("ostree=/x").tpmRequired).toBeUndefined();
  });

  it("refuses any other value: a command line can require a TPM, never waive one", () => {
    for (const v of ["auto", "off", "", "no"]) {
      expect(() => parseCmdline(`sealroot.tpm=${v}`), v).toThrow(
        `Cannot parse kernel argument "sealroot.tpm=${v}": unknown value "${v}", expected required`,
      );
    }
  });
});

describe("parseCmdline() on arbitrary text", () => {
  it("returns or throws UsageError", () => {
    const piece = fc.constantFrom(
      "ostree=",
      "ot-composefs=",
      "ot-signed=",
      "ostree.prepare-root.composefs=",
      "digest=",
      "signed=",
      "/",
      " ",
      "\t",
      "on",
      "a",
      "androidboot.",
      "slot_suffix=",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (parts) => {
        try {
          parseCmdline(parts.join(""));
        } catch (e) {
          if (!(e instanceof UsageError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
