// `sealroot pcr-replay` as users run it (the compiled binary, under Bun): logs written by sealroot's own
// encoder and by hand, a record as systemd wrote it, one PCR or all, a bank some record lacks, and
// malformed logs (one stderr line, exit 1). Expected values are computed here with node:crypto.

import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatMeasureRecord, MAX_MEASURE_LOG_BYTES, measurementEvent } from "../../src/core/measure.ts";
import { eventDigests, PCR_BANKS, type PcrBank } from "../../src/formats/tpm2.ts";
import { sealroot } from "../helpers/cli.ts";

const SIZE: Record<PcrBank, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
const H = (bank: PcrBank, ...parts: (string | Buffer)[]) => {
  const h = createHash(bank);
  for (const p of parts) h.update(p);
  return h.digest();
};
/** PCR value after extending with these digests (hex) from `start` (zeros). */
function replay(bank: PcrBank, digests: string[], fill = 0): string {
  let v = Buffer.alloc(SIZE[bank], fill);
  for (const d of digests) v = H(bank, v, Buffer.from(d, "hex"));
  return v.toString("hex");
}
const ofEvent = (bank: PcrBank, e: string) => H(bank, e).toString("hex");

function logFile(text: string | Buffer): string {
  const p = join(mkdtempSync(join(tmpdir(), "sealroot-replay-")), "tpm2-measure.log");
  writeFileSync(p, text);
  return p;
}

const EVENT = measurementEvent({
  commit: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
  composefs: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  key: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  policy: "signed",
});
const rec = (pcr: number, event: string, banks: readonly PcrBank[] = PCR_BANKS) =>
  formatMeasureRecord({
    pcr,
    digests: eventDigests(event, banks),
    event,
    bootId: "189c18dd7ba245f38cf49d9ac154b525",
    timestampUsec: 4061113,
  });

describe("sealroot pcr-replay", () => {
  it("replays a log sealroot's encoder wrote: one line per PCR and bank, PCRs ascending", () => {
    const log = logFile(rec(15, EVENT) + rec(11, "enter-initrd") + rec(11, "leave-initrd") + rec(15, EVENT));
    const want = [
      ...PCR_BANKS.map(
        (b) => `11 ${b}: ${replay(b, [ofEvent(b, "enter-initrd"), ofEvent(b, "leave-initrd")])}\n`,
      ),
      ...PCR_BANKS.map((b) => `15 ${b}: ${replay(b, [ofEvent(b, EVENT), ofEvent(b, EVENT)])}\n`),
    ].join("");
    expect(sealroot("pcr-replay", "--log", log)).toEqual({ code: 0, stdout: want, stderr: "" });
    expect(sealroot("pcr-replay", "--log", log, "--pcr", "11")).toEqual({
      code: 0,
      stdout: `${want.split("\n").slice(0, 4).join("\n")}\n`,
      stderr: "",
    });
  });

  it("replays a hand-written log: plain JSON lines, upper-case hex, an sm3_256 digest skipped, blank lines", () => {
    const a = "11".repeat(32);
    const b = "AB".repeat(32);
    const log = logFile(
      [
        `{"pcr":15,"digests":[{"hashAlg":"sha256","digest":"${a}"},{"hashAlg":"sm3_256","digest":"${"00".repeat(32)}"}]}`,
        "",
        `{"pcr":15,"digests":[{"hashAlg":"sha256","digest":"${b}"}],"content_type":"other","content":{"x":1}}`,
        `{"pcr":7,"digests":[{"hashAlg":"sha256","digest":"${a}"}]}`,
        "",
      ].join("\n"),
    );
    expect(sealroot("pcr-replay", "--log", log)).toEqual({
      code: 0,
      stdout: `7 sha256: ${replay("sha256", [a])}\n15 sha256: ${replay("sha256", [a, b.toLowerCase()])}\n`,
      stderr: "",
    });
  });

  it("replays a record as systemd-pcrextend wrote it (os-separator into PCR 7, with its eventType)", () => {
    const systemd =
      '\x1e{"pcr":7,"digests":[{"hashAlg":"sha256","digest":"ff5b9d73dad709633ae76adf444012b57e913a12ed7403c3931145862f35f841"}],"content_type":"systemd","content":{"string":"os-separator","bootId":"189c18dd7ba245f38cf49d9ac154b525","timestamp":1515761,"eventType":"os-separator"}}\n';
    // systemd measures the string itself, no NUL: the digest is SHA-256("os-separator")
    expect(ofEvent("sha256", "os-separator")).toBe(
      "ff5b9d73dad709633ae76adf444012b57e913a12ed7403c3931145862f35f841",
    );
    expect(sealroot("pcr-replay", "--log", logFile(systemd + rec(15, EVENT, ["sha256"])))).toEqual({
      code: 0,
      stdout:
        `7 sha256: ${replay("sha256", [ofEvent("sha256", "os-separator")])}\n` +
        `15 sha256: ${replay("sha256", [ofEvent("sha256", EVENT)])}\n`,
      stderr: "",
    });
  });

  it("gives a PCR no record names its initial value in the log's banks (all 0xff for 17…22)", () => {
    const log = logFile(rec(15, EVENT, ["sha1", "sha256"]));
    expect(sealroot("pcr-replay", "--log", log, "--pcr", "18").stdout).toBe(
      `18 sha1: ${"ff".repeat(20)}\n18 sha256: ${"ff".repeat(32)}\n`,
    );
    expect(sealroot("pcr-replay", "--log", log, "--pcr", "4").stdout).toBe(
      `4 sha1: ${"00".repeat(20)}\n4 sha256: ${"00".repeat(32)}\n`,
    );
    expect(sealroot("pcr-replay", "--log", logFile(""))).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("leaves out a bank that a record of the PCR lacks, saying which line, and prints the others", () => {
    const log = logFile(rec(15, EVENT, ["sha1", "sha256"]) + rec(15, EVENT, ["sha256"]));
    expect(sealroot("pcr-replay", "--log", log)).toEqual({
      code: 0,
      stdout: `15 sha256: ${replay("sha256", [ofEvent("sha256", EVENT), ofEvent("sha256", EVENT)])}\n`,
      stderr: "sealroot: PCR 15 sha1 left out: line 2 has no sha1 digest\n",
    });
  });

  it.each([
    [
      "a line that is not JSON",
      `${rec(15, EVENT)}{"pcr":15,\n`,
      /^sealroot: Cannot parse "LOG" line 2: not JSON \(.+\), expected one record per line\n$/,
    ],
    [
      "a short digest",
      `${rec(15, EVENT)}${rec(15, EVENT)}{"pcr":15,"digests":[{"hashAlg":"sha256","digest":"00"}]}\n`,
      'sealroot: Cannot parse "LOG" line 3: digests[0] sha256 digest of 2 characters, expected 64 hex digits\n',
    ],
    [
      "PCR 24",
      '{"pcr":24,"digests":[]}\n',
      'sealroot: Cannot parse "LOG" line 1: "pcr" is 24, expected an integer 0…23\n',
    ],
    [
      "a log over its cap",
      Buffer.alloc(MAX_MEASURE_LOG_BYTES + 1, 0x0a),
      `sealroot: Cannot read measurement log "LOG": ${MAX_MEASURE_LOG_BYTES + 1} bytes, expected at most ${MAX_MEASURE_LOG_BYTES}\n`,
    ],
  ])("refuses %s: nothing on stdout, one line on stderr, exit 1", (_, text, stderr) => {
    const log = logFile(text);
    const r = sealroot("pcr-replay", "--log", log);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const got = r.stderr.replaceAll(log, "LOG");
    if (typeof stderr === "string") expect(got).toBe(stderr);
    else expect(got).toMatch(stderr);
  });

  it("refuses --pcr outside 0…23 (exit 1) and a missing --log (a usage error, exit 2)", () => {
    const log = logFile(rec(15, EVENT));
    expect(sealroot("pcr-replay", "--log", log, "--pcr", "24")).toEqual({
      code: 1,
      stdout: "",
      stderr: "sealroot: Cannot replay PCR 24: not a PCR, expected an integer 0…23\n",
    });
    expect(sealroot("pcr-replay", "--log", log, "--pcr", "1.5").stderr).toBe(
      "sealroot: Cannot replay PCR 1.5: not a PCR, expected an integer 0…23\n",
    );
    const none = sealroot("pcr-replay");
    expect([none.code, none.stdout]).toEqual([2, ""]);
    expect(none.stderr).toContain("Missing required argument: log");
  });
});
