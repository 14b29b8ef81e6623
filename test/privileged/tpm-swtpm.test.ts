// sys/tpm.ts against a real TPM 2.0: swtpm (libtpms, Debian's swtpm package) as a socket server, driven
// by the same marshalling the boot uses on /dev/tpmrm0 — under Bun (run-tpm.ts, as the compiled binary
// runs) and in-process under Node. PCR 15 is extended with the sealroot event in every active bank, the
// values read back with TPM2_PCR_Read must equal the replay of the log written alongside, and the TPM's
// own refusal (PCR 17 at locality 0) arrives as a TpmError naming TPM_RC_LOCALITY.
// A CUSE character device (swtpm cuse) needs /dev/cuse and the cuse module, which this kernel lacks; the
// socket exercises the same fd transport (FdTpm) that a device node uses.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SWTPM, type Swtpm, startSwtpm } from "../../qemu/lib/swtpm.ts";
import {
  extendPcr,
  formatMeasureRecord,
  initialPcrValue,
  measurementEvent,
  parseMeasureLog,
  replayLog,
} from "../../src/core/measure.ts";
import { toHex } from "../../src/formats/bytes.ts";
import { eventDigests, PCR_BANKS } from "../../src/formats/tpm2.ts";
import {
  appendMeasureLog,
  connectTpmSocket,
  measureEvent,
  openTpmDevice,
  pcrBanks,
  readPcrOnTpm,
} from "../../src/sys/tpm.ts";
import { sealroot } from "../helpers/cli.ts";
import { ROOT } from "../helpers/fixtures.ts";
import {
  BASE_CMDLINE,
  COMMIT2,
  cli,
  freshCopy,
  inNamespace,
  removeCopies,
  TARGET,
} from "./prepare-root-env.ts";

if (!existsSync(SWTPM))
  throw new Error(
    `Cannot run swtpm "${SWTPM}": file missing, expected Debian package swtpm (scripts/setup.sh installs it)`,
  );

const EVENT = measurementEvent({
  commit: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
  composefs: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  key: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  policy: "signed",
});

const started: Swtpm[] = [];

/** A fresh swtpm (TPM 2.0, TPM2_Startup(CLEAR) done) serving commands on a unix socket. */
async function startServer(): Promise<string> {
  const tpm = await startSwtpm({ server: true });
  started.push(tpm);
  return tpm.server as string;
}

afterAll(() => {
  removeCopies();
  for (const tpm of started) tpm.stop();
});

/** What the log replays to, bank by bank, for PCR 15. */
function replayed(log: string): Record<string, string> {
  const recs = parseMeasureLog(readFileSync(log));
  return Object.fromEntries(replayLog(recs, 15).map((r) => [r.bank, toHex(r.value!)]));
}

/** PCR 15 after extending the event `times` times from zero, computed by the pure extend rule. */
function expected(times: number): Record<string, string> {
  return Object.fromEntries(
    PCR_BANKS.map((b) => {
      let v = initialPcrValue(15, b);
      for (let i = 0; i < times; i++) v = extendPcr(b, v, eventDigests(EVENT, [b])[0]!.digest);
      return [b, toHex(v)];
    }),
  );
}

describe("sys/tpm.ts against swtpm", () => {
  it("under Bun: finds the four banks, extends PCR 15 in each, reads back the log's replay, names TPM_RC_LOCALITY", async () => {
    const sock = await startServer();
    const log = join(mkdtempSync(join(tmpdir(), "sealroot-log-")), "run/log/systemd/tpm2-measure.log");
    const r = spawnSync(
      join(ROOT, "node_modules/.bin/bun"),
      [join(ROOT, "test/privileged/run-tpm.ts"), sock, log, EVENT],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    if (r.status !== 0) throw new Error(`run-tpm exited ${r.status}: ${r.stderr}`);
    const o = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(o.runtime).toBe("bun");
    expect(o.banks).toEqual({ banks: ["sha1", "sha256", "sha384", "sha512"], unsupported: [] });
    expect(o.before).toEqual(expected(0));
    expect(o.measured).toEqual([PCR_BANKS, PCR_BANKS]);
    expect(o.after).toEqual(expected(2));
    expect(o.after).toEqual(replayed(log));
    expect(o.pcr17).toEqual({
      message: `Cannot extend PCR 17 of "${sock}": TPM_RC_LOCALITY (0x907), expected TPM_RC_SUCCESS`,
      rc: 0x907,
    });
    // two records, byte for byte in systemd's format, mode 0600 with the sticky bit cleared
    const text = readFileSync(log, "utf8");
    expect(
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => l.replace(/"timestamp":\d+/, '"timestamp":0')),
    ).toEqual([
      formatMeasureRecord({
        pcr: 15,
        digests: eventDigests(EVENT, PCR_BANKS),
        event: EVENT,
        bootId: "0123456789abcdef0123456789abcdef",
        timestampUsec: 0,
      }).trimEnd(),
      formatMeasureRecord({
        pcr: 15,
        digests: eventDigests(EVENT, PCR_BANKS),
        event: EVENT,
        bootId: "0123456789abcdef0123456789abcdef",
        timestampUsec: 0,
      }).trimEnd(),
    ]);
    const mode = spawnSync("stat", ["-c", "%a", log], { encoding: "utf8" }).stdout.trim();
    expect(mode).toBe("600");
    // and the compiled binary's pcr-replay of that log prints what the TPM holds
    const after = o.after as Record<string, string>;
    expect(sealroot("pcr-replay", "--log", log, "--pcr", "15")).toEqual({
      code: 0,
      stdout: PCR_BANKS.map((b) => `15 ${b}: ${after[b]}\n`).join(""),
      stderr: "",
    });
  });

  it("under Node: the same transport measures once and reads back H(0 ‖ H(event)) in every bank", async () => {
    const sock = await startServer();
    const tpm = connectTpmSocket(sock);
    try {
      expect(pcrBanks(tpm, 15).banks).toEqual(PCR_BANKS);
      const m = measureEvent(tpm, 15, EVENT);
      expect(m.digests.map((d) => [d.bank, toHex(d.digest)])).toEqual(
        eventDigests(EVENT, PCR_BANKS).map((d) => [d.bank, toHex(d.digest)]),
      );
      const got = Object.fromEntries(readPcrOnTpm(tpm, 15, PCR_BANKS).map((v) => [v.bank, toHex(v.value)]));
      expect(got).toEqual(expected(1));
      // the pinned sha256 value of core/measure.test.ts, now from a TPM
      expect(got.sha256).toBe("c16ab9e3f0a6c5daeaf3d094bc47e189ab1b5446f67355f794cae81e529a29d8");
    } finally {
      tpm.close();
    }
  });

  it("refuses a stale log whose sticky bit says an append did not finish, as systemd does", () => {
    const log = join(mkdtempSync(join(tmpdir(), "sealroot-log-")), "tpm2-measure.log");
    appendMeasureLog(log, "x\n");
    spawnSync("chmod", ["1600", log]);
    expect(() => appendMeasureLog(log, "y\n")).toThrow(
      `Cannot append to measurement log "${log}": ESTALE, expected no sticky bit (it marks an append that did not finish)`,
    );
    expect(readFileSync(log, "utf8")).toBe("x\n");
  });

  it("finds no TPM device where none exists, and refuses a device path that is a regular file", () => {
    expect(openTpmDevice(["/nonexistent/tpmrm0", "/nonexistent/tpm0"])).toBeUndefined();
    const file = join(mkdtempSync(join(tmpdir(), "sealroot-tpm-")), "tpm0");
    spawnSync("touch", [file]);
    expect(() => openTpmDevice([file])).toThrow(
      `Cannot open TPM device "${file}": ENOTTY, expected a character device`,
    );
  });
});

describe("sealroot prepare-root measures the boot it prepares", () => {
  it("extends PCR 15 of a real TPM with the boot's event, and the log it appends replays to the TPM's value", async () => {
    const sock = await startServer();
    const c = freshCopy();
    const r = inNamespace({
      copy: c.copy,
      phys: c.phys,
      target: TARGET,
      scenario: { exec: cli(`${BASE_CMDLINE} ot-composefs=on`, "--tpm", sock) },
    });
    expect(r.outcome).toMatchObject({ ok: true, exit: 0, stderr: "" });
    const event = `sealroot:v1:commit=${COMMIT2}:composefs=none:key=none:policy=on`;
    const decision = r.decision as { decision: { measurement: Record<string, unknown> } };
    expect(decision.decision.measurement).toEqual({
      pcr: 15,
      tpm: "auto",
      setBy: [],
      event,
      digests: eventDigests(event, PCR_BANKS).map((d) => ({ bank: d.bank, digest: toHex(d.digest) })),
      device: sock,
      log: "/run/log/systemd/tpm2-measure.log",
    });
    const records = parseMeasureLog(new TextEncoder().encode(r.measureLog ?? ""));
    expect(records.map((x) => x.string)).toEqual([event]);
    const tpm = connectTpmSocket(sock);
    try {
      const held = readPcrOnTpm(tpm, 15, PCR_BANKS).map((v) => [v.bank, toHex(v.value)]);
      expect(held).toEqual(replayLog(records, 15).map((x) => [x.bank, toHex(x.value!)]));
      expect(held).not.toEqual(PCR_BANKS.map((b) => [b, toHex(initialPcrValue(15, b))]));
    } finally {
      tpm.close();
    }
  });

  it("refuses at stage measure when sealroot.tpm=required finds no TPM, leaving SYSROOT and /run as they were", () => {
    const c = freshCopy();
    const r = inNamespace({
      copy: c.copy,
      phys: c.phys,
      target: TARGET,
      scenario: {
        exec: cli(`${BASE_CMDLINE} ot-composefs=on sealroot.tpm=required`, "--tpm", "/nonexistent/tpm0"),
      },
    });
    expect(r.outcome.exit).toBe(1);
    expect(r.outcome.stderr).toBe(
      "sealroot: prepare-root refused (measure): Cannot measure the boot into PCR 15: no TPM (/nonexistent/tpm0), expected a TPM (karg sealroot.tpm=required)\n",
    );
    expect(r.after).toEqual(r.before);
  });
});
