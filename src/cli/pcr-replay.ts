// `sealroot pcr-replay --log FILE [--pcr N]`: replays a userspace measurement log (systemd's
// /run/log/systemd/tpm2-measure.log format, which sealroot appends to) and prints the PCR values it
// implies, one line per PCR and bank: `<pcr> <bank>: <hex>`, PCRs ascending, banks sha1, sha256, sha384,
// sha512 — the banks named anywhere in the log. A verifier compares these with the TPM's quote. With
// --pcr only that PCR is printed (its initial value in the log's banks when no record names it). A bank
// that some record of the PCR lacks cannot be replayed: it is left out with one line on stderr. A
// malformed log prints nothing to stdout and one line to stderr, exit 1.

import { UsageError } from "../base/errors.ts";
import { MAX_MEASURE_LOG_BYTES, parseMeasureLog, replayLog } from "../core/measure.ts";
import { toHex } from "../formats/bytes.ts";
import { PCR_COUNT } from "../formats/tpm2.ts";
import { type CommandModule, readArgFile } from "./context.ts";

export const pcrReplayCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "pcr-replay",
    "Replay a TPM measurement log (CEL-JSON as systemd writes it) and print the PCR values per bank",
    (a) =>
      a
        .option("log", {
          type: "string",
          demandOption: true,
          describe: "the log, e.g. /run/log/systemd/tpm2-measure.log",
        })
        .option("pcr", { type: "number", describe: `only this PCR (0…${PCR_COUNT - 1})` }),
    (argv) => {
      const path = argv.log as string;
      const pcr = argv.pcr as number | undefined;
      if (pcr !== undefined && !(Number.isInteger(pcr) && pcr >= 0 && pcr < PCR_COUNT))
        throw new UsageError(`Cannot replay PCR ${pcr}: not a PCR, expected an integer 0…${PCR_COUNT - 1}`);
      const records = parseMeasureLog(
        readArgFile(ctx.fs, path, MAX_MEASURE_LOG_BYTES, "measurement log"),
        path,
      );
      const lines: string[] = [];
      for (const r of replayLog(records, pcr)) {
        if (r.value === undefined)
          ctx.err(`sealroot: PCR ${r.pcr} ${r.bank} left out: line ${r.missingAt} has no ${r.bank} digest\n`);
        else lines.push(`${r.pcr} ${r.bank}: ${toHex(r.value)}\n`);
      }
      ctx.out(lines.join(""));
      setExit(0);
    },
  );
