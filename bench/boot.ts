// Benchmark: whole boots in QEMU (TCG) of the test OS's good disk, one batch of N boots per row, timed by the
// guest kernel's clock (/proc/uptime read by the init scripts and sealroot's events, never host time):
// kernel start → agent start, the agent's own duration, kernel start → the OS init's pass marker, and the
// compressed initramfs size. Rows: sealroot in each initramfs kind; the same binary run by a busybox shell
// /init; the runtime's floor (a compiled Bun program that only loads ffi-rs and exits, several build and
// packing variants, and a bare Bun hello); Debian's ostree-prepare-root 2022.7 (apt ostree-boot) in its only
// (legacy, bind-mount) mode as the C baseline.
// Run: npm run bench:boot [-- --boots 5] [--rows name,name]   (= bun run bench/boot.ts; as root)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildInitramfs, CACHE, type InitrdSpec, REPO, SEALROOT_BIN } from "../initrd/build.ts";
import { ffiRsAddon, sealrootInitrdSpec } from "../initrd/sealroot.ts";
import {
  buildDracutInitramfs,
  type DracutKind,
  type DracutModuleSource,
} from "../qemu/build-dracut-initramfs.ts";
import { fetchKernel } from "../qemu/lib/kernel.ts";
import { bootVm, type VmResult } from "../qemu/lib/qemu.ts";
import { PROBE_MODULE } from "../test/boot/lib/dracut.ts";
import {
  bootArgs,
  build,
  parseOsReport,
  type TestOsManifest,
  testOs,
  variant,
} from "../test/boot/lib/test-os.ts";

const BUN = join(REPO, "node_modules/.bin/bun");
const BIN = SEALROOT_BIN;
const C_PREPARE_ROOT = "/usr/lib/ostree/ostree-prepare-root";
const WORK = join(CACHE, "bench/boot");
const M = "SEALROOT-VM:";
/** sealroot's release build flags (scripts/build.mjs): the floor rows marked "release" use them too. */
const RELEASE: string[] = JSON.parse(readFileSync(join(REPO, "scripts/release-flags.json"), "utf8"));

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}
const BOOTS = Number(option("boots", "5"));
const ONLY = option("rows", "")
  .split(",")
  .filter((x) => x);

// ---- programs compiled for the floor rows -------------------------------------------------------------

/** Loads ffi-rs (its addon is unpacked to /tmp and dlopened), opens libc, calls getpid, exits. */
const FLOOR_SRC = `import { DataType, load, open } from "ffi-rs";
const t = performance.now();
open({ library: "libc", path: "" });
const pid = load({ library: "libc", funcName: "getpid", retType: DataType.I32, paramsType: [], paramsValue: [] });
console.log("${M} floor_js_ms=" + t.toFixed(1) + " floor_ffi_ms=" + (performance.now() - t).toFixed(1) + " pid=" + pid);
`;
const HELLO_SRC = `console.log("${M} hello_js_ms=" + performance.now().toFixed(1));\n`;

/** `bun build --compile FLAGS` of `source`, cached by source, flags and Bun version. */
function compile(name: string, source: string, flags: string[]): string {
  const version = execFileSync(BUN, ["--version"], { encoding: "utf8" }).trim();
  const key = createHash("sha256")
    .update(`${version}\n${flags.join(" ")}\n${source}`)
    .digest("hex")
    .slice(0, 16);
  const dir = join(WORK, "bin");
  const out = join(dir, `${name}-${key}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const entry = join(REPO, `.bench-${name}-${key}.ts`); // inside the repo: resolves ffi-rs from node_modules
  writeFileSync(entry, source);
  try {
    execFileSync(BUN, ["build", "--compile", ...flags, entry, "--outfile", `${out}.tmp`], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "inherit"],
    });
  } finally {
    execFileSync("rm", ["-f", entry]);
  }
  renameSync(`${out}.tmp`, out);
  return out;
}

/** sealroot compiled with extra flags (scripts/build.mjs), cached by the flags and the sources' hash. */
function sealrootWith(flags: string[]): string {
  const h = createHash("sha256").update(flags.join(" "));
  const files = execFileSync("find", ["src", "-name", "*.ts", "!", "-name", "*.test.ts"], {
    cwd: REPO,
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .sort();
  for (const f of files) h.update(f).update(readFileSync(join(REPO, f)));
  const out = join(WORK, "bin", `sealroot-${h.digest("hex").slice(0, 16)}`);
  if (existsSync(out)) return out;
  mkdirSync(join(WORK, "bin"), { recursive: true });
  execFileSync("node", ["scripts/build.mjs", ...flags], {
    cwd: REPO,
    env: { ...process.env, SEALROOT_OUT: `${out}.tmp` },
    stdio: ["ignore", "pipe", "inherit"],
  });
  renameSync(`${out}.tmp`, out);
  return out;
}

// ---- init scripts ---------------------------------------------------------------------------------------

/** /init of the shell rows: API mounts, modules, root at /sysroot, then the agent between two uptime marks;
 * on success (and `switchRoot`) moves the API mounts and switch_roots into the OS init, else powers off. */
function shellInit(agent: string, switchRoot: boolean): string {
  return `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
m() { echo "${M} $1=$2"; }
up() { read -r u _ </proc/uptime; echo "$u"; }
m t_init "$(up)"
while read -r mod; do insmod "/lib/modules/$mod.ko"; done </etc/modules-load
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
mkdir -p /sysroot
mount -t ext4 -o rw /dev/vda /sysroot
m t_agent_start "$(up)"
${agent} >/tmp/agent.out 2>/tmp/agent.err
rc=$?
m t_agent_end "$(up)"
m agent_rc "$rc"
grep -h "${M}" /tmp/agent.out
[ "$rc" = 0 ] || cat /tmp/agent.err
if [ "$rc" = 0 ] && ${switchRoot ? "true" : "false"}; then
  for d in dev proc sys run; do mount --move /$d /sysroot/$d; done
  exec switch_root /sysroot /sbin/init
fi
poweroff -f
`;
}

/** The shipped busybox /init plus one mark before sealroot takes over as PID 1. */
const PID1_INIT = `#!/bin/sh
mount -t proc -o nosuid,nodev,noexec proc /proc
read -r u _ </proc/uptime
echo "${M} t_agent_start=$u"
exec /usr/bin/sealroot init
`;

/** dracut rows: the probe module's timing marks only (no report, no power-off: the boot goes on). */
const TIMING_MODULE: DracutModuleSource = {
  name: "sealroot-timing",
  priority: "99",
  files: {
    "module-setup.sh": {
      mode: 0o755,
      content: `#!/bin/bash
check() { return 255; }
depends() { echo sealroot; }
install() {
    inst_hook cmdline 00 "$moddir/probe-initrd.sh"
    if dracut_module_included "systemd"; then
        inst_simple "$moddir/probe.conf" "$systemdsystemunitdir/sealroot-prepare-root.service.d/probe.conf"
    else
        inst_hook pre-pivot 09 "$moddir/probe-start.sh"
        inst_hook pre-pivot 11 "$moddir/probe-end.sh"
    fi
}
`,
    },
    ...Object.fromEntries(
      ["probe-initrd.sh", "probe-start.sh", "probe-end.sh", "probe.conf"].map((f) => [
        f,
        PROBE_MODULE.files[f] as { content: string; mode?: number },
      ]),
    ),
  },
};

// ---- rows ---------------------------------------------------------------------------------------------

interface Row {
  name: string;
  what: string;
  /** Returns the initramfs path and its size. */
  image: (os: TestOsManifest) => { path: string; bytes: number };
  args: (os: TestOsManifest) => string;
  /** Reads the agent's start and end (guest uptime, s) from the console. */
  agent: (r: VmResult) => { start: number | undefined; end: number | undefined };
  /** Boots into the OS (a pass marker is expected). */
  pass: boolean;
  /** With a TPM 2.0 (a fresh swtpm per boot): the boot is measured into PCR 15. */
  tpm?: boolean;
}

/** sealroot's `measure` step (ms), from the timings of the decision record the OS init prints. */
function measureMs(rep: ReturnType<typeof parseOsReport>): number | undefined {
  const t = (rep.decisionJson as { timings?: Record<string, number> } | undefined)?.timings?.measure;
  return typeof t === "number" ? t : undefined;
}

const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
const shellAgent = (r: VmResult) => ({
  start: num(r.markers.t_agent_start),
  end: num(r.markers.t_agent_end),
});
const dracutAgent = (r: VmResult) => ({
  start: num(r.markers.t_sealroot_start),
  end: num(r.markers.t_sealroot_end),
});
/** PID 1: from the /init mark to the uptime sealroot logs when prepare-root is done (before switch_root). */
function pid1Agent(r: VmResult) {
  let end: number | undefined;
  for (const line of r.serial.split("\n")) {
    const at = line.indexOf('{"level":');
    if (at < 0 || !line.includes('"phase":"prepare-root"')) continue;
    try {
      end = (JSON.parse(line.slice(at)) as { uptime?: number }).uptime;
    } catch {
      // an interleaved line: leave it
    }
  }
  return { start: num(r.markers.t_agent_start), end };
}

const kernel = () => fetchKernel();
const modules = () => ({ dir: kernel().modulesDir, names: kernel().modules });
const keyFiles = (os: TestOsManifest) => [{ src: build(os, 2).keyPub }];

function shellImage(agentSpec: Partial<InitrdSpec>, init: string, compression?: InitrdSpec["compression"]) {
  const spec: InitrdSpec = { init, modules: modules(), dirs: ["/sysroot"], ...agentSpec };
  if (compression) spec.compression = compression;
  return buildInitramfs(spec);
}
function sealrootShellImage(os: TestOsManifest, bin: string, config: boolean) {
  const spec = sealrootInitrdSpec({
    bin,
    modules: modules(),
    keys: keyFiles(os),
    ...(config ? { config: os.signedConf } : {}),
  });
  return buildInitramfs({ ...spec, init: shellInit("/usr/bin/sealroot prepare-root /sysroot", true) });
}
function floorImage(bin: string, compression?: InitrdSpec["compression"], ffi = true) {
  return shellImage(
    { binaries: [{ src: bin, dest: "/usr/bin/agent" }], ...(ffi ? { libsOf: [ffiRsAddon()] } : {}) },
    shellInit("/usr/bin/agent", false),
    compression,
  );
}
function dracutImage(kind: DracutKind, os: TestOsManifest) {
  const conf = join(WORK, "signed.conf");
  mkdirSync(WORK, { recursive: true });
  writeFileSync(conf, os.signedConf);
  return buildDracutInitramfs({
    kind,
    kernelDir: kernel().dir,
    keys: [build(os, 2).keyPub],
    config: conf,
    extraModules: [TIMING_MODULE],
  });
}

const signed = (os: TestOsManifest) => bootArgs(build(os, 2));
const legacy = (os: TestOsManifest) => `${bootArgs(build(os, 2))} ot-composefs=off`;

const ROWS: Row[] = [
  {
    name: "sealroot-pid1",
    what: "sealroot init, busybox initramfs as shipped (initrd/sealroot.ts), signed; agent = /init exec → root prepared (includes insmod, root wait, mount)",
    image: (os) =>
      buildInitramfs({
        ...sealrootInitrdSpec({ bin: BIN, modules: modules(), keys: keyFiles(os), config: os.signedConf }),
        init: PID1_INIT,
      }),
    args: signed,
    agent: pid1Agent,
    pass: true,
  },
  {
    name: "sealroot-shell-signed",
    what: "sealroot prepare-root /sysroot from a busybox shell /init, signed (composefs, verity)",
    image: (os) => sealrootShellImage(os, BIN, true),
    args: signed,
    agent: shellAgent,
    pass: true,
  },
  {
    name: "sealroot-shell-signed-tpm",
    what: "as -signed, with a TPM 2.0 (swtpm, tpm-tis): the boot measured into PCR 15 and its log appended",
    image: (os) => sealrootShellImage(os, BIN, true),
    args: signed,
    agent: shellAgent,
    pass: true,
    tpm: true,
  },
  {
    name: "sealroot-shell-off",
    what: "the same, no config + ot-composefs=off (the legacy bind, as the C baseline does)",
    image: (os) => sealrootShellImage(os, BIN, false),
    args: legacy,
    agent: shellAgent,
    pass: true,
  },
  {
    name: "sealroot-plain-shell-signed",
    what: "as -signed, sealroot built with no flags (no bytecode, normal JIT policy)",
    image: (os) => sealrootShellImage(os, sealrootWith(["--plain"]), true),
    args: signed,
    agent: shellAgent,
    pass: true,
  },
  {
    name: "dracut-systemd",
    what: "dracut + systemd, the sealroot unit, signed; agent = ExecStartPre → ExecStartPost",
    image: (os) => dracutImage("systemd", os),
    args: (os) => `${signed(os)} rd.shell=0 rd.emergency=poweroff`,
    agent: dracutAgent,
    pass: true,
  },
  {
    name: "dracut-nosystemd",
    what: "dracut without systemd, pre-pivot hook 10, signed; agent = hooks 09 → 11",
    image: (os) => dracutImage("nosystemd", os),
    args: (os) => `${signed(os)} rd.shell=0`,
    agent: dracutAgent,
    pass: true,
  },
  {
    name: "floor",
    what: "Bun program: load ffi-rs, getpid, exit (bun build --compile, no flags), zstd",
    image: () => floorImage(compile("floor", FLOOR_SRC, [])),
    args: signed,
    agent: shellAgent,
    pass: false,
  },
  {
    name: "floor-release",
    what: "the same, built with sealroot's release flags",
    image: () => floorImage(compile("floor", FLOOR_SRC, RELEASE)),
    args: signed,
    agent: shellAgent,
    pass: false,
  },
  {
    name: "floor-release-raw",
    what: "the same, uncompressed initramfs",
    image: () => floorImage(compile("floor", FLOOR_SRC, RELEASE), "none"),
    args: signed,
    agent: shellAgent,
    pass: false,
  },
  {
    name: "bun-hello",
    what: "bare Bun hello (no ffi-rs, no flags), zstd",
    image: () => floorImage(compile("hello", HELLO_SRC, []), undefined, false),
    args: signed,
    agent: shellAgent,
    pass: false,
  },
  {
    name: "bun-hello-release",
    what: "the same, release flags",
    image: () => floorImage(compile("hello", HELLO_SRC, RELEASE), undefined, false),
    args: signed,
    agent: shellAgent,
    pass: false,
  },
  {
    name: "c-ostree-2022.7",
    what: `Debian ostree-boot 2022.7 ${C_PREPARE_ROOT} (legacy bind; no composefs in that build), busybox shell /init`,
    image: () => {
      if (!existsSync(C_PREPARE_ROOT))
        throw new Error(`${C_PREPARE_ROOT} absent: apt-get install ostree-boot`);
      return shellImage(
        { binaries: [{ src: C_PREPARE_ROOT, dest: "/usr/bin/ostree-prepare-root" }] },
        shellInit("/usr/bin/ostree-prepare-root /sysroot", true),
      );
    },
    args: signed,
    agent: shellAgent,
    pass: true,
  },
];

// ---- run ----------------------------------------------------------------------------------------------

interface Sample {
  toAgent?: number;
  agent?: number;
  toPass?: number;
  ok: boolean;
  wall: number;
  /** sealroot's `measure` phase, ms. */
  measureMs?: number;
}

/** Under Bun, a QEMU that dies from a signal sent by someone else was seen never to emit 'close': the
 * runner then never settles. Give up on that boot instead of hanging the batch. */
function watchdog<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((done) => {
    timer = setTimeout(() => done(undefined), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const median = (xs: number[]): number | undefined => {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const f2 = (v: number | undefined) => (v === undefined ? "–" : v.toFixed(2));

async function main() {
  if (process.getuid?.() !== 0) console.error("bench/boot: not root; the test OS build needs root");
  const os = await testOs((s) => console.error(s));
  const disk = variant(os, "good").disk;
  const rows = ONLY.length ? ROWS.filter((r) => ONLY.includes(r.name)) : ROWS;
  const results: { row: Row; bytes: number; samples: Sample[]; extra: string[] }[] = [];
  for (const row of rows) {
    let img: { path: string; bytes: number };
    try {
      img = row.image(os);
    } catch (e) {
      console.error(`${row.name}: cannot build: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    const samples: Sample[] = [];
    const extra: string[] = [];
    for (let i = 0; i < BOOTS; i++) {
      const log = join(WORK, "logs", `${row.name}-${i}.log`);
      const r = await watchdog(
        bootVm({
          kernel: kernel().vmlinuz,
          initrd: img.path,
          disks: [{ path: disk, snapshot: true }],
          append: row.args(os),
          memMiB: 2048,
          // as every batch in bench/README.md was measured (the tests boot with 1: see VmOptions.smp)
          smp: 2,
          timeoutMs: 240_000,
          serialLog: log,
          ...(row.tpm ? { tpm: true } : {}),
        }),
        300_000,
      );
      if (!r) {
        console.error(`${row.name} #${i + 1}: NOT OK, the runner never returned (log ${log})`);
        samples.push({ ok: false, wall: 300 });
        continue;
      }
      const a = row.agent(r);
      const rep = parseOsReport(r.serial);
      const ok = row.pass ? rep.pass === true : r.markers.agent_rc === "0";
      const s: Sample = { ok, wall: r.timings.wallMs / 1000 };
      if (a.start !== undefined) s.toAgent = a.start;
      if (a.start !== undefined && a.end !== undefined) s.agent = Math.round((a.end - a.start) * 100) / 100;
      if (rep.pass && rep.tOsDone !== undefined) s.toPass = rep.tOsDone;
      const mm = measureMs(rep);
      if (mm !== undefined) s.measureMs = mm;
      samples.push(s);
      const x = r.markerList.find((mk) => mk.key === "floor_js_ms" || mk.key === "hello_js_ms");
      if (x) extra.push(`${x.key}=${x.value}`);
      console.error(
        `${row.name} #${i + 1}: ${ok ? "ok" : `NOT OK (log ${log})`} kernel→agent ${f2(s.toAgent)} s, agent ${f2(s.agent)} s, kernel→pass ${f2(s.toPass)} s, wall ${s.wall.toFixed(1)} s`,
      );
    }
    results.push({ row, bytes: img.bytes, samples, extra });
  }

  const header = ["row", "ok", "kernel→agent s", "agent s (median, min)", "kernel→pass s", "initramfs MB"];
  const body = results.map(({ row, bytes, samples }) => {
    const col = (k: keyof Sample) =>
      samples.map((s) => s[k]).filter((v): v is number => typeof v === "number");
    const agent = col("agent");
    return [
      row.name,
      `${samples.filter((s) => s.ok).length}/${samples.length}`,
      f2(median(col("toAgent"))),
      `${f2(median(agent))} (${f2(agent.length ? Math.min(...agent) : undefined)})`,
      f2(median(col("toPass"))),
      (bytes / 1e6).toFixed(1),
    ];
  });
  const w = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(w[i] as number)).join(" | ")} |`;
  console.log(`\nboot benchmark: ${BOOTS} boots per row, medians of guest uptime (s), QEMU TCG, good disk`);
  console.log(line(header));
  console.log(line(w.map((n) => "-".repeat(n))));
  for (const b of body) console.log(line(b));
  console.log("");
  for (const { row, extra } of results) {
    console.log(`${row.name}: ${row.what}${extra.length ? `; in-process: ${extra.join(", ")}` : ""}`);
  }
  const med = (name: string) => {
    const r = results.find((x) => x.row.name === name);
    return median(r?.samples.map((s) => s.agent).filter((v): v is number => v !== undefined) ?? []);
  };
  // the runtime's floor as sealroot ships: built with the same flags
  const floor = med("floor-release");
  const c = med("c-ostree-2022.7");
  for (const s of ["sealroot-shell-signed", "sealroot-shell-off"]) {
    const v = med(s);
    if (v !== undefined && floor !== undefined && c !== undefined)
      console.log(
        `target ${s}: agent ${v.toFixed(2)} − floor-release ${floor.toFixed(2)} = ${(v - floor).toFixed(2)} s vs C baseline ${c.toFixed(2)} s → ${v - floor <= c ? "met" : "NOT met"}`,
      );
  }
  const floors = ["floor", "floor-release", "floor-release-raw"]
    .map((n) => [n, med(n)] as const)
    .filter((x): x is readonly [string, number] => x[1] !== undefined);
  if (floors.length) {
    const best = floors.reduce((a, b) => (b[1] < a[1] ? b : a));
    console.log(
      `floor target < 0.28 s: best ${best[0]} ${best[1].toFixed(2)} s → ${best[1] < 0.28 ? "met" : "NOT met"}`,
    );
  }
  // measured boot (issue 12): the agent with the measurement against the same boot without a TPM, whose
  // measure step only finds no device
  const tpmRow = results.find((x) => x.row.name === "sealroot-shell-signed-tpm");
  const plainRow = results.find((x) => x.row.name === "sealroot-shell-signed");
  const mMs = (r: typeof tpmRow) =>
    median(r?.samples.map((s) => s.measureMs).filter((v): v is number => v !== undefined) ?? []);
  const withTpm = med("sealroot-shell-signed-tpm");
  const without = med("sealroot-shell-signed");
  if (withTpm !== undefined && without !== undefined) {
    const mt = mMs(tpmRow);
    const mn = mMs(plainRow);
    console.log(
      `measurement: agent with a TPM ${withTpm.toFixed(2)} s vs without ${without.toFixed(2)} s → ${(withTpm / without).toFixed(2)}×; ` +
        `measure step ${mt === undefined ? "–" : `${mt.toFixed(1)} ms`} with a TPM, ${mn === undefined ? "–" : `${mn.toFixed(1)} ms`} without` +
        (mt !== undefined
          ? ` (${((mt / 1000 / without) * 100).toFixed(1)}% of the agent's time without it)`
          : ""),
    );
  }
  console.log(`serial logs: ${join(WORK, "logs")}`);
}

await main();
