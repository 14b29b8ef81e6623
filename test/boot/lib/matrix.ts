// The boot matrix: every scenario of issue 7 (good and downgrade boots, transient keys, each tamper) as data,
// booted in QEMU on the test OS's disks (test-os.ts) with an initramfs of one kind — sealroot as PID 1 of the
// busybox initramfs (initrd/sealroot.ts) or dracut's with and without systemd (qemu/build-dracut-initramfs.ts).
// The runner classifies what the console shows (the OS init's pass/fail report, or sealroot's one-line
// refusal) into one comparable string, and the printer makes the table. No assertions here: the test does.

import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildInitramfs, CACHE, type InitrdImage } from "../../../initrd/build.ts";
import { sealrootInitrdSpec } from "../../../initrd/sealroot.ts";
import { buildDracutInitramfs, type DracutKind } from "../../../qemu/build-dracut-initramfs.ts";
import { fetchKernel } from "../../../qemu/lib/kernel.ts";
import { bootVm, type VmResult } from "../../../qemu/lib/qemu.ts";
import { refusalLines } from "./dracut.ts";
import { build, type OsReport, parseOsReport, type TestOsManifest, variant } from "./test-os.ts";

export type Kind = "busybox" | DracutKind;
export const KINDS: Kind[] = ["busybox", "systemd", "nosystemd"];

/**
 * The initramfs contents a scenario needs (each kind builds all four):
 * signed2 / signed1 = `enabled = signed` with build 2's / build 1's key; nokey = `enabled = signed` and no key
 * file; noconf = no prepare-root.conf (the kernel arguments decide) and build 2's key.
 */
export type ImageName = "signed2" | "signed1" | "nokey" | "noconf";
export const IMAGE_NAMES: ImageName[] = ["signed2", "signed1", "nokey", "noconf"];

export type Expected =
  | {
      outcome: "boot";
      version: number;
      root: RootKind;
      unreadable?: string[];
      /** Measured into the VM's TPM: PCR 15's sha256 value the build's signed boot gives. */
      pcr15?: string;
    }
  | { outcome: "refuse"; stage: string; reason: RegExp };
export type RootKind = "composefs+verity" | "composefs" | "bind";

export interface Scenario {
  name: string;
  /** One line: what is booted and why the expectation holds. */
  what: string;
  image: ImageName;
  /** Test OS variant whose disk is attached. */
  disk: string;
  /** Kernel arguments after `root=LABEL=root rw` (ostree= included). */
  args: (os: TestOsManifest) => string;
  /** Kernel arguments after the kind's own (which they then override, e.g. dracut's rd.shell=0). */
  after?: string;
  /** Boot with a TPM 2.0 (a fresh swtpm per boot); without, the boot must say it was not measured. */
  tpm?: boolean;
  expect: (os: TestOsManifest) => Expected;
}

const entry = (os: TestOsManifest, disk: string, index = 0): string => {
  const d = variant(os, disk).deployments[index];
  if (!d) throw new Error(`Cannot find deployment ${index} of variant "${disk}": absent, expected one`);
  return `ostree=${d.ostree}`;
};
const newest = (os: TestOsManifest, disk = "good") => entry(os, disk, 0);
const oldest = (os: TestOsManifest) => `ostree=${build(os, 1).ostree}`;
const flip = (hex: string) =>
  `${hex.slice(0, 62)}${(Number.parseInt(hex.slice(62), 16) ^ 0xff).toString(16).padStart(2, "0")}`;

const boot = (version: number, root: RootKind, unreadable?: string[]): Expected =>
  unreadable ? { outcome: "boot", version, root, unreadable } : { outcome: "boot", version, root };
const refuse = (stage: string, reason: RegExp): Expected => ({ outcome: "refuse", stage, reason });
const notSigned = (commit: string) =>
  new RegExp(`^Cannot verify commit ${commit} with the keys in "/etc/ostree/initramfs-root-binding\\.key": `);
const IMAGE_DIGEST =
  /^Cannot verify composefs image "[^"]+\/\.ostree\.cfs": fs-verity digest [0-9a-f]{64}, expected [0-9a-f]{64} /;

/** The event a signed boot of build `version` measures (core/measure.ts), and PCR 15's sha256 value after
 * it alone was extended from zero. */
export function signedEvent(os: TestOsManifest, version: number): string {
  const b = build(os, version);
  return `sealroot:v1:commit=${b.commit}:composefs=${b.digest}:key=${b.keyHex}:policy=signed`;
}
export function measuredPcr15(os: TestOsManifest, version: number): string {
  const sha = (b: Buffer | string) => createHash("sha256").update(b).digest();
  return sha(Buffer.concat([Buffer.alloc(32), sha(signedEvent(os, version))])).toString("hex");
}
const measured = (os: TestOsManifest, version: number): Expected => ({
  outcome: "boot",
  version,
  root: "composefs+verity",
  pcr15: measuredPcr15(os, version),
});

/** Every scenario, in run order; each kind runs them all. */
export const SCENARIOS: Scenario[] = [
  {
    name: "good",
    what: "signed config, build 2's key, default entry: the newer deployment",
    image: "signed2",
    disk: "good",
    args: (os) => newest(os),
    expect: () => boot(2, "composefs+verity"),
  },
  {
    name: "digest-right",
    what: "no config, ot-composefs=digest= the newer image's digest",
    image: "noconf",
    disk: "good",
    args: (os) => `${newest(os)} ot-composefs=digest=${build(os, 2).digest}`,
    expect: () => boot(2, "composefs+verity"),
  },
  {
    name: "digest-wrong",
    what: "no config, ot-composefs=digest= with its last byte flipped",
    image: "noconf",
    disk: "good",
    args: (os) => `${newest(os)} ot-composefs=digest=${flip(build(os, 2).digest)}`,
    expect: () => refuse("image", IMAGE_DIGEST),
  },
  {
    name: "on",
    what: "no config, ot-composefs=on: composefs required, no verity",
    image: "noconf",
    disk: "good",
    args: (os) => `${newest(os)} ot-composefs=on`,
    expect: () => boot(2, "composefs"),
  },
  {
    name: "maybe-image",
    what: "no config, ot-composefs=maybe, the deployment has an image",
    image: "noconf",
    disk: "good",
    args: (os) => `${newest(os)} ot-composefs=maybe`,
    expect: () => boot(2, "composefs"),
  },
  {
    name: "maybe-noimage",
    what: "no config, ot-composefs=maybe, .ostree.cfs removed: the legacy bind",
    image: "noconf",
    disk: "cfs-missing",
    args: (os) => `${newest(os, "cfs-missing")} ot-composefs=maybe`,
    expect: () => boot(2, "bind"),
  },
  {
    name: "off",
    what: "no config, ot-composefs=off: the legacy bind",
    image: "noconf",
    disk: "good",
    args: (os) => `${newest(os)} ot-composefs=off`,
    expect: () => boot(2, "bind"),
  },
  {
    name: "older-newer-key",
    what: "ostree= the older deployment, build 2's initramfs: signed by build 1's key only",
    image: "signed2",
    disk: "good",
    args: (os) => oldest(os),
    expect: (os) => refuse("signature", notSigned(build(os, 1).commit)),
  },
  {
    name: "older-own-key",
    what: "ostree= the older deployment, build 1's initramfs",
    image: "signed1",
    disk: "good",
    args: (os) => oldest(os),
    expect: () => boot(1, "composefs+verity"),
  },
  {
    name: "downgrade-composefs=0",
    what: "signed config + ostree.prepare-root.composefs=0 on sig-corrupt (ostree would boot it unverified)",
    image: "signed2",
    disk: "sig-corrupt",
    args: (os) => `${newest(os, "sig-corrupt")} ostree.prepare-root.composefs=0`,
    expect: (os) => refuse("signature", notSigned(build(os, 2).commit)),
  },
  {
    name: "downgrade-ot-off",
    what: "signed config + ot-composefs=off on cfs-flipped",
    image: "signed2",
    disk: "cfs-flipped",
    args: (os) => `${newest(os, "cfs-flipped")} ot-composefs=off`,
    expect: () => refuse("image", IMAGE_DIGEST),
  },
  {
    name: "rd.shell-signed",
    what: "signed config + rd.shell on sig-corrupt: no shell for the unverified command line, power off",
    image: "signed2",
    disk: "sig-corrupt",
    args: (os) => newest(os, "sig-corrupt"),
    after: "rd.shell=1",
    expect: (os) => refuse("signature", notSigned(build(os, 2).commit)),
  },
  {
    name: "cfs-flipped",
    what: "one byte of .ostree.cfs changed (fs-verity on the new bytes)",
    image: "signed2",
    disk: "cfs-flipped",
    args: (os) => newest(os, "cfs-flipped"),
    expect: () => refuse("image", IMAGE_DIGEST),
  },
  {
    name: "sig-corrupt",
    what: "one bit of the signature in .commitmeta",
    image: "signed2",
    disk: "sig-corrupt",
    args: (os) => newest(os, "sig-corrupt"),
    expect: (os) => refuse("signature", notSigned(build(os, 2).commit)),
  },
  {
    name: "sig-other",
    what: ".commitmeta signed by a third key only",
    image: "signed2",
    disk: "sig-other",
    args: (os) => newest(os, "sig-other"),
    expect: (os) => refuse("signature", notSigned(build(os, 2).commit)),
  },
  {
    name: "sig-truncated",
    what: ".commitmeta cut to half",
    image: "signed2",
    disk: "sig-truncated",
    args: (os) => newest(os, "sig-truncated"),
    expect: (os) => refuse("signature", notSigned(build(os, 2).commit)),
  },
  {
    name: "digest-wrong-signed",
    what: "a commit signed by build 2's key whose signed digest is not its image's",
    image: "signed2",
    disk: "digest-wrong",
    args: (os) => newest(os, "digest-wrong"),
    expect: () => refuse("image", IMAGE_DIGEST),
  },
  {
    name: "cfs-missing",
    what: ".ostree.cfs removed",
    image: "signed2",
    disk: "cfs-missing",
    args: (os) => newest(os, "cfs-missing"),
    expect: () =>
      refuse("image", /^Cannot find composefs image "[^"]+": no such file, composefs is required/),
  },
  {
    name: "key-missing",
    what: "signed config, no key file in the initramfs",
    image: "nokey",
    disk: "good",
    args: (os) => newest(os),
    expect: () => refuse("keys", /initramfs-root-binding\.key/),
  },
  {
    name: "cfs-noverity",
    what: ".ostree.cfs without fs-verity",
    image: "signed2",
    disk: "cfs-noverity",
    args: (os) => newest(os, "cfs-noverity"),
    expect: () => refuse("image", /\.ostree\.cfs/),
  },
  {
    name: "objects-noverity",
    what: "no repo object with fs-verity: sealroot's read probe gets EIO",
    image: "signed2",
    disk: "objects-noverity",
    args: (os) => newest(os, "objects-noverity"),
    expect: () => refuse("image", /^Cannot read "\/run\/sealroot\/staging\/[^"]+": EIO /),
  },
  {
    name: "object-swapped",
    what: "release.txt's object replaced (fs-verity on the new bytes); the probe reads another file",
    image: "signed2",
    disk: "object-swapped",
    args: (os) => newest(os, "object-swapped"),
    expect: (os) => boot(2, "composefs+verity", variant(os, "object-swapped").unreadable),
  },
  {
    name: "measured-2",
    what: "good boot with a TPM: PCR 15 holds build 2's event, and the log replays to it",
    image: "signed2",
    disk: "good",
    tpm: true,
    args: (os) => newest(os),
    expect: (os) => measured(os, 2),
  },
  {
    name: "measured-1",
    what: "the older deployment with build 1's initramfs and a TPM: another PCR 15 value",
    image: "signed1",
    disk: "good",
    tpm: true,
    args: (os) => oldest(os),
    expect: (os) => measured(os, 1),
  },
  {
    name: "tpm-required",
    what: "sealroot.tpm=required on a machine without a TPM",
    image: "signed2",
    disk: "good",
    args: (os) => `${newest(os)} sealroot.tpm=required`,
    expect: () =>
      refuse(
        "measure",
        /^Cannot measure the boot into PCR 15: no TPM \(\/dev\/tpmrm0, \/dev\/tpm0\), expected a TPM \(karg sealroot\.tpm=required\)$/,
      ),
  },
  {
    name: "below-floor",
    what: "the older deployment with its own key but sealroot.min-version=2: a signed downgrade",
    image: "signed1",
    disk: "good",
    args: (os) => `${oldest(os)} sealroot.min-version=2`,
    expect: (os) =>
      refuse(
        "commit",
        new RegExp(
          `^Cannot boot commit "${build(os, 1).commit}": version "1", expected at least min-version "2"$`,
        ),
      ),
  },
];

export function formatExpected(e: Expected): string {
  if (e.outcome === "refuse") return `refused (${e.stage})`;
  const eio = e.unreadable?.length ? `, EIO ${e.unreadable.join(" ")}` : "";
  return `boot v${e.version} ${e.root}${eio}`;
}

export interface Observation {
  /** Comparable with formatExpected(). */
  text: string;
  report: OsReport;
  /** sealroot's refusal lines without the `sealroot: prepare-root refused (stage): ` prefix, deduplicated. */
  reasons: string[];
  stage: string | undefined;
}

const REFUSED = /^sealroot: prepare-root refused \(([a-z-]+)\): (.*)$/;

/** What the console shows: the OS init's report (it ran), or sealroot's refusal (it did not), or neither. */
export function observe(r: VmResult): Observation {
  const report = parseOsReport(r.serial);
  const lines = [...new Set(refusalLines(r.serial))];
  const parsed = lines.map((l) => REFUSED.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  const stage = parsed[0]?.[1];
  const reasons = parsed.map((m) => m[2] as string);
  let text: string;
  if (report.pass !== undefined) {
    const root = report.root?.startsWith("composefs / overlay ")
      ? report.rootVerity === "require"
        ? "composefs+verity"
        : "composefs"
      : "bind";
    const eio = report.readErrors.length ? `, EIO ${report.readErrors.map((e) => e.path).join(" ")}` : "";
    text = `boot v${report.version ?? "?"} ${root}${eio}`;
    if (lines.length) text += ` AND a refusal line`;
  } else if (stage !== undefined) {
    text = `refused (${stage})`;
    if (report.tOs !== undefined) text += " AFTER the OS init started";
  } else if (r.timedOut) {
    text = "timed out, no reason on the console";
  } else {
    text = `stopped without a reason${r.panicked ? " (kernel panic)" : ""}`;
  }
  return { text, report, reasons, stage };
}

/** Does the observation meet the expectation (outcome string, and the reason's text for refusals)? */
export function matches(e: Expected, o: Observation): boolean {
  if (formatExpected(e) !== o.text) return false;
  if (e.outcome === "refuse") return o.reasons.length > 0 && o.reasons.every((r) => e.reason.test(r));
  return true;
}

/** Kernel arguments every boot of `kind` gets after root= (dracut: no shell, power off on emergency). */
export const KIND_ARGS: Record<Kind, string> = {
  busybox: "",
  systemd: "rd.shell=0 rd.emergency=poweroff",
  nosystemd: "rd.shell=0 rd.emergency=poweroff",
};

export interface BuiltImage {
  path: string;
  bytes: number;
  cached: boolean;
}

/** Builds (or reuses) the initramfs `name` of `kind` for the test OS's builds. `work` holds config files. */
export function kindImage(
  kind: Kind,
  name: ImageName,
  os: TestOsManifest,
  work: string,
  bin?: string,
): BuiltImage {
  const kernel = fetchKernel();
  const keys = name === "nokey" ? [] : [build(os, name === "signed1" ? 1 : 2).keyPub];
  const config = name === "noconf" ? undefined : os.signedConf;
  if (kind === "busybox") {
    const img: InitrdImage = buildInitramfs(
      sealrootInitrdSpec({
        ...(bin !== undefined ? { bin } : {}),
        modules: { dir: kernel.modulesDir, names: kernel.modules },
        keys: keys.map((src) => ({ src })),
        ...(config !== undefined ? { config } : {}),
      }),
    );
    return { path: img.path, bytes: img.bytes, cached: img.cached };
  }
  let configFile: string | undefined;
  if (config !== undefined) {
    mkdirSync(work, { recursive: true });
    configFile = join(work, "prepare-root.conf");
    writeFileSync(configFile, config);
  }
  const img = buildDracutInitramfs({
    kind,
    kernelDir: kernel.dir,
    keys,
    ...(configFile !== undefined ? { config: configFile } : {}),
    ...(bin !== undefined ? { bin } : {}),
  });
  return { path: img.path, bytes: img.bytes, cached: img.cached };
}

export interface MatrixRow {
  kind: Kind;
  scenario: Scenario;
  expected: string;
  observed: string;
  ok: boolean;
  seconds: number;
  log: string;
  result: VmResult;
  observation: Observation;
}

/** Memory of each matrix VM (MiB). */
export const VM_MEM_MIB = 2048;

/** Where the matrix keeps each boot's serial log (overwritten per run). */
export const MATRIX_LOGS = join(CACHE, "boot/matrix-logs");

/** Boots one scenario (one vCPU: the test runs boots side by side instead) and compares. */
export async function runScenario(
  kind: Kind,
  s: Scenario,
  os: TestOsManifest,
  image: BuiltImage,
  opts: { timeoutMs?: number; onLine?: (l: string) => void } = {},
): Promise<MatrixRow> {
  const kernel = fetchKernel();
  const log = join(MATRIX_LOGS, `${kind}-${s.name}.log`);
  const result = await bootVm({
    kernel: kernel.vmlinuz,
    initrd: image.path,
    disks: [{ path: variant(os, s.disk).disk, snapshot: true }],
    append: `root=LABEL=root rw ${s.args(os)} ${KIND_ARGS[kind]} ${s.after ?? ""}`.replace(/ +/g, " ").trim(),
    memMiB: VM_MEM_MIB,
    timeoutMs: opts.timeoutMs ?? 240_000,
    serialLog: log,
    ...(s.tpm ? { tpm: true } : {}),
    ...(opts.onLine ? { onLine: opts.onLine } : {}),
  });
  const e = s.expect(os);
  const observation = observe(result);
  return {
    kind,
    scenario: s,
    expected: formatExpected(e),
    observed: observation.text,
    ok: matches(e, observation),
    seconds: result.timings.wallMs / 1000,
    log,
    result,
    observation,
  };
}

/** The results as a plain-text table (one header line of notes first). */
export function formatTable(rows: MatrixRow[], header: string): string {
  const cols = ["kind", "scenario", "expected", "observed", "s", ""];
  const data = rows.map((r) => [
    r.kind,
    r.scenario.name,
    r.expected,
    r.observed,
    r.seconds.toFixed(1),
    r.ok ? "ok" : "MISMATCH",
  ]);
  const width = cols.map((c, i) => Math.max(c.length, ...data.map((d) => (d[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 4 ? c.padStart(width[i] as number) : c.padEnd(width[i] as number)))
      .join("  ")
      .trimEnd();
  const total = rows.reduce((a, r) => a + r.seconds, 0);
  return [
    header,
    line(cols),
    line(width.map((w) => "-".repeat(w))),
    ...data.map(line),
    `${rows.length} boots, ${rows.filter((r) => !r.ok).length} mismatches, ${total.toFixed(0)} s of VM time`,
  ].join("\n");
}
