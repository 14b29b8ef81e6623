// The boot matrix (issue 7): the test OS (two signed builds with their own transient keys, a verity disk and
// nine tamper variants) booted in QEMU through each initramfs kind — sealroot as PID 1 of the busybox
// initramfs, dracut with systemd, dracut without — one boot per scenario (test/boot/lib/matrix.ts lists them
// with their expectations). A boot passes when the console shows the expected outcome: the OS init's
// report (version, kind of root, unreadable files) or, for a refusal, sealroot's one-line reason at the
// expected stage and no OS init. Budget (2 TCG cores, ≈12–25 s a boot): the busybox kind runs every
// scenario, each dracut kind a representative subset (good, transient keys both ways, a downgrade, one
// refusal per stage: signature, image, keys, the read probe); SEALROOT_BOOT_FULL=1 runs all on every kind.
// Disks: the test OS's, copied once with /dev /proc /sys /run /tmp added at the top (layoutDisk): dracut's
// shell /init refuses a root without them, and `ostree admin init-fs --modern` makes none.
// The table prints at the end; a mismatch fails its test and prints that boot's serial log.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/fixtures.ts";
import { qemuAvailable } from "../vm/lib/qemu.ts";
import { dracutAvailable } from "./lib/dracut.ts";
import {
  type BuiltImage,
  formatTable,
  type ImageName,
  KINDS,
  type Kind,
  kindImage,
  MATRIX_LOGS,
  type MatrixRow,
  runScenario,
  SCENARIOS,
  scenariosFor,
} from "./lib/matrix.ts";
import { build, type TestOsManifest, testOs } from "./lib/test-os.ts";

const BIN = process.env.SEALROOT_BIN ?? join(ROOT, "dist/sealroot");
const FULL = process.env.SEALROOT_BOOT_FULL === "1";
const qemu = qemuAvailable();
const dracut = dracutAvailable();
const skip = qemu !== true ? qemu : existsSync(BIN) ? undefined : `${BIN} absent (npm run build)`;
const kindSkip = (kind: Kind): string | undefined =>
  kind !== "busybox" && dracut !== true ? dracut : undefined;

const HEADER =
  `boot matrix: every scenario on busybox; ` +
  (FULL
    ? "every scenario on each dracut kind (SEALROOT_BOOT_FULL=1)"
    : `dracut kinds run the subset ${SCENARIOS.filter((s) => s.everyKind)
        .map((s) => s.name)
        .join(", ")} (SEALROOT_BOOT_FULL=1 for all)`);

describe.skipIf(skip !== undefined)(`boot matrix (${skip ?? "qemu"})`, () => {
  let os: TestOsManifest;
  let work: string;
  const rows: MatrixRow[] = [];
  const images = new Map<string, BuiltImage>();
  const image = (kind: Kind, name: ImageName): BuiltImage => {
    const k = `${kind}/${name}`;
    let img = images.get(k);
    if (!img) {
      const t = performance.now();
      img = kindImage(kind, name, os, join(work, k), process.env.SEALROOT_BIN);
      console.log(
        `initramfs ${k}: ${(img.bytes / 1e6).toFixed(1)} MB ${img.cached ? "(cached)" : `built in ${((performance.now() - t) / 1000).toFixed(1)} s`}`,
      );
      images.set(k, img);
    }
    return img;
  };

  beforeAll(async () => {
    os = await testOs();
    work = mkdtempSync(join(tmpdir(), "sealroot-matrix-"));
  }, 1_200_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    if (rows.length) process.stderr.write(`\n${formatTable(rows, HEADER)}\nserial logs: ${MATRIX_LOGS}\n`);
  });

  for (const kind of KINDS) {
    describe.skipIf(kindSkip(kind) !== undefined)(
      `${kind}${kindSkip(kind) ? ` (${kindSkip(kind)})` : ""}`,
      () => {
        it.each(scenariosFor(kind, FULL).map((s) => [s.name, s] as const))("%s", async (_name, s) => {
          const row = await runScenario(kind, s, os, image(kind, s.image));
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
          } else {
            expect(o.report.tOs, `the OS init must not run; ${context}`).toBeUndefined();
          }
        });
      },
    );
  }
});
