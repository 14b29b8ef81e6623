// The initramfs's own invocations — exactly `init`, or `prepare-root [SYSROOT]` with no option — run
// without building the yargs command tree: loading yargs and every command module costs ~0.5 s of a boot
// under QEMU TCG. Anything else (an option, --help, a typo) returns undefined and goes through the CLI,
// which stays the one parser of options; these two forms take none.

import type { CliContext, ExitCode } from "./context.ts";
import { runInitCommand } from "./init.ts";
import { runPrepareRoot } from "./prepare-root.ts";

/** The boot command `argv` names, ready to run, or undefined when it is anything else. */
export function bootPath(argv: readonly string[], ctx: CliContext): (() => ExitCode) | undefined {
  const [command, sysroot, ...rest] = argv;
  if (command === "init" && sysroot === undefined) return () => runInitCommand(ctx);
  if (command !== "prepare-root" || rest.length > 0 || sysroot?.startsWith("-")) return undefined;
  return () => (runPrepareRoot(ctx, { sysroot: sysroot ?? "/sysroot" }).failed ? 1 : 0);
}
