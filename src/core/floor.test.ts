import { describe, expect, it } from "vitest";
import { FormatError } from "../base/errors.ts";
import { floorViolation, parseMinTimestamp, raiseFloor } from "./floor.ts";

const C = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

describe("floorViolation()", () => {
  it.each([
    [{ timestamp: 1_700_000_000n }, { minTimestamp: 1_700_000_000n }, undefined],
    [{ timestamp: 1_700_000_001n }, { minTimestamp: 1_700_000_000n }, undefined],
    [
      { timestamp: 1_699_999_999n },
      { minTimestamp: 1_700_000_000n },
      `Cannot boot commit "${C}": timestamp 1699999999 (2023-11-14 22:13:19 UTC), expected at least min-timestamp 1700000000 (2023-11-14 22:13:20 UTC)`,
    ],
    [{ timestamp: 1n, version: "41.20250102.0" }, { minVersion: "41.20250101.3" }, undefined],
    [{ timestamp: 1n, version: "41.20250101.3" }, { minVersion: "41.20250101.3" }, undefined],
    [
      { timestamp: 1n, version: "41.20250101.3" },
      { minVersion: "41.20250101.10" },
      `Cannot boot commit "${C}": version "41.20250101.3", expected at least min-version "41.20250101.10"`,
    ],
    [
      { timestamp: 1n },
      { minVersion: "1" },
      `Cannot boot commit "${C}": no version metadata, expected at least min-version "1"`,
    ],
    [
      { timestamp: 5n, version: "1" },
      { minTimestamp: 6n, minVersion: "2" },
      `Cannot boot commit "${C}": timestamp 5 (1970-01-01 00:00:05 UTC), expected at least min-timestamp 6 (1970-01-01 00:00:06 UTC)`,
    ],
    [{ timestamp: 0n }, {}, undefined],
  ])("checks %o against the floor %o", (commit, floor, reason) => {
    expect(floorViolation({ checksum: C, ...commit }, floor)).toBe(reason);
  });
});

describe("raiseFloor()", () => {
  it.each([
    [{ minTimestamp: 10n }, { minTimestamp: 20n }, { minTimestamp: 20n }],
    [{ minTimestamp: 20n }, { minTimestamp: 10n }, { minTimestamp: 20n }],
    [{}, { minTimestamp: 10n }, { minTimestamp: 10n }],
    [{ minVersion: "41.1" }, { minVersion: "41.10" }, { minVersion: "41.10" }],
    [{ minVersion: "41.10" }, { minVersion: "41.9" }, { minVersion: "41.10" }],
    [{ minVersion: "41.10", minTimestamp: 5n }, {}, { minVersion: "41.10", minTimestamp: 5n }],
    [{}, {}, {}],
  ])("raises %o by %o to %o, never lower", (base, raise, want) => {
    expect(raiseFloor(base, raise)).toEqual(want);
  });
});

describe("parseMinTimestamp()", () => {
  it("reads decimal unix seconds up to 2^64-1", () => {
    expect(parseMinTimestamp("1700000000", "prepare-root.conf")).toBe(1_700_000_000n);
    expect(parseMinTimestamp("18446744073709551615", "karg")).toBe(0xffffffffffffffffn);
  });

  it.each(["", "-1", "1e9", " 5", "18446744073709551616", "0x10"])("refuses %j", (v) => {
    expect(() => parseMinTimestamp(v, "prepare-root.conf")).toThrow(FormatError);
    expect(() => parseMinTimestamp(v, "prepare-root.conf")).toThrow(
      `Cannot use prepare-root.conf min-timestamp ${JSON.stringify(v)}: not a number, expected unix seconds (decimal digits)`,
    );
  });
});
