// Benchmark: `sealroot prepare-root` end to end on the golden sysroot, as root, each run in a fresh private
// mount namespace (`unshare -m`, the copy bound on SYSROOT, a new tmpfs on /run) under `/usr/bin/time -v`
// (Debian package `time`): wall time (ns clock around the command), peak RSS, and the time spent inside
// prepareRoot() (sum of the logged phases), for the composefs boot and the legacy bind; for the binary
// built as usual and with --minify / --bytecode. Prints the binary sizes and a table of medians.
// Run: npm run bench:prepare-root [-- --reps N]   (= bun run bench/prepare-root.ts)

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { extracted } from "../test/helpers/fixtures.ts";

const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const TIME = "/usr/bin/time";
const TARGET = "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const CMDLINE = `root=LABEL=root rw ostree=${TARGET}`;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}
const reps = Number(option("reps", "7"));

if (process.getuid?.() !== 0) {
  console.error("bench/prepare-root needs root (mount namespaces, overlayfs, EROFS)");
  process.exit(1);
}
if (!existsSync(TIME)) {
  console.error(`${TIME} missing: apt-get install -y time`);
  process.exit(1);
}

const work = mkdtempSync("/tmp/sealroot-bench-prt-");
const copy = join(work, "sys");
const phys = join(work, "phys");
execFileSync("cp", ["-a", extracted("ostree/sysroot.tar"), copy]);
mkdirSync(phys);

interface Variant {
  name: string;
  flags: string[];
  bin: string;
  size?: number;
  error?: string;
}
// scripts/build.mjs: no arguments = the release flags; arguments replace them (--plain: none)
const variants: Variant[] = [
  {
    name: "release (--bytecode --format=esm --compile-jit-policy=1000)",
    flags: [],
    bin: join(work, "sealroot"),
  },
  { name: "plain", flags: ["--plain"], bin: join(work, "sealroot-plain") },
  { name: "--minify", flags: ["--minify"], bin: join(work, "sealroot-minify") },
  {
    name: "--bytecode --format=esm",
    flags: ["--bytecode", "--format=esm"],
    bin: join(work, "sealroot-bc-esm"),
  },
];

for (const v of variants) {
  const r = spawnSync("node", ["scripts/build.mjs", ...v.flags], {
    cwd: ROOT,
    env: { ...process.env, SEALROOT_OUT: v.bin },
    encoding: "utf8",
  });
  if (r.status !== 0) {
    const said = `${r.stdout}\n${r.stderr}`.split("\n").find((l) => l.startsWith("error:"));
    v.error = `build failed (exit ${r.status}): ${said ?? "see node scripts/build.mjs output"}`;
  } else v.size = statSync(v.bin).size;
}

interface Sample {
  wallMs: number;
  maxRssKb: number;
  phasesMs: number;
}

const SCENARIOS = [
  { name: "composefs", karg: "ot-composefs=on" },
  { name: "legacy bind", karg: "ot-composefs=off" },
] as const;

/** One run in a new namespace; the shell prints the ns clock around `time -v sealroot …`. */
function once(bin: string, karg: string): Sample {
  const script = [
    "set -e",
    `mount --bind ${copy} ${phys}`,
    "mount -t tmpfs -o mode=0755 tmpfs /run",
    "t0=$(date +%s%N)",
    `${TIME} -v -o ${work}/time.txt ${bin} prepare-root ${phys} --cmdline "${CMDLINE} ${karg}" > ${work}/events.jsonl`,
    "t1=$(date +%s%N)",
    'echo "$t0 $t1"',
    `grep -E "Maximum resident set size" ${work}/time.txt`,
  ].join("\n");
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`prepare-root run failed (exit ${r.status}): ${r.stderr}`);
  const [times, rss] = r.stdout.trim().split("\n");
  const [t0, t1] = (times ?? "").split(" ").map(BigInt) as [bigint, bigint];
  const maxRssKb = Number(/(\d+)\s*$/.exec(rss ?? "")?.[1] ?? Number.NaN);
  const events = readFileSync(`${work}/events.jsonl`, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { phase: string; ms: number; ok: boolean });
  if (events.some((e) => !e.ok))
    throw new Error(`a phase failed: ${JSON.stringify(events.find((e) => !e.ok))}`);
  return { wallMs: Number(t1 - t0) / 1e6, maxRssKb, phasesMs: events.reduce((a, e) => a + e.ms, 0) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

// interleaved rounds (every binary and scenario once per round), so load on the machine hits all alike
const runnable = variants.filter((v) => v.error === undefined);
const samples = new Map<string, Sample[]>();
const failures = new Map<string, string>();
const key = (v: Variant, s: (typeof SCENARIOS)[number]) => `${v.name}\t${s.name}`;
for (let round = 0; round <= reps; round++) {
  for (const v of runnable) {
    for (const s of SCENARIOS) {
      const k = key(v, s);
      if (failures.has(k)) continue;
      try {
        const x = once(v.bin, s.karg);
        if (round > 0) samples.set(k, [...(samples.get(k) ?? []), x]); // round 0 warms the page cache
      } catch (e) {
        failures.set(k, `run failed: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
      }
    }
  }
}

const rows: string[][] = [];
for (const v of variants) {
  if (v.error) {
    rows.push([v.name, "-", "-", "-", "-", v.error]);
    continue;
  }
  for (const s of SCENARIOS) {
    const k = key(v, s);
    const xs = samples.get(k) ?? [];
    if (failures.has(k) || xs.length === 0) {
      rows.push([v.name, s.name, "-", "-", "-", failures.get(k) ?? "no samples"]);
      continue;
    }
    rows.push([
      v.name,
      s.name,
      `${median(xs.map((x) => x.wallMs)).toFixed(1)} ms (min ${Math.min(...xs.map((x) => x.wallMs)).toFixed(1)})`,
      `${(median(xs.map((x) => x.maxRssKb)) / 1024).toFixed(1)} MiB`,
      `${median(xs.map((x) => x.phasesMs)).toFixed(1)} ms`,
      "",
    ]);
  }
}

console.log(
  `kernel ${execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()}; ${reps} runs each after one warm-up`,
);
console.log("\n| binary | size |\n|---|---|");
for (const v of variants)
  console.log(`| ${v.name} | ${v.size !== undefined ? `${mb(v.size)} (${v.size} B)` : v.error} |`);
console.log(
  "\n| binary | scenario | wall (median) | peak RSS (median) | in prepareRoot() (median) | note |\n|---|---|---|---|---|---|",
);
for (const r of rows) console.log(`| ${r.join(" | ")} |`);

rmSync(work, { recursive: true, force: true });
