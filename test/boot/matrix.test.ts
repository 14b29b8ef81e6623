// The boot matrix (issue 7): the test OS (two signed builds with their own transient keys, a verity disk and
// nine tamper variants) booted in QEMU through each initramfs kind — sealroot as PID 1 of the busybox
// initramfs, dracut with systemd, dracut without — one boot per scenario and kind, every scenario on every
// kind (test/boot/lib/matrix.ts lists them with their expectations). A boot passes when the console shows
// the expected outcome: the OS init's report (version, kind of root, unreadable files) or, for a refusal,
// sealroot's one-line reason at the expected stage and no OS init. The disks are the test OS's own (its
// physical root has the top-level directories dracut's shell /init requires), attached with snapshot=on.
// Schedule: every initramfs is built (or found cached) first; then the boots run, one vCPU each, as many at
// once as the host has cores (TCG is CPU-bound: on 2 cores two 1-vCPU boots finish sooner than one 2-vCPU
// boot after another). The table prints at the end, in scenario order; a mismatch fails its test and
// prints that boot's serial log.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { SEALROOT_BIN } from "../../initrd/build.ts";
import { qemuAvailable } from "../../qemu/lib/qemu.ts";
import { parseMeasureLog, replayLog } from "../../src/core/measure.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { dracutAvailable } from "./lib/dracut.ts";
import {
  type BuiltImage,
  formatTable,
  IMAGE_NAMES,
  type ImageName,
  KINDS,
  type Kind,
  kindImage,
  MATRIX_LOGS,
  type MatrixRow,
  measuredPcr15,
  runScenario,
  SCENARIOS,
  VM_MEM_MIB,
} from "./lib/matrix.ts";
import { build, type TestOsManifest, testOs } from "./lib/test-os.ts";

const BIN = SEALROOT_BIN;
const qemu = qemuAvailable();
const dracut = dracutAvailable();
const skip = qemu !== true ? qemu : existsSync(BIN) ? undefined : `${BIN} absent (npm run build)`;
const kindSkip = (kind: Kind): string | undefined =>
  kind !== "busybox" && dracut !== true ? dracut : undefined;
const kinds = KINDS.filter((k) => kindSkip(k) === undefined);

/** Boots at once: one per core, as long as each VM's memory fits twice over. */
const PARALLEL = Math.max(
  1,
  Math.min(availableParallelism(), Math.floor(totalmem() / (2 * VM_MEM_MIB * 2 ** 20))),
);

/** Runs `f` when one of PARALLEL slots is free (first come, first served). */
const waiting: (() => void)[] = [];
let busy = 0;
async function inSlot<T>(f: () => Promise<T>): Promise<T> {
  if (busy < PARALLEL) busy++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // the slot is handed over, busy unchanged
  try {
    return await f();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else busy--;
  }
}

const HEADER = `boot matrix: every scenario on each kind (${kinds.join(", ")}), ${PARALLEL} boot(s) at once`;
const order = (r: MatrixRow) => KINDS.indexOf(r.kind) * SCENARIOS.length + SCENARIOS.indexOf(r.scenario);

describe.skipIf(skip !== undefined).concurrent(`boot matrix (${skip ?? "qemu"})`, () => {
  let os: TestOsManifest;
  let work: string;
  const rows: MatrixRow[] = [];
  const images = new Map<string, BuiltImage>();

  beforeAll(async () => {
    os = await testOs();
    work = mkdtempSync(join(tmpdir(), "sealroot-matrix-"));
    // Every initramfs before the first boot: the builds are synchronous and would stall running VMs' consoles.
    for (const kind of kinds)
      for (const name of IMAGE_NAMES) {
        const k = `${kind}/${name}`;
        const t = performance.now();
        const img = kindImage(kind, name, os, join(work, k), process.env.SEALROOT_BIN);
        console.log(
          `initramfs ${k}: ${(img.bytes / 1e6).toFixed(1)} MB ${img.cached ? "(cached)" : `built in ${((performance.now() - t) / 1000).toFixed(1)} s`}`,
        );
        images.set(k, img);
      }
  }, 1_800_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    rows.sort((a, b) => order(a) - order(b));
    if (rows.length) process.stderr.write(`\n${formatTable(rows, HEADER)}\nserial logs: ${MATRIX_LOGS}\n`);
  });

  const image = (kind: Kind, name: ImageName): BuiltImage => {
    const img = images.get(`${kind}/${name}`);
    if (!img) throw new Error(`Cannot find initramfs ${kind}/${name}: not built, expected by beforeAll`);
    return img;
  };

  for (const kind of KINDS) {
    describe.skipIf(kindSkip(kind) !== undefined)(
      `${kind}${kindSkip(kind) ? ` (${kindSkip(kind)})` : ""}`,
      () => {
        it.for(SCENARIOS)("$name", async (s, { expect }) => {
          const row = await inSlot(() => runScenario(kind, s, os, image(kind, s.image)));
          rows.push(row);
          const o = row.observation;
          if (!row.ok) {
            process.stderr.write(
              `\n=== MISMATCH ${kind} ${s.name}: expected "${row.expected}", observed "${row.observed}"` +
                `${o.reasons.length ? ` (reason: ${o.reasons.join(" | ")})` : ""}; serial log ${row.log}:\n` +
                `${row.result.serial}\n=== end of ${kind} ${s.name}\n`,
            );
          }
          const context = `${kind} ${s.name} (${s.what}); serial log ${row.log}; tail:\n${row.result.serial.slice(-2500)}`;
          expect(row.observed, context).toBe(row.expected);
          expect(row.ok, `reason ${JSON.stringify(o.reasons)} does not match; ${context}`).toBe(true);
          const e = s.expect(os);
          if (e.outcome === "boot") {
            expect(o.report.values.pid, context).toBe("1");
            // a composefs root serves exactly the committed tree (a legacy bind root also shows the physical root)
            if (e.root !== "bind" && !e.unreadable)
              expect(o.report.content, context).toBe(build(os, e.version).content);
            if (e.root === "composefs+verity") expect(o.report.ostreeBooted, context).toBe(true);
            const measurement = (
              o.report.decisionJson as { decision?: { measurement?: Record<string, unknown> } }
            )?.decision?.measurement;
            if (s.tpm) {
              // the TPM holds the build's value, and replaying the log the boot appended gives it too
              expect(o.report.pcr15Sha256, context).toBe(e.pcr15);
              expect(e.pcr15, "two builds measure two values").not.toBe(measuredPcr15(os, 3 - e.version));
              const log = parseMeasureLog(new TextEncoder().encode(o.report.measureLog.join("\n")));
              expect(
                log.map((r) => r.string),
                context,
              ).toEqual([measurement?.event]);
              const replayed = replayLog(log, 15).find((r) => r.bank === "sha256");
              expect(replayed?.value && toHex(replayed.value), context).toBe(e.pcr15);
              expect(measurement?.device, context).toMatch(/^\/dev\/tpm(rm)?0$/);
            } else {
              // a boot without a TPM goes on and says so
              expect(o.report.pcr15Sha256, context).toBe("none");
              expect(measurement?.skipped, context).toBe(
                "no TPM (/dev/tpmrm0, /dev/tpm0): the boot is not measured",
              );
            }
          } else {
            expect(o.report.tOs, `the OS init must not run; ${context}`).toBeUndefined();
          }
        });
      },
    );
  }
});
