// The boot matrix's view of the test OS (qemu/build-test-os.ts builds it, cached under .cache/test-os/):
// the two signed builds, the provisioned good disk and its tamper variants, the kernel arguments that boot
// a deployment, and the parser of what the OS's /sbin/init prints once it runs as PID 1 of the booted root
// ("SEALROOT-OS: key=value" lines, then "SEALROOT-OS: pass version=N" or "… fail version=N unreadable=K").

import {
  buildTestOs,
  type TestOsBuild,
  type TestOsDeployment,
  type TestOsManifest,
  type TestOsVariant,
} from "../../../qemu/build-test-os.ts";

export {
  contentDigest,
  DISK_UUID,
  type Expectation,
  LABEL,
  OSNAME,
  REF,
  RELEASE_FILE,
  SIGNED_CONF,
  type TestOsBuild,
  type TestOsDeployment,
  type TestOsFile,
  type TestOsManifest,
  type TestOsVariant,
} from "../../../qemu/build-test-os.ts";

export const OS_MARKER = "SEALROOT-OS:";

/** Builds the test OS and its disks, or reuses them (one build per process; ~45 s cold, < 1 s cached). */
export function testOs(log: (s: string) => void = (s) => console.log(s)): Promise<TestOsManifest> {
  return buildTestOs(log);
}

export function variant(os: TestOsManifest, name: string): TestOsVariant {
  const v = os.variants.find((x) => x.name === name);
  if (!v) {
    throw new Error(
      `Cannot find test OS variant "${name}": absent, expected one of ${os.variants.map((x) => x.name).join(", ")}`,
    );
  }
  return v;
}

export function build(os: TestOsManifest, version: number): TestOsBuild {
  const b = os.builds.find((x) => x.version === version);
  if (!b) throw new Error(`Cannot find test OS build ${version}: absent, expected 1 or 2`);
  return b;
}

/** The newer build (version 2): what every variant's default entry boots. */
export const newest = (os: TestOsManifest): TestOsBuild => build(os, 2);

/** Kernel arguments that boot `d` as its boot entry does (root by label, rw, its ostree= link). */
export const bootArgs = (d: Pick<TestOsDeployment, "ostree">): string =>
  `root=LABEL=root rw ostree=${d.ostree}`;

export interface OsReport {
  /** The last value of each key (`mount` and `read_error` repeat: see the lists). */
  values: Record<string, string>;
  /** The os-release VERSION_ID the booted root has. */
  version: string | undefined;
  /** true: every file read; false: a `fail` line; undefined: the init never got that far. */
  pass: boolean | undefined;
  /** The `/` line of /proc/mounts. */
  root: string | undefined;
  rootVerity: "require" | "off" | undefined;
  ostreeBooted: boolean | undefined;
  decision: boolean | undefined;
  /** /run/sealroot/decision.json, parsed, when present. */
  decisionJson: unknown;
  mounts: string[];
  /** `/sys/class/tpm/tpm0/pcr-sha256/15` (lowercase hex), `none` without a TPM; undefined: not reported. */
  pcr15Sha256: string | undefined;
  /** The records of /run/log/systemd/tpm2-measure.log, one JSON text each. */
  measureLog: string[];
  /** Each unreadable file: its path and the error line. */
  readErrors: { path: string; message: string }[];
  files: number | undefined;
  unreadable: number | undefined;
  /** sha256 of the "HASH  PATH" lines of the readable files: a build's `content` when all read. */
  content: string | undefined;
  /** Kernel uptime (s) when the OS init started and finished. */
  tOs: number | undefined;
  tOsDone: number | undefined;
}

const LINE = /SEALROOT-OS: (?:(pass|fail) version=(\S*)(?: unreadable=\d+)?|([a-z0-9_]+)=(.*))$/;

/** Reads the test OS's report from a serial console (kernel noise before a marker on the same line is fine). */
export function parseOsReport(serial: string): OsReport {
  const values: Record<string, string> = {};
  const mounts: string[] = [];
  const measureLog: string[] = [];
  const readErrors: { path: string; message: string }[] = [];
  let pass: boolean | undefined;
  let finalVersion: string | undefined;
  for (const raw of serial.split("\n")) {
    const m = LINE.exec(raw.replace(/\r/g, ""));
    if (!m) continue;
    if (m[1] !== undefined) {
      pass = m[1] === "pass";
      finalVersion = m[2];
      continue;
    }
    const key = m[3] as string;
    const value = m[4] as string;
    values[key] = value;
    if (key === "mount") mounts.push(value);
    if (key === "measure_log") measureLog.push(value);
    if (key === "read_error") {
      const at = value.indexOf(": ");
      readErrors.push({ path: value.slice(0, at), message: value.slice(at + 2) });
    }
  }
  const num = (k: string) => (values[k] === undefined ? undefined : Number(values[k]));
  const flag = (k: string, yes: string) => (values[k] === undefined ? undefined : values[k] === yes);
  let decisionJson: unknown;
  if (values.decision_json !== undefined) {
    try {
      decisionJson = JSON.parse(values.decision_json);
    } catch {
      decisionJson = values.decision_json; // not JSON: kept as text for the assertion message
    }
  }
  return {
    values,
    version: values.version ?? finalVersion,
    pass,
    root: values.root,
    rootVerity: values.root_verity as OsReport["rootVerity"],
    ostreeBooted: flag("ostree_booted", "present"),
    decision: flag("decision", "present"),
    decisionJson,
    mounts,
    pcr15Sha256: values.pcr15_sha256?.toLowerCase(),
    measureLog,
    readErrors,
    files: num("files"),
    unreadable: num("unreadable"),
    content: values.content,
    tOs: num("t_os"),
    tOsDone: num("t_os_done"),
  };
}
