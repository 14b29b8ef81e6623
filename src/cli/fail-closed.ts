// `sealroot fail-closed`: what a dracut initramfs runs after `sealroot prepare-root` refused, before its
// emergency shell. The command line is not verified, so in a boot that verifies its root (a key set, an
// expected digest, verity) a root shell with the physical root mounted is only allowed when the
// initramfs's own prepare-root.conf says `[sealroot] emergency-shell = yes`: otherwise this prints why
// and powers off. Exit 0 = the shell may follow. A config it cannot read counts as no opt-in.

import { messageOf, SealrootError } from "../base/errors.ts";
import { MAX_CMDLINE_BYTES, readKernelCmdline } from "../core/cmdline.ts";
import { emptyConfig, type PrepareRootConfig, readPrepareRootConfig } from "../core/config.ts";
import { emergencyShellRefusal } from "../core/policy.ts";
import { utf8 } from "../formats/bytes.ts";
import { realInitSys } from "../sys/real.ts";
import type { InitSys } from "../sys/types.ts";
import type { CliContext, CommandModule, ExitCode } from "./context.ts";

/** Returns 0 when an emergency shell may follow; otherwise reports and powers off (never returns). */
export function failClosed(sys: InitSys, err: (line: string) => void): ExitCode {
  const cmdline = readKernelCmdline(
    utf8.decode(sys.readFile("/proc/cmdline", MAX_CMDLINE_BYTES, "kernel command line")).replace(/\n$/, ""),
  );
  let config: PrepareRootConfig;
  let why: string | undefined;
  try {
    config = readPrepareRootConfig(sys, "/");
  } catch (e) {
    if (!(e instanceof SealrootError)) throw e;
    config = emptyConfig();
    why = `the initramfs's prepare-root.conf does not parse (${e.message})`;
  }
  why ??= emergencyShellRefusal(cmdline, config);
  if (why === undefined) return 0;
  const line = `sealroot: no emergency shell after the refusal: ${why}; powering off\n`;
  err(line);
  try {
    sys.writeDevice("/dev/kmsg", `<2>${line}`);
  } catch (k) {
    err(`sealroot: ${messageOf(k)}\n`);
  }
  return sys.powerOff();
}

export const failClosedCommand: CommandModule = (y, ctx: CliContext, setExit) =>
  y.command(
    "fail-closed",
    "After a refusal in an initramfs: exit 0 if an emergency shell may follow, else power off",
    (a) => a,
    () => setExit(failClosed(realInitSys, (l) => ctx.err(l))),
  );
