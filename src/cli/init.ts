// `sealroot init`: the PID-1 mode for a busybox initramfs (initrd/sealroot.ts builds one). It mounts the API
// file systems, loads modules, finds and mounts root=, runs prepare-root and switch-roots into init= — or
// prints the reason and powers off (a shell with rd.shell). Structured events go to stdout, the one-line
// reason to stderr and /dev/kmsg. Refuses to run as any PID but 1.

import { runInit } from "../boot/init.ts";
import { toHex } from "../formats/bytes.ts";
import { realInitSys } from "../sys/real.ts";
import { randomBytes } from "../sys/write.ts";
import type { CliContext, CommandModule, ExitCode } from "./context.ts";
import { stdoutEventLog } from "./log.ts";

/** Runs the PID-1 mode: switch-roots or powers off, and returns only on a usage error. */
export function runInitCommand(ctx: CliContext): ExitCode {
  // it mounts over /dev, /proc, /run and powers off: never on a running system
  if (process.pid !== 1) {
    ctx.err(
      `sealroot: Cannot run init as PID ${process.pid}: not the first process, expected PID 1 in an initramfs (/init)\n`,
    );
    return 2;
  }
  const started = performance.now();
  return runInit(realInitSys, {
    log: stdoutEventLog(),
    err: (line) => ctx.err(line),
    now: () => performance.now() - started,
    etcSuffix: toHex(randomBytes(3)),
  });
}

export const initCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "init",
    "Run as PID 1 of the initramfs: find and mount root=, prepare it, switch root (or power off)",
    (a) => a,
    () => setExit(runInitCommand(ctx)),
  );
