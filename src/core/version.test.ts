import { describe, expect, it } from "vitest";
import { compareOstreeVersions } from "./version.ts";

// Each row's sign was printed by glibc's strverscmp(3) (gcc, Debian 12's glibc 2.36).
describe("compareOstreeVersions()", () => {
  it.each([
    // glibc's documented chain: 000 < 00 < 01 < 010 < 09 < 0 < 1 < 9 < 10
    ["000", "00", -1],
    ["00", "01", -1],
    ["01", "010", -1],
    ["010", "09", -1],
    ["09", "0", -1],
    ["0", "1", -1],
    ["1", "9", -1],
    ["9", "10", -1],
    // what ostree.version strings look like (Fedora CoreOS, rpm-ostree's auto-versioning)
    ["1.9", "1.10", -1],
    ["33.4", "33.10", -1],
    ["41.20250101.0", "41.20250102.0", -1],
    ["41.20250101.3", "41.20250101.10", -1],
    ["42.20250101.0", "41.20251231.9", 1],
    ["2.0", "2.0.1", -1],
    ["v10", "v9", 1],
    // a leading zero makes a fraction
    ["1.01", "1.1", -1],
    ["1.001", "1.01", -1],
    // no pre-release rule: a suffix is just more string, '~' included
    ["1.0", "1.0-rc1", -1],
    ["1.0~rc1", "1.0", 1],
    ["1.0a", "1.0b", -1],
    ["1a", "1b", -1],
    ["00a", "00b", -1],
    ["", "a", -1],
    ["a", "", 1],
    ["41.1", "41.1", 0],
    ["", "", 0],
  ])("orders %j against %j as %d", (a, b, sign) => {
    expect(compareOstreeVersions(a, b)).toBe(sign);
    expect(compareOstreeVersions(b, a)).toBe(-sign || 0);
  });
});
