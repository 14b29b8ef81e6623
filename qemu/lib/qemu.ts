// Boots one QEMU TCG VM (no KVM on these machines) with a kernel, an initramfs and virtio-blk disks, captures
// the serial console, enforces a timeout and parses the `SEALROOT-VM: key=value` lines the guest's /init
// prints (see init.ts). `-cpu max` is required: the default TCG CPU lacks AVX2 and a Bun binary dies with
// SIGILL. The guest powers off with `poweroff -f`; with `-no-reboot` and `panic=-1` a kernel panic ends QEMU too.

import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { MARKER } from "./init.ts";
import { startSwtpm } from "./swtpm.ts";

export const QEMU = process.env.SEALROOT_QEMU ?? "qemu-system-x86_64";

export interface VmDisk {
  path: string;
  /** Discard guest writes (QEMU `snapshot=on`), keeping the image pristine for the next boot. */
  snapshot?: boolean;
  readOnly?: boolean;
}

export interface VmOptions {
  kernel: string;
  initrd: string;
  /** Attached in order as virtio-blk: /dev/vda, /dev/vdb, … */
  disks?: VmDisk[];
  /** Extra kernel command-line words, after `console=ttyS0 panic=-1 loglevel=4`. */
  append?: string;
  memMiB?: number;
  /** vCPUs (default 1). With 2, multi-threaded TCG sometimes lets one vCPU run code the other is
   * live-patching (a static key): the guest dies with `Oops: int3` in sched_clock_* and a panic, seen in
   * about 1 of 70 boots of Debian 13's 6.12 kernel under QEMU 7.2. One vCPU never races itself. */
  smp?: number;
  /** Kill QEMU after this long (default 120 s). */
  timeoutMs?: number;
  /** Also write the raw serial output here. */
  serialLog?: string;
  /** Called for each console line as it arrives (e.g. to echo progress). */
  onLine?: (line: string) => void;
  /** A TPM 2.0 on the TIS interface, served by a fresh swtpm for this boot (its control socket). */
  tpm?: boolean;
}

export interface Marker {
  key: string;
  value: string;
  /** Host milliseconds since QEMU was spawned. */
  atMs: number;
}

export interface VmResult {
  /** The guest's `exit=` marker (the init body's status); undefined when the guest never printed it. */
  status: number | undefined;
  /** Last value of each marker key. */
  markers: Record<string, string>;
  markerList: Marker[];
  /** The whole console, `\r` removed. */
  serial: string;
  timedOut: boolean;
  panicked: boolean;
  qemuExitCode: number | null;
  qemuSignal: NodeJS.Signals | null;
  timings: VmTimings;
  argv: string[];
}

export interface VmTimings {
  /** Host: spawn → QEMU exit. */
  wallMs: number;
  /** Host: spawn → first console byte (QEMU start, firmware, kernel decompression). */
  firstOutputMs: number | undefined;
  /** Guest: kernel clock at /init start (≈ kernel start → init). */
  kernelToInitS: number | undefined;
  /** Guest: /init start → modules loaded and disk present. */
  initToReadyS: number | undefined;
  /** Guest: /init start → body finished. */
  initToDoneS: number | undefined;
}

/** QEMU's argv for `opts` (exported for logs and tests). */
export function qemuArgv(opts: VmOptions, tpmCtrl?: string): string[] {
  const append = ["console=ttyS0", "panic=-1", "loglevel=4", opts.append ?? ""].join(" ").trim();
  const argv = [
    "-machine",
    "q35,accel=tcg",
    "-cpu",
    "max",
    "-smp",
    String(opts.smp ?? 1),
    "-m",
    String(opts.memMiB ?? 1024),
    "-nographic",
    "-monitor",
    "none",
    "-serial",
    "stdio",
    "-no-reboot",
    "-nodefaults",
    "-kernel",
    opts.kernel,
    "-initrd",
    opts.initrd,
    "-append",
    append,
  ];
  if (tpmCtrl !== undefined)
    argv.push(
      "-chardev",
      `socket,id=chrtpm,path=${tpmCtrl}`,
      "-tpmdev",
      "emulator,id=tpm0,chardev=chrtpm",
      "-device",
      "tpm-tis,tpmdev=tpm0",
    );
  for (const [i, d] of (opts.disks ?? []).entries()) {
    const flags = [`file=${d.path}`, "format=raw", "if=none", `id=d${i}`, "cache=unsafe"];
    if (d.snapshot) flags.push("snapshot=on");
    if (d.readOnly) flags.push("readonly=on");
    argv.push("-drive", flags.join(","), "-device", `virtio-blk-pci,drive=d${i}`);
  }
  return argv;
}

/** True when QEMU can be started here; the reason otherwise. */
export function qemuAvailable(): true | string {
  const r = spawnSync(QEMU, ["--version"], { encoding: "utf8" });
  if (r.error) return `${QEMU} not runnable (${r.error.message}); apt-get install qemu-system-x86`;
  return r.status === 0 ? true : `${QEMU} --version exited ${String(r.status)}`;
}

const MARKER_RE = new RegExp(`${MARKER.replace(/[-]/g, "\\-")} ([A-Za-z0-9_.-]+)=(.*)$`);

/** Markers in console text, in order (a marker may follow kernel noise on the same line). */
export function parseMarkers(serial: string): Omit<Marker, "atMs">[] {
  const out: Omit<Marker, "atMs">[] = [];
  for (const line of serial.split("\n")) {
    const m = MARKER_RE.exec(line.replace(/\r/g, ""));
    if (m?.[1] !== undefined && m[2] !== undefined) out.push({ key: m[1], value: m[2] });
  }
  return out;
}

export async function bootVm(opts: VmOptions): Promise<VmResult> {
  if (!opts.tpm) return runQemu(opts);
  const tpm = await startSwtpm();
  try {
    return await runQemu(opts, tpm.ctrl);
  } finally {
    tpm.stop();
  }
}

function runQemu(opts: VmOptions, tpmCtrl?: string): Promise<VmResult> {
  const argv = qemuArgv(opts, tpmCtrl);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const start = performance.now();
  let log: ReturnType<typeof createWriteStream> | undefined;
  if (opts.serialLog) {
    mkdirSync(dirname(opts.serialLog), { recursive: true });
    log = createWriteStream(opts.serialLog);
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(QEMU, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let serial = "";
    let pending = "";
    let stderr = "";
    let firstOutputMs: number | undefined;
    let timedOut = false;
    const markerList: Marker[] = [];
    const onLine = (raw: string): void => {
      const line = raw.replace(/\r/g, "");
      const m = MARKER_RE.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) {
        markerList.push({ key: m[1], value: m[2], atMs: performance.now() - start });
      }
      opts.onLine?.(line);
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      firstOutputMs ??= performance.now() - start;
      log?.write(chunk);
      serial += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) onLine(l);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`Cannot start "${QEMU}": ${e.message}, expected qemu-system-x86 installed`));
    });
    // Under Bun, a QEMU that has exited was seen to never emit 'close' (bench/boot hung on dracut boots):
    // after 'exit', or once the process is seen gone, give the pipes 2 s to drain, then finish anyway.
    let finished = false;
    let exitedAt: number | undefined;
    let drain: ReturnType<typeof setTimeout> | undefined;
    const drainThenFinish = () => {
      exitedAt ??= performance.now();
      clearInterval(poll);
      drain ??= setTimeout(() => finish(child.exitCode, child.signalCode), 2000);
    };
    child.on("exit", drainThenFinish);
    const poll = setInterval(() => {
      if (child.exitCode !== null || child.signalCode !== null) drainThenFinish();
    }, 1000);
    child.on("close", (code, signal) => finish(code, signal));
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (finished) return;
      finished = true;
      clearInterval(poll);
      clearTimeout(drain);
      clearTimeout(timer);
      if (pending) onLine(pending);
      log?.end();
      const wallMs = (exitedAt ?? performance.now()) - start;
      const text = serial.replace(/\r/g, "");
      if (code !== 0 && !timedOut && stderr.trim()) {
        reject(
          new Error(
            `Cannot boot the VM: ${QEMU} exited ${String(code)} with ${JSON.stringify(stderr.trim())}`,
          ),
        );
        return;
      }
      const markers: Record<string, string> = {};
      for (const m of markerList) markers[m.key] = m.value;
      const num = (k: string): number | undefined =>
        markers[k] === undefined ? undefined : Number(markers[k]);
      const tInit = num("t_init");
      const tReady = num("t_ready");
      const tDone = num("t_done");
      const exit = num("exit");
      resolvePromise({
        status: exit,
        markers,
        markerList,
        serial: text,
        timedOut,
        panicked: /Kernel panic/.test(text),
        qemuExitCode: code,
        qemuSignal: signal,
        argv: [QEMU, ...argv],
        timings: {
          wallMs,
          firstOutputMs,
          kernelToInitS: tInit,
          initToReadyS: tInit !== undefined && tReady !== undefined ? round3(tReady - tInit) : undefined,
          initToDoneS: tInit !== undefined && tDone !== undefined ? round3(tDone - tInit) : undefined,
        },
      });
    };
  });
}

/** One line for test logs: "wall 6.1 s (first output 0.4 s), kernel→init 2.2 s, init→ready 0.3 s, init→done 1.9 s". */
export function formatTimings(t: VmTimings): string {
  const s = (v: number | undefined, scale = 1): string => (v === undefined ? "?" : (v / scale).toFixed(2));
  return (
    `wall ${s(t.wallMs, 1000)} s (first output ${s(t.firstOutputMs, 1000)} s), kernel→init ${s(t.kernelToInitS)} s, ` +
    `init→ready ${s(t.initToReadyS)} s, init→done ${s(t.initToDoneS)} s`
  );
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** A kernel console record's prefix, `[    5.729306] `. */
const PRINTK_RECORD = /\[ *\d+\.\d+\] /;

/**
 * sealroot's structured events (JSON lines) on a console; the systemd kind prefixes them with
 * `[ t] sealroot[pid]: `. On a serial console the kernel prints a /dev/kmsg record (PID 1's refusal line)
 * straight onto the port while the tty still drains the event written just before it, so the event's
 * line holds the whole record and its rest follows on the next line: an event is mended from exactly
 * that shape. Any other malformed event throws: a finding, not noise.
 */
export function sealrootEvents(serial: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const lines = serial.split("\n");
  for (const [i, line] of lines.entries()) {
    const at = line.indexOf('{"level":');
    if (at < 0) continue;
    const text = line.slice(at).trimEnd();
    try {
      out.push(JSON.parse(text) as Record<string, unknown>);
    } catch (e) {
      const cut = text.search(PRINTK_RECORD);
      const rest = lines[i + 1];
      if (cut < 0 || rest === undefined) throw e;
      out.push(JSON.parse(text.slice(0, cut) + rest.trimEnd()) as Record<string, unknown>);
    }
  }
  return out;
}
