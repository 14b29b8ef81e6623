// Benchmark: `sealroot fsverity-digest` (the compiled binary dist/sealroot) against `fsverity digest`
// (fsverity-utils, OpenSSL SHA-256) on the same 1 GiB file, side by side, several repetitions each,
// interleaved after one warm-up run of each (so both read from the page cache). Prints each time, the
// medians and ratio = reference / sealroot (≥ 0.9 is the target). Run: npm run bench:fsverity [-- --reps N]

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { SEALROOT_BIN } from "../initrd/build.ts";
import { patternFile } from "../test/helpers/pattern-file.ts";

const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const TARGET = 0.9;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

const reps = Number(option("reps", "5"));
const bin = resolve(option("bin", SEALROOT_BIN));
const file = option("file", "");

if (!existsSync(bin)) {
  console.log(`${bin} missing: npm run build`);
  execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
}
const path = file || patternFile(1 << 30);

interface Tool {
  name: string;
  cmd: string;
  args: string[];
  times: number[];
  line?: string;
}
const tools: Tool[] = [
  { name: "fsverity digest", cmd: "fsverity", args: ["digest", path], times: [] },
  { name: "sealroot fsverity-digest", cmd: bin, args: ["fsverity-digest", path], times: [] },
];

function once(t: Tool): number {
  const t0 = performance.now();
  const r = spawnSync(t.cmd, t.args, { encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.error || r.status !== 0) {
    throw new Error(`${t.name} failed (${r.error ?? `exit ${r.status}`}): ${r.stderr}`);
  }
  t.line = r.stdout.trim();
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

for (const t of tools) once(t); // warm-up: page cache, binary start
const [ref, ours] = tools as [Tool, Tool];
if (ref.line !== ours.line) {
  console.error(`digests differ:\n  ${ref.line}\n  ${ours.line}`);
  process.exit(1);
}
for (let i = 0; i < reps; i++) for (const t of tools) t.times.push(once(t));

console.log(`file: ${path}\ndigest: ${ours.line}\nrepetitions: ${reps} (after one warm-up each)`);
for (const t of tools) {
  console.log(
    `${t.name.padEnd(26)} median ${fmt(median(t.times))}  min ${fmt(Math.min(...t.times))}  runs ${t.times.map(fmt).join(" ")}`,
  );
}
const ratio = median(ref.times) / median(ours.times);
console.log(
  `ratio (fsverity / sealroot, medians): ${ratio.toFixed(2)}  target ≥ ${TARGET}: ${ratio >= TARGET ? "met" : "NOT met"}`,
);
