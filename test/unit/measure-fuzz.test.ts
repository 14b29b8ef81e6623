// Property tests (fast-check, fixed seeds) for the two decoders of measured boot over hostile input: the
// TPM 2.0 response decoders (src/formats/tpm2.ts) on mutated and truncated real swtpm responses and
// random bytes, and the userspace measurement log parser (src/core/measure.ts) on mutated logs. Each
// input must decode or throw FormatError (or TpmError for a response code) — never another exception.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError, TpmError } from "../../src/base/errors.ts";
import { formatMeasureRecord, parseMeasureLog, replayLog } from "../../src/core/measure.ts";
import { fromHex } from "../../src/formats/bytes.ts";
import {
  decodeGetCapabilityPcrs,
  decodePcrExtend,
  decodePcrRead,
  eventDigests,
  PCR_BANKS,
} from "../../src/formats/tpm2.ts";

const SEED = 20260412;
const ctx = { path: "tpm" };

// Real responses from swtpm 0.7.1: GetCapability(PCRS), PCR_Read(15, sha256), PCR_Extend.
const REAL = [
  "80010000002b00000000000000000500000004000403ffffff000b03ffffff000c03ffffff000d03ffffff",
  `80010000003e000000000000001400000001000b03008000000000010020${"00".repeat(32)}`,
  "80020000001300000000000000000000010000",
].map((s) => fromHex(s));

function onlyTypedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof FormatError || e instanceof TpmError)) throw e;
  }
}

const mutated = fc
  .tuple(
    fc.constantFrom(...REAL),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.nat(),
  )
  .map(([base, flips, cut]) => {
    const b = base.slice(0, base.length - (cut % (base.length + 1)));
    for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
    return b;
  });

describe("TPM 2.0 response decoders on hostile bytes", () => {
  it("decode or throw FormatError/TpmError for mutated and truncated real responses", () => {
    fc.assert(
      fc.property(mutated, (bytes) => {
        onlyTypedErrors(() => decodeGetCapabilityPcrs(bytes, ctx));
        onlyTypedErrors(() => decodePcrRead(bytes, 15, ctx));
        onlyTypedErrors(() => decodePcrExtend(bytes, 15, ctx));
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });

  it("decode or throw FormatError/TpmError for random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        onlyTypedErrors(() => decodeGetCapabilityPcrs(bytes, ctx));
        onlyTypedErrors(() => decodePcrRead(bytes, 15, ctx));
        onlyTypedErrors(() => decodePcrExtend(bytes, 15, ctx));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});

describe("parseMeasureLog() on hostile logs", () => {
  const log = new TextEncoder().encode(
    ["enter-initrd", "sealroot:v1:x", "leave-initrd"]
      .map((e, i) =>
        formatMeasureRecord({
          pcr: 11 + 2 * i,
          digests: eventDigests(e, PCR_BANKS),
          event: e,
          bootId: "0123456789abcdef0123456789abcdef",
          timestampUsec: i,
        }),
      )
      .join(""),
  );

  it("parses and replays or throws FormatError for mutated logs", () => {
    const arb = fc
      .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat())
      .map(([flips, cut]) => {
        const b = log.slice(0, log.length - (cut % (log.length + 1)));
        for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
        return b;
      });
    fc.assert(
      fc.property(arb, (bytes) => {
        try {
          replayLog(parseMeasureLog(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("parses or throws FormatError for random JSON values", () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 4 }), (values) => {
        const text = values.map((v) => JSON.stringify(v)).join("\n");
        try {
          replayLog(parseMeasureLog(new TextEncoder().encode(text)));
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
