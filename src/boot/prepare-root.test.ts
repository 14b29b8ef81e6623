// prepareRoot() against a recording fake BootSys (test/helpers/fake-sys.ts) that reads the golden sysroot
// (ostree/sysroot.tar, extracted) through real reads and models the mounts: the exact intents of each boot
// mode (bind, make private, mount composefs, replace the mount), of each refusal (nothing mounted, every
// directory it made removed), and of a fault injected at one call (the undo log run in reverse). Which
// system calls each intent makes, on each kernel, is pinned by src/sys/boot-sys.test.ts and
// mount.test.ts; the real Sys runs the same scenarios in test/privileged/prepare-root*.test.ts.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FakeSys, type FakeSysOptions } from "../../test/helpers/fake-sys.ts";
import { extracted, OSTREE } from "../../test/helpers/fixtures.ts";
import { C1_DIGEST, C2, C2_DIGEST, PRIMARY_KEY_HEX } from "../../test/helpers/golden.ts";
import { failNth } from "../../test/helpers/recorder.ts";
import { readKernelCmdline } from "../core/cmdline.ts";
import { emptyConfig, parsePrepareRootConfig } from "../core/config.ts";
import {
  extendPcr,
  formatMeasureRecord,
  initialPcrValue,
  parseMeasureLog,
  replayLog,
} from "../core/measure.ts";
import { toHex } from "../formats/bytes.ts";
import { decodeVardict, print } from "../formats/gvariant.ts";
import { eventDigests, type PcrBank } from "../formats/tpm2.ts";
import { type LogEvent, type PrepareRootResult, prepareRoot } from "./prepare-root.ts";

/** `ostree=` of boot entry ostree-2.conf: deployment 0, commit 2 (MANIFEST.md, "Deployment sysroot"). */
const TARGET = "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const BASE = `root=LABEL=root rw ostree=${TARGET}`;
const DEP = `/sysroot/ostree/deploy/refos/deploy/${C2}.0`;
const CFS = `${DEP}/.ostree.cfs`;
/** expected.json sysroot.deployments[0].ostree_cfs_fsverity_sha256 (= commit 2's signed digest). */
/** Commit 1's `ostree.composefs.digest.v0`: a well-formed digest that is not this image's. */
const KEYFILE = "/etc/ostree/initramfs-root-binding.key";
const SIGNED_CONF = "[composefs]\nenabled = signed\n";
const LOWER = "/run/ostree/.private/cfsroot-lower";
const STAGING = "/run/sealroot/staging";
const VAR = `${STAGING}/sysroot/ostree/deploy/refos/var`;
/** st_dev 254:1 (new_encode_dev) of the sysroot file system. */
const DEV = 0xfe01;

// ---- the calls, in segments shared by the scenarios ----

const SETUP = [
  "mkdir(/run/ostree, 0o755)",
  "mkdir(/run/ostree/.private, 0o000)",
  "mkdir(/run/sealroot, 0o755)",
  `mkdir(${STAGING}, 0o755)`,
  "makePrivate(/)",
];
const SETUP_COMPOSEFS = [...SETUP, `mkdir(${LOWER}, 0o700)`];
const OPEN_IMAGE = `openImage(${CFS}) = 3`;
const MEASURE = `measureVerity(3) = sha256:${C2_DIGEST}`;
/** The image's EROFS and the overlay on the staging directory, from the fd that was measured (which
 * system calls, on which kernel: src/sys/mount.test.ts and boot-sys.test.ts). */
const composefs = (verity: boolean) =>
  `mountComposefs(fd 3, ${STAGING}, lower ${LOWER}, data /sysroot/ostree/repo/objects${verity ? ", verity=require" : ""}, ro)`;
/** Open, (measure,) mount, close: the composefs step. */
const MOUNT_IMAGE = (verity: boolean) => [
  OPEN_IMAGE,
  ...(verity ? [MEASURE] : []),
  composefs(verity),
  "close(3)",
];
/** The plan of a composefs boot, step by step (each step is also one logged phase). */
const COMPOSEFS_STEPS = [
  "mkdir",
  "mkdir",
  "mkdir",
  "mkdir",
  "make-rprivate",
  "mkdir",
  "composefs",
  "probe",
  "symlink",
  "bind",
  "bind",
  "bind",
  "bind",
  "remount-ro",
  "measure",
  "write-ostree-booted",
  "write-decision",
  "move-into-place",
];
/** The verity probe: the first non-empty file, breadth-first, of commit 2's tree read through the overlay. */
const PROBE = `probeRead(${STAGING}, usr/bin/hello)`;
const VOLATILE_ROOT = ["mkdir(/run/systemd, 0o755)", "symlink(/dev/block/254:1, /run/systemd/volatile-root)"];
/** /etc, /sysroot read-only with the stateroot's var writable inside it, /var. */
const BINDS_COMPOSEFS = [
  `bind(${DEP}/etc, ${STAGING}/etc)`,
  `bind(/sysroot, ${STAGING}/sysroot)`,
  `bind(${VAR}, ${VAR})`,
  `bind(${VAR}, ${STAGING}/var)`,
  `remountReadonly(${STAGING}/sysroot)`,
];
/** The measurement (no TPM in the fake unless a case gives one), then the two records. */
const RECORDS = [
  "tpmMeasure(15) = none",
  "writeFile(/run/ostree-booted, 0o644)",
  "writeFile(/run/sealroot/decision.json, 0o644)",
];
const MOVE = [`replaceMount(${STAGING}, /sysroot)`, `rmdir(${STAGING})`];
const TAIL_COMPOSEFS = [...VOLATILE_ROOT, ...BINDS_COMPOSEFS, ...RECORDS, ...MOVE];
/** The directories SETUP (and SETUP_COMPOSEFS) made, removed in reverse. */
const RMDIR_SETUP = [
  `rmdir(${STAGING})`,
  "rmdir(/run/sealroot)",
  "rmdir(/run/ostree/.private)",
  "rmdir(/run/ostree)",
];
const RMDIR_SETUP_COMPOSEFS = [`rmdir(${LOWER})`, ...RMDIR_SETUP];

/** The namespace before a run: the physical root bound on /sysroot, /run empty. */
const MOUNTS_BEFORE = ["/: tmpfs", `/sysroot: bind ${extracted("ostree/sysroot.tar")}`];
/** The reference's tree (logs/prepare-root-karg.log) on /sysroot after a composefs boot. */
const MOUNTS_COMPOSEFS = [
  "/: tmpfs",
  "/sysroot: overlay composefs ro",
  `/sysroot/etc: bind ${DEP}/etc`,
  "/sysroot/sysroot: bind /sysroot ro",
  `/sysroot/sysroot/ostree/deploy/refos/var: bind ${VAR}`,
  `/sysroot/var: bind ${VAR}`,
];

// ---- running one boot ----

interface Run {
  cmdline: string;
  /** prepare-root.conf text; none: no config file. */
  config?: string;
  /** Which public key the initramfs holds at KEYFILE. */
  key?: "ed25519" | "ed25519-other";
  /** Changes to the fake system (its mounts and key file are set here). */
  fake?: Partial<FakeSysOptions>;
  dryRun?: boolean;
  /** Receives every phase event too. */
  log?: (e: LogEvent) => void;
}

interface Booted {
  r: PrepareRootResult;
  f: FakeSys;
  phases: string[];
  /** The fake's mounts and in-memory files before the run. */
  before: { mounts: string[]; mem: string[] };
}

function boot(run: Run): Booted {
  const f = new FakeSys({
    mounts: { "/sysroot": extracted("ostree/sysroot.tar") },
    dirs: ["/run", "/etc", "/etc/ostree"],
    files: { [KEYFILE]: readFileSync(join(OSTREE, `keys/${run.key ?? "ed25519"}.pub`)) },
    inodes: { [DEP]: { dev: DEV, ino: 4242 }, "/sysroot": { dev: DEV, ino: 2 } },
    verity: { [CFS]: C2_DIGEST },
    ...run.fake,
  });
  const before = { mounts: f.mounts(), mem: f.memTree() };
  const phases: string[] = [];
  let clock = 0;
  const r = prepareRoot(f.sys(), {
    sysroot: "/sysroot",
    cmdline: readKernelCmdline(run.cmdline),
    config:
      run.config === undefined
        ? emptyConfig()
        : parsePrepareRootConfig(run.config, "/usr/lib/ostree/prepare-root.conf"),
    keyRoot: "/",
    run: "/run",
    etcSuffix: "000000",
    ...(run.dryRun ? { dryRun: true } : {}),
    log: (e) => {
      phases.push(e.ok ? e.phase : `${e.phase}!`);
      run.log?.(e);
    },
    now: () => clock++,
  });
  return { r, f, phases, before };
}

// ---- boots ----

interface BootCase extends Run {
  name: string;
  calls: string[];
  /** The fake's mount table afterwards, when the case pins it. */
  mounts?: string[];
}

const BOOTS: BootCase[] = [
  {
    name: "ot-composefs=on mounts the image from the fd it opened, measuring nothing and probing nothing",
    cmdline: `${BASE} ot-composefs=on`,
    calls: [...SETUP_COMPOSEFS, ...MOUNT_IMAGE(false), ...TAIL_COMPOSEFS],
  },
  {
    name: "a signed config with the right key measures the image on the fd it then mounts, with verity=require and a probe read",
    cmdline: BASE,
    config: SIGNED_CONF,
    calls: [...SETUP_COMPOSEFS, ...MOUNT_IMAGE(true), PROBE, ...TAIL_COMPOSEFS],
  },
  {
    name: "ot-composefs=digest= with the image's digest boots like signed mode, without reading a key",
    cmdline: `${BASE} ot-composefs=digest=${C2_DIGEST}`,
    key: "ed25519-other",
    calls: [...SETUP_COMPOSEFS, ...MOUNT_IMAGE(true), PROBE, ...TAIL_COMPOSEFS],
  },
  {
    name: "ot-composefs=off binds the deployment as ostree's legacy mount: /usr read-only, /sysroot and /var writable",
    cmdline: `${BASE} ot-composefs=off`,
    calls: [
      ...SETUP,
      `bind(${DEP}, ${STAGING})`,
      `bind(${STAGING}/usr, ${STAGING}/usr)`,
      `remountReadonly(${STAGING}/usr)`,
      `bind(/sysroot, ${STAGING}/sysroot)`,
      `bind(${VAR}, ${STAGING}/var)`,
      ...RECORDS,
      ...MOVE,
    ],
    mounts: [
      "/: tmpfs",
      `/sysroot: bind ${DEP}`,
      `/sysroot/usr: bind ${STAGING}/usr ro`,
      "/sysroot/sysroot: bind /sysroot",
      `/sysroot/var: bind ${VAR}`,
    ],
  },
  {
    name: "a failing /run/systemd/volatile-root symlink is best effort, as in ostree: the boot goes on",
    cmdline: `${BASE} ot-composefs=on`,
    fake: { fault: failNth("symlink(", "EIO") },
    calls: [
      ...SETUP_COMPOSEFS,
      ...MOUNT_IMAGE(false),
      "mkdir(/run/systemd, 0o755)",
      "symlink(/dev/block/254:1, /run/systemd/volatile-root) → EIO",
      ...BINDS_COMPOSEFS,
      ...RECORDS,
      ...MOVE,
    ],
  },
];

describe("prepareRoot() boots", () => {
  it.each(BOOTS)("$name", (c) => {
    const { r, f } = boot(c);
    expect(r.failed).toBeUndefined();
    expect(r.decision.verdict).toBe("boot");
    expect(f.calls).toEqual(c.calls);
    expect(f.mounts()).toEqual(c.mounts ?? MOUNTS_COMPOSEFS);
    expect(f.openFds()).toEqual([]);
  });

  it("leaves the reference's mount tree on /sysroot, nothing under /run, and /run's records", () => {
    const { f, before } = boot({ cmdline: BASE, config: SIGNED_CONF });
    expect(f.mounts()).toEqual(MOUNTS_COMPOSEFS);
    expect(f.memTree().filter((e) => !before.mem.includes(e))).toEqual([
      "/run/ostree dir 0o755",
      "/run/ostree-booted file 0o644",
      "/run/ostree/.private dir 0o000",
      `${LOWER} dir 0o700`,
      "/run/sealroot dir 0o755",
      "/run/sealroot/decision.json file 0o644",
      "/run/systemd dir 0o755",
      "/run/systemd/volatile-root -> /dev/block/254:1",
    ]);
  });

  it("writes /run/ostree-booted with the deployment's (dev, ino), the key path and composefs.verity", () => {
    const { f } = boot({ cmdline: BASE, config: SIGNED_CONF });
    expect(print("a{sv}", decodeVardict(f.memFile("/run/ostree-booted") ?? new Uint8Array()))).toBe(
      "{'backing-root-device-inode': <(uint64 65025, uint64 4242)>, 'root.transient': <false>, " +
        "'root.transient-ro': <false>, 'composefs.signed': <'/etc/ostree/initramfs-root-binding.key'>, " +
        "'composefs': <true>, 'composefs.verity': <true>, 'sysroot-ro': <true>}",
    );
  });

  it("records the kernel's measurement of the image in decision.json", () => {
    const { f } = boot({ cmdline: BASE, config: SIGNED_CONF });
    const record = JSON.parse(new TextDecoder().decode(f.memFile("/run/sealroot/decision.json")));
    expect(record.decision.image).toEqual({
      path: CFS,
      present: true,
      digest: C2_DIGEST,
      measuredBy: "kernel",
    });
    expect(record.decision.keySets).toEqual([
      {
        path: KEYFILE,
        requiredBy: ["config enabled=signed"],
        keys: 1,
        problems: [],
        verifiedBy: "143321a046bc6a167a6ec934ed8d75213bd11d8d748fdad147d377bbb63ece9c",
      },
    ]);
    expect(record.plan.steps).toEqual(COMPOSEFS_STEPS);
  });

  it("never patches the decision: it comes back frozen, and the kernel's digest is in a new record", () => {
    const { r } = boot({ cmdline: BASE, config: SIGNED_CONF });
    expect(Object.isFrozen(r.decision)).toBe(true);
    expect(Object.isFrozen(r.decision.image)).toBe(true);
    expect(r.decision.image).toMatchObject({ digest: C2_DIGEST, measuredBy: "kernel" });
    expect(() => {
      (r.decision as { verdict: string }).verdict = "refuse";
    }).toThrow(TypeError);
  });

  it("logs one event per phase, in order", () => {
    expect(boot({ cmdline: BASE, config: SIGNED_CONF }).phases).toEqual([
      "decide",
      "plan",
      ...COMPOSEFS_STEPS,
    ]);
  });

  it("changes nothing with dryRun, and returns the plan", () => {
    const f = new FakeSys({ mounts: { "/sysroot": extracted("ostree/sysroot.tar") }, dirs: ["/run"] });
    const r = prepareRoot(f.sys(), {
      sysroot: "/sysroot",
      cmdline: readKernelCmdline(`${BASE} ot-composefs=on`),
      config: emptyConfig(),
      keyRoot: "/",
      run: "/run",
      etcSuffix: "000000",
      dryRun: true,
      log: () => {},
      now: () => 0,
    });
    expect(r.failed).toBeUndefined();
    expect(r.plan?.steps.length).toBe(17);
    expect(f.calls).toEqual([]);
  });
});

// ---- refusals and faults: what was done, then undone ----

interface FailCase extends Run {
  name: string;
  calls: string[];
  failed: NonNullable<PrepareRootResult["failed"]>;
}

const INJECTED = (call: string, errno: string) => `Cannot ${call}: ${errno} (injected fault)`;
const NO_SIGNATURE = `Cannot verify commit ${C2} with the keys in "${KEYFILE}": `;

const FAILS: FailCase[] = [
  {
    name: "a commit signed by another key is refused before any change",
    cmdline: BASE,
    config: SIGNED_CONF,
    key: "ed25519-other",
    calls: [],
    failed: {
      stage: "signature",
      reason: `${NO_SIGNATURE}none of 1 signature verifies with the trusted key, expected an ed25519 signature by one of them`,
    },
  },
  {
    name: "a missing image with composefs on is refused before any change",
    cmdline: `${BASE} ot-composefs=on`,
    fake: { hidden: [CFS] },
    calls: [],
    failed: {
      stage: "image",
      reason: `Cannot find composefs image "${CFS}": no such file, composefs is required`,
    },
  },
  {
    name: "a root already prepared (/run/ostree exists) is refused before any change",
    cmdline: `${BASE} ot-composefs=on`,
    fake: { dirs: ["/run", "/etc", "/etc/ostree", "/run/ostree"] },
    calls: [],
    failed: {
      stage: "setup",
      reason: 'Cannot prepare the root: "/run/ostree" exists, expected a root not yet prepared',
    },
  },
  {
    name: "an image whose digest is not ot-composefs=digest= is refused after measuring it, and the directories go",
    cmdline: `${BASE} ot-composefs=digest=${C1_DIGEST}`,
    calls: [...SETUP_COMPOSEFS, OPEN_IMAGE, MEASURE, "close(3)", ...RMDIR_SETUP_COMPOSEFS],
    failed: {
      stage: "image",
      reason: `Cannot verify composefs image "${CFS}": fs-verity digest ${C2_DIGEST}, expected ${C1_DIGEST} (karg ot-composefs=digest=${C1_DIGEST})`,
    },
  },
  {
    name: "a signed boot refuses an image without fs-verity (kernel answers no digest)",
    cmdline: BASE,
    config: SIGNED_CONF,
    fake: { verity: {} },
    calls: [...SETUP_COMPOSEFS, OPEN_IMAGE, "measureVerity(3) = none", "close(3)", ...RMDIR_SETUP_COMPOSEFS],
    failed: {
      stage: "image",
      reason: `Cannot measure composefs image "${CFS}": fs-verity is not enabled on it, expected a verity-protected image`,
    },
  },
  {
    name: "a failed composefs mount closes the image and undoes the rest in reverse",
    cmdline: BASE,
    config: SIGNED_CONF,
    fake: { fault: failNth("mountComposefs(", "EIO") },
    calls: [
      ...SETUP_COMPOSEFS,
      OPEN_IMAGE,
      MEASURE,
      `${composefs(true)} → EIO`,
      "close(3)",
      // the undo log, newest first: both composefs mount points (nothing there), then the mkdirs
      `unmount(${LOWER}) = false`,
      `unmount(${STAGING}) = false`,
      ...RMDIR_SETUP_COMPOSEFS,
    ],
    failed: { stage: "image", reason: INJECTED(composefs(true), "EIO") },
  },
  {
    name: "a failed read through the verity overlay (the probe) refuses the image and takes the overlay down",
    cmdline: BASE,
    config: SIGNED_CONF,
    fake: { fault: failNth("probeRead(", "EIO") },
    calls: [
      ...SETUP_COMPOSEFS,
      ...MOUNT_IMAGE(true),
      `${PROBE} → EIO`,
      `unmount(${LOWER}) = false`,
      `unmount(${STAGING})`,
      ...RMDIR_SETUP_COMPOSEFS,
    ],
    failed: { stage: "image", reason: INJECTED(PROBE, "EIO") },
  },
  {
    name: "a failed move into place undoes every step in reverse",
    cmdline: BASE,
    config: SIGNED_CONF,
    fake: { fault: failNth("replaceMount(", "EBUSY") },
    calls: [
      ...SETUP_COMPOSEFS,
      ...MOUNT_IMAGE(true),
      PROBE,
      ...VOLATILE_ROOT,
      ...BINDS_COMPOSEFS,
      ...RECORDS,
      `${MOVE[0]} → EBUSY`,
      "unlink(/run/sealroot/decision.json)",
      "unlink(/run/ostree-booted)",
      `unmount(${STAGING}/var)`,
      `unmount(${VAR})`,
      `unmount(${STAGING}/sysroot)`,
      `unmount(${STAGING}/etc)`,
      "unlink(/run/systemd/volatile-root)",
      "rmdir(/run/systemd)",
      `unmount(${LOWER}) = false`,
      `unmount(${STAGING})`,
      ...RMDIR_SETUP_COMPOSEFS,
    ],
    failed: { stage: "move", reason: INJECTED(MOVE[0] as string, "EBUSY") },
  },
  {
    name: "a failed bind of the stateroot's var onto /var unmounts the binds and the composefs root",
    cmdline: `${BASE} ot-composefs=on`,
    fake: { fault: failNth(`bind(${VAR}, ${STAGING}/var)`, "ENOENT") },
    calls: [
      ...SETUP_COMPOSEFS,
      ...MOUNT_IMAGE(false),
      ...VOLATILE_ROOT,
      ...BINDS_COMPOSEFS.slice(0, 3),
      `bind(${VAR}, ${STAGING}/var) → ENOENT`,
      `unmount(${VAR})`,
      `unmount(${STAGING}/sysroot)`,
      `unmount(${STAGING}/etc)`,
      "unlink(/run/systemd/volatile-root)",
      "rmdir(/run/systemd)",
      `unmount(${LOWER}) = false`,
      `unmount(${STAGING})`,
      ...RMDIR_SETUP_COMPOSEFS,
    ],
    failed: { stage: "mount", reason: INJECTED(`bind(${VAR}, ${STAGING}/var)`, "ENOENT") },
  },
];

describe("prepareRoot() refuses", () => {
  it.each(FAILS)("$name", (c) => {
    const { r, f, before } = boot(c);
    expect(r.failed).toEqual(c.failed);
    expect(r.decision.verdict).toBe("refuse");
    expect(f.calls).toEqual(c.calls);
    expect(before.mounts).toEqual(MOUNTS_BEFORE);
    expect(f.mounts()).toEqual(before.mounts);
    expect(f.memTree()).toEqual(before.mem);
    expect(f.openFds()).toEqual([]);
  });
});

// ---- measured boot ----

const TPM = { device: "/dev/tpmrm0", banks: ["sha1", "sha256"] as PcrBank[] };
const MEASURE_LOG = "/run/log/systemd/tpm2-measure.log";
const SIGNED_EVENT = `sealroot:v1:commit=${C2}:composefs=${C2_DIGEST}:key=${PRIMARY_KEY_HEX}:policy=signed`;

function decisionJson(f: FakeSys) {
  return JSON.parse(new TextDecoder().decode(f.memFile("/run/sealroot/decision.json")));
}

describe("prepareRoot() measures the boot", () => {
  it("extends PCR 15 in every active bank with the signed boot's event and appends systemd's log record", () => {
    const { r, f } = boot({ cmdline: BASE, config: SIGNED_CONF, fake: { tpm: TPM } });
    expect(r.failed).toBeUndefined();
    expect(f.measured).toEqual([{ pcr: 15, event: SIGNED_EVENT }]);
    const i = f.calls.indexOf("tpmMeasure(15) = /dev/tpmrm0 sha1,sha256");
    expect(f.calls.slice(i, i + 3)).toEqual([
      "tpmMeasure(15) = /dev/tpmrm0 sha1,sha256",
      `appendMeasureLog(${MEASURE_LOG})`,
      "writeFile(/run/ostree-booted, 0o644)",
    ]);
    const digests = eventDigests(SIGNED_EVENT, ["sha1", "sha256"]);
    expect(f.measureLog).toEqual([
      {
        path: MEASURE_LOG,
        record: formatMeasureRecord({
          pcr: 15,
          digests,
          event: SIGNED_EVENT,
          bootId: "0123456789abcdef0123456789abcdef",
          timestampUsec: 1_000_000,
        }),
      },
    ]);
    expect(decisionJson(f).decision.measurement).toEqual({
      pcr: 15,
      tpm: "auto",
      setBy: [],
      event: SIGNED_EVENT,
      digests: digests.map((d) => ({ bank: d.bank, digest: toHex(d.digest) })),
      device: "/dev/tpmrm0",
      log: MEASURE_LOG,
    });
    // the log replays to what the TPM holds after that one extend
    const replayed = replayLog(parseMeasureLog(new TextEncoder().encode(f.measureLog[0]?.record ?? "")));
    expect(replayed.map((p) => [p.bank, toHex(p.value ?? new Uint8Array())])).toEqual(
      digests.map((d) => [d.bank, toHex(extendPcr(d.bank, initialPcrValue(15, d.bank), d.digest))]),
    );
  });

  it("measures an unverified composefs boot with composefs=none and key=none, into the configured PCR", () => {
    const { f } = boot({
      cmdline: `${BASE} ot-composefs=on`,
      config: "[sealroot]\npcr = 9\n",
      fake: { tpm: TPM },
    });
    expect(f.measured).toEqual([
      { pcr: 9, event: `sealroot:v1:commit=${C2}:composefs=none:key=none:policy=on` },
    ]);
  });

  it("measures the digest the kernel measured when verity is required without an expected digest", () => {
    const { f } = boot({ cmdline: BASE, config: "[composefs]\nenabled = verity\n", fake: { tpm: TPM } });
    expect(f.measured).toEqual([
      { pcr: 15, event: `sealroot:v1:commit=${C2}:composefs=${C2_DIGEST}:key=none:policy=verity` },
    ]);
  });

  it("boots without a TPM and says so in the phase's event and decision.json", () => {
    const events: LogEvent[] = [];
    const { f } = boot({ cmdline: BASE, config: SIGNED_CONF, log: (e) => events.push(e) });
    expect(events.find((e) => e.phase === "measure")).toMatchObject({
      ok: true,
      skipped: "no TPM (/dev/tpmrm0, /dev/tpm0): the boot is not measured",
      event: SIGNED_EVENT,
    });
    expect(decisionJson(f).decision.measurement).toMatchObject({
      event: SIGNED_EVENT,
      skipped: "no TPM (/dev/tpmrm0, /dev/tpm0): the boot is not measured",
    });
    expect(f.measureLog).toEqual([]);
  });

  it("plans no measurement with [sealroot] tpm = off", () => {
    const { r, f } = boot({
      cmdline: BASE,
      config: `${SIGNED_CONF}[sealroot]\ntpm = off\n`,
      fake: { tpm: TPM },
    });
    expect(r.plan?.steps.map((s) => s.op)).not.toContain("measure");
    expect(f.measured).toEqual([]);
    expect(r.decision.measurement?.skipped).toBe(
      "measurement is off (/usr/lib/ostree/prepare-root.conf [sealroot] tpm = off)",
    );
  });

  it("shows the event and every bank's digest in a dry run, and what is pending when the kernel has to measure", () => {
    const dry = (cmdline: string, config: string) =>
      boot({ cmdline, config, dryRun: true }).r.decision.measurement;
    expect(dry(BASE, SIGNED_CONF)).toEqual({
      pcr: 15,
      tpm: "auto",
      setBy: [],
      event: SIGNED_EVENT,
      digests: eventDigests(SIGNED_EVENT, ["sha1", "sha256", "sha384", "sha512"]).map((d) => ({
        bank: d.bank,
        digest: toHex(d.digest),
      })),
    });
    expect(dry(BASE, "[composefs]\nenabled = verity\n")).toEqual({
      pcr: 15,
      tpm: "auto",
      setBy: [],
      pending: "the composefs image's fs-verity digest, which the kernel measures when it is mounted",
    });
  });
});

const NO_TPM_REQUIRED =
  "Cannot measure the boot into PCR 15: no TPM (/dev/tpmrm0, /dev/tpm0), expected a TPM";

describe("prepareRoot() refuses a boot it cannot measure, undoing everything", () => {
  it.each([
    {
      name: "[sealroot] tpm = required without a TPM",
      config: `${SIGNED_CONF}[sealroot]\ntpm = required\n`,
      cmdline: BASE,
      reason: `${NO_TPM_REQUIRED} (/usr/lib/ostree/prepare-root.conf [sealroot] tpm = required)`,
    },
    {
      name: "sealroot.tpm=required on the command line without a TPM",
      config: SIGNED_CONF,
      cmdline: `${BASE} sealroot.tpm=required`,
      reason: `${NO_TPM_REQUIRED} (karg sealroot.tpm=required)`,
    },
    {
      name: "a TPM that fails the extend",
      config: SIGNED_CONF,
      cmdline: BASE,
      fake: { tpm: TPM, fault: failNth("tpmMeasure", "EIO") },
      reason: `${INJECTED("tpmMeasure(15)", "EIO")} (measuring the boot into PCR 15)`,
    },
    {
      name: "a measurement log that cannot be appended to",
      config: SIGNED_CONF,
      cmdline: BASE,
      fake: { tpm: TPM, fault: failNth("appendMeasureLog", "EROFS") },
      reason: `${INJECTED(`appendMeasureLog(${MEASURE_LOG})`, "EROFS")} (after extending PCR 15 of "/dev/tpmrm0")`,
    },
  ])("$name", (c) => {
    const { r, f, before } = boot(c);
    expect(r.failed).toEqual({ stage: "measure", reason: c.reason });
    expect(r.decision).toMatchObject({ verdict: "refuse", stage: "measure", reason: c.reason });
    expect(r.decision.measurement).toBeUndefined();
    expect(f.mounts()).toEqual(before.mounts);
    expect(f.memTree()).toEqual(before.mem);
    expect(f.openFds()).toEqual([]);
  });
});
