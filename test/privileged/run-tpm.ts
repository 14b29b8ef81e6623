// Child program for tpm-swtpm.test.ts, run under Bun (the runtime of the compiled binary) and under Node:
// drives a swtpm over its command socket through src/sys/tpm.ts — the PCR banks, PCR 15 before, the
// sealroot event measured twice with each record appended to a measurement log, PCR 15 after, and an
// extend of PCR 17 that the TPM must refuse at locality 0 — and prints one JSON object of observations.
// Usage: run-tpm.ts SOCKET LOGFILE EVENT

import { TpmError } from "../../src/base/errors.ts";
import { formatMeasureRecord } from "../../src/core/measure.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { PCR_BANKS } from "../../src/formats/tpm2.ts";
import {
  appendMeasureLog,
  boottimeUsec,
  connectTpmSocket,
  extendPcrOnTpm,
  measureEvent,
  pcrBanks,
  readPcrOnTpm,
} from "../../src/sys/tpm.ts";

const [socketPath, logPath, event] = process.argv.slice(2) as [string, string, string];
const tpm = connectTpmSocket(socketPath);
const values = (pcr: number) =>
  Object.fromEntries(readPcrOnTpm(tpm, pcr, PCR_BANKS).map((v) => [v.bank, toHex(v.value)]));

const out: Record<string, unknown> = { runtime: "Bun" in globalThis ? "bun" : "node" };
out.banks = pcrBanks(tpm, 15);
out.before = values(15);
const measured = [];
for (let i = 0; i < 2; i++) {
  const m = measureEvent(tpm, 15, event);
  appendMeasureLog(
    logPath,
    formatMeasureRecord({
      pcr: 15,
      digests: m.digests,
      event,
      bootId: "0123456789abcdef0123456789abcdef",
      timestampUsec: boottimeUsec(),
    }),
  );
  measured.push(m.digests.map((d) => d.bank));
}
out.measured = measured;
out.after = values(15);
try {
  extendPcrOnTpm(tpm, 17, [{ bank: "sha256", digest: new Uint8Array(32) }]);
  out.pcr17 = "extended";
} catch (e) {
  out.pcr17 = e instanceof TpmError ? { message: e.message, rc: e.rc } : String(e);
}
tpm.close();
process.stdout.write(JSON.stringify(out));
