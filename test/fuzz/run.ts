// `npm run fuzz` (bun run test/fuzz/run.ts): the fuzz tier outside CI. Runs every target of harness.ts for
// --count inputs (default 1,000,000) within a total time bound (--minutes, default 60; each target stops
// at its share of what is left), in a worker thread watched for hangs (an input in flight longer than
// --hang-ms is terminated and reported) and for memory (process RSS over --max-rss-mb). Prints progress
// lines, every distinct finding with its base64 input and a replay command, and a final table; findings
// are also written as JSON to --findings DIR. Exit 1 on any finding. See test/fuzz/README.md.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { ROOT } from "../helpers/fixtures.ts";
import {
  addStats,
  b64,
  describeError,
  emptyStats,
  type Finding,
  fromB64,
  inputFor,
  minimize,
  prepare,
  runOne,
  type Stats,
  signatureOf,
  TARGETS,
  targetNamed,
} from "./harness.ts";
import type { WorkerJob } from "./worker.ts";

interface Options {
  count: number;
  minutes: number;
  targets: string[];
  seed: number;
  capMs: number;
  hangMs: number;
  maxHangs: number;
  maxRssMb: number;
  findings: string;
  replay?: number;
  input?: string;
  list: boolean;
}

const USAGE = `usage: bun run test/fuzz/run.ts [options]
  --count N         inputs per target (default 1000000)
  --minutes M       total time bound; each target stops at its share of what is left (default 60)
  --target NAME     only this target (repeatable, or comma-separated); --list shows them
  --seed N          run seed (default 1); inputs are deterministic from (seed, target, iteration)
  --cap-ms MS       per-input time cap: a slower input is a finding (default 1000)
  --hang-ms MS      an input still running after this is terminated as a hang (default 10000)
  --max-hangs N     stop a target after N hangs or memory findings (default 3)
  --max-rss-mb MB   process RSS above this is a memory finding (default 3072)
  --findings DIR    where findings are written as JSON (default .cache/fuzz-findings)
  --replay I        with one --target: run iteration I in this process and print what it does
  --input B64|@F    with one --target: run this input (base64, or @file of raw bytes)
  --list            list the targets`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    count: 1_000_000,
    minutes: 60,
    targets: [],
    seed: 1,
    capMs: 1000,
    hangMs: 10_000,
    maxHangs: 3,
    maxRssMb: 3072,
    findings: join(ROOT, ".cache/fuzz-findings"),
    list: false,
  };
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) throw new Error(`${flag} needs a number, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i];
    if (a === "--count") o.count = Math.floor(num(a, v()));
    else if (a === "--minutes") o.minutes = num(a, v());
    else if (a === "--target") o.targets.push(...(v() ?? "").split(",").filter(Boolean));
    else if (a === "--seed") o.seed = Math.floor(num(a, v()));
    else if (a === "--cap-ms") o.capMs = num(a, v());
    else if (a === "--hang-ms") o.hangMs = num(a, v());
    else if (a === "--max-hangs") o.maxHangs = Math.floor(num(a, v()));
    else if (a === "--max-rss-mb") o.maxRssMb = num(a, v());
    else if (a === "--findings") o.findings = v() ?? o.findings;
    else if (a === "--replay") o.replay = Math.floor(num(a, v()));
    else if (a === "--input") o.input = v() ?? "";
    else if (a === "--list") o.list = true;
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  for (const t of o.targets) targetNamed(t);
  return o;
}

const fmt = (n: number) => n.toLocaleString("en-US");
const rate = (s: Stats) => (s.elapsedMs > 0 ? Math.round((s.inputs / s.elapsedMs) * 1000) : 0);

/** Base64 up to 64 KiB is printed whole; a longer one is cut (the JSON file has all of it). */
const clip = (s: string) =>
  s.length <= 65536 ? s : `${s.slice(0, 1024)}… (${s.length} chars, whole in the JSON file)`;

function printFinding(f: Finding, dir: string): void {
  const input = fromB64(f.input);
  const lines = [
    `FINDING ${f.target} ${f.kind} at seed ${f.seed} iteration ${f.iteration}: ${f.detail}`,
    ...(f.stack ? f.stack.split("\n").slice(1, 8) : []),
    `  replay: bun run test/fuzz/run.ts --target ${f.target} --seed ${f.seed} --replay ${f.iteration}`,
    `  input (${input.length} bytes, base64): ${clip(f.input)}`,
  ];
  if ((f.kind === "crash" || f.kind === "wrong-error") && input.length <= 1 << 20) {
    const small = minimize(targetNamed(f.target), input);
    if (b64(small) !== f.input) {
      const nonzero = small.reduce((n, x) => n + (x === 0 ? 0 : 1), 0);
      lines.push(`  minimized (${small.length} bytes, ${nonzero} non-zero, base64): ${clip(b64(small))}`);
    }
    Object.assign(f, { minimized: b64(small) });
  }
  console.log(lines.join("\n"));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${f.target}-${f.kind}-s${f.seed}-i${f.iteration}.json`);
  writeFileSync(file, `${JSON.stringify(f, null, 2)}\n`);
  console.log(`  written: ${file}`);
}

/** Runs one input in this process and prints its outcome (the --replay / --input mode). */
function replay(o: Options): number {
  if (o.targets.length !== 1) throw new Error("--replay and --input need exactly one --target");
  const target = targetNamed(o.targets[0]!);
  let input: Uint8Array;
  if (o.input !== undefined) {
    input = o.input.startsWith("@") ? new Uint8Array(readFileSync(o.input.slice(1))) : fromB64(o.input);
  } else input = inputFor(prepare(target), o.seed, o.replay!);
  console.log(`${target.name}: ${input.length} bytes, base64 ${b64(input)}`);
  const t = performance.now();
  const r = runOne(target, input);
  const ms = (performance.now() - t).toFixed(1);
  if (r.outcome === "returned") console.log(`returned in ${ms} ms`);
  else if (r.outcome === "refused") console.log(`refused in ${ms} ms: ${r.error.name}: ${r.error.message}`);
  else {
    const d = describeError(r.error);
    console.log(`FINDING (${r.kind}) in ${ms} ms: ${d.stack ?? d.detail}`);
    return 1;
  }
  return 0;
}

interface Message {
  type: "finding" | "progress" | "done";
  finding?: Finding;
  stats?: Stats;
}

/** Runs [from, count) of one target in workers until done or past the deadline; restarts after a hang. */
async function fuzzTarget(name: string, o: Options, deadline: number): Promise<Stats> {
  const total = emptyStats(name);
  const seen: string[] = [];
  const t0 = Date.now();
  let from = 0;
  let lastLine = 0;
  let kills = 0;
  const line = (s: Stats, note = "") => {
    const done = total.inputs + s.inputs;
    const secs = (Date.now() - t0) / 1000;
    const pct = done > 0 ? ((100 * (total.returned + s.returned)) / done).toFixed(1) : "0";
    console.log(
      `[${name}] ${fmt(done)}/${fmt(o.count)} inputs, ${fmt(Math.round(done / Math.max(secs, 0.001)))}/s, ` +
        `returned ${pct}%, slowest ${Math.max(total.slowestMs, s.slowestMs).toFixed(1)} ms, ` +
        `findings ${total.findings + s.findings}${note}`,
    );
  };
  while (from < o.count && Date.now() < deadline) {
    const progress = new SharedArrayBuffer(4);
    const cell = new Int32Array(progress);
    Atomics.store(cell, 0, from);
    const job: WorkerJob = {
      target: name,
      seed: o.seed,
      from,
      to: o.count,
      capMs: o.capMs,
      deadline,
      progress,
      seen: [...seen],
    };
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { workerData: job });
    let last = emptyStats(name);
    const outcome = await new Promise<{ stats: Stats; killed?: Finding["kind"]; at?: number }>(
      (resolve, reject) => {
        let watched = Atomics.load(cell, 0);
        let since = Date.now();
        const timer = setInterval(() => {
          const now = Date.now();
          const at = Atomics.load(cell, 0);
          if (at !== watched) {
            watched = at;
            since = now;
          }
          const rssMb = process.memoryUsage().rss / 2 ** 20;
          const kind = now - since > o.hangMs ? "hang" : rssMb > o.maxRssMb ? "memory" : undefined;
          if (kind) {
            clearInterval(timer);
            void worker.terminate();
            const detail =
              kind === "hang"
                ? `still running after ${now - since} ms (hang cap ${o.hangMs} ms)`
                : `process RSS ${rssMb.toFixed(0)} MB over ${o.maxRssMb} MB during this input`;
            const input = inputFor(prepare(targetNamed(name)), o.seed, at);
            const f: Finding = {
              target: name,
              seed: o.seed,
              iteration: at,
              kind,
              detail,
              ms: now - since,
              input: b64(input),
            };
            printFinding(f, o.findings);
            const stats = {
              ...last,
              inputs: at - from + 1,
              findings: last.findings + 1,
              distinctFindings: last.distinctFindings + 1,
            };
            resolve({ stats, killed: kind, at });
          }
        }, 100);
        worker.on("message", (m: Message) => {
          if (m.type === "finding" && m.finding) {
            seen.push(signatureOf(m.finding.kind, m.finding.detail, m.finding.stack));
            printFinding(m.finding, o.findings);
          } else if (m.type === "progress" && m.stats) {
            last = m.stats;
            if (Date.now() - lastLine >= 10_000) {
              lastLine = Date.now();
              line(m.stats);
            }
          } else if (m.type === "done" && m.stats) {
            clearInterval(timer);
            resolve({ stats: m.stats });
          }
        });
        worker.on("error", (e) => {
          clearInterval(timer);
          reject(e);
        });
      },
    );
    addStats(total, outcome.stats);
    if (outcome.at === undefined) break;
    from = outcome.at + 1;
    if (++kills >= o.maxHangs) break;
  }
  total.elapsedMs = Date.now() - t0;
  const why =
    kills >= o.maxHangs
      ? ` (stopped after ${kills} hangs)`
      : total.inputs < o.count
        ? " (stopped at its time share)"
        : " (done)";
  line(emptyStats(name), why);
  return total;
}

function table(rows: Stats[]): string {
  const head = ["target", "inputs", "time s", "inputs/s", "returned", "refused", "slowest ms", "findings"];
  const body = rows.map((s) => [
    s.target,
    fmt(s.inputs),
    (s.elapsedMs / 1000).toFixed(0),
    fmt(rate(s)),
    fmt(s.returned),
    fmt(s.refused),
    `${s.slowestMs.toFixed(1)} (#${s.slowestIteration})`,
    s.findings === 0 ? "0" : `${s.findings} (${s.distinctFindings} distinct)`,
  ]);
  const all = [head, ...body];
  const w = head.map((_, k) => Math.max(...all.map((r) => r[k]!.length)));
  const fmtRow = (r: string[]) =>
    `| ${r.map((c, k) => (k === 0 ? c.padEnd(w[k]!) : c.padStart(w[k]!))).join(" | ")} |`;
  return [
    fmtRow(head),
    `|${w.map((n, k) => (k === 0 ? `${"-".repeat(n + 1)}-` : `${"-".repeat(n + 1)}:`)).join("|")}|`,
    ...body.map(fmtRow),
  ].join("\n");
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (o.list) {
    for (const t of TARGETS) console.log(`${t.name.padEnd(18)} ${t.calls}`);
    return 0;
  }
  if (o.replay !== undefined || o.input !== undefined) return replay(o);
  const names = o.targets.length ? o.targets : TARGETS.map((t) => t.name);
  const end = Date.now() + o.minutes * 60_000;
  console.log(
    `fuzz: ${names.length} targets, ${fmt(o.count)} inputs each, seed ${o.seed}, ${o.minutes} min total, ` +
      `cap ${o.capMs} ms per input, hang after ${o.hangMs} ms`,
  );
  const rows: Stats[] = [];
  for (const [k, name] of names.entries()) {
    const share = (end - Date.now()) / (names.length - k);
    rows.push(await fuzzTarget(name, o, Date.now() + Math.max(0, share)));
  }
  console.log(`\n${table(rows)}`);
  const findings = rows.reduce((n, s) => n + s.findings, 0);
  console.log(findings === 0 ? "\nno findings" : `\n${findings} findings, written to ${o.findings}`);
  return findings === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(2);
  },
);
