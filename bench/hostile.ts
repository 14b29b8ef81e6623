// Benchmark: how fast the compiled binary refuses what a hostile disk can hold (issue 11), against the
// same command on the good input. `sealroot verify` (signed mode) on copies of the golden sysroot whose
// commit 2 `.commitmeta` is a 4 MiB nested-framing bomb, a 32 MiB string, 10,000 junk signatures, or its
// real signature behind 1 MiB of framing (which boots); whose repo config is a FIFO or a link to /dev/zero,
// whose image is a 64 GiB sparse file, whose var links to /; with ot-signed=/dev/zero. `prepare-root
// --dry-run` (the boot's decision and plan, nothing mounted) on some of the same. `sealroot ls -R` and
// `composefs-image` on a 27-dirtree DAG (201 million paths) beside the golden bare-user repo. Wall time
// and peak RSS under GNU time (`/usr/bin/time -v`, Debian package `time`), median of --reps runs after one
// warm-up.
// Run: npm run bench:hostile [-- --reps N] [--bin B] [--timeout S]   (= bun run bench/hostile.ts)

import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { SEALROOT_BIN } from "../initrd/build.ts";
import { encode } from "../src/formats/gvariant.ts";
import { decodeCommitmeta, ED25519_SIGNATURE_KEY, ed25519Signatures } from "../src/formats/ostree/objects.ts";
import { extracted, OSTREE } from "../test/helpers/fixtures.ts";
import { C2 } from "../test/helpers/golden.ts";
import {
  dagRepo,
  framingBombCommitmeta,
  junkSignaturesCommitmeta,
  rawVariant,
  stringBombCommitmeta,
} from "../test/helpers/hostile.ts";

const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const TIME = "/usr/bin/time";
const TARGET = "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const MiB = 1 << 20;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}
const reps = Number(option("reps", "5"));
const bin = resolve(option("bin", SEALROOT_BIN));
/** A run still going after this many seconds is killed and reported as such (the unfixed binary hangs). */
const timeout = Number(option("timeout", "60"));

if (!existsSync(TIME)) {
  console.error(`${TIME} missing: apt-get install -y time (GNU time, for peak memory)`);
  process.exit(1);
}
if (!existsSync(bin)) execFileSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "inherit" });

const work = mkdtempSync("/tmp/sealroot-bench-hostile-");
const golden = extracted("ostree/sysroot.tar");
const commitmeta = (s: string) => join(s, "ostree/repo/objects/59", `${C2.slice(2)}.commitmeta`);
/** Commit 2's real signature entry, raw, to put behind a bomb. */
const signature = (): [string, Uint8Array] => {
  const sigs = ed25519Signatures(decodeCommitmeta(new Uint8Array(readFileSync(commitmeta(golden)))));
  return [ED25519_SIGNATURE_KEY, rawVariant("aay", encode("aay", sigs))];
};
/** A copy of the golden sysroot, with commit 2's `.commitmeta` replaced when `meta` is given. */
function sysroot(name: string, meta?: Uint8Array): string {
  const s = join(work, name);
  execFileSync("cp", ["-a", golden, s]); // keeps xattrs and owners
  if (meta) writeFileSync(commitmeta(s), meta);
  return s;
}
const initrd = join(work, "initrd");
mkdirSync(join(initrd, "etc/ostree"), { recursive: true });
writeFileSync(join(initrd, "etc/ostree/prepare-root.conf"), "[composefs]\nenabled = signed\n");
copyFileSync(join(OSTREE, "keys/ed25519.pub"), join(initrd, "etc/ostree/initramfs-root-binding.key"));
const verify = (s: string, karg = "") => [
  "verify",
  "--sysroot",
  s,
  "--cmdline",
  `ostree=${TARGET}${karg}`,
  "--root",
  initrd,
];
/** A copy of the golden sysroot changed by `tamper` (a shell command run in it). */
function tampered(name: string, tamper: string): string {
  const s = sysroot(name);
  execFileSync("sh", ["-c", tamper], { cwd: s });
  return s;
}
const signedConf = join(work, "signed.conf");
writeFileSync(
  signedConf,
  `[composefs]\nenabled = signed\nkeypath = ${initrd}/etc/ostree/initramfs-root-binding.key\n`,
);
/** `prepare-root --dry-run` (in a namespace with a fresh /run, see once()): decides and plans, mounts nothing. */
const dryRun = (s: string, karg = "", conf = signedConf) => [
  "prepare-root",
  s,
  "--cmdline",
  `ostree=${TARGET}${karg}`,
  "--config",
  conf,
  "--dry-run",
];
const noConf = join(work, "empty.conf");
writeFileSync(noConf, "");
const fifoConfig = tampered("fifo-config", "rm ostree/repo/config && mkfifo ostree/repo/config");
const deploy0 = `ostree/deploy/refos/deploy/${C2}.0`;

const dag = dagRepo(join(work, "dag"));
const goodRepo = extracted("ostree/repo-bare-user.tar");
const image = join(work, "image.cfs");

interface Row {
  name: string;
  args: string[];
  /** The row it is compared with (undefined: it is a baseline). */
  base?: string;
  /** Expected exit code: 0 for the good inputs, 1 for a refusal. */
  code: number;
}
const rows: Row[] = [
  { name: "verify, good sysroot", args: verify(sysroot("good")), code: 0 },
  {
    name: "verify, 4 MiB nested-framing .commitmeta",
    args: verify(sysroot("framing", framingBombCommitmeta(4 * MiB))),
    base: "verify, good sysroot",
    code: 1,
  },
  {
    name: "verify, 32 MiB string .commitmeta",
    args: verify(sysroot("string", stringBombCommitmeta(32 * MiB))),
    base: "verify, good sysroot",
    code: 1,
  },
  {
    name: "verify, signature behind 1 MiB of nested framing",
    args: verify(sysroot("behind", framingBombCommitmeta(MiB, [signature()]))),
    base: "verify, good sysroot",
    code: 0,
  },
  {
    name: "verify, 10,000 junk signatures",
    args: verify(sysroot("signatures", junkSignaturesCommitmeta(10_000))),
    base: "verify, good sysroot",
    code: 1,
  },
  {
    name: "verify, FIFO as the repo config",
    args: verify(fifoConfig),
    base: "verify, good sysroot",
    code: 1,
  },
  {
    name: "verify, repo config -> /dev/zero",
    args: verify(tampered("zero-config", "rm ostree/repo/config && ln -s /dev/zero ostree/repo/config")),
    base: "verify, good sysroot",
    code: 1,
  },
  {
    name: "verify, ot-signed=/dev/zero",
    args: [...verify(sysroot("signed-zero"), " ot-signed=/dev/zero").slice(0, -1), "/"],
    base: "verify, good sysroot",
    code: 1,
  },
  {
    name: "verify, 64 GiB sparse image",
    args: verify(tampered("sparse", `truncate -s 64G ${deploy0}/.ostree.cfs`)),
    base: "verify, good sysroot",
    code: 1,
  },
  {
    name: "verify, var -> /",
    args: verify(tampered("var-root", "rm -r ostree/deploy/refos/var && ln -s / ostree/deploy/refos/var")),
    base: "verify, good sysroot",
    code: 1,
  },
  { name: "prepare-root --dry-run, good sysroot", args: dryRun(sysroot("dry-good")), code: 0 },
  {
    name: "prepare-root --dry-run, 4 MiB nested-framing .commitmeta",
    args: dryRun(sysroot("dry-framing", framingBombCommitmeta(4 * MiB))),
    base: "prepare-root --dry-run, good sysroot",
    code: 1,
  },
  {
    name: "prepare-root --dry-run, 10,000 junk signatures",
    args: dryRun(sysroot("dry-signatures", junkSignaturesCommitmeta(10_000))),
    base: "prepare-root --dry-run, good sysroot",
    code: 1,
  },
  {
    name: "prepare-root --dry-run, FIFO as the repo config (composefs off)",
    args: dryRun(fifoConfig, " ot-composefs=off", noConf),
    base: "prepare-root --dry-run, good sysroot",
    code: 1,
  },
  {
    name: "ls -R, golden bare-user repo",
    args: ["ls", "--repo", goodRepo, "--ref", "refos/x86_64/stable", "-R"],
    code: 0,
  },
  {
    name: "ls -R, 27-dirtree DAG",
    args: ["ls", "--repo", dag.repo, "--ref", "dag", "-R"],
    base: "ls -R, golden bare-user repo",
    code: 1,
  },
  {
    name: "composefs-image, 27-dirtree DAG",
    args: ["composefs-image", "--repo", dag.repo, "--ref", "dag", image],
    base: "ls -R, golden bare-user repo",
    code: 1,
  },
];

interface Run {
  ms: number;
  kb: number;
  code: number;
  stderr: string;
  timedOut: boolean;
}

function once(row: Row): Run {
  const out = join(work, "time.txt");
  rmSync(out, { force: true });
  const t0 = process.hrtime.bigint();
  const timed = [TIME, "-v", "-o", out, bin, ...row.args];
  // prepare-root runs as at boot: in a private mount namespace with an empty /run
  const argv =
    row.args[0] === "prepare-root"
      ? [
          "unshare",
          "-m",
          "--propagation",
          "private",
          "sh",
          "-c",
          'mount -t tmpfs none /run && exec "$@"',
          "sh",
          ...timed,
        ]
      : timed;
  const r = spawnSync(argv[0] as string, argv.slice(1), {
    encoding: "utf8",
    timeout: timeout * 1000,
    killSignal: "SIGKILL",
    maxBuffer: 1 << 30,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const timedOut = r.signal === "SIGKILL";
  const text = existsSync(out) ? readFileSync(out, "utf8") : "";
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(text)?.[1] ?? Number.NaN);
  return { ms, kb, code: r.status ?? -1, stderr: r.stderr, timedOut };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const results = new Map<string, { ms: number; mb: number; note: string }>();
for (const row of rows) {
  const warm = once(row);
  const runs = warm.timedOut ? [warm] : Array.from({ length: reps }, () => once(row));
  const last = runs[runs.length - 1] as Run;
  // the refusal, shortened for the table: paths to their last component, checksums to 8 digits
  const line = (last.stderr.trim().split("\n")[0] ?? "")
    .replace(/"\/[^"]*\/([^/"]+)"/g, '"…/$1"')
    .replace(/\b([0-9a-f]{8})[0-9a-f]{54,56}\b/g, "$1…")
    .replace(/^(.{240}).+$/, "$1…");
  const note = last.timedOut
    ? `killed after ${timeout} s`
    : last.code !== row.code
      ? `exit ${last.code}, expected ${row.code}: ${line.slice(0, 160)}`
      : row.code === 1
        ? line
        : "exit 0";
  // a killed run's time has no peak memory (time -v never wrote it)
  results.set(row.name, {
    ms: median(runs.map((r) => r.ms)),
    mb: median(runs.map((r) => r.kb)) / 1024,
    note,
  });
}

const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : "–";
console.log(`sealroot ${bin}, ${reps} runs a row after one warm-up (medians), timeout ${timeout} s\n`);
console.log("| input | wall | ratio | peak RSS | ratio | outcome |\n|---|---|---|---|---|---|");
for (const row of rows) {
  const r = results.get(row.name)!;
  const b = row.base ? results.get(row.base) : undefined;
  console.log(
    `| ${row.name} | ${r.ms.toFixed(0)} ms | ${b ? ratio(r.ms, b.ms) : "1"} | ${Number.isFinite(r.mb) ? `${r.mb.toFixed(1)} MiB` : "–"} | ${b ? ratio(r.mb, b.mb) : "1"} | ${r.note.replaceAll("|", "\\|")} |`,
  );
}
rmSync(work, { recursive: true, force: true });
