import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FormatError } from "../base/errors.ts";
import { eventDigests, PCR_BANKS, type PcrBank } from "../formats/tpm2.ts";
import {
  extendPcr,
  formatMeasureRecord,
  initialPcrValue,
  type LogRecord,
  MAX_MEASURE_LOG_BYTES,
  MAX_MEASURE_LOG_LINE,
  MAX_MEASURE_LOG_LINES,
  measurementEvent,
  parseMeasureLog,
  recordStringMatches,
  replayLog,
} from "./measure.ts";

// Expected digests are computed here with node:crypto, independently of base/hash.ts.
const H = (alg: PcrBank, ...parts: (string | Uint8Array)[]) => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hex = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString("hex"));
const enc = (s: string) => new TextEncoder().encode(s);
/** A FormatError with exactly this message (its data is checked where it matters). */
function expectFormatError(fn: () => unknown, msg: string): void {
  expect(fn).toThrow(FormatError);
  expect(fn).toThrow(new RegExp(`^${msg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`));
}

const COMMIT = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const CFS = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const EVENT = `sealroot:v1:commit=${COMMIT}:composefs=${CFS}:key=${KEY}:policy=signed`;

describe("measurementEvent()", () => {
  it.each([
    [{ commit: COMMIT, composefs: CFS, key: KEY, policy: "signed" }, EVENT],
    [
      { commit: COMMIT, composefs: CFS, policy: "digest" },
      `sealroot:v1:commit=${COMMIT}:composefs=${CFS}:key=none:policy=digest`,
    ],
    [
      { commit: COMMIT, key: KEY, policy: "signed" },
      `sealroot:v1:commit=${COMMIT}:composefs=none:key=${KEY}:policy=signed`,
    ],
    [
      { commit: COMMIT, composefs: undefined, key: undefined, policy: "none" },
      `sealroot:v1:commit=${COMMIT}:composefs=none:key=none:policy=none`,
    ],
  ])("builds %o as %s", (inp, want) => {
    expect(measurementEvent(inp)).toBe(want);
  });

  it.each([
    [
      { commit: COMMIT.toUpperCase(), policy: "signed" },
      `Cannot build the measurement event: commit "${COMMIT.toUpperCase()}" (64 characters), expected 64 lowercase hex digits`,
    ],
    [
      { commit: COMMIT.slice(2), policy: "signed" },
      `Cannot build the measurement event: commit "${COMMIT.slice(2)}" (62 characters), expected 64 lowercase hex digits`,
    ],
    [
      { commit: COMMIT, composefs: `${CFS.slice(1)}:`, policy: "signed" },
      `Cannot build the measurement event: composefs digest "${CFS.slice(1)}:" (64 characters), expected 64 lowercase hex digits`,
    ],
    [
      { commit: COMMIT, key: "none", policy: "signed" },
      'Cannot build the measurement event: key "none" (4 characters), expected 64 lowercase hex digits',
    ],
    [
      { commit: COMMIT, policy: "signed:x" },
      'Cannot build the measurement event: policy mode "signed:x" (8 characters), expected 1-64 of a-z 0-9 . _ + - starting with a letter or digit',
    ],
    [
      { commit: COMMIT, policy: "" },
      'Cannot build the measurement event: policy mode "" (0 characters), expected 1-64 of a-z 0-9 . _ + - starting with a letter or digit',
    ],
  ])("refuses %o", (inp, msg) => {
    expectFormatError(() => measurementEvent(inp), msg);
  });
});

describe("eventDigests() and extendPcr()", () => {
  // Pinned: computed once with Python's hashlib over the UTF-8 event (no NUL) and over zeros ‖ digest.
  const PINNED: Record<PcrBank, [string, string]> = {
    sha1: ["c085bcc8839c389b180d902497b30d96ca978f93", "f1e6d0b8771920fd6ab8d288221db128e8b54ee3"],
    sha256: [
      "741961d5e0532bf8e32ee8a75d5efcb594551e28a92f591c0862f32484104372",
      "c16ab9e3f0a6c5daeaf3d094bc47e189ab1b5446f67355f794cae81e529a29d8",
    ],
    sha384: [
      "f71fc8576a6843e7bb5147320c40a212d4ebe68216531acb61e727cc3aa56412cd7e93bf407f51f46df8a94621721f05",
      "90460c19dab7f63c150172a7e3856b4aea7fd7948a6a825be5e86f0275cd5220e7c097e86398705497722925b16f4354",
    ],
    sha512: [
      "d08d045185767936498555ba44039f675a30c86f5a1907e56d47f807acf2364b94f39a86dbad6ed5bee594d55fe0661c95ac77dda91ce702d3fb0de2e7170b7e",
      "de78535a02ddff1b380a00299fffe06ab0251f8f6b934d66afd3581906eb7f8fe0b2f7def68faefb085371737da8f62ebbc00fe7999b6011bd685d6445b5fe65",
    ],
  };

  it.each(PCR_BANKS)("hashes the event's UTF-8 bytes in %s, and extends a zero PCR with it", (bank) => {
    const [digest, extended] = PINNED[bank];
    const [got] = eventDigests(EVENT, [bank]);
    expect(got?.bank).toBe(bank);
    expect(hex(got?.digest)).toBe(digest);
    expect(hex(got?.digest)).toBe(hex(H(bank, EVENT)));
    const zero = initialPcrValue(15, bank);
    expect(hex(extendPcr(bank, zero, got!.digest))).toBe(extended);
    expect(extended).toBe(hex(H(bank, zero, H(bank, EVENT))));
  });

  it("keeps the order of the banks asked for", () => {
    expect(eventDigests(EVENT, ["sha512", "sha1"]).map((d) => d.bank)).toEqual(["sha512", "sha1"]);
  });

  it("starts PCRs 17…22 at all 0xff and the others at zero", () => {
    expect(hex(initialPcrValue(0, "sha1"))).toBe("00".repeat(20));
    expect(hex(initialPcrValue(16, "sha256"))).toBe("00".repeat(32));
    expect(hex(initialPcrValue(17, "sha256"))).toBe("ff".repeat(32));
    expect(hex(initialPcrValue(22, "sha384"))).toBe("ff".repeat(48));
    expect(hex(initialPcrValue(23, "sha512"))).toBe("00".repeat(64));
  });

  it("refuses a value or digest of the wrong size", () => {
    expectFormatError(
      () => extendPcr("sha256", new Uint8Array(32), new Uint8Array(20)),
      "Cannot extend a sha256 PCR: value 32 and digest 20 bytes, expected 32 each",
    );
  });
});

describe("formatMeasureRecord()", () => {
  it("writes the record as systemd's tpm2_userspace_log() does: RS, compact JSON in its key order, newline", () => {
    const digests = eventDigests(EVENT, ["sha1", "sha256"]);
    const text = formatMeasureRecord({
      pcr: 15,
      digests,
      event: EVENT,
      bootId: "189c18dd7ba245f38cf49d9ac154b525",
      timestampUsec: 1515761,
    });
    expect(text).toBe(
      `\x1e{"pcr":15,"digests":[{"hashAlg":"sha1","digest":"c085bcc8839c389b180d902497b30d96ca978f93"},` +
        `{"hashAlg":"sha256","digest":"741961d5e0532bf8e32ee8a75d5efcb594551e28a92f591c0862f32484104372"}],` +
        `"content_type":"systemd","content":{"string":"${EVENT}","bootId":"189c18dd7ba245f38cf49d9ac154b525",` +
        `"timestamp":1515761}}\n`,
    );
  });

  it("has the shape of a record systemd-pcrextend wrote (os-separator, PCR 7, from a real boot)", () => {
    // A record systemd wrote, minus its eventType (sealroot's event has none): same keys, same order.
    const systemd =
      '{"pcr":7,"digests":[{"hashAlg":"sha256","digest":"ff5b9d73dad709633ae76adf444012b57e913a12ed7403c3931145862f35f841"}],"content_type":"systemd","content":{"string":"os-separator","bootId":"189c18dd7ba245f38cf49d9ac154b525","timestamp":1515761}}';
    const ours = formatMeasureRecord({
      pcr: 7,
      digests: [
        {
          bank: "sha256",
          digest: Buffer.from("ff5b9d73dad709633ae76adf444012b57e913a12ed7403c3931145862f35f841", "hex"),
        },
      ],
      event: "os-separator",
      bootId: "189c18dd7ba245f38cf49d9ac154b525",
      timestampUsec: 1515761,
    });
    expect(ours).toBe(`\x1e${systemd}\n`);
  });

  it.each([
    [{ pcr: 24 }, "Cannot write a measurement record: PCR 24, expected 0…23"],
    [
      { bootId: "189c18dd-7ba2-45f3-8cf4-9d9ac154b525" },
      'Cannot write a measurement record: boot ID "189c18dd-7ba2-45f3-8cf4-9d9ac154b525", expected 32 lowercase hex digits',
    ],
    [{ timestampUsec: -1 }, "Cannot write a measurement record: timestamp -1, expected microseconds ≥ 0"],
    [{ digests: [] }, "Cannot write a measurement record: no digest, expected one per active bank"],
  ])("refuses %o", (change, msg) => {
    const base = {
      pcr: 15,
      digests: eventDigests(EVENT, ["sha256"]),
      event: EVENT,
      bootId: "189c18dd7ba245f38cf49d9ac154b525",
      timestampUsec: 1,
    };
    expectFormatError(() => formatMeasureRecord({ ...base, ...change }), msg);
  });
});

function record(pcr: number, event: string, banks: readonly PcrBank[] = PCR_BANKS): string {
  return formatMeasureRecord({
    pcr,
    digests: eventDigests(event, banks),
    event,
    bootId: "0123456789abcdef0123456789abcdef",
    timestampUsec: 42,
  });
}

describe("parseMeasureLog()", () => {
  it("reads back what formatMeasureRecord() wrote", () => {
    const log = record(11, "enter-initrd") + record(15, EVENT) + record(11, "leave-initrd", ["sha256"]);
    const recs = parseMeasureLog(enc(log));
    expect(recs.map((r) => [r.line, r.pcr, r.contentType, r.string, r.digests.map((d) => d.bank)])).toEqual([
      [1, 11, "systemd", "enter-initrd", PCR_BANKS],
      [2, 15, "systemd", EVENT, PCR_BANKS],
      [3, 11, "systemd", "leave-initrd", ["sha256"]],
    ]);
    expect(hex(recs[1]!.digests[1]!.digest)).toBe(hex(H("sha256", EVENT)));
    expect(recs.map(recordStringMatches)).toEqual([true, true, true]);
  });

  it("reads plain JSON lines, CRLF-free blank lines and a last line without newline, and skips unknown banks", () => {
    const d = hex(H("sha256", "x"));
    const log = [
      "",
      `{"pcr":15,"digests":[{"hashAlg":"sm3_256","digest":"zz"},{"hashAlg":"sha256","digest":"${d!.toUpperCase()}"}]}`,
      "   ",
      `\x1e{"nv_index":16777216,"digests":[],"content_type":"other","content":7}`,
      `{"pcr":0,"digests":[]}`,
    ].join("\n");
    const recs = parseMeasureLog(enc(log));
    expect(recs).toEqual<LogRecord[]>([
      { line: 2, pcr: 15, digests: [{ bank: "sha256", digest: H("sha256", "x") }] },
      { line: 4, pcr: undefined, nvIndex: 16777216, digests: [], contentType: "other" },
      { line: 5, pcr: 0, digests: [] },
    ]);
    expect(recordStringMatches(recs[0]!)).toBeUndefined();
  });

  it("finds a record whose string does not hash to its digests", () => {
    const forged = record(15, EVENT).replace(
      `"string":"${EVENT}"`,
      `"string":"${EVENT.replace("signed", "none")}"`,
    );
    expect(recordStringMatches(parseMeasureLog(enc(forged))[0]!)).toBe(false);
  });

  const S = `"digest":"${"00".repeat(32)}"`;
  it.each([
    ["not JSON", "{pcr:15}", /^Cannot parse "log" line 2: not JSON \(.*\), expected one record per line$/],
    ["an array", "[1]", 'Cannot parse "log" line 2: an array, expected a JSON object'],
    ["no pcr", '{"digests":[]}', 'Cannot parse "log" line 2: no "pcr" (or "nv_index"), expected one'],
    [
      "pcr and nv_index",
      '{"pcr":1,"nv_index":2,"digests":[]}',
      'Cannot parse "log" line 2: both "pcr" and "nv_index", expected one of them',
    ],
    ["pcr 24", '{"pcr":24,"digests":[]}', 'Cannot parse "log" line 2: "pcr" is 24, expected an integer 0…23'],
    [
      "pcr a string",
      '{"pcr":"15","digests":[]}',
      'Cannot parse "log" line 2: "pcr" is "15", expected an integer 0…23',
    ],
    [
      "pcr 1.5",
      '{"pcr":1.5,"digests":[]}',
      'Cannot parse "log" line 2: "pcr" is 1.5, expected an integer 0…23',
    ],
    [
      "nv_index negative",
      '{"nv_index":-1,"digests":[]}',
      'Cannot parse "log" line 2: "nv_index" is -1, expected an unsigned 32-bit integer',
    ],
    ["no digests", '{"pcr":15}', 'Cannot parse "log" line 2: "digests" is missing, expected an array'],
    [
      "a digest not an object",
      '{"pcr":15,"digests":["ab"]}',
      'Cannot parse "log" line 2: digests[0] is a string, expected an object',
    ],
    [
      "no hashAlg",
      `{"pcr":15,"digests":[{${S}}]}`,
      'Cannot parse "log" line 2: digests[0].hashAlg is missing, expected a string',
    ],
    [
      "a short sha256",
      '{"pcr":15,"digests":[{"hashAlg":"sha256","digest":"abcd"}]}',
      'Cannot parse "log" line 2: digests[0] sha256 digest of 4 characters, expected 64 hex digits',
    ],
    [
      "a non-hex digest",
      `{"pcr":15,"digests":[{"hashAlg":"sha1","digest":"${"g".repeat(40)}"}]}`,
      'Cannot parse "log" line 2: digests[0] sha1 digest of 40 characters, expected 40 hex digits',
    ],
    [
      "a digest number",
      '{"pcr":15,"digests":[{"hashAlg":"sha1","digest":5}]}',
      'Cannot parse "log" line 2: digests[0].digest is a number, expected a hex string',
    ],
    [
      "a bank twice",
      `{"pcr":15,"digests":[{"hashAlg":"sha256",${S}},{"hashAlg":"sha256",${S}}]}`,
      'Cannot parse "log" line 2: sha256 digest twice, expected one per bank',
    ],
    [
      "content_type a number",
      '{"pcr":15,"digests":[],"content_type":1}',
      'Cannot parse "log" line 2: "content_type" is a number, expected a string',
    ],
    [
      "systemd content missing",
      '{"pcr":15,"digests":[],"content_type":"systemd"}',
      'Cannot parse "log" line 2: "content" is missing, expected an object',
    ],
    [
      "systemd content.string a number",
      '{"pcr":15,"digests":[],"content_type":"systemd","content":{"string":1}}',
      'Cannot parse "log" line 2: "content.string" is a number, expected a string',
    ],
  ])("refuses %s with the line number", (_, line, msg) => {
    const log = enc(`${record(15, EVENT)}${line}\n${record(15, EVENT)}`);
    const err = (() => {
      try {
        parseMeasureLog(log, "log");
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).data).toMatchObject({ line: 2 });
    if (typeof msg === "string") expect((err as Error).message).toBe(msg);
    else expect((err as Error).message).toMatch(msg);
  });

  it("refuses bytes that are not UTF-8", () => {
    const bytes = new Uint8Array([...enc(record(15, EVENT)), 0x7b, 0xff, 0x7d, 0x0a]);
    expectFormatError(
      () => parseMeasureLog(bytes, "log"),
      'Cannot parse "log" line 2: not UTF-8, expected a JSON record',
    );
  });

  it("refuses a log, a line or a line count over its cap", () => {
    expectFormatError(
      () => parseMeasureLog(new Uint8Array(MAX_MEASURE_LOG_BYTES + 1), "log"),
      `Cannot parse "log": ${MAX_MEASURE_LOG_BYTES + 1} bytes, expected at most ${MAX_MEASURE_LOG_BYTES}`,
    );
    const long = enc(`${" ".repeat(MAX_MEASURE_LOG_LINE + 1)}\n`);
    expectFormatError(
      () => parseMeasureLog(long, "log"),
      `Cannot parse "log" line 1: ${MAX_MEASURE_LOG_LINE + 1} bytes, expected a record of at most ${MAX_MEASURE_LOG_LINE}`,
    );
    const many = enc("\n".repeat(MAX_MEASURE_LOG_LINES + 1));
    expectFormatError(
      () => parseMeasureLog(many, "log"),
      `Cannot parse "log": more than ${MAX_MEASURE_LOG_LINES} lines`,
    );
    expect(parseMeasureLog(enc("\n".repeat(MAX_MEASURE_LOG_LINES)), "log")).toEqual([]);
  });
});

describe("replayLog()", () => {
  it("extends each PCR's banks in log order from the initial value", () => {
    const log = record(11, "enter-initrd") + record(15, EVENT) + record(11, "leave-initrd");
    const got = replayLog(parseMeasureLog(enc(log)));
    const expected = (bank: PcrBank, pcr: number, events: string[]) => {
      let v: Uint8Array = initialPcrValue(pcr, bank);
      for (const e of events) v = H(bank, v, H(bank, e));
      return hex(v);
    };
    expect(got.map((r) => [r.pcr, r.bank, hex(r.value), r.records])).toEqual([
      ...PCR_BANKS.map((b) => [11, b, expected(b, 11, ["enter-initrd", "leave-initrd"]), 2]),
      ...PCR_BANKS.map((b) => [15, b, expected(b, 15, [EVENT]), 1]),
    ]);
  });

  it("replays one PCR, giving a PCR without records its initial value in the log's banks", () => {
    const recs = parseMeasureLog(enc(record(11, "enter-initrd", ["sha256", "sha1"])));
    expect(replayLog(recs, 11).map((r) => r.bank)).toEqual(["sha1", "sha256"]);
    expect(replayLog(recs, 18).map((r) => [r.pcr, r.bank, hex(r.value), r.records])).toEqual([
      [18, "sha1", "ff".repeat(20), 0],
      [18, "sha256", "ff".repeat(32), 0],
    ]);
    expect(replayLog([], 15)).toEqual([]);
  });

  it("gives no value for a bank a record of that PCR lacks, naming the first such line", () => {
    const log = record(15, "a") + record(15, "b", ["sha256"]) + record(15, "c", ["sha384"]) + record(7, "d");
    const got = replayLog(parseMeasureLog(enc(log)), 15);
    expect(got.map((r) => [r.bank, r.value === undefined, r.missingAt])).toEqual([
      ["sha1", true, 2],
      ["sha256", true, 3],
      ["sha384", true, 2],
      ["sha512", true, 2],
    ]);
  });

  it("skips NvPCR records", () => {
    const recs = parseMeasureLog(enc(`${record(15, "a")}{"nv_index":1,"digests":[]}\n`));
    expect(replayLog(recs).map((r) => r.pcr)).toEqual([15, 15, 15, 15]);
  });
});
